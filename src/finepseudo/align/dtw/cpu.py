"""CPU backend of :mod:`finepseudo.align.dtw`: hard DTW and soft-DTW vectorised across pairs (NumPy,
float64 when the inputs are, else float32), and all-pairs mining in tiles, one GEMM per tile, on a pool
of threads. Forward only; the differentiable op is :mod:`finepseudo.align.dtw.autograd`.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from finepseudo.align.dtw.common import _EPS, band_limits

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
