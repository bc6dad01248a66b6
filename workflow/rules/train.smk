# f_E, the primary action encoder: supervised warm-up on the labeled split, then evaluation on the
# test split. Every method starts from the same initialisation: the self-supervised f_E (pretrain_fe,
# fe.init: ssl) or a seeded random one (fe.init: scratch); supervised_scratch is the supervised
# baseline from the random one, to show what the initialisation is worth.


rule pretrain_fe:
    input:
        manifest="results/{dataset}/manifest.tsv",
        weights=fe_weights,
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
    output:
        model="results/{dataset}/models/ssl/fe_ssl.pt",
        history="results/{dataset}/models/ssl/fe_ssl.history.tsv",
    log:
        "results/logs/{dataset}/pretrain_fe.log",
    benchmark:
        "results/benchmarks/pretrain_fe/{dataset}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("ssl"),
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GPU,
    params:
        settings={
            "fe": {
                k: config["fe"][k]
                for k in ("arch", "weights", "weight_decay", "augment", "clip_norm")
            },
            "ssl": config["fe"]["ssl"],
            "seed": config["seed"] + 7,
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("pretrain_fe"),
    script:
        "../scripts/pretrain_fe.py"


rule train_fe:
    input:
        unpack(get_train_fe_inputs),
    output:
        model="results/{dataset}/models/{sup}/frac{frac}_seed{seed}/fe.pt",
        history="results/{dataset}/models/{sup}/frac{frac}_seed{seed}/fe.history.tsv",
    log:
        "results/logs/{dataset}/train_fe/{sup}/frac{frac}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train_fe/{dataset}/{sup}/frac{frac}_seed{seed}.tsv"
    wildcard_constraints:
        sup="supervised|supervised_scratch",
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fe"),
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GPU * config["fe"]["gpus"],
    params:
        settings=lambda wc: {
            "fe": fe_train_params(),
            "seed": fe_init_seed(wc),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("train_fe"),
    script:
        "../scripts/train_fe.py"


rule evaluate_fe:
    input:
        model=get_model,
        test=lambda wc: f"results/{DATASET}/splits/frac{wc.frac}_seed{wc.seed}/test.tsv",
        classes="results/{dataset}/classes.tsv",
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
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
    log:
        "results/logs/{dataset}/evaluate_fe/{method}/frac{frac}_seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_fe/{dataset}/{method}/frac{frac}_seed{seed}.tsv"
    wildcard_constraints:
        method="supervised|supervised_full|supervised_scratch",
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
