"""Dynamic time warping and soft-DTW: the one module of finepseudo that owns alignment
(design notes: docs/dtw.md).

Definitions. For a cost matrix ``C`` of shape ``(m, n)``::

    R[0, 0] = 0,  R[i, 0] = R[0, j] = +inf
    R[i, j] = C[i-1, j-1] + min_gamma(R[i-1, j-1], R[i-1, j], R[i, j-1])

``min_0`` is the hard minimum (DTW), ``min_gamma(a, b, c) = -gamma log(e^{-a/gamma} + e^{-b/gamma} +
e^{-c/gamma})`` for ``gamma > 0`` (soft-DTW). The value is ``R[m, n]``: the un-normalised sum of
costs along the (soft-)best path. Costs: ``"cosine"`` ``C = 1 - <x/|x|, y/|y|>`` (frames are
L2-normalised inside, so ``C`` lies in [0, 2]) or ``"sqeuclidean"`` ``C = |x - y|^2``.

Band: ``band=r`` is a Sakoe-Chiba radius with tslearn's semantics (``sakoe_chiba_radius``):
cell ``(i, j)`` is allowed when ``-(r + max(m-n, 0)) <= j - i <= r + max(n-m, 0)``, i.e. the band is
widened by ``|m - n|`` so a path always exists. ``band=None`` means no constraint.

Shapes and entry points
-----------------------
``pairwise(X, Y, gamma=0.0, metric="cosine", band=None, backend="auto")``
    ``X`` ``(N, T, F)``, ``Y`` ``(M, T2, F)`` (NumPy, torch or CuPy arrays) -> ``(N, M)`` NumPy array
    of alignment costs, computed in chunks of pairs so memory stays bounded. Per chunk the costs
    of all pairs come from ONE matrix product laid out pair-innermost ``S[i, u, j, l]``; the
    recursion then runs vectorised across pairs (CPU) or one thread per pair (CUDA).
``cost_matrix(x, y, metric)``
    ``(..., m, F)`` x ``(..., n, F)`` -> ``(..., m, n)`` (NumPy or torch; differentiable in torch).
``dtw_batch(C, gamma=0.0, band=None)``
    a batch of cost matrices ``(B, m, n)`` -> ``(B,)`` NumPy values, no gradient.
``soft_dtw(C, gamma, band=None, lengths=None)``
    torch autograd op, ``(B, m, n)`` -> ``(B,)``. The forward stores the soft-min weights of every
    cell and the backward is the linear recursion ``E[i,j] = E[i+1,j+1] w + E[i+1,j] w' +
    E[i,j+1] w''`` (stored-weight backward, no exp: accurate to ~1e-6 in float32 for any gamma).
    ``lengths=(lx, ly)`` gives per-pair lengths inside a padded batch.
``soft_dtw_divergence(x, y, gamma, metric="cosine", band=None)``
    ``s(x, y) - s(x, x)/2 - s(y, y)/2`` on batches of sequences (torch, differentiable).

Backends: ``"cpu"`` (NumPy / PyTorch on the CPU, float64 when the inputs are float64, else
float32), ``"cupy"`` (CuPy RawKernels from :mod:`finepseudo.dtw_cuda`, float32) and ``"auto"``
(CuPy only when it imports, ``cupy.cuda.is_available()`` and a device operation succeeds).

Example
-------
>>> import numpy as np
>>> from finepseudo import dtw
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(5, 16, 32)).astype(np.float32)
>>> Y = rng.normal(size=(7, 12, 32)).astype(np.float32)
>>> D = dtw.pairwise(X, Y, gamma=0.0, metric="cosine", band=4, backend="cpu")
>>> D.shape
(5, 7)
>>> import torch
>>> C = dtw.cost_matrix(torch.randn(3, 8, 4, requires_grad=True), torch.randn(3, 6, 4))
>>> dtw.soft_dtw(C, gamma=0.1).sum().backward()
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

__all__ = [
    "BACKENDS",
    "METRICS",
    "band_limits",
    "band_mask",
    "cost_matrix",
    "cupy_available",
    "dtw_batch",
    "dtw_path",
    "pairwise",
    "resolve_backend",
    "soft_dtw",
    "soft_dtw_divergence",
]

METRICS = ("cosine", "sqeuclidean")
BACKENDS = ("auto", "cpu", "cupy")

_NO_BAND = 1 << 30
_EPS = 1e-12

# ----------------------------------------------------------------------------------------------
# validation helpers


def _check_gamma(gamma: float, *, strict: bool = False) -> float:
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"gamma must be a number, got {gamma!r}") from None
    if not math.isfinite(g):
        raise ValueError(f"gamma must be finite, got {gamma!r}")
    if strict and g <= 0.0:
        raise ValueError(
            f"soft_dtw needs gamma > 0, got {gamma!r}; for hard DTW use dtw_batch/pairwise with gamma=0"
        )
    if g < 0.0:
        raise ValueError(f"gamma must be >= 0 (0 = hard DTW), got {gamma!r}")
    return g


def _check_band(band: int | None) -> int | None:
    if band is None:
        return None
    if isinstance(band, bool) or not isinstance(band, (int, np.integer)):
        # ValueError on purpose: the API promises ValueError for every bad band argument
        raise ValueError(f"band must be None or a non-negative integer Sakoe-Chiba radius, got {band!r}")  # noqa: TRY004
    if band < 0:
        raise ValueError(f"band (Sakoe-Chiba radius) must be >= 0, got {band}")
    return int(band)


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


def band_limits(m: int, n: int, band: int | None) -> tuple[int, int]:
    """``(lo, hi)`` such that cell ``(i, j)`` of an ``m x n`` matrix is allowed iff ``-lo <= j-i <= hi``.

    tslearn semantics: radius ``band`` widened by ``|m - n|`` on the long side.
    """
    band = _check_band(band)
    if band is None:
        return _NO_BAND, _NO_BAND
    return band + max(m - n, 0), band + max(n - m, 0)


def band_mask(m: int, n: int, band: int | None) -> np.ndarray:
    """Boolean ``(m, n)`` mask of the allowed cells (equals tslearn's ``sakoe_chiba_mask == 0``)."""
    lo, hi = band_limits(m, n, band)
    d = np.arange(n)[None, :] - np.arange(m)[:, None]
    return (d >= -lo) & (d <= hi)


# ----------------------------------------------------------------------------------------------
# backend selection


@functools.lru_cache(maxsize=1)
def _cupy_probe() -> str | None:
    """None when CuPy has a usable GPU, else the reason why not."""
    try:
        import cupy
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken CUDA install
        return f"cupy does not import ({type(exc).__name__}: {exc})"
    try:
        if not cupy.cuda.is_available():
            return "cupy.cuda.is_available() is False (no CUDA GPU or driver)"
        x = cupy.arange(4, dtype=cupy.float32)
        if float((x * 2).sum()) != 12.0:
            return "a CuPy test operation returned a wrong result"
    except Exception as exc:  # noqa: BLE001 - any CUDA error means: no usable GPU
        return f"a CuPy device operation failed ({type(exc).__name__}: {exc})"
    return None


def cupy_available() -> bool:
    """True when CuPy imports, sees a CUDA GPU and a device operation succeeds."""
    return _cupy_probe() is None


def resolve_backend(backend: str) -> str:
    """Map ``"auto"``/``"cpu"``/``"cupy"`` to ``"cpu"`` or ``"cupy"``; raise if CuPy is asked for but unusable."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cpu":
        return "cpu"
    reason = _cupy_probe()
    if backend == "cupy":
        if reason is not None:
            raise RuntimeError(f"backend='cupy' needs CuPy and a CUDA GPU, but {reason}; use backend='cpu'")
        return "cupy"
    return "cupy" if reason is None else "cpu"


def _is_cupy(a: Any) -> bool:
    return type(a).__module__.startswith("cupy")


# ----------------------------------------------------------------------------------------------
# array conversion


def _to_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    elif _is_cupy(a):
        a = a.get()
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype != np.float64 and a.dtype != np.float32:
        a = a.astype(np.float64 if a.dtype.kind in "iub" or a.dtype.itemsize > 4 else np.float32)
    return a


def _check_sets(X: np.ndarray, Y: np.ndarray) -> None:
    for name, a in (("X", X), ("Y", Y)):
        if a.ndim != 3:
            raise ValueError(f"{name} must have shape (n_sequences, length, features), got shape {a.shape}")
        if a.shape[0] == 0:
            raise ValueError(f"{name} is empty: it holds no sequence (shape {a.shape})")
        if a.shape[1] == 0:
            raise ValueError(f"{name} holds empty sequences (length 0, shape {a.shape})")
        if a.shape[2] == 0:
            raise ValueError(f"{name} has 0 features (shape {a.shape})")
    if X.shape[2] != Y.shape[2]:
        raise ValueError(f"feature dimensions differ: X has {X.shape[2]}, Y has {Y.shape[2]}")


# ----------------------------------------------------------------------------------------------
# cost matrices


def cost_matrix(x: Any, y: Any, metric: str = "cosine") -> Any:
    """Batched cost matrix: ``x (..., m, F)``, ``y (..., n, F)`` -> ``(..., m, n)``.

    ``"cosine"``: ``1 - <x/|x|, y/|y|>`` (a zero frame has cosine 0 with everything, cost 1);
    ``"sqeuclidean"``: ``|x - y|^2`` (clamped at 0). Works on NumPy arrays and torch tensors; for
    torch it is differentiable (the chain rule through the normalisation comes from autograd).
    """
    _check_metric(metric)
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        x = torch.as_tensor(x)
        y = torch.as_tensor(y, device=x.device)
        if x.shape[-1] != y.shape[-1]:
            raise ValueError(f"feature dimensions differ: {x.shape[-1]} vs {y.shape[-1]}")
        if metric == "cosine":
            xn = x / x.norm(dim=-1, keepdim=True).clamp_min(_EPS)
            yn = y / y.norm(dim=-1, keepdim=True).clamp_min(_EPS)
            return 1.0 - xn @ yn.transpose(-1, -2)
        d = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2.0 * (x @ y.transpose(-1, -2))
        return d.clamp_min(0.0)
    x = _to_numpy(x, "x")
    y = _to_numpy(y, "y")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"feature dimensions differ: {x.shape[-1]} vs {y.shape[-1]}")
    dt = np.result_type(x.dtype, y.dtype)
    x = x.astype(dt, copy=False)
    y = y.astype(dt, copy=False)
    if metric == "cosine":
        xn = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)
        yn = y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), _EPS)
        return 1.0 - xn @ np.swapaxes(yn, -1, -2)
    d = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2.0 * (x @ np.swapaxes(y, -1, -2))
    return np.maximum(d, 0.0)


# ----------------------------------------------------------------------------------------------
# CPU recursion, vectorised across pairs.
# C has layout (m, A, n, B): row i of the DP reads C[i] (A, n, B); the pair index is (a, b) and
# the innermost axis B is contiguous. This is exactly the layout of one GEMM of rows (i, u)
# against columns (j, l), so no copy is needed between the GEMM and the DP.


def _dp_hard_cpu(C: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Hard DTW over pair-innermost costs ``C (m, A, n, B)`` -> ``(A, B)`` (NumPy, row-wise).

    State ``R (n+1, A, B)``: one DP row, column-major so every column is one contiguous block.
    """
    m, A, n, B = C.shape
    dt = C.dtype
    inf = dt.type(np.inf)
    R = np.full((n + 1, A, B), inf, dtype=dt)
    R[0] = 0.0
    D = np.empty((n, A, B), dtype=dt)
    tmp = np.empty((A, B), dtype=dt)
    for i in range(m):
        Ci = C[i]
        jlo = max(0, i - lo)
        jhi = min(n - 1, i + hi)
        # diag/up part, vectorised along the row: D[j] = C[i, j] + min(R[i-1, j-1], R[i-1, j])
        Dr = D[jlo : jhi + 1]
        np.minimum(R[jlo : jhi + 1], R[jlo + 1 : jhi + 2], out=Dr)
        Dr += Ci[:, jlo : jhi + 1].transpose(1, 0, 2)
        R[: jlo + 1] = inf
        # left part, sequential along the row: R[i, j] = min(D[j], C[i, j] + R[i, j-1])
        for j in range(jlo, jhi + 1):
            np.add(Ci[:, j], R[j], out=tmp)
            np.minimum(D[j], tmp, out=R[j + 1])
        R[jhi + 2 :] = inf
    return R[n].copy()


def _lae_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, tmp: np.ndarray, floor: np.floating) -> None:
    """``out = log(exp(a) + exp(b))`` without inf-inf and without denormals (exp argument >= floor)."""
    np.minimum(a, b, out=tmp)
    np.maximum(a, b, out=out)
    tmp -= out
    np.maximum(tmp, floor, out=tmp)
    np.exp(tmp, out=tmp)
    tmp += 1.0
    np.log(tmp, out=tmp)
    out += tmp


def _dp_soft_cpu(C: np.ndarray, gamma: float, lo: int, hi: int) -> np.ndarray:
    """Soft-DTW over pair-innermost costs ``C (m, A, n, B)`` -> ``(A, B)`` (NumPy, row-wise).

    Works on ``q = -R / gamma``: ``q[i, j] = -C[i, j]/gamma + lae(lae(q[i-1, j-1], q[i-1, j]),
    q[i, j-1])`` with ``lae(a, b) = log(e^a + e^b)``; the inner lae runs vectorised along the row,
    the outer one sequentially. Unreachable cells hold a finite sentinel (-1e30) instead of -inf,
    so no inf - inf can occur, and exponent arguments are floored (-80 in float32, -700 in
    float64; the neglected terms are < 1e-34 relative) so no denormal slows the arithmetic.
    """
    m, A, n, B = C.shape
    dt = C.dtype.type
    neg = dt(-1e30)
    floor = dt(-80.0) if C.dtype == np.float32 else dt(-700.0)
    Q = np.full((n + 1, A, B), neg, dtype=C.dtype)
    Q[0] = 0.0
    D = np.empty((n, A, B), dtype=C.dtype)
    T1 = np.empty((n, A, B), dtype=C.dtype)
    Cn = np.empty((n, A, B), dtype=C.dtype)
    t = np.empty((A, B), dtype=C.dtype)
    scale = dt(-1.0 / gamma)
    for i in range(m):
        jlo = max(0, i - lo)
        jhi = min(n - 1, i + hi)
        np.multiply(C[i].transpose(1, 0, 2), scale, out=Cn)
        np.maximum(Cn, neg, out=Cn)  # +inf costs (forbidden cells) -> sentinel
        _lae_into(Q[jlo : jhi + 1], Q[jlo + 1 : jhi + 2], D[jlo : jhi + 1], T1[jlo : jhi + 1], floor)
        Q[: jlo + 1] = neg
        for j in range(jlo, jhi + 1):
            q = Q[j + 1]
            _lae_into(D[j], Q[j], q, t, floor)
            q += Cn[j]
        Q[jhi + 2 :] = neg
    res = Q[n] * dt(-gamma)
    res[Q[n] < neg / 2] = np.inf
    return res


def _dp_cpu(C: np.ndarray, gamma: float, lo: int, hi: int) -> np.ndarray:
    if gamma == 0.0:
        return _dp_hard_cpu(C, lo, hi)
    return _dp_soft_cpu(C, gamma, lo, hi)


def _default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, min(n, torch.get_num_threads()))


def _chunk_shape(N: int, M: int, m: int, n: int, itemsize: int, chunk_pairs: int | None) -> tuple[int, int]:
    if chunk_pairs is None:
        budget = 64 << 20  # bytes of cost per chunk
        chunk_pairs = int(min(65536, max(1024, budget // (m * n * itemsize))))
    if chunk_pairs < 1:
        raise ValueError(f"chunk_pairs must be >= 1, got {chunk_pairs}")
    nl = min(M, max(1, min(chunk_pairs, 2048)))
    nu = min(N, max(1, chunk_pairs // nl))
    return nu, nl


def _pairwise_cpu(
    X: np.ndarray,
    Y: np.ndarray,
    gamma: float,
    metric: str,
    band: int | None,
    chunk_pairs: int | None,
    threads: int | None,
) -> np.ndarray:
    dt = np.float64 if (X.dtype == np.float64 and Y.dtype == np.float64) else np.float32
    X = X.astype(dt, copy=False)
    Y = Y.astype(dt, copy=False)
    N, m, F = X.shape
    M, n, _ = Y.shape
    lo, hi = band_limits(m, n, band)
    if metric == "cosine":
        X = X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), dt(_EPS))
        Y = Y / np.maximum(np.linalg.norm(Y, axis=-1, keepdims=True), dt(_EPS))
    Xr = np.ascontiguousarray(X.transpose(1, 0, 2))  # (m, N, F)
    Yr = np.ascontiguousarray(Y.transpose(1, 0, 2))  # (n, M, F)
    if metric == "sqeuclidean":
        xx = np.einsum("inf,inf->in", Xr, Xr)  # (m, N)
        yy = np.einsum("jmf,jmf->jm", Yr, Yr)  # (n, M)
    nthreads = _default_threads() if threads is None else max(1, int(threads))
    nu, nl = _chunk_shape(N, M, m, n, np.dtype(dt).itemsize, chunk_pairs)
    if chunk_pairs is None and nthreads > 1:
        # at least two tiles per worker (load balance), but keep >= ~2048 pairs per tile
        while -(-N // nu) * -(-M // nl) < 2 * nthreads and nu * nl >= 4096:
            if nu > 1:
                nu = -(-nu // 2)
            else:
                nl = -(-nl // 2)
    out = np.empty((N, M), dtype=dt)
    tiles = [(u0, min(N, u0 + nu), l0, min(M, l0 + nl)) for u0 in range(0, N, nu) for l0 in range(0, M, nl)]

    def work(tile: tuple[int, int, int, int]) -> None:
        u0, u1, l0, l1 = tile
        a = Xr[:, u0:u1].reshape(m * (u1 - u0), F)
        b = Yr[:, l0:l1].reshape(n * (l1 - l0), F)
        S = a @ b.T  # ONE GEMM: rows (i, u), columns (j, l)
        C = S.reshape(m, u1 - u0, n, l1 - l0)
        if metric == "cosine":
            np.subtract(dt(1.0), S, out=S)
        else:
            S *= dt(-2.0)
            C += xx[:, u0:u1, None, None]
            C += yy[None, None, :, l0:l1]
            np.maximum(S, dt(0.0), out=S)
        out[u0:u1, l0:l1] = _dp_cpu(C, gamma, lo, hi)

    if nthreads == 1 or len(tiles) == 1:
        for t in tiles:
            work(t)
    else:
        # each worker runs its own GEMM: keep BLAS to one thread meanwhile (no oversubscription)
        with _blas_single_thread(), ThreadPoolExecutor(max_workers=nthreads) as ex:
            for f in [ex.submit(work, t) for t in tiles]:
                f.result()
    return out


def _blas_single_thread() -> Any:
    """Context limiting BLAS to one thread (threadpoolctl, when installed; else a no-op)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


# ----------------------------------------------------------------------------------------------
# CuPy backend (forward only, float32)


def _reg_size(n: int) -> int | None:
    from .dtw_cuda import REG_SIZES

    for s in REG_SIZES:
        if n <= s:
            return s
    return None


def _launch_allpairs(
    S: Any, nu: int, nl: int, m: int, n: int, gamma: float, lo: int, hi: int, cost: int
) -> Any:
    """Run the mining kernel on ``S`` (``(m, nu, n, nl)`` float32, C-contiguous) -> cupy ``(nu, nl)``."""
    import cupy

    from .dtw_cuda import get_module

    assert S.dtype == cupy.float32 and S.flags.c_contiguous
    mod = get_module()
    soft = "true" if gamma > 0 else "false"
    out = cupy.empty((nu, nl), dtype=cupy.float32)
    P = nu * nl
    threads = 128
    grid = (P + threads - 1) // threads
    g = np.float32(gamma if gamma > 0 else 1.0)
    maxn = _reg_size(n)
    if maxn is not None:
        k = mod.get_function(f"dtw_allpairs_reg<{maxn}, {soft}, {cost}>")
        k(
            (grid,),
            (threads,),
            (
                S,
                out,
                np.int32(nu),
                np.int32(nl),
                np.int32(m),
                np.int32(n),
                np.int32(min(lo, _NO_BAND)),
                np.int32(min(hi, _NO_BAND)),
                g,
            ),
        )
    else:
        row = cupy.empty((n, P), dtype=cupy.float32)
        k = mod.get_function(f"dtw_allpairs_gmem<{soft}, {cost}>")
        k(
            (grid,),
            (threads,),
            (
                S,
                out,
                row,
                np.int32(nu),
                np.int32(nl),
                np.int32(m),
                np.int32(n),
                np.int32(min(lo, _NO_BAND)),
                np.int32(min(hi, _NO_BAND)),
                g,
            ),
        )
    return out


def _as_cupy(a: Any) -> Any:
    import cupy

    if isinstance(a, torch.Tensor):
        t = a.detach()
        if not t.is_cuda:
            return cupy.asarray(t.numpy())
        return cupy.from_dlpack(t.contiguous())
    return cupy.asarray(a)


def _pairwise_cupy(
    X: Any, Y: Any, gamma: float, metric: str, band: int | None, chunk_pairs: int | None
) -> np.ndarray:
    import cupy

    X = _as_cupy(X).astype(cupy.float32, copy=False)
    Y = _as_cupy(Y).astype(cupy.float32, copy=False)
    if not (bool(cupy.isfinite(X).all()) and bool(cupy.isfinite(Y).all())):
        raise ValueError("X and Y must be finite (no NaN or inf)")
    transposed = Y.shape[1] > X.shape[1]
    if transposed:  # keep the register row (columns) on the shorter side; DTW and band are symmetric
        X, Y = Y, X
    N, m, F = X.shape
    M, n, _ = Y.shape
    lo, hi = band_limits(m, n, band)
    if metric == "cosine":
        X = X / cupy.maximum(cupy.linalg.norm(X, axis=-1, keepdims=True), np.float32(_EPS))
        Y = Y / cupy.maximum(cupy.linalg.norm(Y, axis=-1, keepdims=True), np.float32(_EPS))
    Xr = cupy.ascontiguousarray(X.transpose(1, 0, 2))
    Yr = cupy.ascontiguousarray(Y.transpose(1, 0, 2))
    if metric == "sqeuclidean":
        xx = (Xr * Xr).sum(-1)
        yy = (Yr * Yr).sum(-1)
    if chunk_pairs is None:
        chunk_pairs = int(min(1 << 22, max(4096, (1 << 30) // (m * n * 4))))  # ~1 GiB of costs
    nl = min(M, max(1, min(chunk_pairs, 8192)))
    nu = min(N, max(1, chunk_pairs // nl))
    out = cupy.empty((N, M), dtype=cupy.float32)
    for u0 in range(0, N, nu):
        u1 = min(N, u0 + nu)
        a = Xr[:, u0:u1].reshape(m * (u1 - u0), F)
        for l0 in range(0, M, nl):
            l1 = min(M, l0 + nl)
            b = Yr[:, l0:l1].reshape(n * (l1 - l0), F)
            S = cupy.matmul(a, b.T)
            if metric == "sqeuclidean":
                C = S.reshape(m, u1 - u0, n, l1 - l0)
                C *= np.float32(-2.0)
                C += xx[:, u0:u1, None, None]
                C += yy[None, None, :, l0:l1]
                cupy.maximum(S, np.float32(0.0), out=S)
                cost = 0
            else:
                cost = 1
            out[u0:u1, l0:l1] = _launch_allpairs(S, u1 - u0, l1 - l0, m, n, gamma, lo, hi, cost)
    res = out.get()
    return res.T.copy() if transposed else res


# ----------------------------------------------------------------------------------------------
# public forward-only API


def pairwise(
    X: Any,
    Y: Any,
    *,
    gamma: float = 0.0,
    metric: str = "cosine",
    band: int | None = None,
    backend: str = "auto",
    chunk_pairs: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """All-pairs (soft-)DTW between two sets of sequences.

    Args:
        X: ``(N, T, F)`` array (NumPy, torch or CuPy).
        Y: ``(M, T2, F)`` array.
        gamma: 0 for hard DTW, > 0 for soft-DTW.
        metric: ``"cosine"`` (``1 - cos``, frames L2-normalised inside) or ``"sqeuclidean"``.
        band: Sakoe-Chiba radius (tslearn semantics, widened by ``|T - T2|``) or None.
        backend: ``"auto"``, ``"cpu"`` or ``"cupy"``.
        chunk_pairs: pairs per chunk (memory bound); default from a ~64 MB (CPU) / 1 GiB (GPU)
            budget of costs per chunk.
        threads: CPU worker threads (default: the usable cores, at most torch's thread count).

    Returns:
        ``(N, M)`` NumPy array of un-normalised alignment costs (float64 on the CPU for float64
        inputs, else float32).
    """
    g = _check_gamma(gamma)
    _check_metric(metric)
    band = _check_band(band)
    be = resolve_backend(backend)
    if be == "cupy":
        shape_x = tuple(X.shape)
        shape_y = tuple(Y.shape)
        _check_sets(np.empty(shape_x, dtype=np.uint8), np.empty(shape_y, dtype=np.uint8))
        return _pairwise_cupy(X, Y, g, metric, band, chunk_pairs)
    Xn = _to_numpy(X, "X")
    Yn = _to_numpy(Y, "Y")
    _check_sets(Xn, Yn)
    if not (np.isfinite(Xn).all() and np.isfinite(Yn).all()):
        raise ValueError("X and Y must be finite (no NaN or inf)")
    return _pairwise_cpu(Xn, Yn, g, metric, band, chunk_pairs, threads)


def dtw_batch(C: Any, gamma: float = 0.0, band: int | None = None, *, backend: str = "auto") -> np.ndarray:
    """(Soft-)DTW of a batch of cost matrices ``C (B, m, n)`` -> ``(B,)`` NumPy array (no gradient).

    Costs may be any finite reals (``+inf`` entries mark forbidden cells); float64 inputs are
    computed in float64 on the CPU backend.
    """
    g = _check_gamma(gamma)
    band = _check_band(band)
    if len(getattr(C, "shape", ())) != 3:
        raise ValueError(f"C must have shape (batch, m, n), got {getattr(C, 'shape', None)}")
    B, m, n = (int(s) for s in C.shape)
    if B == 0 or m == 0 or n == 0:
        raise ValueError(f"C is empty (shape {(B, m, n)}); sequences must have length >= 1")
    if np.isnan(_to_numpy(C, "C") if not _is_cupy(C) else C.get()).any():
        raise ValueError("C contains NaN")
    lo, hi = band_limits(m, n, band)
    be = resolve_backend(backend)
    if be == "cupy":
        import cupy

        Cc = _as_cupy(C).astype(cupy.float32)
        S = cupy.ascontiguousarray(Cc.transpose(1, 2, 0))  # (m, n, B) == (m, 1, n, B)
        return _launch_allpairs(S, 1, B, m, n, g, lo, hi, 0).get()[0]
    Cn = _to_numpy(C, "C")
    S = np.ascontiguousarray(Cn.transpose(1, 2, 0)).reshape(m, 1, n, B)
    return _dp_cpu(S, g, lo, hi)[0]


# ----------------------------------------------------------------------------------------------
# training op: soft-DTW with stored soft-min weights (torch autograd)


def _lengths(
    lengths: Sequence[Any] | None, B: int, M: int, N: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    if lengths is None:
        lx = torch.full((B,), M, dtype=torch.long, device=device)
        ly = torch.full((B,), N, dtype=torch.long, device=device)
        return lx, ly
    if len(lengths) != 2:
        raise ValueError("lengths must be a pair (lengths_x, lengths_y) of (B,) integer arrays")
    lx = torch.as_tensor(lengths[0], device=device).long().reshape(-1)
    ly = torch.as_tensor(lengths[1], device=device).long().reshape(-1)
    if lx.numel() != B or ly.numel() != B:
        raise ValueError(f"lengths must have {B} entries each, got {lx.numel()} and {ly.numel()}")
    if bool((lx < 1).any()) or bool((ly < 1).any()):
        raise ValueError("lengths must be >= 1 (empty sequences are not allowed)")
    if bool((lx > M).any()) or bool((ly > N).any()):
        raise ValueError(f"lengths exceed the padded cost matrix size ({M}, {N})")
    return lx, ly


def _valid_mask(B: int, M: int, N: int, lx: torch.Tensor, ly: torch.Tensor, band: int | None) -> torch.Tensor:
    dev = lx.device
    i = torch.arange(M, device=dev)[None, :, None]
    j = torch.arange(N, device=dev)[None, None, :]
    lxb = lx[:, None, None]
    lyb = ly[:, None, None]
    ok = (i < lxb) & (j < lyb)
    if band is not None:
        lo = band + (lxb - lyb).clamp_min(0)
        hi = band + (lyb - lxb).clamp_min(0)
        d = j - i
        ok = ok & (d >= -lo) & (d <= hi)
    return ok


def _skew_index(M: int, N: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index arrays for the skewed layout: entry (p, i) <-> cell (i, p - i), p in [0, M+N-1)."""
    p = torch.arange(M + N - 1, device=device)[:, None]
    i = torch.arange(M, device=device)[None, :]
    j = p - i
    ok = (j >= 0) & (j < N)
    return i.expand_as(j), j.clamp(0, N - 1), ok


def _sdtw_fwd_torch(C: torch.Tensor, gamma: float, lx: torch.Tensor, ly: torch.Tensor, band: int | None):
    """Anti-diagonal forward vectorised across the batch. Returns values (B,) and weights W.

    Storage is skewed, 1-based: ``Rs[p, i] = R[i, p - i]`` for ``p`` in ``[0, M+N]``, ``i`` in
    ``[0, M]``, batch innermost. ``W[k, p, i]`` (k = diag, up, left) is written for real cells
    and is 0 elsewhere (padding rows/diagonals let the backward read successors without guards).
    """
    B, M, N = C.shape
    dev, dt = C.device, C.dtype
    inf = math.inf
    valid = _valid_mask(B, M, N, lx, ly, band)
    Cm = C.masked_fill(~valid, inf)
    ii, jj, ok = _skew_index(M, N, dev)
    Cs = Cm.permute(1, 2, 0)[ii, jj]  # (M+N-1, M, B)
    Cs = Cs.masked_fill(~ok[:, :, None], inf)
    Rs = torch.full((M + N + 1, M + 1, B), inf, dtype=dt, device=dev)
    Rs[0, 0] = 0.0
    W = torch.zeros((3, M + N + 3, M + 2, B), dtype=dt, device=dev)
    inv_g = 1.0 / gamma
    for p in range(2, M + N + 1):
        lo = max(1, p - N)
        hi = min(M, p - 1)
        a = Rs[p - 2, lo - 1 : hi]
        b = Rs[p - 1, lo - 1 : hi]
        c = Rs[p - 1, lo : hi + 1]
        cost = Cs[p - 2, lo - 1 : hi]
        mn = torch.minimum(torch.minimum(a, b), c)
        mn = torch.where(torch.isinf(mn), torch.zeros_like(mn), mn)  # all-unreachable guard
        ea = torch.exp((mn - a) * inv_g)
        eb = torch.exp((mn - b) * inv_g)
        ec = torch.exp((mn - c) * inv_g)
        s = ea + eb + ec  # 0 when every predecessor is +inf
        Rs[p, lo : hi + 1] = cost + mn - gamma * torch.log(s)  # log 0 = -inf -> R = +inf
        inv_s = torch.where(s > 0, 1.0 / s, torch.zeros_like(s))
        W[0, p, lo : hi + 1] = ea * inv_s
        W[1, p, lo : hi + 1] = eb * inv_s
        W[2, p, lo : hi + 1] = ec * inv_s
    bidx = torch.arange(B, device=dev)
    vals = Rs[lx + ly, lx, bidx]
    return vals, W


def _sdtw_bwd_torch(W: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor, M: int, N: int) -> torch.Tensor:
    """Linear backward from stored weights -> E (B, M, N) = d value / d C."""
    _, _, _, B = W.shape
    dev, dt = W.device, W.dtype
    Es = torch.zeros((M + N + 3, M + 2, B), dtype=dt, device=dev)
    bidx = torch.arange(B, device=dev)
    seed = torch.zeros_like(Es)
    seed[lx + ly, lx, bidx] = 1.0
    for p in range(M + N, 1, -1):
        lo = max(1, p - N)
        hi = min(M, p - 1)
        e = seed[p, lo : hi + 1].clone()
        e += Es[p + 2, lo + 1 : hi + 2] * W[0, p + 2, lo + 1 : hi + 2]
        e += Es[p + 1, lo + 1 : hi + 2] * W[1, p + 1, lo + 1 : hi + 2]
        e += Es[p + 1, lo : hi + 1] * W[2, p + 1, lo : hi + 1]
        Es[p, lo : hi + 1] = e
    i = torch.arange(M, device=dev)[:, None]
    j = torch.arange(N, device=dev)[None, :]
    E = Es[i + j + 2, i + 1]  # (M, N, B)
    return E.permute(2, 0, 1).contiguous()


def _cupy_training_ok(C: torch.Tensor) -> bool:
    return C.is_cuda and C.dtype in (torch.float32, torch.float16, torch.bfloat16) and cupy_available()


def _torch_stream(device: torch.device) -> Any:
    """A CuPy stream object for torch's current stream on ``device`` (use as a context manager)."""
    import warnings

    import cupy

    ts = torch.cuda.current_stream(device)
    from_external = getattr(cupy.cuda.Stream, "from_external", None)
    if from_external is not None and hasattr(ts, "__cuda_stream__"):
        try:
            return from_external(ts)
        except Exception:  # noqa: BLE001, S110 - fall back to the older API below
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(ts.cuda_stream, device.index)


def _prepare_smem(k: Any, nbytes: int) -> None:
    """Opt in to more than 48 KiB of dynamic shared memory when a long sequence needs it."""
    if nbytes > 48 * 1024:
        k.max_dynamic_shared_size_bytes = nbytes


def _sdtw_fwd_cupy(C: torch.Tensor, gamma: float, lx: torch.Tensor, ly: torch.Tensor, band: int | None):
    import cupy

    from .dtw_cuda import get_module

    B, M, N = C.shape
    Cf = C.detach().to(torch.float32).contiguous()
    lx32 = lx.to(torch.int32).contiguous()
    ly32 = ly.to(torch.int32).contiguous()
    W = torch.empty((B, 3, M + N + 1, M + 1), dtype=torch.float32, device=C.device)
    out = torch.empty((B,), dtype=torch.float32, device=C.device)
    threads = int(min(1024, ((M + 31) // 32) * 32))
    k = get_module().get_function("sdtw_fwd_wave")
    smem = 3 * (M + 1) * 8
    _prepare_smem(k, smem)
    with (
        cupy.cuda.Device(C.device.index),
        _torch_stream(C.device),
    ):
        k(
            (B,),
            (threads,),
            (
                cupy.from_dlpack(Cf),
                cupy.from_dlpack(lx32),
                cupy.from_dlpack(ly32),
                np.int32(M),
                np.int32(N),
                np.float32(gamma),
                np.int32(-1 if band is None else band),
                np.int32(1),
                cupy.from_dlpack(W),
                cupy.from_dlpack(out),
            ),
            shared_mem=smem,
        )
    return out.to(C.dtype), (W, lx32, ly32)


def _sdtw_bwd_cupy(saved: tuple[torch.Tensor, torch.Tensor, torch.Tensor], M: int, N: int) -> torch.Tensor:
    import cupy

    from .dtw_cuda import get_module

    W, lx32, ly32 = saved
    B = W.shape[0]
    E = torch.zeros((B, M, N), dtype=torch.float32, device=W.device)
    threads = int(min(1024, ((M + 31) // 32) * 32))
    k = get_module().get_function("sdtw_bwd_wave")
    smem = 3 * (M + 2) * 4
    _prepare_smem(k, smem)
    with (
        cupy.cuda.Device(W.device.index),
        _torch_stream(W.device),
    ):
        k(
            (B,),
            (threads,),
            (
                cupy.from_dlpack(W),
                cupy.from_dlpack(lx32),
                cupy.from_dlpack(ly32),
                np.int32(M),
                np.int32(N),
                cupy.from_dlpack(E),
            ),
            shared_mem=smem,
        )
    return E


class _SoftDTW(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        C: torch.Tensor,
        gamma: float,
        band: int | None,
        lx: torch.Tensor,
        ly: torch.Tensor,
        use_cupy: bool,
    ) -> torch.Tensor:
        _, M, N = C.shape
        ctx.dims = (M, N)
        ctx.use_cupy = use_cupy
        ctx.out_dtype = C.dtype
        if use_cupy:
            vals, saved = _sdtw_fwd_cupy(C, gamma, lx, ly, band)
            ctx.save_for_backward(*saved)
        else:
            # the torch path accumulates in float64 whatever the input dtype: R differences of
            # neighbouring cells set the weights, and float32 rounding of |R| ~ 60 would move
            # them by ~1e-4 at gamma = 0.01
            vals, W = _sdtw_fwd_torch(C.detach().double(), gamma, lx, ly, band)
            vals = vals.to(C.dtype)
            ctx.save_for_backward(W, lx, ly)
        return vals

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor):  # type: ignore[override]
        M, N = ctx.dims
        if ctx.use_cupy:
            E = _sdtw_bwd_cupy(tuple(ctx.saved_tensors), M, N)
        else:
            W, lx, ly = ctx.saved_tensors
            E = _sdtw_bwd_torch(W, lx, ly, M, N)
        gC = (grad.to(E.dtype)[:, None, None] * E).to(ctx.out_dtype)
        return gC, None, None, None, None, None


def soft_dtw(
    C: torch.Tensor,
    gamma: float,
    band: int | None = None,
    lengths: Sequence[Any] | None = None,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Soft-DTW of a batch of cost matrices, differentiable (torch autograd).

    Args:
        C: ``(B, m, n)`` tensor of costs (any device; CUDA float32 uses the CuPy kernels when
            available, everything else the vectorised torch path).
        gamma: smoothing, must be > 0 (hard DTW: :func:`dtw_batch` / :func:`pairwise` with gamma=0).
        band: Sakoe-Chiba radius (tslearn semantics, per pair with its own lengths) or None.
        lengths: optional ``(lx, ly)``, each ``(B,)`` integers: pair ``b`` uses ``C[b, :lx[b], :ly[b]]``
            (the padding may hold anything, ``+inf`` included; it gets zero gradient).
        backend: ``"auto"``, ``"cpu"`` (torch path on the tensor's device) or ``"cupy"``.

    Returns:
        ``(B,)`` tensor of soft-DTW values. Backward gives ``grad_out[b] * E_b`` with ``E`` the
        expected alignment, computed from the soft-min weights stored in the forward.
    """
    g = _check_gamma(gamma, strict=True)
    band = _check_band(band)
    if not isinstance(C, torch.Tensor):
        raise TypeError("soft_dtw expects a torch.Tensor of costs (B, m, n); use dtw_batch for NumPy")
    if C.dim() != 3:
        raise ValueError(f"C must have shape (batch, m, n), got {tuple(C.shape)}")
    B, M, N = C.shape
    if B == 0 or M == 0 or N == 0:
        raise ValueError(f"C is empty (shape {tuple(C.shape)}); sequences must have length >= 1")
    if not C.is_floating_point():
        raise ValueError(f"C must be a floating-point tensor, got {C.dtype}")
    lx, ly = _lengths(lengths, B, M, N, C.device)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cupy":
        resolve_backend("cupy")
        if not C.is_cuda or C.dtype == torch.float64:
            raise ValueError("backend='cupy' for soft_dtw needs a CUDA tensor of float32/float16/bfloat16")
        use_cupy = True
    elif backend == "cpu":
        use_cupy = False
    else:
        use_cupy = _cupy_training_ok(C)
    return _SoftDTW.apply(C, g, band, lx, ly, use_cupy)


def soft_dtw_divergence(
    x: torch.Tensor,
    y: torch.Tensor,
    gamma: float,
    metric: str = "cosine",
    band: int | None = None,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Soft-DTW divergence ``s(x, y) - s(x, x)/2 - s(y, y)/2`` for batches ``x (B, m, F)``, ``y (B, n, F)``.

    Non-negative for cosine and squared-Euclidean costs, zero for ``x == y``; differentiable.
    """
    if x.dim() != 3 or y.dim() != 3 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must be (B, m, F) and (B, n, F), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    sxy = soft_dtw(cost_matrix(x, y, metric), gamma, band, backend=backend)
    sxx = soft_dtw(cost_matrix(x, x, metric), gamma, band, backend=backend)
    syy = soft_dtw(cost_matrix(y, y, metric), gamma, band, backend=backend)
    return sxy - 0.5 * sxx - 0.5 * syy


# ----------------------------------------------------------------------------------------------
# float64 reference (plain loops; the oracle for tests and golden files)


def _reference(C: np.ndarray, gamma: float, band: int | None = None) -> tuple[float, np.ndarray | None]:
    """Float64 reference for one cost matrix ``(m, n)``: ``(value, E)``.

    ``E = d value / d C`` by the stored-weight backward (``None`` for hard DTW, ``gamma == 0``).
    """
    C = np.asarray(C, dtype=np.float64)
    m, n = C.shape
    ok = band_mask(m, n, band)
    R = np.full((m + 1, n + 1), np.inf)
    R[0, 0] = 0.0
    Wt = np.zeros((m + 2, n + 2, 3))
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            if not ok[i - 1, j - 1]:
                continue
            prev = np.array([R[i - 1, j - 1], R[i - 1, j], R[i, j - 1]])
            mn = prev.min()
            if mn == np.inf:
                continue
            if gamma == 0:
                R[i, j] = C[i - 1, j - 1] + mn
            else:
                e = np.exp(-(prev - mn) / gamma)
                R[i, j] = C[i - 1, j - 1] + mn - gamma * np.log(e.sum())
                Wt[i, j] = e / e.sum()
    if gamma == 0:
        return float(R[m, n]), None
    E = np.zeros((m + 2, n + 2))
    for i in range(m, 0, -1):
        for j in range(n, 0, -1):
            if i == m and j == n:
                E[i, j] = 1.0
                continue
            E[i, j] = (
                E[i + 1, j + 1] * Wt[i + 1, j + 1, 0]
                + E[i + 1, j] * Wt[i + 1, j, 1]
                + E[i, j + 1] * Wt[i, j + 1, 2]
            )
    return float(R[m, n]), E[1 : m + 1, 1 : n + 1]


def dtw_path(C: Any, band: int | None = None) -> tuple[list[tuple[int, int]], float]:
    """Hard-DTW optimal path of one cost matrix C (m, n): ([(i, j), ...] from (0, 0) to (m-1, n-1),
    total cost). For analysis and pictures (one pair at a time); ties prefer the diagonal step."""
    C = np.asarray(_to_numpy(C, "C"), dtype=np.float64)
    if C.ndim != 2 or 0 in C.shape:
        raise ValueError(f"C must be a non-empty (m, n) cost matrix, got shape {C.shape}")
    m, n = C.shape
    ok = band_mask(m, n, _check_band(band))
    R = np.full((m + 1, n + 1), np.inf)
    R[0, 0] = 0.0
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            if ok[i - 1, j - 1]:
                R[i, j] = C[i - 1, j - 1] + min(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1])
    if not np.isfinite(R[m, n]):
        raise ValueError(f"no warping path fits band={band} for a {m}x{n} cost matrix")
    path, i, j = [(m - 1, n - 1)], m, n
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min(steps, key=lambda s: R[s])
        path.append((i - 1, j - 1))
    return path[::-1], float(R[m, n])
