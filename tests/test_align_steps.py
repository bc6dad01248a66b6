"""mine_pairs_step and train_alignability_step (finepseudo.align.steps) called directly on a tiny frame store.

The expected triplets are computed here by hand: the f_A embeddings of the stored frames, hard DTW over the
cosine cost written as a plain double loop, the hardest (farthest) same-class positive and the hardest
(nearest) other-class negative."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo.align.steps import load_fa, mine_pairs_step, save_fa, train_alignability_step
from finepseudo.align.alignability import FrameEncoder, ScoreHead
from finepseudo.data.frames import write_shard
from fa_fixtures import seeded_encoder, warped_class_clips

pytestmark = pytest.mark.usefixtures("one_thread")

T = 8  # stored frames per video = frames f_A embeds, so f_A sees every stored frame in order
ARCH = {"dim": 8, "width": 4, "layers": 0, "pool": 2}
#: 9 labeled videos: classes 0-2 with 3, 2 and 3 videos, class 3 with a single one (no positive but itself)
LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 3]
VIDEOS = [f"v{i}" for i in range(len(LABELS))]
CFG = {"num_frames": T, **ARCH, "gamma": 0.1, "margin": 0.1, "omega": 1.0,
       "avml": {"epochs": 6, "batch_size": 4, "lr": 0.01}}


def _clips(seed: int = 0) -> np.ndarray:
    """uint8 (N, T, 16, 16, 3): LABELS' videos, warped in time, with pixel noise of std 20."""
    return warped_class_clips(LABELS, T, np.random.default_rng(seed), noise=20)


def _embed(fa: FrameEncoder, clips: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return fa.eval()(torch.from_numpy(clips)).numpy().astype(np.float64)


def _dtw(u: np.ndarray, v: np.ndarray) -> float:
    """Hard DTW of the cosine cost between two unit-vector sequences, divided by len(u) + len(v)."""
    c = 1.0 - u @ v.T
    r = np.full((len(u) + 1, len(v) + 1), np.inf)
    r[0, 0] = 0.0
    for i in range(1, len(u) + 1):
        for j in range(1, len(v) + 1):
            r[i, j] = c[i - 1, j - 1] + min(r[i - 1, j - 1], r[i - 1, j], r[i, j - 1])
    return r[-1, -1] / (len(u) + len(v))


def _all_dtw(emb: np.ndarray) -> np.ndarray:
    return np.array([[_dtw(a, b) for b in emb] for a in emb])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two shards, labeled.tsv (with one more video that has no frames), an f_A checkpoint (as GITDL writes
    it) and the triplets mined from it."""
    d = tmp_path_factory.mktemp("align")
    clips = _clips()
    write_shard(d / "shard0.npy", VIDEOS[:5], clips[:5])
    write_shard(d / "shard1.npy", VIDEOS[5:], clips[5:])
    pd.DataFrame({"video": VIDEOS + ["no_frames"], "label": LABELS + [1]}).to_csv(d / "labeled.tsv", sep="\t",
                                                                                  index=False)
    fa = seeded_encoder(clips, ARCH)
    save_fa(str(d / "gitdl_fa.pt"), fa, None, {"arch": ARCH, "stage": "gitdl", "num_frames": T})
    shards = [str(d / "shard0.npy"), str(d / "shard1.npy")]
    mine_pairs_step(model=str(d / "gitdl_fa.pt"), labeled=str(d / "labeled.tsv"), shards=shards,
                    out_triplets=str(d / "triplets.tsv"), out_distances=str(d / "dtw.npz"), backend="cpu",
                    threads=1, device="cpu", log=lambda s: None)
    return {"dir": d, "clips": clips, "fa": fa, "shards": shards}


# ------------------------------------------------------------------------------------------- mine_pairs


def test_mine_pairs_takes_the_dtw_nearest_other_class_video_as_negative(store):
    emb = _embed(store["fa"], store["clips"])
    d = _all_dtw(emb)
    labels = np.array(LABELS)
    other = labels[:, None] != labels[None, :]
    # the fixture discriminates DTW from a per-timestamp distance: for some anchors the nearest other-class
    # video differs between the two
    per_ts = np.array([[np.mean(1.0 - (a * b).sum(-1)) for b in emb] for a in emb])
    assert (np.where(other, d, np.inf).argmin(1) != np.where(other, per_ts, np.inf).argmin(1)).any()

    trip = pd.read_csv(store["dir"] / "triplets.tsv", sep="\t", dtype={"anchor": str, "positive": str,
                                                                       "negative": str})
    assert trip["anchor"].tolist() == VIDEOS  # the video without frames is left out
    for i, row in trip.iterrows():
        masked = np.where(other[i], d[i], np.inf)
        j = int(masked.argmin())
        assert np.sort(masked)[1] - masked[j] > 1e-4  # no near tie: the expected negative is unambiguous
        assert row["negative"] == VIDEOS[j] and row["negative_label"] == LABELS[j]
        assert row["d_neg"] == pytest.approx(d[i, j], abs=1e-5)
        assert row["label"] == LABELS[i]
        same = np.flatnonzero((labels == labels[i]) & (np.arange(len(labels)) != i))
        if len(same):  # the hardest positive: the farthest same-class video
            k = int(same[d[i, same].argmax()])
            assert row["positive"] == VIDEOS[k] and row["d_pos"] == pytest.approx(d[i, k], abs=1e-5)
        else:  # a class with one labeled video: the anchor is its own positive
            assert row["positive"] == VIDEOS[i] and row["d_pos"] == pytest.approx(0.0, abs=1e-6)


def test_mine_pairs_writes_the_all_pairs_distances(store):
    z = np.load(store["dir"] / "dtw.npz")
    assert z["videos"].tolist() == VIDEOS and z["labels"].tolist() == LABELS
    np.testing.assert_allclose(z["distances"], _all_dtw(_embed(store["fa"], store["clips"])), atol=1e-5)
    assert float(z["seconds"]) >= 0.0 and z["distances"].dtype == np.float32


# ----------------------------------------------------------------------------------- train_alignability


def _train(store, name: str, loss: str = "av", triplets: str | None = None, cfg: dict = CFG, log=lambda s: None):
    d = store["dir"]
    out, hist = d / f"{name}.pt", d / f"{name}.history.tsv"
    train_alignability_step(model=str(d / "gitdl_fa.pt"), labeled=str(d / "labeled.tsv"),
                            triplets=triplets or str(d / "triplets.tsv"), shards=store["shards"], out_model=str(out),
                            out_history=str(hist), cfg=cfg, loss=loss, seed=0, device="cpu", threads=1, log=log)
    return load_fa(str(out)), pd.read_csv(hist, sep="\t")


def _separation(fa: FrameEncoder, clips: np.ndarray) -> float:
    """Mean hard-DTW distance of different-class pairs minus that of same-class pairs (higher: better)."""
    d = _all_dtw(_embed(fa, clips))
    labels = np.array(LABELS)
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    return float(d[~same].mean() - d[same & off].mean())


@pytest.fixture(scope="module")
def trained(store):
    return _train(store, "avml")


def test_train_alignability_writes_a_loadable_fa_and_fs_and_its_history(store, trained):
    (fa, score, meta), hist = trained
    assert isinstance(fa, FrameEncoder) and isinstance(score, ScoreHead)
    assert meta["stage"] == "avml" and meta["loss"] == "av" and meta["seed"] == 0
    assert meta["arch"] == ARCH and meta["num_frames"] == T and meta["gamma"] == CFG["gamma"]
    assert meta["avml"] == CFG["avml"]
    assert hist["epoch"].tolist() == list(range(1, CFG["avml"]["epochs"] + 1))
    assert {"loss", "l_at", "l_score", "d_ap", "d_an"} <= set(hist.columns)
    # f_A was trained: its embeddings moved away from the GITDL checkpoint's
    assert not np.allclose(_embed(fa, store["clips"]), _embed(store["fa"], store["clips"]), atol=1e-3)


def test_train_alignability_lowers_its_loss_and_separates_the_classes(store, trained):
    (fa, score, _), hist = trained
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]
    before, after = _separation(store["fa"], store["clips"]), _separation(fa, store["clips"])
    assert after > before + 0.05, (before, after)
    # f_S: a same-class pair scores higher than a different-class pair on average
    emb = _embed(fa, store["clips"])
    d = torch.as_tensor(_all_dtw(emb))
    labels = np.array(LABELS)
    same = torch.as_tensor((labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool))
    diff = torch.as_tensor(labels[:, None] != labels[None, :])
    with torch.no_grad():
        s = score.prob(d)
    assert float(s[same].mean()) > float(s[diff].mean())


def test_train_alignability_is_deterministic_and_reads_the_triplets(store, trained):
    (fa, score, _), _ = trained
    (fa2, score2, _), _ = _train(store, "avml_again")
    assert all(torch.equal(a, b) for a, b in zip(fa.state_dict().values(), fa2.state_dict().values()))
    assert torch.equal(score.shift, score2.shift)
    # other mined negatives (each anchor's farthest other-class video instead of its nearest) change f_A
    d = store["dir"]
    trip = pd.read_csv(d / "triplets.tsv", sep="\t", dtype={"anchor": str, "positive": str, "negative": str})
    dist = np.load(d / "dtw.npz")["distances"]
    labels = np.array(LABELS)
    far = np.where(labels[:, None] != labels[None, :], dist, -np.inf).argmax(1)
    assert (far != [VIDEOS.index(v) for v in trip["negative"]]).any()
    trip["negative"] = [VIDEOS[j] for j in far]
    trip.to_csv(d / "triplets_far.tsv", sep="\t", index=False)
    (fa3, _, _), _ = _train(store, "avml_far", triplets=str(d / "triplets_far.tsv"))
    assert not all(torch.equal(a, b) for a, b in zip(fa.state_dict().values(), fa3.state_dict().values()))


def test_train_alignability_loss_ablations(store, trained):
    """loss ``at`` trains f_A through L_AT only: f_S keeps its initial values; ``score`` trains f_S."""
    init = ScoreHead()
    cfg = {**CFG, "avml": {**CFG["avml"], "epochs": 2}}
    (_, score_at, meta_at), hist_at = _train(store, "at", loss="at", cfg=cfg)
    assert meta_at["loss"] == "at"
    assert torch.equal(score_at.shift, init.shift) and torch.equal(score_at.log_scale, init.log_scale)
    (_, score_s, _), hist_s = _train(store, "score", loss="score", cfg=cfg)
    assert not torch.equal(score_s.shift, init.shift)
    # the reported loss is the trained objective: L_AT alone, L_Score alone
    np.testing.assert_allclose(hist_at["loss"], hist_at["l_at"], rtol=1e-4)
    np.testing.assert_allclose(hist_s["loss"], CFG["omega"] * hist_s["l_score"], rtol=1e-4)


def test_train_alignability_in_two_processes(store, trained):
    """``alignability.gpus: 2`` (the rule's cfg) trains AVML in two DDP processes (gloo on the CPU): the log
    says so, and the result is a loadable f_A + f_S that trained (tests/test_ddp.py compares the loss curves
    with one process's)."""
    cfg = {**CFG, "gpus": 2, "avml": {**CFG["avml"], "epochs": 2}}
    logs: list[str] = []
    (fa, score, meta), hist = _train(store, "ddp", cfg=cfg, log=logs.append)
    assert any(line.startswith("[avml, 2 processes] epoch 2/2") for line in logs), logs
    assert score is not None and meta["stage"] == "avml"
    assert hist["loss"].iloc[1] < hist["loss"].iloc[0]
    assert not torch.equal(score.shift, ScoreHead().shift)


def test_train_alignability_refuses_triplets_that_do_not_match_the_labeled_videos(store):
    """A labeled video without a row, or whose negative is unknown, is an error naming the triplets file; it
    never falls back to the anchor as its own negative."""
    d = store["dir"]
    trip = pd.read_csv(d / "triplets.tsv", sep="\t", dtype={"anchor": str, "positive": str, "negative": str})
    for name, bad in (("dropped", trip.iloc[1:]), ("unknown", trip.assign(negative=["nope"] + list(trip["negative"][1:])))):
        path = d / f"triplets_{name}.tsv"
        bad.to_csv(path, sep="\t", index=False)
        with pytest.raises(ValueError, match=rf"triplets {path}.*rerun mine_pairs"):
            _train(store, f"avml_{name}", triplets=str(path))
