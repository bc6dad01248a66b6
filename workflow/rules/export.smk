# Use what the workflow trained: every method and split's scored f_E (and phi_A where the method uses it)
# exported as a self-describing folder (safetensors weights + model card), and prediction on new videos
# with an export (config section predict:). The library code is finepseudo.export.


rule export_model:
    input:
        unpack(inputs("export_model")),
    output:
        directory(layout.EXPORT_DIR),
    log:
        layout.log("export_model", f"{{method}}/{layout.RUN}"),
    benchmark:
        layout.benchmark("export_model", f"{{method}}/{layout.RUN}")
    conda:
        "../../envs/export.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings=lambda wc: {
            "dataset": DATASET,
            "method": wc.method,
            "description": plan.method_description(wc.method),
            "frames": {
                k: config["frames"][k] for k in ("num_frames", "size", "resize")
            },
            "eval": plan.eval_settings(config),
            "align": plan.align_settings(config, "gamma"),
            "config": plan.model_config(config),
            "code": {
                "trained_by": plan.trained_by(wc.method),
                plan.trained_by(wc.method): code(plan.trained_by(wc.method)),
                "evaluate_fe": code("evaluate_fe"),
                "export_model": code("export_model"),
            },
        },
        code=code("export_model"),
    script:
        "../scripts/export_model.py"


# Prediction runs (config predict:): nothing is planned while predict.videos_dir is null.
rule predict_videos:
    input:
        unpack(inputs("predict_videos")),
    output:
        table=f"{layout.PREDICT_DIR}/predictions.tsv",
        page=f"{layout.PREDICT_DIR}/page.html",
    log:
        layout.log("predict_videos", "{name}"),
    benchmark:
        layout.benchmark("predict_videos", "{name}")
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
            "export": predict_export(),
        },
        code=code("predict_videos"),
    script:
        "../scripts/predict_videos.py"
