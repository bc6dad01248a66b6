"""The workflow's steps as functions: read a rule's input files, call the library, write its outputs.

The Snakemake scripts under ``workflow/scripts/`` are a few lines that call these, so every step can
be run and tested without Snakemake.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from finepseudo.device import resolve_device, setup_torch
from finepseudo.runlog import environment

Log = Callable[[str], None]


def read_classes(path: str) -> list[str]:
    return pd.read_csv(path, sep="\t")["name"].astype(str).tolist()


def load_videos(shards: list[str], table: pd.DataFrame, log: Log, what: str):
    """The frames of the videos listed in ``table`` (column ``video``) as a lazily read
    :class:`~finepseudo.data.frames.FrameStore`, dropping failed extractions, and the table of those kept."""
    from finepseudo.data.frames import FrameStore

    frames = FrameStore(shards, table["video"].astype(str).tolist())
    kept = frames.ids
    dropped = len(table) - len(kept)
    if dropped:
        log(f"{what}: {dropped} video(s) have no frames (failed extraction, listed in the shard status files)")
    if not kept:
        raise RuntimeError(f"{what}: none of the {len(table)} videos has extracted frames")
    return frames, table.set_index("video").loc[kept].reset_index()


def fe_model_kwargs(fe: dict) -> dict:
    """The constructor arguments of f_E that the config sets (saved in every checkpoint, so a loaded model is
    built the same way): ``clip_norm`` (fe.clip_norm)."""
    return {"clip_norm": bool(fe.get("clip_norm", False))}


def init_fe_model(fe: dict, num_classes: int, seed: int, init: str | None = None, **model_kwargs):
    """f_E before supervised training: seeded random weights, then ``init`` (a self-supervised checkpoint,
    the head staying at its seeded init) or else ``fe.weights`` (a user's file) loaded over them. The warm-up
    and every pseudo-labeling round that starts from the fixed initialisation build f_E here with the same
    seed, so they start from identical weights."""
    import torch

    from finepseudo.models.video import build_video_model

    torch.manual_seed(seed)
    return build_video_model(fe["arch"], num_classes, weights=init or fe.get("weights"), **model_kwargs)


def train_fe_step(
    *, labeled: str, classes: str, shards: list[str], out_model: str, out_history: str, fe: dict,
    seed: int, device: str, threads: int, log: Log, init: str | None = None, workers: int = 0,
) -> None:
    """Supervised warm-up of f_E on the labeled split, from ``init`` (the self-supervised checkpoint,
    fe.init: ssl) or a seeded random initialisation (fe.init: scratch). ``workers``: frame-reading
    processes (frames.workers; the result does not depend on it). Resumable: epoch checkpoints in
    ``<out_model>.resume.pt`` (:mod:`finepseudo.resume`), deleted once the outputs are written."""
    from finepseudo.models.distributed import train_classifier_ddp
    from finepseudo.resume import for_output
    from finepseudo.models.train import save_checkpoint

    setup_torch(threads, seed)
    dev = resolve_device(device)
    names = read_classes(classes)
    table = pd.read_csv(labeled, sep="\t", dtype={"video": str})
    frames, table = load_videos(shards, table, log, "labeled")
    log(f"train f_E ({fe['arch']}) on {len(table)} labeled videos, {len(names)} classes, device={dev}, "
        f"threads={threads}, seed={seed}, init={'self-supervised ' + init if init else 'random'}")
    model = init_fe_model(fe, len(names), seed, init, **fe_model_kwargs(fe))
    epochs = effective_epochs(len(table), fe["epochs"], fe["batch_size"], fe.get("min_steps", 0))
    if epochs != fe["epochs"]:
        log(f"{len(table)} videos give few steps per epoch: training {epochs} epochs to reach fe.min_steps")
    ckpt = for_output(out_model, step="train_fe", log=log, code=__file__,
                      settings={"fe": fe, "seed": seed, "device": dev, "threads": threads},
                      inputs={"labeled": labeled, "classes": classes, "shards": shards, "init": init})
    t0 = time.time()
    history = train_classifier_ddp(
        model, frames, _labels(table), world_size=int(fe.get("gpus", 1)), epochs=epochs,
        batch_size=fe["batch_size"], lr=fe["lr"], weight_decay=fe["weight_decay"], clip_frames=fe["clip_frames"],
        seed=seed, device=dev,
        augment=fe.get("augment") or None, log=log, workers=workers, checkpoint=ckpt,
    )
    pd.DataFrame(history).to_csv(out_history, sep="\t", index=False)
    meta = {"arch": fe["arch"], "num_classes": len(names), "classes": names, "seed": seed, "fe": fe, "init": init,
            "n_train": len(table), "seconds": round(time.time() - t0, 1), "device": dev, "env": environment()}
    save_checkpoint(out_model, model, arch=fe["arch"], num_classes=len(names), model_kwargs=fe_model_kwargs(fe),
                    metadata=meta)
    ckpt.clear()
    log(f"saved {out_model} after {meta['seconds']} s")


def effective_epochs(n: int, epochs: int, batch_size: int, min_steps: int) -> int:
    """max(epochs, ceil(min_steps / steps per epoch)): small labeled sets still get enough optimiser steps."""
    steps_per_epoch = max(1, -(-n // batch_size))
    return max(epochs, -(-min_steps // steps_per_epoch))


def _labels(table: pd.DataFrame):
    import torch

    return torch.as_tensor(table["label"].to_numpy(np.int64, copy=True))  # a writable copy (pandas may share a read-only buffer)


def evaluate_fe_step(
    *, model: str, test: str, classes: str, shards: list[str], out: dict[str, str], method: str,
    clips_per_video: int, batch_size: int, device: str, threads: int, log: Log, val: str | None = None,
    workers: int = 0,
) -> None:
    """Test metrics of an f_E checkpoint; with ``val``, also its validation top-1 to out["val_metrics"]
    (the only number hyper-parameter choices read)."""
    from finepseudo.models.evaluate import classification_metrics
    from finepseudo.models.train import load_checkpoint, predict_proba

    setup_torch(threads, 0)
    dev = resolve_device(device)
    names = read_classes(classes)
    net, info = load_checkpoint(model)
    meta = info["metadata"]
    table = pd.read_csv(test, sep="\t", dtype={"video": str})
    frames, table = load_videos(shards, table, log, "test")
    t0 = time.time()
    probs = predict_proba(net, frames, clip_frames=meta["fe"]["clip_frames"], clips_per_video=clips_per_video,
                          batch_size=batch_size, device=dev, workers=workers)
    summary, per_class, confusion = classification_metrics(probs, table["label"].to_numpy(), names)
    summary.update({"method": method, "model": model, "clips_per_video": clips_per_video,
                    "seconds": round(time.time() - t0, 1)})
    Path(out["metrics"]).write_text(json.dumps(summary, indent=2))
    per_class.to_csv(out["per_class"], sep="\t", index=False)
    confusion.to_csv(out["confusion"], sep="\t")
    pred = pd.DataFrame({"video": table["video"], "label": table["label"], "pred": probs.argmax(1),
                         "confidence": probs.max(1).round(6)})
    pred.to_csv(out["predictions"], sep="\t", index=False)
    log(f"{method}: top-1 {summary['top1']:.1f} % on {summary['n']} test videos")
    if val is not None:
        vt = pd.read_csv(val, sep="\t", dtype={"video": str})
        vsum = {"n": 0, "top1": float("nan")}
        if len(vt):
            vframes, vt = load_videos(shards, vt, log, "validation")
            vp = predict_proba(net, vframes, clip_frames=meta["fe"]["clip_frames"], clips_per_video=clips_per_video,
                               batch_size=batch_size, device=dev, workers=workers)
            vsum, _, _ = classification_metrics(vp, vt["label"].to_numpy(), names)
        Path(out["val_metrics"]).write_text(json.dumps({**vsum, "method": method, "model": model}, indent=2))
        log(f"{method}: validation top-1 {vsum['top1']:.1f} % on {vsum['n']} videos")
