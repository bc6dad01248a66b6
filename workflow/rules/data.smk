# Dataset: SynthDive generation (the default, no download), the Diving48-format adapter that turns
# annotations into one manifest table, and the labeled / unlabeled / test splits.


rule generate_synthdive:
    output:
        videos=directory("results/synthdive/raw/videos"),
        train="results/synthdive/raw/annotations/train.json",
        test="results/synthdive/raw/annotations/test.json",
        vocab="results/synthdive/raw/annotations/vocab.json",
        phases="results/synthdive/raw/annotations/phases.json",
        summary="results/synthdive/raw/summary.json",
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
        unpack(get_annotations),
    output:
        manifest=report(
            "results/{dataset}/manifest.tsv",
            caption="../report/manifest.rst",
            category="Dataset",
        ),
        classes="results/{dataset}/classes.tsv",
    log:
        "results/logs/{dataset}/build_manifest.log",
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
        manifest="results/{dataset}/manifest.tsv",
    output:
        labeled="results/{dataset}/splits/frac{frac}_seed{seed}/labeled.tsv",
        val="results/{dataset}/splits/frac{frac}_seed{seed}/val.tsv",
        unlabeled="results/{dataset}/splits/frac{frac}_seed{seed}/unlabeled.tsv",
        unlabeled_truth="results/{dataset}/splits/frac{frac}_seed{seed}/unlabeled_truth.tsv",
        test="results/{dataset}/splits/frac{frac}_seed{seed}/test.tsv",
        novel="results/{dataset}/splits/frac{frac}_seed{seed}/novel_classes.tsv",
    log:
        "results/logs/{dataset}/make_splits/frac{frac}_seed{seed}.log",
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
