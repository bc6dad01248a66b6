"""Dynamic time warping and soft-DTW: the one package of finepseudo that owns alignment
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
float32), ``"cupy"`` (CuPy RawKernels from :mod:`finepseudo.align.dtw.cuda`, float32) and ``"auto"``
(CuPy only when it imports, ``cupy.cuda.is_available()`` and a device operation succeeds).

Modules (one per backend; import the names above from ``finepseudo.align.dtw`` itself, and a module's
private helpers, e.g. the tests' oracle ``_reference``, from that module)
--------------------------------------------------------------------------------------------------------
``common``     constants, argument checks, the band, backend selection, array conversion, ``cost_matrix``
``dispatch``   ``pairwise`` and ``dtw_batch``: checks, backend choice, then ``cpu`` or ``cuda``
``cpu``        the NumPy recursions vectorised across pairs and the tiled, threaded all-pairs mining
``cuda``       the CUDA source and its CuPy launchers (mining and the training op); CuPy imported lazily
``autograd``   ``soft_dtw`` / ``soft_dtw_divergence``: the torch autograd op (torch path or ``cuda``)
``reference``  float64 plain loops: ``_reference`` (the tests' oracle) and ``dtw_path``

Example
-------
>>> import numpy as np
>>> from finepseudo.align import dtw
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

from finepseudo.align.dtw.autograd import soft_dtw, soft_dtw_divergence
from finepseudo.align.dtw.common import BACKENDS, METRICS, band_limits, band_mask, cost_matrix, cupy_available, resolve_backend
from finepseudo.align.dtw.dispatch import dtw_batch, pairwise
from finepseudo.align.dtw.reference import dtw_path

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
