"""What a real-dataset preset costs: frame-store disk and f_E GPU hours, computed from the config.

Reads ``config/config.yaml`` overlaid with a preset and counts the clips f_E trains on (self-supervised
pre-training, every warm-up, supervised_full and every pseudo-labeling round of every method, label
fraction and seed), converts them to FLOPs with the measured forward + backward cost of the
architecture (``benchmarks/fe_throughput.py``: R(2+1)D-18 242.4 GFLOP per 16 x 112 x 112 clip, scaled by
frames and pixels), and to GPU hours at ``--clips-per-s`` (a measured throughput) or, without one, at
``--mfu`` of ``--peak-tflops`` (an assumption, printed as such). f_A (a 2D CNN per frame) and
evaluation are left out: their cost is a few percent of f_E's.

Round length (``pseudo.fe.steps``), one rule for every preset (:func:`round_steps`, checked by
tests/test_config.py): a round trains f_E, from the fixed initialisation, for as many epochs as the supervised
warm-up (``fe.epochs``) over its expanded training set, the labeled videos plus the pseudo-labels it is expected to
accept, counted at 10 % labels (the middle of 5/10/20 %) with 40 % of the unlabeled pool accepted (the default
run's methods accept 20-57 %): steps = fe.epochs x (0.1 N + 0.4 x 0.9 N) / fe.batch_size, rounded up to a
multiple of 100, N the train split's size. Before this rule every preset copied Diving48's 30,000 steps, about
900 epochs of that set per round on FineDiving's 2,251 training videos.

    PYTHONPATH=src .venv/bin/python scripts/preset_budget.py config/presets/diving48.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from finepseudo.data.synthdive import DEFAULT_CLASSES  # noqa: E402
from finepseudo.registry import PSEUDO_METHODS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GFLOP_PER_CLIP = {"r2plus1d_18": 242.4, "r2plus1d_tiny": 2.12}  # 16 x 112 x 112, forward + backward
# official train / test sizes
SIZES = {"diving48": (15027, 1970), "finegym99": (20484, 8521), "finegym288": (22671, 9646),
         "finediving": (2251, 749)}
RULE_PERCENT = 10  # label fraction the round length is counted at
EXPECTED_ACCEPT = 0.4  # share of the unlabeled pool a round is expected to accept


def dataset_sizes(cfg: dict) -> tuple[int, int]:
    """(train, test) videos: the official splits' sizes, or SynthDive's from its config."""
    name = cfg["dataset"]["name"]
    if name == "synthdive":
        sd = cfg["synthdive"]
        known = len(sd.get("classes") or DEFAULT_CLASSES)
        return (known + len(sd.get("novel_classes") or [])) * sd["train_per_class"], known * sd["test_per_class"]
    return SIZES[name]


def round_steps(cfg: dict) -> dict:
    """The round-length rule (see the module docstring): the steps it gives and what it counts."""
    n_train = dataset_sizes(cfg)[0]
    labeled = n_train * RULE_PERCENT / 100
    expanded = labeled + EXPECTED_ACCEPT * (n_train - labeled)
    steps = math.ceil(cfg["fe"]["epochs"] * expanded / cfg["fe"]["batch_size"])
    return {"steps": int(math.ceil(steps / 100) * 100), "epochs": cfg["fe"]["epochs"], "expanded_videos": expanded,
            "train_videos": n_train}


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out


def budget(cfg: dict) -> dict:
    n_train, n_test = dataset_sizes(cfg)
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
    return {"clips": clips, "gflop_per_clip": gflop, "disk_gb": disk / 1e9, "methods": methods, "runs": runs,
            "round_steps": ps["fe"]["steps"], "rule": round_steps(cfg)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("presets", nargs="+", type=Path)
    ap.add_argument("--clips-per-s", type=float, default=0.0, help="measured f_E training throughput on one GPU")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    ap.add_argument("--mfu", type=float, default=0.3, help="assumed model FLOP utilisation without a measurement")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    rows = []
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for preset in args.presets:
        b = budget(merge(base, yaml.safe_load(preset.read_text())))
        total = sum(b["clips"].values())
        rate = args.clips_per_s or args.mfu * args.peak_tflops * 1e12 / (b["gflop_per_clip"] * 1e9)
        how = "measured" if args.clips_per_s else f"assumed {args.mfu:.0%} of {args.peak_tflops:g} TFLOP/s"
        print(f"{preset.name}: frame store {b['disk_gb']:.1f} GB; f_E trains on {total / 1e6:.1f} M clips "
              f"({', '.join(f'{k} {v / 1e6:.1f} M' for k, v in b['clips'].items())}); "
              f"{b['gflop_per_clip']:.3g} GFLOP per clip; at {rate:.0f} clips/s ({how}): "
              f"{total / rate / 3600:.0f} GPU hours; rounds of {b['round_steps']} steps "
              f"(rule: {b['rule']['steps']}, {b['rule']['epochs']} epochs of {b['rule']['expanded_videos']:.0f} videos)")
        rows.append({"preset": preset.name, "disk_gb": b["disk_gb"], "clips": b["clips"], "total_clips": total,
                     "gflop_per_clip": b["gflop_per_clip"], "clips_per_s": rate, "rate_is": how,
                     "gpu_hours": total / rate / 3600, "round_steps": b["round_steps"], "round_rule": b["rule"]})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
