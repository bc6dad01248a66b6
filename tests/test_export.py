"""Exported models (finepseudo.export): the card, loading without unpickling, refusing changed or mismatched
files by name, bad and short videos, streaming; and on the shared tiny run, that every run is exported with its
card and that the three ways to predict (the rule, the console command, the Python API) give exactly the
predictions and probabilities the workflow's evaluation wrote."""

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo.export.card import ExportError, make_card, read_card
from finepseudo.export.model import ExportedModel, save_export
from wfutil import ROOT, snakemake

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = ["back pike", "back tuck", "forward pike"]
FE_KWARGS = {"widths": [8, 16, 16], "stem_width": 8}
ALIGN = {"arch": {"dim": 16, "width": 4, "layers": 0, "pool": 2}, "num_frames": 4, "gamma": 0.1, "tau": 0.1,
         "gallery_videos": 6}


def _make_export(folder: Path, *, alignability: bool = True, seed: int = 0) -> Path:
    """A small export of untrained models (16 px frames, 8 per video, 2 clips of 4), as save_export writes it."""
    from finepseudo.align.alignability import FrameEncoder, ScoreHead
    from finepseudo.models.video import build_video_model

    torch.manual_seed(seed)
    fe = build_video_model("r2plus1d_tiny", len(CLASSES), **FE_KWARGS)
    card = make_card(dataset="unit", method="finepseudo" if alignability else "supervised", classes=CLASSES,
                     arch="r2plus1d_tiny", model_kwargs=FE_KWARGS, frames_per_video=8, frame_size=16, resize="crop",
                     clip_frames=4, clips_per_video=2, batch_size=4, label_percent=50, seed=0, temperature=1.5,
                     alignability=ALIGN if alignability else None)
    if not alignability:
        save_export(folder, card, fe)
        return folder
    emb = torch.nn.functional.normalize(torch.randn(6, 4, 16), dim=-1).numpy()
    save_export(folder, card, fe, fa=FrameEncoder(**ALIGN["arch"]), score=ScoreHead(), gallery_embeddings=emb,
                gallery_labels=np.array([0, 0, 1, 1, 2, 2]))
    return folder


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return _make_export(tmp_path_factory.mktemp("export") / "finepseudo")


@pytest.fixture()
def copy(export, tmp_path):
    """A copy of the module's export that a test may damage."""
    dst = tmp_path / "copy"
    shutil.copytree(export, dst)
    return dst


def _video(path: Path, frames: int) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=40x30:rate=10", "-frames:v", str(frames), "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def _set_sha(folder: Path, name: str) -> None:
    """Record a replaced file's SHA-256 in the card, so that only the file's content can refuse it."""
    card = json.loads((folder / "model.json").read_text())
    card["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "model.json").write_text(json.dumps(card))


def _cli(*args, cwd=None):
    path = [str(ROOT / "src")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path),
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "finepseudo.cli", "predict", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ----------------------------------------------------------------------------------------------------- the card

def test_card_holds_what_a_user_needs_and_a_markdown_view(export):
    card = read_card(export)
    assert card["card_version"] == 1 and [c["name"] for c in card["classes"]] == CLASSES
    prep = card["preprocessing"]
    assert (prep["frames_per_video"], prep["clip_frames"], prep["clips_per_video"], prep["frame_size"],
            prep["resize"]) == (8, 4, 2, 16, "crop")
    assert prep["normalisation"]["mean"] == [0.45, 0.45, 0.45] and card["calibration"]["temperature"] == 1.5
    assert set(card["files"]) == {"fe.safetensors", "alignability.safetensors"}
    for name, digest in card["files"].items():
        assert hashlib.sha256((export / name).read_bytes()).hexdigest() == digest
        assert (export / name).stat().st_mode & 0o044  # readable by others: an export is meant to be shared
    md = (export / "README.md").read_text()
    assert "r2plus1d_tiny" in md and "safetensors" in md and "back tuck" in md and "finepseudo predict" in md


def test_loading_and_predicting_never_unpickle(export, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    class Refuse(pickle.Unpickler):
        def __init__(self, *args, **kwargs):
            refuse()

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", Refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model = ExportedModel.load(export)
    pred = model.predict_frames(np.random.default_rng(0).integers(0, 256, (3, 8, 16, 16, 3), dtype=np.uint8))
    assert pred.probs.shape == pred.calibrated.shape == pred.p_a.shape == (3, 3)
    assert np.allclose(pred.calibrated.sum(1), 1) and np.allclose(pred.p_a.sum(1), 1)
    # calibrated p_E is softmax(mean clip logits / T_E)
    z = pred.logits / 1.5
    assert np.allclose(pred.calibrated, np.exp(z) / np.exp(z).sum(1, keepdims=True), atol=1e-6)


class _Payload:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["pickle", "torch_checkpoint"])
def test_a_weights_file_that_would_run_code_is_refused_with_its_name(copy, tmp_path, kind):
    marker = tmp_path / "code_ran"
    target = copy / "fe.safetensors"
    if kind == "pickle":
        target.write_bytes(pickle.dumps(_Payload(str(marker))))
    else:  # a torch checkpoint (a zip of pickles) renamed: torch.load(weights_only=False) would run the payload
        torch.save({"state_dict": _Payload(str(marker))}, target)
    _set_sha(copy, "fe.safetensors")  # even with a matching digest in the card
    with pytest.raises(ExportError, match=r"fe\.safetensors is not a valid safetensors file"):
        ExportedModel.load(copy)
    assert not marker.exists()


def test_a_changed_file_is_refused_with_its_name(copy):
    path = copy / "alignability.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=r"alignability\.safetensors: its SHA-256 .* differs from the one in model\.json"):
        ExportedModel.load(copy)


def test_weights_that_do_not_fit_the_card_are_refused_with_their_name(copy, tmp_path):
    other = _make_export(tmp_path / "other", alignability=False)  # same architecture, other widths
    card = json.loads((other / "model.json").read_text())
    card["model"]["model_kwargs"] = {"widths": [16, 16, 32]}
    from finepseudo.models.video import build_video_model

    save_export(tmp_path / "wide", card, build_video_model("r2plus1d_tiny", 3, widths=[16, 16, 32]))
    shutil.copy(tmp_path / "wide/fe.safetensors", copy / "fe.safetensors")
    _set_sha(copy, "fe.safetensors")
    with pytest.raises(ExportError, match=r"fe\.safetensors does not fit f_E \(r2plus1d_tiny, 3 classes\)"):
        ExportedModel.load(copy)
    # a card that claims another number of classes than the weights hold
    shutil.copy(other / "fe.safetensors", copy / "fe.safetensors")
    _set_sha(copy, "fe.safetensors")
    card = json.loads((copy / "model.json").read_text())
    card["model"]["num_classes"] = 4
    card["classes"].append({"index": 3, "name": "reverse pike"})
    (copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ExportError, match=r"fe\.safetensors does not fit f_E \(r2plus1d_tiny, 4 classes\).*fc\.weight"):
        ExportedModel.load(copy)


def test_an_unknown_card_version_or_a_missing_file_is_refused_with_its_name(copy):
    card = json.loads((copy / "model.json").read_text())
    (copy / "model.json").write_text(json.dumps({**card, "card_version": 2}))
    with pytest.raises(ExportError, match=r"model\.json: card_version 2 is not one this finepseudo reads"):
        ExportedModel.load(copy)
    del card["preprocessing"]["clip_frames"]
    (copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ExportError, match=r"model\.json is not a valid model card.*preprocessing\.clip_frames' is missing"):
        ExportedModel.load(copy)
    (copy / "model.json").write_text(json.dumps({**card, "preprocessing": {**card["preprocessing"], "clip_frames": 4}}))
    (copy / "alignability.safetensors").unlink()
    with pytest.raises(ExportError, match=r"alignability\.safetensors not found: model\.json lists it"):
        ExportedModel.load(copy)
    r = _cli(copy.parent, copy / "README.md", "--out", copy / "p.tsv")
    assert r.returncode == 2 and "model.json not found" in r.stderr


# ------------------------------------------------------------------------------------------- videos in, rows out

def test_a_video_shorter_than_a_clip_is_padded_as_evaluation_does_and_says_so(export, tmp_path):
    from finepseudo.data.frames import decode_video, sample_indices

    short = _video(tmp_path / "short.mp4", 2)
    model = ExportedModel.load(export)
    table = model.predict([short])
    row = table.iloc[0]
    assert row["status"] == "padded" and row["frames"] == 2
    assert "2 frame(s), fewer than the 4 a clip takes: frames repeated" in row["reason"]
    # the frames are those the workflow's extraction stores for such a video: each decoded frame repeated
    frames, used, _ = model.decode(short)
    assert used == 2 and list(sample_indices(2, 8)) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert np.array_equal(frames, decode_video(short, 16)[sample_indices(2, 8)])
    pred = model.predict_frames(frames)
    assert row["pred"] == pred.pred[0] and row["confidence"] == round(float(pred.probs[0].max()), 6)
    assert row["top1_prob"] == round(float(pred.calibrated[0].max()), 6)


def test_a_corrupt_video_gets_a_row_with_its_reason_and_the_others_are_predicted(export, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    good = _video(folder / "a_good.mp4", 20)
    _video(folder / "c_good.mp4", 12)
    (folder / "b_corrupt.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # the mp4 index is lost
    (folder / "d_empty.mp4").write_bytes(b"")
    (folder / "notes.txt").write_text("not a video: left out of a folder's listing")
    model = ExportedModel.load(export)
    table = model.predict(folder)
    assert table["video"].tolist() == ["a_good", "b_corrupt", "c_good", "d_empty"]
    st = table.set_index("video")
    assert st.loc["a_good", "status"] == st.loc["c_good", "status"] == "ok"
    assert st.loc["b_corrupt", "status"] == st.loc["d_empty", "status"] == "failed"
    assert "b_corrupt.mp4" in st.loc["b_corrupt", "reason"] and "truncated, damaged or not a video" in st.loc[
        "b_corrupt", "reason"]
    assert "d_empty.mp4" in st.loc["d_empty", "reason"] and "empty (0 bytes)" in st.loc["d_empty", "reason"]
    assert st.loc[["a_good", "c_good"], "pA_name"].isin(CLASSES).all()
    # the console command: the same rows, every video listed, exit status 1 and the failures named
    r = _cli(export, folder, "--out", tmp_path / "p.tsv", "--page", tmp_path / "p.html", "--no-progress",
             "--threads", "1")
    assert r.returncode == 1, r.stderr
    assert "could not read " + str(folder / "b_corrupt.mp4") in r.stderr and "2 failed, 2 ok" in r.stderr
    cli = pd.read_csv(tmp_path / "p.tsv", sep="\t", keep_default_na=False)
    assert cli["video"].tolist() == table["video"].tolist() and (cli["status"] == table["status"]).all()
    ok = table["status"] == "ok"
    assert (cli.loc[ok, "pred"].astype(int) == table.loc[ok, "pred"].astype(int)).all()
    assert (cli.loc[ok, "top1_prob"].astype(float) == table.loc[ok, "top1_prob"].astype(float)).all()
    page = (tmp_path / "p.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and page.count("class='failed'") == 2


def test_prediction_streams_the_videos(export, tmp_path):
    """Videos are read a batch ahead, not all at once: the row of the first video comes out before the fifth
    video is asked for, and rows come in order."""
    from finepseudo.export.stream import iter_rows
    from finepseudo.export.videos import VideoItem

    good = _video(tmp_path / "good.mp4", 10)
    pulled = []

    def items():
        for i in range(12):
            pulled.append(i)
            yield VideoItem(f"v{i:02d}", str(good if i % 3 == 0 else tmp_path / f"missing{i}.mp4"))

    rows = iter_rows(ExportedModel.load(export), items(), batch_size=2, workers=1)
    first, frames = next(rows)
    assert first["video"] == "v00" and first["status"] == "ok" and frames.shape == (8, 16, 16, 3)
    assert len(pulled) <= 4  # this batch and the next
    rest = [r for r, _ in rows]
    assert [r["video"] for r in rest] == [f"v{i:02d}" for i in range(1, 12)]
    assert [r["status"] for r in rest] == ["ok" if i % 3 == 0 else "failed" for i in range(1, 12)]


# ------------------------------------------------------------------------------- the exports of the tiny run

RUNS = [("supervised", "50"), ("supervised_scratch", "50"), ("supervised_full", "100"), ("pl", "50"),
        ("fa_only", "50"), ("finepseudo", "50")]


@pytest.mark.workflow
def test_every_run_is_exported_with_the_model_the_report_scores(tiny_run):
    res = tiny_run / "synthdive"
    checked_te = []
    for method, frac in RUNS:
        folder = res / f"export/{method}/frac{frac}_seed0"
        card = read_card(folder)
        m = json.loads((res / f"eval/{method}/frac{frac}_seed0/metrics.json").read_text())
        assert card["model"]["source"] == m["model"] and card["model"]["selected_round"] == m.get("selected_round")
        lo, hi = card["evaluation"]["top1_ci95"]
        assert card["evaluation"]["top1"] == m["top1"] and lo <= m["top1"] <= hi
        assert (card["alignability"] is not None) == (method in ("fa_only", "finepseudo")), method
        assert card["provenance"]["config_sha256"] == hashlib.sha256(
            json.dumps(card["provenance"]["config"], sort_keys=True).encode()).hexdigest()
        assert "threads" not in card["provenance"]["config"] and "predict" not in card["provenance"]["config"]
        assert {"torch", "safetensors", "ffmpeg", "python"} <= set(card["software"])
        # the weights are the scored checkpoint's
        model = ExportedModel.load(folder)
        ckpt = torch.load(tiny_run.parent / m["model"], weights_only=True)["state_dict"]
        assert all(torch.equal(v, ckpt[k]) for k, v in model.fe.state_dict().items())
        # T_E is the one the rounds fit for this f_E on validation, where a round fitted one
        t_e = card["calibration"]["temperature"]
        if method == "supervised":  # the round-0 f_E of the pseudo-labeling methods
            assert t_e == json.loads((res / "methods/pl/frac50_seed0/hparams.json").read_text())["values"]["T_E"]
            checked_te.append(method)
        r = m.get("selected_round")
        if method in ("pl", "finepseudo") and r < 2:  # round r + 1 pseudo-labeled with this f_E
            info = json.loads((res / f"methods/{method}/frac50_seed0/round{r + 1}/pseudo_labels.json").read_text())
            if info["T_E"] is not None:  # the log-linear pool fits (alpha, beta) on the raw p_E instead
                assert t_e == info["T_E"]
                checked_te.append(method)
            else:
                assert info.get("combine") == "loglinear" and len(info["weights"]) == 2, method
    assert checked_te
    html = (tiny_run / "report.html").read_text()
    assert "Exported models" in html and all(f"results/synthdive/export/{m}/frac{f}_seed0" in html for m, f in RUNS)


@pytest.mark.workflow
def test_the_rule_the_command_and_the_api_give_the_evaluation_s_predictions(tiny_run, tmp_path):
    """The test videos predicted from their files with the finepseudo export, three ways, give exactly (to the six
    decimals the evaluation writes) the evaluation's predictions and probabilities; phi_A's class and p_A are those
    of the round's pseudo-labels."""
    from finepseudo.data.frames import FrameStore

    wd = tmp_path / "wd"
    shutil.copytree(tiny_run.parent, wd, symlinks=True)
    res = wd / "results/synthdive"
    test = pd.read_csv(res / "splits/frac50_seed0/test.tsv", sep="\t", dtype={"video": str})
    (wd / "new_videos").mkdir()
    for v in test["video"]:
        shutil.copy(res / f"raw/videos/{v}.mp4", wd / "new_videos")
    # 1. the rule
    snakemake(wd, "results/synthdive/predict/new_videos/predictions.tsv", "--config",
              "predict={videos_dir: new_videos, ranges: results/synthdive/manifest.tsv}")
    rule = pd.read_csv(res / "predict/new_videos/predictions.tsv", sep="\t", dtype={"video": str}, keep_default_na=False)
    ev = pd.read_csv(res / "eval/finepseudo/frac50_seed0/predictions.tsv", sep="\t", dtype={"video": str})
    assert rule["video"].tolist() == ev["video"].tolist() and (rule["status"] == "ok").all()
    assert rule["pred"].tolist() == ev["pred"].tolist() and rule["confidence"].tolist() == ev["confidence"].tolist()
    assert (rule["pred_name"] == rule["pred"].map(dict(enumerate(pd.read_csv(res / "classes.tsv", sep="\t")["name"])))).all()
    assert "page.html" in {p.name for p in (res / "predict/new_videos").iterdir()}
    # 2. the console command (one torch thread, as the evaluation job ran): the same table, byte for byte
    export = "results/synthdive/export/finepseudo/frac50_seed0"
    r = _cli(export, "new_videos", "--ranges", "results/synthdive/manifest.tsv", "--out", "cli.tsv", "--threads", "1",
             "--no-progress", cwd=wd)
    assert r.returncode == 0, r.stderr
    assert (wd / "cli.tsv").read_text() == (res / "predict/new_videos/predictions.tsv").read_text()
    # 3. the Python API, on the files and on frame arrays (the shards the evaluation read)
    model = ExportedModel.load(wd / export)
    api = model.predict(wd / "new_videos", ranges=res / "manifest.tsv")
    cols = [c for c in rule.columns if c not in ("path", "reason")]
    assert api[cols].astype(str).equals(rule[cols].astype(str))
    shards = sorted(str(p) for p in (res / "frames").glob("shard*.npy"))
    store = FrameStore(shards, test["video"].tolist())
    pred = model.predict_frames(store[0:len(store)])
    assert pred.pred.tolist() == ev["pred"].tolist()
    assert [round(float(x), 6) for x in pred.probs.max(1)] == ev["confidence"].tolist()
    # phi_A as the chosen round's pseudo-labels computed it, on the unlabeled videos' frames
    rnd = json.loads((res / "eval/finepseudo/frac50_seed0/metrics.json").read_text())["selected_round"]
    pl = pd.read_csv(res / f"methods/finepseudo/frac50_seed0/round{rnd}/pseudo_labels.tsv", sep="\t", dtype={"video": str})
    unl = FrameStore(shards, pl["video"].tolist())
    pa = model.predict_frames(unl[0:len(unl)]).p_a
    assert pa.argmax(1).tolist() == pl["fa_label"].tolist()
    assert [round(float(x), 6) for x in pa.max(1)] == pl["fa_conf"].tolist()
    # and an export without phi_A (the supervised warm-up), on its frames
    sup = ExportedModel.load(res / "export/supervised/frac50_seed0")
    ev_sup = pd.read_csv(res / "eval/supervised/frac50_seed0/predictions.tsv", sep="\t", dtype={"video": str})
    p_sup = sup.predict_frames(store[0:len(store)])
    assert p_sup.pred.tolist() == ev_sup["pred"].tolist() and p_sup.p_a is None
    assert [round(float(x), 6) for x in p_sup.probs.max(1)] == ev_sup["confidence"].tolist()
