"""Tests of finepseudo.align.dtw on the CPU.

Oracles: a float64 plain-loop reference (``reference._reference``, cross-checked here against brute
force over all paths and against tslearn 0.10), tslearn itself, dtaidistance for hard DTW, the
golden values below (closed-form cases), and torch.autograd.gradcheck. tslearn/dtaidistance tests are
skipped where those packages are missing (the GPU machine), everything else runs anywhere.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from finepseudo.align import dtw
from finepseudo.align.dtw import cuda as dtw_cuda
from finepseudo.align.dtw.reference import _reference

RNG = np.random.default_rng(20240917)


def _rand_seqs(n: int, t: int, f: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, t, f))


def _unit(X: np.ndarray) -> np.ndarray:
    """Each feature vector scaled to length 1 (what the cosine cost compares)."""
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def _ref_matrix(X: np.ndarray, Y: np.ndarray, gamma: float, metric: str, band: int | None) -> np.ndarray:
    C = dtw.cost_matrix(X[:, None].astype(np.float64), Y[None].astype(np.float64), metric)
    return np.array([[_reference(C[u, v], gamma, band)[0] for v in range(len(Y))] for u in range(len(X))])


def _delannoy(m: int, n: int) -> int:
    return sum(math.comb(m, k) * math.comb(n, k) * 2**k for k in range(min(m, n) + 1))


def _all_paths(m: int, n: int):
    """Every monotone path from (0, 0) to (m-1, n-1) with steps (1,0), (0,1), (1,1)."""

    def rec(i, j, acc):
        if (i, j) == (m - 1, n - 1):
            yield acc
            return
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            a, b = i + di, j + dj
            if a < m and b < n:
                yield from rec(a, b, acc + [(a, b)])

    yield from rec(0, 0, [(0, 0)])


def _brute(C: np.ndarray, gamma: float, band: int | None = None) -> tuple[float, np.ndarray | None]:
    m, n = C.shape
    ok = dtw.band_mask(m, n, band)
    costs, masks = [], []
    for path in _all_paths(m, n):
        if all(ok[i, j] for i, j in path):
            costs.append(sum(C[i, j] for i, j in path))
            mk = np.zeros((m, n))
            for i, j in path:
                mk[i, j] = 1.0
            masks.append(mk)
    costs = np.array(costs)
    if gamma == 0:
        return float(costs.min()), None
    z = -costs / gamma
    zmax = z.max()
    p = np.exp(z - zmax)
    val = -gamma * (zmax + math.log(p.sum()))
    E = np.tensordot(p / p.sum(), np.array(masks), axes=1)
    return float(val), E


# ------------------------------------------------------------------------------------------------
# the reference itself


@pytest.mark.parametrize("m,n", [(1, 1), (1, 4), (3, 1), (3, 3), (4, 5), (5, 4), (5, 6)])
@pytest.mark.parametrize("gamma", [0.0, 0.01, 0.1, 1.0, 10.0])
def test_reference_matches_brute_force(m, n, gamma):
    C = RNG.random((m, n)) * 2
    val, E = _reference(C, gamma)
    bval, bE = _brute(C, gamma)
    assert val == pytest.approx(bval, rel=1e-12, abs=1e-12)
    if gamma > 0:
        np.testing.assert_allclose(E, bE, rtol=1e-10, atol=1e-12)
    assert len(list(_all_paths(m, n))) == _delannoy(m - 1, n - 1)


@pytest.mark.parametrize("band", [0, 1, 2])
@pytest.mark.parametrize("m,n", [(4, 4), (3, 6), (6, 4)])
def test_reference_band_matches_brute_force(m, n, band):
    C = RNG.random((m, n))
    for gamma in (0.0, 0.3):
        val, E = _reference(C, gamma, band)
        bval, bE = _brute(C, gamma, band)
        assert val == pytest.approx(bval, rel=1e-12)
        if gamma > 0:
            np.testing.assert_allclose(E, bE, rtol=1e-10, atol=1e-12)


def test_reference_matches_tslearn_precomputed():
    tsm = pytest.importorskip("tslearn.metrics")
    for m, n in [(5, 6), (8, 3), (1, 7), (12, 12)]:
        D = RNG.random((m, n)) * 2
        for gamma in (0.01, 0.1, 1.0, 10.0):
            sd = tsm.SoftDTW(D, gamma=gamma)
            val, E = _reference(D, gamma)
            assert val == pytest.approx(sd.compute(), rel=1e-12, abs=1e-12)
            np.testing.assert_allclose(E, sd.grad(), rtol=1e-9, atol=1e-12)
        _, s = tsm.dtw_path_from_metric(D, metric="precomputed")
        assert _reference(D, 0.0)[0] == pytest.approx(s, rel=1e-12)


# ------------------------------------------------------------------------------------------------
# golden values (closed-form cases and tslearn's published value)


def test_golden_zeros_vs_ones():
    x = torch.zeros(1, 10, 8, dtype=torch.float64)
    y = torch.ones(1, 12, 8, dtype=torch.float64)
    C = dtw.cost_matrix(x, y, "sqeuclidean")
    assert float(dtw.soft_dtw(C, 1.0)) == pytest.approx(91.98061035026274, rel=1e-12)
    assert float(dtw.dtw_batch(C.numpy(), 1.0, backend="cpu")[0]) == pytest.approx(
        91.98061035026274, rel=1e-12
    )
    # tslearn's torch test has 91.9806137 in float32
    v32 = dtw.dtw_batch(C.numpy().astype(np.float32), 1.0, backend="cpu")[0]
    assert v32 == pytest.approx(91.9806137, rel=1e-6)
    div = dtw.soft_dtw_divergence(x, y, 1.0, metric="sqeuclidean")
    assert float(div) == pytest.approx(107.89006617189331, rel=1e-12)


def test_golden_zeros_vs_zeros_is_minus_log_delannoy():
    C = np.zeros((1, 10, 10))
    assert dtw.dtw_batch(C, 1.0, backend="cpu")[0] == pytest.approx(-14.195700934083442, rel=1e-12)
    assert _delannoy(9, 9) == 1462563
    for m, n, gamma in [(3, 7, 0.5), (16, 9, 0.1), (1, 5, 2.0), (20, 20, 1.0)]:
        v = dtw.dtw_batch(np.zeros((1, m, n)), gamma, backend="cpu")[0]
        assert v == pytest.approx(-gamma * math.log(_delannoy(m - 1, n - 1)), rel=1e-12)
        tv = dtw.soft_dtw(torch.zeros(1, m, n, dtype=torch.float64), gamma)
        assert float(tv) == pytest.approx(-gamma * math.log(_delannoy(m - 1, n - 1)), rel=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 0.01, 1.0, 100.0])
def test_golden_single_cell(gamma):
    assert dtw.dtw_batch(np.array([[[1.0]]]), gamma, backend="cpu")[0] == 1.0
    x = np.array([[[0.0]]])
    y = np.array([[[1.0]]])
    assert dtw.pairwise(x, y, gamma=gamma, metric="sqeuclidean", backend="cpu")[0, 0] == 1.0


# ------------------------------------------------------------------------------------------------
# CPU backend vs the float64 reference


SHAPES = [(1, 1), (1, 9), (9, 1), (6, 6), (7, 12), (12, 7), (16, 16), (20, 33)]


@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("gamma", [0.0, 0.01, 0.1, 1.0])
@pytest.mark.parametrize("band", [None, 0, 2])
def test_dtw_batch_vs_reference(m, n, gamma, band):
    C = np.random.default_rng(m * 1000 + n).random((3, m, n)) * 2
    ref = np.array([_reference(c, gamma, band)[0] for c in C])
    np.testing.assert_allclose(dtw.dtw_batch(C, gamma, band, backend="cpu"), ref, rtol=1e-12, atol=1e-10)
    got32 = dtw.dtw_batch(C.astype(np.float32), gamma, band, backend="cpu")
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref, rtol=1e-5, atol=1e-5 * max(1.0, gamma))


@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
@pytest.mark.parametrize("gamma", [0.0, 0.05, 1.0])
@pytest.mark.parametrize("band", [None, 1, 3])
def test_pairwise_vs_reference(metric, gamma, band):
    X = _rand_seqs(7, 9, 5, 1)
    Y = _rand_seqs(5, 13, 5, 2)
    ref = _ref_matrix(X, Y, gamma, metric, band)
    got = dtw.pairwise(X, Y, gamma=gamma, metric=metric, band=band, backend="cpu", chunk_pairs=8)
    assert got.shape == (7, 5) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-10)
    got32 = dtw.pairwise(
        X.astype(np.float32), Y.astype(np.float32), gamma=gamma, metric=metric, band=band, backend="cpu"
    )
    assert got32.dtype == np.float32
    scale = np.abs(ref).max()
    np.testing.assert_allclose(got32, ref, rtol=1e-5, atol=1e-6 * scale)


def test_pairwise_chunking_and_threads_do_not_change_results():
    X = _rand_seqs(23, 6, 4, 3).astype(np.float32)
    Y = _rand_seqs(31, 8, 4, 4).astype(np.float32)
    for gamma in (0.0, 0.1):
        base = dtw.pairwise(X, Y, gamma=gamma, backend="cpu", threads=1)
        for cp, th in [(1, 2), (7, 2), (50, 1), (10_000, 2)]:
            got = dtw.pairwise(X, Y, gamma=gamma, backend="cpu", chunk_pairs=cp, threads=th)
            np.testing.assert_array_equal(got, base)


def test_pairwise_accepts_torch_and_is_symmetric():
    X = torch.randn(4, 10, 6, dtype=torch.float64)
    a = dtw.pairwise(X, X, gamma=0.1, backend="cpu")
    np.testing.assert_allclose(a, a.T, rtol=1e-12)
    b = dtw.pairwise(X.numpy(), X.numpy(), gamma=0.1, backend="cpu")
    np.testing.assert_array_equal(a, b)


def test_pairwise_fp32_large_T_vs_reference():
    X = _rand_seqs(3, 64, 16, 5).astype(np.float32)
    Y = _rand_seqs(2, 48, 16, 6).astype(np.float32)
    for gamma in (0.0, 0.01, 1.0):
        ref = _ref_matrix(X, Y, gamma, "cosine", None)
        got = dtw.pairwise(X, Y, gamma=gamma, backend="cpu")
        np.testing.assert_allclose(got, ref, rtol=1e-5)


# ------------------------------------------------------------------------------------------------
# tslearn / dtaidistance as independent oracles (on embeddings, not on our cost matrices)


@pytest.mark.parametrize("m,n", [(8, 8), (5, 11), (11, 5), (1, 6), (16, 24)])
@pytest.mark.parametrize("band", [None, 0, 2])
def test_pairwise_vs_tslearn(m, n, band):
    tsm = pytest.importorskip("tslearn.metrics")
    X = _rand_seqs(3, m, 7, m)
    Y = _rand_seqs(2, n, 7, 100 + n)
    xh, yh = _unit(X), _unit(Y)
    kw = {} if band is None else {"global_constraint": "sakoe_chiba", "sakoe_chiba_radius": band}
    for gamma in (0.0, 0.05, 0.5):
        got = dtw.pairwise(X, Y, gamma=gamma, metric="cosine", band=band, backend="cpu")
        got_sq = dtw.pairwise(X, Y, gamma=gamma, metric="sqeuclidean", band=band, backend="cpu")
        for u, v in itertools.product(range(3), range(2)):
            if gamma == 0:
                exp_cos = 0.5 * tsm.dtw(xh[u], yh[v], **kw) ** 2
                exp_sq = tsm.dtw(X[u], Y[v], **kw) ** 2
            else:
                # sdtw_gamma(C_cos) = 0.5 * tslearn.soft_dtw(xhat, yhat, gamma=2 gamma)
                exp_cos = 0.5 * tsm.soft_dtw(xh[u], yh[v], gamma=2 * gamma, **kw)
                exp_sq = tsm.soft_dtw(X[u], Y[v], gamma=gamma, **kw)
            assert got[u, v] == pytest.approx(exp_cos, rel=1e-10, abs=1e-10)
            assert got_sq[u, v] == pytest.approx(exp_sq, rel=1e-10, abs=1e-10)


def test_band_mask_matches_tslearn():
    tsm = pytest.importorskip("tslearn.metrics")
    for m, n, r in itertools.product([1, 4, 7], [1, 5, 7], [0, 1, 3, 10]):
        ours = dtw.band_mask(m, n, r)
        theirs = np.asarray(tsm.sakoe_chiba_mask(m, n, r))
        if theirs.dtype != bool:
            theirs = theirs == 0
        np.testing.assert_array_equal(ours, theirs)


def test_cdist_soft_dtw_matches():
    tsm = pytest.importorskip("tslearn.metrics")
    X = _rand_seqs(4, 10, 6, 7)
    Y = _rand_seqs(3, 8, 6, 8)
    xh, yh = _unit(X), _unit(Y)
    exp = 0.5 * tsm.cdist_soft_dtw(xh, yh, gamma=0.2)
    np.testing.assert_allclose(dtw.pairwise(X, Y, gamma=0.1, backend="cpu"), exp, rtol=1e-10)
    exp_h = 0.5 * tsm.cdist_dtw(xh, yh) ** 2
    np.testing.assert_allclose(dtw.pairwise(X, Y, gamma=0.0, backend="cpu"), exp_h, rtol=1e-10)


def test_hard_dtw_vs_dtaidistance():
    dd = pytest.importorskip("dtaidistance.dtw_ndim")
    X = _rand_seqs(3, 12, 5, 9)
    Y = _rand_seqs(2, 9, 5, 10)
    xh, yh = _unit(X), _unit(Y)
    for band in (None, 0, 2):
        got = dtw.pairwise(X, Y, gamma=0.0, band=band, backend="cpu")
        for u, v in itertools.product(range(3), range(2)):
            kw = {} if band is None else {"window": band + 1}  # dtaidistance window = radius + 1
            d = dd.distance(xh[u].copy(), yh[v].copy(), **kw)
            assert got[u, v] == pytest.approx(0.5 * d**2, rel=1e-9)


# ------------------------------------------------------------------------------------------------
# edge cases and invariants


def test_length_one_is_a_plain_sum():
    for m, n in [(1, 7), (6, 1), (1, 1)]:
        C = RNG.random((2, m, n))
        for gamma in (0.0, 0.01, 1.0, 50.0):
            np.testing.assert_allclose(dtw.dtw_batch(C, gamma, backend="cpu"), C.sum(axis=(1, 2)), rtol=1e-12)
        if m * n > 0:
            v = dtw.soft_dtw(torch.tensor(C), 0.7)
            np.testing.assert_allclose(v.numpy(), C.sum(axis=(1, 2)), rtol=1e-12)


def test_band_zero_square_is_diagonal_sum():
    C = RNG.random((4, 9, 9))
    diag = np.trace(C, axis1=1, axis2=2)
    for gamma in (0.0, 0.1, 3.0):
        np.testing.assert_allclose(dtw.dtw_batch(C, gamma, band=0, backend="cpu"), diag, rtol=1e-12)
    X = _rand_seqs(3, 9, 4, 11)
    Y = _rand_seqs(2, 9, 4, 12)
    Cx = dtw.cost_matrix(X[:, None], Y[None], "cosine")
    np.testing.assert_allclose(
        dtw.pairwise(X, Y, gamma=0.5, band=0, backend="cpu"), np.trace(Cx, axis1=2, axis2=3), rtol=1e-12
    )


def test_wide_band_equals_no_band_and_narrow_band_still_finite():
    C = RNG.random((3, 7, 15))
    for gamma in (0.0, 0.2):
        free = dtw.dtw_batch(C, gamma, backend="cpu")
        np.testing.assert_allclose(dtw.dtw_batch(C, gamma, band=15, backend="cpu"), free, rtol=1e-12)
        # band 0 is narrower than the length difference 8: tslearn semantics widen it
        narrow = dtw.dtw_batch(C, gamma, band=0, backend="cpu")
        assert np.isfinite(narrow).all()
        # a band only removes warping paths: the (soft-)minimum over fewer paths cannot be smaller
        assert (narrow >= free - 1e-12).all()


def test_transposition_symmetry():
    C = RNG.random((3, 6, 11))
    Ct = np.ascontiguousarray(C.transpose(0, 2, 1))
    for gamma in (0.0, 0.05, 1.0):
        for band in (None, 1):
            np.testing.assert_allclose(
                dtw.dtw_batch(C, gamma, band, backend="cpu"),
                dtw.dtw_batch(Ct, gamma, band, backend="cpu"),
                rtol=1e-12,
            )
    t = torch.tensor(C, requires_grad=True)
    tt = torch.tensor(Ct, requires_grad=True)
    dtw.soft_dtw(t, 0.3, band=2).sum().backward()
    dtw.soft_dtw(tt, 0.3, band=2).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy().transpose(0, 2, 1), rtol=1e-10, atol=1e-14)


def test_gamma_to_zero_sandwich_and_path():
    C = np.random.default_rng(5).random((1, 8, 11)) * 2  # continuous costs: no tied paths
    hard = dtw.dtw_batch(C, 0.0, backend="cpu")[0]
    logA = math.log(_delannoy(7, 10))
    for gamma in (1.0, 0.1, 1e-3, 1e-6):
        s = dtw.dtw_batch(C, gamma, backend="cpu")[0]
        assert hard - gamma * logA - 1e-9 <= s <= hard + 1e-9
        s32 = dtw.dtw_batch(C.astype(np.float32), gamma, backend="cpu")[0]
        assert s32 == pytest.approx(s, rel=1e-5)
    assert dtw.dtw_batch(C, 1e-6, backend="cpu")[0] == pytest.approx(hard, abs=1e-4)
    # E approaches the 0/1 indicator of the optimal path, whose cost is the hard DTW
    t = torch.tensor(C, requires_grad=True)
    dtw.soft_dtw(t, 1e-6).sum().backward()
    E = t.grad[0].numpy()
    assert set(np.unique(np.round(E, 6))) <= {0.0, 1.0}
    assert float((E * C[0]).sum()) == pytest.approx(hard, rel=1e-9)
    assert 11 <= E.sum() <= 8 + 11 - 1


@pytest.mark.parametrize("gamma", [1e-3, 0.1, 1.0])
@pytest.mark.parametrize("band", [None, 1])
def test_expected_alignment_invariants(gamma, band):
    C = torch.tensor(RNG.random((4, 10, 14)), requires_grad=True)
    dtw.soft_dtw(C, gamma, band=band).sum().backward()
    E = C.grad.numpy()
    assert np.isfinite(E).all()
    assert (E >= -1e-12).all() and (E <= 1 + 1e-12).all()
    np.testing.assert_allclose(E[:, 0, 0], 1.0, rtol=1e-10)
    np.testing.assert_allclose(E[:, -1, -1], 1.0, rtol=1e-10)
    tot = E.sum(axis=(1, 2))
    assert (tot >= 14 - 1e-9).all() and (tot <= 10 + 14 - 1 + 1e-9).all()
    if band is not None:
        assert (E[:, ~dtw.band_mask(10, 14, band)] == 0).all()


# ------------------------------------------------------------------------------------------------
# the training op


@pytest.mark.parametrize("m,n", [(1, 1), (1, 5), (6, 1), (5, 7), (12, 9), (16, 16)])
@pytest.mark.parametrize("gamma", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("band", [None, 1])
def test_soft_dtw_value_and_grad_vs_reference(m, n, gamma, band):
    C = np.random.default_rng(m * 31 + n).random((3, m, n)) * 2
    t = torch.tensor(C, requires_grad=True)
    v = dtw.soft_dtw(t, gamma, band=band)
    v.backward(torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64))
    for b, w in enumerate((1.0, 2.0, -0.5)):
        rv, rE = _reference(C[b], gamma, band)
        assert float(v[b].detach()) == pytest.approx(rv, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(t.grad[b].numpy(), w * rE, rtol=1e-10, atol=1e-12)


def test_soft_dtw_grad_vs_tslearn():
    tsm = pytest.importorskip("tslearn.metrics")
    D = RNG.random((9, 13)) * 2
    for gamma in (0.01, 0.3, 3.0):
        t = torch.tensor(D[None], requires_grad=True)
        dtw.soft_dtw(t, gamma).sum().backward()
        sd = tsm.SoftDTW(D, gamma=gamma)
        assert float(dtw.soft_dtw(torch.tensor(D[None]), gamma)) == pytest.approx(sd.compute(), rel=1e-12)
        np.testing.assert_allclose(t.grad[0].numpy(), sd.grad(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gamma", [1.0, 0.1, 0.01, 0.001])
def test_soft_dtw_fp32_grad_stays_accurate_for_small_gamma(gamma):
    # stored-weight backward (method 2): fp32 E within 1e-5 of the float64 one even at gamma=1e-3
    # (same float32 costs on both sides: at gamma=1e-3 the rounding of C itself moves E by ~1e-3)
    g = torch.Generator().manual_seed(7)
    x = torch.nn.functional.normalize(torch.randn(4, 64, 32, dtype=torch.float64, generator=g), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(4, 64, 32, dtype=torch.float64, generator=g), dim=-1)
    C32 = dtw.cost_matrix(x, y).detach().float()
    t32 = C32.clone().requires_grad_(True)
    t64 = C32.double().requires_grad_(True)
    v32 = dtw.soft_dtw(t32, gamma)
    v64 = dtw.soft_dtw(t64, gamma)
    v32.sum().backward()
    v64.sum().backward()
    np.testing.assert_allclose(v32.detach().numpy(), v64.detach().numpy(), rtol=1e-5)
    assert float((t32.grad.double() - t64.grad).abs().max()) < 1e-5


def test_gradcheck_soft_dtw():
    C = torch.rand(2, 5, 6, dtype=torch.float64, requires_grad=True)
    for gamma, band in [(1.0, None), (0.1, None), (0.5, 1)]:
        assert torch.autograd.gradcheck(
            lambda c, g=gamma, b=band: dtw.soft_dtw(c, g, band=b), (C,), eps=1e-6, atol=1e-4
        )


def test_gradcheck_through_cosine_and_sqeuclidean_costs():
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    for metric in ("cosine", "sqeuclidean"):
        assert torch.autograd.gradcheck(
            lambda a, b, mt=metric: dtw.soft_dtw(dtw.cost_matrix(a, b, mt), 0.2), (x, y), eps=1e-6, atol=1e-4
        )
    assert torch.autograd.gradcheck(
        lambda a, b: dtw.soft_dtw_divergence(a, b, 0.3), (x, y), eps=1e-6, atol=1e-4
    )


def test_soft_dtw_lengths_padding_equals_unpadded():
    rng = np.random.default_rng(3)
    lx = [5, 9, 1, 7]
    ly = [8, 3, 6, 7]
    M, N = 9, 8
    full = np.full((4, M, N), np.inf)
    pieces = []
    for b in range(4):
        c = rng.random((lx[b], ly[b]))
        pieces.append(c)
        full[b, : lx[b], : ly[b]] = c
    for band in (None, 1):
        t = torch.tensor(full, requires_grad=True)
        v = dtw.soft_dtw(t, 0.2, band=band, lengths=(lx, ly))
        v.sum().backward()
        assert torch.isfinite(t.grad).all()
        for b in range(4):
            rv, rE = _reference(pieces[b], 0.2, band)
            assert float(v[b].detach()) == pytest.approx(rv, rel=1e-10, abs=1e-10)
            np.testing.assert_allclose(t.grad[b, : lx[b], : ly[b]].numpy(), rE, rtol=1e-10, atol=1e-12)
            pad = t.grad[b].clone()
            pad[: lx[b], : ly[b]] = 0
            assert float(pad.abs().max()) == 0.0


def test_soft_dtw_band_and_tiny_gamma_no_nan():
    C = torch.rand(3, 20, 12, requires_grad=True)
    v = dtw.soft_dtw(C, 1e-3, band=0)
    v.sum().backward()
    assert torch.isfinite(v).all() and torch.isfinite(C.grad).all()


def test_soft_dtw_divergence_properties():
    x = torch.randn(3, 10, 4, dtype=torch.float64)
    y = torch.randn(3, 7, 4, dtype=torch.float64)
    for metric in ("cosine", "sqeuclidean"):
        assert (dtw.soft_dtw_divergence(x, x, 0.5, metric) == 0).all()
        d = dtw.soft_dtw_divergence(x, y, 0.5, metric)
        assert (d >= 0).all()
        np.testing.assert_allclose(d.numpy(), dtw.soft_dtw_divergence(y, x, 0.5, metric).numpy(), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# validation and backend selection


def test_input_validation_errors():
    X = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        dtw.pairwise(X, X, gamma=-0.1, backend="cpu")
    with pytest.raises(ValueError, match="finite"):
        dtw.pairwise(X, X, gamma=float("nan"), backend="cpu")
    with pytest.raises(ValueError, match="feature dimensions differ"):
        dtw.pairwise(X, np.zeros((2, 3, 5)), backend="cpu")
    with pytest.raises(ValueError, match="empty sequences"):
        dtw.pairwise(np.zeros((2, 0, 4)), X, backend="cpu")
    with pytest.raises(ValueError, match="is empty"):
        dtw.pairwise(np.zeros((0, 3, 4)), X, backend="cpu")
    with pytest.raises(ValueError, match="0 features"):
        dtw.pairwise(np.zeros((2, 3, 0)), np.zeros((2, 3, 0)), backend="cpu")
    with pytest.raises(ValueError, match="shape"):
        dtw.pairwise(np.zeros((3, 4)), X, backend="cpu")
    with pytest.raises(ValueError, match="band"):
        dtw.pairwise(X, X, band=-1, backend="cpu")
    with pytest.raises(ValueError, match="band"):
        dtw.pairwise(X, X, band=1.5, backend="cpu")
    with pytest.raises(ValueError, match="metric"):
        dtw.pairwise(X, X, metric="l1", backend="cpu")
    with pytest.raises(ValueError, match="backend"):
        dtw.pairwise(X, X, backend="gpu")
    with pytest.raises(ValueError, match="finite"):
        dtw.pairwise(np.full((2, 3, 4), np.nan), X, backend="cpu")
    with pytest.raises(ValueError, match="empty"):
        dtw.dtw_batch(np.zeros((1, 0, 3)), backend="cpu")
    with pytest.raises(ValueError, match="shape"):
        dtw.dtw_batch(np.zeros((3, 3)), backend="cpu")
    with pytest.raises(ValueError, match="gamma > 0"):
        dtw.soft_dtw(torch.zeros(1, 2, 2), 0.0)
    with pytest.raises(ValueError, match="gamma"):
        dtw.soft_dtw(torch.zeros(1, 2, 2), -1.0)
    with pytest.raises(ValueError, match="empty"):
        dtw.soft_dtw(torch.zeros(1, 0, 2), 1.0)
    with pytest.raises(ValueError, match="lengths"):
        dtw.soft_dtw(torch.zeros(2, 3, 3), 1.0, lengths=([3, 0], [3, 3]))
    with pytest.raises(ValueError, match="lengths"):
        dtw.soft_dtw(torch.zeros(2, 3, 3), 1.0, lengths=([3, 4], [3, 3]))


def test_cupy_backend_without_gpu_raises_clearly():
    if dtw.cupy_available():
        pytest.skip("a usable GPU is present")
    with pytest.raises(RuntimeError, match="backend='cupy' needs CuPy and a CUDA GPU"):
        dtw.pairwise(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), backend="cupy")
    assert dtw.resolve_backend("auto") == "cpu"


def test_cuda_source_compiles_with_nvcc(tmp_path: Path):
    nvcc = shutil.which("nvcc") or ("/usr/local/bin/nvcc" if Path("/usr/local/bin/nvcc").exists() else None)
    if nvcc is None:
        pytest.skip("nvcc not found")
    src = tmp_path / "dtw.cu"
    src.write_text(dtw_cuda.nvcc_instantiations())
    res = subprocess.run(
        [
            nvcc,
            "-arch=sm_90",
            "-cubin",
            "-std=c++17",
            "--use_fast_math",
            "-Xptxas",
            "-v",
            "-o",
            str(tmp_path / "dtw.cubin"),
            str(src),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    assert (tmp_path / "dtw.cubin").stat().st_size > 0
    # no kernel may spill its DP row to local memory
    assert "bytes spill stores" in res.stderr
    spills = [
        ln for ln in res.stderr.splitlines() if "spill stores" in ln and not ln.strip().startswith("0 bytes")
    ]
    assert not spills, spills


def test_cuda_source_compiles_with_nvrtc_name_expressions():
    """The exact RawModule source and template names CuPy will load, compiled by NVRTC (no GPU needed)."""
    compiler = pytest.importorskip("cupy.cuda.compiler")
    prog_cls = getattr(compiler, "_NVRTCProgram", None)
    if prog_cls is None:
        pytest.skip("this CuPy has no _NVRTCProgram")
    try:
        prog = prog_cls(
            dtw_cuda.CUDA_SOURCE, "dtw.cu", name_expressions=dtw_cuda.name_expressions(), method="cubin"
        )
    except Exception as exc:  # noqa: BLE001 - NVRTC library missing on this machine
        pytest.skip(f"NVRTC unavailable: {exc}")
    obj, mapping = prog.compile(
        (*dtw_cuda.NVRTC_OPTIONS, "-arch=sm_90", "--device-as-default-execution-space")
    )
    assert len(obj) > 0
    assert set(mapping) == set(dtw_cuda.name_expressions())


def test_dtw_batch_inf_costs_act_as_a_mask():
    C = RNG.random((3, 8, 12))
    mask = dtw.band_mask(8, 12, 1)
    Cinf = np.where(mask, C, np.inf)
    for dt in (np.float64, np.float32):
        for gamma in (0.0, 0.05, 1.0):
            a = dtw.dtw_batch(Cinf.astype(dt), gamma, backend="cpu")
            b = dtw.dtw_batch(C.astype(dt), gamma, band=1, backend="cpu")
            assert np.isfinite(a).all()
            np.testing.assert_allclose(a, b, rtol=1e-6 if dt == np.float32 else 1e-12)
    # everything forbidden: +inf, not NaN
    assert np.isposinf(dtw.dtw_batch(np.full((1, 3, 3), np.inf), 0.5, backend="cpu")).all()
    assert np.isposinf(dtw.dtw_batch(np.full((1, 3, 3), np.inf), 0.0, backend="cpu")).all()


def test_dtw_path_matches_hard_dtw_and_tslearn():
    for m, n, band in [(1, 1, None), (1, 6, None), (7, 1, None), (9, 13, None), (12, 8, 1), (10, 10, 0)]:
        C = np.random.default_rng(m * 17 + n).random((m, n))
        path, cost = dtw.dtw_path(C, band=band)
        assert path[0] == (0, 0) and path[-1] == (m - 1, n - 1)
        steps = {(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(path)}
        assert steps <= {(1, 0), (0, 1), (1, 1)}
        assert cost == pytest.approx(sum(C[i, j] for i, j in path), rel=1e-12)
        assert cost == pytest.approx(dtw.dtw_batch(C[None], 0.0, band, backend="cpu")[0], rel=1e-12)
        assert all(dtw.band_mask(m, n, band)[i, j] for i, j in path)
    tsm = pytest.importorskip("tslearn.metrics")
    C = RNG.random((11, 14))
    p_ts, s_ts = tsm.dtw_path_from_metric(C, metric="precomputed")
    path, cost = dtw.dtw_path(C)
    assert path == [tuple(p) for p in p_ts]
    assert cost == pytest.approx(s_ts, rel=1e-12)
