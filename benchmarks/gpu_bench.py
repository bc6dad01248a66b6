"""GPU benchmark of the CuPy DTW kernels (run by gpu_check/gpu_check.sh on the GPU machine).

Anchors measured in the same run: (a) cuBLAS fp32 GEMM on the all-pairs cost
shape, (b) device-to-device copy bandwidth, (c) a MUFU probe (2 exp2 + 1 log2 per element).
Then (d) the mining kernel alone on precomputed GEMM output, (e) end-to-end ``dtw.pairwise``,
(f) the training op forward and forward+backward, and pysdtw 0.0.5 on the same batch when its
wheel was carried along (PYSDTW_PATH). Times are CUDA-event times from
``cupyx.profiler.benchmark`` (median), except end-to-end calls, which return a host array and are
timed with a host clock around the (synchronising) call, best of 3.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import cupy
import numpy as np
import torch
from cupyx.profiler import benchmark

from finepseudo.align import dtw
from finepseudo.align.dtw.cuda import _launch_allpairs, get_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results/gpu_bench.csv"

ROWS: list[dict] = []


def gpu_median_s(fn, args=(), n_repeat: int = 20, n_warmup: int = 3) -> float:
    r = benchmark(fn, args, n_repeat=n_repeat, n_warmup=n_warmup)
    return float(np.median(r.gpu_times[0]))


def row(section: str, what: str, seconds: float, **kw) -> None:
    d = {"section": section, "what": what, "ms": seconds * 1e3}
    d.update(kw)
    ROWS.append(d)
    extra = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kw.items())
    print(f"[{section}] {what:<48} {seconds * 1e3:10.3f} ms  {extra}", flush=True)


def bench_train(B: int, T: int, pysdtw):
    """Training op at B pairs of T x T: ours fwd / fwd+bwd, and pysdtw when it runs. Returns pysdtw or None."""
    gamma = 0.1
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, T, 64, device="cuda", generator=g)
    y = torch.randn(B, T, 64, device="cuda", generator=g)
    C = dtw.cost_matrix(x, y).detach().contiguous()

    def fwd(C=C):
        return dtw.soft_dtw(C, gamma, backend="cupy")

    def fwdbwd(C=C):
        c = C.requires_grad_(True)
        dtw.soft_dtw(c, gamma, backend="cupy").sum().backward()
        c.grad = None

    cells = B * T * T
    t = gpu_median_s(fwd)
    row("train", f"ours soft_dtw fwd B={B} T={T}", t, Gcells_per_s=cells / t / 1e9)
    t = gpu_median_s(fwdbwd)
    row("train", f"ours soft_dtw fwd+bwd B={B} T={T}", t, Gcells_per_s=cells / t / 1e9)
    if pysdtw is not None:
        try:
            sd = pysdtw.SoftDTW(gamma=gamma, dist_func=lambda a, b: dtw.cost_matrix(a, b), use_cuda=True)
            v_ref = dtw.soft_dtw(C, gamma, backend="cupy")
            v_p = sd(x, y)
            rel = float(((v_p - v_ref).abs() / v_ref.abs()).max())
            t = gpu_median_s(lambda: sd(x, y))
            row(
                "train",
                f"pysdtw fwd B={B} T={T} (cost incl.)",
                t,
                Gcells_per_s=cells / t / 1e9,
                max_rel_diff_vs_ours=rel,
            )
            xr = x.clone().requires_grad_(True)

            def pbwd(xr=xr):
                sd(xr, y).sum().backward()
                xr.grad = None

            t = gpu_median_s(pbwd)
            row("train", f"pysdtw fwd+bwd B={B} T={T} (cost incl.)", t, Gcells_per_s=cells / t / 1e9)
            xo = x.clone().requires_grad_(True)

            def obwd(xo=xo):
                dtw.soft_dtw(dtw.cost_matrix(xo, y), gamma, backend="cupy").sum().backward()
                xo.grad = None

            t = gpu_median_s(obwd)
            row("train", f"ours fwd+bwd B={B} T={T} (cost incl.)", t, Gcells_per_s=cells / t / 1e9)
        except Exception as exc:  # noqa: BLE001 - pysdtw (Numba CUDA) may not run here
            print(f"pysdtw run failed: {type(exc).__name__}: {str(exc)[:300]}")
            pysdtw = None
    return pysdtw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", type=Path, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(
        f"device: {name}, SMs {props['multiProcessorCount']}, cupy {cupy.__version__}, "
        f"torch {torch.__version__}, CUPY_TF32={os.environ.get('CUPY_TF32', '0')}",
        flush=True,
    )
    mod = get_module()

    # (b) copy bandwidth
    a = cupy.empty(1 << 28, dtype=cupy.float32)  # 1 GiB
    b = cupy.empty_like(a)
    t = gpu_median_s(cupy.copyto, (b, a), n_repeat=10)
    bw = 2 * a.nbytes / t
    row("anchor", "copy 1 GiB (read+write)", t, GBps=bw / 1e9)
    del a, b

    # (c) MUFU probe: 3 MUFU per rep per element
    n, reps = 1 << 24, 64
    x = cupy.random.random(n, dtype=cupy.float32)
    y = cupy.empty_like(x)
    k = mod.get_function("mufu_probe")
    t = gpu_median_s(lambda: k(((n + 255) // 256,), (256,), (x, y, np.int64(n), np.int32(reps))), n_repeat=10)
    mufu = 3 * n * reps / t
    row("anchor", "MUFU probe (2 ex2 + 1 lg2)", t, mufu_per_s=mufu, soft_cells_bound=mufu / 3)

    # (a) GEMM anchor on the all-pairs shape: (T*nu x F) @ (F x T*nl)
    for T, F, nu in [(16, 128, 2048), (64, 512, 256)]:
        A = cupy.random.random((T * nu, F), dtype=cupy.float32)
        B = cupy.random.random((T * nu, F), dtype=cupy.float32)
        t = gpu_median_s(lambda A=A, B=B: A @ B.T, n_repeat=10)
        flops = 2.0 * (T * nu) ** 2 * F
        row(
            "anchor",
            f"GEMM fp32 {T * nu}x{F}x{T * nu}",
            t,
            TFLOPs=flops / t / 1e12,
            cost_cells_per_s=(T * nu) ** 2 / t,
        )
        del A, B

    # (d) mining kernel on precomputed S (layout [i, u, j, l]), cosine cost fused
    Ts = [8, 16, 32, 64] if not args.quick else [16, 64]
    for T in Ts:
        P = min(1 << 20, (1 << 28) // (T * T))  # <= 1 GiB of S
        nl = 1024
        nu = P // nl
        S = cupy.random.random((T, nu, T, nl), dtype=cupy.float32)
        for gamma in (0.0, 0.01, 1.0):
            t = gpu_median_s(_launch_allpairs, (S, nu, nl, T, T, gamma, 1 << 30, 1 << 30, 1), n_repeat=10)
            cells = P * T * T
            kw = {"pairs": P, "Gcells_per_s": cells / t / 1e9, "pct_of_copy_bw": 100 * cells * 4 / t / bw}
            if gamma > 0:
                kw["pct_of_mufu_bound"] = 100 * cells / t / (mufu / 3)
            row("dp", f"T={T} {'hard' if gamma == 0 else f'soft g={gamma}'} kernel only", t, **kw)
        t = gpu_median_s(_launch_allpairs, (S, nu, nl, T, T, 0.0, 1 << 30, 1 << 30, 1), n_repeat=10)
        row("dp", f"T={T} hard kernel only (repeat)", t, Gcells_per_s=P * T * T / t / 1e9)
        del S
        cupy.get_default_memory_pool().free_all_blocks()

    # (e) end-to-end pairwise (device arrays in, host numpy out: normalisation, GEMMs, kernels, D2H)
    cases = [(2000, 16, 128), (1000, 64, 512)] if not args.quick else [(2000, 16, 128)]
    for N, T, F in cases:
        rng = np.random.default_rng(0)
        Xh = rng.normal(size=(N, T, F)).astype(np.float32)
        Yh = rng.normal(size=(N, T, F)).astype(np.float32)
        Xd, Yd = cupy.asarray(Xh), cupy.asarray(Yh)
        for gamma in (0.0, 0.1):
            dtw.pairwise(Xd[:8], Yd[:8], gamma=gamma, backend="cupy")  # warm-up / compile
            best = float("inf")
            for _ in range(3):
                cupy.cuda.Device().synchronize()
                t0 = time.perf_counter()
                D = dtw.pairwise(Xd, Yd, gamma=gamma, backend="cupy")
                best = min(best, time.perf_counter() - t0)
            cells = N * N * T * T
            row(
                "e2e",
                f"pairwise {N}x{N} T={T} F={F} {'hard' if gamma == 0 else f'soft g={gamma}'}",
                best,
                Gcells_per_s=cells / best / 1e9,
                gemm_TFLOPs=2.0 * cells * F / best / 1e12,
                finite=bool(np.isfinite(D).all()),
            )
        # spot check against the CPU backend on a corner
        ref = dtw.pairwise(Xh[:16], Yh[:16], gamma=0.1, backend="cpu")
        got = dtw.pairwise(Xd[:16], Yd[:16], gamma=0.1, backend="cupy")
        print(f"  e2e spot check N=16 vs CPU: max rel err {np.max(np.abs(got - ref) / np.abs(ref)):.2e}")
        del Xd, Yd
        cupy.get_default_memory_pool().free_all_blocks()

    # (f) training op: B pairs of (T x T) cosine costs, forward and forward+backward
    pysdtw = None
    if os.environ.get("PYSDTW_PATH"):
        sys.path.insert(0, os.environ["PYSDTW_PATH"])
        if not hasattr(np, "row_stack"):
            # pysdtw 0.0.5 calls np.row_stack, removed in NumPy 2.x; alias it for the benchmark only
            np.row_stack = np.vstack
            print("note: aliased np.row_stack = np.vstack for pysdtw 0.0.5 under NumPy", np.__version__)
        try:
            import pysdtw  # type: ignore[import-not-found]
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"pysdtw import failed: {type(exc).__name__}: {exc}")
            pysdtw = None
    else:
        print("pysdtw: not carried (no PYSDTW_PATH)")
    for B, T in [(512, 64), (128, 16), (64, 256)]:
        pysdtw = bench_train(B, T, pysdtw)

    if ROWS:
        print(f"appended to {_record.append(RESULTS, ROWS)}")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        keys: list[str] = []
        for r in ROWS:
            keys += [k for k in r if k not in keys]
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(ROWS)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
