"""Streaming prediction over many videos: decode, clip, batch, forward, write, one batch at a time.

Videos are decoded by a few threads (each runs ffmpeg, the workflow's own frame extraction:
:func:`finepseudo.data.frames.decode_video` and :func:`~finepseudo.data.frames.sample_indices`) while the
model runs on the batch before, and every row is written as soon as its batch is done. What is held at once is
two batches of sampled frames and the videos being decoded, so memory does not grow with the number of videos.

A video that cannot be decoded (missing, empty, truncated, not a video, a frame range past its end) gets a row
with status ``failed`` and the reason, and the others are still predicted. A video with fewer frames than a
clip takes is padded by repeating frames (as the workflow's extraction does for short clips) and says so:
status ``padded``. An ``ok`` video that ffmpeg decoded with errors, or whose range was clamped, carries the
warning in ``reason``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np

from finepseudo.export.videos import VideoItem

__all__ = ["decode_item", "columns", "iter_rows", "TableWriter", "run_prediction", "TOP_K"]

#: Classes listed per video (fewer when the model has fewer classes).
TOP_K = 5


def decode_item(item: VideoItem, prep: dict) -> tuple[np.ndarray, int, list[str]]:
    """Decode one video and sample ``frames_per_video`` frames from its range, exactly as the workflow's
    ``extract_frames`` does for a shard row -> (uint8 (frames_per_video, S, S, 3), frames in the range,
    warnings). Raises :class:`~finepseudo.data.frames.FrameExtractionError` naming the file."""
    from finepseudo.data.frames import check_frame_range, decode_images, decode_video, image_files, sample_indices

    t, size, resize = prep["frames_per_video"], prep["frame_size"], prep["resize"]
    start = int(item.start_frame or 0)
    stop = None if item.end_frame is None or item.end_frame < 0 else int(item.end_frame)
    span = (item.start_sec, item.end_sec)
    warnings: list[str] = []
    path = Path(item.path)
    if path.is_dir():  # a folder of frame images: decode only the sampled ones
        files = image_files(path)
        n = len(files)
        check_frame_range(item.video, path, start, stop, n, span, warnings)
        frames = decode_images([files[j] for j in sample_indices(n, t, start, stop)], size, resize=resize,
                               warnings=warnings)
    else:
        decoded = decode_video(path, size, start_sec=span[0], end_sec=span[1], resize=resize, warnings=warnings)
        n = len(decoded)
        check_frame_range(item.video, path, start, stop, n, span, warnings)
        frames = decoded[sample_indices(n, t, start, stop)]
    used = (n if stop is None else min(stop, n)) - start
    return np.ascontiguousarray(frames), int(used), warnings


def columns(model) -> list[str]:
    """The columns of a predictions table for ``model`` (an :class:`~finepseudo.export.model.ExportedModel`):
    video, path, status (ok | padded | failed), reason, frames (decoded frames in the range), pred / pred_name /
    confidence (the prediction and p_E as the workflow's evaluation computes them), top<k>_class / _name / _prob
    (the k most likely classes by calibrated p_E) and, with phi_A, pA_class / pA_name / pA_prob."""
    cols = ["video", "path", "status", "reason", "frames", "pred", "pred_name", "confidence"]
    for k in range(1, min(TOP_K, len(model.classes)) + 1):
        cols += [f"top{k}_class", f"top{k}_name", f"top{k}_prob"]
    if model.has_alignability:
        cols += ["pA_class", "pA_name", "pA_prob"]
    return cols


def _decode_safe(item: VideoItem, prep: dict):
    try:
        return decode_item(item, prep), None
    except Exception as exc:  # noqa: BLE001 - any unreadable input becomes a row with its reason
        return None, f"{exc}" if str(exc) else type(exc).__name__


def iter_rows(model, items: Iterable[VideoItem], *, batch_size: int | None = None,
              workers: int = 2) -> Iterator[tuple[dict, np.ndarray | None]]:
    """Rows of the predictions table, in the order of ``items``, each with the video's sampled frames (None when it
    failed). ``batch_size`` videos per forward pass (default: the card's, the evaluation's); ``workers``
    decoding threads. The next batch is decoded while the model runs on the current one."""
    prep = model.preprocessing
    batch_size = int(batch_size or prep["batch_size"])
    names = model.classes
    k = min(TOP_K, len(names))
    need = model.min_frames
    it = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        def submit() -> list:
            return [(item, pool.submit(_decode_safe, item, prep)) for item in islice(it, batch_size)]

        current = submit()
        while current:
            ahead = submit()  # decoded by the threads while this batch is forwarded
            done = [(item, *fut.result()) for item, fut in current]
            ok = [(i, d) for i, (_, d, _) in enumerate(done) if d is not None]
            pred = model.predict_frames(np.stack([d[0] for _, d in ok])) if ok else None
            where = {i: j for j, (i, _) in enumerate(ok)}
            for i, (item, decoded, error) in enumerate(done):
                row = {"video": item.video, "path": item.path}
                if decoded is None:
                    yield {**row, "status": "failed", "reason": error}, None
                    continue
                frames, used, warnings = decoded
                j = where[i]
                reasons = []
                status = "ok"
                if used < need:
                    status = "padded"
                    reasons.append(f"{used} frame(s), fewer than the {need} a clip takes: frames repeated to fill it, "
                                   "as the workflow's frame extraction does")
                reasons += [f"warning: {w}" for w in warnings]
                row.update(status=status, reason="; ".join(reasons), frames=used, pred=int(pred.probs[j].argmax()))
                row["pred_name"] = names[row["pred"]]
                row["confidence"] = round(float(pred.probs[j].max()), 6)
                order = np.argsort(-pred.calibrated[j], kind="stable")[:k]
                for r, c in enumerate(order, start=1):
                    row[f"top{r}_class"], row[f"top{r}_name"] = int(c), names[c]
                    row[f"top{r}_prob"] = round(float(pred.calibrated[j, c]), 6)
                if pred.p_a is not None:
                    c = int(pred.p_a[j].argmax())
                    row.update(pA_class=c, pA_name=names[c], pA_prob=round(float(pred.p_a[j, c]), 6))
                yield row, frames
            current = ahead


class TableWriter:
    """Writes a predictions table (TSV) row by row, so nothing accumulates in memory."""

    def __init__(self, path: str | Path, cols: list[str]):
        self.cols = cols
        self._f = open(path, "w", newline="")  # noqa: SIM115 - closed by close()
        self._w = csv.DictWriter(self._f, fieldnames=cols, delimiter="\t", extrasaction="raise", restval="",
                                 lineterminator="\n")
        self._w.writeheader()

    def write(self, row: dict) -> None:
        self._w.writerow({k: ("" if v is None else v) for k, v in row.items()})

    def close(self) -> None:
        self._f.close()


def run_prediction(model, items: list[VideoItem], out: str | Path, *, page: str | Path | None = None,
                   title: str = "", batch_size: int | None = None, workers: int = 2,
                   on_row: Callable[[dict], None] | None = None) -> dict[str, int]:
    """Predict ``items`` with ``model`` and write the table ``out`` (TSV) and, when given, the HTML ``page`` (a frame
    strip and the top-3 per video), both streamed. ``on_row`` is called with every row (progress). Returns the count
    of rows per status."""
    from finepseudo.export.page import PageWriter

    table = TableWriter(out, columns(model))
    sheet = PageWriter(page, model, title) if page else None
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    try:
        for row, frames in iter_rows(model, items, batch_size=batch_size, workers=workers):
            table.write(row)
            if sheet is not None:
                sheet.write(row, frames)
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            if on_row is not None:
                on_row(row)
    finally:
        table.close()
        if sheet is not None:
            sheet.close(counts, time.perf_counter() - t0)
    return counts
