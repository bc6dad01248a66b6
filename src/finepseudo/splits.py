"""Labeled / unlabeled / test splits for a label fraction and a seed.

The unlabeled list carries **no label column**; the ground truth of the unlabeled videos goes to a
separate evaluation-only file that training code never reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["stratified_labeled", "make_splits"]


def stratified_labeled(train: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Pick ``fraction`` (0 < fraction <= 1) of each class, at least one video per class.

    Deterministic for a seed: videos are sorted by name before a seeded permutation per class.
    Returns the chosen rows (video, label, ...), sorted by video.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted(train["label"].unique()):
        vids = np.array(sorted(train.loc[train["label"] == label, "video"]))
        n = min(len(vids), max(1, int(round(fraction * len(vids)))))
        chosen.extend(vids[rng.permutation(len(vids))[:n]])
    return train[train["video"].isin(set(chosen))].sort_values("video").reset_index(drop=True)


def make_splits(manifest: pd.DataFrame, percent: float, seed: int) -> dict[str, pd.DataFrame]:
    """Split the manifest's train videos into labeled and unlabeled for ``percent`` % labels.

    Returns tables ``labeled`` (video, label, shard), ``unlabeled`` (video, shard: no label),
    ``unlabeled_truth`` (video, label; evaluation only) and ``test`` (video, label, shard).
    """
    train = manifest[manifest["split"] == "train"]
    test = manifest[manifest["split"] == "test"]
    if train.empty or test.empty:
        raise ValueError("the manifest needs both train and test videos")
    labeled = stratified_labeled(train, percent / 100.0, seed)
    unl = train[~train["video"].isin(set(labeled["video"]))].sort_values("video")
    cols = ["video", "label", "shard"]
    return {
        "labeled": labeled[cols],
        "unlabeled": unl[["video", "shard"]].reset_index(drop=True),
        "unlabeled_truth": unl[["video", "label"]].reset_index(drop=True),
        "test": test.sort_values("video")[cols].reset_index(drop=True),
    }
