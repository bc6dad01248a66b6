"""The input files of the workflow's jobs: what each rule's job reads, given the config and the job's wildcards.

Python and pandas (no Snakemake, no torch): the rules' input functions in ``workflow/rules/common.smk`` call these
(``input: unpack(inputs("retrain_fe"))`` calls :func:`retrain_fe` with the config and the job's wildcards),
and tests call them directly. Each function takes the validated config (``finepseudo.config.validate_config``)
and, where a job's files depend on it, ``wc``: the job's wildcards, as a mapping (``{"method": "pl", "frac":
"10", "seed": "0", "round": "2"}``) or an object with those attributes (Snakemake's wildcards, a
``SimpleNamespace``). Functions named after a rule return that rule's named inputs (a dict, for ``unpack``);
the others return one path or a list of paths. Paths come from the results layout (:mod:`finepseudo.layout`)
and the plan (:mod:`finepseudo.plan`).

A config that cannot provide a job's inputs (a real dataset without its annotation files named, a prediction
run the config does not train) raises :class:`InputError`, whose message names the config keys to set; the
workflow reports it as a Snakemake ``WorkflowError``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from finepseudo import layout, plan
from finepseudo.data.datasets import ANNOTATION_KEYS, FORMATS
from finepseudo.export.videos import list_videos
from finepseudo.registry import PSEUDO_METHODS

__all__ = [
    "InputError", "path", "split_file", "videos_dir", "shards", "shard_indexes", "fe_weights", "model_path",
    "previous_fe", "fa_of_round", "previous_fa", "exports", "predict_outputs",
    "predict_export", "predict_video_files", "build_manifest", "extract_frames", "shard_videos", "train_fe",
    "retrain_fe", "pseudo_label", "select_hparams", "select_round", "trivial_baselines", "pair_verification",
    "export_model", "predict_videos",
]


class InputError(ValueError):
    """The config cannot provide a job's inputs; the message says which config keys to set."""


def _field(wc, name: str):
    """The wildcard ``name`` of ``wc`` (a mapping or an object with attributes)."""
    return wc[name] if isinstance(wc, Mapping) else getattr(wc, name)


def _dataset(config: dict) -> str:
    return config["dataset"]["name"]


# ---------------------------------------------------------------------------------------------------------
# Paths shared by several rules


def path(config: dict, template: str, wc=None, **fields) -> str:
    """A path of the results layout (a :mod:`finepseudo.layout` template) for the config's dataset: its fields
    from ``fields``, else from ``wc`` (a job's wildcards)."""
    values = {"dataset": _dataset(config), **fields}
    for name in layout.wildcards(template) - set(values):
        values[name] = _field(wc, name)
    return layout.fill(template, **values)


def split_file(config: dict, wc, name: str) -> str:
    """A table of the job's split (labeled.tsv, val.tsv, unlabeled.tsv, test.tsv, ...)."""
    return f"{path(config, layout.SPLIT_DIR, wc)}/{name}"


def videos_dir(config: dict) -> str:
    """The dataset's videos: SynthDive's generated folder, else ``dataset.videos_dir``."""
    if _dataset(config) == "synthdive":
        return f"{layout.SYNTHDIVE_RAW}/videos"
    return config["dataset"]["videos_dir"]


# Every rule that reads frames declares both the shard arrays and their shard indexes: the store reads each
# array through its index (finepseudo.data.frames.FrameStore).
def shards(config: dict, wc=None) -> list[str]:
    """Every frame shard of the dataset."""
    return [path(config, layout.SHARD, shard=k) for k in range(config["frames"]["shards"])]


def shard_indexes(config: dict, wc=None) -> list[str]:
    """The index (status table) of every frame shard."""
    return [path(config, layout.SHARD_INDEX, shard=k) for k in range(config["frames"]["shards"])]


def _frames(config: dict) -> dict:
    return {"shards": shards(config), "shard_index": shard_indexes(config)}


def fe_weights(config: dict, wc=None) -> list[str]:
    """The user's ``fe.weights`` file (read by every f_E initialisation) as an input, or none."""
    w = config["fe"]["weights"]
    return [w] if w else []


def model_path(config: dict, wc) -> str:
    """The f_E checkpoint a supervised method (wildcards method, frac, seed) is evaluated with."""
    sup, frac = _field(wc, "method"), _field(wc, "frac")
    if sup == "supervised_full":
        if frac != plan.FULL:
            raise InputError("supervised_full is defined at 100 % labels only (frac100)")
        sup = "supervised"
    return f"{path(config, layout.SUPERVISED_DIR, wc, sup=sup, frac=frac)}/fe.pt"


def previous_fe(config: dict, wc) -> str:
    """f_E of round r-1: the supervised warm-up for round 1."""
    r = int(_field(wc, "round"))
    if r == 1:
        return f"{path(config, layout.SUPERVISED_DIR, wc, sup='supervised')}/fe.pt"
    return f"{path(config, layout.ROUND_DIR, wc, round=r - 1)}/fe.pt"


def fa_of_round(config: dict, method: str, frac: str, seed: str, r: int) -> str:
    """The f_A (+ f_S) that pseudo-labeled round r of a method: round r-1's, the AVML model's for round 1."""
    if r == 1:
        loss, init = plan.avml_variant(method)
        return path(config, layout.AVML_FA, frac=frac, seed=seed, loss=loss, init=init)
    run = path(config, layout.ROUND_DIR, method=method, frac=frac, seed=seed, round=r - 1)
    return f"{run}/fa.pt"


def previous_fa(config: dict, wc) -> str:
    """f_A (+ f_S) of round r-1 (retrain_fa's input): the AVML model of the method's variant for round 1."""
    return fa_of_round(config, _field(wc, "method"), _field(wc, "frac"), _field(wc, "seed"), int(_field(wc, "round")))


def exports(config: dict, wc=None) -> list[str]:
    """The export folder of every run the config trains."""
    return [path(config, layout.EXPORT_DIR, method=m, frac=p, seed=s) for m, p, s in plan.runs(config)]


def predict_outputs(config: dict, wc=None) -> list[str]:
    """The prediction run's table and page, when predict.videos_dir is set; else none."""
    name = plan.predict_name(config)
    if name is None:
        return []
    run = path(config, layout.PREDICT_DIR, name=name)
    return [f"{run}/{f}" for f in ("predictions.tsv", "page.html")]


def predict_export(config: dict) -> str:
    """The export folder a prediction run uses (:func:`finepseudo.plan.predict_run`)."""
    try:
        method, frac, seed = plan.predict_run(config)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    return path(config, layout.EXPORT_DIR, method=method, frac=frac, seed=seed)


def predict_video_files(config: dict) -> list[str]:
    """The video files of predict.videos_dir (:func:`finepseudo.export.videos.list_videos`): each is an input."""
    folder = config["predict"]["videos_dir"]
    try:
        return [item.path for item in list_videos(folder)]
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(f"config key predict.videos_dir: {exc}") from exc


# ---------------------------------------------------------------------------------------------------------
# The named inputs of a rule's job (one function per rule, named after it)


def build_manifest(config: dict, wc=None) -> dict:
    """Annotation files: SynthDive's are generated by a rule, real datasets' are the official files the
    dataset's format reads (:data:`finepseudo.data.datasets.ANNOTATION_KEYS`), named in the config."""
    dataset = _dataset(config)
    if dataset == "synthdive":
        ann = f"{layout.SYNTHDIVE_RAW}/annotations"
        return {
            "train_annotations": f"{ann}/train.json",
            "test_annotations": f"{ann}/test.json",
            "vocab": f"{ann}/vocab.json",
            "videos": videos_dir(config),
        }
    ds = config["dataset"]
    keys = ("videos_dir",) + ANNOTATION_KEYS[FORMATS[dataset]]
    missing = [k for k in keys if not ds.get(k)]
    if missing:
        raise InputError(
            f"dataset.name is {dataset!r} ({FORMATS[dataset]} format): set config key(s) "
            + ", ".join(f"dataset.{k}" for k in missing)
            + " (see config/presets/ for examples)"
        )
    return {k: ds[k] for k in ANNOTATION_KEYS[FORMATS[dataset]]}


def shard_videos(manifest: str, shard) -> list[str]:
    """The video files (or frame folders) the manifest assigns to ``shard``, sorted."""
    table = pd.read_csv(manifest, sep="\t", usecols=["path", "shard"], dtype={"path": str})
    return sorted(set(table.loc[table["shard"] == int(shard), "path"]))


def extract_frames(config: dict, wc, manifest: str | None = None) -> dict:
    """The manifest, plus the videos the shard decodes: SynthDive's generated folder, or a real dataset's video
    files (or FineDiving's frame folders) of this shard, read from ``manifest`` (the written manifest: the
    workflow gets it from the build_manifest checkpoint), so that replacing a video re-extracts its shard only."""
    if _dataset(config) == "synthdive":
        return {"manifest": path(config, layout.MANIFEST), "videos": videos_dir(config)}
    if manifest is None:
        raise ValueError("a real dataset's extract_frames inputs are read from its manifest: give manifest")
    return {"manifest": manifest, "videos": shard_videos(manifest, _field(wc, "shard"))}


def train_fe(config: dict, wc) -> dict:
    """Labeled split, classes, frames and, for fe.init ssl, the self-supervised checkpoint
    (supervised_scratch always starts from the random initialisation)."""
    inputs = {"labeled": split_file(config, wc, "labeled.tsv"), "classes": path(config, layout.CLASSES)}
    inputs |= _frames(config)
    if config["fe"]["init"] == "ssl" and _field(wc, "sup") == "supervised":
        inputs["init"] = path(config, layout.SSL_FE)
    inputs["weights"] = fe_weights(config)
    return inputs


def retrain_fe(config: dict, wc) -> dict:
    """Round r-1's f_E, the split, the round's pseudo-labels and, for fe.init ssl, f_E's initialisation."""
    inputs = {
        "fe": previous_fe(config, wc),
        "labeled": split_file(config, wc, "labeled.tsv"),
        "pseudo": f"{path(config, layout.ROUND_DIR, wc)}/pseudo_labels.tsv",
    }
    inputs |= _frames(config)
    if config["fe"]["init"] == "ssl" and config["pseudo"]["fe"]["init"] == "fixed":
        inputs["init"] = path(config, layout.SSL_FE)
    inputs["weights"] = fe_weights(config)
    return inputs


def pseudo_label(config: dict, wc) -> dict:
    """Round r-1's encoders, the method's hyper-parameters, the split and the classes."""
    inputs = {
        "fe": previous_fe(config, wc),
        "hparams": f"{path(config, layout.RUN_DIR, wc)}/hparams.json",
        "labeled": split_file(config, wc, "labeled.tsv"),
        "val": split_file(config, wc, "val.tsv"),
        "unlabeled": split_file(config, wc, "unlabeled.tsv"),
        "classes": path(config, layout.CLASSES),
    }
    inputs |= _frames(config)
    if plan.uses_phi_a(_field(wc, "method")):
        inputs["fa"] = previous_fa(config, wc)
    return inputs


def select_hparams(config: dict, wc) -> dict:
    """The round-0 encoders of a method (never trained on the validation videos) and the split."""
    inputs = {
        "fe": f"{path(config, layout.SUPERVISED_DIR, wc, sup='supervised')}/fe.pt",
        "labeled": split_file(config, wc, "labeled.tsv"),
        "val": split_file(config, wc, "val.tsv"),
        "classes": path(config, layout.CLASSES),
    }
    inputs |= _frames(config)
    method = _field(wc, "method")
    if plan.uses_phi_a(method):
        inputs["fa"] = fa_of_round(config, method, _field(wc, "frac"), _field(wc, "seed"), 1)
    return inputs


def select_round(config: dict, wc) -> dict:
    """Validation metrics of every round (to choose) and the rounds' test outputs (to copy)."""
    inputs = {"hparams": f"{path(config, layout.RUN_DIR, wc)}/hparams.json"}
    for r in plan.rounds(config):
        ev = path(config, layout.EVAL_ROUND_DIR, wc, round=r)
        inputs[f"val_round{r}"] = f"{ev}/val_metrics.json"
        for key in ("metrics.json", "per_class.tsv", "confusion.tsv", "predictions.tsv"):
            inputs[f"{key.split('.')[0]}_round{r}"] = f"{ev}/{key}"
    return inputs


def trivial_baselines(config: dict, wc) -> dict:
    """The split's labeled gallery and test videos, their frames, phi_A's test table and, with fe.init ssl,
    the self-supervised f_E (never val.tsv nor the unlabeled videos)."""
    inputs = {
        "labeled": split_file(config, wc, "labeled.tsv"),
        "test": split_file(config, wc, "test.tsv"),
        "classes": path(config, layout.CLASSES),
        "pa_test": f"{path(config, layout.ALIGN_DIR, wc)}/pA_test.tsv",
    }
    inputs |= _frames(config)
    if "ssl_probe" in plan.trivial_baselines(config):
        inputs["ssl"] = path(config, layout.SSL_FE)
    return inputs


def pair_verification(config: dict, wc) -> dict:
    """GITDL's and the default AVML f_A, the split's test videos, the manifest and, for SynthDive, its phases."""
    inputs = {
        "gitdl": path(config, layout.PRETRAINED_FA, init="gitdl"),
        "avml": f"{path(config, layout.ALIGN_DIR, wc)}/avml_av_gitdl_fa.pt",
        "test": split_file(config, wc, "test.tsv"),
        "manifest": path(config, layout.MANIFEST),
    }
    inputs |= _frames(config)
    if _dataset(config) == "synthdive":
        inputs["phases"] = f"{layout.SYNTHDIVE_RAW}/annotations/phases.json"
    return inputs


def export_model(config: dict, wc) -> dict:
    """The evaluation the report scores (metrics.json names its f_E; predictions give the interval), every f_E it
    may name (each round's, since the round is chosen at run time), the split's validation videos (p_E's
    temperature) and labeled videos (phi_A's gallery), and for phi_A methods each round's f_A and the method's tau.
    """
    ev = path(config, layout.EVAL_DIR, wc)
    inputs = {
        "metrics": f"{ev}/metrics.json",
        "predictions": f"{ev}/predictions.tsv",
        "classes": path(config, layout.CLASSES),
        "labeled": split_file(config, wc, "labeled.tsv"),
        "val": split_file(config, wc, "val.tsv"),
    }
    inputs |= _frames(config)
    method = _field(wc, "method")
    rounds = plan.rounds(config)
    if method in PSEUDO_METHODS:
        inputs["models"] = [f"{path(config, layout.ROUND_DIR, wc, round=r)}/fe.pt" for r in rounds]
        inputs["hparams"] = f"{path(config, layout.RUN_DIR, wc)}/hparams.json"
        if plan.uses_phi_a(method):
            frac, seed = _field(wc, "frac"), _field(wc, "seed")
            inputs["fa_models"] = [fa_of_round(config, method, frac, seed, r) for r in rounds]
    else:
        inputs["models"] = [model_path(config, wc)]
    return inputs


def predict_videos(config: dict, wc) -> dict:
    """The export a prediction run uses, the videos it predicts and predict.ranges' table (when set)."""
    name = plan.predict_name(config)
    if name is None:
        raise InputError(
            "set config key predict.videos_dir (a folder of videos) to predict, e.g. "
            "--config 'predict={videos_dir: my_videos}'"
        )
    if _field(wc, "name") != name:
        raise InputError(
            f"{path(config, layout.PREDICT_DIR, name=_field(wc, 'name'))}/ is not this config's prediction run: "
            f"predict.name is {name!r} (predict.videos_dir's folder name when null); set predict.name: "
            f"{_field(wc, 'name')}"
        )
    inputs = {"export": predict_export(config), "videos": predict_video_files(config)}
    if config["predict"]["ranges"]:
        inputs["ranges"] = config["predict"]["ranges"]
    return inputs
