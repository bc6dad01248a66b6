"""f_E training throughput with the real data path, and its FLOP count against the device's peak.

Builds a frame store of ``--videos`` generated videos (32 x 112 x 112, like the real presets; by default as many
as the timed steps use, so that no epoch ends, and no loader restarts, inside the measurement), then trains
``--arch`` (default R(2+1)D-18, 16-frame clips at 112 px) and measures clips per second in the steady state
(the time from step ``--warmup`` to the last of ``--warmup + --steps`` steps; every step ends with a host sync,
as the training loop's does), for each ``--variants`` entry:

* ``store``: :func:`finepseudo.models.train.train_classifier` itself (FrameStore -> DataLoader with ``--workers``
  processes -> augmentation -> bf16 autocast and channels-last 3D on CUDA), what the workflow's f_E rules run;
* ``synthetic``: the same optimiser step (AdamW, bf16 autocast, channels-last 3D, cross-entropy) on one batch
  kept on the device, no input pipeline: the model's own rate. The gap to ``store`` says whether the loader
  keeps up;
* ``loader``: the loader alone (batch requests, reads, augmentation in ``--workers`` processes), no model;

with ``torch.compile`` off, on, or both (``--compile``; the workflow does not compile, so ``store`` without
compile is the rate its rules get). Prints, and with ``--json`` writes, the forward + backward FLOPs per clip
counted by ``torch.utils.flop_counter``, the achieved FLOP/s and the share of the device's dense bf16 peak
(``--peak-tflops``, or a table of NVIDIA's datasheet figures for the cards named below).

    PYTHONPATH=src python benchmarks/fe_throughput.py --device cuda --workers 12 --compile both --json out.json
    PYTHONPATH=src .venv/bin/python benchmarks/fe_throughput.py --device cpu --arch r2plus1d_tiny --videos 16 \\
        --batch 2 --steps 3 --warmup 1 --workers 1       # CPU smoke (gpu_check/gpu_check.sh without a GPU)

Every run appends its figures to ``benchmarks/results/fe_throughput.csv``; the README's "Feeding a GPU" reads
them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import _record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results/fe_throughput.csv"

#: dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from NVIDIA's datasheets, first match wins
PEAK_BF16_TFLOPS = [
    (r"H200 NVL", 835.5), (r"GH200|H200", 989.4), (r"H100 NVL", 835.5), (r"H100 PCIe", 756.5), (r"H100|H800", 989.4),
    (r"A100", 312.0), (r"L40S", 362.05), (r"L4\b", 121.0), (r"A10\b", 125.0),
]


def peak_for(name: str) -> float | None:
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if re.search(pattern, name):
            return tflops
    return None


def flops_per_clip(arch: str, frames: int, size: int, classes: int = 48, device: str = "cpu") -> float:
    """Forward + backward FLOPs of one clip (counted in float32 on ``device``; the count depends on shapes only)."""
    from torch.utils.flop_counter import FlopCounterMode

    from finepseudo.models.video import build_video_model

    model = build_video_model(arch, classes).to(device)
    x = torch.randn(1, 3, frames, size, size, device=device)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return float(counter.get_total_flops())


class Timed(nn.Module):
    """``net`` with the time of every forward call recorded (from eager Python, outside a compiled graph)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.times: list[float] = []

    def forward(self, x):
        self.times.append(time.perf_counter())
        return self.net(x)


def steady_rate(times: list[float], warmup: int, batch: int) -> float:
    """Clips per second between the forward calls of step ``warmup`` and of the last step."""
    n = len(times) - 1 - warmup
    if n < 1:
        raise RuntimeError(f"{len(times)} steps recorded, need more than warmup + 1 = {warmup + 1}")
    return n * batch / (times[-1] - times[warmup])


def make_model(arch: str, classes: int, device: str, compiled: bool) -> tuple[nn.Module, Timed]:
    from finepseudo.models.video import build_video_model

    torch.manual_seed(0)
    model = build_video_model(arch, classes).to(device)
    return model, Timed(torch.compile(model) if compiled else model)


def run_store(args, store, labels, compiled: bool) -> dict:
    from finepseudo.models.train import train_classifier

    _, timed = make_model(args.arch, args.classes, args.device, compiled)
    train_classifier(timed, store, labels, epochs=0, steps=args.warmup + args.steps, batch_size=args.batch, lr=1e-3,
                     weight_decay=0.05, clip_frames=args.clip_frames, seed=0, device=args.device,
                     workers=args.workers, log=lambda m: None)
    return {"clips_per_s": steady_rate(timed.times, args.warmup, args.batch),
            "first_step_s": timed.times[1] - timed.times[0]}


def run_synthetic(args, compiled: bool) -> dict:
    from finepseudo.models.train import make_adamw

    model, timed = make_model(args.arch, args.classes, args.device, compiled)
    cuda = torch.device(args.device).type == "cuda"
    model.to(memory_format=torch.channels_last_3d)
    opt = make_adamw(model.parameters(), 1e-3, 0.05)
    g = torch.Generator(device=args.device).manual_seed(0)
    x = torch.randn(args.batch, 3, args.clip_frames, args.size, args.size, device=args.device, generator=g)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    y = torch.randint(0, args.classes, (args.batch,), device=args.device, generator=g)
    timed.train()
    for _ in range(args.warmup + args.steps):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = timed(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # a host sync per step, as train_classifier's float(...) of the batch loss
    timed.times.append(time.perf_counter())  # the end of the last step
    return {"clips_per_s": steady_rate(timed.times, args.warmup, args.batch),
            "first_step_s": timed.times[1] - timed.times[0]}


def run_loader(args, store) -> dict:
    from finepseudo.models.augment import DEFAULT_AUGMENT, train_indices
    from finepseudo.models.train import _BatchStream, _TrainBatches, batch_loader

    rng = np.random.default_rng([0, 1])
    stream = _BatchStream(rng, len(store), args.batch, None, 0.0)
    requests = []
    for _ in range(args.warmup + args.steps):
        idx = next(stream)
        requests.append((idx, train_indices(store.shape[1], args.clip_frames, len(idx), rng, DEFAULT_AUGMENT),
                         int(rng.integers(2**63))))
    times = []
    for x, _, _ in batch_loader(_TrainBatches(store, requests, DEFAULT_AUGMENT), args.workers):
        times.append(time.perf_counter())
        assert x.shape[0] == args.batch
    times.append(time.perf_counter())
    return {"clips_per_s": steady_rate(times, args.warmup, args.batch)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="r2plus1d_18")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--videos", type=int, default=None,
                    help="videos in the store (default: (warmup + steps) x batch, one epoch: no loader restart inside)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40, help="timed steps per variant, after --warmup")
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--clip-frames", type=int, default=16)
    ap.add_argument("--classes", type=int, default=48)
    ap.add_argument("--size", type=int, default=112, help="frame size of the store (the presets': 112)")
    ap.add_argument("--variants", default="store,synthetic,loader", help="comma-separated: store, synthetic, loader")
    ap.add_argument("--compile", choices=["off", "on", "both"], default="off")
    ap.add_argument("--peak-tflops", type=float, default=0.0,
                    help="the device's dense bf16 peak, TFLOP/s (default: NVIDIA's figure for the card, when known)")
    ap.add_argument("--root", type=Path, default=None, help="folder for the store (a temporary one by default)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()
    # whole batches only: a short last batch would change the shapes (and recompile under torch.compile)
    args.videos = args.videos or (args.warmup + args.steps) * args.batch
    args.videos = max(args.batch, args.videos - args.videos % args.batch)

    import scale_store
    from scale_store import write_store

    scale_store.S = args.size  # the store's frame size (32 frames of S x S)

    from finepseudo.data.frames import FrameStore

    cuda = torch.device(args.device).type == "cuda"
    name = torch.cuda.get_device_name(torch.device(args.device)) if cuda else "cpu"
    peak, peak_source = args.peak_tflops, "--peak-tflops"
    if not peak and cuda:
        peak = peak_for(name) or 0.0
        peak_source = f"NVIDIA datasheet, dense bf16, for {name}" if peak else f"unknown for {name}"
    t0 = time.perf_counter()
    per_clip = flops_per_clip(args.arch, args.clip_frames, args.size, args.classes, args.device)
    result = {"device": name, "torch": torch.__version__, "arch": args.arch, "batch": args.batch,
              "clip": [args.clip_frames, args.size, args.size], "loader_workers": args.workers,
              "steps": args.steps, "warmup": args.warmup, "gflop_per_clip": per_clip / 1e9,
              "peak_tflops": peak or None, "peak_source": peak_source if peak else None, "variants": [], "errors": []}
    print(f"device {name}, arch {args.arch}, {args.clip_frames} x {args.size} x {args.size} clips, batch {args.batch}, "
          f"loader workers {args.workers}, {args.steps} timed steps after {args.warmup}; "
          f"forward+backward {per_clip / 1e9:.1f} GFLOP per clip (counted in {time.perf_counter() - t0:.1f} s)",
          flush=True)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    root = args.root or Path(tempfile.mkdtemp(prefix="fe-throughput-"))

    def save() -> None:  # after every variant: a run stopped by its time limit keeps what it measured
        rates = {(r["input"], r["compile"]): r["clips_per_s"] for r in result["variants"]}
        for compiled in compiles:
            if ("store", compiled) in rates and ("synthetic", compiled) in rates:
                share = rates[("store", compiled)] / rates[("synthetic", compiled)]
                result[f"store_over_synthetic_compile_{'on' if compiled else 'off'}"] = share
                result[f"loader_keeps_up_compile_{'on' if compiled else 'off'}"] = share >= 0.9
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1) + "\n")

    save()
    try:
        t0 = time.perf_counter()
        store = FrameStore(write_store(root, args.videos, max(1, args.videos // 256)))
        print(f"frame store of {len(store)} videos written in {time.perf_counter() - t0:.1f} s", flush=True)
        labels = np.arange(len(store)) % args.classes
        if "loader" in variants:
            r = run_loader(args, store)
            result["loader_only_clips_per_s"] = r["clips_per_s"]
            print(f"loader alone ({args.workers} workers): {r['clips_per_s']:.1f} clips/s", flush=True)
            save()
        for compiled in compiles:
            for v in [v for v in variants if v in ("store", "synthetic")]:
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                try:
                    r = run_store(args, store, labels, compiled) if v == "store" else run_synthetic(args, compiled)
                except Exception as exc:  # noqa: BLE001 - a failing variant (a compiler missing) is reported, not fatal
                    traceback.print_exc()
                    result["errors"].append(f"{v}, compile {'on' if compiled else 'off'}: {type(exc).__name__}: {exc}"[:500])
                    save()
                    continue
                r.update({"input": v, "compile": compiled, "wall_s": time.perf_counter() - t0,
                          "tflops": r["clips_per_s"] * per_clip / 1e12})
                if cuda:
                    r["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
                if peak:
                    r["pct_of_peak"] = 100 * r["tflops"] / peak
                result["variants"].append(r)
                if (v, compiled) == ("store", False):
                    result["workflow_clips_per_s"] = r["clips_per_s"]  # what the rules get: they do not compile
                save()
                line = (f"{v:9s} compile {'on ' if compiled else 'off'}: {r['clips_per_s']:8.1f} clips/s, "
                        f"{r['tflops']:.2f} TFLOP/s")
                if peak:
                    line += f" = {r['pct_of_peak']:.1f} % of {peak:g}"
                print(line + f" (first step {r['first_step_s']:.1f} s, variant {r['wall_s']:.0f} s)", flush=True)
        for compiled in compiles:
            share = result.get(f"store_over_synthetic_compile_{'on' if compiled else 'off'}")
            if share is not None:
                print(f"compile {'on ' if compiled else 'off'}: the store path reaches {100 * share:.0f} % of the "
                      f"synthetic rate: the loader {'keeps up' if share >= 0.9 else 'does NOT keep up'} "
                      f"(threshold 90 %)", flush=True)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    save()
    keep = ("device", "torch", "arch", "batch", "loader_workers", "steps", "warmup", "gflop_per_clip", "peak_tflops")
    rows = [{**{k: result[k] for k in keep}, "input": r["input"], "compile": r["compile"], "clips_per_s": r["clips_per_s"],
             "tflops": r["tflops"], "pct_of_peak": r.get("pct_of_peak", ""), "peak_mem_gib": r.get("peak_mem_gib", "")}
            for r in result["variants"]]
    if "loader_only_clips_per_s" in result:
        rows.append({**{k: result[k] for k in keep}, "input": "loader", "clips_per_s": result["loader_only_clips_per_s"]})
    if rows:
        print(f"appended to {_record.append(RESULTS, rows)}")
    if result["errors"]:
        print("errors:\n  " + "\n  ".join(result["errors"]), flush=True)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
