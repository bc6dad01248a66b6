# Collaborative pseudo-labeling rounds r = 1..R (recursive {round} wildcard): pseudo-label the whole
# unlabeled pool with the frozen round r-1 encoders, then fine-tune f_E (cross-entropy) and f_A (L_AV)
# on labeled + accepted videos. Methods: pl, fa_only, finepseudo and the paper's ablations.
# theta, tau and delta are chosen per method on the validation split (select_hparams), the number of
# rounds after the rounds, on the same split (select_round); the test split is never read to choose.


rule select_hparams:
    input:
        unpack(inputs("select_hparams")),
    output:
        hparams=f"{layout.RUN_DIR}/hparams.json",
        candidates=f"{layout.RUN_DIR}/hparams_candidates.tsv",
        calibration=f"{layout.RUN_DIR}/calibration.tsv",
        reliability=f"{layout.RUN_DIR}/reliability.tsv",
    log:
        layout.log("select_hparams", f"{{method}}/{layout.RUN}"),
    benchmark:
        layout.benchmark("select_hparams", f"{{method}}/{layout.RUN}")
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings=lambda wc: {
            "method": wc.method,
            "source": PSEUDO_METHODS[wc.method].source,
            "open_world": plan.open_world_delta(config, wc.method) is not None,
            "defaults": {
                "theta": config["pseudo"]["theta"],
                "tau": config["alignability"]["tau"],
                "delta": config["open_world"]["delta"],
            },
            **{
                k: config["hparams"][k]
                for k in (
                    "select",
                    "theta_grid",
                    "tau_grid",
                    "target_precision",
                    "known_keep",
                )
            },
            "align": plan.align_settings(config, "gamma", "dtw_backend"),
            "clips_per_video": config["eval"]["clips_per_video"],
            "calibrate": plan.calibrate_pe(config, wc.method),
            "accept": plan.accept_settings(config),
            "rule": plan.combine_rule(config, wc.method),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("select_hparams"),
    script:
        "../scripts/select_hparams.py"


rule pseudo_label:
    input:
        unpack(inputs("pseudo_label")),
    output:
        table=f"{layout.ROUND_DIR}/pseudo_labels.tsv",
        info=f"{layout.ROUND_DIR}/pseudo_labels.json",
    log:
        layout.log("pseudo_label", f"{{method}}/{layout.ROUND_JOB}"),
    benchmark:
        layout.benchmark("pseudo_label", f"{{method}}/{layout.ROUND_JOB}")
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings=lambda wc: {
            "source": PSEUDO_METHODS[wc.method].source,
            "align": plan.align_settings(config, "gamma", "dtw_backend"),
            "clips_per_video": config["eval"]["clips_per_video"],
            "calibrate": plan.calibrate_pe(config, wc.method),
            "accept": plan.accept_settings(config),
            "rule": plan.combine_rule(config, wc.method),
            "theta_grid": config["hparams"]["theta_grid"],
            "target_precision": config["hparams"]["target_precision"],
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("pseudo_label"),
    script:
        "../scripts/pseudo_label.py"


rule retrain_fe:
    input:
        unpack(inputs("retrain_fe")),
    output:
        model=f"{layout.ROUND_DIR}/fe.pt",
        history=f"{layout.ROUND_DIR}/fe.history.tsv",
    log:
        layout.log("retrain_fe", f"{{method}}/{layout.ROUND_JOB}"),
    benchmark:
        layout.benchmark("retrain_fe", f"{{method}}/{layout.ROUND_JOB}")
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe"),
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=GPU * config["fe"]["gpus"],
    params:
        settings=lambda wc: {
            "recipe": config["pseudo"]["fe"],
            "init_seed": stage_seed("fe_init", wc),
            "seed": stage_seed("retrain_fe", wc),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("retrain_fe"),
    script:
        "../scripts/retrain_fe.py"


rule retrain_fa:
    input:
        fa=inputs("previous_fa"),
        labeled=f"{layout.SPLIT_DIR}/labeled.tsv",
        pseudo=f"{layout.ROUND_DIR}/pseudo_labels.tsv",
        shards=get_shards,
        shard_index=get_shard_indexes,
    output:
        model=f"{layout.ROUND_DIR}/fa.pt",
        history=f"{layout.ROUND_DIR}/fa.history.tsv",
    log:
        layout.log("retrain_fa", f"{{method}}/{layout.ROUND_JOB}"),
    benchmark:
        layout.benchmark("retrain_fa", f"{{method}}/{layout.ROUND_JOB}")
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa"),
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=GPU * config["alignability"]["gpus"],
    params:
        settings=lambda wc: {
            "align": plan.align_settings(
                config,
                "gamma",
                "margin",
                "omega",
                "dtw_backend",
                "avml",
                "gpus",
                "hflip",
            ),
            "loss": avml_variant(wc.method)[0],
            "epochs": config["pseudo"]["fa_epochs"],
            "seed": stage_seed("retrain_fa", wc),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("retrain_fa"),
    script:
        "../scripts/retrain_fa.py"


rule pseudo_quality:
    input:
        tables=lambda wc: [
            f"{path(layout.ROUND_DIR, wc, round=r)}/pseudo_labels.tsv" for r in ROUNDS
        ],
        truth=f"{layout.SPLIT_DIR}/unlabeled_truth.tsv",
        novel=f"{layout.SPLIT_DIR}/novel_classes.tsv",
    output:
        table=f"{layout.RUN_DIR}/pseudo_quality.tsv",
    log:
        layout.log("pseudo_quality", f"{{method}}/{layout.RUN}"),
    benchmark:
        layout.benchmark("pseudo_quality", f"{{method}}/{layout.RUN}")
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code("pseudo_quality"),
    script:
        "../scripts/pseudo_quality.py"


rule evaluate_round:
    input:
        model=f"{layout.ROUND_DIR}/fe.pt",
        test=f"{layout.SPLIT_DIR}/test.tsv",
        val=f"{layout.SPLIT_DIR}/val.tsv",
        classes=layout.CLASSES,
        shards=get_shards,
        shard_index=get_shard_indexes,
    output:
        metrics=f"{layout.EVAL_ROUND_DIR}/metrics.json",
        per_class=f"{layout.EVAL_ROUND_DIR}/per_class.tsv",
        confusion=f"{layout.EVAL_ROUND_DIR}/confusion.tsv",
        predictions=f"{layout.EVAL_ROUND_DIR}/predictions.tsv",
        val_metrics=f"{layout.EVAL_ROUND_DIR}/val_metrics.json",
    log:
        layout.log("evaluate_round", f"{{method}}/{layout.ROUND_JOB}"),
    benchmark:
        layout.benchmark("evaluate_round", f"{{method}}/{layout.ROUND_JOB}")
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings=plan.eval_settings(config),
        code=code("evaluate_fe"),
    script:
        "../scripts/evaluate_fe.py"


rule select_round:
    input:
        unpack(inputs("select_round")),
    output:
        metrics=f"{layout.EVAL_DIR}/metrics.json",
        per_class=report(
            f"{layout.EVAL_DIR}/per_class.tsv",
            caption="../report/metrics.rst",
            category="Accuracy",
            labels={"method": "{method}", "labels %": "{frac}", "seed": "{seed}"},
        ),
        confusion=f"{layout.EVAL_DIR}/confusion.tsv",
        predictions=f"{layout.EVAL_DIR}/predictions.tsv",
        table=f"{layout.RUN_DIR}/round_selection.tsv",
    log:
        layout.log("select_round", f"{{method}}/{layout.RUN}"),
    benchmark:
        layout.benchmark("select_round", f"{{method}}/{layout.RUN}")
    wildcard_constraints:
        method="|".join(PSEUDO_METHODS),
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code("select_round"),
    script:
        "../scripts/select_round.py"
