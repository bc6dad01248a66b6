# Trivial baselines, rows of every report's accuracy table: pixel-DTW 1-NN, pooled-pixel 1-NN, phi_A alone and a
# nearest-class-mean probe of the self-supervised f_E, from the split's labeled videos, on the same test videos
# as the methods (finepseudo.baselines).


rule trivial_baselines:
    input:
        unpack(get_trivial_baselines_inputs),
    output:
        metrics=trivial_outputs("metrics.json"),
        per_class=trivial_outputs("per_class.tsv"),
        confusion=trivial_outputs("confusion.tsv"),
        predictions=trivial_outputs("predictions.tsv"),
    log:
        "results/logs/{dataset}/trivial_baselines/frac{frac}_seed{seed}.log",
    benchmark:
        "results/benchmarks/trivial_baselines/{dataset}/frac{frac}_seed{seed}.tsv"
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
