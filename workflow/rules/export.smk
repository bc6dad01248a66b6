# Use what the workflow trained: every method and split's scored f_E (and phi_A where the method uses it)
# exported as a self-describing folder (safetensors weights + model card), and prediction on new videos
# with an export (config section predict:). The library code is finepseudo.export.


rule export_model:
    input:
        unpack(get_export_inputs),
    output:
        directory("results/{dataset}/export/{method}/frac{frac}_seed{seed}"),
    log:
        "results/logs/{dataset}/export_model/{method}/frac{frac}_seed{seed}.log",
    benchmark:
        "results/benchmarks/export_model/{dataset}/{method}/frac{frac}_seed{seed}.tsv"
    conda:
        "../../envs/export.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings=export_settings,
        code=code("export_model"),
    script:
        "../scripts/export_model.py"


# Prediction runs (config predict:): nothing is planned while predict.videos_dir is null.
rule predict_videos:
    input:
        unpack(get_predict_inputs),
    output:
        table="results/{dataset}/predict/{name}/predictions.tsv",
        page="results/{dataset}/predict/{name}/page.html",
    log:
        "results/logs/{dataset}/predict_videos/{name}.log",
    benchmark:
        "results/benchmarks/predict_videos/{dataset}/{name}.tsv"
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        "../../envs/export.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=GPU,
    params:
        settings=lambda wc: {
            "videos_dir": config["predict"]["videos_dir"],
            "ranges": config["predict"]["ranges"],
            "batch_size": config["predict"]["batch_size"],
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
            "export": export_dir(*predict_run()),
        },
        code=code("predict_videos"),
    script:
        "../scripts/predict_videos.py"
