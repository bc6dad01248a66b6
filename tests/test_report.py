"""finepseudo.report: the confidence-interval, paired-comparison, calibration and hyper-parameter sections and the
whole report, on small synthetic run folders laid out like the workflow's; the plan of its inputs."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finepseudo import stats

from finepseudo.report import html as report
from finepseudo.report import sections, tables
from finepseudo.report.inputs import (Alignability, Baseline, BenchmarkFile, Model, Prediction, PseudoFiles, ReportInputs,
                                      Round, Run, RunFile)

N_VIDEOS = 60
SEEDS = (0, 1, 2)
DISTS = ("p_E", "p_E_calibrated", "p_A", "combined")


def _keyed(paths: list[str]) -> list[RunFile]:
    """The fixtures' files .../<method>/frac<P>_seed<S>[/round<R>]/<file> with the run each belongs to (the
    workflow's plan says so; here the test's own layout does)."""
    out = []
    for path in paths:
        parts = Path(path).parts
        rnd = int(parts[-2][5:]) if parts[-2].startswith("round") else None
        if rnd is not None:
            parts = parts[:-1]
        p, s = re.match(r"frac([\d.]+)_seed(\d+)", parts[-2]).groups()
        out.append(RunFile(parts[-3], float(p), int(s), str(path), rnd))
    return out


def _predictions(labels: np.ndarray, acc: float, rng: np.random.Generator) -> np.ndarray:
    """Predictions right on about ``acc`` of the videos (labels (N,) in 0..3)."""
    wrong = rng.random(len(labels)) > acc
    return np.where(wrong, (labels + 1) % 4, labels)


def _write_run(res: Path, method: str, percent: str, seed: int, labels: np.ndarray, pred: np.ndarray,
               rng: np.random.Generator, shuffle: bool = False) -> str:
    run = res / "eval" / method / f"frac{percent}_seed{seed}"
    run.mkdir(parents=True)
    t = pd.DataFrame({"video": [f"{v:05d}" for v in range(len(labels))], "label": labels, "pred": pred,
                      "confidence": rng.uniform(0.3, 1.0, len(labels)).round(6)})
    if shuffle:  # the join is on video, not on row order
        t = t.sample(frac=1.0, random_state=seed)
    t.to_csv(run / "predictions.tsv", sep="\t", index=False)
    top1 = float(100 * (pred == labels).mean())
    metrics = {"n": len(labels), "top1": top1, "mean_class_accuracy": top1, "method": method,
               "model": str(res / "models" / method / f"frac{percent}_seed{seed}" / "fe.pt"), "clips_per_video": 2,
               "seconds": 0.1}
    if method != "supervised":
        metrics |= {"selected_round": 1, "rounds_chosen_on": "validation", "val_top1_by_round": {"1": top1}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return str(run / "predictions.tsv")


@pytest.fixture
def runs(tmp_path):
    """finepseudo (about 90 % right), pl (about 40 %) on seeds 0-2, supervised = finepseudo with one
    more video wrong on seeds 0-1 only, at 10 % labels; every run on the same 60 test videos."""
    res = tmp_path / "results" / "toy"
    rng = np.random.default_rng(0)
    preds = []
    for s in SEEDS:
        labels = rng.integers(0, 4, N_VIDEOS)
        fp = _predictions(labels, 0.9, rng)
        preds.append(_write_run(res, "finepseudo", "10", s, labels, fp, rng))
        preds.append(_write_run(res, "pl", "10", s, labels, _predictions(labels, 0.4, rng), rng, shuffle=True))
        if s < 2:
            sup = fp.copy()
            i = int(np.flatnonzero(fp == labels)[0])
            sup[i] = (labels[i] + 1) % 4
            preds.append(_write_run(res, "supervised", "10", s, labels, sup, rng))
    return res, preds


def _correct(path: str) -> pd.DataFrame:
    t = pd.read_csv(path, sep="\t", dtype={"video": str}).sort_values("video")
    return (t["pred"] == t["label"]).to_numpy()


def test_paired_table_matches_bootstrap(runs):
    res, preds = runs
    table = tables.paired_comparisons(_keyed(preds), n_boot=500, seed=3)
    # only the pairs whose methods both ran: no fa_only, no ablations, no supervised_scratch
    assert set(table["comparison"]) == {"finepseudo vs pl", "finepseudo vs supervised"}
    row = table.set_index("comparison").loc["finepseudo vs pl"]
    a = [_correct(str(res / f"eval/finepseudo/frac10_seed{s}/predictions.tsv")) for s in SEEDS]
    b = [_correct(str(res / f"eval/pl/frac10_seed{s}/predictions.tsv")) for s in SEEDS]
    expected = stats.paired_bootstrap(a, b, n_boot=500, seed=3)
    assert row["seeds"] == 3 and row["videos"] == 3 * N_VIDEOS and row["labels %"] == 10
    assert row["difference (points)"] == pytest.approx(expected["diff"])
    assert (row["ci_lo"], row["ci_hi"]) == pytest.approx((expected["lo"], expected["hi"]))
    assert row["p_boot_le_0"] == pytest.approx(expected["p_boot_le_0"])
    # supervised ran seeds 0 and 1 only: paired over those, one more video right for finepseudo in each
    sup = table.set_index("comparison").loc["finepseudo vs supervised"]
    assert sup["seeds"] == 2 and sup["difference (points)"] == pytest.approx(100 / N_VIDEOS)


def test_reading_says_within_noise_exactly_when_the_interval_contains_zero(runs):
    _, preds = runs
    table = tables.paired_comparisons(_keyed(preds), n_boot=500)
    for _, r in table.iterrows():
        assert ("within noise" in r["reading"]) == (r["ci_lo"] <= 0 <= r["ci_hi"]), r
    by = table.set_index("comparison")["reading"]
    assert by["finepseudo vs pl"].startswith("finepseudo better than pl")
    assert "within noise" in by["finepseudo vs supervised"]
    # reversed order of a pair: B better than A
    rev = tables.paired_comparisons(_keyed(preds), comparisons=[("pl", "finepseudo")], n_boot=200)
    assert rev["reading"].iloc[0].startswith("finepseudo better than pl") and rev["difference (points)"].iloc[0] < 0


def test_paired_section_shows_the_table(runs):
    _, preds = runs
    html = sections.section_paired(_keyed(preds), n_boot=300)
    table = tables.paired_comparisons(_keyed(preds), n_boot=300)
    for _, r in table.iterrows():
        cells = re.search(rf"<td>{re.escape(r['comparison'])}</td>(.*?)</tr>", html, re.S).group(1)
        assert f"<td>{r['difference (points)']:+.1f}</td>" in cells
        assert f"<td>[{r['ci_lo']:.1f}, {r['ci_hi']:.1f}]</td>" in cells
        assert ("within noise" in cells) == (r["ci_lo"] <= 0 <= r["ci_hi"])
    assert "No test predictions" in sections.section_paired([])
    assert "None of the comparisons" in sections.section_paired(_keyed([p for p in preds if "/pl/" in p]))


def test_accuracy_ci_table(runs):
    res, _ = runs
    metrics = []
    for path in sorted(res.glob("eval/*/*/metrics.json")):
        m = json.loads(path.read_text())
        metrics.append({"method": m["method"], "percent": 10.0, "seed": int(path.parent.name[-1]), "top1": m["top1"]})
    t = tables.accuracy_ci_table(metrics).set_index("method")
    fp = [m["top1"] for m in metrics if m["method"] == "finepseudo"]
    mean, lo, hi = stats.mean_ci(fp)
    assert t.loc["finepseudo", "seeds"] == 3
    assert (t.loc["finepseudo", "mean top-1 (%)"], t.loc["finepseudo", "ci_lo"], t.loc["finepseudo", "ci_hi"]) == \
        pytest.approx((mean, lo, hi))
    assert t.loc["finepseudo", "per-seed top-1"] == ", ".join(f"{s}: {v:.1f}" for s, v in zip(SEEDS, fp))
    assert t.loc["supervised", "seeds"] == 2
    one = tables.accuracy_ci_table([metrics[0]])
    assert one["seeds"].tolist() == [1] and np.isnan(one["ci_lo"].iloc[0])
    # the mean ± std helper still works, and the section shows both tables
    assert "± " in tables.accuracy_table(metrics).loc["finepseudo"].iloc[0]
    html = sections.section_accuracy(metrics, {"dataset": {"name": "toy"}, "eval": {"clips_per_video": 2}})
    assert "95 % confidence interval" in html and f"[{lo:.1f}, {hi:.1f}]" in html


# ------------------------------------------------------------------------------------ calibration

ECE = {  # (method, distribution) -> ECE per seed
    ("finepseudo", "p_E"): (0.131, 0.143, 0.125),
    ("finepseudo", "p_E_calibrated"): (0.051, 0.047, 0.061),
    ("finepseudo", "p_A"): (0.212, 0.198, 0.221),
    ("finepseudo", "combined"): (0.087, 0.091, 0.079),
    ("pl", "p_E"): (0.301, 0.287, 0.295),
    ("pl", "p_E_calibrated"): (0.066, 0.072, 0.058),
}


def _write_calibration(tmp_path: Path) -> tuple[list[str], list[str]]:
    cal, rel = [], []
    rng = np.random.default_rng(1)
    for method in ("pl", "finepseudo"):
        for s in SEEDS:
            run = tmp_path / "results/toy/methods" / method / f"frac10_seed{s}"
            run.mkdir(parents=True)
            rows, bins = [], []
            for dist in DISTS:
                if (method, dist) not in ECE:
                    continue
                rows.append({"distribution": dist, "temperature": 1.5 + s if dist == "p_E_calibrated" else "",
                             "n": 8, "top1": 62.5, "ece": ECE[(method, dist)][s], "nll": 1.0 + s / 10})
                count = rng.integers(0, 3, 10)
                conf = np.where(count > 0, np.linspace(0.05, 0.95, 10), np.nan)
                acc = np.where(count > 0, rng.random(10), np.nan)
                bins.append(pd.DataFrame({"distribution": dist, "bin": range(10), "lo": np.linspace(0, 0.9, 10),
                                          "hi": np.linspace(0.1, 1, 10), "count": count, "confidence": conf,
                                          "accuracy": acc}))
            pd.DataFrame(rows).to_csv(run / "calibration.tsv", sep="\t", index=False)
            pd.concat(bins).to_csv(run / "reliability.tsv", sep="\t", index=False)
            cal.append(str(run / "calibration.tsv"))
            rel.append(str(run / "reliability.tsv"))
    return cal, rel


def test_calibration_table_and_section(tmp_path):
    cal, rel = _write_calibration(tmp_path)
    t = tables.calibration_table(_keyed(cal))
    assert list(t["method"]) == ["pl"] * 2 + ["finepseudo"] * 4  # order of the inputs
    assert list(t["distribution"]) == ["p_E", "p_E_calibrated", "p_E", "p_E_calibrated", "p_A", "combined"]
    by = t.set_index(["method", "distribution"])
    for key, values in ECE.items():
        assert by.loc[key, "ECE"] == pytest.approx(np.mean(values))
        assert by.loc[key, "seeds"] == 3
    assert by.loc[("pl", "p_E_calibrated"), "temperature"] == pytest.approx(2.5)
    assert np.isnan(by.loc[("pl", "p_E"), "temperature"])
    html = sections.section_calibration(_keyed(cal), _keyed(rel))
    for values in ECE.values():
        assert f"<td>{np.mean(values):.3f}</td>" in html
    assert "data:image/png;base64," in html
    assert "Reliability diagram of finepseudo" in html and "validation split is small" in html
    # no reliability bins, no diagram; no calibration tables, no section
    assert "data:image/png;base64," not in sections.section_calibration(_keyed(cal), [])
    assert "No calibration" in sections.section_calibration([], [])
    # a run without validation videos writes header-only tables: left out of the table and the plot
    empty = tmp_path / "results/toy/methods/finepseudo/frac20_seed0"
    empty.mkdir(parents=True)
    (empty / "calibration.tsv").write_text("distribution\ttemperature\tn\ttop1\tece\tnll\n")
    (empty / "reliability.tsv").write_text("distribution\tbin\tlo\thi\tcount\tconfidence\taccuracy\n")
    assert len(tables.calibration_table(_keyed([*cal, str(empty / "calibration.tsv")]))) == len(ECE)
    only_empty = _keyed([str(empty / "calibration.tsv")])
    assert "The calibration tables are empty" in sections.section_calibration(only_empty, [])
    html = sections.section_calibration(_keyed([*cal, str(empty / "calibration.tsv")]),
                                        _keyed([*rel, str(empty / "reliability.tsv")]))
    assert html.count("data:image/png;base64,") == 1


def test_pooled_reliability(tmp_path):
    _, rel = _write_calibration(tmp_path)
    pooled = tables.pooled_reliability(_keyed(rel), "finepseudo").set_index(["distribution", "bin"])
    parts = [pd.read_csv(p, sep="\t") for p in rel if "/finepseudo/" in p]
    raw = pd.concat(parts)
    mixed = 0  # bins where at least two runs have videos: the count weighting matters there
    for (dist, b), g in raw.groupby(["distribution", "bin"]):
        assert pooled.loc[(dist, b), "count"] == g["count"].sum()
        if g["count"].sum() == 0:
            assert np.isnan(pooled.loc[(dist, b), "accuracy"])
            continue
        w = g["count"] / g["count"].sum()
        assert pooled.loc[(dist, b), "accuracy"] == pytest.approx((w * g["accuracy"].fillna(0)).sum())
        assert pooled.loc[(dist, b), "confidence"] == pytest.approx((w * g["confidence"].fillna(0)).sum())
        mixed += int((g["count"] > 0).sum() >= 2 and g.loc[g["count"] > 0, "count"].nunique() > 1)
    assert mixed > 0 and (raw["count"] == 0).any()  # both cases occur in the fixture
    assert pooled["runs"].max() == 3
    assert list(dict.fromkeys(pooled.index.get_level_values(0))) == list(DISTS)
    assert tables.pooled_reliability(_keyed(rel), "absent").empty


# ---------------------------------------------------------------------------------------- hparams


def _hparams(tmp_path: Path, edge: dict | None) -> str:
    run = tmp_path / "results/toy/methods/finepseudo/frac10_seed0"
    run.mkdir(parents=True, exist_ok=True)
    rec = {"method": "finepseudo", "values": {"theta": 0.9, "tau": 0.05, "delta": None}, "n_val": 8,
           "chosen_on": {"theta": "validation", "tau": "validation", "delta": "not used", "rounds": "validation"}}
    if edge is not None:
        rec["at_grid_edge"] = edge
    (run / "hparams.json").write_text(json.dumps(rec))
    return str(run / "hparams.json")


def test_hparams_flags_a_theta_at_the_grid_edge(tmp_path):
    html = sections.section_hparams(_keyed([_hparams(tmp_path, {"theta": True, "tau": False})]))
    assert "<td class='bad'>\u26a0 theta at the edge of the grid</td>" in html
    assert "finepseudo, 10 %, seed 0: theta" in html
    html = sections.section_hparams(_keyed([_hparams(tmp_path, {"theta": False, "tau": False})]))
    assert "class='bad'" not in html and "grid edge" in html
    html = sections.section_hparams(_keyed([_hparams(tmp_path, {"theta": False, "tau": True, "T_E": False})]))
    assert "<td class='bad'>\u26a0 tau at the edge of the grid</td>" in html
    html = sections.section_hparams(_keyed([_hparams(tmp_path, None)]))  # older hparams.json without the key
    assert "grid edge" not in html and "0.9 (validation)" in html


def test_hparams_shows_the_pool_weights(tmp_path):
    """The log-linear pool's (alpha, beta), chosen on validation, is a pair: the table writes it as one."""
    path = _hparams(tmp_path, None)
    rec = json.loads(Path(path).read_text())
    rec["values"]["weights"] = [0.5, 2.0]
    rec["chosen_on"]["weights"] = "validation"
    Path(path).write_text(json.dumps(rec))
    html = sections.section_hparams(_keyed([path]))
    assert "(0.5, 2) (validation)" in html and "0.9 (validation)" in html


def test_failed_and_warned_videos_are_listed(tmp_path):
    """The dataset section lists videos left out (status failed) and videos kept with a warning (a frame range
    clamped to the last frame); a status table from before the warning column still reads."""
    new = tmp_path / "shard0.status.tsv"
    pd.DataFrame({"video": ["00001", "00002", "00003"], "status": ["ok", "failed", "ok"], "n_decoded": [30, 0, 30],
                  "reason": ["", "video file is empty (0 bytes): v/00002.mp4", ""], "row": [0, -1, 2],
                  "warning": ["", "", "the annotated frame range [20, 40) runs past the last frame of v/00003.mp4"]},
                 ).to_csv(new, sep="\t", index=False)
    old = tmp_path / "shard1.status.tsv"
    pd.DataFrame({"video": ["00004"], "status": ["ok"], "reason": [""]}).to_csv(old, sep="\t", index=False)
    html = sections.section_failed([str(new), str(old)])
    assert "1 video(s) could not be decoded" in html and "empty (0 bytes): v/00002.mp4" in html
    assert "1 video(s) were kept with a warning" in html and "[20, 40) runs past the last frame" in html
    assert "00001" not in html and "00004" not in html
    html = sections.section_failed([str(old)])
    assert "Every video was decoded" in html and "warning" not in html


# ------------------------------------------------------------------------------------ whole report


def _write_pseudo(run: Path) -> PseudoFiles:
    """The files of a pseudo-labeling run in folder ``run``: those the test wrote there, and small valid ones (one
    round, theta 0.5, header-only calibration) for the others."""
    run.mkdir(parents=True, exist_ok=True)
    defaults = {
        "pseudo_quality.tsv": "round\tpool\taccepted\tcoverage\tprecision\tfe_fa_agreement\tper_class_precision\n"
                              "1\t50\t20\t0.4\t0.75\t0.5\t{}\n",
        "hparams.json": json.dumps({"n_val": 8, "values": {"theta": 0.5}, "chosen_on": {"theta": "validation"}}),
        "hparams_candidates.tsv": "theta\tprecision\n0.5\t0.75\n",
        "round_selection.tsv": "round\tval_top1\tchosen\n1\t50.0\tTrue\n",
        "calibration.tsv": "distribution\ttemperature\tn\ttop1\tece\tnll\n",
        "reliability.tsv": "distribution\tbin\tlo\thi\tcount\tconfidence\taccuracy\n",
    }
    for name, text in defaults.items():
        if not (run / name).exists():
            (run / name).write_text(text)
    return PseudoFiles(calibration=str(run / "calibration.tsv"), reliability=str(run / "reliability.tsv"),
                       quality=str(run / "pseudo_quality.tsv"), hparams=str(run / "hparams.json"),
                       candidates=str(run / "hparams_candidates.tsv"), round_selection=str(run / "round_selection.tsv"),
                       rounds=())


def _plan(res: Path, preds: list[str], bench: list[BenchmarkFile], pseudo: tuple[str, ...] = (),
          **more) -> ReportInputs:
    """The report's plan for the ``runs`` fixture (written by _base_inputs): every run with its metrics,
    predictions and confusion matrix; the methods in ``pseudo`` with their pseudo-labeling files (_write_pseudo)."""
    runs = []
    for f in _keyed(preds):
        folder = Path(f.path).parent
        files = None
        if f.method in pseudo:
            files = _write_pseudo(res / "methods" / f.method / folder.name)
        runs.append(Run(method=f.method, frac=f"{f.percent:g}", seed=f.seed, metrics=str(folder / "metrics.json"),
                        predictions=f.path, confusion=str(folder / "confusion.tsv"), models=(), pseudo=files))
    return ReportInputs(manifest=str(res / "manifest.tsv"), classes=str(res / "classes.tsv"),
                        shard_indexes=(str(res / "status.tsv"),), shards=(), runs=tuple(runs), benchmarks=tuple(bench),
                        **more)


def _base_inputs(res: Path, preds: list[str], bench: Path, pseudo: tuple[str, ...] = (), **more) -> ReportInputs:
    """The report's inputs for the ``runs`` fixture: manifest, classes, the runs' metrics, predictions and
    confusion matrices, frame status (one video failed), the benchmark files of two jobs (12.5 s and 30 s)."""
    pd.DataFrame({"video": [f"{v:05d}" for v in range(4)], "label": [0, 1, 2, 3],
                  "label_name": list("abcd"), "split": ["train", "train", "test", "test"],
                  "start_frame": 0, "end_frame": [10, 12, 9, 11]}).to_csv(res / "manifest.tsv", sep="\t", index=False)
    pd.DataFrame({"label": range(4), "name": list("abcd")}).to_csv(res / "classes.tsv", sep="\t", index=False)
    pd.DataFrame({"video": ["00000", "00001"], "status": ["ok", "failed"],
                  "reason": ["", "moov atom not found"]}).to_csv(res / "status.tsv", sep="\t", index=False)
    for p in preds:
        conf = pd.DataFrame(np.eye(4, dtype=int), index=list("abcd"), columns=list("abcd"))
        conf.to_csv(Path(p).with_name("confusion.tsv"), sep="\t")
    files = []
    for rule, s in (("train_fe", 12.5), ("report", 30.0)):
        (bench / rule).mkdir(parents=True)
        pd.DataFrame({"s": [s], "max_rss": [100.0]}).to_csv(bench / rule / "job.tsv", sep="\t", index=False)
        files.append(BenchmarkFile(rule, f"{rule}/job", str(bench / rule / "job.tsv")))
    return _plan(res, preds, files, pseudo, **more)


def test_build_report_with_and_without_pseudo_labeling_files(runs, tmp_path):
    res, preds = runs
    _write_calibration(tmp_path)
    plain = report.build_report(_base_inputs(res, preds, tmp_path / "bench"), CONFIG, {"torch": "x"})
    assert "Accuracy" in plain and "No calibration measurements" in plain
    assert "No pseudo-labeling method in this run's config" in plain
    assert "finepseudo better than pl" in plain  # every run's test predictions are paired
    new = report.build_report(_base_inputs(res, preds, tmp_path / "b2", pseudo=("finepseudo", "pl")), CONFIG, {})
    assert '<h2 id="paired">Paired comparisons</h2>' in new
    assert '<h2 id="calibration">Calibration on validation</h2>' in new and "Reliability diagram of finepseudo" in new
    assert "finepseudo better than pl" in new


# ------------------------------------------------------------------------ the report's numbers and inputs


CONFIG = {"dataset": {"name": "toy"}, "eval": {"clips_per_video": 2}}


def test_report_shows_the_accuracy_of_every_method_from_its_metrics(runs, tmp_path):
    res, preds = runs
    inp = _base_inputs(res, preds, tmp_path / "bench")
    html = report.build_report(inp, CONFIG, {"torch": "9.9.9-test"})
    for method, seeds in (("finepseudo", SEEDS), ("pl", SEEDS), ("supervised", SEEDS[:2])):
        top1 = [json.loads((res / f"eval/{method}/frac10_seed{s}/metrics.json").read_text())["top1"] for s in seeds]
        cell = f"{np.mean(top1):.1f} ± {np.std(top1, ddof=1):.1f} (n={len(top1)})"
        row = re.search(rf"<tr>\s*<td>{method}</td>\s*<td>(.*?)</td>", html)
        assert row is not None and row.group(1) == cell, (method, cell)
        per_seed = ", ".join(f"{s}: {v:.1f}" for s, v in zip(seeds, top1))
        assert per_seed in html
    assert "moov atom not found" in html and "1 video(s) could not be decoded" in html  # the failed video
    assert "Sum over jobs: 42 s" in html  # 12.5 + 30 from the benchmark files
    assert "9.9.9-test" in html and "<b>toy</b>" in html


def test_report_shows_pseudo_label_quality_and_hyper_parameters(runs, tmp_path):
    res, preds = runs
    for s in SEEDS:
        run = res / "methods/finepseudo" / f"frac10_seed{s}"
        run.mkdir(parents=True)
        pd.DataFrame({"round": [1], "pool": [50], "accepted": [20], "coverage": [0.4], "precision": [0.75 + s / 100],
                      "fe_fa_agreement": [0.5], "per_class_precision": ["{}"]}).to_csv(
            run / "pseudo_quality.tsv", sep="\t", index=False)
        (run / "hparams.json").write_text(json.dumps({
            "method": "finepseudo", "n_val": 8, "values": {"theta": 0.8125, "tau": 0.03, "delta": None},
            "chosen_on": {"theta": "validation", "tau": "validation", "delta": "not used", "rounds": "validation"}}))
    html = report.build_report(_base_inputs(res, preds, tmp_path / "bench", pseudo=("finepseudo",)), CONFIG, {})
    # mean over the seeds of the last round: coverage 40 %, precision (75 + 76 + 77) / 3 = 76 %
    assert "finepseudo at 10 %: the last round accepted 40 % of the pool at a pseudo-label precision of 76 %" in html
    assert "0.8125 (validation)" in html and "0.03 (validation)" in html


@pytest.mark.parametrize("missing", ["metrics", "classes", "manifest", "confusion"])
def test_report_names_a_missing_input(runs, tmp_path, missing):
    res, preds = runs
    inp = _base_inputs(res, preds, tmp_path / "bench")
    gone = {"metrics": inp.runs[1].metrics, "classes": inp.classes, "manifest": inp.manifest,
            "confusion": inp.runs[1].confusion}[missing]
    Path(gone).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(gone)):
        report.build_report(inp, CONFIG, {})


# -------------------------------------------------------------------------------------------- trivial baselines


def _write_baseline(res: Path, name: str, seed: int, labels: np.ndarray, pred: np.ndarray) -> tuple[str, str]:
    """metrics.json and predictions.tsv of a trivial baseline, laid out as rule trivial_baselines writes them."""
    run = res / "baselines" / name / f"frac10_seed{seed}"
    run.mkdir(parents=True)
    pd.DataFrame({"video": [f"{v:05d}" for v in range(len(labels))], "label": labels, "pred": pred,
                  "confidence": 0.5}).to_csv(run / "predictions.tsv", sep="\t", index=False)
    top1 = float(100 * (pred == labels).mean())
    (run / "metrics.json").write_text(json.dumps({"n": len(labels), "top1": top1, "mean_class_accuracy": top1,
                                                  "method": name, "gallery": "labeled.tsv"}))
    return str(run / "metrics.json"), str(run / "predictions.tsv")


@pytest.fixture
def trivial(runs):
    """On the ``runs`` fixture's test videos: pixel_dtw = finepseudo's predictions with 10 more videos wrong
    per seed (about 73 %), pixel_pooled about 30 %, phi_a about 50 %, every one on seeds 0-2."""
    res, preds = runs
    rng = np.random.default_rng(5)
    metrics, bpreds = [], []
    for s in SEEDS:
        fp = pd.read_csv(res / f"eval/finepseudo/frac10_seed{s}/predictions.tsv", sep="\t", dtype={"video": str})
        labels, pred = fp["label"].to_numpy(), fp["pred"].to_numpy().copy()
        right = np.flatnonzero(pred == labels)[:10]
        pred[right] = (labels[right] + 1) % 4
        for name, p in (("pixel_dtw", pred), ("pixel_pooled", _predictions(labels, 0.3, rng)),
                        ("phi_a", _predictions(labels, 0.5, rng))):
            m, q = _write_baseline(res, name, s, labels, p)
            metrics.append(m)
            bpreds.append(q)
    return metrics, bpreds


def test_best_trivial_baseline_and_every_method_against_it(runs, trivial):
    res, preds = runs
    _, bpreds = trivial
    best = tables.best_trivial_baselines(_keyed(bpreds))
    assert best["baseline"].tolist() == ["pixel_dtw"] and best["seeds"].tolist() == [3]
    dtw = [_correct(p).mean() * 100 for p in bpreds if "/pixel_dtw/" in p]
    assert best["mean top-1 (%)"].iloc[0] == pytest.approx(np.mean(dtw))
    table = tables.trivial_comparisons(_keyed(preds), _keyed(bpreds), n_boot=500, seed=4).set_index("method")
    assert set(table.index) == {"finepseudo", "pl", "supervised"} and (table["baseline"] == "pixel_dtw").all()
    a = [_correct(str(res / f"eval/finepseudo/frac10_seed{s}/predictions.tsv")) for s in SEEDS]
    b = [_correct(p) for p in bpreds if "/pixel_dtw/" in p]
    expected = stats.paired_bootstrap(a, b, n_boot=500, seed=4)
    fp = table.loc["finepseudo"]
    assert fp["difference (points)"] == pytest.approx(100 * 10 / N_VIDEOS) == pytest.approx(expected["diff"])
    assert (fp["ci_lo"], fp["ci_hi"]) == pytest.approx((expected["lo"], expected["hi"]))
    assert table["beats"].notna().all()
    assert fp["beats"] and fp["ci_lo"] > 0
    assert not table.loc["pl", "beats"] and table.loc["pl", "ci_hi"] < 0
    assert table.loc["supervised", "seeds"] == 2  # paired on the seeds both ran
    for _, r in table.reset_index().iterrows():
        assert r["beats"] == (r["ci_lo"] > 0)
    # a method at a label fraction without trivial baselines is listed, not compared
    full = res / "eval/supervised_full/frac100_seed0"
    full.mkdir(parents=True)
    pd.read_csv(preds[0], sep="\t").to_csv(full / "predictions.tsv", sep="\t", index=False)
    table = tables.trivial_comparisons(_keyed([*preds, str(full / "predictions.tsv")]), _keyed(bpreds), n_boot=100)
    row = table[table["method"] == "supervised_full"].iloc[0]
    assert row["labels %"] == 100 and row["beats"] is None
    assert "no trivial baseline ran at this label fraction" in tables.trivial_reading(row)


def test_trivial_reading_says_plainly_whether_a_method_beats_the_best_baseline():
    row = {"method": "finepseudo", "labels %": 10.0, "baseline": "pixel_dtw", "baseline top-1 (%)": 31.04,
           "difference (points)": 4.2, "ci_lo": 1.1, "ci_hi": 7.3}
    assert tables.trivial_reading(row) == ("finepseudo at 10 % labels against the best trivial baseline, pixel_dtw "
                                           "(31.0 %): it beats it, by +4.2 points (95 % interval [1.1, 7.3], above 0).")
    noise = tables.trivial_reading(row | {"difference (points)": 2.0, "ci_lo": 0.0, "ci_hi": 4.0})
    assert "does NOT beat it: +2.0 points, 95 % interval [0.0, 4.0] contains 0 (within noise)" in noise
    worse = tables.trivial_reading(row | {"difference (points)": -3.0, "ci_lo": -5.0, "ci_hi": -1.0})
    assert "does NOT beat it: it is worse by 3.0 points (95 % interval [-5.0, -1.0], below 0)" in worse


def test_report_shows_the_trivial_baselines_as_rows_and_reads_them(runs, trivial, tmp_path):
    res, preds = runs
    bmetrics, bpreds = trivial
    baselines = tuple(Baseline(m.method, f"{m.percent:g}", m.seed, m.path, q.path)
                      for m, q in zip(_keyed(bmetrics), _keyed(bpreds)))
    inp = _base_inputs(res, preds, tmp_path / "bench", baselines=baselines)
    html = report.build_report(inp, CONFIG | {"fe": {"init": "ssl"}}, {})
    acc = html[html.index('<h2 id="accuracy">'):html.index('<h2 id="methods">')]
    for name in ("pixel_dtw", "pixel_pooled", "phi_a"):
        top1 = [json.loads(Path(m).read_text())["top1"] for m in bmetrics if f"/{name}/" in m]
        cell = f"{np.mean(top1):.1f} ± {np.std(top1, ddof=1):.1f} (n=3)"
        row = re.search(rf"<tr>\s*<td>{name} \(trivial baseline\)</td>\s*<td>(.*?)</td>", acc)
        assert row is not None and row.group(1) == cell, name
        mean, lo, hi = stats.mean_ci(top1)
        ci_row = re.search(rf"<td>{name} \(trivial baseline\)</td>\s*<td>10</td>\s*<td>3</td>\s*<td>(.*?)</td>\s*"
                           r"<td>(.*?)</td>", acc)
        assert ci_row is not None and ci_row.groups() == (f"{mean:.1f}", f"[{lo:.1f}, {hi:.1f}]"), name
    # the baselines follow the methods in both tables
    assert acc.index("<td>supervised</td>") < acc.index("<td>phi_a (trivial baseline)</td>")
    assert acc.rindex("<td>supervised</td>") < acc.rindex("<td>phi_a (trivial baseline)</td>")
    assert "never the validation or unlabeled videos" in acc and "ssl_probe is not shown" not in acc
    # every method against the best one, in the paired section and in the generated reading
    paired = html[html.index('<h2 id="paired">'):html.index('<h2 id="calibration">')]
    table = tables.trivial_comparisons(_keyed(preds), _keyed(bpreds))
    for _, r in table.iterrows():
        cells = re.search(rf"<h3>Every method against.*?<td>{r['method']}</td>(.*?)</tr>", paired, re.S).group(1)
        assert f"<td>{r['difference (points)']:+.1f}</td>" in cells and f"[{r['ci_lo']:.1f}, {r['ci_hi']:.1f}]" in cells
        assert ("<td>beats it</td>" in cells) == bool(r["beats"])
    reading = html[html.index("<h3>Reading (generated"):html.index('<h2 id="paired">')]
    best = table["baseline top-1 (%)"].iloc[0]
    assert (f"finepseudo at 10 % labels against the best trivial baseline, pixel_dtw ({best:.1f} %): it beats it"
            in reading)
    assert "pl at 10 % labels against the best trivial baseline, pixel_dtw" in reading
    assert re.search(r"pl at 10 % labels [^<]*it does NOT beat it: it is worse by", reading)
    assert reading.count("against the best trivial baseline") == 3  # finepseudo, pl, supervised
    # fe.init scratch: no self-supervised f_E, so no ssl_probe row, and the report says why
    html = report.build_report(inp, CONFIG | {"fe": {"init": "scratch"}}, {})
    assert "<code>ssl_probe</code> is not shown: <code>fe.init</code> is scratch" in html
    # a plan without trivial baselines has no such rows
    html = report.build_report(_base_inputs(res, preds, tmp_path / "b2"), CONFIG, {})
    assert "(trivial baseline)" not in html and "No trivial baseline predictions" in html


def test_round_table_shows_both_branches_per_round(tmp_path):
    """The collaboration section: per round the combination's fitted weights, theta, each branch's validation
    and pool accuracy and their agreement, from the rounds' pseudo_labels.json and pseudo_quality.tsv."""
    import json

    from finepseudo.report.sections import section_rounds
    from finepseudo.report.tables import round_table

    run = tmp_path / "results/synthdive/methods/finepseudo/frac10_seed0"
    for r, (w, theta) in enumerate((([0.5, 2.0], 0.6), ([1.0, 1.5], 0.7)), start=1):
        (run / f"round{r}").mkdir(parents=True)
        (run / f"round{r}/pseudo_labels.json").write_text(json.dumps({
            "combine": "loglinear", "T_E": None, "weights": w, "theta": theta,
            "val_top1": {"p_E": 30.0 + r, "p_A": 40.0 + r, "combined": 45.0 + r}, "val_agreement": 0.5}))
    pd.DataFrame({"round": [1, 2], "pool": [100, 100], "accepted": [40, 50], "coverage": [0.4, 0.5],
                  "precision": [0.8, 0.75], "fe_accuracy": [0.3, 0.35], "fa_accuracy": [0.42, 0.44],
                  "combined_accuracy": [0.45, 0.5], "fe_fa_agreement": [0.5, 0.6]}).to_csv(
        run / "pseudo_quality.tsv", sep="\t", index=False)
    infos = [str(run / f"round{r}/pseudo_labels.json") for r in (1, 2)]
    t = round_table(_keyed(infos), _keyed([str(run / "pseudo_quality.tsv")]))
    assert t["round"].tolist() == [1, 2] and t["method"].tolist() == ["finepseudo"] * 2
    assert t["alpha"].tolist() == [0.5, 1.0] and t["beta"].tolist() == [2.0, 1.5] and t["theta"].tolist() == [0.6, 0.7]
    assert t["val p_A"].tolist() == [41.0, 42.0] and t["val agreement"].tolist() == [50.0, 50.0]
    assert t["pool p_E"].tolist() == pytest.approx([30.0, 35.0]) and t["precision"].tolist() == pytest.approx([80.0, 75.0])
    html = section_rounds(_keyed(infos), _keyed([str(run / "pseudo_quality.tsv")]))
    assert "pool p_A" in html and "alpha" in html and "every seed" in html


# ---------------------------------------------------------------------------------------- the plan of its inputs


def test_the_report_package_neither_looks_for_files_nor_reads_keys_out_of_paths():
    """The report reads the files of its plan, and the plan says what each one is: no glob, no probing whether a
    file exists, no regular expression over paths in finepseudo/report."""
    import ast

    import finepseudo.report

    folder = Path(finepseudo.report.__file__).parent
    sources = sorted(folder.glob("*.py"))
    assert {p.name for p in sources} >= {"html.py", "inputs.py", "tables.py", "figures.py", "sections.py"}
    for path in sources:
        text = path.read_text()
        for banned in (r"\bglob\b", r"\bis_file\(", r"\bexists\(", r"\bis_dir\(", r"\biterdir\(", r"\blistdir\(",
                       r"\bwalk\(", r"\bre\.\w", r"\bfnmatch\b"):
            assert not re.search(banned, text), (path.name, banned)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {a.name for a in node.names} | {getattr(node, "module", None)}
                assert not names & {"re", "glob", "fnmatch", "os"}, (path.name, names)


def _toy_plan() -> ReportInputs:
    rounds = (Round(1, "e/fp/frac10_seed0/round1/metrics.json", "m/fp/frac10_seed0/round1/pseudo_labels.json"),
              Round(2, "e/fp/frac10_seed0/round2/metrics.json", "m/fp/frac10_seed0/round2/pseudo_labels.json"))
    pseudo = PseudoFiles("m/cal.tsv", "m/rel.tsv", "m/q.tsv", "m/hp.json", "m/cand.tsv", "m/sel.tsv", rounds)
    runs = (Run("finepseudo", "2.5", 0, "e/fp/metrics.json", "e/fp/predictions.tsv", "e/fp/confusion.tsv",
                (Model("m/r1/fe.pt", "m/r1/fe.history.tsv"), Model("m/r2/fe.pt", "m/r2/fe.history.tsv")), pseudo),
            Run("supervised", "10", 1, "e/sup/metrics.json", "e/sup/predictions.tsv", "e/sup/confusion.tsv",
                (Model("models/sup/fe.pt", "models/sup/fe.history.tsv"),)))
    return ReportInputs(
        manifest="manifest.tsv", classes="classes.tsv", shard_indexes=("s0.status.tsv",), shards=("s0.npy",),
        runs=runs, baselines=(Baseline("pixel_dtw", "10", 1, "b/metrics.json", "b/predictions.tsv"),),
        alignability=(Alignability("10", 1, "a/pv.tsv", "a/phase.tsv", "a/pA_test.tsv", "a/ex.npz", "s/test.tsv"),),
        benchmarks=(BenchmarkFile("train_fe", "train_fe/toy/frac10_seed1", "bench/train_fe/toy/frac10_seed1.tsv"),),
        exports=("export/sup",), predict=Prediction("clips", "p/predictions.tsv", "p/page.html"))


def test_the_plan_declares_every_file_and_says_what_each_one_is():
    plan = _toy_plan()
    files = plan.files()
    assert files["run_metrics"] == ["e/fp/metrics.json", "e/sup/metrics.json"]
    assert files["model_history"] == ["m/r1/fe.history.tsv", "m/r2/fe.history.tsv", "models/sup/fe.history.tsv"]
    assert files["round_info"] == ["m/fp/frac10_seed0/round1/pseudo_labels.json",
                                   "m/fp/frac10_seed0/round2/pseudo_labels.json"]
    assert files["synthdive_summary"] == [] and files["exports"] == ["export/sup"]
    assert files["predict_page"] == ["p/page.html"] and files["benchmark_path"] == ["bench/train_fe/toy/frac10_seed1.tsv"]
    every = [f for group in files.values() for f in group]
    # manifest, classes, status, shard, export; 2 runs x 3, 3 histories, 6 pseudo-labeling files, 2 rounds x 2;
    # a baseline's 2, an alignability run's 5, a benchmark file, the prediction run's 2
    assert len(every) == len(set(every)) == 5 + 2 * 3 + 3 + 6 + 2 * 2 + 2 + 5 + 1 + 2
    # checkpoints are how a run's metrics.json names its f_E, not files the report reads
    assert "m/r1/fe.pt" not in every and "models/sup/fe.pt" not in every
    # what each file is, for the tables: the keys come from the plan, not from the paths
    assert plan.run_files("predictions") == [RunFile("finepseudo", 2.5, 0, "e/fp/predictions.tsv"),
                                              RunFile("supervised", 10.0, 1, "e/sup/predictions.tsv")]
    assert plan.pseudo_files("quality") == [RunFile("finepseudo", 2.5, 0, "m/q.tsv")]
    assert [(f.round, f.path) for f in plan.round_files("metrics")] == [
        (1, "e/fp/frac10_seed0/round1/metrics.json"), (2, "e/fp/frac10_seed0/round2/metrics.json")]
    assert plan.baseline_files("predictions") == [RunFile("pixel_dtw", 10.0, 1, "b/predictions.tsv")]


def test_the_plan_travels_as_plain_data():
    """The rule passes the plan as params (plain dicts, lists, strings and numbers) and the script rebuilds it."""
    plan = _toy_plan()
    plain = plan.to_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert ReportInputs.from_dict(plain) == plan
    bare = ReportInputs("manifest.tsv", "classes.tsv", (), ())
    assert ReportInputs.from_dict(bare.to_dict()) == bare and bare.predict is None


def test_the_report_shows_the_training_curve_of_the_f_e_its_metrics_name(runs, tmp_path):
    """Of a run's f_E (every round's for a pseudo-labeling method), the curve shown is the one metrics.json names."""
    from finepseudo.report.html import _read_metrics

    res, preds = runs
    inp = _base_inputs(res, preds, tmp_path / "bench")
    named = json.loads(Path(inp.runs[0].metrics).read_text())["model"]
    other = str(Path(named).with_name("other.pt"))
    first = Run(**{**inp.runs[0].__dict__, "models": (Model(other, "other.tsv"), Model(named, "named.tsv"))})
    _, _, histories, _ = _read_metrics(ReportInputs(**{**inp.__dict__, "runs": (first, *inp.runs[1:])}))
    assert histories == [(f"{first.method} 10%", "named.tsv")]


def test_the_exports_section_lists_the_exports_and_the_prediction_run_of_the_plan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export = Path("results/toy/export/supervised/frac10_seed0")
    export.mkdir(parents=True)
    (export / "model.json").write_text(json.dumps({
        "method": "supervised", "split": {"label_percent": 10.0, "seed": 0},
        "evaluation": {"top1": 61.25, "top1_ci95": [50.0, 70.0]}, "calibration": {"temperature": None},
        "model": {"selected_round": None}, "alignability": None}))
    folder = Path("results/toy/predict/clips")
    folder.mkdir(parents=True)
    pd.DataFrame({"video": ["a", "b", "c"], "status": ["ok", "ok", "failed"]}).to_csv(
        folder / "predictions.tsv", sep="\t", index=False)
    run = Prediction("clips", str(folder / "predictions.tsv"), str(folder / "page.html"))
    html = sections.section_exports([str(export)], run)
    assert "<td>61.2</td>" in html and "<td>[50.0, 70.0]</td>" in html and f"<td>{export}</td>" in html
    assert ("Prediction run <b>clips</b>: 3 videos (1 failed, 2 ok); table <code>results/toy/predict/clips/"
            "predictions.tsv</code>") in html
    assert '<a href="toy/predict/clips/page.html">results/toy/predict/clips/page.html</a>' in html
    assert "Prediction run" not in sections.section_exports([str(export)], None)
    assert sections.section_exports([], None) == "<p>No exported model.</p>"
