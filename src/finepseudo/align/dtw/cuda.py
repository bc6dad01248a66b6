"""CuPy backend of :mod:`finepseudo.align.dtw`: the CUDA kernels (a CuPy RawModule) and the code that
launches them, for all-pairs mining (forward only) and for the soft-DTW training op of
:mod:`finepseudo.align.dtw.autograd`. CuPy is imported inside the functions that launch kernels, so this
module imports (and its CUDA source can be compiled with nvcc) on a machine without CuPy or a GPU.

The CUDA C++ source lives in :data:`CUDA_SOURCE` so that it ships inside the Python package and
so that the test suite can write it to a file and compile it with ``nvcc -arch=sm_90 -cubin``
(a syntax error cannot land even on machines without a GPU). On a GPU, :func:`get_module`
compiles the same source through NVRTC (CuPy caches the result).

Kernels
-------
``dtw_allpairs_reg<MAXN, SOFT, COST>``
    Forward-only DTW / soft-DTW for mining, one thread per pair. The cost block arrives in the
    pair-innermost layout produced by one GEMM, ``S[i, u, j, l]`` (shape ``(m, nu, n, nl)``), so
    adjacent threads (adjacent ``l``) read adjacent addresses. The DP row of ``n + 1`` values
    lives in registers (``n <= MAXN``, a compile-time constant). ``COST`` selects how a GEMM entry
    becomes a cost: 0 = precomputed (the entry is the cost; squared Euclidean costs are formed
    in place before the launch), 1 = cosine (``1 - s`` on L2-normalised inputs).
``dtw_allpairs_gmem<SOFT, COST>``
    The same for any ``n``; the DP row lives in a global scratch buffer laid out
    ``row[j, pair]`` (coalesced).
``sdtw_fwd_wave``, ``sdtw_bwd_wave``
    Training op: one block per pair, anti-diagonal wavefront with three rotating diagonals in
    shared memory (R accumulated in double, exponentials in float32). The forward stores the
    soft-min weights of every cell (skewed layout
    ``W[b, k, p, i]`` with ``p = i + j``), the backward is the linear recursion
    ``E[i,j] = E[i+1,j+1] w0 + E[i+1,j] w1 + E[i,j+1] w2`` with no exp at all
    (the stored-weight backward described in finepseudo.align.dtw.autograd). Per-pair lengths and a
    Sakoe-Chiba band are supported;
    unreachable cells get ``R = +inf`` and weight 0, never NaN.

All kernels use float32 and the band convention of tslearn (radius ``r`` widened by ``|m - n|``):
cell ``(i, j)`` (0-based) is allowed when ``-lo <= j - i <= hi`` with
``lo = r + max(m - n, 0)`` and ``hi = r + max(n - m, 0)``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from finepseudo.align.dtw.common import _EPS, _NO_BAND, band_limits

#: register-row sizes compiled for the thread-per-pair kernel
REG_SIZES: tuple[int, ...] = (8, 16, 32, 64)

#: NVRTC options (CuPy chooses -arch from the current device itself)
NVRTC_OPTIONS: tuple[str, ...] = ("--std=c++17", "--use_fast_math")

CUDA_SOURCE = r"""
// finepseudo DTW kernels. float32, tslearn band semantics. See finepseudo/align/dtw/cuda.py.
#define FP_INF __int_as_float(0x7f800000)
#define FP_LOG2E 1.4426950408889634f
#define FP_LN2 0.6931471805599453f

// soft-min of three values in natural units; k = log2(e)/gamma, gl = gamma*ln(2).
// One exponential is exactly 1, so 2 exp2 + 1 log2. All-unreachable gives +inf (no inf-inf).
__device__ __forceinline__ float fp_softmin3(float a, float b, float c, float k, float gl) {
    float lo = fminf(a, b);
    float hi = fmaxf(a, b);
    float mn = fminf(lo, c);
    float md = fmaxf(lo, c);
    if (mn == FP_INF) return FP_INF;
    float s = 1.0f + exp2f((mn - md) * k) + exp2f((mn - hi) * k);
    return mn - gl * log2f(s);
}

template <bool SOFT>
__device__ __forceinline__ float fp_min3(float a, float b, float c, float k, float gl) {
    if (SOFT) return fp_softmin3(a, b, c, k, gl);
    return fminf(a, fminf(b, c));
}

template <int COST>
__device__ __forceinline__ float fp_cost(float s) {
    if (COST == 0) return s;
    return 1.0f - s;
}

// ---------------------------------------------------------------------------------------------
// Mining: thread per pair, DP row in registers.
// S:   [m, nu, n, nl] float32 (GEMM of rows (i,u) against columns (j,l)), or costs if COST == 0
// out: [nu, nl]
// band: allowed iff -blo <= j - i <= bhi (pass large values for no band)
template <int MAXN, bool SOFT, int COST>
__global__ void dtw_allpairs_reg(const float* __restrict__ S, float* __restrict__ out,
                                 int nu, int nl, int m, int n, int blo, int bhi, float gamma) {
    long long pid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long npairs = (long long)nu * nl;
    if (pid >= npairs) return;
    int u = (int)(pid / nl);
    int l = (int)(pid - (long long)u * nl);
    const float k = SOFT ? FP_LOG2E / gamma : 0.0f;
    const float gl = SOFT ? gamma * FP_LN2 : 0.0f;
    // The row is right-aligned in registers: slot t holds column j = t - off (1-based), with
    // off = MAXN - n. Slots t <= off are the boundary column (+inf below row 0) and stay +inf.
    // Every index into r[] is a compile-time constant, so r[] stays in registers, and the
    // answer is always r[MAXN].
    const int off = MAXN - n;
    float r[MAXN + 1];
#pragma unroll
    for (int t = 0; t <= MAXN; ++t) r[t] = (t == off) ? 0.0f : FP_INF;
    const long long rowstride = (long long)nu * n * nl;  // one i
    const float* base = S + (long long)u * n * nl + l;
    for (int i = 0; i < m; ++i) {
        const float* srow = base + (long long)i * rowstride;
        float diag = r[0];
        r[0] = FP_INF;
        float left = FP_INF;
        int jlo = i - blo;
        int jhi = i + bhi;
#pragma unroll
        for (int t = 1; t <= MAXN; ++t) {
            const int j = t - off - 1;  // 0-based column, < 0 for the padding slots
            const int jj = j < 0 ? 0 : j;
            const bool inb = (j >= 0) && (j >= jlo) && (j <= jhi);
            float c = fp_cost<COST>(srow[(long long)jj * nl]);
            c = inb ? c : FP_INF;
            float up = r[t];
            float val = c + fp_min3<SOFT>(diag, up, left, k, gl);
            diag = up;
            r[t] = val;
            left = val;
        }
    }
    out[pid] = r[MAXN];
}

// Mining for any n: DP row in global scratch laid out row[j * npairs + pid] (coalesced).
template <bool SOFT, int COST>
__global__ void dtw_allpairs_gmem(const float* __restrict__ S, float* __restrict__ out,
                                  float* __restrict__ row, int nu, int nl, int m, int n,
                                  int blo, int bhi, float gamma) {
    long long pid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long npairs = (long long)nu * nl;
    if (pid >= npairs) return;
    int u = (int)(pid / nl);
    int l = (int)(pid - (long long)u * nl);
    const float k = SOFT ? FP_LOG2E / gamma : 0.0f;
    const float gl = SOFT ? gamma * FP_LN2 : 0.0f;
    for (int j = 0; j < n; ++j) row[(long long)j * npairs + pid] = FP_INF;
    const long long rowstride = (long long)nu * n * nl;
    const float* base = S + (long long)u * n * nl + l;
    for (int i = 0; i < m; ++i) {
        const float* srow = base + (long long)i * rowstride;
        float diag = (i == 0) ? 0.0f : FP_INF;
        float left = FP_INF;
        int jlo = i - blo;
        int jhi = i + bhi;
        for (int j = 0; j < n; ++j) {
            float* rp = row + (long long)j * npairs + pid;
            float up = *rp;
            float val = FP_INF;
            if (j >= jlo && j <= jhi) {
                float c = fp_cost<COST>(srow[(long long)j * nl]);
                val = c + fp_min3<SOFT>(diag, up, left, k, gl);
            }
            diag = up;
            *rp = val;
            left = val;
        }
    }
    out[pid] = row[(long long)(n - 1) * npairs + pid];
}

// ---------------------------------------------------------------------------------------------
// Training forward: one block per pair, anti-diagonal wavefront, 3 rotating diagonals of R in
// shared memory (3 * (M + 1) doubles). R is accumulated in double (cheap: a few adds per cell)
// because the soft-min weights depend on differences of neighbouring R values: in float32,
// rounding of |R| ~ 60 would move them by ~1e-4 at gamma = 0.01. exp2/log2 stay in float32.
// Cells are 1-based (i, j), p = i + j.
// C:  [B, M, N] float32 costs (padded sizes M, N; pair b uses its first lx[b] x ly[b] block)
// W:  [B, 3, M + N + 1, M + 1] soft-min weights of the predecessors (diag, up, left) of cell
//     (i, p - i), written for every 1 <= i <= lx[b], 2 <= p <= lx[b] + ly[b] (0 where invalid)
// out:[B] soft-DTW value R[lx[b], ly[b]]
// radius < 0: no band.
extern "C" __global__ void sdtw_fwd_wave(const float* __restrict__ C, const int* __restrict__ lx,
                                         const int* __restrict__ ly, int M, int N, float gamma,
                                         int radius, int store, float* __restrict__ W,
                                         float* __restrict__ out) {
    extern __shared__ double shd[];
    const double DINF = __longlong_as_double(0x7ff0000000000000LL);
    const int b = blockIdx.x;
    const int m = lx[b];
    const int n = ly[b];
    const int M1 = M + 1;
    double* buf0 = shd;
    double* buf1 = shd + M1;
    double* buf2 = shd + 2 * M1;
    const float k = FP_LOG2E / gamma;
    const double gl = (double)gamma * 0.6931471805599453;
    const int blo = radius < 0 ? (1 << 30) : radius + (m > n ? m - n : 0);
    const int bhi = radius < 0 ? (1 << 30) : radius + (n > m ? n - m : 0);
    const int P = M + N + 1;
    const float* Cb = C + (long long)b * M * N;
    float* Wb = W + (long long)b * 3 * P * M1;
    for (int i = threadIdx.x; i <= m; i += blockDim.x) {
        buf0[i] = (i == 0) ? 0.0 : DINF;  // p = 0
        buf1[i] = DINF;                    // p = 1
        buf2[i] = DINF;
    }
    __syncthreads();
    for (int p = 2; p <= m + n; ++p) {
        double* cur = (p % 3 == 0) ? buf0 : ((p % 3 == 1) ? buf1 : buf2);
        double* pr1 = (p % 3 == 0) ? buf2 : ((p % 3 == 1) ? buf0 : buf1);
        double* pr2 = (p % 3 == 0) ? buf1 : ((p % 3 == 1) ? buf2 : buf0);
        if (threadIdx.x == 0) cur[0] = DINF;
        for (int i = threadIdx.x + 1; i <= m; i += blockDim.x) {
            int j = p - i;
            double r = DINF;
            float w0 = 0.0f, w1 = 0.0f, w2 = 0.0f;
            if (j >= 1 && j <= n) {
                int d = j - i;
                if (d >= -blo && d <= bhi) {
                    double a = pr2[i - 1], bb = pr1[i - 1], c = pr1[i];
                    double mn = fmin(a, fmin(bb, c));
                    if (mn != DINF) {
                        // differences in double, then float32 exponentials; inf -> exp2(-inf) = 0
                        float ea = exp2f((float)(mn - a) * k);
                        float eb = exp2f((float)(mn - bb) * k);
                        float ec = exp2f((float)(mn - c) * k);
                        float s = ea + eb + ec;  // >= 1: one term is exp2(0)
                        float inv = 1.0f / s;
                        w0 = ea * inv;
                        w1 = eb * inv;
                        w2 = ec * inv;
                        r = (double)Cb[(long long)(i - 1) * N + (j - 1)] + mn - gl * (double)log2f(s);
                    }
                }
                if (store) {
                    long long o = (long long)p * M1 + i;
                    Wb[o] = w0;
                    Wb[(long long)P * M1 + o] = w1;
                    Wb[2LL * P * M1 + o] = w2;
                }
            }
            cur[i] = r;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        int q = (m + n) % 3;
        double* fin = (q == 0) ? buf0 : ((q == 1) ? buf1 : buf2);
        out[b] = (float)fin[m];
    }
}

// Training backward: E = d sdtw / d C from the stored weights, linear recursion in reverse
// anti-diagonal order, 3 rotating diagonals of E in shared memory (3 * (M + 2) floats).
// E: [B, M, N] float32, must be zero-initialised (cells outside the pair's lengths stay 0).
extern "C" __global__ void sdtw_bwd_wave(const float* __restrict__ W, const int* __restrict__ lx,
                                         const int* __restrict__ ly, int M, int N,
                                         float* __restrict__ E) {
    extern __shared__ float sh[];
    const int b = blockIdx.x;
    const int m = lx[b];
    const int n = ly[b];
    const int M1 = M + 1;
    const int M2 = M + 2;
    float* buf0 = sh;
    float* buf1 = sh + M2;
    float* buf2 = sh + 2 * M2;
    const int P = M + N + 1;
    const float* Wb = W + (long long)b * 3 * P * M1;
    float* Eb = E + (long long)b * M * N;
    for (int i = threadIdx.x; i <= m + 1; i += blockDim.x) {
        buf0[i] = 0.0f;
        buf1[i] = 0.0f;
        buf2[i] = 0.0f;
    }
    __syncthreads();
    // diagonal p lives in buf[p % 3]; p + 1 and p + 2 are the successors' diagonals
    for (int p = m + n; p >= 2; --p) {
        float* cur = (p % 3 == 0) ? buf0 : ((p % 3 == 1) ? buf1 : buf2);
        float* nx1 = (p % 3 == 0) ? buf1 : ((p % 3 == 1) ? buf2 : buf0);
        float* nx2 = (p % 3 == 0) ? buf2 : ((p % 3 == 1) ? buf0 : buf1);
        if (threadIdx.x == 0) {
            cur[0] = 0.0f;
            cur[m + 1] = 0.0f;
        }
        for (int i = threadIdx.x + 1; i <= m; i += blockDim.x) {
            int j = p - i;
            float e = 0.0f;
            if (j >= 1 && j <= n) {
                if (i == m && j == n) {
                    e = 1.0f;
                } else {
                    if (i < m && j < n) e += nx2[i + 1] * Wb[(long long)(p + 2) * M1 + (i + 1)];
                    if (i < m) e += nx1[i + 1] * Wb[(long long)P * M1 + (long long)(p + 1) * M1 + (i + 1)];
                    if (j < n) e += nx1[i] * Wb[2LL * P * M1 + (long long)(p + 1) * M1 + i];
                }
                Eb[(long long)(i - 1) * N + (j - 1)] = e;
            }
            cur[i] = e;
        }
        __syncthreads();
    }
}

// SFU micro-benchmark anchor: 2 exp2 + 1 log2 per element on independent data (benchmarks only).
extern "C" __global__ void mufu_probe(const float* __restrict__ x, float* __restrict__ y, long long n, int reps) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    float v = x[t];
    float acc = 0.0f;
    for (int r = 0; r < reps; ++r) {
        float s = 1.0f + exp2f(-v) + exp2f(-v * 0.5f);
        acc += log2f(s);
        v += 1e-3f;
    }
    y[t] = acc;
}
"""


def name_expressions() -> list[str]:
    """Template instantiations that :func:`get_module` asks NVRTC for."""
    names: list[str] = []
    for soft in ("false", "true"):
        for cost in (0, 1):
            for maxn in REG_SIZES:
                names.append(f"dtw_allpairs_reg<{maxn}, {soft}, {cost}>")
            names.append(f"dtw_allpairs_gmem<{soft}, {cost}>")
    return names


def nvcc_instantiations() -> str:
    """Explicit template instantiations appended when compiling the source with nvcc."""
    lines = []
    for soft in ("false", "true"):
        for cost in (0, 1):
            for maxn in REG_SIZES:
                lines.append(
                    f"template __global__ void dtw_allpairs_reg<{maxn}, {soft}, {cost}>("
                    "const float*, float*, int, int, int, int, int, int, float);"
                )
            lines.append(
                f"template __global__ void dtw_allpairs_gmem<{soft}, {cost}>("
                "const float*, float*, float*, int, int, int, int, int, int, float);"
            )
    return CUDA_SOURCE + "\n" + "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=1)
def get_module() -> Any:
    """Compile (NVRTC, cached by CuPy) and return the RawModule. Requires a CUDA GPU."""
    import cupy

    return cupy.RawModule(code=CUDA_SOURCE, options=NVRTC_OPTIONS, name_expressions=name_expressions())


# ----------------------------------------------------------------------------------------------
# all-pairs mining (forward only, float32)


def _reg_size(n: int) -> int | None:
    for s in REG_SIZES:
        if n <= s:
            return s
    return None


def _launch_allpairs(
    S: Any, nu: int, nl: int, m: int, n: int, gamma: float, lo: int, hi: int, cost: int
) -> Any:
    """Run the mining kernel on ``S`` (``(m, nu, n, nl)`` float32, C-contiguous) -> cupy ``(nu, nl)``."""
    import cupy

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
# training op (soft-DTW forward and backward kernels of finepseudo.align.dtw.autograd)


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


def _launch_wave(name: str, device: torch.device, B: int, M: int, smem: int, *args: Any) -> None:
    """Launch the wave-front kernel ``name`` (one block per sequence pair, a warp multiple of threads over the
    ``M`` rows) with ``smem`` bytes of shared memory on torch's current stream of ``device``; torch tensors
    of ``args`` go to the kernel as CuPy views, taken on that stream."""
    import cupy

    threads = int(min(1024, ((M + 31) // 32) * 32))
    k = get_module().get_function(name)
    _prepare_smem(k, smem)
    with (
        cupy.cuda.Device(device.index),
        _torch_stream(device),
    ):
        k(
            (B,),
            (threads,),
            tuple(cupy.from_dlpack(a) if isinstance(a, torch.Tensor) else a for a in args),
            shared_mem=smem,
        )


def _sdtw_fwd_cupy(C: torch.Tensor, gamma: float, lx: torch.Tensor, ly: torch.Tensor, band: int | None):
    B, M, N = C.shape
    Cf = C.detach().to(torch.float32).contiguous()
    lx32 = lx.to(torch.int32).contiguous()
    ly32 = ly.to(torch.int32).contiguous()
    W = torch.empty((B, 3, M + N + 1, M + 1), dtype=torch.float32, device=C.device)
    out = torch.empty((B,), dtype=torch.float32, device=C.device)
    _launch_wave("sdtw_fwd_wave", C.device, B, M, 3 * (M + 1) * 8,
                 Cf, lx32, ly32, np.int32(M), np.int32(N), np.float32(gamma),
                 np.int32(-1 if band is None else band), np.int32(1), W, out)
    return out.to(C.dtype), (W, lx32, ly32)


def _sdtw_bwd_cupy(saved: tuple[torch.Tensor, torch.Tensor, torch.Tensor], M: int, N: int) -> torch.Tensor:
    W, lx32, ly32 = saved
    B = W.shape[0]
    E = torch.zeros((B, M, N), dtype=torch.float32, device=W.device)
    _launch_wave("sdtw_bwd_wave", W.device, B, M, 3 * (M + 2) * 4,
                 W, lx32, ly32, np.int32(M), np.int32(N), E)
    return E
