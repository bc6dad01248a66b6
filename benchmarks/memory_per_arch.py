"""Activation memory of one CPU training step per architecture, for the workflow's ``mem_mb`` estimates.

For each architecture a fresh process builds the model, runs one warm-up step (so allocator pools and
optimiser state exist), records its peak RSS, then runs one forward + backward + AdamW step on a batch of
``--batch`` clips and records the new peak. The growth divided by the float32 input size is the
``ACT_PER_INPUT`` factor in ``finepseudo.resources`` (activation bytes per input byte).

    PYTHONPATH=src .venv/bin/python benchmarks/memory_per_arch.py            # all architectures

Every run appends its rows to ``benchmarks/results/memory_per_arch.csv`` (shown in the README's "Real datasets:
adapters and the frame store").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results/memory_per_arch.csv"
CASES = [  # arch, frame size, frames per clip, batch (sized so the slowest case runs in about a minute)
    ("r2plus1d_tiny", 48, 16, 16),
    ("r2plus1d_tiny", 112, 16, 4),
    ("r2plus1d_18", 112, 16, 2),
    ("r3d_18", 112, 16, 2),
    ("frame_encoder", 48, 16, 48),
]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one(arch: str, size: int, frames: int, batch: int) -> dict:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if arch == "frame_encoder":
        from finepseudo.align.alignability import FrameEncoder

        model = FrameEncoder()

        def make():
            return torch.rand(batch, frames, size, size, 3).mul(255).to(torch.uint8)

        def loss_of(x):
            return model(x).pow(2).mean()
    else:
        from finepseudo.models.video import build_video_model

        model = build_video_model(arch, 10)

        def make():
            return torch.rand(batch, 3, frames, size, size)

        def loss_of(x):
            return model(x).logsumexp(1).mean()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)

    def step(b):
        opt.zero_grad()
        loss_of(b).backward()
        opt.step()

    step(make()[:1])  # optimiser state and allocator warm-up on one clip
    base = _peak_mb()
    step(make())
    grown = _peak_mb() - base
    input_mb = batch * frames * size * size * 3 * 4 / 2**20
    return {"arch": arch, "size": size, "frames": frames, "batch": batch, "input_mb": round(input_mb, 2),
            "growth_mb": round(grown, 1), "ratio": round(grown / input_mb, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", nargs=4, metavar=("ARCH", "SIZE", "FRAMES", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        a, s, f, b = args.one
        print(json.dumps(_one(a, int(s), int(f), int(b))))
        return
    rows = []
    print(f"{'arch':14s} {'size':>4s} {'frames':>6s} {'batch':>5s} {'input MB':>9s} {'growth MB':>10s} {'ratio':>6s}")
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--one", *map(str, case)], capture_output=True, text=True)
        if out.returncode:
            print(f"{case[0]}: failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['arch']:14s} {r['size']:4d} {r['frames']:6d} {r['batch']:5d} {r['input_mb']:9.2f} "
              f"{r['growth_mb']:10.1f} {r['ratio']:6.1f}")
        rows.append(r)
    if rows:
        print(f"appended to {_record.append(RESULTS, rows, threads=1)}")


if __name__ == "__main__":
    main()
