# Dataset: SynthDive generation (the default, no download), the Diving48-format adapter that turns
# annotations into one manifest table, and the labeled / unlabeled / test splits.


# Cached (between workflows): Snakemake forbids benchmark: there, so the log reports the time.
rule generate_synthdive:
    output:
        videos=directory(f"{layout.SYNTHDIVE_RAW}/videos"),
        train=f"{layout.SYNTHDIVE_RAW}/annotations/train.json",
        test=f"{layout.SYNTHDIVE_RAW}/annotations/test.json",
        vocab=f"{layout.SYNTHDIVE_RAW}/annotations/vocab.json",
        phases=f"{layout.SYNTHDIVE_RAW}/annotations/phases.json",
        classes=f"{layout.SYNTHDIVE_RAW}/annotations/classes.json",
        annotation_summary=f"{layout.SYNTHDIVE_RAW}/annotations/summary.json",
        summary=f"{layout.SYNTHDIVE_RAW}/summary.json",
    log:
        "results/logs/generate_synthdive.log",
    cache: "omit-software"
    conda:
        "../../envs/video.yaml"
    threads: min(workflow.cores, 4)  # rendering processes (the first job: nothing else can run yet)
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        settings=config["synthdive"],
        code=code("generate_synthdive"),
    script:
        "../scripts/generate_synthdive.py"


# A checkpoint: extract_frames declares the video files of its shard, which the manifest lists.
checkpoint build_manifest:
    input:
        unpack(inputs("build_manifest")),
    output:
        manifest=report(
            layout.MANIFEST,
            caption="../report/manifest.rst",
            category="Dataset",
        ),
        classes=layout.CLASSES,
    log:
        layout.log("build_manifest"),
    benchmark:
        layout.benchmark("build_manifest")
    conda:
        "../../envs/video.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings={
            "format": FORMATS[DATASET],
            "videos_dir": videos_dir(),
            "video_ext": config["dataset"]["video_ext"],
            "source": config["dataset"]["source"],
            "num_shards": config["frames"]["shards"],
            "generated": DATASET == "synthdive",
        },
        code=code("build_manifest"),
    script:
        "../scripts/build_manifest.py"


rule make_splits:
    input:
        manifest=layout.MANIFEST,
    output:
        labeled=f"{layout.SPLIT_DIR}/labeled.tsv",
        val=f"{layout.SPLIT_DIR}/val.tsv",
        unlabeled=f"{layout.SPLIT_DIR}/unlabeled.tsv",
        unlabeled_truth=f"{layout.SPLIT_DIR}/unlabeled_truth.tsv",
        test=f"{layout.SPLIT_DIR}/test.tsv",
        novel=f"{layout.SPLIT_DIR}/novel_classes.tsv",
    log:
        layout.log("make_splits", layout.RUN),
    benchmark:
        layout.benchmark("make_splits", layout.RUN)
    conda:
        "../../envs/video.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        settings=lambda wc: {
            "percent": float(wc.frac),
            "seed": int(wc.seed),
            "novel_classes": config["open_world"]["novel_classes"],
            "val_per_class": config["hparams"]["val_per_class"],
        },
        code=code("make_splits"),
    script:
        "../scripts/make_splits.py"
