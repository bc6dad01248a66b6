"""Which videos a prediction run reads: the video files of a folder (or files given one by one), with an
optional table of frame ranges. No torch and no ffmpeg here: Snakemake reads this while it plans the DAG
(the predict rule declares every video it will read as an input).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

__all__ = ["VIDEO_SUFFIXES", "VideoItem", "list_videos", "collect_videos", "read_ranges", "with_ranges"]

#: File name endings taken as videos when a folder is given (case-insensitive). A file given by name is
#: read whatever its ending; ffmpeg decides whether it is a video.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
                  ".ts", ".ogv")


class VideoItem(NamedTuple):
    """One video to predict: its id (the file's path relative to the folder given, without its ending), its
    path, and the frame range to sample from (as in the workflow's manifest: ``end_frame`` exclusive, -1 to
    the end; ``start_sec`` / ``end_sec`` a time span to cut first, or None)."""

    video: str
    path: str
    start_frame: int = 0
    end_frame: int = -1
    start_sec: float | None = None
    end_sec: float | None = None


def _video_id(path: Path, root: Path | None) -> str:
    rel = path.relative_to(root) if root is not None else Path(path.name)
    return rel.with_suffix("").as_posix()


def list_videos(folder: str | Path) -> list[VideoItem]:
    """The video files under ``folder`` (recursively, hidden files and folders skipped), sorted by path. Ids
    are paths relative to ``folder`` without the file ending (``clips/a.mp4`` -> ``clips/a``). Raises
    FileNotFoundError naming the folder when it does not exist, ValueError when it holds no video."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder not found: {root} (give a folder of videos, or video files)")
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise ValueError(f"no video files in {root} (file endings taken as videos: {', '.join(VIDEO_SUFFIXES)})")
    return [VideoItem(_video_id(p, root), str(p)) for p in files]


def collect_videos(inputs: Sequence[str | Path]) -> list[VideoItem]:
    """Videos of a command line: each input is a video file (read whatever its ending; a folder of frame images
    counts too when it holds no video file) or a folder of videos (:func:`list_videos`). A file or folder that
    does not exist still gets an item, so its row says so. Ids must be unique: two files with the same id
    (``a.mp4`` and ``a.avi``, or the same name in two folders) raise ValueError naming both."""
    items: list[VideoItem] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            try:
                items += list_videos(p)
                continue
            except ValueError:
                pass  # no video file in it: a folder of frame images, read as one video
        items.append(VideoItem(_video_id(p, None), str(p)))
    seen: dict[str, str] = {}
    for it in items:
        if it.video in seen:
            raise ValueError(f"two inputs have the same video id {it.video!r}: {seen[it.video]} and {it.path}; "
                             "rename one, or predict them in separate runs")
        seen[it.video] = it.path
    return items


def _num(value, cast):
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() in ("", "nan", "NaN"):
        return None
    return cast(value)


def read_ranges(path: str | Path) -> dict[str, tuple[int, int, float | None, float | None]]:
    """Frame ranges from a TSV with a ``video`` column and any of ``start_frame``, ``end_frame`` (exclusive, -1:
    to the end), ``start_sec``, ``end_sec``; the workflow's ``manifest.tsv`` is such a table. Returns
    ``{video: (start_frame, end_frame, start_sec, end_sec)}``. Errors name the file and the row."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame range table not found: {path}")
    out: dict[str, tuple[int, int, float | None, float | None]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if not reader.fieldnames or "video" not in reader.fieldnames:
            raise ValueError(f"{path}: a frame range table needs a 'video' column (tab-separated), got "
                             f"{reader.fieldnames}")
        for i, row in enumerate(reader, start=2):
            try:
                start = _num(row.get("start_frame"), lambda v: int(float(v))) or 0
                end = _num(row.get("end_frame"), lambda v: int(float(v)))
                s_sec = _num(row.get("start_sec"), float)
                e_sec = _num(row.get("end_sec"), float)
            except ValueError as exc:
                raise ValueError(f"{path}, line {i} (video {row.get('video')!r}): {exc}") from None
            end = -1 if end is None else end
            if start < 0 or (end >= 0 and end < start):
                raise ValueError(f"{path}, line {i} (video {row['video']!r}): bad frame range start_frame={start} "
                                 f"end_frame={end}: need 0 <= start_frame <= end_frame (or end_frame -1)")
            out[str(row["video"])] = (start, end, s_sec, e_sec)
    return out


def with_ranges(items: Iterable[VideoItem], ranges: dict | None) -> list[VideoItem]:
    """``items`` with the frame range of each video found in ``ranges`` (by id); the others keep the whole video."""
    if not ranges:
        return list(items)
    return [it._replace(start_frame=r[0], end_frame=r[1], start_sec=r[2], end_sec=r[3])
            if (r := ranges.get(it.video)) is not None else it for it in items]
