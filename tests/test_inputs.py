"""What each job reads (finepseudo.inputs), called directly (no Snakemake): the rules' input functions for the
default config and the tiny one, with wildcards given as a dict or as attributes."""
import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from finepseudo import inputs
from finepseudo.config import validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def _deep(base: dict, patch: dict) -> dict:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _deep(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _config(*patches: dict) -> dict:
    """config/config.yaml with ``patches`` merged in, validated (schema defaults filled) as the workflow does."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for p in patches:
        cfg = _deep(cfg, p)
    return validate_config(cfg, SCHEMA)


DEFAULT = _config()
TINY = _config(yaml.safe_load((ROOT / "config/test.yaml").read_text()))

D = "results/synthdive"


def _frames(n: int) -> dict:
    return {
        "shards": [f"{D}/frames/shard{k}.npy" for k in range(n)],
        "shard_index": [f"{D}/frames/shard{k}.status.tsv" for k in range(n)],
    }


def test_train_fe_default_and_tiny():
    wc = {"dataset": "synthdive", "sup": "supervised", "frac": "20", "seed": "0"}
    assert inputs.train_fe(DEFAULT, wc) == {
        "labeled": f"{D}/splits/frac20_seed0/labeled.tsv",
        "classes": f"{D}/classes.tsv",
        **_frames(4),
        "init": f"{D}/models/ssl/fe_ssl.pt",
        "weights": [],
    }
    scratch = inputs.train_fe(TINY, SimpleNamespace(sup="supervised_scratch", frac="50", seed="0"))
    assert "init" not in scratch and scratch["shards"] == _frames(2)["shards"]
    weights = _config({"fe": {"weights": "my/fe.pt"}})
    assert inputs.train_fe(weights, wc)["weights"] == ["my/fe.pt"]


def test_rounds_chain_encoders():
    run = f"{D}/methods/fa_only/frac50_seed0"
    r2 = {"method": "fa_only", "frac": "50", "seed": "0", "round": "2"}
    assert inputs.retrain_fe(TINY, r2) == {
        "fe": f"{run}/round1/fe.pt",
        "labeled": f"{D}/splits/frac50_seed0/labeled.tsv",
        "pseudo": f"{run}/round2/pseudo_labels.tsv",
        **_frames(2),
        "init": f"{D}/models/ssl/fe_ssl.pt",
        "weights": [],
    }
    r1 = {**r2, "round": "1"}
    assert inputs.previous_fe(TINY, r1) == f"{D}/models/supervised/frac50_seed0/fe.pt"
    assert inputs.previous_fa(TINY, r1) == f"{D}/alignability/frac50_seed0/avml_av_gitdl_fa.pt"
    assert inputs.previous_fa(TINY, r2) == f"{run}/round1/fa.pt"
    # the no-GITDL ablation starts its f_A from the AVML model trained from scratch
    assert inputs.fa_of_round(TINY, "finepseudo_no_gitdl", "50", "0", 1) == \
        f"{D}/alignability/frac50_seed0/avml_av_scratch_fa.pt"
    # PL uses no f_A; finepseudo does
    pl = inputs.pseudo_label(DEFAULT, {"method": "pl", "frac": "20", "seed": "1", "round": "1"})
    assert "fa" not in pl and pl["hparams"] == f"{D}/methods/pl/frac20_seed1/hparams.json"
    fp = inputs.pseudo_label(DEFAULT, {"method": "finepseudo", "frac": "20", "seed": "0", "round": "1"})
    assert fp["fa"] == f"{D}/alignability/frac20_seed0/avml_av_gitdl_fa.pt"
    assert set(fp) == {"fe", "hparams", "labeled", "val", "unlabeled", "classes", "shards", "shard_index", "fa"}


def test_select_round_names_every_round():
    ev = f"{D}/eval/pl/frac20_seed0"
    got = inputs.select_round(DEFAULT, {"method": "pl", "frac": "20", "seed": "0"})
    assert list(got) == ["hparams"] + [
        f"{key}_round{r}" for r in (1, 2) for key in ("val", "metrics", "per_class", "confusion", "predictions")
    ]
    assert got["val_round2"] == f"{ev}/round2/val_metrics.json"
    assert got["confusion_round1"] == f"{ev}/round1/confusion.tsv"


def test_export_model_inputs():
    wc = {"method": "finepseudo", "frac": "50", "seed": "0"}
    got = inputs.export_model(TINY, wc)
    run = f"{D}/methods/finepseudo/frac50_seed0"
    assert got["models"] == [f"{run}/round1/fe.pt", f"{run}/round2/fe.pt"]
    assert got["fa_models"] == [f"{D}/alignability/frac50_seed0/avml_av_gitdl_fa.pt", f"{run}/round1/fa.pt"]
    assert got["hparams"] == f"{run}/hparams.json"
    full = inputs.export_model(TINY, {"method": "supervised_full", "frac": "100", "seed": "0"})
    assert full["models"] == [f"{D}/models/supervised/frac100_seed0/fe.pt"]
    assert "hparams" not in full and "fa_models" not in full


def test_model_path_and_supervised_full():
    assert inputs.model_path(TINY, {"method": "supervised_scratch", "frac": "50", "seed": "0"}) == \
        f"{D}/models/supervised_scratch/frac50_seed0/fe.pt"
    with pytest.raises(inputs.InputError, match="100 % labels only"):
        inputs.model_path(TINY, {"method": "supervised_full", "frac": "50", "seed": "0"})


def test_baselines_and_pair_verification():
    wc = {"frac": "20", "seed": "0"}
    assert inputs.trivial_baselines(DEFAULT, wc)["ssl"] == f"{D}/models/ssl/fe_ssl.pt"
    assert "ssl" not in inputs.trivial_baselines(_config({"fe": {"init": "scratch"}}), wc)
    pv = inputs.pair_verification(DEFAULT, wc)
    assert pv["gitdl"] == f"{D}/alignability/pretrained/gitdl_fa.pt"
    assert pv["phases"] == "results/synthdive/raw/annotations/phases.json"


def test_lists_of_the_report():
    assert inputs.exports(TINY)[:2] == [f"{D}/export/supervised/frac50_seed0", f"{D}/export/supervised_scratch/frac50_seed0"]
    assert f"{D}/export/supervised_full/frac100_seed0" in inputs.exports(TINY)
    assert inputs.predict_outputs(TINY) == []


def test_real_dataset_annotations_and_shards(tmp_path):
    files = {k: f"ann/{k}.json" for k in ("train_annotations", "test_annotations", "vocab")}
    cfg = _config({"dataset": {"name": "diving48", "videos_dir": "rgb", **files}})
    assert inputs.build_manifest(cfg) == files
    assert inputs.videos_dir(cfg) == "rgb"
    bad = copy.deepcopy(cfg)
    bad["dataset"]["vocab"] = None
    with pytest.raises(inputs.InputError, match="set config key.*dataset.vocab"):
        inputs.build_manifest(bad)
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("video\tpath\tshard\nb\trgb/b.mp4\t1\na\trgb/a.mp4\t1\nc\trgb/c.mp4\t0\n")
    assert inputs.extract_frames(cfg, {"shard": "1"}, str(manifest)) == {
        "manifest": str(manifest), "videos": ["rgb/a.mp4", "rgb/b.mp4"]}
    # SynthDive's shard declares the generated folder, without reading the manifest
    assert inputs.extract_frames(TINY, {"shard": "0"}) == {
        "manifest": f"{D}/manifest.tsv", "videos": "results/synthdive/raw/videos"}


def test_prediction_run(tmp_path):
    videos = tmp_path / "clips"
    videos.mkdir()
    for name in ("b.mp4", "a.avi", "notes.txt"):
        (videos / name).write_bytes(b"")
    cfg = _config(yaml.safe_load((ROOT / "config/test.yaml").read_text()), {"predict": {"videos_dir": str(videos)}})
    assert inputs.predict_outputs(cfg) == [f"{D}/predict/clips/predictions.tsv", f"{D}/predict/clips/page.html"]
    got = inputs.predict_videos(cfg, {"name": "clips"})
    assert got["export"] == f"{D}/export/finepseudo/frac50_seed0"
    assert [Path(v).name for v in got["videos"]] == ["a.avi", "b.mp4"]
    with pytest.raises(inputs.InputError, match="not this config's prediction run"):
        inputs.predict_videos(cfg, {"name": "other"})
    with pytest.raises(inputs.InputError, match="set config key predict.videos_dir"):
        inputs.predict_videos(TINY, {"name": "clips"})
    untrained = _deep(cfg, {"predict": {"seed": 9}})
    with pytest.raises(inputs.InputError, match="which this config does not train"):
        inputs.predict_export(untrained)
