"""Frame extraction with ffmpeg, and the frame store every training and evaluation step reads.
See docs/architecture.md (frame store).

The store is one plain ``.npy`` file per shard, ``results/<dataset>/frames/shard<k>.npy``: a uint8
array ``(N_shard, T, H, W, 3)`` with one row per video assigned to the shard, written row by row as
videos are decoded. Its index is ``shard<k>.status.tsv``: one line per video with ``status`` (``ok`` or
``failed``), the reason, ``row``, the video's row in the array (-1 when extraction failed; that row
is left zero), and ``warning``: empty, or why an ``ok`` video deserves a look (its annotated frame range
runs past the last decoded frame and was clamped, or ffmpeg reported decoding errors, as a truncated
file gives). Warnings are also written to the job's log and listed in the report; the video is kept.
Nothing is pickled: the array is opened with ``numpy.load(mmap_mode="r", allow_pickle=False)``, so a
shard from a shared cache cannot run code, and :class:`FrameStore` reads only the rows (and frames) a
batch needs, so a job's memory does not grow with the dataset.

With ``on_error="fail"`` an unreadable video (missing, empty, truncated, audio only, not a video, or an
annotated range that starts after its last frame) stops the job with its path in the message; with
``on_error="skip"`` it is listed as failed with the reason and downstream rules drop it (the report lists
it). Either way the shard's other videos and other shards' outputs are untouched.

Frames are resized so the short side is ``size`` and centre-cropped to ``size`` x ``size``
(``resize: crop``, aspect ratio kept, the usual input of video models), or squeezed to ``size`` x
``size`` (``resize: squeeze``). For square sources both give the same pixels.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "FrameExtractionError",
    "FrameRangeError",
    "FrameStore",
    "check_frame_range",
    "decode_images",
    "decode_video",
    "image_files",
    "sample_indices",
    "extract_shard",
    "index_path",
    "read_index",
    "write_index",
    "write_shard",
]

INDEX_COLUMNS = ["video", "status", "n_decoded", "reason", "row", "warning"]
RESIZE_MODES = ("crop", "squeeze")


class FrameExtractionError(RuntimeError):
    """A video could not be decoded; the message names the file."""


class FrameRangeError(FrameExtractionError):
    """A video decodes, but its annotated frame range lies after its last frame; the message names both."""


def _ffmpeg_cmd() -> str:
    return os.environ.get("FINEPSEUDO_FFMPEG", "ffmpeg")


def sample_indices(n_available: int, num_frames: int, start: int = 0, end: int | None = None) -> np.ndarray:
    """``num_frames`` indices spread uniformly over frames ``[start, end)`` (centre of equal bins).

    Repeats frames when the clip is shorter than ``num_frames``. Returns int64 (num_frames,).
    """
    end = n_available if end is None else min(end, n_available)
    start = max(0, min(start, end - 1))
    length = max(1, end - start)
    centres = start + (np.arange(num_frames) + 0.5) * length / num_frames
    return np.clip(np.floor(centres).astype(np.int64), start, end - 1)


def decode_video(path: str | Path, size: int, *, start_sec: float | None = None, end_sec: float | None = None,
                 resize: str = "crop", warnings: list[str] | None = None) -> np.ndarray:
    """Decode the frames of ``path`` (all of them, or those in ``[start_sec, end_sec)``), resized to
    ``size`` x ``size`` RGB (``resize``: ``crop`` keeps the aspect ratio, see the module docstring).

    With ``start_sec`` ffmpeg seeks in the input before decoding (``-ss`` as an input option: it jumps to
    the key frame before the point and decodes from there), so cutting a few seconds out of an hour-long
    video costs about as much as decoding those seconds, not the hour before them.

    Returns uint8 (n_frames, size, size, 3). Raises FrameExtractionError naming the file when it is
    missing or empty, has no video stream, ffmpeg fails, or the stream (or the requested span) holds no
    frame. When ffmpeg decodes frames but reports errors (a truncated or damaged file decodes up to the
    damage), its message is appended to ``warnings`` (when given).
    """

    if resize not in RESIZE_MODES:
        raise ValueError(f"frames.resize must be one of {RESIZE_MODES}, got {resize!r}")
    path = Path(path)
    if not path.is_file():
        raise FrameExtractionError(f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise FrameExtractionError(f"video file is empty (0 bytes): {path} (an interrupted copy or download?)")
    in_args = {}
    if start_sec is not None and start_sec > 0:
        in_args["ss"] = f"{float(start_sec):.6f}"
    if end_sec is not None:
        if end_sec <= (start_sec or 0.0):
            raise FrameExtractionError(f"empty time span [{start_sec}, {end_sec}) s requested from {path}")
        in_args["t"] = f"{float(end_sec) - float(start_sec or 0.0):.6f}"
    return _run_ffmpeg(str(path), size, resize, in_args, what=str(path), span=in_args, warnings=warnings)


# ffmpeg's words for an input without a video stream (audio only, or data only)
_NO_VIDEO = ("does not contain any stream", "matches no streams", "no video stream")


def _run_ffmpeg(source: str, size: int, resize: str, in_args: dict, *, what: str, span: dict | None = None,
                warnings: list[str] | None = None) -> np.ndarray:
    """Decode ``source`` (ffmpeg input options ``in_args``) to uint8 (n, size, size, 3) RGB frames;
    ffmpeg's error messages on a successful decode go to ``warnings``."""
    import ffmpeg  # ffmpeg-python

    stream = ffmpeg.input(source, **in_args)
    if resize == "crop":
        stream = stream.filter("scale", size, size, flags="area", force_original_aspect_ratio="increase")
        stream = stream.filter("crop", size, size)
    else:
        stream = stream.filter("scale", size, size, flags="area")
    try:
        out, err = (
            stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", vsync="passthrough")
            .global_args("-nostdin", "-loglevel", "error")
            .run(cmd=_ffmpeg_cmd(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:  # non-zero exit status
        msg = exc.stderr.decode(errors="replace").strip().splitlines()
        text = (" | ".join(msg[-3:]) or str(exc)).rstrip(".")  # the caller may append a sentence
        if any(w in " ".join(msg).lower() for w in _NO_VIDEO):
            raise FrameExtractionError(f"{what} has no video stream (audio only?): ffmpeg says {text}") from None
        raise FrameExtractionError(f"ffmpeg could not decode {what} (truncated, damaged or not a video file?): "
                                   f"{text}") from None
    except FileNotFoundError:
        raise FrameExtractionError(
            f"the ffmpeg binary '{_ffmpeg_cmd()}' was not found: install ffmpeg (scripts/setup.sh does)"
        ) from None
    frame_bytes = size * size * 3
    if len(out) < frame_bytes:
        detail = err.decode(errors="replace").strip()
        where = f" in the span {span}" if span else ""
        raise FrameExtractionError(f"no frame could be decoded from {what}{where}" + (f": {detail}" if detail else ""))
    n = len(out) // frame_bytes
    detail = err.decode(errors="replace").strip().splitlines()
    if detail and warnings is not None:
        warnings.append(f"ffmpeg reported errors while decoding {what} (truncated or damaged file?), {n} frames "
                        f"decoded: {' | '.join(detail[-2:])}")
    return np.frombuffer(out[: n * frame_bytes], np.uint8).reshape(n, size, size, 3)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def image_files(folder: str | Path) -> list[Path]:
    """The frame images of a clip folder, in frame order (file names sort as numbers when they are numbers)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not files:
        raise FrameExtractionError(f"no frame images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return sorted(files, key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))


def decode_images(paths: Sequence[str | Path], size: int, *, resize: str = "crop",
                  warnings: list[str] | None = None) -> np.ndarray:
    """Decode image files (JPEG / PNG) in one ffmpeg call (its concat demuxer, one frame per file) with the
    same resizing as :func:`decode_video`. Returns uint8 (n, size, size, 3); an unreadable image raises
    FrameExtractionError naming the folder and ffmpeg's message."""
    import tempfile

    if not paths:
        return np.zeros((0, size, size, 3), np.uint8)
    lines = ["ffconcat version 1.0"]
    for p in paths:
        quoted = str(Path(p).resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", "duration 1"]
    with tempfile.NamedTemporaryFile("w", suffix=".ffconcat", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        listing = f.name
    try:
        frames = _run_ffmpeg(listing, size, resize, {"f": "concat", "safe": 0},
                             what=f"frame images in {Path(paths[0]).parent}", warnings=warnings)
    finally:
        os.unlink(listing)
    if len(frames) != len(paths):
        raise FrameExtractionError(f"decoded {len(frames)} of {len(paths)} frame images in {Path(paths[0]).parent}")
    return frames


def index_path(shard: str | Path) -> Path:
    """The index (status) file of a shard array: ``shard3.npy`` -> ``shard3.status.tsv``."""
    shard = Path(shard)
    return shard.with_name(shard.name[: -len(".npy")] + ".status.tsv" if shard.name.endswith(".npy")
                           else shard.name + ".status.tsv")


def extract_shard(
    videos: Sequence[tuple],
    out: str | Path,
    *,
    num_frames: int,
    size: int,
    on_error: str = "fail",
    resize: str = "crop",
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Decode and sample a list of videos into the shard array ``out`` (``.npy``), row by row.

    ``videos``: (video_id, path, start_frame, end_frame[, start_sec, end_sec]) with end exclusive, end < 0
    meaning the whole clip; ``path`` a video file or a folder of frame images (only the sampled images
    are decoded). With ``start_sec``/``end_sec`` (not NaN) only that time span is decoded, by
    seeking, and the frame range counts from its first frame. Memory holds one decoded video at a time.
    The array is written to a temporary name and renamed when complete. Returns the index rows (one dict
    per input video: video, status, n_decoded, reason, row, warning), which the caller writes with
    :func:`write_index`.

    A frame range whose end lies past the last decoded frame is clamped to it, and the video kept with a
    ``warning`` (logged, recorded in its row); one whose start lies there has no frame to sample and
    fails like an unreadable file (``on_error``).
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"frames.on_error must be 'fail' or 'skip', got {on_error!r}")
    out = Path(out)
    tmp = out.with_name(out.name + ".partial.npy")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(videos), num_frames, size, size, 3))
    rows = []
    t0 = time.time()
    try:
        for i, item in enumerate(videos):
            vid, path, start, end = item[:4]
            span = _time_span(item)
            stop = None if end is None or end < 0 else int(end)
            warnings: list[str] = []
            try:
                if Path(path).is_dir():  # a folder of frame images (FineDiving): decode only the sampled ones
                    files = image_files(path)
                    n_decoded = len(files)
                    check_frame_range(vid, path, int(start), stop, n_decoded, span, warnings)
                    idx = sample_indices(n_decoded, num_frames, int(start), stop)
                    arr[i] = decode_images([files[j] for j in idx], size, resize=resize, warnings=warnings)
                else:
                    frames = decode_video(path, size, start_sec=span[0], end_sec=span[1], resize=resize,
                                          warnings=warnings)
                    n_decoded = len(frames)
                    check_frame_range(vid, path, int(start), stop, n_decoded, span, warnings)
                    arr[i] = frames[sample_indices(n_decoded, num_frames, int(start), stop)]
                for w in warnings:
                    log(f"[extract] WARNING {vid}: {w}")
                rows.append({"video": vid, "status": "ok", "n_decoded": n_decoded, "reason": "", "row": i,
                             "warning": "; ".join(warnings)})
            except FrameExtractionError as exc:
                if on_error == "fail":
                    fix = ("Fix the video's start_frame / end_frame in the annotation"
                           if isinstance(exc, FrameRangeError) else "Fix or remove the file")
                    raise type(exc)(
                        f"{exc}. {fix}, or set frames.on_error: skip in the config "
                        "to leave it out and list it in the report."
                    ) from None
                log(f"[extract] SKIPPED {vid}: {exc}")
                rows.append({"video": vid, "status": "failed", "n_decoded": 0, "reason": str(exc), "row": -1,
                             "warning": ""})
            done = i + 1
            if done % 20 == 0 or done == len(videos):
                rate = done / max(time.time() - t0, 1e-9)
                log(f"[extract] {done}/{len(videos)} videos, {rate:.1f} videos/s, "
                    f"{(len(videos) - done) / rate:.0f} s left")
        arr.flush()
        del arr
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def check_frame_range(vid: str, path, start: int, stop: int | None, n: int, span: tuple, warnings: list[str]) -> None:
    """Raise FrameRangeError when frames [start, stop) start past the ``n`` frames there are; add a warning
    when they end past them (the range is clamped to the last frame)."""
    where = f" of the span [{span[0]}, {span[1]}) s" if span[0] is not None or span[1] is not None else ""
    if start >= n:
        raise FrameRangeError(f"video '{vid}' ({path}): the annotated frame range [{start}, "
                              f"{'end' if stop is None else stop}) starts after its last frame ({n} frames "
                              f"decoded{where}); no frame of it exists")
    if stop is not None and stop > n:
        warnings.append(f"the annotated frame range [{start}, {stop}) runs past the last frame of {path} ({n} frames "
                        f"decoded{where}): sampled from [{start}, {n}) instead; check the annotation's end_frame "
                        "and the file")


def _time_span(item: tuple) -> tuple[float | None, float | None]:
    if len(item) < 6:
        return None, None
    s, e = item[4], item[5]
    s = None if s is None or (isinstance(s, float) and np.isnan(s)) else float(s)
    e = None if e is None or (isinstance(e, float) and np.isnan(e)) else float(e)
    return s, e


def write_index(path: str | Path, rows: list[dict]) -> None:
    """Write a shard's index (status) table."""
    import pandas as pd

    pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(path, sep="\t", index=False)


def read_index(shard: str | Path):
    """A shard's index as a DataFrame (video, status, n_decoded, reason, row); errors name the file."""
    import pandas as pd

    p = index_path(shard)
    if not p.is_file():
        raise FileNotFoundError(f"index of frame shard {shard} not found: expected {p} (written by extract_frames)")
    tab = pd.read_csv(p, sep="\t", dtype={"video": str, "reason": str, "warning": str}, keep_default_na=False)
    if "row" not in tab.columns:
        raise ValueError(f"{p} has no 'row' column: it was written by an older version; rerun extract_frames "
                         "(delete the frames folder)")
    if "warning" not in tab.columns:  # written before per-video warnings were recorded
        tab["warning"] = ""
    return tab


def write_shard(path: str | Path, videos: Sequence[str], frames) -> None:
    """Write ``frames`` (uint8 (N, T, H, W, 3), numpy or torch) for ``videos`` as a shard and its index:
    the store format without ffmpeg (tests, benchmarks, adapters that already hold frames)."""
    data = np.ascontiguousarray(np.asarray(frames), dtype=np.uint8)
    if data.ndim != 5 or data.shape[-1] != 3 or data.shape[0] != len(videos):
        raise ValueError(f"frames must be (N, T, H, W, 3) with N = {len(videos)} videos, got {data.shape}")
    np.save(path, data, allow_pickle=False)
    write_index(index_path(path), [{"video": v, "status": "ok", "n_decoded": data.shape[1], "reason": "", "row": i,
                                    "warning": ""} for i, v in enumerate(videos)])


class FrameStore:
    """The frames of a set of videos, read lazily from shard arrays (memory-mapped, never pickled).

    Behaves like the uint8 tensor ``(N, T, H, W, 3)`` the steps used to hold in memory, for the ways they
    index it: ``len(store)``, ``store.shape``, ``store[i]``, ``store[a:b]``, ``store[index_array]`` and
    ``store[rows, t]`` where ``rows`` holds one video index per leading position (shape ``(B, 1, ...)``)
    and ``t`` frame indices per video (shape ``(B, ...)``, or 1-D shared by all), as in
    ``clips[idx[:, None], t_idx]``. Each access copies only the rows and frames it asks for into a new
    torch tensor. ``ids`` are the video ids, in the order asked for (``videos``), without those that
    have no frames. Arrays are opened per process on first use, so a store can be sent to
    ``torch.utils.data`` worker processes.
    """

    def __init__(self, shards: Sequence[str | Path], videos: Sequence[str] | None = None):
        self._paths = [str(p) for p in shards]
        where: dict[str, tuple[int, int]] = {}
        order: list[str] = []
        geom = None
        for k, p in enumerate(self._paths):
            arr = _open_array(p)
            if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
                raise ValueError(f"frame shard {p} is not a uint8 (N, T, H, W, 3) array: {arr.dtype} {arr.shape}")
            if geom is None:
                geom = arr.shape[1:]
            elif arr.shape[1:] != geom:
                raise ValueError(f"frame shard {p} holds frames of shape {arr.shape[1:]}, other shards {geom}: "
                                 "all shards must come from one extraction (same frames.num_frames and size)")
            tab = read_index(p)
            for vid, status, row in zip(tab["video"], tab["status"], tab["row"]):
                if status != "ok":
                    continue
                if not 0 <= int(row) < arr.shape[0]:
                    raise ValueError(f"{index_path(p)}: row {row} of video {vid} is outside {p} ({arr.shape[0]} rows)")
                where[vid] = (k, int(row))
                order.append(vid)
        wanted = order if videos is None else [v for v in videos if v in where]
        self.ids: list[str] = list(wanted)
        self._loc = np.array([where[v] for v in wanted], np.int64).reshape(-1, 2)
        self.shape = (len(wanted), *(geom if geom is not None else (0, 0, 0, 3)))
        self._arrays: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def ndim(self) -> int:
        return 5

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_arrays"] = None  # memory maps are reopened in the receiving process
        return state

    def _rows(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            return np.arange(len(self))[rows]
        r = np.asarray(rows.cpu() if hasattr(rows, "cpu") else rows, dtype=np.int64)
        if r.size and (r.min() < -len(self) or r.max() >= len(self)):
            raise IndexError(f"video index out of range for a store of {len(self)} videos")
        return np.where(r < 0, r + len(self), r)

    def _read(self, i: int, t=None) -> np.ndarray:
        if self._arrays is None:
            self._arrays = [_open_array(p) for p in self._paths]
        k, row = self._loc[i]
        return self._arrays[k][row] if t is None else self._arrays[k][row, t]

    def __getitem__(self, key):
        import torch

        if isinstance(key, tuple):
            if len(key) != 2:
                raise IndexError("a FrameStore is indexed by videos, or by (videos, frame indices)")
            rows, t = key
            r = self._rows(rows)
            t = np.asarray(t.cpu() if hasattr(t, "cpu") else t, dtype=np.int64)
            if np.ndim(rows) == 0 and not isinstance(rows, slice):  # store[i, t]
                return torch.from_numpy(np.ascontiguousarray(self._read(int(r), t)))
            r = r.reshape(-1)
            if t.ndim <= 1:
                if not len(r):
                    return torch.zeros((0, *t.shape, *self.shape[2:]), dtype=torch.uint8)
                return torch.from_numpy(np.stack([self._read(int(i), t) for i in r]))
            if t.shape[0] != len(r):
                raise IndexError(f"frame indices of shape {t.shape} do not match {len(r)} videos")
            flat = t.reshape(len(r), -1)
            out = np.stack([self._read(int(i), flat[b]) for b, i in enumerate(r)])
            return torch.from_numpy(out.reshape(len(r), *t.shape[1:], *self.shape[2:]))
        if isinstance(key, (int, np.integer)) or (hasattr(key, "ndim") and key.ndim == 0):
            return torch.from_numpy(np.array(self._read(int(self._rows(int(key))))))
        r = self._rows(key)
        if not len(r):
            return torch.zeros((0, *self.shape[1:]), dtype=torch.uint8)
        return torch.from_numpy(np.stack([self._read(int(i)) for i in r]))


def _open_array(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"frame shard not found: {p} (written by extract_frames)")
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{p} is not a frame shard array (.npy without pickled objects): {exc}. Frame shards "
                         "from before the memory-mapped store (shard<k>.pt) must be re-extracted.") from None


def ffmpeg_version() -> str:
    try:
        out = subprocess.run([_ffmpeg_cmd(), "-version"], capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        return "ffmpeg not found"
