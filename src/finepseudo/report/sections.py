"""The report's sections: each function returns the HTML of one section (html.build_report puts them in
order), from the run's files and the tables (finepseudo.report.tables) and figures (finepseudo.report.figures)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from finepseudo.registry import TRIVIAL_BASELINES
from finepseudo.report import figures
from finepseudo.report.inputs import Alignability, BenchmarkFile, Prediction, RunFile
from finepseudo.report.tables import (COMPARISONS, TRIVIAL_MARK, accuracy_ci_table, accuracy_table, benchmark_table,
                                      calibration_table, fmt_ci, paired_comparisons, pooled_reliability, round_table,
                                      trivial_reading)

__all__ = ["EDGE_MARK", "PAPER_DIVING48", "section_accuracy", "section_alignability", "section_benchmarks",
           "section_calibration", "section_confusions", "section_curves", "section_dataset", "section_exports",
           "section_failed", "section_hparams", "section_methods", "section_paired", "section_pseudo",
           "section_rounds", "section_samples", "section_software", "table_html"]


def table_html(df: pd.DataFrame, index: bool = False, floatfmt: str = "{:.1f}") -> str:
    """A DataFrame as an HTML table (missing values as an en dash, floats with ``floatfmt``)."""
    return df.to_html(index=index, border=0, na_rep="–", float_format=lambda x: floatfmt.format(x), escape=True)


def section_dataset(manifest: str, synthdive_summary: str | None) -> str:
    """Videos per class and split, their clip lengths and, for SynthDive, its generation summary."""
    man = pd.read_csv(manifest, sep="\t", dtype={"video": str})
    counts = man.groupby(["label_name", "split"]).size().unstack(fill_value=0)
    counts.index.name = "class"
    parts = [f"<p>{len(man)} videos: {', '.join(f'{k} {v}' for k, v in man['split'].value_counts().items())}; "
             f"{man['label'].nunique()} classes.</p>", table_html(counts.reset_index())]
    parts.append(figures.clip_lengths(man))
    if synthdive_summary is not None:
        summ = json.loads(Path(synthdive_summary).read_text())
        keep = {k: v for k, v in summ.items() if not isinstance(v, (dict, list))}
        parts.append("<p>SynthDive generation: " + html.escape(json.dumps(keep)) + "</p>")
    return "".join(parts)


def section_failed(shard_indexes: list[str]) -> str:
    """Videos that could not be decoded (left out), and videos kept with a warning (an annotated frame range
    clamped to the last frame, ffmpeg decoding errors), from the shards' status tables."""
    failed, warned = [], []
    for p in shard_indexes:
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
               "(frames.on_error: skip):</p>" + table_html(failed[["video", "reason"]]))
    if not warned.empty:
        out += (f"<p class='bad'>\u26a0 {len(warned)} video(s) were kept with a warning (their frames may not be "
                "what the annotation describes; check the file and its annotation):</p>"
                + table_html(warned[["video", "warning"]]))
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


def section_accuracy(metrics: list[dict], config: dict, baselines: list[dict] | None = None) -> str:
    df = pd.DataFrame(metrics)
    out = ["<p>Top-1 accuracy (%) on the test split, f_E averaged over "
           f"{config['eval']['clips_per_video']} clips per video; mean ± std over seeds where there are several. "
           "<code>supervised_full</code> uses 100 % of the train labels (the upper bound).</p>",
           table_html(accuracy_table(metrics, baselines).reset_index())]
    if baselines:
        out.append(_trivial_note(baselines, config))
    ci = accuracy_ci_table(metrics, baselines=baselines)
    if len(ci):
        shown = ci.assign(**{"mean top-1 (%)": ci["mean top-1 (%)"].map("{:.1f}".format),
                             "95 % CI": [fmt_ci(lo, hi) for lo, hi in zip(ci["ci_lo"], ci["ci_hi"])]})
        out += ["<h3>Mean top-1 and 95 % confidence interval over split seeds</h3>",
                "<p>Student-t interval of the mean over the split seeds (each seed draws its own labeled subset "
                "and trains its own models), so it shows how much a result moves with the labeled videos and "
                "the training noise. With two or three seeds it is wide (t has 1 or 2 degrees of freedom); with "
                "one seed there is none. For whether one method beats another on the same videos, see the "
                "paired comparisons.</p>",
                table_html(shown[["method", "labels %", "seeds", "mean top-1 (%)", "95 % CI", "per-seed top-1"]],
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
        out.append(figures.accuracy_bars(df, config.get("_num_classes", 1)))
    return "".join(out)


def section_paired(predictions: list[RunFile], n_boot: int = 2000, seed: int = 0,
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
        "95 % CI": [fmt_ci(lo, hi) for lo, hi in zip(done["ci_lo"], done["ci_hi"])],
        "verdict": [verdict[bool(b)] for b in done["beats"]]})
    out += ("<p>The best trivial baseline of each label fraction is the one with the highest mean test top-1 over "
            "the seeds (chosen on the test split, which favours the baseline: beating it means beating every "
            "trivial baseline). Difference: method minus baseline on the same seeds and test videos, two-level "
            f"paired bootstrap ({n_boot} replicates) as above. A method <b>beats</b> it only when the whole 95 % "
            "interval is above 0.</p>" + table_html(shown, floatfmt="{:g}"))
    missing = table[table["beats"].isna()]
    if len(missing):
        out += "<p class='note'>" + html.escape(" ".join(trivial_reading(r) for _, r in missing.iterrows())) + "</p>"
    return out


def _paired_methods(predictions: list[RunFile], n_boot: int, seed: int) -> str:
    table = paired_comparisons(predictions, n_boot=n_boot, seed=seed)
    if table.empty:
        return ("<p>None of the comparisons applies: this run lacks at least one method of each pair "
                f"({', '.join(f'{a} vs {b}' for a, b in COMPARISONS)}).</p>")
    shown = table.assign(**{"difference (points)": table["difference (points)"].map("{:+.1f}".format),
                            "95 % CI": [fmt_ci(lo, hi) for lo, hi in zip(table["ci_lo"], table["ci_hi"])]})
    out = ["<p>Difference of test top-1 (percentage points, first method minus second) on the same test "
           "videos, averaged over the split seeds both methods ran. The interval is a two-level paired bootstrap "
           f"({n_boot} replicates, stats.paired_bootstrap): draw the seeds with replacement, then within each "
           "drawn seed the test videos with replacement, the same videos for both methods. It therefore covers "
           "both the choice of labeled subset and the finite test set; with a single seed it covers the test "
           "set only. A difference is read as real only when its 95 % interval excludes 0 (otherwise "
           "<i>within noise</i>); with about ten comparisons per label fraction, one interval in twenty "
           "excludes 0 by chance alone.</p>",
           table_html(shown[["comparison", "labels %", "seeds", "difference (points)", "95 % CI", "reading"]],
                  floatfmt="{:g}")]
    if {"supervised", "supervised_scratch"} <= set(table["a"]) | set(table["b"]):
        out.append("<p class='note'><code>supervised vs supervised_scratch</code>: the same supervised "
                   "training from the self-supervised f_E initialisation (pretrain_fe, TCLR-style) versus a "
                   "random one, i.e. how much the initialisation alone changes the supervised baseline.</p>")
    return "".join(out)


def section_calibration(calibration: list[RunFile], reliability: list[RunFile]) -> str:
    """ECE / NLL / top-1 / temperature per method and distribution on validation, and a reliability plot."""
    if not calibration:
        return "<p>No calibration measurements in this run.</p>"
    table = calibration_table(calibration)
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
           table_html(shown, floatfmt="{:g}")]
    methods = list(dict.fromkeys(table["method"]))
    rel_methods = {f.method for f in reliability}
    for method in [m for m in dict.fromkeys(["finepseudo", *methods]) if m in rel_methods]:
        pooled = pooled_reliability(reliability, method)
        if len(pooled) and pooled["count"].sum() > 0:  # the first method with reliability bins
            out.append(figures.reliability_figure(pooled, method))
            break
    return "".join(out)


def section_confusions(runs: list[dict]) -> str:
    """The test confusion matrix of every run (rows of metrics with their ``confusion`` file)."""
    out = []
    for r in runs:
        conf = pd.read_csv(r["confusion"], sep="\t", index_col=0)
        title = f"{r['method']}, {r['percent']:g} % labels, seed {r['seed']}: top-1 {r['top1']:.1f} %"
        out.append(figures.confusion_figure(conf, r["method"], title))
    return "".join(out)


def section_curves(histories: list[tuple[str, str]]) -> str:
    """Training curves of every (name, fe.history.tsv)."""
    if not histories:
        return ""
    return figures.training_curves([(name, pd.read_csv(path, sep="\t")) for name, path in histories])


def section_samples(manifest: str, shards: list[str], n_frames: int = 8) -> str:
    """Frames of one test video per class, read from the frame shards."""
    from finepseudo.data.frames import FrameStore

    man = pd.read_csv(manifest, sep="\t", dtype={"video": str})
    test = man[man["split"] == "test"].sort_values("video")
    wanted = test.groupby("label").head(1).sort_values("label")
    store = FrameStore(list(shards), wanted["video"].tolist()) if shards else None
    found = {v: store[i].numpy() for i, v in enumerate(store.ids)} if store is not None else {}
    rows = [(r.label_name, found[r.video]) for r in wanted.itertuples() if r.video in found]
    if not rows:
        return "<p>No frames available.</p>"
    return ("<p>One test video per class, frames as f_E sees them (uniform over the clip).</p>"
            + figures.sample_frames(rows, n_frames))


def section_alignability(runs: list[Alignability]) -> str:
    """Pair verification (AP per measure), phase agreement of DTW paths, phi_A accuracy, one alignment (the
    first run's)."""
    if not runs:
        return "<p>The alignability branch did not run.</p>"
    pv, ph, acc = [], [], []
    for run in runs:
        p, s = run.frac, run.seed
        t = pd.read_csv(run.pair_verification, sep="\t")
        pv.append(t.assign(run=f"{float(p):g} %, seed {s}"))
        ph.append(pd.read_csv(run.phase_agreement, sep="\t").assign(run=f"{float(p):g} %, seed {s}"))
        test = pd.read_csv(run.test_split, sep="\t", dtype={"video": str})
        pa = pd.read_csv(run.pa_test, sep="\t", dtype={"video": str}).merge(test, on="video")
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
           table_html(table.loc[order].reset_index(), floatfmt="{:.3f}")]
    out.append(_pair_verification_reading(table))
    if ph:
        pht = pd.concat(ph).pivot_table(index="alignment", columns="f_A", values="same_phase_share", aggfunc="mean")
        out += ["<h3>Do alignments match action phases? (SynthDive)</h3>",
                "<p>Share of aligned frame pairs of same-class test videos whose SynthDive phase labels agree "
                "(phases are never used for training).</p>", table_html(pht.reset_index(), floatfmt="{:.3f}")]
    out += ["<h3>phi_A: the non-parametric alignability classifier</h3>",
            "<p>Top-1 of argmax p_A on the test split (gallery = labeled videos).</p>",
            table_html(pd.DataFrame(acc))]
    out.append(figures.alignment_figure(runs[0].alignment_example))
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


def section_rounds(infos: list[RunFile], quality: list[RunFile]) -> str:
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
            + table_html(mean, floatfmt="{:.2f}")
            + "<details><summary>every seed</summary>" + table_html(table, floatfmt="{:.3f}") + "</details>")


def section_pseudo(quality: list[RunFile], round_metrics: list[RunFile], final: list[dict]) -> str:
    """Accuracy per round and pseudo-label coverage / precision per round, per method."""
    if not quality:
        return "<p>No pseudo-labeling method in this run's config.</p>"
    q = []
    for f in quality:
        q.append(pd.read_csv(f.path, sep="\t").assign(method=f.method, percent=f.percent, seed=f.seed))
    q = pd.concat(q)
    acc = []
    for f in round_metrics:
        acc.append({"method": f.method, "percent": f.percent, "seed": f.seed, "round": f.round,
                    "top1": json.loads(Path(f.path).read_text())["top1"]})
    for r in final:
        if r["method"] == "supervised":
            for m in set(q["method"]):
                acc.append({"method": m, "percent": r["percent"], "seed": r["seed"], "round": 0, "top1": r["top1"]})
    acc = pd.DataFrame(acc)
    fig = figures.rounds_figure(acc, q)
    cols = ["method", "percent", "seed", "round", "pool", "accepted", "coverage", "precision", "fe_fa_agreement"]
    extra = [c for c in ("novel_in_pool", "novel_rejection_precision", "novel_rejection_recall") if c in q]
    return ("<p>Pseudo-labels are recomputed for the whole unlabeled pool every round from the frozen encoders "
            "of the round before; quality is measured against the evaluation-only truth, which no training "
            "rule reads.</p>" + fig + table_html(q[cols + extra], floatfmt="{:.3f}")
            + "<details><summary>per-class precision (by pseudo-label)</summary>"
            + table_html(q[["method", "percent", "seed", "round", "per_class_precision"]]) + "</details>")


PAPER_DIVING48 = {
    "pl": (33.4, 54.0), "fa_only": (32.8, 51.1), "finepseudo_lat_only": (33.7, 55.7),
    "finepseudo_lscore_only": (36.1, 59.3), "finepseudo_no_gitdl": (35.2, 58.6), "finepseudo": (37.6, 60.4),
}


def section_methods(metrics: list[dict], quality: list[RunFile], vs_trivial: pd.DataFrame | None = None) -> str:
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
           table_html(table.reset_index().rename(columns={"index": "method"}))]
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
    for f in quality:
        t = pd.read_csv(f.path, sep="\t")
        q.append(t.iloc[-1].to_dict() | {"method": f.method, "percent": f.percent})
    if q:
        q = pd.DataFrame(q).groupby(["method", "percent"])[["coverage", "precision"]].mean()
        for (method, p), r in q.iterrows():
            lines.append(f"{method} at {p:g} %: the last round accepted {100 * r['coverage']:.0f} % of the pool "
                         f"at a pseudo-label precision of {100 * r['precision']:.0f} %.")
    if lines:
        out.append("<h3>Reading (generated from this run's numbers)</h3><ul>"
                   + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
    return "".join(out)


EDGE_MARK = "\u26a0"


def _flag_cells(text: str) -> str:
    """Give every table cell that starts with EDGE_MARK the warning style."""
    return text.replace(f"<td>{EDGE_MARK}", f"<td class='bad'>{EDGE_MARK}")


def _fmt_value(v) -> str:
    """A chosen hyper-parameter: a number, or a tuple of numbers (the log-linear pool's weights)."""
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(f"{x:g}" for x in v) + ")"
    return f"{v:g}"


def _key(f: RunFile) -> dict:
    return {"method": f.method, "percent": f.percent, "seed": f.seed}


def section_hparams(chosen: list[RunFile], candidates: list[RunFile] = (), selections: list[RunFile] = ()) -> str:
    """theta, tau, delta and the round of every pseudo-labeling run, with what each was chosen on: its
    hparams.json (``chosen``), hparams_candidates.tsv (``candidates``) and round_selection.tsv (``selections``)."""
    rows, cands, picks, edges = [], [], [], []
    for f in chosen:
        rec = json.loads(Path(f.path).read_text())
        row = {**_key(f), "validation videos": rec["n_val"],
               **{k: f"{_fmt_value(v)} ({rec['chosen_on'].get(k, '?')})" if v is not None else "not used"
                  for k, v in rec["values"].items()}}
        if "at_grid_edge" in rec:
            hit = [k for k, v in (rec["at_grid_edge"] or {}).items() if v]  # theta, tau (and any other)
            row["grid edge"] = f"{EDGE_MARK} {' and '.join(hit)} at the edge of the grid" if hit else "no"
            if hit:
                edges.append(f"{f.method}, {f.percent:g} %, seed {f.seed}: {' and '.join(hit)}")
        rows.append(row)
    for f in candidates:
        t = pd.read_csv(f.path, sep="\t")
        if len(t):
            cands.append(t.assign(**_key(f)))
    for f in selections:
        t = pd.read_csv(f.path, sep="\t")
        picks.append({**_key(f), "round": int(t.loc[t["chosen"], "round"].iloc[0]),
                      "validation top-1 by round": ", ".join(f"{v:.1f}" for v in t["val_top1"])})
    if not rows:
        return "<p>No pseudo-labeling method in this run's config.</p>"
    out = ["<p>Chosen on the validation split, labeled videos held out of every model's training "
           "(<code>hparams.val_per_class</code> per class, part of the label budget); the test split is never "
           "read to choose. theta, tau and delta come from the round-0 encoders' validation predictions, the "
           "round from each round's f_E on validation; the method's test accuracy is that round's.</p>",
           _flag_cells(table_html(pd.DataFrame(rows)))]
    if edges:
        out.append("<p class='bad'>" + EDGE_MARK + " A value chosen on validation is the first or last of its grid "
                   "(hparams.theta_grid, hparams.tau_grid, ...) in: " + html.escape("; ".join(edges))
                   + ". The best value may lie outside the grid (for theta, the last value also means no "
                   "threshold reached the target precision); widen the grid to check.</p>")
    if picks:
        out.append("<h3>Round chosen</h3>" + table_html(pd.DataFrame(picks)))
    if cands:
        out.append("<details><summary>every candidate on validation</summary>"
                   + table_html(pd.concat(cands, ignore_index=True), floatfmt="{:.3f}") + "</details>")
    return "".join(out)


def section_benchmarks(files: list[BenchmarkFile]) -> str:
    """Wall time and peak memory per rule, and per job, from the jobs' benchmark files."""
    b = benchmark_table(files)
    if b.empty:
        return "<p>No benchmark files yet.</p>"
    per_rule = b.groupby("rule").agg(jobs=("job", "count"), total_s=("seconds", "sum"),
                                     max_s=("seconds", "max"), max_rss_mb=("max_rss_mb", "max")).reset_index()
    return ("<p>From Snakemake's <code>benchmark:</code> files (wall seconds and peak resident memory per job). "
            f"Sum over jobs: {b['seconds'].sum():.0f} s.</p>" + table_html(per_rule) + "<details><summary>every job"
            "</summary>" + table_html(b) + "</details>")


def section_exports(exports: list[str], predict: Prediction | None) -> str:
    """The exported models (one folder per method and split, finepseudo.export) and the prediction run's page."""
    rows = []
    for folder in exports:
        card = json.loads((Path(folder) / "model.json").read_text())
        ev, sp = card["evaluation"], card["split"]
        t_e, rnd = card["calibration"]["temperature"], card["model"]["selected_round"]
        rows.append({"method": card["method"], "labels %": f"{sp['label_percent']:g}", "seed": sp["seed"],
                     "round": "–" if rnd is None else rnd, "test top-1": f"{ev['top1']:.1f}",
                     "95 % interval (test videos)": fmt_ci(*ev["top1_ci95"]),
                     "T_E": "–" if t_e is None else f"{t_e:.3g}", "phi_A": "yes" if card["alignability"] else "no",
                     "folder": folder})
    if not rows:
        return "<p>No exported model.</p>"
    out = ("<p>The f_E each run is scored with (the round chosen on validation for pseudo-labeling methods), exported "
           "with its model card (<code>model.json</code>, <code>README.md</code>) and safetensors weights; phi_A (f_A, "
           "f_S and the labeled gallery) beside it where the method uses it. T_E: p_E's temperature, fitted on "
           "validation for this f_E. Predict new videos with <code>finepseudo predict FOLDER VIDEOS... --out "
           "predictions.tsv</code> or the config's <code>predict:</code> section (README, \"Use a trained model\").</p>"
           + table_html(pd.DataFrame(rows)))
    if predict is not None:
        table = predict.table
        pred = pd.read_csv(table, sep="\t", dtype={"video": str}, keep_default_na=False)
        page = Path(predict.page)
        counts = ", ".join(f"{n} {k}" for k, n in pred["status"].value_counts().sort_index().items())
        href = html.escape(str(page.relative_to("results")) if page.parts[0] == "results" else str(page))
        out += (f"<p>Prediction run <b>{html.escape(predict.name)}</b>: {len(pred)} videos ({counts}); table "
                f"<code>{html.escape(table)}</code>, page with a frame strip and the top-3 per video: "
                f"<a href=\"{href}\">{html.escape(str(page))}</a>.</p>")
    return out


def section_software(env: dict[str, str], config: dict) -> str:
    """Package versions, then the CPU and kernel facts (:data:`finepseudo.kernels.FACT_KEYS`) that ``env`` holds."""
    from finepseudo.kernels import FACT_KEYS

    packages = sorted((k, v) for k, v in env.items() if k not in FACT_KEYS)
    out = table_html(pd.DataFrame(packages, columns=["package", "version"]))
    cpu = [(k, env[k]) for k in FACT_KEYS if k in env]
    if cpu:
        out += ("<h3>CPU and kernels</h3><p>The machine and process that rendered this report. Every job pins the "
                f"CPU kernels of torch and numpy as the config key <code>cpu_kernels</code> says "
                f"(<b>{html.escape(str(config.get('cpu_kernels', '?')))}</b>) before it imports them, and every "
                "trained model's checkpoint records these facts for the machine that trained it "
                "(<code>metadata[\"env\"]</code>). With <code>avx2</code> the numbers do not depend on whether a "
                "machine has AVX-512; a different torch or numpy build, or a GPU, is not covered (README.md, "
                "\"How far the numbers reproduce\").</p>"
                + table_html(pd.DataFrame(cpu, columns=["fact", "value"])))
    return out
