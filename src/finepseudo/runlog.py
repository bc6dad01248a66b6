"""Rule logs: every script sends stdout, stderr and its progress lines to the rule's ``log:`` file,
so ``tail -f results/logs/...`` shows where a job is and a traceback lands next to it."""

from __future__ import annotations

import builtins
import io
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable

__all__ = ["log_to", "environment", "ReadAudit", "UndeclaredReadError"]


def log_to(path: str) -> Callable[[str], None]:
    """Redirect stdout and stderr to ``path`` (line-buffered) and return a timestamped ``log``."""
    stream = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stdout = sys.stderr = stream

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    return log


def environment() -> dict[str, str]:
    """Software versions, the compute device and the CPU kernels this process runs
    (:func:`finepseudo.kernels.cpu_facts`: CPU model, instruction sets, ``cpu_kernels``, the libraries' kernel
    settings), for logs, checkpoints and the report: every trained model's checkpoint carries them as
    ``metadata["env"]``, the facts of the machine that trained it."""
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
    try:
        from finepseudo.kernels import cpu_facts

        env.update(cpu_facts())
    except ImportError:  # no torch
        pass
    return env


class UndeclaredReadError(RuntimeError):
    """A step read a file of the working directory (or the dataset) that is not an input of its rule."""


def _not_data() -> list[str]:
    """Folders whose files are never a step's data, even under the working directory (the README's command runs
    in the checkout, which holds ``.venv`` and ``src``): Snakemake's own folder, the Python installation and
    its packages (``sys.prefix``: a virtual environment; importlib reads their metadata), and the folder
    holding this library and its install metadata (``src``; the code digest, not the inputs, covers it)."""
    import site
    import sysconfig

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/, or site-packages/ when installed
    paths = {".snakemake", here, sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             *site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return sorted(paths)


class ReadAudit:
    """Records every file a step opens for reading (``open``, ``io.open``: pandas, numpy, torch, pathlib all go
    through them) and, on :meth:`check`, fails naming the files that are none of the rule's declared inputs,
    outputs (or their ``<output>.*`` companions: resume checkpoints), logs or benchmark files. Only files under
    ``roots`` count (the working directory and the dataset's folders), and not those in :func:`_not_data`
    (Python's installation and packages, this library's source, which the code digest tracks). Files read by
    subprocesses (ffmpeg) or by loader worker processes are not seen. Every rule script starts one, so a step
    that reads a file its rule does not declare fails in the tiny whole-workflow test instead of silently going
    stale (Snakemake re-runs a job only when a declared input changes)."""

    def __init__(self, inputs: Iterable[str], outputs: Iterable[str] = (), roots: Iterable[str] = (".",)):
        self._files: set[str] = set()
        self._dirs: list[str] = []
        for p in inputs:
            rp = os.path.realpath(p)
            if os.path.isdir(rp):
                self._dirs.append(rp + os.sep)
            else:
                self._files.add(rp)
        self._outputs = [os.path.realpath(o) for o in outputs]
        self._roots = [os.path.realpath(r) + os.sep for r in roots]
        # a folder holding a root (a virtual environment made in the working directory itself) would hide it all
        self._skip = [d for d in (os.path.realpath(p) + os.sep for p in _not_data())
                      if not any(r.startswith(d) for r in self._roots)]
        self.undeclared: list[str] = []
        self._orig = (builtins.open, io.open)
        orig_open = builtins.open

        def audited_open(file, mode="r", *args, **kwargs):
            self._record(file, mode)
            return orig_open(file, mode, *args, **kwargs)

        builtins.open = io.open = audited_open

    @classmethod
    def of(cls, smk) -> ReadAudit:
        """The audit of a Snakemake script's job (``snakemake`` object): inputs, outputs, log and benchmark,
        under the working directory and, for a real dataset, its videos folder."""
        roots = ["."] + [d for d in [smk.config.get("dataset", {}).get("videos_dir")] if d]
        outputs = list(smk.output) + list(smk.log)
        return cls(list(smk.input), outputs, roots)

    def _record(self, file, mode) -> None:
        if isinstance(file, int) or any(c in str(mode) for c in "wax+"):
            return
        rp = os.path.realpath(os.fspath(file))
        if not any(rp.startswith(r) for r in self._roots) or any(rp.startswith(s) for s in self._skip):
            return
        if rp in self._files or any(rp.startswith(d) for d in self._dirs):
            return
        if any(rp == o or rp.startswith(o + ".") or rp.startswith(o + os.sep) for o in self._outputs):
            return
        if rp not in self.undeclared:
            self.undeclared.append(rp)

    def stop(self) -> None:
        builtins.open, io.open = self._orig

    def check(self) -> None:
        """Stop recording; raise :class:`UndeclaredReadError` naming every undeclared file that was read."""
        self.stop()
        if self.undeclared:
            raise UndeclaredReadError(
                f"the step read {len(self.undeclared)} file(s) that are not inputs of its rule: "
                + ", ".join(self.undeclared[:10])
                + " (declare them in the rule's input: so that Snakemake reruns it when they change)")
