"""Soft-DTW as a differentiable torch op (:func:`soft_dtw`, :func:`soft_dtw_divergence`).

The forward stores the three soft-min weights of every cell; the backward is the linear recursion
``E[i,j] = E[i+1,j+1] w + E[i+1,j] w' + E[i,j+1] w''`` over them, with no exponential (see docs/dtw.md).
Two implementations of the pair: a torch path vectorised across the batch over anti-diagonals (any
device, accumulated in float64) and, for CUDA float32/16 tensors, the CuPy kernels of
:mod:`finepseudo.align.dtw.cuda`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from finepseudo.align.dtw.common import BACKENDS, _check_band, _check_gamma, cost_matrix, cupy_available, resolve_backend
from finepseudo.align.dtw.cuda import _sdtw_bwd_cupy, _sdtw_fwd_cupy

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
