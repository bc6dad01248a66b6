"""CPU benchmark of finepseudo.align.dtw against tslearn and dtaidistance (all-pairs, cost included).

Every implementation gets the same random L2-normalised embedding sets and the same number of
threads (``--threads``, default 2): ours through ``pairwise(threads=...)`` with BLAS limited by
threadpoolctl, tslearn through ``n_jobs`` (Numba threads), dtaidistance through OpenMP
(``parallel=True`` with ``OMP_NUM_THREADS``). Conventions: on unit vectors
``|x - y|^2 = 2 (1 - cos)``, so ``sdtw_gamma(C_cos) = 0.5 * tslearn.cdist_soft_dtw(gamma=2 gamma)``
and ``dtw(C_cos) = 0.5 * dtaidistance_distance^2`` (they return the sqrt); every result is checked
against ours before its time is reported.

Cells = N * M * T * T2. "incl. cost" times the whole call; "DP only" times our recursion on
precomputed costs (same chunk layout as inside ``pairwise``).

Run (the OpenBLAS variables of this machine slow numpy, so unset them for the benchmark only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 \\
        PYTHONPATH=src .venv/bin/python benchmarks/bench_dtw.py --csv benchmarks/out/bench_dtw.csv

``--memcheck`` instead runs the 2000 x 2000 (T=16, F=128) all-pairs job and prints peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results/bench_dtw.csv"


def _normed(rng: np.random.Generator, n: int, t: int, f: int) -> np.ndarray:
    x = rng.normal(size=(n, t, f))
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _best(fn, repeat: int) -> tuple[float, object]:
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def memcheck(args: argparse.Namespace) -> None:
    import torch

    from finepseudo.align import dtw

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n, t, f = 2000, 16, 128
    X = rng.normal(size=(n, t, f)).astype(np.float32)
    Y = rng.normal(size=(n, t, f)).astype(np.float32)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for gamma in (0.0, args.gamma):
        t0 = time.perf_counter()
        D = dtw.pairwise(X, Y, gamma=gamma, backend="cpu", threads=args.threads)
        dt = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cells = n * n * t * t
        print(
            f"memcheck 2000x2000 T=16 F=128 gamma={gamma}: {dt:.1f} s, {cells / dt / 1e6:.0f} Mcells/s, "
            f"peak RSS {rss:.0f} MiB (before: {rss0:.0f} MiB), result {D.shape} {D.dtype}, "
            f"finite={bool(np.isfinite(D).all())}"
        )


def bench_one(args: argparse.Namespace, T: int, rng: np.random.Generator, rows: list[dict]) -> None:
    """Time every implementation at length T, check that they agree, print and append rows."""
    import tslearn.metrics as tsm
    from dtaidistance import dtw_ndim

    from finepseudo.align import dtw
    from finepseudo.align.dtw.cpu import _dp_cpu

    N = M = args.n
    g = args.gamma
    X = _normed(rng, N, T, args.f)
    Y = _normed(rng, M, T, args.f)
    X32 = X.astype(np.float32)
    Y32 = Y.astype(np.float32)
    cells = N * M * T * T
    # warm-ups (Numba JIT, thread pools)
    tsm.cdist_soft_dtw(X[:2], Y[:2], gamma=2 * g, n_jobs=args.threads)
    tsm.cdist_dtw(X[:2], Y[:2], n_jobs=args.threads)
    dtw.pairwise(X32[:4], Y32[:4], gamma=g, backend="cpu", threads=args.threads)

    t_ours_s, ours_s = _best(
        lambda: dtw.pairwise(X32, Y32, gamma=g, backend="cpu", threads=args.threads), args.repeat
    )
    t_ours_h, ours_h = _best(
        lambda: dtw.pairwise(X32, Y32, gamma=0.0, backend="cpu", threads=args.threads), args.repeat
    )
    t_ours_s64, ours_s64 = _best(lambda: dtw.pairwise(X, Y, gamma=g, backend="cpu", threads=args.threads), 1)
    t_ts_s, ts_s = _best(lambda: 0.5 * tsm.cdist_soft_dtw(X, Y, gamma=2 * g, n_jobs=args.threads), 1)
    t_ts_h, ts_h = _best(lambda: 0.5 * tsm.cdist_dtw(X, Y, n_jobs=args.threads) ** 2, 1)
    Z = np.ascontiguousarray(np.concatenate([X, Y]))

    def dd():
        d = dtw_ndim.distance_matrix_fast(Z, block=((0, N), (N, N + M)), parallel=True, compact=False)
        return 0.5 * np.asarray(d)[:N, N:] ** 2

    t_dd, dd_h = _best(dd, args.repeat)
    np.testing.assert_allclose(ours_s, ts_s, rtol=2e-5, atol=2e-5 * np.abs(ts_s).max())
    np.testing.assert_allclose(ours_s64, ts_s, rtol=1e-9)
    np.testing.assert_allclose(ours_h, ts_h, rtol=2e-5)
    np.testing.assert_allclose(ours_h, dd_h, rtol=2e-5)

    # DP only: our recursion on a precomputed chunk of costs (one chunk's worth of pairs)
    nu, nl = min(N, 64), min(M, 512)
    a = X32[:nu].transpose(1, 0, 2).reshape(T * nu, -1)
    b = Y32[:nl].transpose(1, 0, 2).reshape(T * nl, -1)
    C = (1.0 - a @ b.T).astype(np.float32).reshape(T, nu, T, nl)
    dp_cells = nu * nl * T * T
    t_dp_s, _ = _best(lambda: _dp_cpu(C.copy(), g, 1 << 30, 1 << 30), args.repeat)
    t_copy, _ = _best(lambda: C.copy(), args.repeat)
    t_dp_h, _ = _best(lambda: _dp_cpu(C, 0.0, 1 << 30, 1 << 30), args.repeat)
    t_dp_s = max(t_dp_s - t_copy, 1e-9)

    def add(impl, kind, secs, ncells=cells, note=""):
        rows.append(
            {
                "T": T,
                "N": N,
                "M": M,
                "F": args.f,
                "impl": impl,
                "kind": kind,
                "seconds": secs,
                "mcells_per_s": ncells / secs / 1e6,
                "note": note,
            }
        )

    add("ours fp32", f"soft g={g} incl. cost", t_ours_s)
    add("ours fp64", f"soft g={g} incl. cost", t_ours_s64)
    add("tslearn cdist_soft_dtw", f"soft g={g} incl. cost", t_ts_s, note=f"n_jobs={args.threads}")
    add("ours fp32", "hard incl. cost", t_ours_h)
    add("tslearn cdist_dtw", "hard incl. cost", t_ts_h, note=f"n_jobs={args.threads}")
    add("dtaidistance fast parallel", "hard incl. cost", t_dd, note="OpenMP")
    add("ours fp32 DP only", f"soft g={g} DP only (1 thread)", t_dp_s, dp_cells, note=f"{nu}x{nl} pairs")
    add("ours fp32 DP only", "hard DP only (1 thread)", t_dp_h, dp_cells, note=f"{nu}x{nl} pairs")
    print(f"\nT={T} N=M={N} F={args.f}: {cells / 1e6:.1f} M cells")
    for r in rows:
        if r["T"] == T:
            print(
                f"  {r['impl']:<28} {r['kind']:<30} {r['seconds'] * 1e3:9.1f} ms "
                f"{r['mcells_per_s']:9.1f} Mcells/s  {r['note']}"
            )
    print(f"  ratio soft ours/tslearn (incl. cost):        {t_ts_s / t_ours_s:6.1f}x  (target >= 5)")
    print(f"  ratio hard ours/dtaidistance (incl. cost):   {t_dd / t_ours_h:6.1f}x  (target >= 20)")
    print(f"  ratio hard ours/tslearn (incl. cost):        {t_ts_h / t_ours_h:6.1f}x")
    print(f"  ratio hard ours DP only/dtaidistance:        {(dp_cells / t_dp_h) / (cells / t_dd):6.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="sequences per set (N = M)")
    ap.add_argument("--t", type=int, nargs="+", default=[16, 32], help="sequence lengths to sweep")
    ap.add_argument("--f", type=int, default=128, help="embedding dimension")
    ap.add_argument("--gamma", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--csv", type=Path, default=None)
    ap.add_argument("--memcheck", action="store_true")
    args = ap.parse_args()
    if args.memcheck:
        memcheck(args)
        return

    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(args.threads)
    limits = threadpool_limits(args.threads)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__}")
    print(
        f"threads={args.threads}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}  "
        f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}  "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}"
    )
    for info in threadpool_info():
        print(
            f"  threadpool: {info.get('internal_api')} {info.get('architecture', '')} "
            f"num_threads={info.get('num_threads')}"
        )

    import tslearn
    from dtaidistance import __version__ as dd_version

    print(f"tslearn {tslearn.__version__}, dtaidistance {dd_version}")
    rows: list[dict] = []
    rng = np.random.default_rng(0)
    for T in args.t:
        bench_one(args, T, rng, rows)
    limits.restore_original_limits()
    if rows:
        print(f"appended to {_record.append(RESULTS, rows)}")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"\nwrote {args.csv}")


if __name__ == "__main__":
    main()
