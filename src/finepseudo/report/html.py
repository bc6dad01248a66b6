"""The benchmark report: one self-contained HTML file (figures embedded as base64 PNG).

``build_report(inputs, config)`` reads the run's output files and returns the HTML text. Each
section is a small function, so later stages add sections without touching the others.
"""

from __future__ import annotations

import base64
import glob
import html
import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from finepseudo import stats
from finepseudo.registry import TRIVIAL_BASELINES

__all__ = ["build_report", "benchmark_table", "accuracy_table", "accuracy_ci_table", "paired_comparisons",
           "best_trivial_baselines", "trivial_comparisons", "trivial_reading", "calibration_table",
           "pooled_reliability", "COMPARISONS", "TRIVIAL_MARK"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}.note{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}img{max-width:100%}
nav a{margin-right:1em}
"""


def _fig_to_img(fig, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, index: bool = False, floatfmt: str = "{:.1f}") -> str:
    return df.to_html(index=index, border=0, na_rep="–", float_format=lambda x: floatfmt.format(x), escape=True)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------------------------- data


#: Appended to a trivial baseline's name wherever it is a row beside the methods.
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


def _fmt_ci(lo: float, hi: float, fmt: str = "{:.1f}") -> str:
    return f"[{fmt.format(lo)}, {fmt.format(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else "–"


#: Paired comparisons (A, B) of the report, A minus B; those whose methods are absent are skipped.
COMPARISONS: list[tuple[str, str]] = [
    ("finepseudo", "pl"), ("finepseudo", "supervised"), ("finepseudo", "fa_only"), ("finepseudo", "finepseudo_mean"),
    ("finepseudo_uncal", "finepseudo"), ("finepseudo_no_gitdl", "finepseudo"), ("finepseudo_lat_only", "finepseudo"),
    ("finepseudo_lscore_only", "finepseudo"), ("finepseudo_no_filter", "finepseudo"),
    ("fa_only", "supervised"), ("supervised", "supervised_scratch"),
]


def _read_predictions(paths: list[str]) -> dict[tuple[str, float, int], pd.DataFrame]:
    """predictions.tsv files under .../<method>/frac<P>_seed<S>/ -> {(method, percent, seed): table}."""
    out = {}
    for path in paths:
        method, p, s, _ = _run_key(path)
        out[(method, p, s)] = pd.read_csv(path, sep="\t", dtype={"video": str})
    return out


def _reading(a: str, b: str, diff: float, lo: float, hi: float) -> str:
    if lo <= 0 <= hi:
        return f"within noise: {a} minus {b} is {diff:+.1f} points and the interval contains 0"
    better, worse = (a, b) if lo > 0 else (b, a)
    return f"{better} better than {worse} by {abs(diff):.1f} points (the interval excludes 0)"


def paired_comparisons(predictions: list[str], *, comparisons: list[tuple[str, str]] | None = None,
                       n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Paired bootstrap of top-1 differences between methods on the same test videos.

    ``predictions``: paths .../<method>/frac<P>_seed<S>/predictions.tsv (columns video, label, pred). For each
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


def best_trivial_baselines(baseline_predictions: list[str]) -> pd.DataFrame:
    """The strongest trivial baseline of each label %: predictions.tsv files under .../<baseline>/frac<P>_seed<S>/
    -> one row per label %: labels %, baseline (the highest test top-1 averaged over its seeds; a tie goes to the
    first name in alphabetical order), seeds, mean top-1 (%). Choosing the best on the test split favours the
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


def trivial_comparisons(predictions: list[str], baseline_predictions: list[str], *, n_boot: int = 2000,
                        seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Every method against the best trivial baseline of its label % (best_trivial_baselines), paired on the
    same seeds and test videos (paired_comparisons: two-level paired bootstrap). One row per method and label %,
    in the order the methods first appear in ``predictions``: method, labels %, baseline, baseline top-1 (%),
    seeds, videos, difference (points, method minus baseline), ci_lo, ci_hi, beats (True exactly when ci_lo > 0,
    False otherwise; None, with the other columns empty, when no trivial baseline ran at that label %)."""
    cols = ["method", "labels %", "baseline", "baseline top-1 (%)", "seeds", "videos", "difference (points)", "ci_lo",
            "ci_hi", "beats"]
    best = best_trivial_baselines(baseline_predictions).set_index("labels %")
    keys = [_run_key(path)[:2] for path in predictions]
    rows = []
    for p in sorted({q for _, q in keys}):
        for method in dict.fromkeys(m for m, q in keys if q == p):
            if p not in best.index:
                rows.append({"method": method, "labels %": p, "baseline": None, "beats": None})
                continue
            b = best.loc[p]
            paths = [x for x, (m, q) in zip(predictions, keys) if q == p and m == method]
            paths += [x for x in baseline_predictions if _run_key(x)[:2] == (b["baseline"], p)]
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


#: Order of the validation distributions in the calibration table.
DISTRIBUTIONS = ["p_E", "p_E_calibrated", "p_A", "combined"]


def _dist_order(names) -> list[str]:
    return [d for d in DISTRIBUTIONS if d in set(names)] + sorted(set(names) - set(DISTRIBUTIONS))


def calibration_table(paths: list[str]) -> pd.DataFrame:
    """calibration.tsv files under .../<method>/frac<P>_seed<S>/ (distribution, temperature, n, top1, ece,
    nll; measured on validation) -> mean over seeds per method, label % and distribution: method, labels %,
    distribution, seeds, validation videos, top-1 (%), ECE (fraction), NLL, temperature (nan when none)."""
    cols = ["method", "labels %", "distribution", "seeds", "validation videos", "top-1 (%)", "ECE", "NLL",
            "temperature"]
    parts = []
    for path in paths:
        method, p, s, _ = _run_key(path)
        t = pd.read_csv(path, sep="\t")
        if len(t):
            parts.append(t.assign(method=method, percent=p, seed=s))
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


def _reliability_paths(inp: dict) -> list[str]:
    """inp["reliability"], or reliability.tsv beside each calibration.tsv where that exists."""
    if inp.get("reliability"):
        return list(inp["reliability"])
    return [str(Path(p).with_name("reliability.tsv")) for p in inp.get("calibration", [])
            if Path(p).with_name("reliability.tsv").is_file()]


def pooled_reliability(paths: list[str], method: str) -> pd.DataFrame:
    """reliability.tsv files (distribution, bin, lo, hi, count, confidence, accuracy) -> the bins of
    ``method``'s runs pooled (counts summed, confidence and accuracy count-weighted): distribution, bin,
    lo, hi, count, confidence, accuracy, runs. Confidence and accuracy are fractions (tables in % are
    divided by 100)."""
    cols = ["distribution", "bin", "lo", "hi", "count", "confidence", "accuracy", "runs"]
    parts = []
    for path in paths:
        if _run_key(path)[0] != method:
            continue
        t = pd.read_csv(path, sep="\t")
        for c in ("confidence", "accuracy"):
            if t[c].max() > 1 + 1e-9:
                t[c] = t[c] / 100.0
        parts.append(t.assign(run=path))
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


def benchmark_table(bench_dir: str | Path, files: list[str] | None = None) -> pd.DataFrame:
    """Per-rule wall time and peak memory from Snakemake's ``benchmark:`` files: ``files`` (paths under
    ``bench_dir``, the workflow passes those of the run's jobs) or else every file under ``bench_dir``."""
    rows = []
    if files is None:
        files = glob.glob(str(Path(bench_dir) / "**" / "*.tsv"), recursive=True)
    for path in sorted(files):
        try:
            b = pd.read_csv(path, sep="\t")
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        rel = Path(path).relative_to(bench_dir)  # <rule>/<wildcards...>.tsv
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        rows.append({"rule": rule, "job": str(rel.with_suffix("")), "seconds": float(b["s"].iloc[0]),
                     "max_rss_mb": float(b["max_rss"].iloc[0]) if "max_rss" in b else np.nan})
    return pd.DataFrame(rows, columns=["rule", "job", "seconds", "max_rss_mb"])


# ------------------------------------------------------------------------------------------- sections


def _section_dataset(inp: dict, config: dict) -> str:
    plt = _plt()
    man = pd.read_csv(inp["manifest"], sep="\t", dtype={"video": str})
    counts = man.groupby(["label_name", "split"]).size().unstack(fill_value=0)
    counts.index.name = "class"
    parts = [f"<p>{len(man)} videos: {', '.join(f'{k} {v}' for k, v in man['split'].value_counts().items())}; "
             f"{man['label'].nunique()} classes.</p>", _table(counts.reset_index())]
    lengths = man["end_frame"] - man["start_frame"]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for name, grp in man.assign(length=lengths).groupby("label_name"):
        ax.scatter(grp["length"], [name] * len(grp), s=8, alpha=.6)
    ax.set_xlabel("annotated action length (frames)")
    ax.set_title("Clip lengths per class: phase durations vary from video to video")
    fig.set_figheight(max(2.6, .22 * man["label_name"].nunique()))
    parts.append(_fig_to_img(fig, "clip lengths per class"))
    if inp.get("synthdive_summary") and Path(inp["synthdive_summary"]).is_file():
        summ = json.loads(Path(inp["synthdive_summary"]).read_text())
        keep = {k: v for k, v in summ.items() if not isinstance(v, (dict, list))}
        parts.append("<p>SynthDive generation: " + html.escape(json.dumps(keep)) + "</p>")
    return "".join(parts)


def _section_failed(inp: dict) -> str:
    """Videos that could not be decoded (left out), and videos kept with a warning (an annotated frame range
    clamped to the last frame, ffmpeg decoding errors), from the shards' status tables."""
    failed, warned = [], []
    for p in inp["frame_status"]:
        st = pd.read_csv(p, sep="\t", dtype={"video": str, "reason": str, "warning": str}, keep_default_na=False)
        failed.append(st[st["status"] != "ok"])
        if "warning" in st.columns:  # status tables from before per-video warnings have none
            warned.append(st[(st["status"] == "ok") & (st["warning"] != "")])
    failed = pd.concat(failed) if failed else pd.DataFrame()
    warned = pd.concat(warned) if warned else pd.DataFrame()
    if failed.empty:
        out = "<p class='ok'>Every video was decoded.</p>"
    else:
        out = (f"<p class='bad'>{len(failed)} video(s) could not be decoded and were left out "
               "(frames.on_error: skip):</p>" + _table(failed[["video", "reason"]]))
    if not warned.empty:
        out += (f"<p class='bad'>\u26a0 {len(warned)} video(s) were kept with a warning (their frames may not be "
                "what the annotation describes; check the file and its annotation):</p>"
                + _table(warned[["video", "warning"]]))
    return out


def _trivial_note(baselines: list[dict], config: dict) -> str:
    """What the trivial baselines' rows are, and why one is missing (no self-supervised f_E to probe)."""
    shown = list(dict.fromkeys(r["method"] for r in baselines))
    out = ("<p class='note'>Rows marked <i>" + html.escape(TRIVIAL_MARK.strip()) + "</i> are not methods: each "
           "classifies the test videos from the split's labeled videos only (<code>labeled.tsv</code>, the "
           "videos the methods train on; never the validation or unlabeled videos), on the same splits, seeds and "
           "test videos as the methods. " + "; ".join(f"<code>{html.escape(n)}</code>: {html.escape(d)}"
                                                     for n, d in TRIVIAL_BASELINES.items() if n in shown) + ".</p>")
    if config.get("fe", {}).get("init") == "scratch" and "ssl_probe" not in shown:
        out += ("<p class='note'><code>ssl_probe</code> is not shown: <code>fe.init</code> is scratch, so this "
                "run has no self-supervised f_E (fe_ssl.pt) to probe.</p>")
    return out


def _section_accuracy(metrics: list[dict], config: dict, baselines: list[dict] | None = None) -> str:
    plt = _plt()
    df = pd.DataFrame(metrics)
    out = ["<p>Top-1 accuracy (%) on the test split, f_E averaged over "
           f"{config['eval']['clips_per_video']} clips per video; mean ± std over seeds where there are several. "
           "<code>supervised_full</code> uses 100 % of the train labels (the upper bound).</p>",
           _table(accuracy_table(metrics, baselines).reset_index())]
    if baselines:
        out.append(_trivial_note(baselines, config))
    ci = accuracy_ci_table(metrics, baselines=baselines)
    if len(ci):
        shown = ci.assign(**{"mean top-1 (%)": ci["mean top-1 (%)"].map("{:.1f}".format),
                             "95 % CI": [_fmt_ci(lo, hi) for lo, hi in zip(ci["ci_lo"], ci["ci_hi"])]})
        out += ["<h3>Mean top-1 and 95 % confidence interval over split seeds</h3>",
                "<p>Student-t interval of the mean over the split seeds (each seed draws its own labeled subset "
                "and trains its own models), so it shows how much a result moves with the labeled videos and "
                "the training noise. With two or three seeds it is wide (t has 1 or 2 degrees of freedom); with "
                "one seed there is none. For whether one method beats another on the same videos, see the "
                "paired comparisons.</p>",
                _table(shown[["method", "labels %", "seeds", "mean top-1 (%)", "95 % CI", "per-seed top-1"]],
                       floatfmt="{:g}")]
    full = df[df["method"] == "supervised_full"]["top1"]
    sup = df[df["method"] == "supervised"]
    if config["dataset"]["name"] == "synthdive" and len(full):
        ok_full = full.mean() >= 90
        checks = [f"<li>supervised_full top-1 {full.mean():.1f} % (target ≥ 90 %): "
                  f"<span class='{'ok' if ok_full else 'bad'}'>{'met' if ok_full else 'NOT met'}</span></li>"]
        for p, grp in sup.groupby("percent"):
            gap = full.mean() - grp["top1"].mean()
            checks.append(f"<li>supervised at {p:g} % labels: {grp['top1'].mean():.1f} %, "
                          f"{gap:.1f} points below supervised_full</li>")
        out.append("<h3>SynthDive calibration (measured on this run)</h3><ul>" + "".join(checks) + "</ul>")
        fig, ax = plt.subplots(figsize=(6, 2.8))
        labels = [f"{m}\n{p:g}%" for m, p in zip(df["method"], df["percent"])]
        ax.bar(range(len(df)), df["top1"], color=["#4c72b0" if m != "supervised_full" else "#55a868"
                                                   for m in df["method"]])
        ax.axhline(90, ls="--", c="k", lw=1)
        ax.text(len(df) - .5, 91, "target for 100 % labels", ha="right", fontsize=8)
        ax.set_xticks(range(len(df)), labels, fontsize=8)
        ax.set_ylabel("top-1 (%)")
        ax.set_ylim(0, 100)
        chance = 100.0 / max(1, config.get("_num_classes", 1))
        ax.axhline(chance, ls=":", c="gray", lw=1)
        ax.set_title("SynthDive calibration: learnable with all labels, room for semi-supervision")
        out.append(_fig_to_img(fig, "calibration"))
    return "".join(out)


def _section_paired(predictions: list[str], n_boot: int = 2000, seed: int = 0,
                    vs_trivial: pd.DataFrame | None = None) -> str:
    """Paired bootstrap of FinePseudo against the baselines, each ablation against FinePseudo, and more; with
    ``vs_trivial`` (trivial_comparisons) every method against the best trivial baseline."""
    if not predictions:
        return "<p>No test predictions were passed to the report.</p>"
    return _paired_methods(predictions, n_boot, seed) + _paired_trivial(vs_trivial, n_boot)


def _paired_trivial(table: pd.DataFrame | None, n_boot: int) -> str:
    out = "<h3>Every method against the best trivial baseline</h3>"
    if table is None or table.empty:
        return out + "<p>No trivial baseline predictions were passed to the report.</p>"
    done = table[table["beats"].notna()]
    verdict = {True: "beats it", False: "does NOT beat it"}
    shown = pd.DataFrame({
        "method": done["method"], "labels %": done["labels %"], "best trivial baseline": done["baseline"],
        "its top-1 (%)": done["baseline top-1 (%)"].map("{:.1f}".format), "seeds": done["seeds"],
        "difference (points)": done["difference (points)"].map("{:+.1f}".format),
        "95 % CI": [_fmt_ci(lo, hi) for lo, hi in zip(done["ci_lo"], done["ci_hi"])],
        "verdict": [verdict[bool(b)] for b in done["beats"]]})
    out += ("<p>The best trivial baseline of each label fraction is the one with the highest mean test top-1 over "
            "the seeds (chosen on the test split, which favours the baseline: beating it means beating every "
            "trivial baseline). Difference: method minus baseline on the same seeds and test videos, two-level "
            f"paired bootstrap ({n_boot} replicates) as above. A method <b>beats</b> it only when the whole 95 % "
            "interval is above 0.</p>" + _table(shown, floatfmt="{:g}"))
    missing = table[table["beats"].isna()]
    if len(missing):
        out += "<p class='note'>" + html.escape(" ".join(trivial_reading(r) for _, r in missing.iterrows())) + "</p>"
    return out


def _paired_methods(predictions: list[str], n_boot: int, seed: int) -> str:
    table = paired_comparisons(predictions, n_boot=n_boot, seed=seed)
    if table.empty:
        return ("<p>None of the comparisons applies: this run lacks at least one method of each pair "
                f"({', '.join(f'{a} vs {b}' for a, b in COMPARISONS)}).</p>")
    shown = table.assign(**{"difference (points)": table["difference (points)"].map("{:+.1f}".format),
                            "95 % CI": [_fmt_ci(lo, hi) for lo, hi in zip(table["ci_lo"], table["ci_hi"])]})
    out = ["<p>Difference of test top-1 (percentage points, first method minus second) on the same test "
           "videos, averaged over the split seeds both methods ran. The interval is a two-level paired bootstrap "
           f"({n_boot} replicates, stats.paired_bootstrap): draw the seeds with replacement, then within each "
           "drawn seed the test videos with replacement, the same videos for both methods. It therefore covers "
           "both the choice of labeled subset and the finite test set; with a single seed it covers the test "
           "set only. A difference is read as real only when its 95 % interval excludes 0 (otherwise "
           "<i>within noise</i>); with about ten comparisons per label fraction, one interval in twenty "
           "excludes 0 by chance alone.</p>",
           _table(shown[["comparison", "labels %", "seeds", "difference (points)", "95 % CI", "reading"]],
                  floatfmt="{:g}")]
    if {"supervised", "supervised_scratch"} <= set(table["a"]) | set(table["b"]):
        out.append("<p class='note'><code>supervised vs supervised_scratch</code>: the same supervised "
                   "training from the self-supervised f_E initialisation (pretrain_fe, TCLR-style) versus a "
                   "random one, i.e. how much the initialisation alone changes the supervised baseline.</p>")
    return "".join(out)


def _section_calibration(inp: dict) -> str:
    """ECE / NLL / top-1 / temperature per method and distribution on validation, and a reliability plot."""
    paths = list(inp.get("calibration") or [])
    if not paths:
        return "<p>No calibration measurements in this run.</p>"
    table = calibration_table(paths)
    if table.empty:
        return "<p>The calibration tables are empty.</p>"
    shown = table.assign(**{"top-1 (%)": table["top-1 (%)"].map("{:.1f}".format),
                            "ECE": table["ECE"].map("{:.3f}".format), "NLL": table["NLL"].map("{:.3f}".format),
                            "temperature": table["temperature"].map(lambda t: f"{t:.3g}" if np.isfinite(t) else "–"),
                            "validation videos": table["validation videos"].map("{:g}".format)})
    out = ["<p>Measured on the validation split (labeled videos held out of training), mean over seeds. "
           "ECE: expected calibration error over 10 equal-width bins of the top probability, a fraction "
           "(0 = confidence matches accuracy). NLL: mean negative log-likelihood of the true class. "
           "<code>p_E_calibrated</code> is p_E after temperature scaling (its temperature is shown); "
           "<code>combined</code> is the distribution the method thresholds with theta.</p>",
           _table(shown, floatfmt="{:g}")]
    rel_paths = _reliability_paths(inp)
    methods = list(dict.fromkeys(table["method"]))
    rel_methods = {_run_key(p)[0] for p in rel_paths}
    for method in [m for m in dict.fromkeys(["finepseudo", *methods]) if m in rel_methods]:
        pooled = pooled_reliability(rel_paths, method)
        if len(pooled) and pooled["count"].sum() > 0:  # the first method with reliability bins
            out.append(_reliability_figure(pooled, method))
            break
    return "".join(out)


def _reliability_figure(rel: pd.DataFrame, method: str) -> str:
    if rel.empty:
        return ""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for dist, g in rel.groupby("distribution", sort=False):
        g = g[g["count"] > 0]
        ax.plot(g["confidence"], g["accuracy"], "o-", ms=4, label=f"{dist} ({int(g['count'].sum())} videos)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean confidence in bin (top probability)")
    ax.set_ylabel("accuracy in bin")
    runs = int(rel["runs"].max())
    ax.set_title(f"Reliability on validation: {method}, {runs} run(s) pooled", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return ("<p class='note'>Reliability diagram of " + html.escape(method) + f", bins pooled over its {runs} "
            "run(s) (label fractions and seeds). The validation split is small (a few videos per class), so "
            "each bin holds few videos and the points are noisy; read the trend, not single bins. Points "
            "below the diagonal are over-confident.</p>" + _fig_to_img(fig, "reliability diagram"))


def _section_confusions(runs: list[dict]) -> str:
    import seaborn as sns

    plt = _plt()
    out = []
    for r in runs:
        conf = pd.read_csv(r["confusion"], sep="\t", index_col=0)
        n = len(conf)
        fig, ax = plt.subplots(figsize=(max(4, .45 * n + 2), max(3.5, .4 * n + 1.5)))
        sns.heatmap(conf, annot=n <= 16, fmt="d", cbar=False, cmap="Blues", ax=ax, annot_kws={"fontsize": 7})
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{r['method']}, {r['percent']:g} % labels, seed {r['seed']}: top-1 {r['top1']:.1f} %")
        ax.tick_params(labelsize=7)
        out.append(_fig_to_img(fig, f"confusion {r['method']}"))
    return "".join(out)


def _section_curves(histories: list[tuple[str, str]]) -> str:
    plt = _plt()
    if not histories:
        return ""
    fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
    for name, path in histories:
        h = pd.read_csv(path, sep="\t")
        if "loss" in h:
            axes[0].plot(h["epoch"], h["loss"], label=name)
        if "acc" in h:
            axes[1].plot(h["epoch"], 100 * h["acc"] if h["acc"].max() <= 1 else h["acc"], label=name)
    axes[0].set_title("training loss")
    axes[1].set_title("training accuracy (%)")
    for a in axes:
        a.set_xlabel("epoch")
    axes[1].legend(fontsize=7)
    return _fig_to_img(fig, "training curves")


def _section_samples(inp: dict, n_frames: int = 8) -> str:
    from finepseudo.data.frames import FrameStore

    plt = _plt()
    man = pd.read_csv(inp["manifest"], sep="\t", dtype={"video": str})
    test = man[man["split"] == "test"].sort_values("video")
    wanted = test.groupby("label").head(1).sort_values("label")
    store = FrameStore(inp["shards"], wanted["video"].tolist()) if inp["shards"] else None
    found = {v: store[i].numpy() for i, v in enumerate(store.ids)} if store is not None else {}
    rows = [(r.label_name, found[r.video]) for r in wanted.itertuples() if r.video in found]
    if not rows:
        return "<p>No frames available.</p>"
    fig, axes = plt.subplots(len(rows), n_frames, figsize=(n_frames * .9, len(rows) * .95))
    axes = np.atleast_2d(axes)
    for i, (name, frames) in enumerate(rows):
        idx = np.linspace(0, len(frames) - 1, n_frames).round().astype(int)
        for j, t in enumerate(idx):
            axes[i, j].imshow(frames[t])
            axes[i, j].axis("off")
        axes[i, 0].text(-0.1, 0.5, name, transform=axes[i, 0].transAxes, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(wspace=.03, hspace=.05)
    return ("<p>One test video per class, frames as f_E sees them (uniform over the clip).</p>"
            + _fig_to_img(fig, "sample frames"))


def _section_alignability(paths: list[str]) -> str:
    """Pair verification (AP per measure), phase agreement of DTW paths, phi_A accuracy, one alignment."""
    if not paths:
        return "<p>The alignability branch did not run.</p>"
    runs = sorted({str(Path(p).parent) for p in paths})
    pv, ph, acc = [], [], []
    for run in runs:
        tag = Path(run).name
        p, s = re.match(r"frac([\d.]+)_seed(\d+)", tag).groups()
        t = pd.read_csv(Path(run) / "pair_verification.tsv", sep="\t")
        pv.append(t.assign(run=f"{float(p):g} %, seed {s}"))
        if (Path(run) / "phase_agreement.tsv").is_file():
            ph.append(pd.read_csv(Path(run) / "phase_agreement.tsv", sep="\t").assign(run=f"{float(p):g} %, seed {s}"))
        test = pd.read_csv(Path(run).parents[1] / "splits" / tag / "test.tsv", sep="\t", dtype={"video": str})
        pa = pd.read_csv(Path(run) / "pA_test.tsv", sep="\t", dtype={"video": str}).merge(test, on="video")
        acc.append({"labels %": float(p), "seed": int(s), "phi_A top-1 on test (%)": 100 * (pa["pred"] == pa["label"]).mean(),
                    "test videos": len(pa)})
    pv = pd.concat(pv)
    table = pv.pivot_table(index="measure", columns="f_A", values="average_precision", aggfunc="mean")
    order = [m for m in ["per-timestamp cosine", "temporally pooled cosine", "DTW cost", "learned alignability score"]
             if m in table.index]
    out = ["<h3>Pair verification (the paper's first figure)</h3>",
           "<p>Every pair of test videos is a same-class (positive) or different-class pair; each measure ranks "
           "the pairs and we report average precision (mean over runs). The learned score needs f_S, so it exists "
           "only after AVML. Chance level = share of positive pairs: "
           f"{pv['positives'].iloc[0] / pv['pairs'].iloc[0]:.3f}.</p>",
           _table(table.loc[order].reset_index(), floatfmt="{:.3f}")]
    out.append(_pair_verification_reading(table))
    if ph:
        pht = pd.concat(ph).pivot_table(index="alignment", columns="f_A", values="same_phase_share", aggfunc="mean")
        out += ["<h3>Do alignments match action phases? (SynthDive)</h3>",
                "<p>Share of aligned frame pairs of same-class test videos whose SynthDive phase labels agree "
                "(phases are never used for training).</p>", _table(pht.reset_index(), floatfmt="{:.3f}")]
    out += ["<h3>phi_A: the non-parametric alignability classifier</h3>",
            "<p>Top-1 of argmax p_A on the test split (gallery = labeled videos).</p>",
            _table(pd.DataFrame(acc))]
    example = Path(runs[0]) / "alignment_example.npz"
    if example.is_file():
        out.append(_alignment_figure(example))
    return "".join(out)


def _pair_verification_reading(table: pd.DataFrame) -> str:
    """Does the learned score beat plain DTW? Generated from the table, with the reason either way."""
    def ap(measure, stage):
        return table.loc[measure, stage] if measure in table.index and stage in table.columns else float("nan")

    learned, dtw_av, dtw_g = (ap("learned alignability score", "after AVML"), ap("DTW cost", "after AVML"),
                              ap("DTW cost", "after GITDL"))
    if not np.isfinite(learned):
        return ""
    best_plain = max(dtw_av, dtw_g)
    verdict = (f"The learned score ({learned:.3f}) {'beats' if learned > best_plain else 'does not beat'} plain DTW "
               f"(best {best_plain:.3f}: {dtw_g:.3f} on the GITDL embeddings, {dtw_av:.3f} on the AVML ones).")
    why = ("f_S sees only the distance D (soft-DTW, gamma from config) and is monotone in it, so it ranks pairs "
           "exactly as D does: against DTW on the same f_A it can differ only through soft versus hard DTW. What "
           "AVML can change is f_A itself, which the GITDL and AVML columns compare; ")
    why += ("AVML improved the embedding here." if dtw_av > dtw_g else
            "here AVML made the embedding worse for test pairs than GITDL alone: it trains on the labeled videos "
            "only (a few per class), and the metric it fits there generalises to test videos less well than the "
            "self-supervised one (over-fitting; see its training history).")
    return f"<p><b>Reading.</b> {html.escape(verdict)} {html.escape(why)}</p>"


def _alignment_figure(path: Path) -> str:
    plt = _plt()
    ex = np.load(path)
    if "cost" not in ex.files:
        return ""
    cost, pth = ex["cost"], ex["path"]
    fu, fv = ex["frames_u"], ex["frames_v"]
    t1, t2 = cost.shape
    fig = plt.figure(figsize=(6.5, 6.5))
    ax = fig.add_axes([0.18, 0.02, 0.8, 0.8])
    ax.imshow(cost, cmap="viridis", origin="upper", extent=(-.5, t2 - .5, t1 - .5, -.5))
    ax.plot(pth[:, 1], pth[:, 0], "w.-", lw=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    for j in range(t2):
        a = fig.add_axes([0.18 + 0.8 * j / t2, 0.83, 0.8 / t2, 0.8 / t2])
        a.imshow(fv[j])
        a.axis("off")
    for i in range(t1):
        a = fig.add_axes([0.18 - 0.8 / t1 - .005, 0.82 - 0.8 * (i + 1) / t1, 0.8 / t1, 0.8 / t1])
        a.imshow(fu[i])
        a.axis("off")
    u, v = (str(x) for x in ex["videos"])
    fig.text(0.58, 0.99, f"DTW path between two same-class test videos: {u} (rows) and {v} (columns)",
             ha="center", fontsize=8)
    return ("<h3>One alignment</h3><p>Cost matrix 1 - cos of the final f_A embeddings (dark = similar) with "
            "the hard-DTW path in white; the frames f_A saw are on the axes.</p>" + _fig_to_img(fig, "alignment"))


def _run_key(path: str) -> tuple[str, float, int, int | None]:
    """(method, percent, seed, round) from .../<method>/frac<p>_seed<s>[/round<r>]/<file>."""
    parts = Path(path).parts
    rnd = None
    if parts[-2].startswith("round"):
        rnd = int(parts[-2][5:])
        parts = parts[:-1]
    p, s = re.match(r"frac([\d.]+)_seed(\d+)", parts[-2]).groups()
    return parts[-3], float(p), int(s), rnd


def round_table(infos: list[str], quality: list[str]) -> pd.DataFrame:
    """What every round of every pseudo-labeling run used and how good both branches were: one row per
    (method, labels %, seed, round) from the round's ``pseudo_labels.json`` (combination, T_E, pool weights,
    theta, each branch's validation top-1 and their agreement) and its pseudo-label quality (each branch's
    and the combination's accuracy on the unlabeled pool, coverage and precision of the accepted ones)."""
    rows = []
    for path in infos:
        method, p, s, rnd = _run_key(path)
        info = json.loads(Path(path).read_text())
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
    for path in quality:
        method, p, s, _ = _run_key(path)
        t = pd.read_csv(path, sep="\t").assign(method=method, **{"labels %": p, "seed": s})
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


def _section_rounds(infos: list[str], quality: list[str]) -> str:
    """Per round: both branches' accuracy on validation and on the unlabeled pool, their agreement, the
    combination and its fitted weights, theta, and the pseudo-labels' coverage and precision."""
    table = round_table(infos, quality)
    if table.empty:
        return "<p>No pseudo-labeling round in this run.</p>"
    mean = table.groupby(["method", "labels %", "round"]).mean(numeric_only=True).drop(columns="seed").reset_index()
    return ("<p>Each round starts from the previous round's f_E and f_A (round 1: the warm-up f_E and the AVML "
            "f_A), fits p_E's temperature T_E, the pool weights (alpha on log p_E, beta on log p_A, "
            "<code>pseudo.combine: loglinear</code>) and theta again on the validation split for those encoders, "
            "then labels the whole unlabeled pool. 'val' columns: top-1 (%) on validation; 'pool' columns: top-1 "
            "(%) on the unlabeled pool against the evaluation-only truth (no training rule reads it); coverage and "
            "precision of the accepted pseudo-labels (%). Means over seeds:</p>"
            + _table(mean, floatfmt="{:.2f}")
            + "<details><summary>every seed</summary>" + _table(table, floatfmt="{:.3f}") + "</details>")


def _section_pseudo(quality: list[str], round_metrics: list[str], final: list[dict]) -> str:
    """Accuracy per round and pseudo-label coverage / precision per round, per method."""
    plt = _plt()
    if not quality:
        return "<p>No pseudo-labeling method in this run's config.</p>"
    q = []
    for path in quality:
        method, p, s, _ = _run_key(path)
        q.append(pd.read_csv(path, sep="\t").assign(method=method, percent=p, seed=s))
    q = pd.concat(q)
    acc = []
    for path in round_metrics:
        method, p, s, rnd = _run_key(path)
        acc.append({"method": method, "percent": p, "seed": s, "round": rnd,
                    "top1": json.loads(Path(path).read_text())["top1"]})
    for r in final:
        if r["method"] == "supervised":
            for m in set(q["method"]):
                acc.append({"method": m, "percent": r["percent"], "seed": r["seed"], "round": 0, "top1": r["top1"]})
    acc = pd.DataFrame(acc)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    for (m, p), g in acc.groupby(["method", "percent"]):
        g = g.groupby("round")["top1"].mean()
        axes[0].plot(g.index, g.values, "o-", label=f"{m} {p:g}%")
    for (m, p), g in q.groupby(["method", "percent"]):
        g = g.groupby("round")[["coverage", "precision"]].mean()
        axes[1].plot(g.index, 100 * g["coverage"], "o-", label=f"{m} {p:g}%")
        axes[2].plot(g.index, 100 * g["precision"], "o-", label=f"{m} {p:g}%")
    for ax, title in zip(axes, ["f_E test top-1 (%) after each round (0 = warm-up)",
                                "pseudo-label coverage (% of pool accepted)", "pseudo-label precision (%)"]):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("round")
    axes[0].legend(fontsize=7)
    cols = ["method", "percent", "seed", "round", "pool", "accepted", "coverage", "precision", "fe_fa_agreement"]
    extra = [c for c in ("novel_in_pool", "novel_rejection_precision", "novel_rejection_recall") if c in q]
    return ("<p>Pseudo-labels are recomputed for the whole unlabeled pool every round from the frozen encoders "
            "of the round before; quality is measured against the evaluation-only truth, which no training "
            "rule reads.</p>" + _fig_to_img(fig, "rounds") + _table(q[cols + extra], floatfmt="{:.3f}")
            + "<details><summary>per-class precision (by pseudo-label)</summary>"
            + _table(q[["method", "percent", "seed", "round", "per_class_precision"]]) + "</details>")


#: The paper's Diving48 ablation (top-1 %, Table "ablations", 10 % / 20 % labels): another dataset.
PAPER_DIVING48 = {
    "pl": (33.4, 54.0), "fa_only": (32.8, 51.1), "finepseudo_lat_only": (33.7, 55.7),
    "finepseudo_lscore_only": (36.1, 59.3), "finepseudo_no_gitdl": (35.2, 58.6), "finepseudo": (37.6, 60.4),
}


def _section_methods(metrics: list[dict], quality: list[str], vs_trivial: pd.DataFrame | None = None) -> str:
    """Methods x label fraction beside the paper's Diving48 ablation, and a reading of the numbers: with
    ``vs_trivial`` (trivial_comparisons), for every method whether it beats the best trivial baseline."""
    df = pd.DataFrame(metrics)
    if df.empty:
        return ""
    ours = df.groupby(["method", "percent"])["top1"].mean().unstack()
    ours.columns = [f"ours {p:g} %" for p in ours.columns]
    paper = pd.DataFrame(PAPER_DIVING48, index=["paper Diving48 10 %", "paper Diving48 20 %"]).T
    table = ours.join(paper, how="left")
    out = ["<p>Top-1 (%) per method on this run's dataset (mean over seeds) beside the numbers the paper "
           "reports for <b>Diving48</b>, another dataset: compare the ordering of the methods, not the values.</p>",
           _table(table.reset_index().rename(columns={"index": "method"}))]
    lines = []
    for p, g in df.groupby("percent"):
        m = g.groupby("method")["top1"].mean()
        if "finepseudo" in m and "pl" in m:
            d = m["finepseudo"] - m["pl"]
            rounds = g.groupby("method")["round"].apply(lambda r: ", ".join(str(int(x)) for x in r.dropna()))
            lines.append(f"At {p:g} % labels FinePseudo reaches {m['finepseudo']:.1f} % (round {rounds['finepseudo']}, "
                         f"PL round {rounds['pl']}, chosen on validation), "
                         f"{'above' if d > 0 else 'below' if d < 0 else 'level with'} PL ({m['pl']:.1f} %) by "
                         f"{abs(d):.1f} points" + (f" and {m['finepseudo'] - m['supervised']:+.1f} points against "
                                                   f"supervised ({m['supervised']:.1f} %)" if "supervised" in m else "")
                         + ".")
            n = g["n"].dropna()
            if len(n):
                n, acc = float(n.iloc[0]), m["finepseudo"] / 100
                se = 100 * np.sqrt(max(acc * (1 - acc), 1e-9) / n)
                lines.append(f"With {g['seed'].nunique()} seed(s) and {n:.0f} test videos one video is {100 / n:.1f} "
                             f"points, and the binomial standard error of one such top-1 is about {se:.1f} points: "
                             "differences below about twice that are within noise; more seeds (the benchmark "
                             "preset) narrow it.")
    if vs_trivial is not None:
        lines += [trivial_reading(r) for _, r in vs_trivial.iterrows()]
    q = []
    for path in quality:
        method, p, s, _ = _run_key(path)
        t = pd.read_csv(path, sep="\t")
        q.append(t.iloc[-1].to_dict() | {"method": method, "percent": p})
    if q:
        q = pd.DataFrame(q).groupby(["method", "percent"])[["coverage", "precision"]].mean()
        for (method, p), r in q.iterrows():
            lines.append(f"{method} at {p:g} %: the last round accepted {100 * r['coverage']:.0f} % of the pool "
                         f"at a pseudo-label precision of {100 * r['precision']:.0f} %.")
    if lines:
        out.append("<h3>Reading (generated from this run's numbers)</h3><ul>"
                   + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
    return "".join(out)


#: Marks a hyper-parameter that hit the edge of its grid; its table cell is shown in red.
EDGE_MARK = "\u26a0"


def _flag_cells(table_html: str) -> str:
    """Give every table cell that starts with EDGE_MARK the warning style."""
    return table_html.replace(f"<td>{EDGE_MARK}", f"<td class='bad'>{EDGE_MARK}")


def _fmt_value(v) -> str:
    """A chosen hyper-parameter: a number, or a tuple of numbers (the log-linear pool's weights)."""
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(f"{x:g}" for x in v) + ")"
    return f"{v:g}"


def _section_hparams(paths: list[str]) -> str:
    """theta, tau, delta and the round of every pseudo-labeling run, with what each was chosen on."""
    rows, cands, picks, edges = [], [], [], []
    for path in paths:
        method, p, s, _ = _run_key(path)
        key = {"method": method, "percent": p, "seed": s}
        if path.endswith("hparams.json"):
            rec = json.loads(Path(path).read_text())
            row = {**key, "validation videos": rec["n_val"],
                   **{k: f"{_fmt_value(v)} ({rec['chosen_on'].get(k, '?')})" if v is not None else "not used"
                      for k, v in rec["values"].items()}}
            if "at_grid_edge" in rec:
                hit = [k for k, v in (rec["at_grid_edge"] or {}).items() if v]  # theta, tau (and any other)
                row["grid edge"] = f"{EDGE_MARK} {' and '.join(hit)} at the edge of the grid" if hit else "no"
                if hit:
                    edges.append(f"{method}, {p:g} %, seed {s}: {' and '.join(hit)}")
            rows.append(row)
        elif path.endswith("hparams_candidates.tsv"):
            t = pd.read_csv(path, sep="\t")
            if len(t):
                cands.append(t.assign(**key))
        else:
            t = pd.read_csv(path, sep="\t")
            picks.append({**key, "round": int(t.loc[t["chosen"], "round"].iloc[0]),
                          "validation top-1 by round": ", ".join(f"{v:.1f}" for v in t["val_top1"])})
    if not rows:
        return "<p>No pseudo-labeling method in this run's config.</p>"
    out = ["<p>Chosen on the validation split, labeled videos held out of every model's training "
           "(<code>hparams.val_per_class</code> per class, part of the label budget); the test split is never "
           "read to choose. theta, tau and delta come from the round-0 encoders' validation predictions, the "
           "round from each round's f_E on validation; the method's test accuracy is that round's.</p>",
           _flag_cells(_table(pd.DataFrame(rows)))]
    if edges:
        out.append("<p class='bad'>" + EDGE_MARK + " A value chosen on validation is the first or last of its grid "
                   "(hparams.theta_grid, hparams.tau_grid, ...) in: " + html.escape("; ".join(edges))
                   + ". The best value may lie outside the grid (for theta, the last value also means no "
                   "threshold reached the target precision); widen the grid to check.</p>")
    if picks:
        out.append("<h3>Round chosen</h3>" + _table(pd.DataFrame(picks)))
    if cands:
        out.append("<details><summary>every candidate on validation</summary>"
                   + _table(pd.concat(cands, ignore_index=True), floatfmt="{:.3f}") + "</details>")
    return "".join(out)


def _section_benchmarks(bench_dir: str, files: list[str] | None = None) -> str:
    b = benchmark_table(bench_dir, files)
    if b.empty:
        return "<p>No benchmark files yet.</p>"
    per_rule = b.groupby("rule").agg(jobs=("job", "count"), total_s=("seconds", "sum"),
                                     max_s=("seconds", "max"), max_rss_mb=("max_rss_mb", "max")).reset_index()
    return ("<p>From Snakemake's <code>benchmark:</code> files (wall seconds and peak resident memory per job). "
            f"Sum over jobs: {b['seconds'].sum():.0f} s.</p>" + _table(per_rule) + "<details><summary>every job"
            "</summary>" + _table(b) + "</details>")


def _section_exports(exports: list[str], predict: list[str]) -> str:
    """The exported models (one folder per method and split, finepseudo.export) and the prediction run's page."""
    rows = []
    for folder in exports:
        card = json.loads((Path(folder) / "model.json").read_text())
        ev, sp = card["evaluation"], card["split"]
        t_e, rnd = card["calibration"]["temperature"], card["model"]["selected_round"]
        rows.append({"method": card["method"], "labels %": f"{sp['label_percent']:g}", "seed": sp["seed"],
                     "round": "–" if rnd is None else rnd, "test top-1": f"{ev['top1']:.1f}",
                     "95 % interval (test videos)": _fmt_ci(*ev["top1_ci95"]),
                     "T_E": "–" if t_e is None else f"{t_e:.3g}", "phi_A": "yes" if card["alignability"] else "no",
                     "folder": folder})
    if not rows:
        return "<p>No exported model.</p>"
    out = ("<p>The f_E each run is scored with (the round chosen on validation for pseudo-labeling methods), exported "
           "with its model card (<code>model.json</code>, <code>README.md</code>) and safetensors weights; phi_A (f_A, "
           "f_S and the labeled gallery) beside it where the method uses it. T_E: p_E's temperature, fitted on "
           "validation for this f_E. Predict new videos with <code>finepseudo predict FOLDER VIDEOS... --out "
           "predictions.tsv</code> or the config's <code>predict:</code> section (README, \"Use a trained model\").</p>"
           + _table(pd.DataFrame(rows)))
    for table in (p for p in predict if p.endswith("predictions.tsv")):
        pred = pd.read_csv(table, sep="\t", dtype={"video": str}, keep_default_na=False)
        page = Path(table).with_name("page.html")
        counts = ", ".join(f"{n} {k}" for k, n in pred["status"].value_counts().sort_index().items())
        href = html.escape(str(page.relative_to("results")) if page.parts[0] == "results" else str(page))
        out += (f"<p>Prediction run <b>{html.escape(page.parent.name)}</b>: {len(pred)} videos ({counts}); table "
                f"<code>{html.escape(table)}</code>, page with a frame strip and the top-3 per video: "
                f"<a href=\"{href}\">{html.escape(str(page))}</a>.</p>")
    return out


def _section_software(env: dict[str, str], config: dict) -> str:
    """Package versions, then the CPU and kernel facts (:data:`finepseudo.kernels.FACT_KEYS`) that ``env`` holds."""
    from finepseudo.kernels import FACT_KEYS

    packages = sorted((k, v) for k, v in env.items() if k not in FACT_KEYS)
    out = _table(pd.DataFrame(packages, columns=["package", "version"]))
    cpu = [(k, env[k]) for k in FACT_KEYS if k in env]
    if cpu:
        out += ("<h3>CPU and kernels</h3><p>The machine and process that rendered this report. Every job pins the "
                f"CPU kernels of torch and numpy as the config key <code>cpu_kernels</code> says "
                f"(<b>{html.escape(str(config.get('cpu_kernels', '?')))}</b>) before it imports them, and every "
                "trained model's checkpoint records these facts for the machine that trained it "
                "(<code>metadata[\"env\"]</code>). With <code>avx2</code> the numbers do not depend on whether a "
                "machine has AVX-512; a different torch or numpy build, or a GPU, is not covered (README.md, "
                "\"How far the numbers reproduce\").</p>"
                + _table(pd.DataFrame(cpu, columns=["fact", "value"])))
    return out


def build_report(inp: dict, config: dict, env: dict[str, str]) -> str:
    """Render the report. ``inp`` keys: manifest, classes, metrics (list of json paths), frame_status,
    shards, benchmarks (folder); optional synthdive_summary, alignability, pseudo_quality, round_metrics,
    hparams, predictions (test predictions.tsv per metrics entry), calibration and reliability (validation
    calibration.tsv / reliability.tsv per pseudo-labeling run), baselines and baseline_predictions (each trivial
    baseline's metrics.json and predictions.tsv per label fraction and seed), exports (export folders) and predict (a
    prediction run's predictions.tsv and page.html). Returns HTML text."""
    metrics, runs, histories = [], [], []
    config = dict(config)
    config["_num_classes"] = len(pd.read_csv(inp["classes"], sep="\t"))
    for path in inp["metrics"]:
        m = json.loads(Path(path).read_text())
        parts = Path(path).parts  # .../eval/<method>/frac<p>_seed<s>/metrics.json
        p, s = re.match(r"frac([\d.]+)_seed(\d+)", parts[-2]).groups()
        row = {"method": parts[-3], "percent": float(p), "seed": int(s), "top1": m["top1"],
               "mean_class_accuracy": m["mean_class_accuracy"], "round": m.get("selected_round"), "n": m.get("n")}
        metrics.append(row)
        runs.append({**row, "confusion": str(Path(path).with_name("confusion.tsv"))})
        hist = Path(m.get("model", "")).with_name("fe.history.tsv")
        if hist.is_file() and (parts[-3], str(hist)) not in histories:
            histories.append((f"{parts[-3]} {p}%", str(hist)))
    baselines = []
    for path in inp.get("baselines", []):  # .../baselines/<name>/frac<p>_seed<s>/metrics.json
        m = json.loads(Path(path).read_text())
        name, p, s, _ = _run_key(path)
        baselines.append({"method": name, "percent": p, "seed": s, "top1": m["top1"],
                          "mean_class_accuracy": m["mean_class_accuracy"], "n": m.get("n")})
    vs_trivial = (trivial_comparisons(inp.get("predictions", []), inp["baseline_predictions"])
                  if inp.get("baseline_predictions") else None)
    cfg_public = {k: v for k, v in config.items() if not k.startswith("_")}
    sections = [
        ("dataset", "Dataset", _section_dataset(inp, config) + _section_failed(inp)),
        ("accuracy", "Accuracy", _section_accuracy(metrics, config, baselines)),
        ("methods", "Methods and the paper's ablation",
         _section_methods(metrics, inp.get("pseudo_quality", []), vs_trivial)),
        ("paired", "Paired comparisons", _section_paired(inp.get("predictions", []), vs_trivial=vs_trivial)),
        ("calibration", "Calibration on validation", _section_calibration(inp)),
        ("pseudo", "Pseudo-labeling rounds", _section_pseudo(inp.get("pseudo_quality", []), inp.get("round_metrics", []),
                                                             metrics)),
        ("rounds", "Collaboration per round", _section_rounds(inp.get("round_info", []), inp.get("pseudo_quality", []))),
        ("hparams", "Hyper-parameters chosen on validation", _section_hparams(inp.get("hparams", []))),
        ("alignability", "Alignability branch", _section_alignability(inp.get("alignability", []))),
        ("confusion", "Confusion matrices", _section_confusions(runs)),
        ("training", "Training curves", _section_curves(histories)),
        ("samples", "Sample frames per class", _section_samples(inp)),
        ("exports", "Exported models", _section_exports(inp.get("exports", []), inp.get("predict", []))),
        ("runtime", "Run time and memory per rule", _section_benchmarks(inp["benchmarks"], inp.get("benchmark_files"))),
        ("config", "Config used", "<pre>" + html.escape(yaml.safe_dump(cfg_public, sort_keys=False)) + "</pre>"),
        ("software", "Software", _section_software(env, config)),
    ]
    nav = "".join(f'<a href="#{sid}">{title}</a>' for sid, title, _ in sections)
    body = "".join(f'<h2 id="{sid}">{title}</h2>{content}' for sid, title, content in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>FinePseudo report</title>"
            f"<style>{CSS}</style></head><body><h1>FinePseudo benchmark report</h1>"
            f"<p class='note'>Dataset <b>{html.escape(config['dataset']['name'])}</b>, generated "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}.</p><nav>{nav}</nav>{body}</body></html>")
