"""Rule logs: every script sends stdout, stderr and its progress lines to the rule's ``log:`` file,
so ``tail -f results/logs/...`` shows where a job is and a traceback lands next to it."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable

__all__ = ["log_to", "environment"]


def log_to(path: str) -> Callable[[str], None]:
    """Redirect stdout and stderr to ``path`` (line-buffered) and return a timestamped ``log``."""
    stream = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stdout = sys.stderr = stream

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    return log


def environment() -> dict[str, str]:
    """Software versions and the compute device, for logs, checkpoints and the report."""
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for mod in ("numpy", "pandas", "torch", "torchvision", "snakemake", "seaborn", "matplotlib", "cupy"):
        try:
            env[mod] = str(__import__(mod).__version__)
        except Exception:  # noqa: BLE001 - absent or broken optional package
            continue
    try:
        import torch

        env["cuda_available"] = str(torch.cuda.is_available())
        if torch.cuda.is_available():
            env["cuda_device"] = torch.cuda.get_device_name(0)
        env["torch_threads"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return env
