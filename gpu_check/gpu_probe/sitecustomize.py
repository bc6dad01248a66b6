"""Device probe of the workflow runs of gpu_check/gpu_check.sh (on PYTHONPATH there only; nothing else loads it).

When a process that runs a Snakemake rule script (``.snakemake/scripts/tmp<random>.<rule>.py``) exits, it appends
one JSON line to the file named by ``GPU_CHECK_DEVICE_LOG``: the rule, whether torch initialised CUDA in that
process, the peak CUDA memory torch allocated, and whether the CuPy DTW kernels were built and launched there
(:func:`finepseudo.align.dtw.cuda.get_module` called). gpu_check/gpu_workflow.py reads it to check that every
GPU-capable job of the ``device: cuda`` run used the GPU (and ``mine_pairs`` the CuPy kernels) and that no job of
the CPU run did. A ``sitecustomize`` module that this one shadows (the Python installation's own) still runs.
"""

import atexit
import json
import os
import sys


def _rule_of(argv0: str) -> str | None:
    parts = argv0.replace(os.sep, "/").split("/")
    if len(parts) < 3 or parts[-2] != "scripts" or parts[-3] != ".snakemake" or not parts[-1].endswith(".py"):
        return None
    name = parts[-1][: -len(".py")]
    return name.split(".", 1)[1] if "." in name else name


def _report(path: str, rule: str) -> None:
    rec = {"rule": rule, "pid": os.getpid(), "torch": "torch" in sys.modules, "cuda_initialized": False,
           "cuda_peak_mib": 0.0, "cupy_dtw": False}
    try:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            rec["cuda_initialized"] = True
            rec["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            rec["cuda_device"] = torch.cuda.get_device_name(torch.cuda.current_device())
        cuda_mod = sys.modules.get("finepseudo.align.dtw.cuda")
        if cuda_mod is not None:
            rec["cupy_dtw"] = cuda_mod.get_module.cache_info().currsize > 0
    except Exception as exc:  # noqa: BLE001 - the probe must never fail a job
        rec["probe_error"] = f"{type(exc).__name__}: {exc}"[:200]
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def _install() -> None:
    path = os.environ.get("GPU_CHECK_DEVICE_LOG")
    rule = _rule_of(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if path and rule:
        pid = os.getpid()
        atexit.register(lambda: os.getpid() == pid and _report(path, rule))  # not in forked loader workers


def _chain() -> None:
    """Run the sitecustomize this one shadows, if any."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    for d in sys.path:
        f = os.path.join(d or ".", "sitecustomize.py")
        if os.path.abspath(d or ".") != here and os.path.isfile(f):
            spec = importlib.util.spec_from_file_location("_shadowed_sitecustomize", f)
            mod = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(mod)
            except Exception as exc:  # noqa: BLE001 - as site.py does: report and go on
                print(f"Error in sitecustomize ({f}): {exc}", file=sys.stderr)
            return


_install()
_chain()
