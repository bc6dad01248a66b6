# Use what the workflow trained: every method and split's scored f_E (and phi_A where the method uses it)
# exported as a self-describing folder (safetensors weights + model card), and prediction on new videos
# with an export (config section predict:). The library code is finepseudo.export.
from finepseudo.export.videos import list_videos
from finepseudo.registry import SUPERVISED_METHODS

# Config keys that change no trained model: how many cores or loader processes a job uses, which runs and
# splits exist besides this one, and prediction runs. The card records the rest (its config digest), so an
# export is rerun when any of it changes.
NOT_MODEL_KEYS = ("threads", "methods", "splits", "predict")


def model_config():
    """The config a trained model depends on, as recorded in its export's card."""
    cfg = {k: v for k, v in config.items() if k not in NOT_MODEL_KEYS}
    cfg["frames"] = {k: v for k, v in cfg["frames"].items() if k != "workers"}
    return cfg


def export_dir(method, frac, seed):
    return f"results/{DATASET}/export/{method}/frac{frac}_seed{seed}"


def get_exports(wildcards=None):
    """The export folder of every run the config trains (the report lists them)."""
    return [export_dir(m, p, s) for m, p, s in runs()]


def fa_of_round(method, frac, seed, r):
    """The f_A (+ f_S) that pseudo-labeled round r of a method: round r-1's, the AVML model's for round 1."""
    if r == 1:
        loss, init = avml_variant(method)
        return f"results/{DATASET}/alignability/frac{frac}_seed{seed}/avml_{loss}_{init}_fa.pt"
    return f"{run_dir_of(method, frac, seed)}/round{r - 1}/fa.pt"


def uses_phi_a(method):
    return method in PSEUDO_METHODS and PSEUDO_METHODS[method].source != "fe"


def get_export_inputs(wc):
    """The evaluation the report scores (metrics.json names its f_E; predictions give the interval), every f_E it
    may name (each round's, since the round is chosen at run time), the split's validation videos (p_E's
    temperature) and labeled videos (phi_A's gallery), and for phi_A methods each round's f_A and the method's tau.
    """
    ev = f"results/{DATASET}/eval/{wc.method}/frac{wc.frac}_seed{wc.seed}"
    split = f"results/{DATASET}/splits/frac{wc.frac}_seed{wc.seed}"
    inputs = {
        "metrics": f"{ev}/metrics.json",
        "predictions": f"{ev}/predictions.tsv",
        "classes": f"results/{DATASET}/classes.tsv",
        "labeled": f"{split}/labeled.tsv",
        "val": f"{split}/val.tsv",
        "shards": get_shards(wc),
        "shard_index": get_shard_status(wc),
    }
    if wc.method in PSEUDO_METHODS:
        run = run_dir_of(wc.method, wc.frac, wc.seed)
        inputs["models"] = [f"{run}/round{r}/fe.pt" for r in ROUNDS]
        inputs["hparams"] = f"{run}/hparams.json"
        if uses_phi_a(wc.method):
            inputs["fa_models"] = [
                fa_of_round(wc.method, wc.frac, wc.seed, r) for r in ROUNDS
            ]
    else:
        inputs["models"] = [get_model(wc)]
    return inputs


def method_description(method):
    if method in SUPERVISED_METHODS:
        return SUPERVISED_METHODS[method]
    return PSEUDO_METHODS[method].description


def export_settings(wc):
    m = wc.method
    trained_by = "retrain_fe" if m in PSEUDO_METHODS else "train_fe"
    return {
        "dataset": DATASET,
        "method": m,
        "description": method_description(m),
        "frames": {k: config["frames"][k] for k in ("num_frames", "size", "resize")},
        "eval": eval_settings(),
        "align": align_params("gamma"),
        "config": model_config(),
        "code": {
            "trained_by": trained_by,
            trained_by: code(trained_by),
            "evaluate_fe": code("evaluate_fe"),
            "export_model": code("export_model"),
        },
    }


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


# ---------------------------------------------------------------------------------------------------------
# Prediction runs (config predict:): nothing is planned while predict.videos_dir is null.


def predict_name():
    p = config["predict"]
    if not p["videos_dir"]:
        return None
    return p["name"] or Path(p["videos_dir"]).resolve().name


def predict_run():
    """(method, frac, seed) of the export a prediction run uses; frac and seed default to the first of
    splits.label_percents and splits.seeds."""
    p = config["predict"]
    frac = fmt_percent(p["frac"]) if p["frac"] is not None else PERCENTS[0]
    seed = str(p["seed"]) if p["seed"] is not None else SEEDS[0]
    if p["method"] == "supervised_full":
        frac = FULL
    run = (p["method"], frac, seed)
    if run not in runs():
        raise WorkflowError(
            f"config keys predict.method, predict.frac, predict.seed name the export {p['method']} at {frac} % "
            f"labels, split seed {seed}, which this config does not train; its runs are "
            + ", ".join(f"{m} {q} % seed {s}" for m, q, s in runs())
        )
    return run


def predict_videos():
    """The video files of predict.videos_dir (finepseudo.export.videos.list_videos): each is an input."""
    folder = config["predict"]["videos_dir"]
    try:
        return [item.path for item in list_videos(folder)]
    except (FileNotFoundError, ValueError) as exc:
        raise WorkflowError(f"config key predict.videos_dir: {exc}")


def get_predict_outputs(wildcards=None):
    """The prediction run's table and page, when predict.videos_dir is set (the report shows its page)."""
    name = predict_name()
    if name is None:
        return []
    return [
        f"results/{DATASET}/predict/{name}/{f}"
        for f in ("predictions.tsv", "page.html")
    ]


def get_predict_inputs(wc):
    name = predict_name()
    if name is None:
        raise WorkflowError(
            "set config key predict.videos_dir (a folder of videos) to predict, e.g. "
            "--config 'predict={videos_dir: my_videos}'"
        )
    if wc.name != name:
        raise WorkflowError(
            f"results/{DATASET}/predict/{wc.name}/ is not this config's prediction run: predict.name is "
            f"{name!r} (predict.videos_dir's folder name when null); set predict.name: {wc.name}"
        )
    inputs = {"export": export_dir(*predict_run()), "videos": predict_videos()}
    if config["predict"]["ranges"]:
        inputs["ranges"] = config["predict"]["ranges"]
    return inputs


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
            "export": export_dir(*predict_run()),
        },
        code=code("predict_videos"),
    script:
        "../scripts/predict_videos.py"
