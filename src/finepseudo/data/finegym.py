"""FineGym adapter: the official Gym99 / Gym288 element lists and temporal annotation -> manifest rows.

Official files (https://sdolivia.github.io/FineGym/, v1.1):

* element lists ``gym99_train_element_v1.1.txt`` / ``gym99_val_element.txt`` (and ``gym288_*``): one
  element per line, ``<element id> <class label>``, where the id is
  ``<YouTube id>_E_<event start>_<event end>_A_<element start>_<element end>`` (event bounds in whole
  seconds of the raw video, element bounds in whole seconds of the event; the YouTube id may itself
  contain ``_``);
* ``gym99_categories.txt`` / ``gym288_categories.txt``: ``Clabel: <k>; set: <s>; Glabel: <g>; <name>``;
* ``finegym_annotation_info_v1.1.json``: ``{YouTube id: {"E_<s>_<e>": {"event": int, "timestamps":
  [[start, end]] (seconds in the raw video), "segments": {"A_<s>_<e>": {"stages": int, "timestamps":
  [[start, end], ...] (seconds in the event)}} or null}}}``.

An element is cut from its video by seeking (``start_sec`` / ``end_sec`` in the manifest): from the raw
YouTube video ``<videos_dir>/<YouTube id><ext>`` (``dataset.source: raw``, the event start plus the
element's first and last stage times) or from event videos ``<videos_dir>/<YouTube id>_E_<s>_<e><ext>``
cut beforehand (``dataset.source: event``, the element's times as annotated).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from finepseudo.data.errors import AnnotationError

__all__ = ["read_categories", "read_element_list", "read_finegym"]

_ELEMENT = re.compile(r"^(?P<video>.+)_(?P<event>E_\d+_\d+)_(?P<element>A_\d+_\d+)$")
_CATEGORY = re.compile(r"^Clabel:\s*(?P<k>\d+);\s*set:\s*(?P<set>\d+);\s*Glabel:\s*(?P<g>\d+);\s*(?P<name>.+?)\s*$")


def read_categories(path: str | Path) -> list[str]:
    """Class names indexed by ``Clabel`` (which must run 0..C-1, each once)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"FineGym category file not found: {path} (config key dataset.vocab)")
    names: dict[int, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        m = _CATEGORY.match(line.strip())
        if not m:
            raise AnnotationError(f"{path}, line {n}: expected 'Clabel: <k>; set: <s>; Glabel: <g>; <name>', "
                                  f"got {line.strip()[:80]!r}")
        k = int(m["k"])
        if k in names:
            raise AnnotationError(f"{path}, line {n}: Clabel {k} appears twice")
        names[k] = m["name"]
    if sorted(names) != list(range(len(names))) or not names:
        raise AnnotationError(f"{path}: Clabel values must be 0..C-1 without gaps, got {sorted(names)[:5]}...")
    return [names[k] for k in range(len(names))]


def read_element_list(path: str | Path, num_classes: int) -> pd.DataFrame:
    """``<element id> <label>`` lines -> columns element, video, event, segment, label; errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"FineGym element list not found: {path} (config keys dataset.train_annotations / "
                              "dataset.test_annotations)")
    rows, seen = [], set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}, line {n}"
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise AnnotationError(f"{where}: expected '<element id> <label>', got {line.strip()[:80]!r}")
        m = _ELEMENT.match(parts[0])
        if not m:
            raise AnnotationError(f"{where}: element id {parts[0]!r} is not <video>_E_<s>_<e>_A_<s>_<e>")
        label = int(parts[1])
        if not 0 <= label < num_classes:
            raise AnnotationError(f"{where} ({parts[0]}): label {label} is outside the {num_classes} categories")
        if parts[0] in seen:
            raise AnnotationError(f"{where}: element {parts[0]} is listed twice in this file")
        seen.add(parts[0])
        rows.append({"element": parts[0], "video": m["video"], "event": m["event"], "segment": m["element"],
                     "label": label})
    if not rows:
        raise AnnotationError(f"{path}: the element list is empty; check that the config names the right file")
    return pd.DataFrame(rows, columns=["element", "video", "event", "segment", "label"])


def _span(info: dict, row, info_path: Path) -> tuple[float, float, float]:
    """(event start in the raw video, element start, element end in the event), in seconds; errors name the
    annotation file, the element and what is missing or wrong."""
    where = f"{info_path}: element {row.element}"
    try:
        event = info[row.video][row.event]
    except (KeyError, TypeError):
        raise AnnotationError(f"{where}: no event {row.video} / {row.event} in the temporal annotation") from None
    if not isinstance(event, dict):
        raise AnnotationError(f"{where}: event {row.event} is {event!r}, expected an object with 'timestamps'")
    try:
        ev_start, ev_end = (float(t) for t in event["timestamps"][0])
    except (KeyError, IndexError, TypeError, ValueError):
        raise AnnotationError(f"{where}: event {row.event} has no [start, end] timestamps (seconds), got "
                              f"{event.get('timestamps')!r}") from None
    if not 0 <= ev_start < ev_end:
        raise AnnotationError(f"{where}: event {row.event} has a bad time span [{ev_start}, {ev_end}) s; "
                              "need 0 <= start < end")
    segments = event.get("segments") or {}
    if not isinstance(segments, dict) or row.segment not in segments:
        raise AnnotationError(f"{where}: no timestamps for segment {row.segment} of event {row.event}")
    try:
        stages = segments[row.segment]["timestamps"]
        start, end = float(stages[0][0]), float(stages[-1][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise AnnotationError(f"{where}: no timestamps for segment {row.segment} of event {row.event} (expected "
                              "'timestamps': [[start, end], ...] in seconds of the event)") from None
    if not 0 <= start < end:
        raise AnnotationError(f"{where}: bad element time span [{start}, {end}) s (seconds of event {row.event}); "
                              "need 0 <= start < end")
    return ev_start, start, end


def read_finegym(train_list: str | Path, test_list: str | Path, categories: str | Path, timestamps: str | Path,
                 videos_dir: str | Path, *, video_ext: str = ".mp4", source: str = "raw") -> tuple[pd.DataFrame, list[str]]:
    """Rows (video = element id, path, split, label, start_frame, end_frame, start_sec, end_sec) and class names."""
    if source not in ("raw", "event"):
        raise AnnotationError(f"config key dataset.source must be 'raw' or 'event' for FineGym, got {source!r}")
    names = read_categories(categories)
    info_path = Path(timestamps)
    if not info_path.is_file():
        raise AnnotationError(f"FineGym temporal annotation not found: {info_path} (config key dataset.timestamps)")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{info_path} is not valid JSON: {exc}") from None
    if not isinstance(info, dict):
        raise AnnotationError(f"{info_path}: expected a JSON object keyed by YouTube id (the FineGym temporal "
                              f"annotation), got a {type(info).__name__}")
    videos_dir = Path(videos_dir)
    rows = []
    for split, path in (("train", train_list), ("test", test_list)):
        for row in read_element_list(path, len(names)).itertuples(index=False):
            ev_start, start, end = _span(info, row, info_path)
            if source == "raw":
                file, s, e = videos_dir / f"{row.video}{video_ext}", ev_start + start, ev_start + end
            else:
                file, s, e = videos_dir / f"{row.video}_{row.event}{video_ext}", start, end
            rows.append({"video": row.element, "path": str(file), "split": split, "label": row.label,
                         "start_frame": 0, "end_frame": -1, "start_sec": round(s, 3), "end_sec": round(e, 3)})
    return pd.DataFrame(rows), names
