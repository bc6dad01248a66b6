"""Writing the SynthDive dataset: :func:`generate` renders the planned videos (in worker processes if asked),
encodes them with ``ffmpeg`` and writes the annotations.

Outputs of :func:`generate` (``out_dir``):

- ``videos/<vid_name>.mp4``: H.264, yuv420p, written by piping raw RGB frames to ``ffmpeg``;
- ``annotations/{train,test}.json``: Diving48 V2 format, a list of
  ``{"vid_name", "label", "start_frame", "end_frame"}``. ``frames[start_frame:end_frame]``
  (``end_frame`` **exclusive**) is the action (first to last non-idle frame) with a margin of
  ``annotation_margin`` idle frames on each side, as real, imprecise annotations have;
  ``label`` indexes ``vocab.json``;
- ``annotations/vocab.json``: the official vocabulary format, a list of
  ``[takeoff, somersaults, twists, position]`` indexed by SynthDive label (known classes
  ``0..K-1`` first, then novel classes);
- ``annotations/classes.json``: per label its Diving48 label, attributes, and ``novel`` flag;
- ``annotations/phases.json``: ``{vid_name: [phase name per video frame]}`` with phase names in
  :data:`~finepseudo.data.synthdive.spec.PHASES` (for alignment analysis only, never for training);
- ``annotations/summary.json``: the summary dict returned by :func:`generate`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np

from finepseudo.data.synthdive.drawing import render_video
from finepseudo.data.synthdive.spec import class_table, load_diving48_vocab, parse_class, resolve_config

_SPLIT_CODE = {"train": 0, "test": 1}
_CHUNK = 32  # videos per ffmpeg process (fixed: the encoded bytes depend on it)


def _encode_chunk(frames: list[np.ndarray], paths: list[Path], fps: int, crf: int) -> None:
    """Encode several videos with one ffmpeg process (start-up costs ~0.1 s of CPU per process).

    The frames of all videos are piped as one raw RGB stream; an IDR key frame is forced at each
    video's first frame and the segment muxer cuts one mp4 per video there. B-frames are off so
    every file starts at timestamp 0. frames: list of (T_i, S, S, 3) uint8.
    """
    size = frames[0].shape[1]
    starts = np.cumsum([0] + [len(f) for f in frames])[:-1]
    tmp = paths[0].parent / f".encode_{paths[0].stem}"
    tmp.mkdir(parents=True, exist_ok=True)
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{size}x{size}", framerate=fps)
    opts: dict[str, Any] = {
        "vcodec": "libx264", "pix_fmt": "yuv420p", "crf": crf, "preset": "veryfast", "bf": 0,
        "threads": 1, "x264-params": "forced-idr=1", "map_metadata": -1, "fflags": "+bitexact",
        "flags:v": "+bitexact", "loglevel": "error",
        "force_key_frames": "expr:" + "+".join(f"eq(n,{int(n)})" for n in starts),
        "f": "segment", "segment_format": "mp4", "reset_timestamps": 1,
    }
    if len(frames) > 1:
        opts["segment_frames"] = ",".join(str(int(n)) for n in starts[1:])
    stream = ffmpeg.output(stream, str(tmp / "%05d.mp4"), **opts)
    proc = ffmpeg.run_async(stream, cmd="ffmpeg", pipe_stdin=True, pipe_stderr=True, overwrite_output=True)
    try:
        for f in frames:
            proc.stdin.write(np.ascontiguousarray(f).tobytes())
        proc.stdin.close()
        err = proc.stderr.read()
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed encoding {paths[0].name}..: {err.decode(errors='replace').strip()}")
    for j, path in enumerate(paths):
        seg = tmp / f"{j:05d}.mp4"
        if not seg.is_file():
            raise RuntimeError(f"ffmpeg wrote no segment for {path} (expected {seg})")
        seg.replace(path)
    tmp.rmdir()


def _annotated_span(names: list[str], cfg: dict[str, Any], rng: np.random.Generator) -> tuple[int, int]:
    """The annotated clip ``[start, end)`` of a rendered video: the action (its non-idle frames) with a margin
    of idle frames before and after, each drawn from ``annotation_margin`` (after the render's last draw) and
    cut to the idle frames there are."""
    action = [j for j, n in enumerate(names) if n != "idle"]
    lo, hi = cfg["annotation_margin"]
    before = min(int(rng.integers(lo, hi + 1)), action[0])
    after = min(int(rng.integers(lo, hi + 1)), len(names) - 1 - action[-1])
    return action[0] - before, action[-1] + 1 + after


def plan_videos(cfg: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """The list of videos to render: dicts with split, vid_name, label, diving48_label, key
    (the per-video seed sequence entropy). Names are shuffled so they do not reveal the class."""
    vocab = load_diving48_vocab()
    table = class_table(cfg, vocab)
    plan: list[dict[str, Any]] = []
    for split in ("train", "test"):
        items = []
        for c in table:
            if c["novel"] and split == "test":
                continue
            n = cfg["train_per_class"] if split == "train" else cfg["test_per_class"]
            for k in range(int(n)):
                items.append((c["label"], c["diving48_label"], k))
        perm = np.random.default_rng([seed, _SPLIT_CODE[split], 7919]).permutation(len(items))
        width = max(4, len(str(len(items))))
        for j, pi in enumerate(perm):
            label, d48, k = items[pi]
            plan.append({"split": split, "vid_name": f"{split}_{j:0{width}d}", "label": int(label),
                         "diving48_label": int(d48), "key": [seed, _SPLIT_CODE[split], int(d48), int(k)]})
    return plan


def _render_chunk(items: list[dict[str, Any]], specs: dict[int, dict[str, Any]],
                  cfg: dict[str, Any]) -> list[tuple[np.ndarray, list[str], int, int]]:
    """Render planned videos: per item (frames, phase names, annotated start, end), each from its own key."""
    out = []
    for item in items:
        rng = np.random.default_rng(item["key"])
        frames, names = render_video(specs[item["label"]], cfg, rng)
        out.append((frames, names, *_annotated_span(names, cfg, rng)))
    return out


def generate(out_dir: str | os.PathLike, cfg: dict | None, seed: int,
             log: Callable[[str], Any] = print, workers: int = 1) -> dict[str, Any]:
    """Render SynthDive into ``out_dir`` (see the module docstring for the files written).

    cfg: the ``synthdive:`` config section (missing keys take :data:`DEFAULT_CONFIG` values);
    seed: all randomness derives from it (same seed and cfg -> byte-identical annotations and
    identical decoded frames, whatever ``workers``: the rendering processes, each video drawn from its
    own key). Returns a summary dict: ``videos`` per split, ``per_class`` counts per split (by label),
    ``frames`` (min/mean/max per video), ``classes``, ``seconds``.
    """
    cfg = resolve_config(cfg)
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    for tmp in (out / "videos").glob(".encode_*"):  # left by an interrupted run
        shutil.rmtree(tmp)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    vocab = load_diving48_vocab()
    table = class_table(cfg, vocab)
    plan = plan_videos(cfg, seed)
    specs = {c["label"]: parse_class(vocab[c["diving48_label"]]) for c in table}
    size, fps, crf = int(cfg["frame_size"]), int(cfg["fps"]), int(cfg["crf"])
    t0 = time.perf_counter()
    ann: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    phases: dict[str, list[str]] = {}
    lengths: list[int] = []
    total = len(plan)
    log_every = max(1, total // 10)
    log(f"[synthdive] rendering {total} videos ({len(table)} classes, {size}x{size}) into {out}")
    writer: threading.Thread | None = None
    failure: list[BaseException] = []

    def encode(frames: list[np.ndarray], paths: list[Path]) -> None:
        try:
            _encode_chunk(frames, paths, fps, crf)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failure.append(exc)

    chunks = [plan[c0:c0 + _CHUNK] for c0 in range(0, total, _CHUNK)]
    pool = None
    if workers > 1 and len(chunks) > 1:
        import concurrent.futures
        import multiprocessing

        # fork: every worker starts at the first submit, before the encoder thread exists (spawn would re-run
        # the calling script, e.g. a Snakemake rule script, in every worker)
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

        def in_order():  # at most workers + 1 chunks rendered ahead of the encoder, so memory stays bounded
            ahead: list[concurrent.futures.Future] = []
            for c in chunks:
                ahead.append(pool.submit(_render_chunk, c, specs, cfg))
                if len(ahead) > workers:
                    yield ahead.pop(0).result()
            for f in ahead:
                yield f.result()

        rendered = in_order()
    else:
        rendered = (_render_chunk(c, specs, cfg) for c in chunks)
    done = 0
    try:
        for items, videos in zip(chunks, rendered):
            chunk_frames, chunk_paths = [], []
            for item, (frames, names, start, end) in zip(items, videos):
                chunk_frames.append(frames)
                chunk_paths.append(out / "videos" / f"{item['vid_name']}.mp4")
                ann[item["split"]].append({"vid_name": item["vid_name"], "label": item["label"],
                                           "start_frame": start, "end_frame": end})
                phases[item["vid_name"]] = names
                lengths.append(len(names))
                done += 1
                if done % log_every == 0 or done == total:
                    el = time.perf_counter() - t0
                    rate = done / max(el, 1e-9)
                    log(f"[synthdive] {done}/{total} videos, {rate:.1f} videos/s, "
                        f"~{(total - done) / rate:.0f}s left")
            if writer is not None:
                writer.join()
            if failure:
                raise failure[0]
            writer = threading.Thread(target=encode, args=(chunk_frames, chunk_paths), daemon=True)
            writer.start()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if writer is not None:
        writer.join()
    if failure:
        raise failure[0]
    for items in ann.values():
        items.sort(key=lambda a: a["vid_name"])
    seconds = time.perf_counter() - t0
    per_class = {split: {str(c["label"]): sum(a["label"] == c["label"] for a in ann[split]) for c in table}
                 for split in ann}
    summary = {
        "videos": {split: len(v) for split, v in ann.items()},
        "per_class": per_class,
        "frames": {"min": int(min(lengths)), "mean": float(np.mean(lengths)), "max": int(max(lengths))},
        "classes": len(table),
        "novel_classes": sum(c["novel"] for c in table),
        "frame_size": size,
        "seconds": round(seconds, 2),
    }

    def dump(name: str, obj: Any) -> None:
        (out / "annotations" / name).write_text(json.dumps(obj, indent=1) + "\n")

    # videos left by an earlier run with another config would not be in the annotations
    for stale in sorted(set((out / "videos").glob("*.mp4")) - {out / "videos" / f"{n}.mp4" for n in phases}):
        stale.unlink()
    dump("train.json", ann["train"])
    dump("test.json", ann["test"])
    dump("vocab.json", [vocab[c["diving48_label"]] for c in table])
    dump("classes.json", table)
    dump("phases.json", {k: phases[k] for k in sorted(phases)})
    dump("summary.json", {k: v for k, v in summary.items() if k != "seconds"})
    log(f"[synthdive] done: {summary['videos']} videos, frames per video "
        f"{summary['frames']['min']}-{summary['frames']['max']}, {seconds:.1f}s")
    return summary
