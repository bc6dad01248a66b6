"""Process-group primitives for training one model in several processes (DistributedDataParallel), shared
by every multi-process training loop (:mod:`finepseudo.models.distributed` for f_E,
:func:`finepseudo.align.train.pretrain_gitdl_ddp` and :func:`finepseudo.align.train.train_avml_ddp` for f_A)
and by the resume checkpoints (:mod:`finepseudo.resume`: rank 0 writes them). See docs/architecture.md
(several GPUs).

:func:`run_distributed` starts N processes of one DDP world with ``torch.multiprocessing`` (one per GPU,
``nccl``; or N CPU processes with ``gloo``, which is how CI tests it) and hands back rank 0's weights and
history; inside a world, :func:`rank_and_world` says which process this is, :func:`data_parallel` wraps a
model, :func:`encode_rows` / :func:`gather_rows` share a batch's rows between the processes and
:func:`average_gradients` keeps a head trained outside DDP identical on every process.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch

__all__ = ["rank_and_world", "run_distributed", "encode_rows", "gather_rows", "average_gradients", "data_parallel"]


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def data_parallel(model: torch.nn.Module, device, restore=None) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model, net) of a training loop that may run in a DDP world. In one, ``model`` gets SyncBatchNorm on
    CUDA (batch-norm statistics over the whole batch; on a CPU they stay per process), then ``restore(model)``
    (loading a resume checkpoint: before DDP, which broadcasts rank 0's weights), and ``net`` is its DDP
    wrapper; in one process, ``restore(model)`` and ``net`` is ``model``. Train through ``net``; optimise and
    save ``model``."""
    _, world = rank_and_world()
    cuda = torch.device(device).type == "cuda"
    if world > 1 and cuda:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if restore is not None:
        restore(model)
    if world == 1:
        return model, model
    from torch.nn.parallel import DistributedDataParallel

    return model, DistributedDataParallel(model, device_ids=[torch.device(device).index] if cuda else None)


class _GatherRows(torch.autograd.Function):
    """All-gather of equal-sized tensors whose backward hands each process the gradient of its own part,
    summed over the processes (all-reduce, which gloo and nccl both have; PyTorch's differentiable
    all_gather needs all-to-all on gloo)."""

    @staticmethod
    def forward(ctx, local):
        import torch.distributed as dist

        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.clone(memory_format=torch.contiguous_format)  # autograd's tensor is not ours to change
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def gather_rows(local: torch.Tensor, n: int) -> torch.Tensor:
    """The ``n`` rows of a batch of which this process holds rows rank, rank + N, rank + 2N, ... (``local``),
    back in their order on every process; gradients flow to each process's own rows. Every process must
    compute the same loss from the result: the backward then gives each process N times the gradient of
    its rows, and DDP's average over the N processes turns that into the single-process gradient."""
    _, world = rank_and_world()
    m = -(-n // world)  # rows of the first processes; later ones may hold one fewer: pad to m
    pad = m - len(local)
    if pad:
        local = torch.cat([local, local.new_zeros((pad, *local.shape[1:]))])
    parts = _GatherRows.apply(local)  # (world, m, ...): parts[r][k] is row k * world + r
    return parts.transpose(0, 1).reshape(m * world, *local.shape[1:])[:n]


def encode_rows(net: torch.nn.Module, x: torch.Tensor, device) -> torch.Tensor:
    """``net(x)`` for a batch shared by the processes of a DDP world: each encodes its rows (r, r + N, ...)
    and gets every row back (:func:`gather_rows`). In one process, ``net(x)``."""
    rank, world = rank_and_world()
    if world == 1:
        return net(x.to(device))
    return gather_rows(net(x[rank::world].to(device)), len(x))


def average_gradients(params) -> None:
    """Average the gradients of parameters outside DDP (a head every process trains on the same loss) over
    the processes, so their weights cannot drift apart; a no-op in one process."""
    _, world = rank_and_world()
    if world == 1:
        return
    import torch.distributed as dist

    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def _run_worker(rank: int, world: int, store_dir: str, device: str, threads: int, fn, args, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    cuda = device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{store_dir}/rendezvous", rank=rank,
                            world_size=world)
    try:
        if cuda:
            torch.cuda.set_device(rank)
        args = copy.deepcopy(args)  # private copies of tensors torch.multiprocessing shares between processes
        model, history = fn(f"cuda:{rank}" if cuda else "cpu", *args)
        if rank == 0:
            torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                        "history": history}, out)
    finally:
        dist.destroy_process_group()


def run_distributed(fn, world_size: int, device: str, *args) -> tuple[dict, list]:
    """Run ``fn(device, *args) -> (model, history)`` in ``world_size`` processes of one DDP world (one GPU
    each on CUDA, gloo on the CPU); ``fn`` must be a module-level function. Returns rank 0's state dict and
    history."""
    import torch.multiprocessing as mp

    if device.startswith("cuda") and torch.cuda.device_count() < world_size:
        raise RuntimeError(f"{world_size} processes need {world_size} GPUs, torch sees {torch.cuda.device_count()}: "
                           "request them from the scheduler, or lower the config key (fe.gpus / alignability.gpus)")
    threads = max(1, torch.get_num_threads() // world_size)
    with tempfile.TemporaryDirectory(prefix="finepseudo-ddp-") as tmp:
        out = str(Path(tmp) / "rank0.pt")
        mp.start_processes(_run_worker, args=(world_size, tmp, device, threads, fn, args, out), nprocs=world_size,
                           join=True, start_method="spawn")
        result = torch.load(out, map_location="cpu", weights_only=True)
    return result["state_dict"], result["history"]
