#!/usr/bin/env python
"""How p_E and p_A are best combined (issue 17), on development SynthDives only.

Runs the default config on generation seeds >= 100 (split seed 0) for pl (p_E alone), fa_only (p_A alone),
finepseudo (``pseudo.combine``, the log-linear pool by default) and finepseudo_mean (the paper's average), then
appends one row per method and round to ``studies/results/combine_study.csv``: the fitted pool weights,
theta, each branch's and the combination's top-1 on the unlabeled pool (the pool's truth is read here, by the
study, never by training), the accepted share and its precision, and the method's final test top-1 with the
round chosen on validation. It shares its working folder with ``calibrate_synthdive.py`` (same ``--label``),
so the generation, frames and encoders that calibration trained are reused, not redone::

    .venv/bin/python studies/combine_study.py --seeds 101 [--label v4] [--set pseudo.combine=product ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "studies"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _record  # noqa: E402

from calibrate_synthdive import set_key  # noqa: E402

from finepseudo.report.inputs import RunFile  # noqa: E402
from finepseudo.report.tables import round_table  # noqa: E402

RESULTS = ROOT / "studies/results/combine_study.csv"
METHODS = ("pl", "fa_only", "finepseudo", "finepseudo_mean")
COLUMNS = ("label", "seed", "overrides", "method", "combine", "round", "alpha", "beta", "T_E", "theta", "pool p_E",
           "pool p_A", "pool combined", "coverage", "precision", "selected_round", "final test top1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="SynthDive generation seeds (>= 100)")
    ap.add_argument("--label", default="v4", help="working folder studies/out/calibrate/<label>_s<seed>")
    ap.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    if any(s < 100 for s in args.seeds):
        raise SystemExit("design choices are made on development SynthDives: use --seeds >= 100 (0 is the benchmark)")
    for seed in args.seeds:
        cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
        for o in args.overrides:
            key, _, value = o.partition("=")
            set_key(cfg, key, value)
        cfg["synthdive"]["seed"] = seed
        cfg["splits"]["seeds"] = [0]
        cfg["methods"] = ["supervised", *METHODS]
        frac = f"{float(cfg['splits']['label_percents'][0]):g}"
        wd = ROOT / "studies/out/calibrate" / f"{args.label}_s{seed}"
        wd.mkdir(parents=True, exist_ok=True)
        conf = wd / "combine_study.yaml"
        conf.write_text(yaml.safe_dump(cfg, sort_keys=False))
        targets = [f"results/synthdive/{kind}/{m}/frac{frac}_seed0/{name}" for m in METHODS
                   for kind, name in (("eval", "metrics.json"), ("methods", "pseudo_quality.tsv"))]
        cmd = [str(ROOT / ".venv/bin/snakemake"), *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(wd),
               "--cores", str(args.cores), "--quiet", "rules", "--configfile", str(conf)]
        print(f"[combine] seed {seed}: {' '.join(args.overrides) or 'default config'}", flush=True)
        subprocess.run(cmd, check=True)
        res = wd / "results/synthdive/methods"
        rounds = range(1, cfg["pseudo"]["rounds"] + 1)
        table = round_table([RunFile(m, float(frac), 0, str(res / f"{m}/frac{frac}_seed0/round{r}/pseudo_labels.json"), r)
                             for m in METHODS for r in rounds],
                            [RunFile(m, float(frac), 0, str(res / f"{m}/frac{frac}_seed0/pseudo_quality.tsv"))
                             for m in METHODS])
        rows = []
        for _, r in table.iterrows():
            if r["method"] not in METHODS:
                continue
            m = json.loads((wd / f"results/synthdive/eval/{r['method']}/frac{frac}_seed0/metrics.json").read_text())
            rows.append([args.label, seed,
                         " ".join(args.overrides), r["method"], r["combine"], r["round"], r["alpha"], r["beta"],
                         r["T_E"], r["theta"], round(r["pool p_E"], 1), round(r["pool p_A"], 1),
                         round(r["pool combined"], 1), round(r["coverage"], 1), round(r["precision"], 1),
                         m.get("selected_round"), round(m["top1"], 1)])
        rows = [dict(zip(COLUMNS, row)) for row in rows]
        for row in rows:
            print(row, flush=True)
        _record.append(RESULTS, rows)


if __name__ == "__main__":
    main()
