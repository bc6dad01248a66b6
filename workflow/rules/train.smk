# f_E, the primary action encoder: supervised warm-up on the labeled split, then evaluation on the
# test split. Every method starts from the same initialisation: the self-supervised f_E (pretrain_fe,
# fe.init: ssl) or a seeded random one (fe.init: scratch); supervised_scratch is the supervised
# baseline from the random one, to show what the initialisation is worth.


rule pretrain_fe:
    input:
        manifest=layout.MANIFEST,
        weights=inputs("fe_weights"),
        shards=get_shards,
        shard_index=get_shard_indexes,
    output:
        model=layout.SSL_FE,
        history=layout.SSL_FE.replace(".pt", ".history.tsv"),
    log:
        layout.log("pretrain_fe"),
    benchmark:
        layout.benchmark("pretrain_fe")
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
            "seed": stage_seed("pretrain_fe"),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("pretrain_fe"),
    script:
        "../scripts/pretrain_fe.py"


rule train_fe:
    input:
        unpack(inputs("train_fe")),
    output:
        model=f"{layout.SUPERVISED_DIR}/fe.pt",
        history=f"{layout.SUPERVISED_DIR}/fe.history.tsv",
    log:
        layout.log("train_fe", f"{{sup}}/{layout.RUN}"),
    benchmark:
        layout.benchmark("train_fe", f"{{sup}}/{layout.RUN}")
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
            "fe": plan.fe_train_settings(config),
            "seed": stage_seed("fe_init", wc),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("train_fe"),
    script:
        "../scripts/train_fe.py"


rule evaluate_fe:
    input:
        model=get_model_path,
        test=f"{layout.SPLIT_DIR}/test.tsv",
        classes=layout.CLASSES,
        shards=get_shards,
        shard_index=get_shard_indexes,
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
    log:
        layout.log("evaluate_fe", f"{{method}}/{layout.RUN}"),
    benchmark:
        layout.benchmark("evaluate_fe", f"{{method}}/{layout.RUN}")
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
        settings=plan.eval_settings(config),
        code=code("evaluate_fe"),
    script:
        "../scripts/evaluate_fe.py"
