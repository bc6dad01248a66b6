"""Float64 plain-loop implementations of :mod:`finepseudo.align.dtw`: the oracle of the tests and golden
files (:func:`_reference`, value and expected alignment of one cost matrix) and the hard-DTW optimal path
of one pair (:func:`dtw_path`, for analysis and pictures). Slow on purpose: one cell at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from finepseudo.align.dtw.common import _check_band, _to_numpy, band_mask

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
