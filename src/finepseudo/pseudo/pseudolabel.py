"""Collaborative pseudo-labeling: combine f_E's and f_A's predictions, threshold, reject novel videos,
and score pseudo-label quality against the evaluation-only truth.
See docs/method.md.

Every function is pure: probability arrays in, tables out. ``truth`` is only ever passed to
:func:`quality`, which the report and evaluation call, never a training step.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from finepseudo.pseudo.hparams import log_linear_pool  # re-exported: the pool lives beside its weights' fit

__all__ = ["ACCEPT_RULES", "COMBINE_RULES", "accept_mask", "combine", "log_linear_pool", "pseudo_label_table",
           "quality", "pseudo_quality_step"]

#: How FinePseudo combines p_E and p_A (config key ``pseudo.combine``): ``average`` is the paper's
#: (p_E + p_A) / 2; ``loglinear`` a log-linear pool with weights fitted by validation log-loss; ``product``
#: the product of the two (each calibrated on its own); ``agree`` the average, accepted only where the two
#: branches' arg-max agree.
COMBINE_RULES = ("average", "loglinear", "product", "agree")


def combine(p_e: np.ndarray | None, p_a: np.ndarray | None, source: str, rule: str = "average",
            weights: tuple[float, float] | None = None) -> np.ndarray:
    """p_E and/or p_A (N, C) -> the probabilities pseudo-labels are taken from.

    ``source``: ``fe`` (PL baseline), ``fa`` (f_A only) or ``both`` (FinePseudo), combined by ``rule``
    (:data:`COMBINE_RULES`): ``average`` and ``agree`` give (p_E + p_A) / 2 (the paper sums them, which has
    the same arg-max; ``agree`` gates acceptance, see :func:`pseudo_label_table`), ``product`` the pool
    with weights (1, 1), ``loglinear`` the pool with ``weights`` = (alpha, beta)."""
    if source == "fe":
        return np.asarray(p_e)
    if source == "fa":
        return np.asarray(p_a)
    if source != "both":
        raise ValueError(f"unknown pseudo-label source {source!r}; expected fe, fa or both")
    if rule in ("average", "agree"):
        return (np.asarray(p_e) + np.asarray(p_a)) / 2.0
    if rule == "product":
        return log_linear_pool(p_e, p_a, 1.0, 1.0)
    if rule == "loglinear":
        if weights is None:
            raise ValueError("the log-linear pool needs its weights (alpha, beta), fitted on validation")
        return log_linear_pool(p_e, p_a, *weights)
    raise ValueError(f"unknown combination {rule!r} (config key pseudo.combine); expected one of {COMBINE_RULES}")


#: Acceptance rules: ``threshold`` is the paper's (max p >= theta); the others balance classes.
ACCEPT_RULES = ("threshold", "flexmatch", "topk")


def accept_mask(conf: np.ndarray, label: np.ndarray, num_classes: int, *, rule: str = "threshold",
                theta: float = 0.7, min_accept: float = 0.0, topk_share: float = 0.5,
                eligible: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Which pseudo-labels to accept. conf, label: (N,) confidence and arg-max class of each video;
    eligible: (N,) bool, False for videos already rejected (open-world filter). Returns (accepted (N,)
    bool, info dict with the per-class thresholds and whether ``min_accept`` took over).

    - ``threshold`` (the paper): conf >= theta.
    - ``flexmatch``: per-class thresholds in the spirit of FlexMatch (Zhang et al., NeurIPS 2021):
      sigma_c = number of eligible videos predicted c with conf >= theta, beta_c = sigma_c /
      max(max_c sigma_c, number of eligible videos not passing theta), and theta_c = theta * beta_c /
      (2 - beta_c): classes the model rarely predicts confidently get a lower threshold.
    - ``topk``: per predicted class, the ceil(topk_share * N_eligible / C) most confident videos with
      conf >= theta / 2 (class-balanced selection in the spirit of UPS, Rizve et al., ICLR 2021).

    ``min_accept`` in [0, 1]: a floor on the accepted share of the eligible pool. When the rule accepts
    fewer, the most confident eligible videos are accepted up to that share, so a threshold chosen on a
    tiny validation set cannot starve the rounds (info["min_accept_used"] says when it did).
    """
    conf = np.asarray(conf, np.float64)
    label = np.asarray(label, np.int64)
    n = len(conf)
    ok = np.ones(n, bool) if eligible is None else np.asarray(eligible, bool)
    info: dict = {"rule": rule, "theta": float(theta), "min_accept_used": False}
    if rule == "threshold":
        acc = (conf >= theta) & ok
    elif rule == "flexmatch":
        passing = (conf >= theta) & ok
        sigma = np.bincount(label[passing], minlength=num_classes).astype(np.float64)
        denom = max(sigma.max(initial=0.0), float((ok & ~passing).sum()), 1.0)
        beta = sigma / denom
        thr = theta * beta / (2.0 - beta)
        info["class_thresholds"] = [round(float(t), 6) for t in thr]
        acc = ok & (conf >= thr[label])
    elif rule == "topk":
        k = int(np.ceil(topk_share * ok.sum() / max(num_classes, 1)))
        acc = np.zeros(n, bool)
        for c in range(num_classes):
            idx = np.flatnonzero(ok & (label == c) & (conf >= theta / 2))
            acc[idx[np.argsort(-conf[idx], kind="stable")[:k]]] = True
        info["per_class_k"] = k
    else:
        raise ValueError(f"unknown acceptance rule {rule!r}; expected one of {ACCEPT_RULES} "
                         "(config key pseudo.accept)")
    need = int(np.ceil(min_accept * ok.sum() - 1e-9))
    if acc.sum() < need:
        order = np.flatnonzero(ok)[np.argsort(-conf[ok], kind="stable")]
        acc[order[:need]] = True
        info["min_accept_used"] = True
    return acc, info


def pseudo_label_table(videos: list[str], p_e: np.ndarray | None, p_a: np.ndarray | None,
                       sbar: np.ndarray | None, *, source: str, theta: float,
                       delta: float | None = None, accept: dict | None = None,
                       info: dict | None = None, rule: str = "average",
                       weights: tuple[float, float] | None = None) -> pd.DataFrame:
    """One row per unlabeled video: p_E label/confidence, p_A label/confidence, combined label and
    confidence (:func:`combine` with ``rule`` and ``weights``), ``rejected_novel`` (open world:
    ``max_c Sbar_c < delta``, decided before thresholding) and ``accepted`` (by :func:`accept_mask` with the
    keyword arguments in ``accept``: rule, min_accept, topk_share; the default is the paper's
    ``max p >= theta``) and not rejected; with ``rule`` ``agree`` only videos whose p_E and p_A arg-max agree
    are eligible (agreement-gated acceptance). ``info``, when given, receives accept_mask's info."""
    p = combine(p_e, p_a, source, rule, weights)
    n = len(videos)
    df = pd.DataFrame({"video": videos})
    for name, q in (("fe", p_e), ("fa", p_a)):
        df[f"{name}_label"] = np.asarray(q).argmax(1) if q is not None else -1
        df[f"{name}_conf"] = np.asarray(q).max(1).round(6) if q is not None else np.nan
    df["label"] = p.argmax(1) if n else np.zeros(0, int)
    df["confidence"] = p.max(1).round(6) if n else np.zeros(0)
    novel = np.zeros(n, bool)
    if delta is not None:
        if sbar is None:
            raise ValueError("the open-world filter (delta) needs Sbar from phi_A")
        novel = np.asarray(sbar).max(1) < delta
    df["rejected_novel"] = novel
    num_classes = p.shape[1] if p.ndim == 2 else 0
    eligible = ~novel
    if source == "both" and rule == "agree":
        eligible &= df["fe_label"].to_numpy() == df["fa_label"].to_numpy()
    acc, inf = accept_mask(df["confidence"].to_numpy(), df["label"].to_numpy(), num_classes, theta=theta,
                           eligible=eligible, **(accept or {}))
    df["accepted"] = acc
    if info is not None:
        info.update(inf)
    return df


def quality(table: pd.DataFrame, truth: pd.DataFrame, novel_labels: list[int] | None = None) -> dict:
    """Pseudo-label quality against the evaluation-only truth (video, label).

    Returns coverage (accepted share of the pool), precision (correct share of accepted), per-class
    precision (by pseudo-label), p_E / p_A agreement, and, in the open world (``novel_labels`` not
    empty), the novel-video rejection precision and recall (a video is novel when its true label is).
    """
    t = table.merge(truth.rename(columns={"label": "true"}), on="video", how="left")
    acc = t[t["accepted"]]
    out = {
        "pool": int(len(t)),
        "accepted": int(len(acc)),
        "coverage": float(len(acc) / len(t)) if len(t) else float("nan"),
        "precision": float((acc["label"] == acc["true"]).mean()) if len(acc) else float("nan"),
        "fe_accuracy": float((t["fe_label"] == t["true"]).mean()) if len(t) and (t["fe_label"] >= 0).all()
        else float("nan"),
        "fa_accuracy": float((t["fa_label"] == t["true"]).mean()) if len(t) and (t["fa_label"] >= 0).all()
        else float("nan"),
        "combined_accuracy": float((t["label"] == t["true"]).mean()) if len(t) else float("nan"),
        "fe_fa_agreement": float((t["fe_label"] == t["fa_label"]).mean())
        if len(t) and (t["fe_label"] >= 0).all() and (t["fa_label"] >= 0).all() else float("nan"),
        "per_class_precision": {int(c): float((g["label"] == g["true"]).mean()) for c, g in acc.groupby("label")},
    }
    if novel_labels:
        is_novel = t["true"].isin(set(novel_labels))
        rej = t["rejected_novel"]
        out["novel_in_pool"] = int(is_novel.sum())
        out["novel_rejection_precision"] = float((is_novel & rej).sum() / rej.sum()) if rej.sum() else float("nan")
        out["novel_rejection_recall"] = float((is_novel & rej).sum() / is_novel.sum()) if is_novel.sum() else float("nan")
        out["novel_accepted"] = int((is_novel & t["accepted"]).sum())
    return out


def pseudo_quality_step(*, tables: list[str], truth: str, novel: str, out: str, log: Callable[[str], None]) -> None:
    """Coverage, precision, per-class precision and p_E/p_A agreement of every round's pseudo-labels
    against the evaluation-only truth (the only step that reads it besides the report)."""
    tr = pd.read_csv(truth, sep="\t", dtype={"video": str})
    novel_labels = pd.read_csv(novel, sep="\t")["label"].astype(int).tolist()
    rows = []
    for r, path in enumerate(tables, start=1):
        q = quality(pd.read_csv(path, sep="\t", dtype={"video": str}), tr, novel_labels)
        q["per_class_precision"] = json.dumps(q["per_class_precision"])
        rows.append({"round": r, **q})
    df = pd.DataFrame(rows)
    df.to_csv(out, sep="\t", index=False)
    log(df.to_string(index=False))
