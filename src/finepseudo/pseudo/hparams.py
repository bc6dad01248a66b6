"""Hyper-parameter selection on the validation split (labeled videos held out of training).

Pure functions: validation predictions and labels in, a choice and the table of every candidate out.
Nothing here sees the test split or the unlabeled pool's truth; the rules feed them validation files only.

- ``tau`` (phi_A temperature): the grid value with the lowest validation log-loss of p_A = softmax(Sbar/tau).
- ``theta`` (acceptance threshold): the smallest grid value at which the method's validation predictions
  with ``max p >= theta`` are at least ``target_precision`` correct; the largest grid value when none is.
- ``delta`` (open-world novelty filter): validation videos are all of known classes, so delta is the
  largest value that at least ``known_keep`` of them pass (``max_c Sbar_c >= delta``).
- ``rounds``: the pseudo-labeling round whose f_E has the best validation top-1 (ties: fewer rounds).
- ``T_E`` (temperature of p_E, temperature scaling as in Guo et al., ICML 2017): the value with the lowest
  validation log-loss of softmax(logits / T_E) on a log-spaced grid. Fitted before p_E is combined with
  p_A, so an over-confident f_E trained on a handful of videos does not dominate the average.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from finepseudo.stats import softmax

__all__ = ["select_tau", "select_theta", "select_delta", "select_round", "select_round_step", "select_temperature",
           "fit_pool_weights", "log_linear_pool", "TEMPERATURE_GRID", "POOL_WEIGHT_GRID"]

#: Candidate temperatures of p_E: 0.25 ... 64, 8 per octave.
TEMPERATURE_GRID = tuple(float(t) for t in np.round(np.geomspace(0.25, 64.0, 65), 6))


def select_tau(sbar: np.ndarray, labels: np.ndarray, grid: list[float]) -> tuple[float, pd.DataFrame]:
    """sbar (N, C) mean alignability of each validation video to each class, labels (N,) -> (tau, table)."""
    labels = np.asarray(labels, np.int64)
    rows = []
    for tau in grid:
        p = softmax(np.asarray(sbar) / tau)
        nll = float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())
        rows.append({"tau": float(tau), "val_nll": round(nll, 6)})
    table = pd.DataFrame(rows)
    best = float(table.loc[table["val_nll"].idxmin(), "tau"])  # idxmin: the first (smallest tau) on ties
    return best, table


def select_temperature(logits: np.ndarray, labels: np.ndarray,
                       grid: tuple[float, ...] | list[float] = TEMPERATURE_GRID) -> tuple[float, pd.DataFrame]:
    """logits (N, C) of validation videos, labels (N,) -> (T with the lowest mean NLL of softmax(logits / T),
    table of every candidate). Ties go to the value closest to 1; no validation video gives T = 1."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    rows = []
    for t in grid:
        p = softmax(logits / t)
        nll = float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean()) if len(labels) else 0.0
        rows.append({"temperature": float(t), "val_nll": round(nll, 6)})
    table = pd.DataFrame(rows)
    if not len(labels):
        return 1.0, table
    best = table["val_nll"].min()
    cands = table.loc[table["val_nll"] <= best + 1e-12, "temperature"]
    return float(cands.iloc[np.argmin(np.abs(np.log(cands.to_numpy())))]), table


def log_linear_pool(p_e: np.ndarray, p_a: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """p proportional to exp(alpha log p_E + beta log p_A), row-wise (N, C) -> (N, C) float64.

    A log-linear opinion pool (Genest and Zidek, Statistical Science 1986; the product of experts of
    Hinton, 2002, with weights). It contains the two branches (alpha = 1, beta = 0 is p_E; alpha = 0,
    beta = 1 is p_A), and a flat branch adds the same constant to every class, so it leaves its partner
    exactly as it is instead of halving its confidence as an average does."""
    le = np.log(np.clip(np.asarray(p_e, np.float64), 1e-12, None))
    la = np.log(np.clip(np.asarray(p_a, np.float64), 1e-12, None))
    z = alpha * le + beta * la
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


#: Candidate weights of each branch in the log-linear pool: 0 (the branch left out), then 1/16 ... 16, 4 per octave.
POOL_WEIGHT_GRID = (0.0,) + tuple(float(w) for w in np.round(np.geomspace(1 / 16, 16.0, 33), 6))


def fit_pool_weights(p_e: np.ndarray, p_a: np.ndarray, labels: np.ndarray,
                     grid: tuple[float, ...] | list[float] = POOL_WEIGHT_GRID) -> tuple[tuple[float, float], pd.DataFrame]:
    """(alpha, beta) >= 0 of the log-linear pool p ~ exp(alpha log p_E + beta log p_A) with the lowest mean
    validation log-loss, over ``grid`` x ``grid`` -> ((alpha, beta), table of every pair's NLL). A log-loss
    uses each validation video's whole probability vector, not 0/1 counts at a threshold. Ties go to the
    pair closest to (1, 1) (in log, a zero weight counting as far). No validation video gives (1, 1)."""
    labels = np.asarray(labels, np.int64)
    rows = []
    for a in grid:
        for b in grid:
            if not len(labels):
                nll = 0.0
            else:
                p = log_linear_pool(p_e, p_a, a, b)
                nll = float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())
            rows.append({"alpha": float(a), "beta": float(b), "val_nll": round(nll, 6)})
    table = pd.DataFrame(rows)
    if not len(labels):
        return (1.0, 1.0), table
    best = table[table["val_nll"] <= table["val_nll"].min() + 1e-9]

    def dist(w: float) -> float:
        return abs(np.log(w)) if w > 0 else 99.0

    k = min(best.index, key=lambda i: (dist(best.at[i, "alpha"]) + dist(best.at[i, "beta"]), i))
    return (float(best.at[k, "alpha"]), float(best.at[k, "beta"])), table


def select_theta(probs: np.ndarray, labels: np.ndarray, grid: list[float],
                 target_precision: float) -> tuple[float, pd.DataFrame]:
    """probs (N, C) the method's combined validation probabilities -> (theta, table of coverage and
    precision per grid value)."""
    probs = np.asarray(probs)
    labels = np.asarray(labels, np.int64)
    conf, pred = probs.max(1), probs.argmax(1)
    rows = []
    for theta in sorted(grid):
        acc = conf >= theta
        n = int(acc.sum())
        prec = float((pred[acc] == labels[acc]).mean()) if n else float("nan")
        rows.append({"theta": float(theta), "val_accepted": n, "val_coverage": round(n / max(len(labels), 1), 6),
                     "val_precision": round(prec, 6) if n else np.nan})
    table = pd.DataFrame(rows)
    ok = table[(table["val_accepted"] > 0) & (table["val_precision"] >= target_precision)]
    best = float(ok["theta"].iloc[0]) if len(ok) else float(table["theta"].iloc[-1])
    return best, table


def select_delta(sbar: np.ndarray, known_keep: float) -> float:
    """sbar (N, C) of validation (known-class) videos -> the largest delta that at least ``known_keep`` of
    them pass (a video passes when ``max_c Sbar_c >= delta``)."""
    top = np.sort(np.asarray(sbar).max(1))[::-1]
    if len(top) == 0:
        raise ValueError("select_delta needs at least one validation video")
    keep = min(len(top), max(1, int(np.ceil(known_keep * len(top) - 1e-9))))
    return float(top[keep - 1])


def select_round(val_top1: dict[int, float]) -> int:
    """{round: validation top-1} -> the best round; ties go to the earlier round."""
    if not val_top1:
        raise ValueError("select_round needs the validation accuracy of at least one round")
    return min(val_top1, key=lambda r: (-val_top1[r], r))


def select_round_step(*, hparams: str, val_metrics: list[str], rounds: list[dict[str, str]], out: dict[str, str],
                      out_table: str, log: Callable[[str], None]) -> None:
    """The method's result: the round whose f_E is best on validation (``hparams`` says whether rounds are
    chosen on validation; otherwise the last round). ``val_metrics`` are read to choose; ``rounds`` (one
    dict of test outputs per round, round 1 first) only to copy the chosen round's files to ``out``."""
    record = json.loads(Path(hparams).read_text())
    val_top1 = {r: json.loads(Path(p).read_text())["top1"] for r, p in enumerate(val_metrics, start=1)}
    by_validation = record["chosen_on"]["rounds"] == "validation"
    best = select_round(val_top1) if by_validation else len(rounds)
    pd.DataFrame({"round": list(val_top1), "val_top1": list(val_top1.values()),
                  "chosen": [r == best for r in val_top1]}).to_csv(out_table, sep="\t", index=False)
    for key, dst in out.items():
        if key != "metrics":
            shutil.copyfile(rounds[best - 1][key], dst)
    metrics = json.loads(Path(rounds[best - 1]["metrics"]).read_text())
    metrics.update({"selected_round": best, "rounds_chosen_on": "validation" if by_validation else "config",
                    "val_top1_by_round": val_top1})
    Path(out["metrics"]).write_text(json.dumps(metrics, indent=2))
    log(f"round {best} of {len(rounds)} ({'best validation top-1' if by_validation else 'the last round'}); "
        f"validation top-1 by round: {val_top1}")
