"""Dataset adapters: annotations in, one manifest table out (one row per video).

The Diving48 V2 format (also written by SynthDive) is a JSON list per split of
``{"vid_name": str, "label": int, "start_frame": int, "end_frame": int}`` plus a vocabulary JSON
(a list of ``[takeoff, somersaults, twists, position]``, index = label). The manifest has the
columns ``video, path, split, label, label_name, start_frame, end_frame, shard``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

__all__ = ["AnnotationError", "read_vocab", "read_diving48_split", "build_manifest", "MANIFEST_COLUMNS"]

MANIFEST_COLUMNS = ["video", "path", "split", "label", "label_name", "start_frame", "end_frame", "shard"]
_REQUIRED = {"vid_name": str, "label": int, "start_frame": int, "end_frame": int}


class AnnotationError(ValueError):
    """An annotation or vocabulary file is malformed; the message names the file and entry."""


def _load_json(path: Path):
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path} (check dataset.* paths in the config)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path} is not valid JSON: {exc}") from None


def read_vocab(path: str | Path) -> list[str]:
    """Class names from a Diving48-style vocabulary: each entry a list of attributes (joined by '_')
    or a plain string."""
    path = Path(path)
    vocab = _load_json(path)
    if not isinstance(vocab, list) or not vocab:
        raise AnnotationError(f"{path}: the vocabulary must be a non-empty JSON list")
    names = []
    for i, entry in enumerate(vocab):
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, list) and entry and all(isinstance(a, str) for a in entry):
            names.append("_".join(entry))
        else:
            raise AnnotationError(f"{path}: vocabulary entry {i} is {entry!r}; expected a list of strings")
    return names


def read_diving48_split(path: str | Path, num_classes: int) -> pd.DataFrame:
    """Read one Diving48 V2 split file into a table, validating every entry."""
    path = Path(path)
    entries = _load_json(path)
    if not isinstance(entries, list):
        raise AnnotationError(f"{path}: expected a JSON list of annotation entries")
    rows, seen = [], set()
    for i, e in enumerate(entries):
        where = f"{path}, entry {i}"
        if not isinstance(e, dict):
            raise AnnotationError(f"{where}: expected an object, got {type(e).__name__}")
        for key, typ in _REQUIRED.items():
            if key not in e:
                raise AnnotationError(f"{where} ({e.get('vid_name', '?')}): missing key '{key}'")
            if typ is int and (isinstance(e[key], bool) or not isinstance(e[key], int)):
                raise AnnotationError(f"{where} ({e.get('vid_name', '?')}): '{key}' must be an integer, got {e[key]!r}")
            if typ is str and not (isinstance(e[key], str) and e[key]):
                raise AnnotationError(f"{where}: 'vid_name' must be a non-empty string, got {e[key]!r}")
        vid = e["vid_name"]
        if vid in seen:
            raise AnnotationError(f"{where}: duplicate vid_name '{vid}'")
        seen.add(vid)
        if not 0 <= e["label"] < num_classes:
            raise AnnotationError(
                f"{where} ({vid}): unknown label {e['label']}; the vocabulary has {num_classes} classes (0..{num_classes - 1})"
            )
        if e["start_frame"] < 0 or e["end_frame"] < e["start_frame"]:
            raise AnnotationError(
                f"{where} ({vid}): bad frame range start_frame={e['start_frame']} end_frame={e['end_frame']}"
            )
        rows.append({k: e[k] for k in _REQUIRED})
    return pd.DataFrame(rows, columns=list(_REQUIRED))


def build_manifest(
    train_json: str | Path,
    test_json: str | Path,
    vocab_json: str | Path,
    videos_dir: str | Path,
    *,
    num_shards: int,
    video_ext: str = ".mp4",
    check_files: bool = True,
) -> pd.DataFrame:
    """One row per video of both splits, with its file path and frame-extraction shard.

    ``end_frame`` is kept as in the annotation and read as exclusive by frame extraction.
    Shards are assigned round-robin over the sorted video names, so every shard mixes classes.
    Raises AnnotationError naming the entry for a missing video file or a bad annotation.
    """
    names = read_vocab(vocab_json)
    videos_dir = Path(videos_dir)
    parts = []
    for split, path in (("train", train_json), ("test", test_json)):
        df = read_diving48_split(path, len(names))
        df.insert(0, "split", split)
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)
    dup = df["vid_name"][df["vid_name"].duplicated()]
    if len(dup):
        raise AnnotationError(f"video '{dup.iloc[0]}' appears in both {train_json} and {test_json}")
    df["path"] = [str(videos_dir / f"{v}{video_ext}") for v in df["vid_name"]]
    if check_files:
        missing = [(v, p) for v, p in zip(df["vid_name"], df["path"]) if not Path(p).is_file()]
        if missing:
            v, p = missing[0]
            raise AnnotationError(
                f"{len(missing)} annotated video(s) have no file, first: '{v}' expected at {p} "
                "(check dataset.videos_dir and dataset.video_ext in the config)"
            )
    df = df.rename(columns={"vid_name": "video"}).sort_values(["split", "video"]).reset_index(drop=True)
    df["label_name"] = [names[i] for i in df["label"]]
    order = df["video"].sort_values().index
    df.loc[order, "shard"] = [i % num_shards for i in range(len(df))]
    df["shard"] = df["shard"].astype(int)
    return df[MANIFEST_COLUMNS]


def read_manifest(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"video": str})
