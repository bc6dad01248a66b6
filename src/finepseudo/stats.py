"""Uncertainty of the benchmark's numbers: confidence intervals over split seeds, a paired bootstrap for
"is method A better than method B on the same test videos", calibration measures (ECE, reliability table,
NLL), and the row-wise softmax that turns scores into the probabilities they measure. Pure numpy / pandas
(no scipy, no torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["t_quantile", "mean_ci", "paired_bootstrap", "expected_calibration_error", "reliability_table", "nll",
           "softmax"]


# ------------------------------------------------------------------------------------ softmax


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (phi_A's p_A = softmax(Sbar / tau) everywhere uses this one)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


# ------------------------------------------------------------------------------------ Student t


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for a, b > 0, 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with ``df`` > 0 degrees of freedom (inverse of the CDF by bisection on
    the regularized incomplete beta function); e.g. t_quantile(0.975, 1) = 12.706."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
        if hi > 1e300:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of ``values`` (n,) and its Student-t confidence interval at ``level``
    (mean ± t_{(1+level)/2, n-1} * sd / sqrt(n), sd with n-1). n = 1: (x, nan, nan); n = 0: all nan."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan
    half = t_quantile((1.0 + level) / 2.0, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


# ----------------------------------------------------------------------------- paired bootstrap


def _as_correct(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D correctness array, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{what} must hold 0/1 (or bool) correctness values")
    return arr


def paired_bootstrap(a: list[np.ndarray], b: list[np.ndarray], *, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Difference of top-1 (percentage points, A minus B, mean over split seeds) with a two-level paired
    bootstrap interval.

    a[i], b[i]: (n_i,) 0/1 or bool, whether methods A and B got each test video of split seed i right, the
    same videos in the same order. Each bootstrap replicate draws k seeds with replacement, then within each
    drawn seed n_i videos with replacement (the same indices for A and B). Returns {"diff", "lo", "hi"
    (percentile interval at ``level``), "n_seeds", "n_videos" (total over seeds), "p_boot_le_0" (share of
    replicates with a difference <= 0)}. Deterministic for a given ``seed``.
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must hold one array per seed each: got {len(a)} and {len(b)} seeds")
    if len(a) == 0:
        raise ValueError("no seeds: a and b are empty")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    diffs = []
    for i, (ai, bi) in enumerate(zip(a, b)):
        ai, bi = _as_correct(ai, f"a[{i}]"), _as_correct(bi, f"b[{i}]")
        if len(ai) != len(bi):
            raise ValueError(f"seed {i}: a has {len(ai)} videos and b {len(bi)}; the arrays must be paired")
        if len(ai) == 0:
            raise ValueError(f"seed {i}: no videos")
        diffs.append(ai - bi)  # (n_i,) in {-1, 0, 1}
    k = len(diffs)
    observed = 100.0 * float(np.mean([d.mean() for d in diffs]))
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, k, size=(n_boot, k))  # which seed each slot of each replicate is
    slot_means = np.empty((n_boot, k))
    chunk_cells = 4_000_000  # resampled videos held in memory at once
    for i, d in enumerate(diffs):
        where = np.flatnonzero(drawn == i)  # flat (replicate, slot) positions that drew seed i
        n = len(d)
        step = max(1, chunk_cells // n)
        for start in range(0, len(where), step):
            pos = where[start:start + step]
            idx = rng.integers(0, n, size=(len(pos), n))
            slot_means.flat[pos] = d[idx].mean(axis=1)
    boot = 100.0 * slot_means.mean(axis=1)  # (n_boot,)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return {"diff": observed, "lo": float(lo), "hi": float(hi), "n_seeds": k,
            "n_videos": int(sum(len(d) for d in diffs)), "p_boot_le_0": float((boot <= 0).mean())}


# ---------------------------------------------------------------------------------- calibration


def _confidence_correct(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or labels.ndim != 1 or len(probs) != len(labels):
        raise ValueError(f"probs must be (N, C) and labels (N,), got {probs.shape} and {labels.shape}")
    return probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)


def _bin_index(conf: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin of each confidence: bin b covers (edges[b], edges[b+1]], the first bin also includes 0."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    return idx, edges


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """probs (N, C), labels (N,) -> one row per equal-width bin of the max probability: bin, lo, hi,
    count, confidence (mean max probability) and accuracy (share of argmax == label), both fractions and
    nan for an empty bin."""
    conf, correct = _confidence_correct(probs, labels)
    idx, edges = _bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, np.bincount(idx, conf, minlength=n_bins) / count, np.nan)
        acc = np.where(count > 0, np.bincount(idx, correct, minlength=n_bins) / count, np.nan)
    return pd.DataFrame({"bin": np.arange(n_bins), "lo": edges[:-1], "hi": edges[1:], "count": count,
                         "confidence": mean_conf, "accuracy": acc})


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """probs (N, C), labels (N,) -> ECE = sum_b |B_b| / N * |acc_b - conf_b| over equal-width bins of the
    max probability (bin b covers (lo, hi], the first also 0), a fraction in [0, 1]; nan when N = 0."""
    table = reliability_table(probs, labels, n_bins)
    n = int(table["count"].sum())
    if n == 0:
        return math.nan
    full = table[table["count"] > 0]
    return float((full["count"] / n * (full["accuracy"] - full["confidence"]).abs()).sum())


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """probs (N, C), labels (N,) -> mean of -log p(label), probabilities clipped at 1e-12; nan when N = 0."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or labels.ndim != 1 or len(probs) != len(labels):
        raise ValueError(f"probs must be (N, C) and labels (N,), got {probs.shape} and {labels.shape}")
    if len(labels) == 0:
        return math.nan
    p = probs[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())
