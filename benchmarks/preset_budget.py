"""What a real-dataset preset costs: frame-store disk and f_E GPU hours, computed from the config.

Reads ``config/config.yaml`` overlaid with a preset and counts the clips f_E trains on (self-supervised
pre-training, every warm-up, supervised_full and every pseudo-labeling round of every method, label
fraction and seed), converts them to FLOPs with the measured forward + backward cost of the
architecture (``benchmarks/fe_throughput.py``: R(2+1)D-18 242.4 GFLOP per 16 x 112 x 112 clip, scaled by
frames and pixels), and to GPU hours at ``--clips-per-s`` (a measured throughput) or, without one, at
``--mfu`` of ``--peak-tflops`` (an assumption, printed as such). f_A (a 2D CNN per frame) and
evaluation are left out: their cost is a few percent of f_E's.

    PYTHONPATH=src .venv/bin/python benchmarks/preset_budget.py config/presets/diving48.yaml
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from finepseudo.registry import PSEUDO_METHODS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GFLOP_PER_CLIP = {"r2plus1d_18": 242.4, "r2plus1d_tiny": 2.12}  # 16 x 112 x 112, forward + backward
# official train / test sizes
SIZES = {"diving48": (15027, 1970), "finegym99": (20484, 8521), "finegym288": (22671, 9646),
         "finediving": (2251, 749)}


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out


def budget(cfg: dict) -> dict:
    name = cfg["dataset"]["name"]
    n_train, n_test = SIZES[name]
    fe, fr = cfg["fe"], cfg["frames"]
    clips = {}
    ssl = fe["ssl"]
    clips["ssl pre-training"] = (ssl["epochs"] * n_train * ssl.get("segments", 4) * 2
                                 * ssl["clip_frames"] / fe["clip_frames"]) if fe.get("init", "ssl") == "ssl" else 0
    runs = len(cfg["splits"]["label_percents"]) * len(cfg["splits"]["seeds"])
    warm = 0.0
    for p in cfg["splits"]["label_percents"]:
        n_lab = n_train * p / 100
        steps = max(fe["epochs"] * math.ceil(n_lab / fe["batch_size"]), fe.get("min_steps", 0))
        warm += steps * fe["batch_size"] * len(cfg["splits"]["seeds"])
    sup = [m for m in cfg["methods"] if m in ("supervised", "supervised_scratch")]
    clips["warm-ups"] = warm * max(1, len(sup))
    clips["supervised_full"] = (fe["epochs"] * n_train * len(cfg["splits"]["seeds"])
                                if "supervised_full" in cfg["methods"] else 0)
    methods = [m for m in cfg["methods"] if m in PSEUDO_METHODS]
    ps = cfg["pseudo"]
    clips["rounds"] = len(methods) * runs * ps["rounds"] * ps["fe"]["steps"] * fe["batch_size"]
    scale = (fe["clip_frames"] / 16) * (fr["size"] / 112) ** 2
    gflop = GFLOP_PER_CLIP[fe["arch"]] * scale
    disk = (n_train + n_test) * fr["num_frames"] * fr["size"] ** 2 * 3
    return {"clips": clips, "gflop_per_clip": gflop, "disk_gb": disk / 1e9, "methods": methods, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("presets", nargs="+", type=Path)
    ap.add_argument("--clips-per-s", type=float, default=0.0, help="measured f_E training throughput on one GPU")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    ap.add_argument("--mfu", type=float, default=0.3, help="assumed model FLOP utilisation without a measurement")
    args = ap.parse_args()
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for preset in args.presets:
        b = budget(merge(base, yaml.safe_load(preset.read_text())))
        total = sum(b["clips"].values())
        rate = args.clips_per_s or args.mfu * args.peak_tflops * 1e12 / (b["gflop_per_clip"] * 1e9)
        how = "measured" if args.clips_per_s else f"assumed {args.mfu:.0%} of {args.peak_tflops:g} TFLOP/s"
        print(f"{preset.name}: frame store {b['disk_gb']:.1f} GB; f_E trains on {total / 1e6:.1f} M clips "
              f"({', '.join(f'{k} {v / 1e6:.1f} M' for k, v in b['clips'].items())}); "
              f"{b['gflop_per_clip']:.0f} GFLOP per clip; at {rate:.0f} clips/s ({how}): "
              f"{total / rate / 3600:.0f} GPU hours")


if __name__ == "__main__":
    main()
