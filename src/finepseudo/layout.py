"""The results layout: where every file of a run lives.

Pure Python (no Snakemake, no torch): the workflow's rules build their outputs and inputs from these
templates, and so does the report's plan (workflow/rules/report_inputs.smk), which tells the report what
each file is, so nothing needs to read a path back into its fields. Every template is a ``str.format``
pattern whose ``{names}`` are Snakemake's wildcards, so a rule uses it as is
(``output: f"{EVAL_DIR}/metrics.json"``) and Python code fills it with :func:`fill`
(``fill(EVAL_DIR, dataset="synthdive", method="pl", frac="10", seed="0")``).

The tree, under ``results/``::

    <dataset>/manifest.tsv, classes.tsv
    <dataset>/frames/shard<k>.npy, shard<k>.status.tsv        the frame store and each shard's index
    <dataset>/splits/frac<P>_seed<S>/                          labeled / val / unlabeled / test tables
    <dataset>/models/ssl/fe_ssl.pt                              self-supervised f_E
    <dataset>/models/<sup>/frac<P>_seed<S>/fe.pt               supervised f_E (sup: supervised, supervised_scratch)
    <dataset>/alignability/pretrained/<init>_fa.pt             GITDL f_A (init: gitdl, scratch)
    <dataset>/alignability/frac<P>_seed<S>/                    mined pairs, AVML f_A, phi_A tables
    <dataset>/methods/<method>/frac<P>_seed<S>/[round<r>/]     a pseudo-labeling run and its rounds
    <dataset>/eval/<method>/frac<P>_seed<S>/[round<r>/]        test (and validation) metrics
    <dataset>/baselines/<baseline>/frac<P>_seed<S>/            trivial baselines' metrics
    <dataset>/export/<method>/frac<P>_seed<S>/                 exported models
    <dataset>/predict/<name>/                                  prediction runs
    logs/<dataset>/<rule>/<job>.log, benchmarks/<rule>/<dataset>/<job>.tsv

``<P>`` is the label percent as :func:`finepseudo.plan.fmt_percent` writes it (``10``, ``2.5``), ``<S>`` the
split seed. A run folder's name, ``frac<P>_seed<S>``, is spelled in one place: :data:`RUN`.
"""

from __future__ import annotations

import string

__all__ = [
    "RESULTS", "RUN", "ROUND", "DATASET_DIR", "MANIFEST", "CLASSES", "SHARD", "SHARD_INDEX", "SPLIT_DIR",
    "SSL_FE", "SUPERVISED_DIR", "PRETRAINED_FA", "ALIGN_DIR", "AVML_FA", "RUN_DIR", "ROUND_DIR", "EVAL_DIR",
    "EVAL_ROUND_DIR", "BASELINE_DIR", "EXPORT_DIR", "PREDICT_DIR", "SYNTHDIVE_RAW", "ROUND_JOB",
    "log", "benchmark", "wildcards", "fill", "partial",
]

RESULTS = "results"

#: A run folder: one label percent and split seed (wildcards ``frac`` and ``seed``).
RUN = "frac{frac}_seed{seed}"
#: A round's folder inside a pseudo-labeling run (wildcard ``round``).
ROUND = "round{round}"

DATASET_DIR = f"{RESULTS}/{{dataset}}"
MANIFEST = f"{DATASET_DIR}/manifest.tsv"
CLASSES = f"{DATASET_DIR}/classes.tsv"
#: A frame shard (uint8 array) and its shard index, one row per video (finepseudo.data.frames).
SHARD = f"{DATASET_DIR}/frames/shard{{shard}}.npy"
SHARD_INDEX = f"{DATASET_DIR}/frames/shard{{shard}}.status.tsv"
SPLIT_DIR = f"{DATASET_DIR}/splits/{RUN}"
SSL_FE = f"{DATASET_DIR}/models/ssl/fe_ssl.pt"
#: f_E trained on the labeled split alone (``sup``: supervised | supervised_scratch).
SUPERVISED_DIR = f"{DATASET_DIR}/models/{{sup}}/{RUN}"
#: f_A after GITDL pre-training, shared by every split (``init``: gitdl | scratch).
PRETRAINED_FA = f"{DATASET_DIR}/alignability/pretrained/{{init}}_fa.pt"
ALIGN_DIR = f"{DATASET_DIR}/alignability/{RUN}"
#: The AVML f_A (+ f_S) of a split (``loss``: av | at | score).
AVML_FA = f"{ALIGN_DIR}/avml_{{loss}}_{{init}}_fa.pt"
#: A pseudo-labeling run of a method, and one of its rounds.
RUN_DIR = f"{DATASET_DIR}/methods/{{method}}/{RUN}"
ROUND_DIR = f"{RUN_DIR}/{ROUND}"
EVAL_DIR = f"{DATASET_DIR}/eval/{{method}}/{RUN}"
EVAL_ROUND_DIR = f"{EVAL_DIR}/{ROUND}"
BASELINE_DIR = f"{DATASET_DIR}/baselines/{{baseline}}/{RUN}"
EXPORT_DIR = f"{DATASET_DIR}/export/{{method}}/{RUN}"
PREDICT_DIR = f"{DATASET_DIR}/predict/{{name}}"
#: SynthDive's generated videos and annotations (not per dataset name: it is the dataset).
SYNTHDIVE_RAW = f"{RESULTS}/synthdive/raw"

#: The job name of a round in logs and benchmarks (``frac<P>_seed<S>_round<r>``; a run's is :data:`RUN`).
ROUND_JOB = f"{RUN}_{ROUND}"


def log(rule: str, job: str | None = None) -> str:
    """A rule's log: ``results/logs/{dataset}/<rule>/<job>.log``, or ``.../<rule>.log`` for one job per dataset."""
    return f"{RESULTS}/logs/{{dataset}}/{rule}" + (f"/{job}.log" if job else ".log")


def benchmark(rule: str, job: str | None = None) -> str:
    """A rule's benchmark: ``results/benchmarks/<rule>/{dataset}/<job>.tsv``, or ``.../<rule>/{dataset}.tsv``."""
    return f"{RESULTS}/benchmarks/{rule}/{{dataset}}" + (f"/{job}.tsv" if job else ".tsv")


def wildcards(template: str) -> set[str]:
    """The ``{names}`` of a template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def fill(template: str, **fields) -> str:
    """``template`` with every ``{name}`` replaced by ``fields[name]`` (all of them required, so a missing field
    is an error rather than a path with braces in it)."""
    names = wildcards(template)
    missing = names - set(fields)
    if missing:
        raise KeyError(f"{template}: no value for {', '.join(sorted(missing))}")
    return template.format(**{k: v for k, v in fields.items() if k in names})


class _Keep(dict):
    def __missing__(self, name):
        return "{" + name + "}"


def partial(template: str, **fields) -> str:
    """``template`` with the given fields filled in and every other ``{name}`` kept, as a Snakemake pattern:
    ``partial(BASELINE_DIR, baseline="pixel_dtw")`` -> ``results/{dataset}/baselines/pixel_dtw/frac{frac}_seed{seed}``."""
    unknown = set(fields) - wildcards(template)
    if unknown:
        raise KeyError(f"{template}: no field {', '.join(sorted(unknown))}")
    return template.format_map(_Keep(fields))
