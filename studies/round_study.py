"""Design study of the pseudo-labeling rounds, run on a DEVELOPMENT SynthDive (another generation seed), never
on the benchmark's own data: which round recipe, calibration, initialisation and acceptance rule turn
pseudo-labels into a better f_E.

It runs the real workflow once per variant, each in its own working directory copied from a base directory
that already holds the shared, variant-independent outputs (videos, frames, splits, GITDL, AVML, warm-ups),
so only what a variant changes is recomputed. A variant is a config overlay (YAML text) layered on top of
``config/config.yaml`` and the study's base overlay. It prints, per variant and method, the dev test top-1 over
split seeds (mean and 95 % CI), the validation top-1 and the pseudo-label quality of round 1, and writes them
to ``<root>/study.tsv``.

    PYTHONPATH=src .venv/bin/python studies/round_study.py --root /tmp/study --variants old new

The base overlay (``BASE``) makes the development dataset: ``synthdive.seed: 101`` (the benchmark uses 0).
Reading that dataset's test split is what a development set is for; the benchmark's test split is read only
by the final evaluation of the default run.

Every run appends one row per variant and method to ``studies/results/round_study.csv`` (mean test top-1 over
split seeds, per seed, round-1 coverage and precision). The first rows (2026-12-01, one round, 10 % labels; the
script was then benchmarks/round_study.py) were
measured with::

    PYTHONPATH=src .venv/bin/python studies/round_study.py --root /work/dev/study \
        --variants new old floor50_no_share floor50 ssl --base-overlay scratch.yaml   # fe: {init: scratch}

What they chose, and why: studies/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import _record  # noqa: E402
from finepseudo.stats import mean_ci  # noqa: E402

RESULTS = ROOT / "studies/results/round_study.csv"

BASE = """
synthdive:
  seed: 101
  test_per_class: 45
splits:
  seeds: [0, 1, 2]
  label_percents: [10]
fe:
  min_steps: 300
pseudo:
  rounds: 1
  fe: {steps: 300}
"""

#: Variants: name -> (overlay, methods). ``old`` is the recipe before this study (fine-tune the previous
#: f_E for 4 epochs at lr 0.001, uncalibrated p_E, plain theta); the others change one thing at a time
#: from ``new``.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "new": ("", ["supervised", "pl", "fa_only", "finepseudo", "finepseudo_uncal"]),
    "old": ("""
pseudo:
  calibrate: false
  min_accept: 0.0
  fe: {init: previous, steps: 60, lr: 0.001, labeled_share: 0.0, weight: none}
""", ["pl", "fa_only", "finepseudo"]),
    "new_no_share": ("pseudo:\n  fe: {labeled_share: 0.0, weight: none}\n", ["fa_only", "finepseudo"]),
    "floor50": ("pseudo:\n  min_accept: 0.5\n", ["fa_only", "finepseudo"]),
    "floor50_no_share": ("pseudo:\n  min_accept: 0.5\n  fe: {labeled_share: 0.0, weight: none}\n",
                         ["fa_only", "finepseudo"]),
    "new_previous": ("pseudo:\n  fe: {init: previous}\n", ["fa_only", "finepseudo"]),
    "new_no_floor": ("pseudo:\n  min_accept: 0.0\n", ["pl", "finepseudo"]),
    "new_flexmatch": ("pseudo:\n  accept: flexmatch\n", ["pl", "fa_only", "finepseudo"]),
    "new_rounds2": ("pseudo:\n  rounds: 2\n", ["fa_only", "finepseudo"]),
    "steps600": ("fe:\n  min_steps: 600\npseudo:\n  fe: {steps: 600}\n", ["supervised", "fa_only", "finepseudo"]),
    "ssl": ("fe:\n  init: ssl\n", ["supervised", "fa_only", "finepseudo"]),
    "ssl_grid": ("fe:\n  init: ssl\nhparams:\n  theta_grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\n",
                 ["fa_only", "finepseudo"]),
    "ssl_steps600": ("fe:\n  init: ssl\n  min_steps: 600\npseudo:\n  fe: {steps: 600}\n",
                     ["supervised", "fa_only", "finepseudo"]),
}


def snakemake(workdir: Path, targets: list[str], configs: list[Path], log: Path) -> float:
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(ROOT / "Snakefile"), "--directory",
           str(workdir), *targets, "--cores", "2", "--rerun-triggers", "mtime", "params", "input", "--configfile",
           str(ROOT / "config/config.yaml"), *map(str, configs)]
    t0 = time.time()
    with open(log, "w") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if r.returncode:
        raise SystemExit(f"snakemake failed for {workdir} (see {log})")
    return time.time() - t0


def targets(methods: list[str], seeds: list[int], frac: str = "10") -> list[str]:
    return [f"results/synthdive/eval/{m}/frac{frac}_seed{s}/metrics.json" for m in methods for s in seeds] + [
        f"results/synthdive/methods/{m}/frac{frac}_seed{s}/pseudo_quality.tsv"
        for m in methods if not m.startswith("supervised") for s in seeds]


def collect(workdir: Path, variant: str, methods: list[str], seeds: list[int], frac: str = "10") -> pd.DataFrame:
    rows = []
    for m in methods:
        for s in seeds:
            ev = workdir / f"results/synthdive/eval/{m}/frac{frac}_seed{s}"
            met = json.loads((ev / "metrics.json").read_text())
            row = {"variant": variant, "method": m, "seed": s, "test_top1": met["top1"],
                   "round": met.get("selected_round")}
            q = workdir / f"results/synthdive/methods/{m}/frac{frac}_seed{s}/pseudo_quality.tsv"
            if q.exists():
                qt = pd.read_csv(q, sep="\t").iloc[0]
                row.update(coverage=100 * qt["coverage"], precision=100 * qt["precision"])
                r1 = json.loads((ev / "round1/val_metrics.json").read_text())
                row["val_top1_round1"] = r1["top1"]
            rows.append(row)
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (v, m), g in df.groupby(["variant", "method"], sort=False):
        mean, lo, hi = mean_ci(g["test_top1"].to_numpy())
        rec = {"variant": v, "method": m, "seeds": len(g), "test_top1": round(mean, 1),
               "ci95": f"[{lo:.1f}, {hi:.1f}]", "per_seed": " ".join(f"{x:.1f}" for x in g["test_top1"])}
        for k in ("coverage", "precision"):
            if k in g and g[k].notna().any():
                rec[k] = round(float(g[k].mean()), 1)
        out.append(rec)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="folder for the base and the variants' workdirs")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--base-overlay", type=Path, help="extra YAML layered on the study's base (e.g. frame size)")
    args = ap.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    base_cfg = args.root / "base.yaml"
    base_cfg.write_text(BASE)
    configs = [base_cfg] + ([args.base_overlay] if args.base_overlay else [])
    base = args.root / "base"
    all_rows = []
    for v in args.variants:
        overlay, methods = VARIANTS[v]
        wd = args.root / v
        if not wd.exists() and base.exists():
            shutil.copytree(base, wd, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
        wd.mkdir(exist_ok=True)
        cfg = args.root / f"{v}.yaml"
        cfg.write_text(overlay or "{}\n")
        secs = snakemake(wd, targets(methods, args.seeds), configs + [cfg], args.root / f"{v}.log")
        if not base.exists():  # the first variant's directory becomes the base the others copy
            shutil.copytree(wd, base, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
        df = collect(wd, v, methods, args.seeds)
        all_rows.append(df)
        print(f"[{v}] {secs / 60:.1f} min", flush=True)
        print(summary(df).to_string(index=False), flush=True)
    df = pd.concat(all_rows, ignore_index=True)
    print(f"appended to {_record.append(RESULTS, summary(df).to_dict('records'))}")
    out = args.root / "study.tsv"
    if out.exists():  # keep the rows of variants run earlier (a variant run again replaces its own)
        old = pd.read_csv(out, sep="\t")
        df = pd.concat([old[~old["variant"].isin(df["variant"])], df], ignore_index=True)
    df.to_csv(out, sep="\t", index=False)
    print(summary(df).to_string(index=False))
    print(f"per-seed rows: {args.root / 'study.tsv'}")


if __name__ == "__main__":
    main()
