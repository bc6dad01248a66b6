"""Synthetic videos and a seeded frame encoder f_A, shared by the tests of the alignability and
pseudo-labeling steps."""

from __future__ import annotations

import numpy as np
import torch

from finepseudo.align.alignability import FrameEncoder


def warped_class_clips(labels: list[int], t: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Each class is a sequence of ``t`` coarse random images; a video is its class's sequence, warped in
    time (a random monotone frame map drawn from ``rng``) plus pixel noise of standard deviation ``noise``.
    uint8 (len(labels), t, 16, 16, 3)."""
    out = []
    for c in labels:
        tmpl = np.random.default_rng(100 + c).integers(0, 256, size=(t, 4, 4, 3))
        idx = np.sort(rng.integers(0, t, t))
        idx[0], idx[-1] = 0, t - 1
        big = np.kron(tmpl[idx], np.ones((1, 4, 4, 1)))
        out.append(np.clip(big + rng.normal(0, noise, big.shape), 0, 255))
    return np.stack(out).astype(np.uint8)


def seeded_encoder(clips: np.ndarray, arch: dict) -> FrameEncoder:
    """A seeded f_A whose batch-norm statistics are those of ``clips`` (a random-init f_A with default
    statistics maps every frame to nearly the same vector)."""
    torch.manual_seed(0)
    fa = FrameEncoder(**arch)
    for m in fa.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one pass sets the statistics
    fa.train()
    with torch.no_grad():
        fa(torch.from_numpy(clips))
    return fa.eval()
