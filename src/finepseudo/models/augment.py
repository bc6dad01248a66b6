"""Seeded clip sampling and augmentation for video classifiers (small functions on tensors).

Layouts: stored clips are uint8 ``(B, T, H, W, 3)``; the model input is float
``(B, 3, T, H, W)`` normalised with :data:`MEAN` / :data:`STD` after scaling to [0, 1].

Label-preserving augmentations only:
- temporal: a random window covering ``span`` (a fraction in [lo, hi]) of the stored frames,
  sampled at an even stride with a random phase. Order is never changed: reversing time
  would swap take-off and entry, and dropping a large part of the video can cut a somersault.
- spatial: a random translation (edge-replicated) and brightness / contrast jitter.
- horizontal flip (``hflip``), **off** in the library defaults: a mirrored video shows the platform
  on the other side, and clockwise becomes counter-clockwise, the cue that separates Forward/Back
  from Reverse/Inward take-offs once the facing is mirrored too. A flip keeps the Diving48 label
  (everything is mirrored consistently); it helps where the data are filmed from both sides (real
  broadcasts, SynthDive with ``synthdive.mirror`` > 0, whose default config turns it on) and only
  makes the task harder where mirrored views never occur.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "DEFAULT_AUGMENT",
    "MEAN",
    "STD",
    "augment_clips",
    "eval_indices",
    "to_model_input",
    "train_indices",
    "train_input",
]

MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)

DEFAULT_AUGMENT: dict[str, Any] = {
    "enabled": True,
    "span": [0.85, 1.0],
    "translate": 3,
    "brightness": 0.15,
    "contrast": 0.15,
    "hflip": False,
}
"""enabled: master switch; span: [lo, hi] fraction of the stored frames a training clip covers;
translate: max shift in pixels; brightness / contrast: max relative change; hflip: mirror with
probability 0.5 (see the module docstring)."""


def train_indices(t_store: int, clip_frames: int, batch: int, rng: np.random.Generator,
                  aug: dict[str, Any]) -> np.ndarray:
    """Frame indices of one training clip per video: int64 (batch, clip_frames), increasing.

    A window of ``span * t_store`` frames at a random start, sampled at an even stride with a
    random phase; without augmentation, the evenly spaced clip of :func:`eval_indices` (k=0).
    """
    if not aug.get("enabled", True):
        return np.repeat(eval_indices(t_store, clip_frames, 1), batch, axis=0)
    lo, hi = aug.get("span", [1.0, 1.0])
    span = rng.uniform(lo, hi, batch) * t_store  # (B,)
    start = rng.uniform(0.0, 1.0, batch) * (t_store - span)
    phase = rng.uniform(0.0, 1.0, batch)
    pos = start[:, None] + (np.arange(clip_frames)[None, :] + phase[:, None]) * (span / clip_frames)[:, None]
    return np.clip(np.floor(pos), 0, t_store - 1).astype(np.int64)


def eval_indices(t_store: int, clip_frames: int, clips_per_video: int) -> np.ndarray:
    """Deterministic test clips: int64 (clips_per_video, clip_frames). Clip k takes frames evenly
    spaced over all ``t_store`` frames, at phase (k + 0.5) / clips_per_video of the stride."""
    k = (np.arange(clips_per_video)[:, None] + 0.5) / clips_per_video
    pos = (np.arange(clip_frames)[None, :] + k) * (t_store / clip_frames)
    return np.clip(np.floor(pos), 0, t_store - 1).astype(np.int64)


def _draw(b: int, h: int, w: int, rng: np.random.Generator, aug: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Random parameters of one batch: pixel index maps (translation, flip), gain and bias."""
    shift = int(aug.get("translate", 0))
    off = rng.integers(-shift, shift + 1, size=(b, 2)) if shift > 0 else np.zeros((b, 2), np.int64)
    rows = np.clip(np.arange(h)[None, :] + off[:, :1], 0, h - 1)  # (B, H)
    cols = np.clip(np.arange(w)[None, :] + off[:, 1:], 0, w - 1)  # (B, W)
    br, ct = float(aug.get("brightness", 0.0)), float(aug.get("contrast", 0.0))
    gain = 1.0 + rng.uniform(-ct, ct, b) if ct > 0 else np.ones(b)
    bias = rng.uniform(-br, br, b) * 255.0 if br > 0 else np.zeros(b)
    if aug.get("hflip", False):
        flip = rng.random(b) < 0.5
        cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return {"rows": torch.as_tensor(rows), "cols": torch.as_tensor(cols),
            "gain": torch.as_tensor(gain, dtype=torch.float32), "bias": torch.as_tensor(bias, dtype=torch.float32)}


def _gather(batch: torch.Tensor, prm: dict[str, torch.Tensor]) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> uint8 (B, T, H, W, 3), pixels moved by the index maps (one contiguous
    row and column selection per clip: much faster than one advanced-indexing gather over the batch)."""
    out = torch.empty_like(batch)
    for b in range(batch.shape[0]):
        torch.index_select(torch.index_select(batch[b], 1, prm["rows"][b]), 2, prm["cols"][b], out=out[b])
    return out


def augment_clips(batch: torch.Tensor, rng: np.random.Generator, aug: dict[str, Any]) -> torch.Tensor:
    """Spatial / photometric augmentation of uint8 clips (B, T, H, W, 3) -> float32 (B, T, H, W, 3)
    in [0, 255] units. The same transform applies to every frame of a clip. The fused
    :func:`train_input` gives ``to_model_input(augment_clips(...))`` for the same rng state."""
    if not aug.get("enabled", True):
        return batch.float()
    b, _, h, w, _ = batch.shape
    prm = _draw(b, h, w, rng, aug)
    x = _gather(batch, prm).float()  # (B, T, H, W, 3)
    mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    g, bias = prm["gain"].view(b, 1, 1, 1, 1), prm["bias"].view(b, 1, 1, 1, 1)
    return ((x - mean) * g + mean + bias).clamp(0.0, 255.0).contiguous()


def train_input(batch: torch.Tensor, rng: np.random.Generator, aug: dict[str, Any], *,
                rows: slice | None = None, n_total: int | None = None) -> torch.Tensor:
    """Augment and normalise uint8 clips (B, T, H, W, 3) in one pass -> float32 (B, 3, T, H, W).

    Equal to ``to_model_input(augment_clips(batch, rng, aug))`` (same random draws), with fewer
    passes over the data (this is the training hot path on a CPU). With ``rows`` and ``n_total``,
    ``batch`` is those rows of a batch of ``n_total`` clips, and each gets the transform it would get
    in the whole batch (one process's part of a data-parallel batch)."""
    if not aug.get("enabled", True):
        return to_model_input(batch)
    b, _, h, w, _ = batch.shape
    prm = _draw(n_total or b, h, w, rng, aug)
    if rows is not None:
        prm = {k: v[rows] for k, v in prm.items()}
    x = _gather(batch, prm).permute(0, 4, 1, 2, 3).float()  # (B, 3, T, H, W), channels-last 3D in memory
    mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    g = prm["gain"].view(b, 1, 1, 1, 1)
    # x g + mean (1 - g) + bias, clamped to [0, 255], then normalised: two fused multiply-adds
    torch.addcmul(mean * (1.0 - g) + prm["bias"].view(b, 1, 1, 1, 1), x, g, out=x).clamp_(0.0, 255.0)
    scale = torch.tensor([1.0 / (255.0 * s) for s in STD], dtype=torch.float32).view(1, 3, 1, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(MEAN, STD, strict=True)], dtype=torch.float32).view(1, 3, 1, 1, 1)
    return torch.addcmul(shift, x, scale, out=x)


def to_model_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 or float [0, 255] clips (B, T, H, W, 3) -> normalised float32 (B, 3, T, H, W)."""
    x = x.float().permute(0, 4, 1, 2, 3) / 255.0
    mean = torch.tensor(MEAN, dtype=x.dtype).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype).view(1, 3, 1, 1, 1)
    return (x - mean) / std
