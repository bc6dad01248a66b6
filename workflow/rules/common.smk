# Config validation, wildcard constraints and the input functions of the rules. Read first by the Snakefile.
# The library computes everything here: what the config plans (finepseudo.plan), where files go
# (finepseudo.layout), what each job reads (finepseudo.inputs) and how much memory it asks for
# (finepseudo.resources). This file binds them to the config and to the few Snakemake objects they need.
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from finepseudo import inputs as job_inputs, layout, plan  # noqa: E402
from finepseudo.config import ConfigError, validate_config  # noqa: E402
from finepseudo.data.datasets import FORMATS  # noqa: E402
from finepseudo.plan import FULL, avml_variant  # noqa: E402
from finepseudo.provenance import code_digest  # noqa: E402
from finepseudo.registry import PSEUDO_METHODS  # noqa: E402
from finepseudo.resources import mem_mb  # noqa: E402

try:
    validate_config(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
except ConfigError as exc:
    raise WorkflowError(str(exc))


def _sorted_keys(value):
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    return value


# Snakemake records a rule's params by repr(), in which a dict's key order counts: with the config's keys
# sorted, reordering keys in a config file re-runs nothing (tests/test_provenance.py).
_canonical = _sorted_keys(config)
config.clear()
config.update(_canonical)

DATASET = config["dataset"]["name"]
SRC = Path(workflow.basedir) / "src"


def code(script):
    """``params: code=`` of a rule: digest of its script and of every library module the script imports,
    directly or not (finepseudo.provenance). Editing a module changes the params of exactly the rules
    that run it, so they, and what depends on them, are planned again; the between-workflow cache key
    changes with it. Each rule's other params are one named dict, ``settings`` (Snakemake compares
    params as a set of unnamed values, so two scalars could swap values and hide a change).
    """
    return code_digest(
        Path(workflow.basedir) / "workflow/scripts" / f"{script}.py", SRC
    )


# torch runs on a GPU when device is cuda; only then do training rules ask the scheduler for one.
GPU = 1 if config["device"] == "cuda" else 0
PERCENTS, SEEDS = plan.percents(config), plan.seeds(config)
ROUNDS = plan.rounds(config)
TRIVIAL = plan.trivial_baselines(config)


def runs():
    return plan.runs(config)


def methods():
    return plan.methods(config)


def avml_variants():
    return plan.avml_variants(config)


def predict_name():
    return plan.predict_name(config)


def job_mem_mb(kind, train=True):
    """``resources: mem_mb`` of a job of ``kind`` (finepseudo.resources.mem_mb), by retry attempt."""
    return lambda wc, attempt: mem_mb(config, kind, train, attempt)


def stage_seed(stage, wc=None):
    """The seed of a training stage (finepseudo.plan.STAGE_SEEDS) for a job's split seed and round."""
    per = plan.STAGE_SEEDS[stage].per
    split = wc.seed if per != "dataset" else None
    return plan.stage_seed(
        config, stage, split, wc["round"] if per == "round" else None
    )


def path(template, wc=None, **fields):
    """A path of the results layout (a finepseudo.layout template) for this dataset: its fields from
    ``fields``, else from ``wc`` (a job's wildcards, or any object with those attributes).
    """
    return job_inputs.path(config, template, wc, **fields)


def baseline_dir(baseline):
    """The run folder pattern of a trivial baseline (wildcards dataset, frac, seed)."""
    return layout.partial(layout.BASELINE_DIR, baseline=baseline)


CLASSES, MANIFEST = path(layout.CLASSES), path(layout.MANIFEST)


wildcard_constraints:
    dataset=DATASET,
    frac=r"\d+(\.\d+)?",
    seed=r"\d+",
    shard=r"\d+",
    method=r"[a-z_]+",
    init="gitdl|scratch",
    loss="av|at|score",
    round=r"\d+",


def _library(function, *args):
    """``function(config, *args)`` (finepseudo.inputs), a config that cannot give a job's inputs as a WorkflowError."""
    try:
        return function(config, *args)
    except job_inputs.InputError as exc:
        raise WorkflowError(str(exc))


def inputs(name):
    """The input function of a rule: finepseudo.inputs.<name> for the job's wildcards, e.g.
    ``input: unpack(inputs("retrain_fe"))`` (a rule's named inputs) or ``fa=inputs("previous_fa")`` (a path).
    """
    return lambda wildcards=None: _library(getattr(job_inputs, name), wildcards)


get_shards, get_shard_indexes = inputs("shards"), inputs("shard_indexes")
get_model_path, get_exports = inputs("model_path"), inputs("exports")
get_alignability_outputs = inputs("alignability_outputs")
get_predict_outputs = inputs("predict_outputs")


def videos_dir():
    return job_inputs.videos_dir(config)


def predict_export():
    """The export folder of the prediction run (params of predict_videos)."""
    return _library(job_inputs.predict_export)


def get_frames_inputs(wildcards):
    """extract_frames' inputs (finepseudo.inputs.extract_frames): a real dataset's are read from the manifest,
    which build_manifest, a checkpoint, writes."""
    if DATASET == "synthdive":
        return job_inputs.extract_frames(config, wildcards)
    manifest = checkpoints.build_manifest.get(dataset=DATASET).output.manifest
    return job_inputs.extract_frames(config, wildcards, manifest)


def get_final_metrics(wildcards):
    return [
        f"results/{DATASET}/eval/{m}/frac{p}_seed{s}/metrics.json" for m, p, s in runs()
    ]


def get_pseudo_quality(wildcards):
    return [
        f"results/{DATASET}/methods/{m}/frac{p}_seed{s}/pseudo_quality.tsv"
        for m, p, s in runs()
        if m in PSEUDO_METHODS
    ]


def get_round_metrics(wildcards):
    """Test accuracy of f_E after every round (the method's result is the round chosen on validation)."""
    return [
        f"results/{DATASET}/eval/{m}/frac{p}_seed{s}/round{r}/metrics.json"
        for m, p, s in runs()
        if m in PSEUDO_METHODS
        for r in ROUNDS
    ]


def get_round_info(wildcards):
    """What every round of every pseudo-labeling run used (pseudo_label's JSON: T_E, weights, theta, ...)."""
    return [
        f"{run_dir_of(m, p, s)}/round{r}/pseudo_labels.json"
        for m, p, s in runs()
        if m in PSEUDO_METHODS
        for r in ROUNDS
    ]


def get_hparams(wildcards):
    """Each pseudo-labeling run's chosen hyper-parameters and candidate tables (for the report)."""
    return [
        f"results/{DATASET}/methods/{m}/frac{p}_seed{s}/{name}"
        for m, p, s in runs()
        if m in PSEUDO_METHODS
        for name in ("hparams.json", "hparams_candidates.tsv", "round_selection.tsv")
    ]


def get_calibration(wildcards, name="calibration.tsv"):
    """Validation calibration tables of every pseudo-labeling run (select_hparams writes them)."""
    return [
        f"results/{DATASET}/methods/{m}/frac{p}_seed{s}/{name}"
        for m, p, s in runs()
        if m in PSEUDO_METHODS
    ]


def trivial_outputs(name):
    """The trivial_baselines output list of file ``name`` (metrics.json, per_class.tsv, ...), one per baseline in
    the order of TRIVIAL (the rule's settings carry that order to the script)."""
    return [
        f"results/{{dataset}}/baselines/{b}/frac{{frac}}_seed{{seed}}/{name}"
        for b in TRIVIAL
    ]


def get_trivial_files(wildcards, name="metrics.json"):
    """A file of every trivial baseline at every label fraction and seed (for the report)."""
    return [
        f"results/{DATASET}/baselines/{b}/frac{p}_seed{s}/{name}"
        for b in TRIVIAL
        for p in PERCENTS
        for s in SEEDS
    ]


def get_report_inputs(wildcards):
    inputs = {
        "manifest": f"results/{DATASET}/manifest.tsv",
        "classes": f"results/{DATASET}/classes.tsv",
        "metrics": get_final_metrics(wildcards),
        "predictions": [
            f.replace("metrics.json", "predictions.tsv")
            for f in get_final_metrics(wildcards)
        ],
        "calibration": get_calibration(wildcards),
        "reliability": get_calibration(wildcards, "reliability.tsv"),
        "frame_status": get_shard_indexes(wildcards),
        "shards": get_shards(wildcards),
        "alignability": get_alignability_outputs(wildcards),
        "pseudo_quality": get_pseudo_quality(wildcards),
        "round_metrics": get_round_metrics(wildcards),
        "hparams": get_hparams(wildcards),
        "round_info": get_round_info(wildcards),
        "baselines": get_trivial_files(wildcards),
        "baseline_predictions": get_trivial_files(wildcards, "predictions.tsv"),
    }
    if DATASET == "synthdive":
        inputs["synthdive_summary"] = "results/synthdive/raw/summary.json"
    # files the report reads next to the ones above (a run's confusion matrix, the training history of
    # its f_E; every round's, since the round is chosen at run time), and every job's benchmark file
    inputs["confusion"] = [
        f.replace("metrics.json", "confusion.tsv") for f in get_final_metrics(wildcards)
    ]
    inputs["histories"] = get_histories()
    inputs["benchmark_files"] = get_benchmark_files()
    runs_ = [
        f"results/{DATASET}/alignability/frac{p}_seed{s}"
        for p in PERCENTS
        for s in SEEDS
    ]
    inputs["alignability_extra"] = [
        f"{r}/{name}"
        for r in runs_
        for name in ("phase_agreement.tsv", "alignment_example.npz")
    ]
    inputs["test_splits"] = [
        f"results/{DATASET}/splits/frac{p}_seed{s}/test.tsv"
        for p in PERCENTS
        for s in SEEDS
    ]
    # the exported models (workflow/rules/export.smk), and the configured prediction run's table and page
    inputs["exports"] = get_exports()
    inputs["predict"] = get_predict_outputs()
    return inputs


def get_histories():
    """fe.history.tsv of every f_E a reported method may be evaluated with."""
    out = []
    for m, p, s in runs():
        if m in PSEUDO_METHODS:
            out += [f"{run_dir_of(m, p, s)}/round{r}/fe.history.tsv" for r in ROUNDS]
        else:
            model = get_model_path(SimpleNamespace(method=m, frac=p, seed=s))
            out.append(model.replace("fe.pt", "fe.history.tsv"))
    return sorted(set(out))


def run_dir_of(method, frac, seed):
    return f"results/{DATASET}/methods/{method}/frac{frac}_seed{seed}"


def get_benchmark_files():
    """The ``benchmark:`` file of every job the report depends on (the report reads these, not a folder,
    so files left by an earlier config are not mixed in). tests/test_workflow.py checks that the list
    matches the files the jobs wrote."""
    b, d = "results/benchmarks", DATASET
    out = []
    splits = [(p, s) for p in PERCENTS for s in SEEDS]
    sup = set(splits)
    if "supervised_full" in methods():
        sup |= {(FULL, s) for s in SEEDS}
    if config["fe"]["init"] == "ssl":
        out.append(f"{b}/pretrain_fe/{d}.tsv")
    out += [f"{b}/train_fe/{d}/supervised/frac{p}_seed{s}.tsv" for p, s in sorted(sup)]
    out += [
        f"{b}/train_fe/{d}/supervised_scratch/frac{p}_seed{s}.tsv"
        for m, p, s in runs()
        if m == "supervised_scratch"
    ]
    out += [
        f"{b}/evaluate_fe/{d}/{m}/frac{p}_seed{s}.tsv"
        for m, p, s in runs()
        if m not in PSEUDO_METHODS
    ]
    variants = avml_variants()
    out += [f"{b}/pretrain_gitdl/{d}/{i}.tsv" for i in sorted({i for _, i in variants})]
    for p, s in splits:
        out += [
            f"{b}/mine_pairs/{d}/frac{p}_seed{s}_{i}.tsv"
            for i in sorted({i for _, i in variants})
        ]
        out += [
            f"{b}/train_alignability/{d}/frac{p}_seed{s}_{loss}_{i}.tsv"
            for loss, i in variants
        ]
        out += [
            f"{b}/{rule}/{d}/frac{p}_seed{s}.tsv"
            for rule in (
                "predict_alignability",
                "pair_verification",
                "trivial_baselines",
            )
        ]
    for m, p, s in runs():
        if m not in PSEUDO_METHODS:
            continue
        out.append(f"{b}/select_hparams/{d}/{m}/frac{p}_seed{s}.tsv")
        for r in ROUNDS:
            out += [
                f"{b}/{rule}/{d}/{m}/frac{p}_seed{s}_round{r}.tsv"
                for rule in ("pseudo_label", "retrain_fe")
            ]
            if PSEUDO_METHODS[m].source != "fe" and r < ROUNDS[-1]:
                out.append(f"{b}/retrain_fa/{d}/{m}/frac{p}_seed{s}_round{r}.tsv")
    for m, p, s in runs():
        if m in PSEUDO_METHODS:
            out += [
                f"{b}/{r}/{d}/{m}/frac{p}_seed{s}.tsv"
                for r in ("pseudo_quality", "select_round")
            ]
            out += [
                f"{b}/evaluate_round/{d}/{m}/frac{p}_seed{s}_round{r}.tsv"
                for r in ROUNDS
            ]
    out += [f"{b}/make_splits/{d}/frac{p}_seed{s}.tsv" for p, s in sorted(sup)]
    out.append(f"{b}/build_manifest/{d}.tsv")
    out += [f"{b}/export_model/{d}/{m}/frac{p}_seed{s}.tsv" for m, p, s in runs()]
    if predict_name() is not None:
        out.append(f"{b}/predict_videos/{d}/{predict_name()}.tsv")
    return sorted(set(out))
