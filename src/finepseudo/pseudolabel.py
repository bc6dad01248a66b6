"""Collaborative pseudo-labeling: combine f_E's and f_A's predictions, threshold, reject novel videos,
and score pseudo-label quality against the evaluation-only truth.

Every function is pure: probability arrays in, tables out. ``truth`` is only ever passed to
:func:`quality`, which the report and evaluation call, never a training step.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["SOURCES", "combine", "pseudo_label_table", "quality", "pseudo_quality_step"]

#: Which predictions a method's pseudo-labels come from.
SOURCES = {"pl": "fe", "fa_only": "fa", "finepseudo": "both"}


def combine(p_e: np.ndarray | None, p_a: np.ndarray | None, source: str) -> np.ndarray:
    """p_E and/or p_A (N, C) -> the probabilities pseudo-labels are taken from.

    ``source``: ``fe`` (PL baseline), ``fa`` (f_A only) or ``both`` (FinePseudo: (p_E + p_A) / 2;
    the paper sums them, which has the same argmax)."""
    if source == "fe":
        return np.asarray(p_e)
    if source == "fa":
        return np.asarray(p_a)
    if source == "both":
        return (np.asarray(p_e) + np.asarray(p_a)) / 2.0
    raise ValueError(f"unknown pseudo-label source {source!r}; expected fe, fa or both")


def pseudo_label_table(videos: list[str], p_e: np.ndarray | None, p_a: np.ndarray | None,
                       sbar: np.ndarray | None, *, source: str, theta: float,
                       delta: float | None = None) -> pd.DataFrame:
    """One row per unlabeled video: p_E label/confidence, p_A label/confidence, combined label and
    confidence, ``rejected_novel`` (open world: ``max_c Sbar_c < delta``, decided before thresholding)
    and ``accepted`` (``max p >= theta`` and not rejected)."""
    p = combine(p_e, p_a, source)
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
    df["accepted"] = (df["confidence"].to_numpy() >= theta) & ~novel
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
