"""FineDiving adapter: the official annotation pickles and split files -> manifest rows.

Official files (https://github.com/xujinglin/FineDiving, ``Annotations/``), all pickles, read with
:mod:`finepseudo.data.safe_pickle` (plain data only; a file naming anything else is refused):

* ``FineDiving_coarse_annotation.pkl``: ``{(competition, clip index): {"action_type": str (the dive
  number, e.g. "107B"), "dive_score", "difficulty", "judge_scores", "start_frame", "end_frame", ...}}``;
* ``FineDiving_fine-grained_annotation.pkl``: the same keys, with the step-level ``frames_labels``,
  ``steps_transit_frames`` and ``sub-action_types``; every clip of the splits must appear in both;
* ``train_split.pkl`` / ``test_split.pkl``: lists of ``(competition, clip index)``.

Clips are the trimmed frame folders ``<videos_dir>/<competition>/<clip index>/<frame number>.jpg``
(``FINADiving_MTL_256s``), read directly (no video files). The classes are the action types (dive
numbers) that occur in the two splits, sorted; a video's id is ``<competition>__<clip index>``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from finepseudo.data import safe_pickle
from finepseudo.data.errors import AnnotationError

__all__ = ["read_finediving"]


def _load(path: str | Path, key: str):
    p = Path(path)
    if not p.is_file():
        raise AnnotationError(f"FineDiving file not found: {p} (config key dataset.{key})")
    try:
        return safe_pickle.load(p)
    except safe_pickle.UnsafePickleError as exc:
        raise AnnotationError(str(exc)) from None


def _key(k, where: str) -> tuple[str, int]:
    if not (isinstance(k, (tuple, list)) and len(k) == 2 and isinstance(k[0], str) and isinstance(k[1], int)
            and not isinstance(k[1], bool)):
        raise AnnotationError(f"{where}: expected (competition, clip index) keys, got {k!r}")
    return k[0], k[1]


def read_finediving(train_split: str | Path, test_split: str | Path, coarse: str | Path, fine: str | Path,
                    videos_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Rows (video, path = frame folder, split, label, start_frame, end_frame) and class names."""
    coarse_ann = _load(coarse, "coarse_annotations")
    fine_ann = _load(fine, "fine_annotations")
    for what, ann, path in (("coarse", coarse_ann, coarse), ("fine-grained", fine_ann, fine)):
        if not isinstance(ann, dict):
            raise AnnotationError(f"{path}: the {what} annotation must be a dict keyed by (competition, clip index)")
    splits = {}
    for split, path, key in (("train", train_split, "train_annotations"), ("test", test_split, "test_annotations")):
        items = _load(path, key)
        if not isinstance(items, (list, tuple)):
            raise AnnotationError(f"{path}: a split file must hold a list of (competition, clip index)")
        if not items:
            raise AnnotationError(f"{path}: the split list is empty; check that config key dataset.{key} names the "
                                  "right file")
        keys = [_key(k, f"{path}, entry {i}") for i, k in enumerate(items)]
        seen = set()
        for i, k in enumerate(keys):
            if k in seen:
                raise AnnotationError(f"{path}, entry {i}: clip {k} is listed twice in this file")
            seen.add(k)
        splits[split] = keys
    both = set(splits["train"]) & set(splits["test"])
    if both:
        raise AnnotationError(f"clip {sorted(both)[0]} is in both {train_split} and {test_split}")
    types = {}
    for split, keys in splits.items():
        for k in keys:
            entry = coarse_ann.get(k)
            if not isinstance(entry, dict):
                raise AnnotationError(f"{coarse}: clip {k} of the {split} split is missing")
            if not (isinstance(entry.get("action_type"), str) and entry["action_type"]):
                raise AnnotationError(f"{coarse}: clip {k} of the {split} split has no action_type (a dive number "
                                      f"such as '107B'), got {entry.get('action_type')!r}")
            f_entry = fine_ann.get(k)
            if not isinstance(f_entry, dict):
                raise AnnotationError(f"{fine}: clip {k} of the {split} split is missing")
            if "action_type" in f_entry and f_entry["action_type"] != entry["action_type"]:
                raise AnnotationError(f"clip {k}: action_type {entry['action_type']!r} in {coarse} but "
                                      f"{f_entry['action_type']!r} in {fine}")
            types[k] = entry["action_type"]
    names = sorted(set(types.values()))
    index = {n: i for i, n in enumerate(names)}
    root = Path(videos_dir)
    rows = [{"video": f"{comp}__{clip}", "path": str(root / comp / str(clip)), "split": split,
             "label": index[types[(comp, clip)]], "start_frame": 0, "end_frame": -1}
            for split, keys in splits.items() for comp, clip in keys]
    return pd.DataFrame(rows), names
