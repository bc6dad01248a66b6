"""Training loops of the alignability branch: GITDL pre-training of f_A, AVML (L_AT + omega L_Score)
of f_A and f_S, and embedding videos with a frozen f_A. Seeded and deterministic on CPU.

Frames are uint8 (N, T_store, H, W, 3) as stored by frame extraction; f_A sees ``num_frames`` of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from finepseudo.align.alignability import FrameEncoder, ScoreHead, alignment_distance, avml_loss, gitdl_loss
from finepseudo.data.frames import sample_indices
from finepseudo.ddp import average_gradients, data_parallel, encode_rows, rank_and_world, run_distributed
from finepseudo.resume import Checkpointer, array_digest, generator_state, set_generator_state

Log = Callable[[str], None]

__all__ = ["augment_view", "pretrain_gitdl", "pretrain_gitdl_ddp", "train_avml", "train_avml_ddp", "embed_videos",
           "eval_indices"]


def eval_indices(t_store: int, num_frames: int) -> np.ndarray:
    """The deterministic frames f_A embeds at inference: uniform over the stored frames."""
    return sample_indices(t_store, num_frames)


def augment_view(frames: torch.Tensor, num_frames: int, gen: torch.Generator,
                 crop: float = 0.8, brightness: float = 0.15, hflip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented view of each video: ``num_frames`` sorted random stored frames (their original
    indices are returned as timestamps), a random crop resized back, brightness/contrast jitter and, with
    ``hflip``, a left-right mirror of the whole view with probability 1/2 (drawn after the rest). A mirror
    keeps a dive's class (facing, pool side and rotation all mirror together) where the data are filmed
    from both sides, as SynthDive's mirrored views are. frames uint8 (B, T, H, W, 3) ->
    (uint8 (B, num_frames, H, W, 3), float timestamps (B, num_frames))."""
    b, t, h, w, _ = frames.shape
    idx = torch.stack([torch.sort(torch.randperm(t, generator=gen)[:num_frames]).values for _ in range(b)])
    clip = torch.stack([frames[i, idx[i]] for i in range(b)])  # (B, n, H, W, 3)
    x = clip.permute(0, 1, 4, 2, 3).reshape(b, num_frames * 3, h, w).float()
    out = torch.empty_like(x)
    for i in range(b):
        s = float(torch.empty(1).uniform_(crop, 1.0, generator=gen))
        ch, cw = max(4, int(round(h * s))), max(4, int(round(w * s)))
        y0 = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        patch = x[i : i + 1, :, y0 : y0 + ch, x0 : x0 + cw]
        patch = F.interpolate(patch, size=(h, w), mode="bilinear", align_corners=False)
        gain = 1.0 + float(torch.empty(1).uniform_(-brightness, brightness, generator=gen))
        bias = 255.0 * float(torch.empty(1).uniform_(-brightness, brightness, generator=gen)) / 2
        out[i] = (patch[0] * gain + bias).clamp_(0, 255)
    view = out.round().to(torch.uint8).view(b, num_frames, 3, h, w).permute(0, 1, 3, 4, 2).contiguous()
    if hflip:
        flip = torch.rand(b, generator=gen) < 0.5
        view[flip] = view[flip].flip(3)
    return view, idx.float()


def _progress(log: Log, what: str, epoch: int, epochs: int, stats: dict, n: int, t_epoch: float, t0: float,
              first: int = 1) -> dict:
    """The history row of ``epoch`` (and its log line); ``first``: the first epoch this process trained."""
    eta = (time.time() - t0) / (epoch - first + 1) * (epochs - epoch)
    row = {"epoch": epoch, **{k: round(v, 5) for k, v in stats.items()}, "items_per_s": round(n / t_epoch, 1),
           "seconds": round(time.time() - t0, 1), "eta_s": round(eta, 1)}
    log(f"[{what}] epoch {epoch}/{epochs} " + " ".join(f"{k}={v}" for k, v in row.items() if k != "epoch"))
    return row


def pretrain_gitdl(frames, *, num_frames: int, dim: int, width: int, layers: int, pool: int, epochs: int,
                   batch_size: int, lr: float, tau: float, sigma: float, seed: int, device: str = "cpu",
                   log: Log = print, checkpoint: Checkpointer | None = None,
                   steps: int | None = None, hflip: bool = False,
                   clip_norm: bool = False) -> tuple[FrameEncoder, list[dict]]:
    """GITDL on unlabeled videos (no label reaches this function). ``sigma`` is in stored-frame units
    (the stored frames are the time axis). Returns f_A and the per-epoch history. Training length:
    ``epochs`` passes over the videos or, with ``steps``, exactly that many optimiser steps (the last pass
    stops part-way), so that the cost does not grow with the number of videos.

    Inside a DistributedDataParallel world (:func:`pretrain_gitdl_ddp`) every process draws the same
    batches and both views of the whole batch, encodes its rows (r, r + N, ...) and weights its loss by
    its share of the batch, so the averaged gradient is the single-process one (GITDL's loss is a mean of
    per-video terms).

    ``checkpoint``: resume from / write epoch checkpoints (:class:`~finepseudo.resume.Checkpointer`; under
    DDP every process loads, rank 0 writes); the result equals an uninterrupted run's."""
    arguments = {k: v for k, v in locals().items() if k not in ("log", "checkpoint")}
    rank, world = rank_and_world()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = FrameEncoder(dim=dim, width=width, layers=layers, pool=pool, clip_norm=clip_norm).to(device)
    saved = checkpoint.begin(gitdl_fingerprint(arguments, world)) if checkpoint is not None else None

    def restore(m):
        if saved is not None:
            with checkpoint.restoring():
                m.load_state_dict(saved["model"])

    model, net = data_parallel(model, device, restore)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    n = len(frames)
    per_epoch = max(1, n // batch_size + (n % batch_size >= max(2, world)))  # batches that take a step
    if steps:
        epochs = -(-int(steps) // per_epoch)
    total = int(steps) if steps else max(1, epochs * per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    history, first = [], 1
    if saved is not None:
        history, first = checkpoint.resume(saved, device, {
            "optimizer": opt.load_state_dict, "scheduler": sched.load_state_dict, "generator": gen.set_state})
    t0 = time.time()
    for epoch in range(first, epochs + 1):
        model.train()
        te, tot, cnt = time.time(), 0.0, 0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            if len(idx) < max(2, world):
                continue
            if sched.last_epoch >= total:  # ``steps`` reached part-way through the last pass
                break
            batch = frames[idx]
            v1, t1 = augment_view(batch, num_frames, gen, hflip=hflip)
            v2, t2 = augment_view(batch, num_frames, gen, hflip=hflip)
            part = slice(rank, None, world)  # this process's rows (all of them in one process)
            v1, t1, v2, t2 = v1[part], t1[part], v2[part], t2[part]
            b = len(v1)
            z = net(torch.cat([v1, v2]).to(device))
            loss = gitdl_loss(z[:b], z[b:], t1.to(device), t2.to(device), tau=tau, sigma=sigma)
            opt.zero_grad(set_to_none=True)
            (loss * (b * world / len(idx))).backward()
            opt.step()
            sched.step()
            tot, cnt = tot + loss.item() * b, cnt + b
        if world > 1:
            import torch.distributed as dist

            sums = torch.tensor([tot, float(cnt)], dtype=torch.float64)
            dist.all_reduce(sums)
            tot, cnt = sums[0].item(), int(sums[1].item())
        history.append(_progress(log, "gitdl", epoch, epochs, {"loss": tot / max(cnt, 1)}, cnt, time.time() - te, t0,
                                 first))
        if checkpoint is not None:
            checkpoint.save(epoch, epochs, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                            "scheduler": sched.state_dict(), "generator": gen.get_state(),
                                            "history": history}, device)
    return model.eval(), history


def _defaults(fn: Callable) -> dict:
    """The keyword defaults of ``fn``: a DDP launcher's fingerprint must see what the worker's call will use
    (a key its caller left out has its default there, not None)."""
    import inspect

    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not inspect.Parameter.empty}


def gitdl_fingerprint(a: dict, world: int) -> dict:
    """What a :func:`pretrain_gitdl` run depends on, from its arguments ``a`` (name -> value) and the number
    of processes: the resume checkpoint's loop fingerprint."""
    return {"loop": "pretrain_gitdl", "n": len(a["frames"]), "t_store": int(a["frames"].shape[1]), "world": int(world),
            "device": torch.device(a.get("device", "cpu")).type,
            **{k: a.get(k) for k in ("num_frames", "dim", "width", "layers", "pool", "epochs", "batch_size", "lr",
                                     "tau", "sigma", "seed", "steps", "hflip", "clip_norm")}}


def pretrain_gitdl_ddp(frames, *, world_size: int, device: str = "cpu", log: Log = print,
                       **kwargs) -> tuple[FrameEncoder, list[dict]]:
    """:func:`pretrain_gitdl` in ``world_size`` DistributedDataParallel processes (alignability.gpus);
    with 1, pretrain_gitdl itself."""
    if world_size <= 1:
        return pretrain_gitdl(frames, device=device, log=log, **kwargs)
    if kwargs.get("checkpoint") is not None:  # say here whether the workers resume; they cannot log
        kwargs["checkpoint"].begin(gitdl_fingerprint({**_defaults(pretrain_gitdl), "frames": frames, "device": device,
                                                      **kwargs}, world_size))
        kwargs["checkpoint"] = kwargs["checkpoint"].quiet()
    state, history = run_distributed(_gitdl_worker, world_size, device, frames, kwargs)
    model = FrameEncoder(**{k: kwargs[k] for k in ("dim", "width", "layers", "pool", "clip_norm") if k in kwargs})
    model.load_state_dict(state)
    for h in history:
        log(f"[gitdl, {world_size} processes] epoch {h['epoch']}/{len(history)} loss={h['loss']}")
    return model.eval(), history


def _gitdl_worker(device: str, frames, kwargs: dict):
    model, history = pretrain_gitdl(frames, device=device, log=lambda m: None, **kwargs)
    return model, history


@torch.no_grad()
def embed_videos(model: FrameEncoder, frames: torch.Tensor, *, num_frames: int, batch_size: int = 64,
                 device: str = "cpu") -> np.ndarray:
    """Frozen f_A embeddings of every video: (N, num_frames, F) float32, frames uniform over the clip."""
    model.eval()
    idx = torch.as_tensor(eval_indices(frames.shape[1], num_frames))
    out = [model(frames[i : i + batch_size][:, idx].to(device)).cpu() for i in range(0, len(frames), batch_size)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, num_frames, model.dim), np.float32)


def avml_fingerprint(a: dict, world: int) -> dict:
    """What a :func:`train_avml` run depends on, from its arguments ``a`` (name -> value) and the number of
    processes: the resume checkpoint's loop fingerprint."""
    return {"loop": "train_avml", "n": len(a["labels"]), "t_store": int(a["frames"].shape[1]),
            **{k: a[k] for k in ("num_frames", "epochs", "batch_size", "lr", "gamma", "margin", "omega", "use_triplet",
                                 "use_score", "seed", "hflip")},
            "device": torch.device(a.get("device", "cpu")).type, "new_score_head": a.get("score") is None,
            "world": int(world),
            "data": array_digest(np.asarray(a["labels"], np.int64), np.asarray(a["hard_negative"], np.int64))}


def train_avml(model: FrameEncoder, frames: torch.Tensor, labels: np.ndarray, hard_negative: np.ndarray, *,
               num_frames: int, epochs: int, batch_size: int, lr: float, gamma: float, margin: float,
               omega: float, use_triplet: bool, use_score: bool, seed: int, device: str = "cpu",
               log: Log = print, score: ScoreHead | None = None,
               checkpoint: Checkpointer | None = None, hflip: bool = False) -> tuple[FrameEncoder, ScoreHead, list[dict]]:
    """Alignability-verification metric learning of f_A and f_S on labeled videos.

    labels (N,) int; hard_negative (N,) index of each video's globally mined hardest negative (the
    different-class video with the smallest DTW distance, from ``mine_pairs``). Each step: anchors, a
    random same-class positive (another augmented view of the anchor when its class has one video),
    the mined negative and the in-batch hardest negative (smallest D among different-class positives).
    ``score`` continues training an existing f_S (pseudo-label rounds); a new one is made otherwise.

    Inside a DistributedDataParallel world (:func:`train_avml_ddp`) every process draws the same batch,
    positives and views, encodes its rows of the views (r, r + N, ...) and gathers every row's embedding
    (:func:`~finepseudo.ddp.gather_rows`), so the in-batch hardest negatives are chosen
    over the whole batch and every process computes the whole batch's loss; the gradient is the
    single-process one (f_S's gradients, identical on every process, are averaged too).

    ``checkpoint``: resume from / write epoch checkpoints (:class:`~finepseudo.resume.Checkpointer`; under
    DDP every process loads, rank 0 writes); the result equals an uninterrupted run's.
    """
    rank, world = rank_and_world()
    fingerprint = avml_fingerprint({k: v for k, v in locals().items() if k != "checkpoint"}, world)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = model.to(device)
    score = (ScoreHead() if score is None else score).to(device)
    saved = checkpoint.begin(fingerprint) if checkpoint is not None else None

    def restore(m):
        if saved is not None:
            with checkpoint.restoring():
                m.load_state_dict(saved["model"])
                score.load_state_dict(saved["score"])

    model, net = data_parallel(model, device, restore)  # net encodes the views: model or its DDP wrapper
    opt = torch.optim.AdamW([{"params": model.parameters()}, {"params": score.parameters(), "lr": lr * 10}],
                            lr=lr, weight_decay=1e-4)
    labels = np.asarray(labels)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    n = len(labels)
    history, first = [], 1
    if saved is not None:
        history, first = checkpoint.resume(saved, device, {
            "optimizer": opt.load_state_dict, "generator": gen.set_state,
            "numpy_generator": lambda state: set_generator_state(rng, state)})
    t0 = time.time()
    for epoch in range(first, epochs + 1):
        model.train()
        te, sums, cnt = time.time(), {}, 0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            a = idx.numpy()
            if len(a) < 2 or 3 * len(a) < world:  # the same decision on every process
                continue
            p = np.array([rng.choice(by_class[labels[i]][by_class[labels[i]] != i])
                          if len(by_class[labels[i]]) > 1 else i for i in a])
            g = hard_negative[a]
            views, _ = augment_view(frames[np.concatenate([a, p, g])], num_frames, gen, hflip=hflip)
            z = encode_rows(net, views, device)
            za, zp, zg = z[: len(a)], z[len(a): 2 * len(a)], z[2 * len(a):]
            with torch.no_grad():  # in-batch hardest negative among the other anchors' positives
                d_all = alignment_distance(za.repeat_interleave(len(a), 0), zp.repeat(len(a), 1, 1), gamma)
                d_all = d_all.view(len(a), len(a))
                d_all[torch.as_tensor(labels[a][:, None] == labels[p][None, :])] = float("inf")
                has_neg = torch.isfinite(d_all).any(1)
                j = d_all.argmin(1)
            negs = [zg]
            if bool(has_neg.all()):
                negs.append(zp[j])
            loss, stats = avml_loss(za, zp, negs, score, gamma=gamma, margin=margin, omega=omega,
                                    use_triplet=use_triplet, use_score=use_score)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(score.parameters())
            opt.step()
            stats["loss"] = loss.item()
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v * len(a)
            cnt += len(a)
        history.append(_progress(log, "avml", epoch, epochs, {k: v / max(cnt, 1) for k, v in sums.items()},
                                 cnt, time.time() - te, t0, first))
        if checkpoint is not None:
            checkpoint.save(epoch, epochs, {"model": model.state_dict(), "score": score.state_dict(),
                                            "optimizer": opt.state_dict(), "generator": gen.get_state(),
                                            "numpy_generator": generator_state(rng), "history": history}, device)
    return model.eval(), score.eval(), history


def train_avml_ddp(model: FrameEncoder, frames, labels: np.ndarray, hard_negative: np.ndarray, *, world_size: int,
                   device: str = "cpu", log: Log = print, score: ScoreHead | None = None,
                   **kwargs) -> tuple[FrameEncoder, ScoreHead, list[dict]]:
    """:func:`train_avml` in ``world_size`` DistributedDataParallel processes (alignability.gpus); with 1,
    train_avml itself. ``model`` and ``score`` (a new f_S when None) get rank 0's weights."""
    if world_size <= 1:
        return train_avml(model, frames, labels, hard_negative, device=device, log=log, score=score, **kwargs)
    if kwargs.get("checkpoint") is not None:  # say here whether the workers resume; they cannot log
        kwargs["checkpoint"].begin(avml_fingerprint({**_defaults(train_avml), "frames": frames, "labels": labels,
                                                     "hard_negative": hard_negative,
                                                     "device": device, "score": score, **kwargs}, world_size))
        kwargs["checkpoint"] = kwargs["checkpoint"].quiet()
    new_head = score is None
    if new_head:  # made here so that rank 0's trained weights can be loaded into it
        torch.manual_seed(kwargs["seed"])
        score = ScoreHead()
    both = torch.nn.ModuleDict({"fa": model.cpu(), "fs": score.cpu()})
    state, history = run_distributed(_avml_worker, world_size, device, both, frames, labels, hard_negative,
                                     new_head, kwargs)
    both.load_state_dict(state)  # SyncBatchNorm keeps BatchNorm's parameter and buffer names
    for h in history:
        log(f"[avml, {world_size} processes] epoch {h['epoch']}/{len(history)} loss={h['loss']}")
    return model.eval(), score.eval(), history


def _avml_worker(device: str, both, frames, labels, hard_negative, new_head: bool, kwargs: dict):
    fa, fs, history = train_avml(both["fa"], frames, labels, hard_negative, device=device, log=lambda m: None,
                                 score=None if new_head else both["fs"], **kwargs)
    return torch.nn.ModuleDict({"fa": fa, "fs": fs}), history
