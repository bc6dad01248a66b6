"""Which CPU kernels the numerical libraries run, pinned to one instruction set (config key ``cpu_kernels``),
and the facts that say which ones a job actually ran.

torch (ATen's vectorised kernels, oneDNN's convolutions, MKL's GEMMs) and numpy (its own SIMD loops,
OpenBLAS's GEMMs) each pick their kernels at run time from the CPU's instruction sets (AVX2, AVX-512, AMX)
and, for some, its vendor. Different kernels sum in different orders, so the same code and config give
slightly different floating-point numbers on machines of different kinds, and a training run amplifies
the difference (``studies/kernel_pinning.py`` measures by how much, and what pinning costs).

:func:`pin_cpu_kernels` with ``"avx2"`` sets the environment variables that make every one of these
libraries use its AVX2 kernels (an instruction set every x86-64 server of the last decade has, Intel and
AMD alike); ``"native"`` sets nothing (each library picks the fastest kernels for the machine). The
libraries read the variables when they load, so the call must come before anything imports torch or numpy:
every rule script calls :func:`pin_job` right after putting ``src/`` on ``sys.path``. A call that comes too
late raises :class:`KernelPinError` naming the config key instead of being silently ignored.

This module imports neither torch nor numpy at import time.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping

__all__ = ["LEVELS", "PINNED_ENV", "KernelPinError", "pin_cpu_kernels", "pin_job", "pinned_level", "cpu_facts",
           "FACT_KEYS"]

LEVELS = ("avx2", "native")

#: the variables ``cpu_kernels: avx2`` sets, and what each one pins
PINNED_ENV: dict[str, dict[str, str]] = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised kernels (elementwise, batch norm, softmax, AdamW)
        "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (mkldnn) JIT kernels: every convolution of f_E and f_A
        # MKL (torch's BLAS: linear layers, bmm): its reproducibility branch for Intel and other vendors' CPUs
        # (MKL's AVX2 branch is for Intel CPUs only; MKL ignores it elsewhere, and MKL_ENABLE_INSTRUCTIONS
        # overrides it, while it does not move this one)
        "MKL_CBWR": "COMPATIBLE",
        "OPENBLAS_CORETYPE": "Haswell",  # numpy's OpenBLAS (the DTW GEMMs): its AVX2 (Haswell) kernels
        # and a fixed L2 size: OpenBLAS 0.3.34 and later change a forced core type's GEMM blocking on AMD Zen 4/5
        # CPUs that report a 1024 KB L2 (OpenBLAS issue 6021); the Haswell kernels' blocking does not use it
        "OPENBLAS_L2_SIZE": "2048",
        # numpy's own SIMD loops (exp, log, power in float64): no dispatch target above X86_V3 (= AVX2, FMA3)
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    },
    "native": {},
}

#: the rows :func:`cpu_facts` returns, in order
FACT_KEYS = ("cpu model", "cpu vendor", "cpu flags", "cpu_kernels", "aten capability", "onednn", "mkl", "numpy blas",
             "numpy simd", "torch threads")

_pinned: str | None = None  # the level this process was pinned to


class KernelPinError(RuntimeError):
    """The CPU kernels cannot be pinned as the config asks (too late in the process, or an unsuitable CPU)."""


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if info:
                        break
                    continue
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def _has_avx2() -> bool:
    flags = set(_cpuinfo().get("flags", "").split())
    return {"avx2", "fma"} <= flags


def pin_cpu_kernels(level: str, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Pin the CPU kernels of torch and numpy to ``level`` (``cpu_kernels``: ``avx2`` or ``native``) by setting
    environment variables in ``environ`` (``os.environ``); returns the variables set.

    Must run before this process imports torch or numpy (they read the variables when they load): otherwise
    :class:`KernelPinError`, unless the variables already hold the pinned values and torch, if loaded, runs its
    AVX2 kernels (a second call, or a process started with the variables set). ``avx2`` on a CPU without
    AVX2 and FMA (or not x86-64) raises too: set ``cpu_kernels: native`` there. Child processes (loader
    workers, DistributedDataParallel workers) inherit the variables.
    """
    global _pinned
    if level not in LEVELS:
        raise KernelPinError(f"config key 'cpu_kernels' is {level!r}; allowed values: {', '.join(map(repr, LEVELS))}")
    env = os.environ if environ is None else environ
    wanted = PINNED_ENV[level]
    if level == "avx2":
        if platform.machine().lower() not in ("x86_64", "amd64") or not _has_avx2():
            raise KernelPinError(
                f"config key 'cpu_kernels' is 'avx2' but this CPU ({_cpuinfo().get('model name', platform.machine())})"
                " has no AVX2 and FMA: set cpu_kernels: native (results then depend on the machine's kernels)")
        if env.get("NPY_ENABLE_CPU_FEATURES"):
            raise KernelPinError("config key 'cpu_kernels' is 'avx2' but NPY_ENABLE_CPU_FEATURES is set, which numpy "
                                 "refuses together with NPY_DISABLE_CPU_FEATURES: unset it, or set cpu_kernels: native")
        loaded = [m for m in ("torch", "numpy") if m in sys.modules]
        already = all(env.get(k) == v for k, v in wanted.items())
        if loaded and environ is None and not already:
            raise KernelPinError(
                f"config key 'cpu_kernels' is 'avx2' but {' and '.join(loaded)} was imported before "
                "finepseudo.kernels.pin_cpu_kernels ran, so the pinned kernels would not take effect: call it "
                "before anything imports torch or numpy (the rule scripts call pin_job right after sys.path.insert)")
        if "torch" in sys.modules and environ is None:
            cap = sys.modules["torch"].backends.cpu.get_cpu_capability()
            if cap != "AVX2":
                raise KernelPinError(f"config key 'cpu_kernels' is 'avx2' but torch, imported before the kernels "
                                     f"were pinned, runs its {cap} kernels")
    env.update(wanted)
    if environ is None:
        _pinned = level
    return dict(wanted)


def pinned_level() -> str | None:
    """The level this process was pinned to by :func:`pin_cpu_kernels`, or None."""
    return _pinned


def pin_job(smk) -> dict:
    """Pin a rule script's job (the ``snakemake`` object) to its ``cpu_kernels`` and return its settings
    without that key (the keyword arguments of its step). Rules whose results depend on the kernels carry
    the key in ``params.settings`` (so changing it reruns them); the others pin to the config's value, which
    changes none of their outputs."""
    settings = dict(getattr(smk.params, "settings", None) or {})
    level = settings.pop("cpu_kernels", None) or smk.config.get("cpu_kernels", "avx2")
    pin_cpu_kernels(level)
    return settings


def _openblas() -> str:
    """numpy's BLAS: library, version and the core type whose kernels it runs (OpenBLAS), from the loaded
    library itself (threadpoolctl is optional)."""
    import ctypes

    try:
        import numpy as np

        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name, version = str(blas.get("name", "?")), str(blas.get("version", "?"))
    except Exception:  # noqa: BLE001 - a numpy without the dict form
        name, version = "?", "?"
    if "openblas" not in name.lower():
        return f"{name} {version}"
    core = "?"
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
        for lib in libs:
            dll = ctypes.CDLL(lib)
            for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
                        "openblas_get_corename"):
                fn = getattr(dll, sym, None)
                if fn is not None:
                    fn.restype = ctypes.c_char_p
                    core = fn().decode()
                    break
            if core != "?":
                break
    except OSError:
        pass
    return f"{name} {version}, core {core}"


def _numpy_simd() -> str:
    """numpy's SIMD dispatch targets that are enabled on this machine (the highest one runs)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:
        return "?"
    on = [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]
    return f"{' '.join(on) or 'baseline only'} (of {' '.join(__cpu_dispatch__)})"


def cpu_facts() -> dict[str, str]:
    """What this process computes with: CPU model, vendor and the instruction sets that decide the kernels
    (from /proc/cpuinfo), ``cpu_kernels`` as pinned, ATen's capability, oneDNN and MKL versions and their
    settings, numpy's BLAS (with OpenBLAS's core type) and SIMD level, torch's thread count. Imports torch
    and numpy (call it after :func:`pin_cpu_kernels`)."""
    import re

    import torch

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    show = torch.__config__.show()

    def version(pattern: str) -> str:
        m = re.search(pattern, show)
        return m.group(1) if m else "?"

    def env(name: str) -> str:
        return os.environ.get(name) or "unset (native)"

    onednn = "not built"
    if torch.backends.mkldnn.is_available():
        state = "enabled" if torch.backends.mkldnn.enabled else "disabled"
        onednn = f"v{version(r'MKL-DNN v([0-9.]+)')}, {state}, ONEDNN_MAX_CPU_ISA {env('ONEDNN_MAX_CPU_ISA')}"
    mkl = "not built"
    if torch.backends.mkl.is_available():
        mkl = (f"{version(r'Math Kernel Library Version ([0-9.]+)')}, MKL_CBWR {env('MKL_CBWR')}, "
               f"MKL_ENABLE_INSTRUCTIONS {env('MKL_ENABLE_INSTRUCTIONS')}")
    return {
        "cpu model": info.get("model name") or platform.processor() or platform.machine(),
        "cpu vendor": info.get("vendor_id", "?"),
        "cpu flags": " ".join(f for f in ("avx2", "fma", "avx512f", "amx_tile") if f in flags) or "none of avx2 avx512f",
        "cpu_kernels": _pinned or "not pinned in this process",
        "aten capability": str(torch.backends.cpu.get_cpu_capability()),
        "onednn": onednn,
        "mkl": mkl,
        "numpy blas": _openblas(),
        "numpy simd": _numpy_simd(),
        "torch threads": str(torch.get_num_threads()),
    }
