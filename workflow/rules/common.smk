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
