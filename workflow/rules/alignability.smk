# The alignability branch: GITDL pre-training of f_A (labels unused, once per dataset: every split
# shares it), all-pairs DTW pair mining over the labeled videos (CuPy on a GPU), AVML training of
# f_A + f_S (L_AT + omega L_Score), phi_A predictions for the unlabeled and test videos, and the
# pair-verification analysis.


rule pretrain_gitdl:
    input:
        manifest=layout.MANIFEST,
        shards=get_shards,
        shard_index=get_shard_indexes,
    output:
        model=layout.PRETRAINED_FA,
        history=layout.PRETRAINED_FA.replace(".pt", ".history.tsv"),
    log:
        layout.log("pretrain_gitdl", "{init}"),
    benchmark:
        layout.benchmark("pretrain_gitdl", "{init}")
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa"),
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GPU * config["alignability"]["gpus"],
    params:
        settings=lambda wc: {
            "cfg": plan.gitdl_settings(config, wc.init),
            "seed": stage_seed("pretrain_gitdl"),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("pretrain_gitdl"),
    script:
        "../scripts/pretrain_gitdl.py"


rule mine_pairs:
    input:
        model=layout.PRETRAINED_FA,
        labeled=f"{layout.SPLIT_DIR}/labeled.tsv",
        shards=get_shards,
        shard_index=get_shard_indexes,
    output:
        triplets=f"{layout.ALIGN_DIR}/triplets_{{init}}.tsv",
        distances=f"{layout.ALIGN_DIR}/labeled_dtw_{{init}}.npz",
    log:
        layout.log("mine_pairs", f"{layout.RUN}_{{init}}"),
    benchmark:
        layout.benchmark("mine_pairs", f"{layout.RUN}_{{init}}")
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings={
            "backend": config["alignability"]["dtw_backend"],
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("mine_pairs"),
    script:
        "../scripts/mine_pairs.py"


rule train_alignability:
    input:
        model=layout.PRETRAINED_FA,
        labeled=f"{layout.SPLIT_DIR}/labeled.tsv",
        triplets=f"{layout.ALIGN_DIR}/triplets_{{init}}.tsv",
        shards=get_shards,
        shard_index=get_shard_indexes,
    output:
        model=layout.AVML_FA,
        history=layout.AVML_FA.replace(".pt", ".history.tsv"),
    log:
        layout.log("train_alignability", f"{layout.RUN}_{{loss}}_{{init}}"),
    benchmark:
        layout.benchmark("train_alignability", f"{layout.RUN}_{{loss}}_{{init}}")
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa"),
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GPU * config["alignability"]["gpus"],
    params:
        settings=lambda wc: {
            "cfg": plan.align_settings(
                config,
                "num_frames",
                "gamma",
                "margin",
                "omega",
                "avml",
                "gpus",
                "hflip",
            ),
            "loss": wc.loss,
            "seed": stage_seed("train_alignability", wc),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("train_alignability"),
    script:
        "../scripts/train_alignability.py"


rule predict_alignability:
    input:
        model=f"{layout.ALIGN_DIR}/avml_av_gitdl_fa.pt",
        labeled=f"{layout.SPLIT_DIR}/labeled.tsv",
        unlabeled=f"{layout.SPLIT_DIR}/unlabeled.tsv",
        test=f"{layout.SPLIT_DIR}/test.tsv",
        classes=layout.CLASSES,
        shards=get_shards,
        shard_index=get_shard_indexes,
    output:
        unlabeled=f"{layout.ALIGN_DIR}/pA_unlabeled.tsv",
        test=f"{layout.ALIGN_DIR}/pA_test.tsv",
    log:
        layout.log("predict_alignability", layout.RUN),
    benchmark:
        layout.benchmark("predict_alignability", layout.RUN)
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings={
            "cfg": plan.align_settings(config, "gamma", "tau", "dtw_backend"),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("predict_alignability"),
    script:
        "../scripts/predict_alignability.py"


rule pair_verification:
    input:
        unpack(inputs("pair_verification")),
    output:
        table=report(
            f"{layout.ALIGN_DIR}/pair_verification.tsv",
            caption="../report/pair_verification.rst",
            category="Alignability",
        ),
        phase=f"{layout.ALIGN_DIR}/phase_agreement.tsv",
        example=f"{layout.ALIGN_DIR}/alignment_example.npz",
    log:
        layout.log("pair_verification", layout.RUN),
    benchmark:
        layout.benchmark("pair_verification", layout.RUN)
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings={
            "cfg": plan.align_settings(config, "gamma", "dtw_backend"),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("pair_verification"),
    script:
        "../scripts/pair_verification.py"
