"""The forward-only entry points of :mod:`finepseudo.align.dtw` (no gradient): check the arguments, choose a
backend (:func:`finepseudo.align.dtw.common.resolve_backend`) and run :mod:`finepseudo.align.dtw.cpu` or
:mod:`finepseudo.align.dtw.cuda`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from finepseudo.align.dtw.common import (
    _check_band,
    _check_gamma,
    _check_metric,
    _check_sets,
    _is_cupy,
    _to_numpy,
    band_limits,
    resolve_backend,
)
from finepseudo.align.dtw.cpu import _dp_cpu, _pairwise_cpu
from finepseudo.align.dtw.cuda import _as_cupy, _launch_allpairs, _pairwise_cupy

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
