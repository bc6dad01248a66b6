# Collaborative pseudo-labeling rounds r = 1..R (recursive {round} wildcard): pseudo-label the whole
# unlabeled pool with the frozen round r-1 encoders, then fine-tune f_E (cross-entropy) and f_A (L_AV)
# on labeled + accepted videos. Methods: pl, fa_only, finepseudo and the paper's ablations.
# theta, tau and delta are chosen per method on the validation split (select_hparams), the number of
# rounds after the rounds, on the same split (select_round); the test split is never read to choose.


rule select_hparams:
    input:
        unpack(get_select_hparams_inputs),
    output:
        hparams="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/hparams.json",
        candidates="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/hparams_candidates.tsv",
        calibration="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/calibration.tsv",
        reliability="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/reliability.tsv",
    log:
        "results/logs/{dataset}/select_hparams/{method}/frac{frac}_seed{seed}.log",
    benchmark:
        "results/benchmarks/select_hparams/{dataset}/{method}/frac{frac}_seed{seed}.tsv"
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
            "open_world": open_world_delta(wc.method) is not None,
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
            "align": align_params("gamma", "dtw_backend"),
            "clips_per_video": config["eval"]["clips_per_video"],
            "calibrate": calibrate_pe(wc.method),
            "accept": accept_params(),
            "rule": combine_rule(wc.method),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("select_hparams"),
    script:
        "../scripts/select_hparams.py"


rule pseudo_label:
    input:
        unpack(get_pseudo_label_inputs),
    output:
        table="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/pseudo_labels.tsv",
        info="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/pseudo_labels.json",
    log:
        "results/logs/{dataset}/pseudo_label/{method}/frac{frac}_seed{seed}_round{round}.log",
    benchmark:
        "results/benchmarks/pseudo_label/{dataset}/{method}/frac{frac}_seed{seed}_round{round}.tsv"
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
            "align": align_params("gamma", "dtw_backend"),
            "clips_per_video": config["eval"]["clips_per_video"],
            "calibrate": calibrate_pe(wc.method),
            "accept": accept_params(),
            "rule": combine_rule(wc.method),
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
        unpack(get_retrain_fe_inputs),
    output:
        model="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/fe.pt",
        history="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/fe.history.tsv",
    log:
        "results/logs/{dataset}/retrain_fe/{method}/frac{frac}_seed{seed}_round{round}.log",
    benchmark:
        "results/benchmarks/retrain_fe/{dataset}/{method}/frac{frac}_seed{seed}_round{round}.tsv"
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
            "init_seed": fe_init_seed(wc),
            "seed": config["seed"] + 1000 * int(wc.seed) + 10 * int(wc["round"]) + 3,
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("retrain_fe"),
    script:
        "../scripts/retrain_fe.py"


rule retrain_fa:
    input:
        fa=lambda wc: previous_fa(wc),
        labeled="results/{dataset}/splits/frac{frac}_seed{seed}/labeled.tsv",
        pseudo="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/pseudo_labels.tsv",
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
    output:
        model="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/fa.pt",
        history="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/fa.history.tsv",
    log:
        "results/logs/{dataset}/retrain_fa/{method}/frac{frac}_seed{seed}_round{round}.log",
    benchmark:
        "results/benchmarks/retrain_fa/{dataset}/{method}/frac{frac}_seed{seed}_round{round}.tsv"
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa"),
        runtime=lambda wc, attempt: 60 * attempt,
        gpu=GPU * config["alignability"]["gpus"],
    params:
        settings=lambda wc: {
            "align": align_params(
                "gamma", "margin", "omega", "dtw_backend", "avml", "gpus", "hflip"
            ),
            "loss": avml_variant(wc.method)[0],
            "epochs": config["pseudo"]["fa_epochs"],
            "seed": config["seed"] + 1000 * int(wc.seed) + 10 * int(wc["round"]) + 4,
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("retrain_fa"),
    script:
        "../scripts/retrain_fa.py"


rule pseudo_quality:
    input:
        tables=lambda wc: [
            f"results/{DATASET}/methods/{wc.method}/frac{wc.frac}_seed{wc.seed}/round{r}/pseudo_labels.tsv"
            for r in ROUNDS
        ],
        truth="results/{dataset}/splits/frac{frac}_seed{seed}/unlabeled_truth.tsv",
        novel="results/{dataset}/splits/frac{frac}_seed{seed}/novel_classes.tsv",
    output:
        table="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/pseudo_quality.tsv",
    log:
        "results/logs/{dataset}/pseudo_quality/{method}/frac{frac}_seed{seed}.log",
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
        model="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round{round}/fe.pt",
        test="results/{dataset}/splits/frac{frac}_seed{seed}/test.tsv",
        val="results/{dataset}/splits/frac{frac}_seed{seed}/val.tsv",
        classes="results/{dataset}/classes.tsv",
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
    output:
        metrics="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/round{round}/metrics.json",
        per_class="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/round{round}/per_class.tsv",
        confusion="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/round{round}/confusion.tsv",
        predictions="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/round{round}/predictions.tsv",
        val_metrics="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/round{round}/val_metrics.json",
    log:
        "results/logs/{dataset}/evaluate_round/{method}/frac{frac}_seed{seed}_round{round}.log",
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings=eval_settings(),
        code=code("evaluate_fe"),
    script:
        "../scripts/evaluate_fe.py"


rule select_round:
    input:
        unpack(get_select_round_inputs),
    output:
        metrics="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/metrics.json",
        per_class=report(
            "results/{dataset}/eval/{method}/frac{frac}_seed{seed}/per_class.tsv",
            caption="../report/metrics.rst",
            category="Accuracy",
            labels={"method": "{method}", "labels %": "{frac}", "seed": "{seed}"},
        ),
        confusion="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/confusion.tsv",
        predictions="results/{dataset}/eval/{method}/frac{frac}_seed{seed}/predictions.tsv",
        table="results/{dataset}/methods/{method}/frac{frac}_seed{seed}/round_selection.tsv",
    log:
        "results/logs/{dataset}/select_round/{method}/frac{frac}_seed{seed}.log",
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
