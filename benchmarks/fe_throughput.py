"""f_E training throughput with the real data path, and its FLOP count against the device's peak.

Builds a frame store of ``--videos`` generated videos (32 x 112 x 112, like the real presets), then
trains ``--arch`` (default R(2+1)D-18, 16-frame clips at 112 px) for ``--steps`` optimiser steps through
:func:`finepseudo.models.train.train_classifier` (FrameStore -> DataLoader with ``--workers`` processes ->
augmentation -> bf16 autocast and channels-last 3D on CUDA). Prints clips per second (after
``--warmup`` steps), the forward + backward FLOPs per clip counted by ``torch.utils.flop_counter``, the
achieved FLOP/s and, with ``--peak-tflops``, the share of the device's peak (model FLOP utilisation).

    PYTHONPATH=src python benchmarks/fe_throughput.py --device cuda --peak-tflops 989 --workers 12  # H100 SXM bf16
    PYTHONPATH=src .venv/bin/python benchmarks/fe_throughput.py --device cpu --steps 3 --batch 2      # CPU

Figures measured so far are in the README ("Real datasets: adapters and the frame store").
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))


def flops_per_clip(arch: str, frames: int, size: int, classes: int = 48) -> float:
    """Forward + backward FLOPs of one clip (counted on the CPU in float32, which counts the same ops)."""
    from torch.utils.flop_counter import FlopCounterMode

    from finepseudo.models.video import build_video_model

    model = build_video_model(arch, classes)
    x = torch.randn(1, 3, frames, size, size)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="r2plus1d_18")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--videos", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--clip-frames", type=int, default=16)
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="the device's dense bf16 peak, TFLOP/s")
    ap.add_argument("--root", type=Path, default=None, help="folder for the store (a temporary one by default)")
    args = ap.parse_args()

    from scale_store import write_store

    from finepseudo.data.frames import FrameStore
    from finepseudo.models.video import build_video_model
    from finepseudo.models.train import train_classifier

    size = 112
    per_clip = flops_per_clip(args.arch, args.clip_frames, size)
    root = args.root or Path(tempfile.mkdtemp(prefix="fe-throughput-"))
    try:
        store = FrameStore(write_store(root, args.videos, max(1, args.videos // 256)))
        labels = np.arange(len(store)) % 48
        torch.manual_seed(0)
        model = build_video_model(args.arch, 48)
        kw = dict(epochs=0, batch_size=args.batch, lr=1e-3, weight_decay=0.05, clip_frames=args.clip_frames, seed=0,
                  device=args.device, workers=args.workers, log=lambda m: None)
        train_classifier(model, store, labels, steps=args.warmup, **kw)  # kernels chosen, allocator warm
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_classifier(model, store, labels, steps=args.steps, **kw)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        rate = args.steps * args.batch / sec
        name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
        print(f"device {name}, arch {args.arch}, {args.clip_frames} x {size} x {size} clips, batch {args.batch}, "
              f"loader workers {args.workers}, {args.steps} timed steps after {args.warmup}")
        print(f"forward+backward FLOPs per clip: {per_clip / 1e9:.1f} GFLOP")
        print(f"throughput: {rate:.1f} clips/s ({sec:.1f} s, loader start-up included)")
        achieved = rate * per_clip / 1e12
        line = f"achieved: {achieved:.3f} TFLOP/s"
        if args.peak_tflops:
            line += f" = {100 * achieved / args.peak_tflops:.1f} % of the {args.peak_tflops:g} TFLOP/s peak"
        print(line)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
