"""The experiment plan a config asks for: which runs, what each method means, and the seed of every stage.

Pure Python (no Snakemake, no torch), read by the workflow while it plans the DAG. Every function takes the
validated config (``finepseudo.config.validate_config``) where it depends on it. The methods themselves are
registered in :mod:`finepseudo.registry`; this module says what the registry means for a config.

The grid: label percents (``splits.label_percents``) x split seeds (``splits.seeds``) x methods (``methods``,
plus ``finepseudo_no_filter`` in the open world), with ``supervised_full`` only at :data:`FULL` percent, and
pseudo-labeling methods run for rounds 1..``pseudo.rounds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from finepseudo.registry import PSEUDO_METHODS, SUPERVISED_METHODS, TRIVIAL_BASELINES

__all__ = [
    "FULL", "fmt_percent", "percents", "seeds", "rounds", "methods", "runs", "avml_variant", "avml_variants",
    "calibrate_pe", "combine_rule", "open_world_delta", "uses_phi_a", "method_description", "trained_by", "trivial_baselines",
    "predict_name", "predict_run", "align_settings", "eval_settings", "gitdl_settings", "accept_settings",
    "fe_train_settings", "NOT_MODEL_KEYS", "model_config",
    "StageSeed", "STAGE_SEEDS", "SPLIT_STRIDE", "ROUND_STRIDE", "stage_seed",
]

#: The label percent of ``supervised_full``: the supervised method trained on 100 % of the train labels.
FULL = "100"


def fmt_percent(p) -> str:
    """A label percent as it appears in paths: 10 -> '10', 2.5 -> '2.5'."""
    return f"{float(p):g}"


def percents(config: dict) -> list[str]:
    """The configured label percents, as written in paths."""
    return [fmt_percent(p) for p in config["splits"]["label_percents"]]


def seeds(config: dict) -> list[str]:
    """The configured split seeds, as written in paths."""
    return [str(s) for s in config["splits"]["seeds"]]


def rounds(config: dict) -> list[int]:
    """The pseudo-labeling rounds 1..R."""
    return list(range(1, config["pseudo"]["rounds"] + 1))


def methods(config: dict) -> list[str]:
    """The configured methods; in the open world also FinePseudo without the novelty filter."""
    ms = list(config["methods"])
    if config["open_world"]["novel_classes"] and "finepseudo" in ms:
        ms.append("finepseudo_no_filter")
    return ms


def runs(config: dict) -> list[tuple[str, str, str]]:
    """(method, percent, seed) triples the config asks for; supervised_full only at 100 %."""
    out = []
    for method in methods(config):
        for seed in seeds(config):
            for p in [FULL] if method == "supervised_full" else percents(config):
                out.append((method, p, seed))
    return out


def avml_variant(method: str) -> tuple[str, str] | None:
    """(loss, init) of the AVML model a pseudo-labeling method's f_A starts from, or None (no f_A)."""
    return PSEUDO_METHODS[method].avml


def avml_variants(config: dict) -> list[tuple[str, str]]:
    """(loss, init) of every AVML model the config trains: the default one (pair verification and p_A tables)
    and each pseudo-labeling method's."""
    out = {("av", "gitdl")}
    out |= {avml_variant(m) for m, _, _ in runs(config) if m in PSEUDO_METHODS and avml_variant(m)}
    return sorted(out)


def calibrate_pe(config: dict, method: str) -> bool:
    """Whether a method's p_E is temperature-scaled on validation before use (not for the ablation)."""
    return bool(config["pseudo"]["calibrate"]) and PSEUDO_METHODS[method].calibrate


def combine_rule(config: dict, method: str) -> str:
    """How a method combines p_E and p_A: its fixed rule (the paper's average rows), else pseudo.combine."""
    return PSEUDO_METHODS[method].combine or config["pseudo"]["combine"]


def open_world_delta(config: dict, method: str) -> float | None:
    """delta of the open-world novelty filter for a method, or None (closed world, PL, or the
    ``*_no_filter`` comparison run). The filter needs Sbar from phi_A, so PL has none.
    """
    ow = config["open_world"]
    m = PSEUDO_METHODS[method]
    if ow["novel_classes"] == 0 or m.source == "fe" or not m.filtered:
        return None
    return ow["delta"]


def uses_phi_a(method: str) -> bool:
    """Whether a method's pseudo-labels use f_A's alignability predictions (so its rounds train f_A)."""
    return method in PSEUDO_METHODS and PSEUDO_METHODS[method].source != "fe"


def method_description(method: str) -> str:
    """What a method is, in one line."""
    if method in SUPERVISED_METHODS:
        return SUPERVISED_METHODS[method]
    return PSEUDO_METHODS[method].description


def trained_by(method: str) -> str:
    """The rule that trains the f_E a method is scored with: retrain_fe (a round) or train_fe (supervised)."""
    return "retrain_fe" if method in PSEUDO_METHODS else "train_fe"


def trivial_baselines(config: dict) -> list[str]:
    """The trivial baselines a config runs (finepseudo.registry.TRIVIAL_BASELINES, in that order): the probe of the
    self-supervised f_E only where fe.init is ssl (with scratch there is no self-supervised f_E)."""
    return [n for n in TRIVIAL_BASELINES if n != "ssl_probe" or config["fe"]["init"] == "ssl"]


def predict_name(config: dict) -> str | None:
    """The prediction run's name (predict.name, else predict.videos_dir's folder name), or None without one."""
    p = config["predict"]
    if not p["videos_dir"]:
        return None
    return p["name"] or Path(p["videos_dir"]).resolve().name


def predict_run(config: dict) -> tuple[str, str, str]:
    """(method, frac, seed) of the export a prediction run uses; frac and seed default to the first of
    splits.label_percents and splits.seeds. Raises ValueError when the config does not train that run."""
    p = config["predict"]
    frac = fmt_percent(p["frac"]) if p["frac"] is not None else percents(config)[0]
    seed = str(p["seed"]) if p["seed"] is not None else seeds(config)[0]
    if p["method"] == "supervised_full":
        frac = FULL
    run = (p["method"], frac, seed)
    if run not in runs(config):
        raise ValueError(
            f"config keys predict.method, predict.frac, predict.seed name the export {p['method']} at {frac} % "
            f"labels, split seed {seed}, which this config does not train; its runs are "
            + ", ".join(f"{m} {q} % seed {s}" for m, q, s in runs(config))
        )
    return run


# ---------------------------------------------------------------------------------------------------------
# What the rules are given: each rule's settings are the config keys it uses, and only those (so a change
# re-runs only its rules).


def align_settings(config: dict, *keys: str) -> dict:
    """The alignability settings a rule uses."""
    return {k: config["alignability"][k] for k in keys}


def eval_settings(config: dict) -> dict:
    """Settings of f_E's evaluation (evaluate_fe, evaluate_round, export_model): test-time clips and batch size."""
    return {
        "clips_per_video": config["eval"]["clips_per_video"],
        "batch_size": config["eval"]["batch_size"],
        "device": config["device"],
        "cpu_kernels": config["cpu_kernels"],
    }


def gitdl_settings(config: dict, init: str) -> dict:
    """f_A settings for a pre-training variant: ``scratch`` skips GITDL (the no-GITDL ablation)."""
    cfg = align_settings(config, "num_frames", "dim", "width", "layers", "pool", "gitdl", "gpus", "hflip", "clip_norm")
    if init == "scratch":
        cfg["gitdl"] = {**cfg["gitdl"], "epochs": 0, "steps": 0}
    return cfg


def accept_settings(config: dict) -> dict:
    """The acceptance rule of pseudo-labels (pseudolabel.accept_mask's keyword arguments)."""
    ps = config["pseudo"]
    return {"rule": ps["accept"], "min_accept": ps["min_accept"], "topk_share": ps["topk_share"]}


def fe_train_settings(config: dict) -> dict:
    """The f_E settings of supervised training (the self-supervised stage's keys excluded)."""
    return {k: v for k, v in config["fe"].items() if k != "ssl"}


#: Config keys that change no trained model: how many cores or loader processes a job uses, which runs and
#: splits exist besides this one, and prediction runs. An export's card records the rest (its config digest),
#: so an export is rerun when any of it changes.
NOT_MODEL_KEYS = ("threads", "methods", "splits", "predict")


def model_config(config: dict) -> dict:
    """The config a trained model depends on, as recorded in its export's card."""
    cfg = {k: v for k, v in config.items() if k not in NOT_MODEL_KEYS}
    cfg["frames"] = {k: v for k, v in cfg["frames"].items() if k != "workers"}
    return cfg


# ---------------------------------------------------------------------------------------------------------
# Stage seeds


class StageSeed(NamedTuple):
    """How a training stage's seed derives from the config's ``seed``: ``seed + offset``, plus
    ``SPLIT_STRIDE x split seed`` for stages run per split (``per`` split or round) and ``ROUND_STRIDE x round``
    for stages run per round."""

    offset: int
    per: str  # "dataset" (once per dataset), "split" (per label percent and split seed), "round"


#: Seed strides: every split seed, and every round of a split, draws from its own range of seeds.
SPLIT_STRIDE = 1000
ROUND_STRIDE = 10

#: The seed of every seeded training stage (rule in brackets), relative to the config's ``seed``.
STAGE_SEEDS: dict[str, StageSeed] = {
    "pretrain_fe": StageSeed(7, "dataset"),  # self-supervised f_E (pretrain_fe)
    "pretrain_gitdl": StageSeed(1, "dataset"),  # GITDL f_A, shared by the splits (pretrain_gitdl)
    "fe_init": StageSeed(0, "split"),  # f_E's random initialisation and warm-up (train_fe; retrain_fe's init)
    "train_alignability": StageSeed(2, "split"),  # AVML f_A + f_S (train_alignability)
    "retrain_fe": StageSeed(3, "round"),  # a round's f_E (retrain_fe)
    "retrain_fa": StageSeed(4, "round"),  # a round's f_A (retrain_fa)
}


def stage_seed(config: dict, stage: str, split_seed=None, round=None) -> int:
    """The seed of ``stage`` (a key of :data:`STAGE_SEEDS`) for a split seed and round (ints or path strings),
    given exactly when the stage runs per split / per round."""
    spec = STAGE_SEEDS[stage]
    need_split, need_round = spec.per in ("split", "round"), spec.per == "round"
    if (split_seed is not None) != need_split or (round is not None) != need_round:
        raise ValueError(f"stage {stage} runs once per {spec.per}: give "
                         + {"dataset": "no split seed nor round", "split": "a split seed (no round)",
                            "round": "a split seed and a round"}[spec.per])
    seed = config["seed"]
    if need_split:
        seed += SPLIT_STRIDE * int(split_seed)
    if need_round:
        seed += ROUND_STRIDE * int(round)
    return seed + spec.offset
