"""Whole-workflow runs on the tiny config: real Snakemake, real ffmpeg, real training (tiny sizes).

The main run is shared by the tests of this module (module-scoped fixture) and takes about a minute
or two on 2 cores.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
pytestmark = pytest.mark.workflow


def snakemake(workdir, *args, configfile=ROOT / "config/test.yaml", check=True):
    cmd = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *map(str, args),
           "--cores", "2", "--configfile", str(configfile)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if check and r.returncode != 0:
        raise AssertionError(f"snakemake failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}")
    return r


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("tiny")
    snakemake(wd, "results/report.html")
    return wd / "results"


def test_report_has_every_section(run):
    html = (run / "report.html").read_text()
    for section in ["Dataset", "Accuracy", "Alignability branch", "Pair verification", "Confusion matrices",
                    "Sample frames per class", "Run time and memory per rule", "Config used", "Software"]:
        assert section in html, section
    assert html.count("data:image/png;base64,") >= 5  # figures are embedded, the file stands alone
    assert "supervised_full" in html and "torch" in html


def test_splits_keep_unlabeled_truth_apart(run):
    split = run / "synthdive/splits/frac50_seed0"
    unl = pd.read_csv(split / "unlabeled.tsv", sep="\t")
    truth = pd.read_csv(split / "unlabeled_truth.tsv", sep="\t")
    lab = pd.read_csv(split / "labeled.tsv", sep="\t")
    assert list(unl.columns) == ["video", "shard"]
    assert list(truth["video"]) == list(unl["video"])
    assert len(lab) == 12 and lab["label"].value_counts().tolist() == [3, 3, 3, 3]


def test_metrics_and_tables(run):
    for method, frac in (("supervised", "50"), ("supervised_full", "100")):
        d = run / f"synthdive/eval/{method}/frac{frac}_seed0"
        m = json.loads((d / "metrics.json").read_text())
        assert m["n"] == 8 and 0 <= m["top1"] <= 100
        conf = pd.read_csv(d / "confusion.tsv", sep="\t", index_col=0)
        assert conf.shape == (4, 4) and conf.to_numpy().sum() == 8
        pred = pd.read_csv(d / "predictions.tsv", sep="\t")
        assert abs(100 * (pred["pred"] == pred["label"]).mean() - m["top1"]) < 1e-9
    hist = pd.read_csv(run / "synthdive/models/supervised/frac100_seed0/fe.history.tsv", sep="\t")
    assert len(hist) == 2 and hist["loss"].notna().all()


def test_alignability_outputs(run):
    a = run / "synthdive/alignability/frac50_seed0"
    trip = pd.read_csv(a / "triplets.tsv", sep="\t")
    assert len(trip) == 12 and (trip["label"] != trip["negative_label"]).all()
    pv = pd.read_csv(a / "pair_verification.tsv", sep="\t")
    assert set(pv["measure"]) == {"per-timestamp cosine", "temporally pooled cosine", "DTW cost",
                                  "learned alignability score"}
    assert pv["average_precision"].between(0, 1).all()
    pa = pd.read_csv(a / "pA_unlabeled.tsv", sep="\t")
    assert len(pa) == 12 and "label" not in pa.columns
    probs = pa[[f"p_{c}" for c in range(4)]].sum(axis=1)
    assert ((probs - 1).abs() < 1e-4).all()
    phase = pd.read_csv(a / "phase_agreement.tsv", sep="\t")
    assert phase["same_phase_share"].between(0, 1).all()


def test_logs_have_progress_lines(run):
    log = (run / "logs/synthdive/train_fe/frac100_seed0.log").read_text()
    assert re.search(r"epoch 2/2", log) and "/s" in log
    assert "videos/s" in (run / "logs/synthdive/extract_frames/shard0.log").read_text()


def test_same_config_same_numbers(run, tmp_path):
    """A second run from scratch with the same config gives identical tables and metrics on CPU."""
    snakemake(tmp_path, "results/synthdive/eval/supervised/frac50_seed0/metrics.json",
              "results/synthdive/alignability/frac50_seed0/pA_test.tsv")
    for rel in ("synthdive/eval/supervised/frac50_seed0/predictions.tsv", "synthdive/manifest.tsv",
                "synthdive/alignability/frac50_seed0/pA_test.tsv", "synthdive/alignability/frac50_seed0/triplets.tsv"):
        assert (run / rel).read_text() == (tmp_path / "results" / rel).read_text(), rel


def test_changing_a_training_hyperparameter_reruns_only_what_it_affects(run, tmp_path):
    cfg = tmp_path / "changed.yaml"
    cfg.write_text((ROOT / "config/test.yaml").read_text().replace("epochs: 2\n  batch_size: 8\n  lr: 0.003",
                                                                    "epochs: 3\n  batch_size: 8\n  lr: 0.003"))
    assert "epochs: 3" in cfg.read_text()
    r = snakemake(run.parent, "results/report.html", "-n", "--quiet", "rules", configfile=cfg)
    rules = set(re.findall(r"^(\w+)\s+\d+$", r.stdout, re.M)) - {"total", "job"}
    assert rules == {"train_fe", "evaluate_fe", "report"}, r.stdout


def _real_dataset(run, root, corrupt):
    """A Diving48-format dataset made of the tiny run's SynthDive files, one video corrupted."""
    raw = run / "synthdive/raw"
    shutil.copytree(raw / "videos", root / "videos")
    for f in ("train.json", "test.json", "vocab.json"):
        shutil.copy(raw / "annotations" / f, root / f)
    (root / "videos" / f"{corrupt}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    return (f"dataset:\n  name: diving48\n  videos_dir: {root / 'videos'}\n  train_annotations: {root / 'train.json'}\n"
            f"  test_annotations: {root / 'test.json'}\n  vocab: {root / 'vocab.json'}\n")


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_corrupt_video_fails_with_its_path_or_is_skipped(run, tmp_path, on_error):
    manifest = pd.read_csv(run / "synthdive/manifest.tsv", sep="\t")
    bad = manifest.sort_values("video").iloc[0]
    cfg = tmp_path / "real.yaml"
    text = (ROOT / "config/test.yaml").read_text().replace("on_error: fail", f"on_error: {on_error}")
    text = re.sub(r"dataset:\n  name: synthdive\n", "", text)
    cfg.write_text(text + _real_dataset(run, tmp_path / "data", bad["video"]))
    wd = tmp_path / "wd"
    shards = [f"results/diving48/frames/shard{k}.pt" for k in range(2)]
    r = snakemake(wd, "--keep-going", *shards, configfile=cfg, check=False)
    other = 1 - int(bad["shard"])
    assert (wd / shards[other]).is_file()  # the other shard's output survives either way
    status = wd / f"results/diving48/frames/shard{bad['shard']}.status.tsv"
    if on_error == "fail":
        assert r.returncode != 0
        log = (wd / f"results/logs/diving48/extract_frames/shard{bad['shard']}.log").read_text()
        assert f"{bad['video']}.mp4" in log and "frames.on_error: skip" in log
        assert not status.exists()
    else:
        assert r.returncode == 0, r.stderr[-3000:]
        st = pd.read_csv(status, sep="\t")
        assert st.loc[st["video"] == bad["video"], "status"].item() == "failed"
        assert (st["status"] == "ok").sum() == len(st) - 1
