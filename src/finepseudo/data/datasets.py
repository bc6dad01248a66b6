"""Dataset adapters: a dataset's official annotation files in, one manifest table out (one row per video).
See docs/architecture.md (dataset adapters).

One interface, :func:`read_dataset` (format, files, videos folder) -> (rows, class names), with one
module per format: this one for Diving48 V2 (also written by SynthDive), :mod:`finepseudo.data.finegym`
(Gym99 / Gym288 element lists cut from long videos by seeking) and :mod:`finepseudo.data.finediving` (annotation
pickles read without running code, frame folders). :func:`build_manifest_for` then checks every video
file exists inside the dataset folder and assigns extraction shards.

The Diving48 V2 format is a JSON list per split of
``{"vid_name": str, "label": int, "start_frame": int, "end_frame": int}`` plus a vocabulary JSON
(a list of ``[takeoff, somersaults, twists, position]``, index = label). The manifest has the
columns ``video, path, split, label, label_name, start_frame, end_frame, start_sec, end_sec, shard``
(``start_sec``/``end_sec``: the time span to cut from ``path`` by seeking, empty for whole clips).
"""

from __future__ import annotations

import os

import json
from pathlib import Path

import pandas as pd

from finepseudo.data.errors import AnnotationError
from finepseudo.data.finediving import read_finediving
from finepseudo.data.finegym import read_finegym

__all__ = ["AnnotationError", "read_vocab", "read_diving48_split", "build_manifest", "build_manifest_for",
           "read_dataset", "FORMATS", "ANNOTATION_KEYS", "MANIFEST_COLUMNS"]

MANIFEST_COLUMNS = ["video", "path", "split", "label", "label_name", "start_frame", "end_frame", "start_sec",
                    "end_sec", "shard"]
# dataset.name -> annotation format, and the dataset.* config keys (files) each format reads
FORMATS = {"synthdive": "diving48", "diving48": "diving48", "finegym99": "finegym", "finegym288": "finegym",
           "finediving": "finediving"}
ANNOTATION_KEYS = {
    "diving48": ("train_annotations", "test_annotations", "vocab"),
    "finegym": ("train_annotations", "test_annotations", "vocab", "timestamps"),
    "finediving": ("train_annotations", "test_annotations", "coarse_annotations", "fine_annotations"),
}
_REQUIRED = {"vid_name": str, "label": int, "start_frame": int, "end_frame": int}


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
        if isinstance(entry, str) and entry:
            names.append(entry)
        elif isinstance(entry, list) and entry and all(isinstance(a, str) for a in entry):
            names.append("_".join(entry))
        else:
            raise AnnotationError(f"{path}: vocabulary entry {i} is {entry!r}; expected a list of strings")
        if names[-1] in names[:-1]:
            raise AnnotationError(f"{path}: vocabulary entries {names.index(names[-1])} and {i} are both "
                                  f"{names[-1]!r}; each class needs its own name")
    return names


def read_diving48_split(path: str | Path, num_classes: int) -> pd.DataFrame:
    """Read one Diving48 V2 split file into a table, validating every entry."""
    path = Path(path)
    entries = _load_json(path)
    if not isinstance(entries, list):
        raise AnnotationError(f"{path}: expected a JSON list of annotation entries")
    if not entries:
        raise AnnotationError(f"{path}: the annotation list is empty; check that the config names the right file")
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
            raise AnnotationError(f"{where}: duplicate vid_name '{vid}' (listed twice in this file)")
        seen.add(vid)
        if not 0 <= e["label"] < num_classes:
            raise AnnotationError(
                f"{where} ({vid}): unknown label {e['label']}; the vocabulary has {num_classes} classes (0..{num_classes - 1})"
            )
        if e["start_frame"] < 0 or e["end_frame"] < e["start_frame"]:
            raise AnnotationError(
                f"{where} ({vid}): bad frame range start_frame={e['start_frame']} end_frame={e['end_frame']}: "
                "need 0 <= start_frame <= end_frame; fix the entry"
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
    """The manifest of a Diving48-V2-format dataset (see :func:`build_manifest_for`)."""
    files = {"train_annotations": train_json, "test_annotations": test_json, "vocab": vocab_json}
    return build_manifest_for("diving48", files, videos_dir, num_shards=num_shards, video_ext=video_ext,
                              check_files=check_files)[0]


def read_dataset(fmt: str, files: dict, videos_dir: str | Path, *, video_ext: str = ".mp4",
                 source: str = "raw") -> tuple[pd.DataFrame, list[str]]:
    """The adapters' one interface: rows (video, path, split, label, start_frame, end_frame[, start_sec,
    end_sec]) and the class names, from the files named by :data:`ANNOTATION_KEYS` [fmt]."""
    if fmt not in ANNOTATION_KEYS:
        raise AnnotationError(f"unknown dataset format {fmt!r}; known: {sorted(ANNOTATION_KEYS)}")
    missing = [k for k in ANNOTATION_KEYS[fmt] if not files.get(k)]
    if missing:
        raise AnnotationError(f"the {fmt} format needs config key(s) " + ", ".join(f"dataset.{k}" for k in missing))
    if fmt == "diving48":
        names = read_vocab(files["vocab"])
        parts = []
        for split, key in (("train", "train_annotations"), ("test", "test_annotations")):
            df = read_diving48_split(files[key], len(names))
            df.insert(0, "split", split)
            parts.append(df)
        df = pd.concat(parts, ignore_index=True).rename(columns={"vid_name": "video"})
        df["path"] = [str(Path(videos_dir) / f"{v}{video_ext}") for v in df["video"]]
        return df, names
    if fmt == "finegym":
        return read_finegym(files["train_annotations"], files["test_annotations"], files["vocab"], files["timestamps"],
                            videos_dir, video_ext=video_ext, source=source)
    return read_finediving(files["train_annotations"], files["test_annotations"], files["coarse_annotations"],
                           files["fine_annotations"], videos_dir)


def build_manifest_for(fmt: str, files: dict, videos_dir: str | Path, *, num_shards: int, video_ext: str = ".mp4",
                       source: str = "raw", check_files: bool = True,
                       generated: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One row per video of both splits, with its file path and frame-extraction shard, and the class names.

    ``end_frame`` is kept as in the annotation and read as exclusive by frame extraction (-1: to the end).
    Shards are assigned round-robin over the sorted video names, so every shard mixes classes. Raises
    AnnotationError naming the entry for a bad annotation, a video in both splits, a missing video file
    (or frame folder), or a path that leaves ``videos_dir`` (through ``..`` or a symbolic link).
    ``generated``: the videos are the workflow's own output (SynthDive), whose files Snakemake's
    between-workflow cache restores as symbolic links into the cache; only a ``..`` is refused then.
    """
    df, names = read_dataset(fmt, files, videos_dir, video_ext=video_ext, source=source)
    dup = df["video"][df["video"].duplicated()]
    if len(dup):
        v = dup.iloc[0]
        splits = sorted(set(df.loc[df["video"] == v, "split"]))
        where = (f"both {files['train_annotations']} and {files['test_annotations']}" if len(splits) > 1
                 else f"{files[splits[0] + '_annotations']} more than once")
        raise AnnotationError(f"video '{v}' appears in {where}: each video must be annotated once, in one split")
    root = Path(os.path.abspath(videos_dir)) if generated else Path(videos_dir).resolve()
    for v, p in zip(df["video"], df["path"]):
        if not (Path(os.path.abspath(p)) if generated else Path(p).resolve()).is_relative_to(root):
            raise AnnotationError(f"video '{v}': its path {p} leaves the dataset folder {videos_dir} (a '..' in the "
                                  "annotation or a symbolic link pointing elsewhere); refusing to read it")
    if check_files:
        missing = [(v, p) for v, p in zip(df["video"], df["path"]) if not Path(p).exists()]
        if missing:
            v, p = missing[0]
            raise AnnotationError(
                f"{len(missing)} annotated video(s) have no file, first: '{v}' expected at {p} "
                "(check dataset.videos_dir and dataset.video_ext in the config)"
            )
    for col in ("start_sec", "end_sec"):
        if col not in df.columns:
            df[col] = float("nan")
    df = df.sort_values(["split", "video"]).reset_index(drop=True)
    df["label_name"] = [names[i] for i in df["label"]]
    order = df["video"].sort_values().index
    df.loc[order, "shard"] = [i % num_shards for i in range(len(df))]
    df["shard"] = df["shard"].astype(int)
    return df[MANIFEST_COLUMNS], names


def read_manifest(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"video": str})
