"""Self-supervised f_E pre-training (TCLR local-local contrastive): sampling, loss, learning,
determinism, no labels read, and the checkpoint as the supervised step's initialisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo.models.augment import DEFAULT_AUGMENT
from finepseudo.data.frames import write_shard
from finepseudo.models.video import build_video_model
from finepseudo.models.ssl import info_nce, pretrain_fe_step, pretrain_video_ssl, segment_indices

KW = {"widths": (8, 16), "s_strides": (2, 2), "t_strides": (1, 2), "stem_width": 8}
SSL = {"epochs": 2, "batch_size": 4, "lr": 3e-3, "clip_frames": 4, "segments": 2, "temperature": 0.1,
       "proj_dim": 16}
FE = {"arch": "r2plus1d_tiny", "clip_frames": 8, "batch_size": 4, "lr": 3e-3, "weight_decay": 0.05, "augment": {}}


pytestmark = pytest.mark.usefixtures("one_thread")


def blobs(n: int = 12, t: int = 16, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Each video: a bright 4x4 blob moving from a random start at a random velocity (bouncing off
    the borders) over a static scene, a uniform colour with two static distractor squares (like
    SynthDive's per-video distractors and lighting). uint8 (N, T, S, S, 3)."""
    rng = np.random.default_rng(seed)
    scene = np.broadcast_to(rng.integers(0, 100, size=(n, 1, 1, 3)), (n, size, size, 3)).copy()
    for i in range(n):
        for _ in range(2):
            r, c = rng.integers(0, size - 3, 2)
            scene[i, r:r + 3, c:c + 3] = rng.integers(0, 200, 3)
    clips = np.repeat(scene[:, None], t, axis=1).astype(np.uint8)
    for i in range(n):
        pos = rng.uniform(0, size - 4, 2)
        vel = rng.uniform(-1.5, 1.5, 2)
        for f in range(t):
            r, c = np.clip(np.round(pos), 0, size - 4).astype(int)
            clips[i, f, r:r + 4, c:c + 4] = 250
            pos = pos + vel
            vel = np.where((pos < 0) | (pos > size - 4), -vel, vel)
    return torch.from_numpy(clips)


def tiny_model(seed: int = 0, classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_video_model("r2plus1d_tiny", classes, **KW)


def run_ssl(model: torch.nn.Module, clips: torch.Tensor, seed: int = 0, **kw) -> list[dict[str, float]]:
    cfg = {**SSL, "weight_decay": 0.01, **kw}
    return pretrain_video_ssl(model, clips, seed=seed, log=lambda s: None, **cfg)


def test_segment_indices_stay_in_their_segment():
    rng = np.random.default_rng(0)
    idx = segment_indices(32, 8, 2, 5, rng, DEFAULT_AUGMENT)
    assert idx.shape == (5, 2, 2, 8) and idx.dtype == np.int64
    assert (idx[:, 0] < 16).all() and (idx[:, 1] >= 16).all() and (idx[:, 1] < 32).all()
    assert (np.diff(idx, axis=-1) >= 0).all()
    assert not np.array_equal(idx[:, :, 0], idx[:, :, 1])  # the two views are drawn independently
    # three segments of 10 stored frames: [0, 3), [3, 6), [6, 10); short segments repeat frames
    idx = segment_indices(10, 4, 3, 2, rng, {"enabled": False})
    assert idx[0, :, 0].tolist() == [[0, 1, 1, 2], [3, 4, 4, 5], [6, 7, 8, 9]]
    with pytest.raises(ValueError, match="segments"):
        segment_indices(4, 2, 5, 1, rng, DEFAULT_AUGMENT)


def test_info_nce_pairs_and_negatives():
    z = torch.eye(8)[:6].repeat_interleave(2, dim=0)  # rows 2i, 2i+1 identical, others orthogonal
    losses, hit = info_nce(z, 0.1)
    assert losses.shape == (12,) and bool(hit.all()) and float(losses.max()) < 1e-3
    # swapping partners (2i with 2i+2) breaks every pair
    losses2, hit2 = info_nce(z[[2, 1, 0, 3, 6, 5, 4, 7, 10, 9, 8, 11]], 0.1)
    assert not bool(hit2.any()) and float(losses2.mean()) > 1.0
    with pytest.raises(ValueError, match="pairs"):
        info_nce(torch.randn(5, 8), 0.1)


def test_pretraining_learns_and_leaves_the_head_alone():
    clips = blobs(n=16)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs: list[str] = []
    hist = pretrain_video_ssl(model, clips, epochs=10, batch_size=8, lr=1e-2, weight_decay=0.01, clip_frames=4,
                              segments=2, temperature=0.1, proj_dim=16, seed=0, log=logs.append)
    assert [h["epoch"] for h in hist] == list(range(1, 11))
    assert set(hist[0]) == {"epoch", "loss", "acc", "clips_per_s", "seconds", "eta"}
    assert len(logs) == 10 and "loss" in logs[0] and "clips/s" in logs[0] and "left" in logs[0]
    after = model.state_dict()
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert "stem.0.weight" in changed and "stages.1.1.conv2.3.weight" in changed
    assert not any(k.startswith("fc.") for k in changed)  # the classifier head is not used
    # the loss falls (chance level: log(31) = 3.43 with 32 clips per batch)
    first, last = np.mean([h["loss"] for h in hist[:2]]), np.mean([h["loss"] for h in hist[-2:]])
    assert last < first - 0.3, [round(h["loss"], 3) for h in hist]


def test_pretraining_is_deterministic():
    clips = blobs()
    states = []
    for seed in (3, 3, 4):
        model = tiny_model()
        hist = run_ssl(model, clips, seed=seed)
        states.append(({k: v.clone() for k, v in model.state_dict().items()}, [h["loss"] for h in hist]))
    (sa, la), (sb, lb), (sc, _) = states
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
    assert la == lb
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def _write_dataset(root, labels) -> tuple[str, list[str]]:
    """Two shards of blob videos and a manifest (train and test splits) with the given label column."""
    clips = blobs(n=14, size=16, seed=1)
    videos = [f"v{i:02d}" for i in range(14)]
    shards = []
    for j, part in enumerate((slice(0, 7), slice(7, 14))):
        path = root / f"shard{j}.npy"
        write_shard(path, videos[part], clips[part])
        shards.append(str(path))
    table = pd.DataFrame({"video": videos, "split": ["train"] * 10 + ["test"] * 4, "path": "x.mp4"})
    if labels is not None:
        table.insert(1, "label", labels)
    manifest = root / "manifest.tsv"
    table.to_csv(manifest, sep="\t", index=False)
    return str(manifest), shards


def _step(tmp_path, name: str, labels) -> dict:
    d = tmp_path / name
    d.mkdir()
    manifest, shards = _write_dataset(d, labels)
    out = d / "ssl.pt"
    pretrain_fe_step(manifest=manifest, shards=shards, out_model=str(out), out_history=str(d / "h.tsv"), fe=FE,
                     ssl=SSL, seed=0, device="cpu", threads=1, log=lambda s: None)
    return {"path": out, "ckpt": torch.load(out, weights_only=True), "history": pd.read_csv(d / "h.tsv", sep="\t")}


def test_step_reads_no_labels(tmp_path):
    runs = {
        "labels": _step(tmp_path, "a", np.arange(14) % 3),
        "scrambled": _step(tmp_path, "b", np.random.default_rng(0).permutation(np.arange(14) % 3)),
        "garbage": _step(tmp_path, "c", ["not-a-label\x01"] * 13 + ["3.5e9"]),
        "no column": _step(tmp_path, "d", None),
    }
    ref = runs["labels"]["ckpt"]
    assert ref["metadata"]["stage"] == "ssl" and ref["metadata"]["n_train"] == 10  # the train split only
    assert not any(k.startswith("fc.") for k in ref["state_dict"])  # the head is not saved
    assert list(runs["labels"]["history"].columns) == ["epoch", "loss", "acc", "clips_per_s", "seconds", "eta"]
    assert len(runs["labels"]["history"]) == SSL["epochs"]
    for name, run in runs.items():
        sd = run["ckpt"]["state_dict"]
        assert sd.keys() == ref["state_dict"].keys(), name
        for k in sd:
            assert torch.equal(sd[k], ref["state_dict"][k]), (name, k)


def test_checkpoint_initialises_the_classifier(tmp_path):
    run = _step(tmp_path, "a", None)
    path, sd = run["path"], run["ckpt"]["state_dict"]
    torch.manual_seed(11)
    fresh = build_video_model("r2plus1d_tiny", 5)
    torch.manual_seed(11)
    model = build_video_model("r2plus1d_tiny", 5, weights=path)
    for k, v in model.state_dict().items():
        if k.startswith("fc."):
            assert torch.equal(v, fresh.state_dict()[k]), k  # the head keeps its fresh init
        else:
            assert torch.equal(v, sd[k]), k  # the backbone is the pre-trained one
    assert any(not torch.equal(sd[k], fresh.state_dict()[k]) for k in sd if sd[k].is_floating_point())
    # an SSL checkpoint never sets the head, even one of the right shape
    ckpt = dict(run["ckpt"])
    ckpt["state_dict"] = {**sd, "fc.weight": torch.ones(5, 64), "fc.bias": torch.ones(5)}
    torch.save(ckpt, tmp_path / "with_head.pt")
    torch.manual_seed(11)
    model = build_video_model("r2plus1d_tiny", 5, weights=tmp_path / "with_head.pt")
    assert torch.equal(model.fc.weight, fresh.fc.weight) and torch.equal(model.fc.bias, fresh.fc.bias)
    # a supervised checkpoint with the head still loads it
    ckpt["metadata"] = {"stage": "supervised"}
    torch.save(ckpt, tmp_path / "supervised.pt")
    model = build_video_model("r2plus1d_tiny", 5, weights=tmp_path / "supervised.pt")
    assert torch.equal(model.fc.weight, torch.ones(5, 64))
    # a missing backbone key is still an error
    ckpt = dict(run["ckpt"])
    ckpt["state_dict"] = {k: v for k, v in sd.items() if k != "stages.0.0.bn1.running_mean"}
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(RuntimeError, match="stages.0.0.bn1.running_mean"):
        build_video_model("r2plus1d_tiny", 5, weights=tmp_path / "broken.pt")
