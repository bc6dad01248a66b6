"""Self-supervised initialisation of the video classifier f_E on the train videos, without labels.

Objective: the local-local temporal contrastive loss of TCLR (Dave, Rizve, Chen, Shah, "TCLR:
Temporal Contrastive Learning for Video Representation", CVIU 2022). Each video of a batch is cut
into ``segments`` (K) non-overlapping temporal segments of its stored frames; from each segment two
clips of ``clip_frames`` frames are drawn independently (temporal jitter inside the segment as in
:func:`finepseudo.models.augment.train_indices`, then spatial / photometric augmentation by
:func:`finepseudo.models.augment.train_input`). Every clip is embedded by ``model.features`` and a
two-layer projection MLP, L2-normalised, and one InfoNCE loss runs over all 2 K B clip embeddings
of the batch: the positive of a clip is the other view of the same (video, segment); every other
clip is a negative, the other segments of the *same* video included. Static per-video cues
(background, distractor shapes, lighting) are shared by all segments of a video, so they cannot
tell a segment from its neighbours: the encoder has to describe what happens at that time.

The classifier head ``fc`` is neither used nor changed; :func:`pretrain_fe_step` saves the
checkpoint without ``fc.*`` keys, so ``build_video_model(arch, C, weights=path)`` loads the
backbone and keeps a fresh head of any size (see :func:`finepseudo.models.video.load_weights`).
Everything random draws from ``seed``: on a CPU the same seed gives the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from finepseudo.models.augment import DEFAULT_AUGMENT, train_indices, train_input
from finepseudo.resume import Checkpointer, for_output, generator_state, set_generator_state
from finepseudo.runlog import environment
from finepseudo.device import resolve_device, setup_torch
from finepseudo.models.steps import Log, load_videos
from finepseudo.models.train import _check_clips, _epoch_line, _epoch_times, make_adamw, save_checkpoint, warmup_cosine

__all__ = [
    "DEFAULT_SSL",
    "ProjectionHead",
    "info_nce",
    "pretrain_fe_step",
    "pretrain_video_ssl",
    "segment_indices",
]

DEFAULT_SSL: dict[str, Any] = {
    "epochs": 8,            # passes over the train videos (each gives 2 x segments clips per video)
    "steps": None,          # optimiser steps instead of epochs (so the cost does not grow with the data)
    "batch_size": 16,       # videos per step: 2 x segments x batch_size clips, all candidates of each other
    "lr": 0.003,            # peak AdamW learning rate (one warm-up epoch, then cosine to 0)
    "clip_frames": 8,       # frames per clip, drawn inside its segment (the model pools over time)
    "segments": 4,          # K non-overlapping temporal segments per video, negatives of each other
    "temperature": 0.1,     # InfoNCE temperature on cosine similarities
    "proj_dim": 128,        # output size of the 2-layer projection MLP (discarded after pre-training)
}
"""Defaults of the ``ssl`` config dict (see :func:`pretrain_fe_step`). On a development SynthDive
(32 px, 32 stored frames, one seed), 4 segments for 8 epochs gave a better 10 %-label fine-tuning
start than 2 segments for 15 epochs (test top-1 22.5 vs 17.3 %; random init 19.4 %)."""


class ProjectionHead(nn.Module):
    """Two-layer MLP on the pooled features: Linear(D, D) -> ReLU -> Linear(D, proj_dim).

    (M, D) -> (M, proj_dim), not normalised.
    """

    def __init__(self, dim: int, proj_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, proj_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(M, D) -> (M, proj_dim)."""
        return self.net(x)


def segment_indices(t_store: int, clip_frames: int, segments: int, batch: int, rng: np.random.Generator,
                    aug: dict[str, Any]) -> np.ndarray:
    """Frame indices of two clips per segment per video: int64 (batch, segments, 2, clip_frames).

    Segment k covers stored frames [floor(k t_store / K), floor((k + 1) t_store / K)); each clip is
    drawn inside its segment by :func:`finepseudo.models.augment.train_indices` (a window of ``span`` of
    the segment at a random start and phase; frames repeat when the segment is shorter than the
    clip). The two views of a segment are drawn independently.
    """
    if segments < 1 or t_store < segments:
        raise ValueError(f"segments must be in [1, t_store={t_store}], got {segments}")
    bounds = np.floor(np.arange(segments + 1) * t_store / segments).astype(np.int64)
    out = np.empty((batch, segments, 2, clip_frames), np.int64)
    for k in range(segments):
        length = int(bounds[k + 1] - bounds[k])
        idx = train_indices(length, clip_frames, batch * 2, rng, aug)  # (2B, T)
        out[:, k] = idx.reshape(batch, 2, clip_frames) + bounds[k]
    return out


def info_nce(z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE over M = 2 P embeddings where rows 2i and 2i+1 are each other's positive.

    z: (M, P) projections (normalised here). Each row's candidates are all other rows (itself
    excluded); returns the per-row loss (M,) and whether the positive ranks first (M,) bool.
    """
    m = z.shape[0]
    if m % 2:
        raise ValueError(f"info_nce needs pairs of views, got {m} rows")
    z = F.normalize(z.float(), dim=1)
    sim = (z @ z.T) / temperature  # (M, M)
    sim = sim.masked_fill(torch.eye(m, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.arange(m, device=z.device) ^ 1
    losses = F.cross_entropy(sim, target, reduction="none")
    return losses, sim.argmax(1) == target


def pretrain_video_ssl(
    model: nn.Module,
    clips: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    clip_frames: int,
    segments: int,
    temperature: float,
    proj_dim: int,
    seed: int,
    device: str | torch.device = "cpu",
    augment: dict | None = None,
    log: Callable[[str], Any] = print,
    warmup_epochs: float = 1.0,
    checkpoint: Checkpointer | None = None,
    steps: int | None = None,
) -> list[dict[str, float]]:
    """TCLR local-local contrastive pre-training of ``model``'s backbone, in place (no labels).

    model: a :func:`finepseudo.models.video.build_video_model` classifier (``features(x) -> (B, D)``,
    ``feature_dim``); its ``fc`` is not used. clips: uint8 (N, T_store, H, W, 3). Each step takes
    ``batch_size`` videos, ``segments`` (K) segments each and two augmented ``clip_frames``-frame
    clips per segment, i.e. a (2 K B, 3, clip_frames, H, W) input (see the module docstring).
    A fresh projection head (D -> D -> ``proj_dim``) is trained alongside and discarded.
    Optimiser AdamW (no decay on biases / norms), linear warm-up for ``warmup_epochs`` then cosine
    decay to 0, per step. Training length: ``epochs`` passes or, with ``steps``, exactly that many steps
    (the last pass stops part-way; the warm-up is then at most a tenth of them).
    augment: overrides of :data:`finepseudo.models.augment.DEFAULT_AUGMENT`.
    Deterministic on a CPU for a given ``seed`` (order, segments, augmentation, head init).

    Returns the per-epoch history: dicts with ``epoch`` (1-based), ``loss`` (mean InfoNCE),
    ``acc`` (share of clips whose positive is the most similar of the 2 K B - 1 candidates),
    ``clips_per_s`` (clips through the encoder per second), ``seconds`` and ``eta`` (seconds left).
    Logs one line per epoch. ``checkpoint``: resume from / write epoch checkpoints
    (:class:`~finepseudo.resume.Checkpointer`); the result equals an uninterrupted run's.
    """
    _check_clips(clips, clip_frames)
    n, t_store = clips.shape[0], clips.shape[1]
    if segments < 1 or t_store < segments:
        raise ValueError(f"segments must be in [1, T_store={t_store}], got {segments}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if n == 0 or (epochs <= 0 if steps is None else steps <= 0):
        return []
    aug = {**DEFAULT_AUGMENT, **(augment or {})}
    device = torch.device(device)
    rng = np.random.default_rng([seed, 7])
    model.to(device)
    channels_last = device.type == "cpu"
    if channels_last:
        model.to(memory_format=torch.channels_last_3d)
    history: list[dict[str, float]] = []
    saved = None
    if checkpoint is not None:
        saved = checkpoint.begin({
            "loop": "pretrain_video_ssl", "n": n, "t_store": t_store, "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "weight_decay": weight_decay, "clip_frames": clip_frames, "segments": segments,
            "temperature": temperature, "proj_dim": proj_dim, "seed": seed, "augment": aug,
            "warmup_epochs": warmup_epochs, "device": device.type, "steps": steps})
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(int(rng.integers(2**31)))
        head = ProjectionHead(int(model.feature_dim), proj_dim).to(device)
        opt = make_adamw(list(model.parameters()) + list(head.parameters()), lr, weight_decay)
        steps_per_epoch = math.ceil(n / batch_size)
        if steps is None:
            total_steps = epochs * steps_per_epoch
            warmup = max(1, round(warmup_epochs * steps_per_epoch))
        else:
            total_steps, epochs = int(steps), math.ceil(int(steps) / steps_per_epoch)
            warmup = max(1, min(round(warmup_epochs * steps_per_epoch), total_steps // 10))
        lr_at = warmup_cosine(lr, warmup, total_steps)

        step = 0
        first = 1
        if saved is not None:
            history, first = checkpoint.resume(saved, device, {
                "model": model.load_state_dict, "head": head.load_state_dict, "optimizer": opt.load_state_dict,
                "generator": lambda state: set_generator_state(rng, state)})
            step = int(saved["step"])
        t_start = time.perf_counter()
        for epoch in range(first, epochs + 1):
            model.train()
            head.train()
            t0 = time.perf_counter()
            perm = rng.permutation(n)
            loss_sum = correct = count = 0.0
            for b0 in range(0, n, batch_size):
                if step >= total_steps:  # ``steps`` reached part-way through the last pass
                    break
                idx = perm[b0:b0 + batch_size]
                t_idx = segment_indices(t_store, clip_frames, segments, len(idx), rng, aug)  # (B, K, 2, T)
                batch = clips[torch.as_tensor(idx)[:, None, None, None], torch.as_tensor(t_idx)]
                batch = batch.reshape(-1, *batch.shape[3:])  # (2KB, T, H, W, 3); row 2i, 2i+1: one segment
                x = train_input(batch, rng, aug)  # (2KB, 3, T, H, W)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last_3d)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                losses, hit = info_nce(head(model.features(x.to(device))), temperature)
                loss = losses.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                loss_sum += float(losses.detach().sum())
                correct += float(hit.sum())
                count += len(losses)
            sec, eta = _epoch_times(t0, t_start, epoch, first, epochs)
            rec = {"epoch": epoch, "loss": loss_sum / count, "acc": correct / count,
                   "clips_per_s": count / max(sec, 1e-9), "seconds": sec, "eta": eta}
            history.append(rec)
            log(_epoch_line("ssl", rec, epochs, lr_at(step - 1)))
            if checkpoint is not None:
                checkpoint.save(epoch, epochs, {
                    "model": model.state_dict(), "head": head.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "history": history, "generator": generator_state(rng)}, device)
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return history


def pretrain_fe_step(*, manifest: str, shards: list[str], out_model: str, out_history: str, fe: dict, ssl: dict,
                     seed: int, device: str, threads: int, log: Log) -> None:
    """Self-supervised f_E initialisation on every train video. Only the ``video`` and ``split``
    columns of the manifest are read: no label reaches this step.

    fe: the config's ``fe`` dict (arch, weights, weight_decay, augment are used); ssl: keys of
    :data:`DEFAULT_SSL` (missing keys take those defaults; ``weight_decay`` defaults to
    fe's). Writes the checkpoint (:func:`finepseudo.models.train.save_checkpoint` format, without the
    classifier head's ``fc.*`` keys, metadata ``stage: ssl``) and the history TSV.
    """
    from finepseudo.models.steps import fe_model_kwargs
    from finepseudo.models.video import build_video_model

    cfg = {**DEFAULT_SSL, **(ssl or {})}
    cfg.setdefault("weight_decay", fe.get("weight_decay", 0.05))
    setup_torch(threads, seed)
    dev = resolve_device(device)
    vids = pd.read_csv(manifest, sep="\t", usecols=["video", "split"], dtype={"video": str})
    train = vids[vids["split"] == "train"][["video"]]
    frames, train = load_videos(shards, train, log, "train")
    # the head is never saved: its size is irrelevant, one output keeps it small
    num_classes = 1
    model = build_video_model(fe["arch"], num_classes, weights=fe.get("weights"), **fe_model_kwargs(fe))
    # the clips are augmented as f_E's training clips are (fe.augment), mirror included where it is on
    aug = dict(fe.get("augment") or {})
    log(f"TCLR pre-training of f_E ({fe['arch']}) on {len(train)} train videos (labels unused), "
        f"{cfg['segments']} segments x 2 clips of {cfg['clip_frames']} frames, device={dev}, threads={threads}, "
        f"seed={seed}")
    ckpt = for_output(out_model, step="pretrain_fe", log=log, code=__file__,
                      settings={"fe": fe, "ssl": cfg, "seed": seed, "device": dev, "threads": threads},
                      inputs={"manifest": manifest, "shards": shards})
    t0 = time.time()
    history = pretrain_video_ssl(
        model, frames, epochs=cfg["epochs"], steps=cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
        weight_decay=cfg["weight_decay"], clip_frames=cfg["clip_frames"], segments=cfg["segments"],
        temperature=cfg["temperature"], proj_dim=cfg["proj_dim"], seed=seed, device=dev, augment=aug, log=log,
        checkpoint=ckpt)
    pd.DataFrame(history, columns=["epoch", "loss", "acc", "clips_per_s", "seconds", "eta"]).to_csv(
        out_history, sep="\t", index=False)
    meta = {"stage": "ssl", "objective": "TCLR local-local InfoNCE", "arch": fe["arch"], "ssl": cfg,
            "augment": aug, "init_weights": fe.get("weights"), "seed": seed, "n_train": len(train),
            "seconds": round(time.time() - t0, 1), "device": dev, "env": environment(),
            "head": "fc.* not saved: build_video_model(arch, C, weights=path) keeps a fresh head"}
    head, model.fc = model.fc, nn.Identity()
    try:
        save_checkpoint(out_model, model.cpu(), arch=fe["arch"], num_classes=num_classes,
                        model_kwargs=fe_model_kwargs(fe), metadata=meta)
    finally:
        model.fc = head
    ckpt.clear()
    log(f"saved {out_model} after {meta['seconds']} s")
