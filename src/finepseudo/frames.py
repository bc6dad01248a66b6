"""Frame extraction with ffmpeg-python into sharded uint8 tensors.

A shard holds many videos (never one job per frame or per video): ``results/<dataset>/frames/
shard<k>.pt`` is a dict ``{"videos": [str], "frames": uint8 tensor (N, T, H, W, 3), "num_frames": T,
"size": S}``, and ``shard<k>.status.tsv`` lists every video assigned to the shard with ``status``
``ok`` or ``failed`` and the reason. With ``on_error="fail"`` an unreadable video stops the job with
its path in the message; with ``on_error="skip"`` it is listed as failed and left out of the tensor,
and downstream rules drop it (the report lists it). Either way other shards' outputs are untouched.
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
    "probe_num_frames",
    "decode_video",
    "sample_indices",
    "extract_shard",
    "load_shards",
]


class FrameExtractionError(RuntimeError):
    """A video could not be decoded; the message names the file."""


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


def decode_video(path: str | Path, size: int) -> np.ndarray:
    """Decode every frame of ``path``, resized to ``size`` x ``size`` RGB.

    Returns uint8 (n_frames, size, size, 3). Raises FrameExtractionError naming the file when
    ffmpeg fails or the stream holds no frame.
    """
    import ffmpeg  # ffmpeg-python

    path = Path(path)
    if not path.is_file():
        raise FrameExtractionError(f"video file not found: {path}")
    try:
        out, err = (
            ffmpeg.input(str(path))
            .filter("scale", size, size, flags="area")
            .output("pipe:", format="rawvideo", pix_fmt="rgb24", vsync="passthrough")
            .global_args("-nostdin", "-loglevel", "error")
            .run(cmd=_ffmpeg_cmd(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:  # non-zero exit status
        msg = exc.stderr.decode(errors="replace").strip().splitlines()
        raise FrameExtractionError(f"ffmpeg could not decode {path}: {' | '.join(msg[-3:]) or exc}") from None
    except FileNotFoundError:
        raise FrameExtractionError(
            f"the ffmpeg binary '{_ffmpeg_cmd()}' was not found: install ffmpeg (scripts/setup.sh does)"
        ) from None
    frame_bytes = size * size * 3
    if len(out) < frame_bytes:
        detail = err.decode(errors="replace").strip()
        raise FrameExtractionError(f"no frame could be decoded from {path}" + (f": {detail}" if detail else ""))
    n = len(out) // frame_bytes
    return np.frombuffer(out[: n * frame_bytes], np.uint8).reshape(n, size, size, 3)


def probe_num_frames(path: str | Path) -> int:
    """Number of decodable frames (by decoding at 16 px; exact, unlike container metadata)."""
    return int(decode_video(path, 16).shape[0])


def extract_shard(
    videos: Sequence[tuple[str, str, int, int]],
    *,
    num_frames: int,
    size: int,
    on_error: str = "fail",
    log: Callable[[str], None] = print,
) -> tuple[dict, list[dict]]:
    """Decode and sample a list of videos.

    ``videos``: (video_id, path, start_frame, end_frame) with end exclusive, end < 0 meaning the
    whole clip. Returns ``(shard, status_rows)``: shard as described in the module docstring,
    status_rows one dict per input video (video, status, n_decoded, reason).
    """
    import torch

    if on_error not in ("fail", "skip"):
        raise ValueError(f"frames.on_error must be 'fail' or 'skip', got {on_error!r}")
    kept, arrays, rows = [], [], []
    t0 = time.time()
    for i, (vid, path, start, end) in enumerate(videos):
        try:
            frames = decode_video(path, size)
            idx = sample_indices(len(frames), num_frames, start, None if end is None or end < 0 else end)
            arrays.append(frames[idx])
            kept.append(vid)
            rows.append({"video": vid, "status": "ok", "n_decoded": len(frames), "reason": ""})
        except FrameExtractionError as exc:
            if on_error == "fail":
                raise FrameExtractionError(
                    f"{exc}. Fix or remove the file, or set frames.on_error: skip in the config "
                    "to leave it out and list it in the report."
                ) from None
            log(f"[extract] SKIPPED {vid}: {exc}")
            rows.append({"video": vid, "status": "failed", "n_decoded": 0, "reason": str(exc)})
        done = i + 1
        if done % 20 == 0 or done == len(videos):
            rate = done / max(time.time() - t0, 1e-9)
            log(f"[extract] {done}/{len(videos)} videos, {rate:.1f} videos/s, "
                f"{(len(videos) - done) / rate:.0f} s left")
    data = np.stack(arrays) if arrays else np.zeros((0, num_frames, size, size, 3), np.uint8)
    shard = {"videos": kept, "frames": torch.from_numpy(data), "num_frames": num_frames, "size": size}
    return shard, rows


def load_shards(paths: Sequence[str | Path], videos: Sequence[str] | None = None):
    """Load shards and return ``(frames, ids)`` in the order of ``videos`` (or shard order).

    frames: uint8 tensor (N, T, H, W, 3). Videos absent from every shard (failed extraction) are
    dropped from the result; ``ids`` says which were kept.
    """
    import torch

    by_id: dict[str, torch.Tensor] = {}
    order: list[str] = []
    for p in paths:
        shard = torch.load(p, weights_only=False)
        for j, vid in enumerate(shard["videos"]):
            by_id[vid] = shard["frames"][j]
            order.append(vid)
    wanted = order if videos is None else [v for v in videos if v in by_id]
    if not wanted:
        return torch.zeros((0,), dtype=torch.uint8), []
    return torch.stack([by_id[v] for v in wanted]), list(wanted)


def ffmpeg_version() -> str:
    try:
        out = subprocess.run([_ffmpeg_cmd(), "-version"], capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        return "ffmpeg not found"
