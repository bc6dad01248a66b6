"""Helpers of gpu_check/gpu_check.sh: the machine's description (``env``), one part's status (``mark``) and the
summary JSON of all parts (``summary``). Standard library only, except ``env``, which imports what it reports.

    python gpu_check/gpu_check_report.py env --json W/results/env.json
    python gpu_check/gpu_check_report.py mark --work W NAME passed --seconds 12.3 --limit 100 --rc 0
    python gpu_check/gpu_check_report.py summary --work W --out OUT/summary.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the parts in the order gpu_check.sh runs them; "gpu": needs a GPU; "smoke": runs only without one
PARTS = {
    "env": {"gpu": False, "what": "versions, card, driver, ffmpeg, where each package comes from"},
    "dtw_tests": {"gpu": False, "what": "tests/test_dtw.py and tests/test_dtw_gpu.py (the GPU tests skip without a GPU)"},
    "workflow_cpu": {"gpu": False, "what": "config/test.yaml through Snakemake with device: cpu"},
    "workflow_gpu": {"gpu": True, "what": "config/test.yaml through Snakemake with device: cuda, CuPy mining, the report"},
    "workflow_compare": {"gpu": False, "what": "GPU run vs CPU run (tables, accuracies within 2 test videos, wall "
                                               "times); without a GPU: the CPU run vs GPU_CHECK_REFERENCE, exactly"},
    "ddp_nccl": {"gpu": True, "what": "DDP with nccl and SyncBatchNorm over the GPUs present"},
    "ddp_gloo": {"gpu": False, "smoke": True, "what": "the same script with gloo on 2 CPU processes"},
    "resume_gpu": {"gpu": True, "what": "f_E training killed (SIGKILL) mid-run and rerun on the GPU"},
    "resume_cpu": {"gpu": False, "smoke": True, "what": "the same on the CPU (bit-identical weights)"},
    "fe_throughput": {"gpu": True, "what": "R(2+1)D-18 clips/s, bf16, channels-last: frame store vs synthetic input, "
                                           "torch.compile off and on, share of the card's peak"},
    "fe_throughput_cpu": {"gpu": False, "smoke": True, "what": "the same script on the CPU, r2plus1d_tiny, a few steps"},
    "dtw_bench": {"gpu": True, "what": "benchmarks/gpu_bench.py --quick"},
    "preset_budget": {"gpu": False, "what": "scripts/preset_budget.py, at the measured clips/s when there is one"},
}


def _version(mod: str) -> dict:
    try:
        m = importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001 - absent or broken: say so
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    where = str(Path(getattr(m, "__file__", "") or "").resolve())
    site = os.environ.get("GPU_CHECK_SITE")
    return {"version": str(getattr(m, "__version__", "?")), "path": where,
            "from_carried_wheels": bool(site) and where.startswith(str(Path(site).resolve()))}


def env(args) -> int:
    info: dict = {"time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": sys.version.split()[0],
                  "executable": sys.executable, "platform": platform.platform(), "cpus": os.cpu_count(),
                  "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["packages"] = {m: _version(m) for m in ("torch", "torchvision", "numpy", "cupy", "snakemake", "pandas",
                                                  "matplotlib", "seaborn", "yaml", "jsonschema", "ffmpeg", "pytest")}
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpus"] = []
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                info["gpus"].append({"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                                     "sm_count": p.multi_processor_count, "capability": f"{p.major}.{p.minor}"})
            info["cudnn"] = torch.backends.cudnn.version()
            info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception as exc:  # noqa: BLE001
        info["torch_error"] = f"{type(exc).__name__}: {exc}"[:300]
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit",
                            "--format=csv,noheader"], capture_output=True, text=True)
        info["nvidia_smi"] = q.stdout.strip().splitlines() or q.stderr.strip()[:300]
        v = subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout
        cuda_line = [ln for ln in v.splitlines() if "CUDA Version" in ln]
        info["nvidia_smi_header"] = cuda_line[0].strip(" |") if cuda_line else None
    ff = shutil.which("ffmpeg")
    info["ffmpeg"] = ff and subprocess.run([ff, "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    info["ffprobe"] = shutil.which("ffprobe")
    info["nvcc"] = shutil.which("nvcc")
    manifest = ROOT / ".whl" / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        info["prepared"] = {k: m.get(k) for k in ("prepared_at", "commit", "tree_dirty", "total_bytes")}
    for k, v in info.items():
        print(f"{k}: {json.dumps(v)[:400]}")
    if args.json:
        args.json.write_text(json.dumps(info, indent=1) + "\n")
    return 0


def mark(args) -> int:
    st = {"name": args.name, "status": args.status, "seconds": args.seconds, "limit_s": args.limit,
          "returncode": args.rc, "reason": args.reason, "device": args.device}
    d = args.work / "status"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{args.name}.json").write_text(json.dumps({k: v for k, v in st.items() if v is not None}) + "\n")
    return 0


def summary(args) -> int:
    parts = {}
    for name, meta in PARTS.items():
        f = args.work / "status" / f"{name}.json"
        st = json.loads(f.read_text()) if f.exists() else {"status": "not run", "reason": "gpu_check.sh stopped first"}
        st.pop("name", None)
        st["gpu_part"] = meta["gpu"]
        st["what"] = meta["what"]
        res = args.work / "results" / f"{name}.json"
        if res.exists():
            try:
                st["results"] = json.loads(res.read_text())
            except json.JSONDecodeError as exc:
                st["results_error"] = str(exc)
        if (args.work / "logs" / f"{name}.log").exists():
            st["log"] = f"logs.tar.gz: logs/{name}.log"
        parts[name] = st
    counts: dict[str, int] = {}
    for st in parts.values():
        counts[st["status"]] = counts.get(st["status"], 0) + 1
    env_res = parts.get("env", {}).get("results", {})
    out = {"check": "gpu_check/gpu_check.sh", "gpu": args.gpu == 1, "gpu_line": args.gpu_line,
           "started": args.started, "wall_s": args.wall, "budget_s": args.budget or None,
           "machine": {k: env_res.get(k) for k in ("gpus", "nvidia_smi", "nvidia_smi_header", "cpus", "memory_gib",
                                                   "python", "torch_cuda", "ffmpeg", "prepared") if k in env_res},
           "counts": counts, "ok": not any(st["status"] in ("failed", "timeout", "not run") for st in parts.values()),
           "parts": parts}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'part':18s} {'status':8s} {'seconds':>8s}  note")
    for name, st in parts.items():
        note = st.get("reason") or ""
        print(f"{name:18s} {st['status']:8s} {st.get('seconds', 0) or 0:8.1f}  {note}")
    print(f"summary: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}; {'OK' if out['ok'] else 'NOT OK'}; "
          f"{args.out}")
    return 0 if out["ok"] else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("env")
    e.add_argument("--json", type=Path)
    m = sub.add_parser("mark")
    m.add_argument("--work", type=Path, required=True)
    m.add_argument("name", choices=sorted(PARTS))
    m.add_argument("status", choices=["passed", "failed", "timeout", "skipped"])
    m.add_argument("--seconds", type=float)
    m.add_argument("--limit", type=int)
    m.add_argument("--rc", type=int)
    m.add_argument("--reason")
    m.add_argument("--device")
    s = sub.add_parser("summary")
    s.add_argument("--work", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--gpu", type=int, default=0)
    s.add_argument("--gpu-line", default="")
    s.add_argument("--started", default="")
    s.add_argument("--wall", type=float, default=0.0)
    s.add_argument("--budget", type=int, default=0)
    args = ap.parse_args()
    raise SystemExit({"env": env, "mark": mark, "summary": summary}[args.cmd](args))


if __name__ == "__main__":
    main()
