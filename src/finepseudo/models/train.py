"""Supervised training and prediction of the video classifier f_E, and checkpoints.

Data: ``clips`` is a uint8 tensor ``(N, T_store, H, W, 3)``, the stored frames of each video
(``T_store`` frames sampled uniformly over the video). A training step takes one
``clip_frames``-frame clip per video (seeded temporal jitter and spatial augmentation, see
:mod:`finepseudo.models.augment`), normalises it and feeds ``(B, 3, clip_frames, H, W)`` to the model.
Everything random comes from ``seed``: on a CPU the same seed gives the same weights.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from finepseudo.ddp import rank_and_world
from finepseudo.models.augment import DEFAULT_AUGMENT, eval_indices, to_model_input, train_indices, train_input
from finepseudo.models.video import build_video_model
from finepseudo.resume import Checkpointer, array_digest, generator_state, set_generator_state

__all__ = [
    "load_checkpoint",
    "predict_proba",
    "predict_proba_and_logits",
    "save_checkpoint",
    "train_classifier",
]


def _check_clips(clips, clip_frames: int) -> None:
    from finepseudo.data.frames import FrameStore

    tensor_ok = (isinstance(clips, torch.Tensor) and clips.dtype == torch.uint8 and clips.ndim == 5
                 and clips.shape[-1] == 3)
    if not (isinstance(clips, FrameStore) or tensor_ok):
        raise TypeError("clips must be a FrameStore or a uint8 torch tensor (N, T_store, H, W, 3), got "
                        f"{getattr(clips, 'dtype', type(clips))} {tuple(getattr(clips, 'shape', ()))}")
    if clip_frames < 1:
        raise ValueError(f"clip_frames must be >= 1, got {clip_frames}")


def _fmt_time(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _epoch_times(t0: float, t_start: float, epoch: int, first: int, epochs: int) -> tuple[float, float]:
    """Seconds since ``t0`` (this epoch's start) and the estimated seconds left after epoch ``epoch`` of
    ``epochs``: the mean time of the epochs this run made since ``t_start`` (from epoch ``first`` on)."""
    sec = time.perf_counter() - t0
    elapsed = time.perf_counter() - t_start
    return sec, elapsed / (epoch - first + 1) * (epochs - epoch)


def _epoch_line(tag: str, rec: dict[str, float], epochs: int, lr: float) -> str:
    """The log line of one epoch's history record ``rec`` (``lr``: the last step's learning rate)."""
    return (f"[{tag}] epoch {rec['epoch']}/{epochs} loss {rec['loss']:.4f} acc {rec['acc']:.3f} "
            f"lr {lr:.2e} {rec['clips_per_s']:.1f} clips/s, {rec['seconds']:.1f}s, ~{_fmt_time(rec['eta'])} left")


def train_classifier(
    model: nn.Module,
    clips: torch.Tensor,
    labels: np.ndarray | torch.Tensor | list[int],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    clip_frames: int,
    seed: int,
    device: str | torch.device = "cpu",
    augment: dict | None = None,
    log: Callable[[str], Any] = print,
    sample_weight: np.ndarray | torch.Tensor | list[float] | None = None,
    warmup_epochs: float = 1.0,
    label_smoothing: float = 0.0,
    steps: int | None = None,
    labeled_mask: np.ndarray | list[bool] | None = None,
    labeled_share: float = 0.0,
    workers: int = 0,
    checkpoint: Checkpointer | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place with cross-entropy on ``(clips, labels)``.

    clips: uint8 (N, T_store, H, W, 3); labels: (N,) ints in [0, C); sample_weight: optional (N,)
    non-negative per-video loss weights (e.g. pseudo-label confidence; the loss is the weighted
    mean). Optimiser AdamW, one linear warm-up epoch then cosine decay to 0, per step.
    augment: overrides of :data:`finepseudo.models.augment.DEFAULT_AUGMENT` (None = defaults,
    ``{"enabled": False}`` = none). Deterministic on a CPU for a given ``seed`` (shuffling,
    augmentation and dropout all draw from it).

    Training length: ``epochs`` passes over the data, or, with ``steps``, exactly that many optimiser
    steps (an "epoch" is then ceil(N / batch_size) steps, the last one possibly shorter).
    ``labeled_mask`` (N,) bool with ``labeled_share`` in (0, 1): every batch holds
    round(labeled_share * batch_size) videos drawn from the labeled ones (mask True) and the rest from
    the others, each group reshuffled whenever it is used up (labeled videos are oversampled when they
    are few). ``labeled_share`` 0, or a group without videos, keeps plain shuffling of all N.

    Data path: ``clips`` may be a :class:`~finepseudo.data.frames.FrameStore`. Each epoch's batches (videos,
    frame indices and an augmentation seed per batch) are drawn up front from ``seed``; the batches are
    then read and augmented by a ``torch.utils.data.DataLoader`` with ``workers`` worker processes (0:
    in this process), so the result does not depend on ``workers``. On CUDA the loader pins memory and
    the forward pass runs under bf16 autocast; the input is channels-last 3D on every device.

    Returns the per-epoch history: dicts with ``epoch`` (1-based), ``loss`` (weighted mean
    training loss), ``acc`` (training top-1 on the augmented clips), ``clips_per_s``,
    ``seconds`` (epoch wall time) and ``eta`` (estimated seconds left). Logs one line per epoch.

    ``checkpoint``: a :class:`~finepseudo.resume.Checkpointer`; training continues from its saved epoch
    when it matches these arguments and writes it after every epoch (see :mod:`finepseudo.resume`). The
    result equals an uninterrupted run's.
    """
    arguments = dict(locals())  # the arguments as given (the checkpoint's fingerprint)
    _check_clips(clips, clip_frames)
    n = clips.shape[0]
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(y.shape)}")
    w = None
    if sample_weight is not None:
        w = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32))
        if w.shape != (n,) or bool((w < 0).any()):
            raise ValueError(f"sample_weight must be (N,) = ({n},) and non-negative")
    if n == 0 or (epochs <= 0 and not steps):
        return []
    mask = None
    if labeled_mask is not None and labeled_share > 0:
        mask = np.asarray(labeled_mask, dtype=bool)
        if mask.shape != (n,):
            raise ValueError(f"labeled_mask must have shape ({n},), got {mask.shape}")
        if not 0 < labeled_share < 1:
            raise ValueError(f"labeled_share must be in [0, 1), got {labeled_share}")
        if mask.all() or not mask.any():
            mask = None  # one group only: plain shuffling
    aug = {**DEFAULT_AUGMENT, **(augment or {})}
    device = torch.device(device)
    rng = np.random.default_rng([seed, 1])
    model.to(device)
    model.to(memory_format=torch.channels_last_3d)
    cuda = device.type == "cuda"
    rank, world = rank_and_world()
    saved = None
    if checkpoint is not None:
        saved = checkpoint.begin(classifier_fingerprint(arguments, world))
    if saved is not None:  # before DDP, which broadcasts rank 0's weights
        with checkpoint.restoring():
            model.load_state_dict(saved["model"])
    part = slice(rank, None, world)  # this process's rows of every global batch
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    opt = make_adamw(model.parameters(), lr, weight_decay)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = int(steps) if steps else epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    batches = _BatchStream(rng, n, batch_size, mask, labeled_share)
    lr_at = warmup_cosine(lr, max(1, round(warmup_epochs * steps_per_epoch)), total_steps)
    t_store = clips.shape[1]

    history: list[dict[str, float]] = []
    step = 0
    first = 1
    rng_devices = [device.index or 0] if cuda else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(int(rng.integers(2**31)) + rank)
        if saved is not None:
            history, first = checkpoint.resume(saved, device, {
                "optimizer": opt.load_state_dict, "batches": batches.load_state_dict,
                "generator": lambda state: set_generator_state(rng, state)})
            step = int(saved["step"])
        t_start = time.perf_counter()
        for epoch in range(first, epochs + 1):
            model.train()
            t0 = time.perf_counter()
            loss_sum = correct = weight_sum = 0.0
            seen = 0
            requests = []
            for _ in range(min(steps_per_epoch, total_steps - step)):
                idx = next(batches)
                requests.append((idx, train_indices(t_store, clip_frames, len(idx), rng, aug),
                                 int(rng.integers(2**63))))
            for x, idx, idx_all in batch_loader(_TrainBatches(clips, requests, aug, part), workers, pin_memory=cuda):
                if len(idx_all) < world:  # a pass's short last batch with fewer videos than processes: every
                    step += 1             # process skips it (they all know its size), keeping the schedule
                    continue
                seen += len(idx)
                x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last_3d)
                yb = y[idx].to(device)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                    logits = net(x)
                losses = F.cross_entropy(logits.float(), yb, reduction="none", label_smoothing=label_smoothing)
                # the global batch's (weighted) mean: every process knows the whole batch's weights, and DDP
                # averages gradients over the world, hence the factor world
                wb = w[idx].to(device) if w is not None else torch.ones_like(losses)
                denom = float(w[idx_all].sum()) if w is not None else float(len(idx_all))
                loss = (losses * wb).sum() / max(denom, 1e-8) * world
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                loss_sum += float((losses.detach() * wb).sum())
                weight_sum += float(wb.sum())
                correct += float((logits.argmax(1) == yb).sum())
            if world > 1:  # the history is the whole world's
                import torch.distributed as dist

                tot = torch.tensor([loss_sum, weight_sum, correct, float(seen)], dtype=torch.float64)
                dist.all_reduce(tot)
                loss_sum, weight_sum, correct, seen = tot.tolist()
            sec, eta = _epoch_times(t0, t_start, epoch, first, epochs)
            rec = {"epoch": epoch, "loss": loss_sum / max(weight_sum, 1e-8), "acc": correct / max(seen, 1),
                   "clips_per_s": seen / max(sec, 1e-9), "seconds": sec, "eta": eta}
            history.append(rec)
            log(_epoch_line("train", rec, epochs, lr_at(step - 1)))
            if checkpoint is not None:
                checkpoint.save(epoch, epochs, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "history": history, "batches": batches.state_dict(), "generator": generator_state(rng)},
                    device)
    model.to(memory_format=torch.contiguous_format)
    return history


def classifier_fingerprint(a: dict, world: int) -> dict:
    """What a :func:`train_classifier` run depends on, from its arguments ``a`` (name -> value, defaults
    included) and the number of processes: the resume checkpoint's loop fingerprint."""
    share = float(a["labeled_share"] or 0.0)
    return {"loop": "train_classifier", "n": int(a["clips"].shape[0]), "t_store": int(a["clips"].shape[1]),
            "world": int(world), "device": torch.device(a["device"]).type,
            "augment": {**DEFAULT_AUGMENT, **(a["augment"] or {})},
            "data": array_digest(np.asarray(a["labels"], np.int64),
                                 None if a["sample_weight"] is None else np.asarray(a["sample_weight"], np.float32),
                                 None if a["labeled_mask"] is None or share <= 0 else np.asarray(a["labeled_mask"], bool)),
            **{k: a[k] for k in ("epochs", "steps", "batch_size", "lr", "weight_decay", "clip_frames", "seed",
                                 "warmup_epochs", "label_smoothing", "labeled_share")}}


class _TrainBatches(torch.utils.data.Dataset):
    """Item i of an epoch: batch request i (video indices, frame indices, augmentation seed) read from the
    frames and augmented -> (float input (b, 3, T, H, W), its video indices, the whole batch's video indices);
    b = B, or this process's rows of the batch under DDP (``part``). Runs in loader workers."""

    def __init__(self, clips, requests: list[tuple[np.ndarray, np.ndarray, int]], aug: dict, part: slice = slice(None)):
        self.clips, self.requests, self.aug, self.part = clips, requests, aug, part

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, i: int):
        idx_all, t_all, aug_seed = self.requests[i]
        idx, t_idx = idx_all[self.part], t_all[self.part]  # this process's rows (all of them in one process)
        batch = self.clips[torch.as_tensor(idx)[:, None], torch.as_tensor(t_idx)]  # (b, T, H, W, 3)
        x = train_input(batch, np.random.default_rng(aug_seed), self.aug, rows=self.part, n_total=len(idx_all))
        return x, torch.as_tensor(idx), torch.as_tensor(idx_all)


class _Slices(torch.utils.data.Dataset):
    """Item i: videos [i * batch_size, (i + 1) * batch_size) of ``clips`` as a uint8 tensor."""

    def __init__(self, clips, batch_size: int):
        self.clips, self.batch_size = clips, batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.clips) / self.batch_size)

    def __getitem__(self, i: int):
        return self.clips[i * self.batch_size:(i + 1) * self.batch_size]


def batch_loader(dataset: torch.utils.data.Dataset, workers: int = 0, *, pin_memory: bool = False):
    """Items of ``dataset`` in order, read by ``workers`` processes (0: in this one), two batches ahead per
    worker. Each item is already a batch (``batch_size=None``)."""
    workers = max(0, int(workers))
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                       pin_memory=pin_memory, prefetch_factor=2 if workers else None,
                                       persistent_workers=False)


def make_adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable ``params``, with weight decay on weights only (not biases or norms)."""
    params = [p for p in params if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}], lr=lr)


def warmup_cosine(lr: float, warm: int, total_steps: int) -> Callable[[int], float]:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up over ``warm`` steps, then cosine
    decay to 0 at ``total_steps``."""

    def lr_at(step: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total_steps - warm)))

    return lr_at


class _BatchStream:
    """Endless iterator of index batches. Without ``mask``: consecutive slices of a fresh permutation of
    all n per pass (the last slice of a pass may be short). With ``mask``: round(share * B) labeled and
    B - that many other indices per batch, each group from its own stream of permutations. Permutations
    are drawn from ``rng`` when needed; :meth:`state_dict` (with ``rng``'s state) lets a resumed run go on
    with the same batches."""

    def __init__(self, rng: np.random.Generator, n: int, batch_size: int, mask: np.ndarray | None,
                 labeled_share: float) -> None:
        self.rng, self.n, self.batch_size, self.mask = rng, n, batch_size, mask
        self.perm: np.ndarray | None = None
        self.pos = 0
        if mask is not None:
            self.groups = [np.flatnonzero(mask), np.flatnonzero(~mask)]
            n_lab = min(batch_size - 1, max(1, round(labeled_share * batch_size)))
            self.take = [n_lab, batch_size - n_lab]
        self.queues: list[list[int]] = [[], []]

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        if self.mask is None:
            if self.perm is None or self.pos >= self.n:
                self.perm, self.pos = self.rng.permutation(self.n), 0
            batch = self.perm[self.pos:self.pos + self.batch_size]
            self.pos += self.batch_size
            return batch
        batch = []
        for g in (0, 1):
            while len(self.queues[g]) < self.take[g]:
                self.queues[g].extend(self.groups[g][self.rng.permutation(len(self.groups[g]))].tolist())
            batch += self.queues[g][:self.take[g]]
            del self.queues[g][:self.take[g]]
        return np.asarray(batch, dtype=np.int64)

    def state_dict(self) -> dict:
        perm = None if self.perm is None else torch.from_numpy(np.asarray(self.perm, np.int64))
        return {"perm": perm, "pos": self.pos, "queues": [list(q) for q in self.queues]}

    def load_state_dict(self, state: dict) -> None:
        self.perm = None if state["perm"] is None else state["perm"].numpy()
        self.pos = int(state["pos"])
        self.queues = [[int(i) for i in q] for q in state["queues"]]


@torch.no_grad()
def predict_proba_and_logits(model: nn.Module, clips, *, clip_frames: int, clips_per_video: int = 2,
                             batch_size: int = 32, device: str | torch.device = "cpu",
                             workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The softmax and the logits, each averaged over ``clips_per_video`` deterministic clips (as in
    :func:`predict_proba`), from one pass. clips: uint8 (N, T_store, H, W, 3). Returns two float32 (N, C)."""
    return _predict(model, clips, clip_frames, clips_per_video, batch_size, device, workers)


@torch.no_grad()
def predict_proba(model: nn.Module, clips, *, clip_frames: int, clips_per_video: int = 2,
                  batch_size: int = 32, device: str | torch.device = "cpu", workers: int = 0) -> np.ndarray:
    """Class probabilities: the softmax averaged over ``clips_per_video`` deterministic clips.

    clips: uint8 (N, T_store, H, W, 3) or a FrameStore, read in batches by ``workers`` loader processes;
    clip k of a video takes ``clip_frames`` frames evenly spaced over all stored frames, offset by
    k / clips_per_video of the spacing (see :func:`finepseudo.models.augment.eval_indices`). Returns float32
    (N, C), rows summing to 1.
    """
    probs, _ = _predict(model, clips, clip_frames, clips_per_video, batch_size, device, workers)
    return probs


@torch.no_grad()
def _predict(model: nn.Module, clips, clip_frames: int, clips_per_video: int, batch_size: int,
             device: str | torch.device, workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    _check_clips(clips, clip_frames)
    device = torch.device(device)
    cuda = device.type == "cuda"
    was_training = model.training
    model.eval()
    model.to(device)
    model.to(memory_format=torch.channels_last_3d)
    t_idx = torch.as_tensor(eval_indices(clips.shape[1], clip_frames, clips_per_video))  # (K, T)
    prob_sum, logit_sum = [], []
    for part in batch_loader(_Slices(clips, batch_size), workers, pin_memory=cuda):
        p_acc = l_acc = None
        for k in range(t_idx.shape[0]):
            x = to_model_input(part[:, t_idx[k]]).contiguous(memory_format=torch.channels_last_3d)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                logits = model(x.to(device, non_blocking=True)).float()
            p = logits.softmax(1)
            p_acc = p if p_acc is None else p_acc + p
            l_acc = logits if l_acc is None else l_acc + logits
        prob_sum.append((p_acc / t_idx.shape[0]).cpu())
        logit_sum.append((l_acc / t_idx.shape[0]).cpu())
    model.to(memory_format=torch.contiguous_format)
    model.train(was_training)
    if not prob_sum:
        c = model.fc.out_features if hasattr(model, "fc") else 0
        return np.zeros((0, c), np.float32), np.zeros((0, c), np.float32)
    return torch.cat(prob_sum).numpy(), torch.cat(logit_sum).numpy()


# ----------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, arch: str, num_classes: int,
                    model_kwargs: dict | None = None, metadata: dict | None = None) -> None:
    """Save ``{"state_dict", "arch", "num_classes", "model_kwargs", "metadata"}`` to ``path`` (.pt)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "arch": arch, "num_classes": int(num_classes),
                "model_kwargs": dict(model_kwargs or {}), "metadata": dict(metadata or {})}, p)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model saved by :func:`save_checkpoint`. Returns ``(model, checkpoint_dict)``
    (the dict without ``state_dict``: arch, num_classes, model_kwargs, metadata)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    for key in ("state_dict", "arch", "num_classes"):
        if key not in ckpt:
            raise KeyError(f"{p} is not a finepseudo checkpoint (no {key!r})")
    model = build_video_model(ckpt["arch"], ckpt["num_classes"], **ckpt.get("model_kwargs", {}))
    model.load_state_dict(ckpt["state_dict"])
    model.to(device)
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, info
