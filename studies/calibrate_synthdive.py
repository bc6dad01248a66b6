#!/usr/bin/env python
"""Calibrate SynthDive's default regime on development generation seeds (never the benchmark's seed 0).

For each development seed (``synthdive.seed`` >= 100, enforced) it runs the workflow itself, with the
default config plus ``--set`` overrides, up to the outputs the calibration targets read, on split seed 0:

- ``supervised_full``: f_E with every train label (``--full``; the task must be learnable: >= 90 %);
- ``supervised``: f_E alone at the default label fraction (target 20-50 %);
- ``phi_A`` alone on test (target 20-50 % and within 10 points of f_E);
- the trivial baselines of the workflow's rule ``trivial_baselines`` on the same labeled gallery and test
  videos: pixel-DTW 1-NN and pooled-pixel 1-NN (target: at least 10 points below f_E), and the probe on the
  self-supervised f_E's features (reported);
- phase agreement of test pairs of one class: frame t with frame t (no alignment) against the DTW path on
  f_A's embeddings (``phase_agreement.tsv``; no alignment should stay at or below about 65 %).

Every run appends one row per seed to ``studies/results/calibrate_synthdive.csv`` (figures, overrides and
their provenance: date, commit, machine, cores, command; ``benchmarks/_record.py``)::

    .venv/bin/python studies/calibrate_synthdive.py --seeds 101 [--full] [--set synthdive.mirror=0 ...]

Work folders go to ``studies/out/calibrate/<label>_s<seed>`` (reused: a rerun with the same settings
only redoes what changed, as Snakemake does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _record  # noqa: E402

RESULTS = ROOT / "studies/results/calibrate_synthdive.csv"


def set_key(cfg: dict, dotted: str, value: str) -> None:
    """``a.b.c=value`` (value parsed as YAML) into the nested dict ``cfg``."""
    *path, last = dotted.split(".")
    d = cfg
    for k in path:
        d = d.setdefault(k, {})
    d[last] = yaml.safe_load(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[101])
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                    help="config overrides, e.g. synthdive.mirror=0 splits.label_percents=[10]")
    ap.add_argument("--full", action="store_true", help="also train supervised_full (100 %% labels)")
    ap.add_argument("--full-epochs", type=int, default=12,
                    help="fe.epochs (bounds the 100 %% run; the default fraction's length is set by fe.min_steps)")
    ap.add_argument("--label", default="default", help="name of this variant (work folder and CSV row)")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    if any(s < 100 for s in args.seeds):
        raise SystemExit("design choices are made on development SynthDives: use --seeds >= 100 (0 is the benchmark)")
    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for seed in args.seeds:
        cfg = json.loads(json.dumps(base))
        for o in args.overrides:
            key, _, value = o.partition("=")
            set_key(cfg, key, value)
        cfg["synthdive"]["seed"] = seed
        cfg["splits"]["seeds"] = [0]
        cfg["methods"] = ["supervised"] + (["supervised_full"] if args.full else [])
        # fe.epochs bounds the 100 % run; at the default fraction fe.min_steps decides the length
        cfg["fe"]["epochs"] = args.full_epochs
        frac = f"{float(cfg['splits']['label_percents'][0]):g}"
        wd = ROOT / "studies/out/calibrate" / f"{args.label}_s{seed}"
        wd.mkdir(parents=True, exist_ok=True)
        (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        targets = [f"results/synthdive/eval/supervised/frac{frac}_seed0/metrics.json",
                   f"results/synthdive/baselines/phi_a/frac{frac}_seed0/metrics.json",
                   f"results/synthdive/alignability/frac{frac}_seed0/phase_agreement.tsv"]
        if args.full:
            targets.append("results/synthdive/eval/supervised_full/frac100_seed0/metrics.json")
        cmd = [str(ROOT / ".venv/bin/snakemake"), *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(wd),
               "--cores", str(args.cores), "--quiet", "rules", "--configfile", str(wd / "config.yaml")]
        print(f"[calibrate] seed {seed}: {' '.join(args.overrides) or 'default config'}", flush=True)
        subprocess.run(cmd, check=True)
        res = wd / "results"
        row: dict[str, object] = {}
        row["supervised"] = json.loads((res / targets[0].removeprefix("results/")).read_text())["top1"]  # in %
        for name in ("phi_a", "pixel_dtw", "pixel_pooled", "ssl_probe"):  # rule trivial_baselines
            row[name] = json.loads((res / f"synthdive/baselines/{name}/frac{frac}_seed0/metrics.json").read_text())["top1"]
        ph = pd.read_csv(res / targets[2].removeprefix("results/"), sep="\t")
        row["phase_agreement"] = ph.to_dict("records")
        if args.full:
            row["supervised_full"] = json.loads((res / targets[3].removeprefix("results/")).read_text())["top1"]
        print(json.dumps(row, indent=1, default=str), flush=True)
        _record.append(RESULTS, [{
            "label": args.label, "seed": seed, "overrides": " ".join(args.overrides),
            "supervised_full": row.get("supervised_full", ""), "supervised": f"{row['supervised']:.1f}",
            "phi_a": f"{row['phi_a']:.1f}", "pixel_dtw": f"{row['pixel_dtw']:.1f}",
            "pixel_pooled": f"{row['pixel_pooled']:.1f}", "ssl_probe": f"{row['ssl_probe']:.1f}",
            "phase_agreement": json.dumps(row["phase_agreement"])}])


if __name__ == "__main__":
    main()
