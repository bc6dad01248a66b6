"""f_E training: determinism, history, prediction, checkpoints, clip sampling and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finepseudo.models.augment import (
    DEFAULT_AUGMENT,
    augment_clips,
    eval_indices,
    to_model_input,
    train_indices,
    train_input,
)
from finepseudo.models.video import build_video_model
from finepseudo.models.train import load_checkpoint, predict_proba, save_checkpoint, train_classifier


pytestmark = pytest.mark.usefixtures("one_thread")


KW = {"widths": (8, 16), "s_strides": (2, 2), "t_strides": (1, 2), "stem_width": 8}


def toy_data(n: int = 12, t: int = 8, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Two classes: a bright square moving right (0) or left (1) over noise. uint8 (N, T, S, S, 3)."""
    rng = np.random.default_rng(seed)
    clips = rng.integers(0, 60, size=(n, t, size, size, 3)).astype(np.uint8)
    labels = np.arange(n) % 2
    for i in range(n):
        for f in range(t):
            x = 2 + f if labels[i] == 0 else size - 6 - f
            clips[i, f, 6:10, max(x, 0):max(x, 0) + 4] = 250
    return torch.from_numpy(clips), labels


def tiny_model(seed: int = 0, classes: int = 2) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_video_model("r2plus1d_tiny", classes, **KW)


def test_training_is_deterministic_and_logs():
    clips, labels = toy_data()
    runs = []
    for _ in range(2):
        m = tiny_model()
        logs: list[str] = []
        hist = train_classifier(m, clips, labels, epochs=2, batch_size=4, lr=1e-2, weight_decay=0.01,
                                clip_frames=4, seed=5, log=logs.append)
        runs.append((m.state_dict(), hist))
        assert len(logs) == 2 and "loss" in logs[0] and "left" in logs[0]
    (sa, ha), (sb, hb) = runs
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
    assert [h["loss"] for h in ha] == [h["loss"] for h in hb]
    assert [h["epoch"] for h in ha] == [1, 2]
    assert set(ha[0]) == {"epoch", "loss", "acc", "clips_per_s", "seconds", "eta"}
    # another seed gives other weights
    m = tiny_model()
    train_classifier(m, clips, labels, epochs=2, batch_size=4, lr=1e-2, weight_decay=0.01, clip_frames=4, seed=6,
                     log=lambda s: None)
    assert any(not torch.equal(m.state_dict()[k], sa[k]) for k in sa if sa[k].is_floating_point())


def test_training_learns_direction_and_predicts():
    clips, labels = toy_data(n=16)
    m = tiny_model()
    train_classifier(m, clips, labels, epochs=12, batch_size=8, lr=1e-2, weight_decay=0.0, clip_frames=8, seed=0,
                     augment={"enabled": False}, log=lambda s: None)
    p = predict_proba(m, clips, clip_frames=8, clips_per_video=1)
    assert p.shape == (16, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert (p.argmax(1) == labels).mean() == 1.0
    p2 = predict_proba(m, clips, clip_frames=4, clips_per_video=2, batch_size=5)
    assert p2.shape == (16, 2)
    np.testing.assert_array_equal(p2, predict_proba(m, clips, clip_frames=4, clips_per_video=2, batch_size=5))


def test_sample_weight_and_input_checks():
    clips, labels = toy_data(n=8)
    m = tiny_model()
    w = np.ones(8, np.float32)
    w[::2] = 0.0
    hist = train_classifier(m, clips, labels, epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0, clip_frames=4,
                            seed=0, sample_weight=w, log=lambda s: None)
    assert np.isfinite(hist[0]["loss"])
    plain = tiny_model()
    train_classifier(plain, clips, labels, epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0, clip_frames=4, seed=0,
                     log=lambda s: None)
    assert not all(torch.equal(v, plain.state_dict()[k]) for k, v in m.state_dict().items())  # the weights are used
    with pytest.raises(ValueError, match="sample_weight"):
        train_classifier(m, clips, labels, epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0, clip_frames=4,
                         seed=0, sample_weight=-w, log=lambda s: None)
    with pytest.raises(TypeError, match="uint8"):
        train_classifier(m, clips.float(), labels, epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0,
                         clip_frames=4, seed=0, log=lambda s: None)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(m, clips, labels[:3], epochs=1, batch_size=4, lr=1e-3, weight_decay=0.0, clip_frames=4,
                         seed=0, log=lambda s: None)


def test_checkpoint_round_trip(tmp_path):
    clips, _ = toy_data(n=4)
    m = tiny_model(classes=3)
    path = tmp_path / "ckpt" / "f_E.pt"
    save_checkpoint(path, m, arch="r2plus1d_tiny", num_classes=3, model_kwargs=KW,
                    metadata={"fraction": 0.1, "round": 2})
    m2, info = load_checkpoint(path)
    assert info["arch"] == "r2plus1d_tiny" and info["num_classes"] == 3
    assert info["metadata"] == {"fraction": 0.1, "round": 2}
    np.testing.assert_array_equal(predict_proba(m, clips, clip_frames=4, clips_per_video=2),
                                  predict_proba(m2, clips, clip_frames=4, clips_per_video=2))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_clip_indices():
    rng = np.random.default_rng(0)
    idx = train_indices(32, 16, 50, rng, DEFAULT_AUGMENT)
    assert idx.shape == (50, 16) and idx.min() >= 0 and idx.max() <= 31
    assert (np.diff(idx, axis=1) >= 0).all()  # time order is kept
    # the clip always spans most of the video
    assert ((idx[:, -1] - idx[:, 0]) >= 0.85 * 32 - 3).all()
    ev = eval_indices(32, 16, 2)
    np.testing.assert_array_equal(ev, [np.arange(0, 32, 2), np.arange(1, 32, 2)])
    np.testing.assert_array_equal(train_indices(32, 16, 3, rng, {"enabled": False}),
                                  np.tile(eval_indices(32, 16, 1), (3, 1)))


def test_augment_and_normalise():
    clips, _ = toy_data(n=3, t=4, size=12)
    rng = np.random.default_rng(0)
    out = augment_clips(clips, rng, DEFAULT_AUGMENT)
    assert out.shape == clips.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 255
    # the default never mirrors a clip (the rotation direction is part of a class); hflip: true does
    geometric_only = {**DEFAULT_AUGMENT, "translate": 0, "brightness": 0.0, "contrast": 0.0}
    torch.testing.assert_close(augment_clips(clips, np.random.default_rng(2), geometric_only), clips.float(),
                               rtol=0, atol=0)
    mirrored = augment_clips(clips, np.random.default_rng(2), {**geometric_only, "hflip": True})
    flips = [torch.equal(mirrored[i], clips[i].flip(2).float()) for i in range(3)]
    assert any(flips) and all(f or torch.equal(mirrored[i], clips[i].float()) for i, f in enumerate(flips))
    torch.testing.assert_close(augment_clips(clips, rng, {"enabled": False}), clips.float())
    x = to_model_input(clips)
    assert x.shape == (3, 3, 4, 12, 12)
    # the same rng state gives the same augmentation
    a = augment_clips(clips, np.random.default_rng(1), DEFAULT_AUGMENT)
    b = augment_clips(clips, np.random.default_rng(1), DEFAULT_AUGMENT)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("aug", [DEFAULT_AUGMENT, {**DEFAULT_AUGMENT, "hflip": True, "translate": 5}, {"enabled": False}])
def test_fused_train_input_matches_reference(aug):
    clips, _ = toy_data(n=5, t=4, size=12)
    ref = to_model_input(augment_clips(clips, np.random.default_rng(3), aug))
    fused = train_input(clips, np.random.default_rng(3), aug)
    assert fused.shape == (5, 3, 4, 12, 12)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-5)


def test_step_budget_and_labeled_share_per_batch():
    """``steps`` fixes the number of optimiser steps; ``labeled_share`` puts that share of labeled videos in every
    batch (oversampling the few labeled ones)."""
    import finepseudo.models.train as tr

    rng = np.random.default_rng(0)
    mask = np.zeros(20, bool)
    mask[:3] = True  # 3 labeled, 17 pseudo-labeled
    stream = tr._BatchStream(rng, 20, 8, mask, 0.5)
    batches = [next(stream) for _ in range(12)]
    assert all(len(b) == 8 and mask[b].sum() == 4 for b in batches)
    counts = np.bincount(np.concatenate(batches), minlength=20)
    assert counts[:3].min() >= 14 and counts[3:].max() <= 4  # each labeled video seen ~16x, each other ~2.8x
    plain = tr._BatchStream(np.random.default_rng(0), 20, 8, None, 0.0)
    first_pass = np.concatenate([next(plain) for _ in range(3)])
    assert sorted(first_pass.tolist()) == list(range(20))  # a pass is a permutation, the last batch short

    clips, labels = toy_data(n=10)
    m = tiny_model()
    hist = train_classifier(m, clips, labels, epochs=0, steps=7, batch_size=4, lr=1e-2, weight_decay=0.0,
                            clip_frames=4, seed=1, log=lambda s: None, labeled_mask=np.arange(10) < 2,
                            labeled_share=0.5)
    assert len(hist) == 3  # 3 steps per epoch over 10 videos: 3 + 3 + 1 steps
    with pytest.raises(ValueError, match="labeled_mask"):
        train_classifier(m, clips, labels, epochs=1, batch_size=4, lr=1e-2, weight_decay=0.0, clip_frames=4,
                         seed=1, log=lambda s: None, labeled_mask=[True], labeled_share=0.5)


def test_zero_weight_videos_do_not_change_training():
    """A video with sample weight 0 has no effect: training with it (weight 0, any label) gives the same weights
    as training where its label is flipped."""
    clips, labels = toy_data(n=8)
    w = np.ones(8)
    w[3] = 0.0
    states = []
    for y3 in (0, 1):
        y = labels.copy()
        y[3] = y3
        m = tiny_model()
        train_classifier(m, clips, y, epochs=2, batch_size=4, lr=1e-2, weight_decay=0.0, clip_frames=4, seed=2,
                         log=lambda s: None, sample_weight=w)
        states.append(m.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    m = tiny_model()
    y = labels.copy()
    y[3] = 1 - y[3]
    train_classifier(m, clips, y, epochs=2, batch_size=4, lr=1e-2, weight_decay=0.0, clip_frames=4, seed=2,
                     log=lambda s: None)
    assert not all(torch.equal(states[0][k], m.state_dict()[k]) for k in states[0])  # weight 1: it matters


class _NoBatchNorm(torch.nn.Module):
    """A video classifier without batch norm or dropout, so one video's loss term is its only influence."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3, 4)))


def test_a_zero_weight_video_is_the_same_as_leaving_it_out():
    """Training with a video at sample weight 0 gives the weights of training without that video at all (one
    batch per epoch, no augmentation, a model without batch norm: then nothing else depends on the video's
    presence; batch norm would still see it in its batch statistics)."""
    clips, labels = toy_data(n=8)
    w = np.ones(8)
    w[3] = 0.0
    keep = np.arange(8) != 3
    kw = dict(epochs=3, batch_size=8, lr=1e-2, weight_decay=0.0, clip_frames=4, seed=2, augment={"enabled": False},
              log=lambda s: None)
    with_zero, without = _NoBatchNorm(), _NoBatchNorm()
    h0 = train_classifier(with_zero, clips, labels, sample_weight=w, **kw)
    h1 = train_classifier(without, clips[keep], labels[keep], **kw)
    for k, v in with_zero.state_dict().items():
        torch.testing.assert_close(v, without.state_dict()[k], rtol=1e-5, atol=1e-6)
    assert [h["loss"] for h in h0] == pytest.approx([h["loss"] for h in h1], rel=1e-5)
    # weight 1 instead: the video changes the result
    one = _NoBatchNorm()
    train_classifier(one, clips, labels, **kw)
    assert not torch.allclose(one.conv.weight, without.conv.weight, rtol=1e-5, atol=1e-6)


def test_frame_store_and_loader_workers_do_not_change_results(tmp_path):
    """Training and prediction read through a FrameStore with 0 or 2 loader processes give exactly the
    weights and probabilities of the in-memory tensor (frames.workers is not a result-changing setting)."""
    from finepseudo.data.frames import FrameStore, write_shard

    clips, labels = toy_data()
    write_shard(tmp_path / "a.npy", [f"v{i}" for i in range(7)], clips[:7])
    write_shard(tmp_path / "b.npy", [f"v{i}" for i in range(7, 12)], clips[7:])
    store = FrameStore([tmp_path / "a.npy", tmp_path / "b.npy"])
    runs = []
    for src, workers in ((clips, 0), (store, 0), (store, 2)):
        m = tiny_model()
        hist = train_classifier(m, src, labels, epochs=2, batch_size=4, lr=1e-2, weight_decay=0.01, clip_frames=4,
                                seed=5, log=lambda s: None, workers=workers)
        probs = predict_proba(m, src, clip_frames=4, batch_size=5, workers=workers)
        runs.append((m.state_dict(), [h["loss"] for h in hist], probs))
    for state, losses, probs in runs[1:]:
        assert losses == runs[0][1]
        np.testing.assert_array_equal(probs, runs[0][2])
        for k, v in runs[0][0].items():
            torch.testing.assert_close(state[k], v, rtol=0, atol=0)


def test_train_input_of_a_batch_part_is_that_part_of_the_batch():
    """What one DDP process computes for its rows equals those rows of the whole batch's input."""
    clips, _ = toy_data(n=7, t=4, size=12)
    aug = {**DEFAULT_AUGMENT, "hflip": True}
    whole = train_input(clips, np.random.default_rng(4), aug)
    for part in (slice(0, None, 2), slice(1, None, 2), slice(2, None, 3)):
        mine = train_input(clips[part], np.random.default_rng(4), aug, rows=part, n_total=7)
        torch.testing.assert_close(mine, whole[part], rtol=0, atol=1e-6)
