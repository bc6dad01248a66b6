"""Write tests/data/dtw_golden.npz: float64 CPU oracle values for the GPU tests.

The GPU machine has CuPy and torch but no tslearn, so the oracles are computed here, on the CPU:
the float64 CPU backend of :mod:`finepseudo.align.dtw` (itself tested against the plain-loop reference
and tslearn), cross-checked at generation time against ``reference._reference`` on sampled pairs and
against tslearn 0.10 on every pair (``0.5 * soft_dtw(xhat, yhat, 2 gamma)`` / ``0.5 * dtw**2``
for cosine). Inputs are stored as float32, and the oracle is evaluated on exactly those float32
values promoted to float64.

Run: ``PYTHONPATH=src python tests/data/make_dtw_golden.py``
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import tslearn.metrics as tsm

from finepseudo.align import dtw
from finepseudo.align.dtw.reference import _reference

OUT = Path(__file__).resolve().parent / "dtw_golden.npz"

# (name, N, T, M, T2, F): 9 = reg kernel MAXN 16 (right-aligned padding), 16 = exact, 64 = MAXN 64,
# 70 = global-memory kernel; T2 > T exercises the transposed launch
PAIR_CASES = [
    ("a", 9, 12, 7, 9, 16),
    ("b", 6, 16, 5, 16, 32),
    ("c", 3, 64, 4, 40, 8),
    ("d", 2, 70, 3, 75, 8),
    ("e", 4, 5, 3, 30, 8),
]
GAMMAS = [0.0, 0.01, 0.1, 1.0]
BANDS = [None, 2]
METRICS = ["cosine", "sqeuclidean"]


def key(case: str, metric: str, gamma: float, band: int | None) -> str:
    return f"pw_{case}_{metric}_g{gamma:g}_b{'none' if band is None else band}"


def main() -> None:
    rng = np.random.default_rng(12345)
    out: dict[str, np.ndarray] = {}
    for name, N, T, M, T2, F in PAIR_CASES:
        X = rng.normal(size=(N, T, F)).astype(np.float32)
        Y = rng.normal(size=(M, T2, F)).astype(np.float32)
        out[f"pw_{name}_X"] = X
        out[f"pw_{name}_Y"] = Y
        X64 = X.astype(np.float64)
        Y64 = Y.astype(np.float64)
        xh = X64 / np.linalg.norm(X64, axis=-1, keepdims=True)
        yh = Y64 / np.linalg.norm(Y64, axis=-1, keepdims=True)
        for metric, gamma, band in itertools.product(METRICS, GAMMAS, BANDS):
            D = dtw.pairwise(X64, Y64, gamma=gamma, metric=metric, band=band, backend="cpu")
            kw = {} if band is None else {"global_constraint": "sakoe_chiba", "sakoe_chiba_radius": band}
            for u, v in itertools.product(range(N), range(M)):
                if metric == "cosine":
                    a, b, g = xh[u], yh[v], 2 * gamma
                    half = 0.5
                else:
                    a, b, g = X64[u], Y64[v], gamma
                    half = 1.0
                exp = half * (tsm.dtw(a, b, **kw) ** 2 if gamma == 0 else tsm.soft_dtw(a, b, gamma=g, **kw))
                assert abs(D[u, v] - exp) <= 1e-9 * max(1.0, abs(exp)), (name, metric, gamma, band, u, v)
            if T * T2 <= 400:
                C = dtw.cost_matrix(X64[:2, None], Y64[None, :2], metric)
                for u, v in itertools.product(range(2), range(2)):
                    r = _reference(C[u, v], gamma, band)[0]
                    assert abs(D[u, v] - r) <= 1e-10 * max(1.0, abs(r))
            out[key(name, metric, gamma, band)] = D

    # training op: padded batch with per-pair lengths, costs in [0, 2]
    B, Mx, Nx = 6, 20, 15
    lx = np.array([20, 7, 1, 13, 20, 5], dtype=np.int64)
    ly = np.array([15, 15, 9, 4, 11, 1], dtype=np.int64)
    C = (rng.random((B, Mx, Nx)) * 2).astype(np.float32)
    out["tr_C"] = C
    out["tr_lx"] = lx
    out["tr_ly"] = ly
    for gamma, band in itertools.product([0.01, 0.1, 1.0], [None, 1]):
        vals = np.zeros(B)
        E = np.zeros((B, Mx, Nx))
        for b in range(B):
            c = C[b, : lx[b], : ly[b]].astype(np.float64)
            vals[b], e = _reference(c, gamma, band)
            E[b, : lx[b], : ly[b]] = e
            if band is None and lx[b] > 1 and ly[b] > 1:
                sd = tsm.SoftDTW(c, gamma=gamma)
                assert abs(sd.compute() - vals[b]) <= 1e-10 * abs(vals[b])
                assert np.abs(sd.grad() - e).max() <= 1e-10
        out[f"tr_g{gamma:g}_b{'none' if band is None else band}_val"] = vals
        out[f"tr_g{gamma:g}_b{'none' if band is None else band}_E"] = E
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB, {len(out)} arrays)")


if __name__ == "__main__":
    main()
