# Trivial baselines, rows of every report's accuracy table: pixel-DTW 1-NN, pooled-pixel 1-NN, phi_A alone and a
# nearest-class-mean probe of the self-supervised f_E, from the split's labeled videos, on the same test videos
# as the methods (finepseudo.baselines).


rule trivial_baselines:
    input:
        unpack(inputs("trivial_baselines")),
    output:
        # one file per baseline, in the order of TRIVIAL (the settings carry that order to the script)
        metrics=[f"{baseline_dir(b)}/metrics.json" for b in TRIVIAL],
        per_class=[f"{baseline_dir(b)}/per_class.tsv" for b in TRIVIAL],
        confusion=[f"{baseline_dir(b)}/confusion.tsv" for b in TRIVIAL],
        predictions=[f"{baseline_dir(b)}/predictions.tsv" for b in TRIVIAL],
    log:
        layout.log("trivial_baselines", layout.RUN),
    benchmark:
        layout.benchmark("trivial_baselines", layout.RUN)
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings={
            "baselines": TRIVIAL,
            "pixel_size": config["baselines"]["pixel_size"],
            "num_frames": config["alignability"]["num_frames"],
            "dtw_backend": config["alignability"]["dtw_backend"],
            "clip_frames": config["fe"]["clip_frames"],
            "clips_per_video": config["eval"]["clips_per_video"],
            "batch_size": config["eval"]["batch_size"],
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("trivial_baselines"),
    script:
        "../scripts/trivial_baselines.py"
