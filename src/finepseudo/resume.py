"""Resumable training: one epoch checkpoint per training step, next to the step's output.

A training job killed at epoch 90 of 100 (SLURM time limit, preemption, ``kill -9``) restarts at epoch 91
instead of 0. Every training loop (:func:`finepseudo.models.train.train_classifier`,
:func:`finepseudo.models.ssl.pretrain_video_ssl`, :func:`finepseudo.align.train.pretrain_gitdl`,
:func:`finepseudo.align.train.train_avml`, and the multi-process variants) takes an optional
:class:`Checkpointer` and, after every epoch, writes everything the rest of the training depends on:
model(s), optimiser, scheduler, the epoch reached, the history so far and every random state (the torch
CPU generator, the CUDA generator of the device, numpy's and Python's global generators, and the loop's
own batch-plan / augmentation generators). A rerun with the same settings continues from there and ends
with the same weights and history (bit-identical on a CPU; only the timing columns differ).

The file is ``<output>.resume.pt`` (:func:`resume_path`), written to a temporary file in the same folder
and renamed (``os.replace``), so a kill never leaves a half-written checkpoint under that name. It is not a
declared Snakemake output, so Snakemake leaves it when a job fails or is killed; the step deletes it once
its outputs are written. Its content loads with ``torch.load(weights_only=True)``: tensors, numbers,
strings, lists and dicts only::

    {"format": "finepseudo-resume/1",
     "fingerprint": sha256 of the JSON below,   "settings": that JSON (str),
     "epoch": k, "epochs": N,
     "state": {"model": state_dict, "optimizer": state_dict, ..., "history": [...],
               "rng": [per process: {"torch": ByteTensor, "cuda": ByteTensor | None,
                                     "numpy": {...}, "python": {...}}], ...}}

The fingerprint is what the training depends on: the step's name and settings (its arguments, except
the log, output paths and the number of frame-reading workers), each input file's path, size and mtime,
the digest of the step's library code (its module and every module it imports, as in the rules'
params), and the loop's own arguments (sizes, learning rate, seed, a hash of the labels, the number of processes).
A checkpoint whose fingerprint differs is not used: the log says which part differs and training starts
over. A file that cannot be read (truncated, not a checkpoint) is ignored the same way, with a log line.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finepseudo.ddp import rank_and_world

__all__ = ["Checkpointer", "TrainingStopped", "for_output", "resume_path", "rng_state", "set_rng_state",
           "array_digest"]

FORMAT = "finepseudo-resume/1"
SUFFIX = ".resume.pt"


class TrainingStopped(RuntimeError):
    """Raised after the checkpoint of epoch ``Checkpointer.stop_after`` is written (a planned interruption:
    tests, or a run told to stop at an epoch)."""


def resume_path(out: str | os.PathLike) -> Path:
    """The epoch checkpoint of the step whose main output is ``out``: ``<out>.resume.pt`` next to it."""
    return Path(str(out) + SUFFIX)


def _json_safe(x: Any) -> Any:
    """``x`` as plain JSON values (numpy scalars and arrays, paths and tuples converted; sorted keys)."""
    def default(v):
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        return repr(v)

    return json.loads(json.dumps(x, default=default, sort_keys=True))


def _file_facts(path: str) -> dict:
    try:
        st = os.stat(path)
    except OSError:
        return {"missing": True}
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def array_digest(*arrays) -> str | None:
    """sha256 of arrays' dtypes, shapes and bytes (None entries included as such): a cheap fingerprint of
    labels, weights or masks."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def rng_state(device: str | torch.device | None = None) -> dict:
    """This process's global random states as tensors and plain values: torch CPU, CUDA (of ``device``
    when it is a CUDA device), numpy's global generator and Python's ``random``."""
    device = torch.device(device) if device is not None else None
    cuda = None
    if device is not None and device.type == "cuda":
        cuda = torch.cuda.get_rng_state(device)
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                       "gauss_next": gauss_next}}


def set_rng_state(state: dict, device: str | torch.device | None = None) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    device = torch.device(device) if device is not None else None
    if state.get("cuda") is not None and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))


def generator_state(gen: np.random.Generator) -> str:
    """A numpy Generator's state as JSON (its integers exceed 64 bits)."""
    return json.dumps(gen.bit_generator.state)


def set_generator_state(gen: np.random.Generator, state: str) -> None:
    gen.bit_generator.state = json.loads(state)


class Checkpointer:
    """Epoch checkpoints of one training run at ``path``, valid for ``fingerprint`` (a JSON-safe dict of
    what the training depends on). A training loop calls :meth:`begin` once with its own arguments (added
    to the fingerprint) and gets the saved state or None, then :meth:`save` after every epoch; the step
    calls :meth:`clear` once its outputs are written. Under DistributedDataParallel every process loads
    and rank 0 writes (the per-process random states are gathered to it). Picklable, so it travels to
    the processes of a multi-process run (``log`` must then be picklable, or :meth:`quiet` used)."""

    stop_after: int | None = None
    """Raise :class:`TrainingStopped` once the checkpoint of this epoch is written (tests; None: never)."""

    def __init__(self, path: str | os.PathLike, fingerprint: dict | None = None,
                 log: Callable[[str], Any] | None = print) -> None:
        self.path = Path(path)
        self.fingerprint = _json_safe(fingerprint or {})
        self.log = log
        self._settings: str | None = None

    def quiet(self) -> Checkpointer:
        """A copy that does not log (for worker processes, whose log is the caller's)."""
        c = Checkpointer(self.path, self.fingerprint, None)
        c.stop_after = self.stop_after
        return c

    def _say(self, msg: str) -> None:
        if self.log is not None:
            self.log(msg)

    def _full(self, loop: dict) -> str:
        return json.dumps({**self.fingerprint, "loop": _json_safe(loop)}, sort_keys=True)

    def begin(self, loop: dict) -> dict | None:
        """Fix the fingerprint (the step's plus the loop's arguments ``loop``) and return the saved state
        when the checkpoint file exists, is readable and matches it; else None (logging why)."""
        self._settings = self._full(loop)
        if not self.path.exists():
            return None
        try:
            ckpt = torch.load(self.path, map_location="cpu", weights_only=True)
            if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            for key in ("fingerprint", "settings", "epoch", "epochs", "state"):
                if key not in ckpt:
                    raise KeyError(f"no {key!r}")
        except Exception as e:  # noqa: BLE001 - any unreadable file means: start over
            self._say(f"ignoring the unreadable checkpoint {self.path} ({type(e).__name__}: {str(e)[:200]}); "
                      "training starts from epoch 0 and will overwrite it")
            return None
        if ckpt["fingerprint"] != _digest(self._settings):
            self._say(f"not resuming from {self.path}: it was written for {_difference(ckpt['settings'], self._settings)}; "
                      "training starts from epoch 0 and will overwrite it")
            return None
        self._say(f"resuming from epoch {ckpt['epoch']}/{ckpt['epochs']} (checkpoint {self.path})")
        return ckpt["state"]

    def save(self, epoch: int, epochs: int, state: dict, device: str | torch.device | None = None) -> None:
        """Write the checkpoint of ``epoch`` (of ``epochs``): ``state`` plus every process's global random
        states (``rng``, one per rank). Collective under DDP: every rank calls it, rank 0 writes."""
        if self._settings is None:
            raise RuntimeError("Checkpointer.save called before begin()")
        rank, world = rank_and_world()
        rngs = [rng_state(device)]
        if world > 1:
            import torch.distributed as dist

            gathered: list = [None] * world
            dist.all_gather_object(gathered, rngs[0])
            rngs = [{k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in g.items()} for g in gathered]
        if rank == 0:
            payload = {"format": FORMAT, "fingerprint": _digest(self._settings), "settings": self._settings,
                       "epoch": int(epoch), "epochs": int(epochs), "state": {**state, "rng": rngs}}
            _atomic_save(payload, self.path)
        if self.stop_after is not None and epoch >= self.stop_after and epoch < epochs:
            raise TrainingStopped(f"stopped after the checkpoint of epoch {epoch}/{epochs} ({self.path})")

    @contextlib.contextmanager
    def restoring(self):
        """Wrap the loading of a saved state into the run's objects: a state that does not fit them (code
        changed between the runs) stops with the file named and what to do."""
        try:
            yield
        except Exception as e:
            raise RuntimeError(f"the training state in {self.path} does not fit this run ({type(e).__name__}: "
                               f"{str(e)[:300]}); delete that file to start the training over") from e

    def resume(self, saved: dict, device: str | torch.device | None,
               loads: dict[str, Callable[[Any], Any]]) -> tuple[list, int]:
        """Bring a training loop back to ``saved`` (what :meth:`begin` returned): ``load(saved[key])`` for each
        ``key: load`` of ``loads`` in order, then this process's global random states (:func:`restore_rng`),
        all inside :meth:`restoring`. Returns the saved per-epoch history (a new list) and the epoch to go on
        with."""
        with self.restoring():
            for key, load in loads.items():
                load(saved[key])
            restore_rng(saved, device)
            history = list(saved["history"])
        return history, len(history) + 1

    def clear(self) -> None:
        """Delete the checkpoint (and any temporary file a killed write left)."""
        self.path.unlink(missing_ok=True)
        for tmp in glob.glob(glob.escape(str(self.path)) + ".*.tmp"):
            Path(tmp).unlink(missing_ok=True)


def restore_rng(state: dict, device: str | torch.device | None = None) -> None:
    """Set this process's global random states from a checkpoint's ``state["rng"]`` (its rank's entry)."""
    rank, _ = rank_and_world()
    set_rng_state(state["rng"][rank], device)


def _digest(settings: str) -> str:
    return hashlib.sha256(settings.encode()).hexdigest()


def _difference(old: str, new: str) -> str:
    """Which parts of two fingerprints differ, in words."""
    try:
        a, b = json.loads(old), json.loads(new)
    except ValueError:
        return "unknown settings"
    parts = []
    for group in sorted(set(a) | set(b)):
        x, y = a.get(group), b.get(group)
        if x == y:
            continue
        if group == "code":
            parts.append(f"other library code (digest {x}, now {y})")
        elif isinstance(x, dict) and isinstance(y, dict):
            keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            what = "input" if group == "inputs" else "setting" if group in ("settings", "loop") else group
            parts.append(f"other {what}s ({', '.join(keys)})" if group != "inputs" else
                         f"other input files ({', '.join(keys)} changed)")
        else:
            parts.append(f"another {group} ({x!r}, now {y!r})")
    return "; ".join(parts) or "other settings"


def _atomic_save(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def for_output(out: str | os.PathLike, *, step: str, settings: dict, inputs: dict[str, Any],
               log: Callable[[str], Any], code: str | os.PathLike | None = None) -> Checkpointer:
    """The checkpointer of a workflow step whose main output is ``out``: the file :func:`resume_path`
    (out), the fingerprint the step's name, its ``settings`` (JSON-safe after conversion), for every
    file in ``inputs`` (name -> path or list of paths, None skipped) its path, size and mtime, and, with
    ``code`` (the step's module file: pass ``__file__``), the digest of that module and of every library
    module it imports (:func:`finepseudo.provenance.code_digest`), so that a job rerun after a code edit
    starts over instead of continuing a state the old code made."""
    files: dict[str, Any] = {}
    for name, value in inputs.items():
        if value is None:
            continue
        paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        for i, p in enumerate(paths):
            key = name if isinstance(value, (str, os.PathLike)) else f"{name}[{i}]"
            files[key] = {"path": os.fspath(p), **_file_facts(os.fspath(p))}
    fingerprint = {"step": step, "settings": settings, "inputs": files}
    if code is not None:
        from finepseudo.provenance import code_digest

        fingerprint["code"] = code_digest(code, Path(__file__).resolve().parents[1])
    return Checkpointer(resume_path(out), fingerprint, log)
