"""GPU tests of finepseudo.align.dtw (CuPy backend). Skipped unless CuPy has a usable CUDA GPU.

Oracles: tests/data/dtw_golden.npz (float64 values made on the CPU with the reference and checked
against tslearn by tests/data/make_dtw_golden.py; the GPU machine has no tslearn) and the CPU
backend on the same inputs. Tolerance for float32 kernels vs float64 oracles: rtol 1e-5 on values
(plus atol 1e-5 x the largest |value| of the matrix, for soft-DTW values that cross zero) and atol
1e-5 on the expected alignment E (stored-weight backward, see finepseudo.align.dtw).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from finepseudo.align import dtw
from finepseudo.align.dtw.common import _cupy_probe
from finepseudo.align.dtw.reference import _reference

pytestmark = pytest.mark.gpu

if not dtw.cupy_available():
    pytest.skip(f"no usable CuPy GPU: {_cupy_probe()}", allow_module_level=True)

import cupy

GOLD_PATH = Path(__file__).parent / "data" / "dtw_golden.npz"
GOLD = np.load(GOLD_PATH)
CASES = sorted({k.split("_")[1] for k in GOLD.files if k.startswith("pw_") and k.endswith("_X")})
GAMMAS = [0.0, 0.01, 0.1, 1.0]
BANDS = [None, 2]


def _key(case: str, metric: str, gamma: float, band: int | None) -> str:
    return f"pw_{case}_{metric}_g{gamma:g}_b{'none' if band is None else band}"


def _close(got: np.ndarray, ref: np.ndarray, rtol: float = 1e-5) -> None:
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * float(np.abs(ref).max()))


def test_golden_file_is_complete():
    assert set(CASES) == {"a", "b", "c", "d", "e"}
    assert len(GOLD.files) == 105


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
def test_pairwise_cupy_vs_golden(case, metric):
    X = GOLD[f"pw_{case}_X"]
    Y = GOLD[f"pw_{case}_Y"]
    for gamma, band in itertools.product(GAMMAS, BANDS):
        ref = GOLD[_key(case, metric, gamma, band)]
        got = dtw.pairwise(X, Y, gamma=gamma, metric=metric, band=band, backend="cupy")
        assert got.shape == ref.shape and got.dtype == np.float32
        _close(got, ref)


@pytest.mark.parametrize("case", CASES)
def test_pairwise_cupy_vs_cpu_backend(case):
    X = GOLD[f"pw_{case}_X"]
    Y = GOLD[f"pw_{case}_Y"]
    for gamma, band in itertools.product([0.0, 0.05], [None, 0, 3]):
        cpu = dtw.pairwise(X, Y, gamma=gamma, band=band, backend="cpu")
        gpu = dtw.pairwise(X, Y, gamma=gamma, band=band, backend="cupy")
        _close(gpu, cpu)
        # the transposed problem goes through the other orientation of the kernel
        gpu_t = dtw.pairwise(Y, X, gamma=gamma, band=band, backend="cupy")
        _close(gpu_t.T, cpu)


@pytest.mark.parametrize("T,T2", [(8, 8), (16, 16), (32, 20), (64, 64), (100, 90)])
def test_pairwise_cupy_random_sets_vs_cpu(T, T2):
    rng = np.random.default_rng(T * 7 + T2)
    X = rng.normal(size=(37, T, 24)).astype(np.float32)
    Y = rng.normal(size=(29, T2, 24)).astype(np.float32)
    for gamma in (0.0, 0.01, 1.0):
        cpu = dtw.pairwise(X, Y, gamma=gamma, backend="cpu")
        for cp in (None, 100):  # default chunks and many small chunks
            gpu = dtw.pairwise(X, Y, gamma=gamma, backend="cupy", chunk_pairs=cp)
            _close(gpu, cpu)


def test_pairwise_auto_picks_cupy_and_accepts_torch_cuda_and_cupy_arrays():
    assert dtw.resolve_backend("auto") == "cupy"
    X = torch.randn(5, 12, 16, device="cuda")
    Y = torch.randn(4, 10, 16, device="cuda")
    a = dtw.pairwise(X, Y, gamma=0.1)
    b = dtw.pairwise(X.cpu().numpy(), Y.cpu().numpy(), gamma=0.1, backend="cpu")
    _close(a, b)
    c = dtw.pairwise(cupy.asarray(X.cpu().numpy()), cupy.asarray(Y.cpu().numpy()), gamma=0.1, backend="cupy")
    _close(c, b)
    # non-contiguous input
    Xnc = torch.randn(12, 5, 16, device="cuda").transpose(0, 1)
    _close(dtw.pairwise(Xnc, Y, backend="cupy"), dtw.pairwise(Xnc.cpu(), Y.cpu(), backend="cpu"))


def test_dtw_batch_cupy_vs_cpu_and_golden_closed_forms():
    rng = np.random.default_rng(0)
    for m, n in [(1, 1), (1, 7), (9, 1), (12, 16), (40, 70)]:
        C = (rng.random((50, m, n)) * 2).astype(np.float32)
        for gamma, band in itertools.product([0.0, 0.1, 1.0], [None, 1]):
            _close(
                dtw.dtw_batch(C, gamma, band, backend="cupy"), dtw.dtw_batch(C, gamma, band, backend="cpu")
            )
    # zeros vs ones golden (sq-Euclid cost 8 per cell) and -log Delannoy(9, 9)
    C = np.full((1, 10, 12), 8.0, dtype=np.float32)
    assert dtw.dtw_batch(C, 1.0, backend="cupy")[0] == pytest.approx(91.98061035026274, rel=1e-5)
    Z = np.zeros((1, 10, 10), dtype=np.float32)
    assert dtw.dtw_batch(Z, 1.0, backend="cupy")[0] == pytest.approx(-14.195700934083442, rel=1e-5)


@pytest.mark.parametrize("gamma", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("band", [None, 1])
def test_training_op_cupy_vs_golden(gamma, band):
    C = torch.tensor(GOLD["tr_C"], device="cuda", requires_grad=True)
    lx = torch.tensor(GOLD["tr_lx"], device="cuda")
    ly = torch.tensor(GOLD["tr_ly"], device="cuda")
    tag = f"tr_g{gamma:g}_b{'none' if band is None else band}"
    v = dtw.soft_dtw(C, gamma, band=band, lengths=(lx, ly), backend="cupy")
    w = torch.linspace(0.5, 2.0, C.shape[0], device="cuda")
    (v * w).sum().backward()
    ref_v = GOLD[f"{tag}_val"]
    ref_E = GOLD[f"{tag}_E"]
    np.testing.assert_allclose(v.detach().cpu().numpy(), ref_v, rtol=1e-5, atol=1e-5)
    g = C.grad.cpu().numpy() / w.cpu().numpy()[:, None, None]
    assert np.isfinite(g).all()
    assert np.abs(g - ref_E).max() < 1e-5


@pytest.mark.parametrize("B,M,N", [(64, 16, 16), (32, 64, 48), (8, 1, 30), (4, 1100, 30), (3, 30, 1100)])
@pytest.mark.parametrize("gamma", [0.01, 1.0])
def test_training_op_cupy_vs_cpu(B, M, N, gamma):
    g = torch.Generator().manual_seed(B * M + N)
    x = torch.nn.functional.normalize(torch.randn(B, M, 32, generator=g), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(B, N, 32, generator=g), dim=-1)
    C = dtw.cost_matrix(x, y).float()
    band = 3 if M == N else None
    c_gpu = C.cuda().requires_grad_(True)
    c_cpu = C.clone().requires_grad_(True)
    vg = dtw.soft_dtw(c_gpu, gamma, band=band, backend="cupy")
    vc = dtw.soft_dtw(c_cpu, gamma, band=band, backend="cpu")
    vg.sum().backward()
    vc.sum().backward()
    np.testing.assert_allclose(vg.detach().cpu().numpy(), vc.detach().numpy(), rtol=1e-5)
    assert float((c_gpu.grad.cpu() - c_cpu.grad).abs().max()) < 1e-5


def test_training_op_auto_uses_cupy_on_cuda_float32_and_torch_for_float64():
    C = torch.rand(4, 9, 7, device="cuda", dtype=torch.float64, requires_grad=True)
    v = dtw.soft_dtw(C, 0.3)  # float64 on CUDA: generic torch path
    v.sum().backward()
    ref = [_reference(c, 0.3) for c in C.detach().cpu().numpy()]
    np.testing.assert_allclose(v.detach().cpu().numpy(), [r[0] for r in ref], rtol=1e-12)
    np.testing.assert_allclose(C.grad.cpu().numpy(), np.stack([r[1] for r in ref]), atol=1e-12)
    C32 = C.detach().float().requires_grad_(True)
    v32 = dtw.soft_dtw(C32, 0.3)
    v32.sum().backward()
    np.testing.assert_allclose(v32.detach().cpu().numpy(), [r[0] for r in ref], rtol=1e-5)
    assert np.abs(C32.grad.cpu().numpy() - np.stack([r[1] for r in ref])).max() < 1e-5


def test_divergence_on_gpu():
    x = torch.randn(6, 20, 8, device="cuda")
    y = torch.randn(6, 15, 8, device="cuda")
    d = dtw.soft_dtw_divergence(x, y, 0.1)
    assert (d >= -1e-4).all()
    assert float(dtw.soft_dtw_divergence(x, x, 0.1).abs().max()) == 0.0
    dc = dtw.soft_dtw_divergence(x.cpu(), y.cpu(), 0.1)
    np.testing.assert_allclose(d.cpu().numpy(), dc.numpy(), rtol=1e-4, atol=1e-4)
