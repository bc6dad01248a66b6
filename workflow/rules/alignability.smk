# The alignability branch: GITDL pre-training of f_A (labels unused, once per dataset: every split
# shares it), all-pairs DTW pair mining over the labeled videos (CuPy on a GPU), AVML training of
# f_A + f_S (L_AT + omega L_Score), phi_A predictions for the unlabeled and test videos, and the
# pair-verification analysis.


rule pretrain_gitdl:
    input:
        manifest="results/{dataset}/manifest.tsv",
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
    output:
        model="results/{dataset}/alignability/pretrained/{init}_fa.pt",
        history="results/{dataset}/alignability/pretrained/{init}_fa.history.tsv",
    log:
        "results/logs/{dataset}/pretrain_gitdl/{init}.log",
    benchmark:
        "results/benchmarks/pretrain_gitdl/{dataset}/{init}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa"),
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GPU * config["alignability"]["gpus"],
    params:
        settings=lambda wc: {
            "cfg": gitdl_config(wc.init),
            "seed": config["seed"] + 1,
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("pretrain_gitdl"),
    script:
        "../scripts/pretrain_gitdl.py"


rule mine_pairs:
    input:
        model="results/{dataset}/alignability/pretrained/{init}_fa.pt",
        labeled="results/{dataset}/splits/frac{frac}_seed{seed}/labeled.tsv",
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
    output:
        triplets="results/{dataset}/alignability/frac{frac}_seed{seed}/triplets_{init}.tsv",
        distances="results/{dataset}/alignability/frac{frac}_seed{seed}/labeled_dtw_{init}.npz",
    log:
        "results/logs/{dataset}/mine_pairs/frac{frac}_seed{seed}_{init}.log",
    benchmark:
        "results/benchmarks/mine_pairs/{dataset}/frac{frac}_seed{seed}_{init}.tsv"
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
        model="results/{dataset}/alignability/pretrained/{init}_fa.pt",
        labeled="results/{dataset}/splits/frac{frac}_seed{seed}/labeled.tsv",
        triplets="results/{dataset}/alignability/frac{frac}_seed{seed}/triplets_{init}.tsv",
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
    output:
        model="results/{dataset}/alignability/frac{frac}_seed{seed}/avml_{loss}_{init}_fa.pt",
        history="results/{dataset}/alignability/frac{frac}_seed{seed}/avml_{loss}_{init}_fa.history.tsv",
    log:
        "results/logs/{dataset}/train_alignability/frac{frac}_seed{seed}_{loss}_{init}.log",
    benchmark:
        "results/benchmarks/train_alignability/{dataset}/frac{frac}_seed{seed}_{loss}_{init}.tsv"
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa"),
        runtime=lambda wc, attempt: 120 * attempt,
        gpu=GPU * config["alignability"]["gpus"],
    params:
        settings=lambda wc: {
            "cfg": align_params(
                "num_frames", "gamma", "margin", "omega", "avml", "gpus", "hflip"
            ),
            "loss": wc.loss,
            "seed": config["seed"] + 1000 * int(wc.seed) + 2,
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("train_alignability"),
    script:
        "../scripts/train_alignability.py"


rule predict_alignability:
    input:
        model="results/{dataset}/alignability/frac{frac}_seed{seed}/avml_av_gitdl_fa.pt",
        labeled="results/{dataset}/splits/frac{frac}_seed{seed}/labeled.tsv",
        unlabeled="results/{dataset}/splits/frac{frac}_seed{seed}/unlabeled.tsv",
        test="results/{dataset}/splits/frac{frac}_seed{seed}/test.tsv",
        classes="results/{dataset}/classes.tsv",
        shards=get_shards,
        shard_index=get_shard_status,  # the index each shard array is read through
    output:
        unlabeled="results/{dataset}/alignability/frac{frac}_seed{seed}/pA_unlabeled.tsv",
        test="results/{dataset}/alignability/frac{frac}_seed{seed}/pA_test.tsv",
    log:
        "results/logs/{dataset}/predict_alignability/frac{frac}_seed{seed}.log",
    benchmark:
        "results/benchmarks/predict_alignability/{dataset}/frac{frac}_seed{seed}.tsv"
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings={
            "cfg": align_params("gamma", "tau", "dtw_backend"),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("predict_alignability"),
    script:
        "../scripts/predict_alignability.py"


rule pair_verification:
    input:
        unpack(get_pair_verification_inputs),
    output:
        table=report(
            "results/{dataset}/alignability/frac{frac}_seed{seed}/pair_verification.tsv",
            caption="../report/pair_verification.rst",
            category="Alignability",
        ),
        phase="results/{dataset}/alignability/frac{frac}_seed{seed}/phase_agreement.tsv",
        example="results/{dataset}/alignability/frac{frac}_seed{seed}/alignment_example.npz",
    log:
        "results/logs/{dataset}/pair_verification/frac{frac}_seed{seed}.log",
    benchmark:
        "results/benchmarks/pair_verification/{dataset}/frac{frac}_seed{seed}.tsv"
    conda:
        "../../envs/dtw.yaml"
    threads: config["threads"]
    resources:
        mem_mb=job_mem_mb("fa", train=False),
        runtime=lambda wc, attempt: 30 * attempt,
        gpu=GPU,
    params:
        settings={
            "cfg": align_params("gamma", "dtw_backend"),
            "device": config["device"],
            "cpu_kernels": config["cpu_kernels"],
        },
        code=code("pair_verification"),
    script:
        "../scripts/pair_verification.py"
