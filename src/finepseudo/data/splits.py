"""Labeled / unlabeled / test splits for a label fraction and a seed.

The unlabeled list carries **no label column**; the ground truth of the unlabeled videos goes to a
separate evaluation-only file that training code never reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["stratified_labeled", "carve_validation", "make_splits"]


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


def carve_validation(labeled: pd.DataFrame, per_class: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold ``per_class`` labeled videos of each class out for validation, from the classes that keep at
    least one labeled video to train on. Seeded (independently of the labeled draw). Returns (fit, val),
    both sorted by video. ``per_class`` 0 gives an empty validation split."""
    if per_class < 0:
        raise ValueError(f"hparams.val_per_class must be >= 0, got {per_class}")
    rng = np.random.default_rng([seed, 11])
    held = []
    for label in sorted(labeled["label"].unique()):
        vids = np.array(sorted(labeled.loc[labeled["label"] == label, "video"]))
        n = min(per_class, len(vids) - 1)
        if n > 0:
            held.extend(vids[rng.permutation(len(vids))[:n]])
    is_val = labeled["video"].isin(set(held))
    return (labeled[~is_val].sort_values("video").reset_index(drop=True),
            labeled[is_val].sort_values("video").reset_index(drop=True))


def make_splits(manifest: pd.DataFrame, percent: float, seed: int, novel_classes: int = 0,
                val_per_class: int = 0) -> dict[str, pd.DataFrame]:
    """Split the manifest's train videos into labeled and unlabeled for ``percent`` % labels.

    ``val_per_class`` of each class's labeled videos are held out as the validation split ``val``, on
    which hyper-parameters are chosen (:func:`carve_validation`); ``labeled`` is what is left, the
    videos models train on. The label budget is ``labeled`` + ``val``: validation costs labels.

    Returns tables ``labeled`` (video, label, shard), ``val`` (video, label, shard), ``unlabeled`` (video, shard: no label),
    ``unlabeled_truth`` (video, label; evaluation only), ``test`` (video, label, shard) and ``novel``
    (label). Open world: ``novel_classes`` = K > 0 picks K classes (seeded) whose train videos all go to
    the unlabeled pool only; they are never labeled, and the test split keeps the known classes, so
    test accuracy is known-class accuracy.
    """
    train = manifest[manifest["split"] == "train"]
    test = manifest[manifest["split"] == "test"]
    if train.empty or test.empty:
        raise ValueError("the manifest needs both train and test videos")
    classes = sorted(train["label"].unique())
    if not 0 <= novel_classes < len(classes):
        raise ValueError(f"open_world.novel_classes must be in [0, {len(classes) - 1}], got {novel_classes}")
    rng = np.random.default_rng([seed, 7])
    novel = sorted(int(c) for c in rng.choice(classes, size=novel_classes, replace=False)) if novel_classes else []
    known_train = train[~train["label"].isin(novel)]
    budget = stratified_labeled(known_train, percent / 100.0, seed)
    labeled, val = carve_validation(budget, val_per_class, seed)
    unl = train[~train["video"].isin(set(budget["video"]))].sort_values("video")
    test = test[~test["label"].isin(novel)]
    cols = ["video", "label", "shard"]
    return {
        "labeled": labeled[cols],
        "val": val[cols],
        "unlabeled": unl[["video", "shard"]].reset_index(drop=True),
        "unlabeled_truth": unl[["video", "label"]].reset_index(drop=True),
        "test": test.sort_values("video")[cols].reset_index(drop=True),
        "novel": pd.DataFrame({"label": novel}, dtype=int),
    }
