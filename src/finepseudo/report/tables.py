"""The report's tables, computed from the run's files (pandas DataFrames; the sections format them).

Each function takes the files it reads as :class:`~finepseudo.report.inputs.RunFile` lists: the file with the
method (or trivial baseline), label percent, seed and round it belongs to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from finepseudo import stats
from finepseudo.report.inputs import BenchmarkFile, RunFile

__all__ = ["COMPARISONS", "DISTRIBUTIONS", "TRIVIAL_MARK", "accuracy_ci_table", "accuracy_table",
           "benchmark_table", "best_trivial_baselines", "calibration_table", "fmt_ci", "paired_comparisons",
           "pooled_reliability", "round_table", "trivial_comparisons", "trivial_reading"]


TRIVIAL_MARK = " (trivial baseline)"


def _with_baselines(metrics: list[dict], baselines: list[dict] | None) -> list[dict]:
    """The methods' rows, then the trivial baselines' with their names marked (TRIVIAL_MARK) and ``_kind`` 1 (the
    methods' 0), so that tables list them after the methods."""
    return ([{**r, "_kind": 0} for r in metrics]
            + [{**r, "method": r["method"] + TRIVIAL_MARK, "_kind": 1} for r in baselines or []])


def accuracy_table(metrics: list[dict], baselines: list[dict] | None = None) -> pd.DataFrame:
    """Rows of metrics dicts (method, percent, seed, top1) -> method x label-% table of 'mean ± std (n)';
    ``baselines`` (rows of the same form) follow the methods, their names marked with TRIVIAL_MARK."""
    df = pd.DataFrame(_with_baselines(metrics, baselines))
    if df.empty:
        return df
    g = df.groupby(["method", "percent"])["top1"]
    agg = g.agg(["mean", "std", "count"]).reset_index()
    agg["cell"] = [
        f"{m:.1f}" + (f" ± {s:.1f}" if c > 1 else "") + (f" (n={c})" if c > 1 else "")
        for m, s, c in zip(agg["mean"], agg["std"].fillna(0), agg["count"])
    ]
    table = agg.pivot(index="method", columns="percent", values="cell")
    kind = df.groupby("method")["_kind"].first()
    table = table.loc[sorted(table.index, key=lambda m: (kind[m], m))]
    table.columns = [f"{p:g} % labels" for p in table.columns]
    return table


def accuracy_ci_table(metrics: list[dict], level: float = 0.95, baselines: list[dict] | None = None) -> pd.DataFrame:
    """Rows of metrics dicts (method, percent, seed, top1) -> one row per method and label %: method,
    labels %, seeds (count), mean top-1 (%), ci_lo, ci_hi (Student-t interval over seeds, stats.mean_ci;
    nan with one seed) and per-seed top-1 ("seed: value", by seed). ``baselines`` (rows of the same form)
    get the same interval and follow the methods of each label %, their names marked with TRIVIAL_MARK."""
    cols = ["method", "labels %", "seeds", "mean top-1 (%)", "ci_lo", "ci_hi", "per-seed top-1"]
    df = pd.DataFrame(_with_baselines(metrics, baselines))
    if df.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (method, p), g in df.groupby(["method", "percent"], sort=False):
        g = g.sort_values("seed")
        mean, lo, hi = stats.mean_ci(g["top1"].to_numpy(), level)
        rows.append({"method": method, "labels %": p, "seeds": len(g), "mean top-1 (%)": mean, "ci_lo": lo,
                     "ci_hi": hi, "per-seed top-1": ", ".join(f"{s}: {v:.1f}" for s, v in zip(g["seed"], g["top1"])),
                     "_kind": int(g["_kind"].iloc[0])})
    out = pd.DataFrame(rows, columns=cols + ["_kind"])
    return out.sort_values(["labels %", "_kind", "method"], kind="stable", ignore_index=True)[cols]


def fmt_ci(lo: float, hi: float, fmt: str = "{:.1f}") -> str:
    return f"[{fmt.format(lo)}, {fmt.format(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else "–"


COMPARISONS: list[tuple[str, str]] = [
    ("finepseudo", "pl"), ("finepseudo", "supervised"), ("finepseudo", "fa_only"), ("finepseudo", "finepseudo_mean"),
    ("finepseudo_uncal", "finepseudo"), ("finepseudo_no_gitdl", "finepseudo"), ("finepseudo_lat_only", "finepseudo"),
    ("finepseudo_lscore_only", "finepseudo"), ("finepseudo_no_filter", "finepseudo"),
    ("fa_only", "supervised"), ("supervised", "supervised_scratch"),
]


def _read_predictions(files: list[RunFile]) -> dict[tuple[str, float, int], pd.DataFrame]:
    """predictions.tsv files -> {(method, percent, seed): table}."""
    return {(f.method, f.percent, f.seed): pd.read_csv(f.path, sep="\t", dtype={"video": str}) for f in files}


def _reading(a: str, b: str, diff: float, lo: float, hi: float) -> str:
    if lo <= 0 <= hi:
        return f"within noise: {a} minus {b} is {diff:+.1f} points and the interval contains 0"
    better, worse = (a, b) if lo > 0 else (b, a)
    return f"{better} better than {worse} by {abs(diff):.1f} points (the interval excludes 0)"


def paired_comparisons(predictions: list[RunFile], *, comparisons: list[tuple[str, str]] | None = None,
                       n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Paired bootstrap of top-1 differences between methods on the same test videos.

    ``predictions``: predictions.tsv of the runs (columns video, label, pred). For each
    (A, B) of ``comparisons`` (default COMPARISONS) and label %, the runs of both methods are paired by seed,
    joined on video and passed to stats.paired_bootstrap. One row per comparison and label %: comparison,
    a, b, labels %, seeds (count), videos (total), difference (points, A minus B), ci_lo, ci_hi, p_boot_le_0,
    reading ("within noise" exactly when [ci_lo, ci_hi] contains 0).
    """
    cols = ["comparison", "a", "b", "labels %", "seeds", "videos", "difference (points)", "ci_lo", "ci_hi",
            "p_boot_le_0", "reading"]
    preds = _read_predictions(predictions)
    rows = []
    for p in sorted({k[1] for k in preds}):
        for a, b in comparisons if comparisons is not None else COMPARISONS:
            seeds = sorted({s for m, q, s in preds if m == a and q == p}
                           & {s for m, q, s in preds if m == b and q == p})
            if not seeds:
                continue
            ca, cb = [], []
            for s in seeds:
                j = preds[(a, p, s)].merge(preds[(b, p, s)], on="video", suffixes=("_a", "_b"))
                if j.empty:
                    continue
                ca.append((j["pred_a"] == j["label_a"]).to_numpy())
                cb.append((j["pred_b"] == j["label_b"]).to_numpy())
            if not ca:
                continue
            r = stats.paired_bootstrap(ca, cb, n_boot=n_boot, seed=seed, level=level)
            rows.append({"comparison": f"{a} vs {b}", "a": a, "b": b, "labels %": p, "seeds": r["n_seeds"],
                         "videos": r["n_videos"], "difference (points)": r["diff"], "ci_lo": r["lo"], "ci_hi": r["hi"],
                         "p_boot_le_0": r["p_boot_le_0"], "reading": _reading(a, b, r["diff"], r["lo"], r["hi"])})
    return pd.DataFrame(rows, columns=cols)


def best_trivial_baselines(baseline_predictions: list[RunFile]) -> pd.DataFrame:
    """The strongest trivial baseline of each label %: predictions.tsv files of the baselines' runs -> one row
    per label %: labels %, baseline (the highest test top-1 averaged over its seeds; a tie goes to the first
    name in alphabetical order), seeds, mean top-1 (%). Choosing the best on the test split favours the
    baseline: a method that beats it beats every trivial baseline."""
    cols = ["labels %", "baseline", "seeds", "mean top-1 (%)"]
    preds = _read_predictions(baseline_predictions)
    acc: dict[tuple[float, str], list[float]] = {}
    for (name, p, _), t in preds.items():
        if len(t):
            acc.setdefault((p, name), []).append(100.0 * float((t["pred"] == t["label"]).mean()))
    rows = []
    for p in sorted({k[0] for k in acc}):
        means = sorted(((-float(np.mean(v)), name, len(v)) for (q, name), v in acc.items() if q == p))
        neg, name, n = means[0]
        rows.append({"labels %": p, "baseline": name, "seeds": n, "mean top-1 (%)": -neg})
    return pd.DataFrame(rows, columns=cols)


def trivial_comparisons(predictions: list[RunFile], baseline_predictions: list[RunFile], *, n_boot: int = 2000,
                        seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Every method against the best trivial baseline of its label % (best_trivial_baselines), paired on the
    same seeds and test videos (paired_comparisons: two-level paired bootstrap). One row per method and label %,
    in the order the methods first appear in ``predictions``: method, labels %, baseline, baseline top-1 (%),
    seeds, videos, difference (points, method minus baseline), ci_lo, ci_hi, beats (True exactly when ci_lo > 0,
    False otherwise; None, with the other columns empty, when no trivial baseline ran at that label %)."""
    cols = ["method", "labels %", "baseline", "baseline top-1 (%)", "seeds", "videos", "difference (points)", "ci_lo",
            "ci_hi", "beats"]
    best = best_trivial_baselines(baseline_predictions).set_index("labels %")
    keys = [(f.method, f.percent) for f in predictions]
    rows = []
    for p in sorted({q for _, q in keys}):
        for method in dict.fromkeys(m for m, q in keys if q == p):
            if p not in best.index:
                rows.append({"method": method, "labels %": p, "baseline": None, "beats": None})
                continue
            b = best.loc[p]
            paths = [x for x, (m, q) in zip(predictions, keys) if q == p and m == method]
            paths += [x for x in baseline_predictions if (x.method, x.percent) == (b["baseline"], p)]
            r = paired_comparisons(paths, comparisons=[(method, b["baseline"])], n_boot=n_boot, seed=seed, level=level)
            if r.empty:  # no seed with both a method's and the baseline's predictions
                rows.append({"method": method, "labels %": p, "baseline": None, "beats": None})
                continue
            r = r.iloc[0]
            rows.append({"method": method, "labels %": p, "baseline": b["baseline"],
                         "baseline top-1 (%)": b["mean top-1 (%)"], "seeds": r["seeds"], "videos": r["videos"],
                         "difference (points)": r["difference (points)"], "ci_lo": r["ci_lo"], "ci_hi": r["ci_hi"],
                         "beats": bool(r["ci_lo"] > 0)})
    return pd.DataFrame(rows, columns=cols)


def trivial_reading(row: pd.Series | dict) -> str:
    """One sentence on whether a method beats the best trivial baseline: a row of trivial_comparisons."""
    m, p = row["method"], row["labels %"]
    if row["baseline"] is None or (isinstance(row["baseline"], float) and np.isnan(row["baseline"])):
        return (f"{m} at {p:g} % labels: no trivial baseline ran at this label fraction (they run at "
                "splits.label_percents), so it is not compared with one.")
    head = (f"{m} at {p:g} % labels against the best trivial baseline, {row['baseline']} "
            f"({row['baseline top-1 (%)']:.1f} %): ")
    diff, lo, hi = row["difference (points)"], row["ci_lo"], row["ci_hi"]
    ci = f"95 % interval [{lo:.1f}, {hi:.1f}]"
    if lo > 0:
        return head + f"it beats it, by {diff:+.1f} points ({ci}, above 0)."
    if hi < 0:
        return head + f"it does NOT beat it: it is worse by {abs(diff):.1f} points ({ci}, below 0)."
    return head + f"it does NOT beat it: {diff:+.1f} points, {ci} contains 0 (within noise)."


DISTRIBUTIONS = ["p_E", "p_E_calibrated", "p_A", "combined"]


def _dist_order(names) -> list[str]:
    return [d for d in DISTRIBUTIONS if d in set(names)] + sorted(set(names) - set(DISTRIBUTIONS))


def calibration_table(files: list[RunFile]) -> pd.DataFrame:
    """calibration.tsv files of the runs (distribution, temperature, n, top1, ece,
    nll; measured on validation) -> mean over seeds per method, label % and distribution: method, labels %,
    distribution, seeds, validation videos, top-1 (%), ECE (fraction), NLL, temperature (nan when none)."""
    cols = ["method", "labels %", "distribution", "seeds", "validation videos", "top-1 (%)", "ECE", "NLL",
            "temperature"]
    parts = []
    for f in files:
        t = pd.read_csv(f.path, sep="\t")
        if len(t):
            parts.append(t.assign(method=f.method, percent=f.percent, seed=f.seed))
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True)
    df["temperature"] = pd.to_numeric(df.get("temperature", np.nan), errors="coerce")
    methods = list(dict.fromkeys(df["method"]))
    order = {d: i for i, d in enumerate(_dist_order(df["distribution"]))}
    agg = (df.groupby(["method", "percent", "distribution"], sort=False)
             .agg(seeds=("seed", "nunique"), n=("n", "mean"), top1=("top1", "mean"), ece=("ece", "mean"),
                  nll=("nll", "mean"), temperature=("temperature", "mean")).reset_index())
    agg["_m"] = agg["method"].map(methods.index)
    agg["_d"] = agg["distribution"].map(order)
    agg = agg.sort_values(["_m", "percent", "_d"], ignore_index=True).drop(columns=["_m", "_d"])
    agg.columns = cols
    return agg


def pooled_reliability(files: list[RunFile], method: str) -> pd.DataFrame:
    """reliability.tsv files (distribution, bin, lo, hi, count, confidence, accuracy) -> the bins of
    ``method``'s runs pooled (counts summed, confidence and accuracy count-weighted): distribution, bin,
    lo, hi, count, confidence, accuracy, runs. Confidence and accuracy are fractions (tables in % are
    divided by 100)."""
    cols = ["distribution", "bin", "lo", "hi", "count", "confidence", "accuracy", "runs"]
    parts = []
    for f in files:
        if f.method != method:
            continue
        t = pd.read_csv(f.path, sep="\t")
        for c in ("confidence", "accuracy"):
            if t[c].max() > 1 + 1e-9:
                t[c] = t[c] / 100.0
        parts.append(t.assign(run=f.path))
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.concat(parts, ignore_index=True)
    df["w_conf"] = df["count"] * df["confidence"].fillna(0)
    df["w_acc"] = df["count"] * df["accuracy"].fillna(0)
    g = (df.groupby(["distribution", "bin"]).agg(lo=("lo", "first"), hi=("hi", "first"), count=("count", "sum"),
                                                 w_conf=("w_conf", "sum"), w_acc=("w_acc", "sum"),
                                                 runs=("run", "nunique")).reset_index())
    with np.errstate(invalid="ignore", divide="ignore"):
        g["confidence"] = np.where(g["count"] > 0, g["w_conf"] / g["count"], np.nan)
        g["accuracy"] = np.where(g["count"] > 0, g["w_acc"] / g["count"], np.nan)
    order = {d: i for i, d in enumerate(_dist_order(g["distribution"]))}
    g = g.assign(_d=g["distribution"].map(order)).sort_values(["_d", "bin"], ignore_index=True)
    return g[cols]


def benchmark_table(files: list[BenchmarkFile]) -> pd.DataFrame:
    """Per-rule wall time and peak memory from Snakemake's ``benchmark:`` files of the run's jobs, by path."""
    rows = []
    for f in sorted(files, key=lambda f: f.path):
        try:
            b = pd.read_csv(f.path, sep="\t")
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        rows.append({"rule": f.rule, "job": f.job, "seconds": float(b["s"].iloc[0]),
                     "max_rss_mb": float(b["max_rss"].iloc[0]) if "max_rss" in b else np.nan})
    return pd.DataFrame(rows, columns=["rule", "job", "seconds", "max_rss_mb"])


def round_table(infos: list[RunFile], quality: list[RunFile]) -> pd.DataFrame:
    """What every round of every pseudo-labeling run used and how good both branches were: one row per
    (method, labels %, seed, round) from the round's ``pseudo_labels.json`` (combination, T_E, pool weights,
    theta, each branch's validation top-1 and their agreement) and its pseudo-label quality (each branch's
    and the combination's accuracy on the unlabeled pool, coverage and precision of the accepted ones)."""
    rows = []
    for f in infos:
        method, p, s, rnd = f.method, f.percent, f.seed, f.round
        info = json.loads(Path(f.path).read_text())
        val = info.get("val_top1") or {}
        w = info.get("weights")
        rows.append({"method": method, "labels %": p, "seed": s, "round": rnd, "combine": info.get("combine"),
                     "T_E": info.get("T_E"), "alpha": w[0] if w else np.nan, "beta": w[1] if w else np.nan,
                     "theta": info.get("theta"), "val p_E": val.get("p_E", np.nan), "val p_A": val.get("p_A", np.nan),
                     "val combined": val.get("combined", np.nan),
                     "val agreement": 100 * info["val_agreement"] if info.get("val_agreement") is not None else np.nan})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    q = []
    for f in quality:
        t = pd.read_csv(f.path, sep="\t").assign(method=f.method, **{"labels %": f.percent, "seed": f.seed})
        q.append(t)
    if q:
        q = pd.concat(q)
        keep = {"fe_accuracy": "pool p_E", "fa_accuracy": "pool p_A", "combined_accuracy": "pool combined",
                "fe_fa_agreement": "pool agreement", "coverage": "coverage", "precision": "precision"}
        q = q[["method", "labels %", "seed", "round", *[k for k in keep if k in q]]].rename(columns=keep)
        for c in q.columns[4:]:
            q[c] = 100 * q[c]
        table = table.merge(q, on=["method", "labels %", "seed", "round"], how="left")
    return table.sort_values(["method", "labels %", "seed", "round"]).reset_index(drop=True)
