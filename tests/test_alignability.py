import numpy as np
import pytest
import torch
import torch.nn.functional as F

from finepseudo.align.steps import average_precision
from finepseudo.align.alignability import (
    FrameEncoder,
    ScoreHead,
    alignment_distance,
    avml_loss,
    class_alignability,
    gitdl_loss,
)
from finepseudo.align.train import augment_view, pretrain_gitdl


def test_frame_encoder_shapes_and_unit_norm():
    torch.manual_seed(0)
    enc = FrameEncoder(dim=16, width=4)
    z = enc(torch.randint(0, 255, (2, 6, 24, 24, 3), dtype=torch.uint8))
    assert z.shape == (2, 6, 16)
    assert torch.allclose(z.norm(dim=-1), torch.ones(2, 6), atol=1e-5)


def test_gitdl_prefers_time_aware_embeddings():
    t = torch.arange(8.0)[None]
    z_time = F.normalize(torch.eye(8)[None] + 0.01, dim=-1)  # frame i -> its own direction
    z_shuffled = z_time[:, torch.randperm(8, generator=torch.Generator().manual_seed(0))]
    good = gitdl_loss(z_time, z_time, t, t, tau=0.1, sigma=1.0)
    bad = gitdl_loss(z_time, z_shuffled, t, t, tau=0.1, sigma=1.0)
    assert good < bad


def test_triplet_term_is_zero_when_margin_is_met():
    u = F.normalize(torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    far = -u  # maximal cost everywhere
    loss, stats = avml_loss(u, u, [far], ScoreHead(), gamma=0.01, margin=0.1, omega=1.0, use_score=False)
    assert stats["l_at"] == 0.0 and float(loss) == 0.0
    loss2, stats2 = avml_loss(u, far, [u], ScoreHead(), gamma=0.01, margin=0.1, omega=1.0, use_score=False)
    assert stats2["l_at"] > 0.5 and float(loss2) == pytest.approx(stats2["l_at"])


def test_alignment_distance_is_small_for_time_warped_copy():
    g = torch.Generator().manual_seed(2)
    u = F.normalize(torch.randn(1, 8, 16, generator=g), dim=-1)
    warped = u[:, [0, 0, 1, 2, 3, 3, 4, 5, 6, 7]]  # the same sequence, stretched in places
    other = F.normalize(torch.randn(1, 8, 16, generator=g), dim=-1)
    assert alignment_distance(u, warped, 0.01) < 0.1 < alignment_distance(u, other, 0.01)


def test_class_alignability_probabilities():
    dist = np.array([[0.1, 0.2, 0.9, 0.8], [0.9, 0.8, 0.1, 0.15]])
    sbar, p = class_alignability(dist, np.array([0, 0, 1, 1]), 3, ScoreHead(), tau=0.1)
    assert p.shape == (2, 3) and np.allclose(p.sum(1), 1)
    assert p.argmax(1).tolist() == [0, 1]
    assert (sbar[:, 2] == 0).all()  # a class with no gallery video


def test_average_precision():
    assert average_precision(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0])) == 1.0
    assert average_precision(np.array([0.9, 0.8, 0.1]), np.array([0, 1, 1])) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_augment_view_keeps_shapes_and_sorted_times():
    frames = torch.randint(0, 255, (3, 12, 16, 16, 3), dtype=torch.uint8)
    v, t = augment_view(frames, 6, torch.Generator().manual_seed(0))
    assert v.shape == (3, 6, 16, 16, 3) and v.dtype == torch.uint8
    assert (t.diff(dim=1) > 0).all()


def test_gitdl_pretraining_is_deterministic():
    frames = torch.randint(0, 255, (4, 8, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    kw = dict(num_frames=4, dim=8, width=4, layers=1, pool=2, epochs=1, batch_size=2, lr=1e-3, tau=0.1, sigma=1.0, seed=3,
              log=lambda m: None)
    a, ha = pretrain_gitdl(frames, **kw)
    b, hb = pretrain_gitdl(frames, **kw)
    assert ha[0]["loss"] == hb[0]["loss"]
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_dtw_path_matches_dtw_cost_and_is_a_valid_path():
    from finepseudo.align import dtw

    rng = np.random.default_rng(0)
    for m, n in ((5, 7), (6, 6), (1, 4)):
        c = rng.random((m, n))
        path, cost = dtw.dtw_path(c)
        assert path[0] == (0, 0) and path[-1] == (m - 1, n - 1)
        steps = np.diff(np.array(path), axis=0)
        assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(1) >= 1).all()
        assert cost == pytest.approx(sum(c[i, j] for i, j in path))
        assert cost == pytest.approx(float(dtw.dtw_batch(c[None], 0.0)[0]), rel=1e-6)
