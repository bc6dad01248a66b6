"""Shared by every DTW backend: constants, argument checks, the Sakoe-Chiba band, backend selection,
array conversion and cost matrices (NumPy or torch). No recursion lives here.

Part of :mod:`finepseudo.align.dtw`, whose docstring (and docs/dtw.md) describes the whole package.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

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
