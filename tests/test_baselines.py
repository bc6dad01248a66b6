"""The trivial baselines (finepseudo.baselines): each classifier on small cases with a known answer, and the
step on a tiny frame store, writing what an evaluation writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo.baselines import trivial
from finepseudo.baselines.steps import OUTPUT_FILES, pixel_vectors, trivial_baselines_step
from finepseudo.data.frames import write_shard

pytestmark = pytest.mark.usefixtures("one_thread")

T, H = 8, 24  # stored frames per video, frame side in pixels


def _blob_video(path: list[tuple[int, int]], colour=(230, 60, 20)) -> np.ndarray:
    """uint8 (len(path), H, H, 3): a dark frame with a 6 x 6 coloured square whose top-left corner is at
    ``path[t]`` (row, column) in frame t."""
    v = np.full((len(path), H, H, 3), 15, np.uint8)
    for t, (r, c) in enumerate(path):
        v[t, r:r + 6, c:c + 6] = colour
    return v


#: The square moves left to right (class 0), right to left (class 1, the time-reversal of class 0) or top
#: to bottom (class 2), one position per frame.
PATHS = {0: [(9, 2 * k) for k in range(T)], 1: [(9, 2 * k) for k in reversed(range(T))],
         2: [(2 * k, 9) for k in range(T)]}
#: Monotone time warps (which original frame each of the T frames shows): holds and skips.
WARPS = [[0, 0, 1, 2, 4, 5, 7, 7], [0, 1, 1, 1, 3, 5, 6, 7], [0, 2, 3, 4, 4, 5, 6, 7], [0, 1, 2, 3, 4, 6, 7, 7]]


def _warped(label: int, warp: list[int], noise: float = 0.0, seed: int = 0) -> np.ndarray:
    v = _blob_video([PATHS[label][w] for w in warp]).astype(np.float64)
    v += np.random.default_rng(seed).normal(0.0, noise, v.shape)
    return np.clip(v, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------- pure functions


def test_frame_vectors_area_average_rgb_and_centre_each_frame():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (2, 3, 12, 12, 3))  # (N, T, 12, 12, 3)
    frames = np.kron(blocks, np.ones((1, 1, 2, 2, 1))).astype(np.uint8)  # every 2 x 2 block constant: 24 x 24
    v = trivial.frame_vectors(frames, 12)
    assert v.shape == (2, 3, 3 * 12 * 12) and v.dtype == np.float32
    expected = blocks.transpose(0, 1, 4, 2, 3).reshape(2, 3, -1) / 255.0  # channel-first, area average exact
    np.testing.assert_allclose(v, expected - expected.mean(axis=2, keepdims=True), atol=1e-6)
    assert np.abs(v.mean(axis=2)).max() < 1e-6  # centred per frame
    # a global brightness change does not move a frame's vector; a 3 x 3 average of 24 px (8 x 8 cells) is the cell mean
    np.testing.assert_allclose(trivial.frame_vectors(frames // 2 + 40, 12), trivial.frame_vectors(frames // 2, 12),
                               atol=1e-6)
    small = trivial.frame_vectors(frames, 3)
    cells = frames.reshape(2, 3, 3, 8, 3, 8, 3).mean(axis=(3, 5)).transpose(0, 1, 4, 2, 3).reshape(2, 3, -1) / 255
    np.testing.assert_allclose(small, cells - cells.mean(axis=2, keepdims=True), atol=1e-6)
    # colour counts: a red and a green frame of the same brightness pattern differ
    red, green = _blob_video([(9, 9)], (200, 0, 0)), _blob_video([(9, 9)], (0, 200, 0))
    d = trivial.cosine_distances(trivial.frame_vectors(red[None], 12)[0], trivial.frame_vectors(green[None], 12)[0])
    assert d[0, 0] > 0.5
    with pytest.raises(ValueError, match=r"\(N, T, H, W, 3\)"):
        trivial.frame_vectors(frames[0], 12)


def test_pixel_dtw_tells_a_sequence_from_its_time_reversal_where_pooled_pixels_cannot():
    """Gallery: one video of class 0 and its exact time-reversal (class 1). Queries: time-warped copies of
    each. Pixel-DTW classifies every copy; the time average is the same for a sequence and its reversal, so
    the pooled baseline sees both classes at the same distance."""
    gallery = np.stack([_blob_video(PATHS[0]), _blob_video(PATHS[1])])
    g_labels = np.array([0, 1])
    queries = np.stack([_warped(c, w) for c in (0, 1) for w in WARPS])
    q_labels = np.repeat([0, 1], len(WARPS))
    g_vec, q_vec = trivial.frame_vectors(gallery, 12), trivial.frame_vectors(queries, 12)

    d_dtw = trivial.dtw_distances(q_vec, g_vec, backend="cpu")
    pred, conf = trivial.decide(trivial.class_distances(d_dtw, g_labels, 2))
    assert (pred == q_labels).all()
    assert (conf > 0.6).all()  # a clear margin, not a tie

    d_pool = trivial.cosine_distances(trivial.pooled_vectors(q_vec), trivial.pooled_vectors(g_vec))
    np.testing.assert_allclose(trivial.pooled_vectors(g_vec)[0], trivial.pooled_vectors(g_vec)[1], atol=1e-6)
    np.testing.assert_allclose(d_pool[:, 0], d_pool[:, 1], atol=1e-6)  # no preference: it cannot tell them apart
    _, pconf = trivial.decide(trivial.class_distances(d_pool, g_labels, 2))
    np.testing.assert_allclose(pconf, 0.5, atol=1e-5)


def test_dtw_distances_are_hard_dtw_of_the_cosine_cost():
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(2, 5, 4)), rng.normal(size=(3, 6, 4))

    def hard_dtw(u, v):
        c = 1.0 - (u / np.linalg.norm(u, axis=1, keepdims=True)) @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T
        r = np.full((len(u) + 1, len(v) + 1), np.inf)
        r[0, 0] = 0.0
        for i in range(1, len(u) + 1):
            for j in range(1, len(v) + 1):
                r[i, j] = c[i - 1, j - 1] + min(r[i - 1, j - 1], r[i - 1, j], r[i, j - 1])
        return r[-1, -1]

    expected = np.array([[hard_dtw(a, b) for b in g] for a in q])
    np.testing.assert_allclose(trivial.dtw_distances(q, g, backend="cpu"), expected, rtol=1e-9)


def test_pooled_nearest_neighbour_with_a_known_nearest():
    """Cosine 1-NN: the query [1, 0.1] is nearest to gallery video 2 ([2, 0], class 1) although video 0
    ([0.5, 0.5], class 0) is nearer in Euclidean distance; scale does not count."""
    gallery = np.array([[0.5, 0.5], [0.0, 3.0], [2.0, 0.0], [-1.0, 0.0]])
    labels = np.array([0, 0, 1, 2])
    queries = np.array([[1.0, 0.1], [0.1, 1.0], [-5.0, 0.2], [1.0, 1.2]])
    d = trivial.cosine_distances(queries, gallery)
    assert d.shape == (4, 4)
    assert d[0].argmin() == 2 and np.linalg.norm(gallery - queries[0], axis=1).argmin() == 0
    np.testing.assert_allclose(d[0, 2], 1 - 1 / np.sqrt(1.01))
    cd = trivial.class_distances(d, labels, 4)
    assert np.isinf(cd[:, 3]).all()  # no gallery video of class 3: it can never be chosen
    np.testing.assert_allclose(cd[:, 0], d[:, :2].min(axis=1))
    pred, conf = trivial.decide(cd)
    assert pred.tolist() == [1, 0, 2, 0]
    d1, d2 = np.sort(cd, axis=1)[:, 0], np.sort(cd, axis=1)[:, 1]
    np.testing.assert_allclose(conf, d2 / (d1 + d2))
    # a zero vector (a uniform frame after centring) is at distance 1 from everything
    np.testing.assert_allclose(trivial.cosine_distances(np.zeros((1, 2)), gallery), 1.0)


def test_decide_breaks_ties_to_the_lower_class_and_handles_a_single_class():
    pred, conf = trivial.decide(np.array([[0.3, 0.3, 0.9], [0.0, 0.0, np.inf], [np.inf, 0.2, np.inf]]))
    assert pred.tolist() == [0, 0, 1]
    np.testing.assert_allclose(conf, [0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="empty gallery"):
        trivial.decide(np.full((1, 3), np.inf))


def test_class_mean_probe_on_separable_features():
    """Three classes along three directions, all features shifted by a large common positive offset (as pooled
    ReLU features are): the probe centres by the gallery mean and classifies every query; a query set
    never changes the others' predictions (only the gallery's statistics are used)."""
    rng = np.random.default_rng(2)
    dirs = np.eye(3, 16) * 2.0
    offset = 50.0 + rng.random(16)
    g_labels = np.array([0, 0, 1, 1, 2, 2])
    gallery = offset + dirs[g_labels] + rng.normal(0, 0.3, (6, 16))
    q_labels = np.repeat([0, 1, 2], 5)
    queries = offset + dirs[q_labels] + rng.normal(0, 0.3, (15, 16))
    cd = trivial.class_mean_distances(queries, gallery, g_labels, 4)
    assert cd.shape == (15, 4) and np.isinf(cd[:, 3]).all()
    pred, conf = trivial.decide(cd)
    assert (pred == q_labels).all() and (conf > 0.5).all()
    alone = trivial.class_mean_distances(queries[:1], gallery, g_labels, 4)
    np.testing.assert_allclose(alone, cd[:1])
    # without the centring every cosine is close to 1 - tiny: the offset dominates
    raw = trivial.cosine_distances(queries, gallery)
    assert raw.max() < 0.01 and cd[np.arange(15), q_labels].max() < 0.5
    with pytest.raises(ValueError, match=r"gallery labels must lie in \[0, 2\)"):
        trivial.class_mean_distances(queries, gallery, g_labels, 2)


class _MeanModel(torch.nn.Module):
    """features(x) = the clip's mean per channel and its mean over time of the first channel's first pixel."""

    feature_dim = 4

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, 4)
        return torch.cat([x.mean(dim=(2, 3, 4)), x[:, :1, :, 0, 0].mean(dim=2)], dim=1)


def test_pooled_features_average_the_evaluation_clips():
    from finepseudo.models.augment import eval_indices, to_model_input

    clips = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (5, T, 6, 6, 3)).astype(np.uint8))
    feats = trivial.pooled_features(_MeanModel(), clips, clip_frames=3, clips_per_video=2, batch_size=2)
    idx = eval_indices(T, 3, 2)
    expected = np.mean([_MeanModel().features(to_model_input(clips[:, idx[k]])).numpy() for k in range(2)], axis=0)
    assert feats.shape == (5, 4)
    np.testing.assert_allclose(feats, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="clip_frames 9 exceeds the 8 stored"):
        trivial.pooled_features(_MeanModel(), clips, clip_frames=9, clips_per_video=1, batch_size=2)


# ----------------------------------------------------------------------------------------------------- the step


@pytest.fixture()
def split(tmp_path):
    """A frame store of 3 classes (square moving right, left, down): 2 labeled and 2 test videos per class,
    each a different time warp with pixel noise, one test video without frames; classes.tsv, labeled.tsv,
    val.tsv (labels scrambled: no step may read it), test.tsv, a pA_test.tsv as predict_alignability writes it
    and a self-supervised f_E checkpoint as pretrain_fe writes it."""
    from finepseudo.models.train import save_checkpoint
    from finepseudo.models.video import build_video_model

    videos, frames, rows = [], [], []
    for c in range(3):
        for k, w in enumerate(WARPS):
            vid = f"c{c}_{k}"
            videos.append(vid)
            frames.append(_warped(c, w, noise=6.0, seed=10 * c + k))
            rows.append({"video": vid, "label": c, "split": "labeled" if k < 2 else "test"})
    write_shard(tmp_path / "shard0.npy", videos, np.stack(frames))
    table = pd.DataFrame(rows)
    pd.DataFrame({"label": range(3), "name": ["right", "left", "down"]}).to_csv(tmp_path / "classes.tsv", sep="\t",
                                                                               index=False)
    lab = table[table["split"] == "labeled"][["video", "label"]]
    lab.to_csv(tmp_path / "labeled.tsv", sep="\t", index=False)
    lab.assign(label=(lab["label"] + 1) % 3).to_csv(tmp_path / "val.tsv", sep="\t", index=False)
    test = pd.concat([table[table["split"] == "test"][["video", "label"]],
                      pd.DataFrame({"video": ["gone"], "label": [0]})])  # no frames: left out, as eval does
    test.to_csv(tmp_path / "test.tsv", sep="\t", index=False)
    kept = test[test["video"] != "gone"]
    pa_pred = np.array([0, 2, 1, 1, 2, 0])  # phi_A's decisions, 4 of the 6 right
    p = np.full((len(kept), 3), 0.1)
    p[np.arange(len(kept)), pa_pred] = 0.8
    pa = pd.DataFrame({"video": kept["video"].to_numpy()[::-1], "pred": pa_pred[::-1], "confidence": 0.8,
                       "max_sbar": 0.5})  # in another order than test.tsv: joined on video
    pa = pd.concat([pa, pd.DataFrame(p[::-1], columns=["p_0", "p_1", "p_2"])], axis=1)
    pa.to_csv(tmp_path / "pA_test.tsv", sep="\t", index=False)
    torch.manual_seed(0)
    model = build_video_model("r2plus1d_tiny", 1, widths=(8, 8, 8), stem_width=8)
    model.fc = torch.nn.Identity()
    save_checkpoint(tmp_path / "fe_ssl.pt", model, arch="r2plus1d_tiny", num_classes=1,
                    model_kwargs={"widths": [8, 8, 8], "stem_width": 8}, metadata={"stage": "ssl"})
    return tmp_path, dict(zip(kept["video"], pa_pred))


SETTINGS = {"pixel_size": 12, "num_frames": T, "dtw_backend": "cpu", "clip_frames": 4, "clips_per_video": 2,
            "batch_size": 4, "device": "cpu", "threads": 1}


def _out(root, names):
    return {n: {k: str(root / n / f"{k}.{'json' if k == 'metrics' else 'tsv'}") for k in OUTPUT_FILES}
            for n in names}


def test_step_writes_what_an_evaluation_writes(split):
    root, pa_pred = split
    names = ["pixel_dtw", "pixel_pooled", "phi_a", "ssl_probe"]
    out = _out(root / "baselines", names)
    lines = []
    trivial_baselines_step(labeled=str(root / "labeled.tsv"), test=str(root / "test.tsv"),
                           classes=str(root / "classes.tsv"), shards=[str(root / "shard0.npy")],
                           pa_test=str(root / "pA_test.tsv"), ssl_model=str(root / "fe_ssl.pt"), out=out,
                           log=lines.append, **SETTINGS)
    test = pd.read_csv(root / "test.tsv", sep="\t", dtype={"video": str})
    for name in names:
        pred = pd.read_csv(out[name]["predictions"], sep="\t", dtype={"video": str})
        assert list(pred.columns) == ["video", "label", "pred", "confidence"]  # as evaluate_fe writes them
        assert pred["video"].tolist() == [v for v in test["video"] if v != "gone"]
        assert (pred["label"] == pred["video"].str[1].astype(int)).all()
        m = json.loads(open(out[name]["metrics"]).read())
        assert m["method"] == name and m["n"] == 6 and m["n_gallery"] == 6
        assert m["gallery"].endswith("labeled.tsv")
        assert m["top1"] == pytest.approx(100 * (pred["pred"] == pred["label"]).mean())
        conf = pd.read_csv(out[name]["confusion"], sep="\t", index_col=0)
        assert conf.shape == (3, 3) and conf.to_numpy().sum() == 6
        assert len(pd.read_csv(out[name]["per_class"], sep="\t")) == 3
    dtw_pred = pd.read_csv(out["pixel_dtw"]["predictions"], sep="\t")
    assert (dtw_pred["pred"] == dtw_pred["label"]).all()  # warped copies with noise: DTW gets every one
    pooled = pd.read_csv(out["pixel_pooled"]["predictions"], sep="\t")
    assert (pooled.loc[pooled["label"] == 2, "pred"] == 2).all()  # moving down is not a reversal of another class
    phi = pd.read_csv(out["phi_a"]["predictions"], sep="\t", dtype={"video": str})
    assert phi.set_index("video")["pred"].to_dict() == pa_pred  # argmax p_A as predict_alignability wrote it
    assert json.loads(open(out["phi_a"]["metrics"]).read())["top1"] == pytest.approx(100 * 4 / 6)
    assert any("pixel_dtw: top-1 100.0 %" in line for line in lines)
    # the pixel vectors are those of the frames f_A embeds (alignability.num_frames of the stored frames)
    from finepseudo.data.frames import FrameStore

    store = FrameStore([str(root / "shard0.npy")], ["c0_0"])
    sub = pixel_vectors(store, 4, 12)
    np.testing.assert_allclose(sub[0], trivial.frame_vectors(store[0][None, [1, 3, 5, 7]], 12)[0])


def test_step_without_the_ssl_probe_and_its_errors(split):
    root, _ = split
    common = dict(labeled=str(root / "labeled.tsv"), test=str(root / "test.tsv"), classes=str(root / "classes.tsv"),
                  shards=[str(root / "shard0.npy")], pa_test=str(root / "pA_test.tsv"), log=lambda s: None, **SETTINGS)
    out = _out(root / "scratch", ["pixel_dtw", "phi_a"])
    trivial_baselines_step(out=out, **common)  # fe.init scratch: no fe_ssl.pt, no ssl_probe
    assert sorted(p.name for p in (root / "scratch").iterdir()) == ["phi_a", "pixel_dtw"]
    with pytest.raises(ValueError, match="fe.init: ssl"):
        trivial_baselines_step(out=_out(root / "x", ["ssl_probe"]), **common)
    with pytest.raises(ValueError, match="unknown trivial baseline"):
        trivial_baselines_step(out=_out(root / "x", ["pixel_magic"]), **common)
    pa = pd.read_csv(root / "pA_test.tsv", sep="\t", dtype={"video": str})
    pa.iloc[1:].to_csv(root / "pA_test.tsv", sep="\t", index=False)  # a test video without p_A
    with pytest.raises(ValueError, match=r"pA_test\.tsv does not hold the test videos.*rerun predict_alignability"):
        trivial_baselines_step(out=_out(root / "y", ["phi_a"]), **common)
