"""Classification metrics on the test split: top-1, per-class accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["classification_metrics"]


def classification_metrics(
    probs: np.ndarray, labels: np.ndarray, class_names: list[str]
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """probs (N, C) float, labels (N,) int -> (summary, per_class, confusion).

    summary: top1 and mean per-class accuracy (in %), n; per_class: class, n, correct, accuracy;
    confusion: C x C counts, rows = true class, columns = predicted class, indexed by name.
    """
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = len(class_names)
    if probs.ndim != 2 or probs.shape != (len(labels), num_classes):
        raise ValueError(f"probs must be (N={len(labels)}, C={num_classes}), got {probs.shape}")
    pred = probs.argmax(1)
    conf = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(conf, (labels, pred), 1)
    n_c = conf.sum(1)
    correct = np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc_c = np.where(n_c > 0, 100.0 * correct / n_c, np.nan)
    per_class = pd.DataFrame(
        {"class": class_names, "label": np.arange(num_classes), "n": n_c, "correct": correct, "accuracy": acc_c}
    )
    summary = {
        "n": int(len(labels)),
        "top1": float(100.0 * (pred == labels).mean()) if len(labels) else float("nan"),
        "mean_class_accuracy": float(np.nanmean(acc_c)) if np.isfinite(acc_c).any() else float("nan"),
    }
    confusion = pd.DataFrame(conf, index=class_names, columns=class_names)
    confusion.index.name = "true\\predicted"
    return summary, per_class, confusion
