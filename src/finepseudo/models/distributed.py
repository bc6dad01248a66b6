"""Training f_E with several processes (DistributedDataParallel): ``fe.gpus: N``. See docs/architecture.md
(several GPUs); the process-group primitives it starts and trains with (:func:`~finepseudo.ddp.run_distributed`,
:func:`~finepseudo.ddp.rank_and_world`, ...) are in :mod:`finepseudo.ddp`, shared with f_A's multi-process
training (``alignability.gpus: N``: :func:`finepseudo.align.train.pretrain_gitdl_ddp`,
:func:`finepseudo.align.train.train_avml_ddp`).

:func:`train_classifier_ddp` runs :func:`finepseudo.models.train.train_classifier` in N processes started with
``torch.multiprocessing`` (one per GPU, ``nccl``; or N CPU processes with ``gloo``, which is how CI
tests it). Every process draws the same global batches from the seed; rank r reads and augments rows
r, r + N, r + 2N, ... of each (with the augmentation parameters the whole batch would get), and the loss
is scaled so that DDP's gradient average equals the single-process gradient of the global batch. What
still differs from one process: batch-norm statistics (per process on a CPU; synchronised with
SyncBatchNorm on GPUs), dropout masks and the order of floating-point sums; tests/test_ddp.py states the
tolerance. Rank 0's weights and the epoch history (summed over ranks) come back to the caller.

Resume checkpoints (:mod:`finepseudo.resume`): every process loads the checkpoint, rank 0 writes it (with
every process's random states); the caller logs whether the run resumes.
"""

from __future__ import annotations

import inspect

import torch

from finepseudo.ddp import run_distributed
from finepseudo.models.train import classifier_fingerprint, train_classifier

__all__ = ["train_classifier_ddp"]


def _quiet(message: str) -> None:
    """Workers' log: silent (the caller replays the epoch history into its own log)."""


def _classifier_worker(device: str, model, clips, labels, kwargs: dict):
    if device.startswith("cuda"):
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, train_classifier(model, clips, labels, device=device, log=_quiet, **kwargs)


def train_classifier_ddp(model: torch.nn.Module, clips, labels, *, world_size: int, device: str = "cpu",
                         **kwargs) -> list[dict]:
    """Train ``model`` in place like :func:`finepseudo.models.train.train_classifier`, in ``world_size``
    processes (one GPU each when ``device`` is cuda). Returns the history; ``model`` gets rank 0's weights.
    With ``world_size`` 1 this is train_classifier itself."""
    if world_size <= 1:
        return train_classifier(model, clips, labels, device=device, **kwargs)
    log = kwargs.pop("log", print)
    if kwargs.get("checkpoint") is not None:  # say here whether the workers resume; they cannot log
        bound = inspect.signature(train_classifier).bind(model, clips, labels, device=device, **kwargs)
        bound.apply_defaults()
        kwargs["checkpoint"].begin(classifier_fingerprint(dict(bound.arguments), world_size))
        kwargs["checkpoint"] = kwargs["checkpoint"].quiet()
    state, history = run_distributed(_classifier_worker, world_size, device, model.cpu(), clips, labels, kwargs)
    model.load_state_dict(state)  # SyncBatchNorm keeps BatchNorm's parameter and buffer names
    for h in history:  # the workers cannot write to the caller's log; replay the epochs there
        log(f"[train, {world_size} processes] epoch {h['epoch']}/{len(history)} loss {h['loss']:.4f} acc {h['acc']:.3f} "
            f"{h['clips_per_s']:.1f} clips/s, {h['seconds']:.1f}s")
    return history
