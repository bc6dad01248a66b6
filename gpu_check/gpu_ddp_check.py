"""DistributedDataParallel in one process group of the GPUs present, nccl and SyncBatchNorm (run by
gpu_check/gpu_check.sh). With ``--device cpu`` the same script runs with gloo and 2 CPU processes (the smoke
test that keeps it from rotting on machines without a GPU).

One :func:`finepseudo.ddp.run_distributed` world of ``--world`` processes (default: every GPU
torch sees; world size 1 on one card still initialises nccl and runs its collectives) does, in every process:

1. nccl collectives on device tensors: all_reduce, all_gather, broadcast, and the library's ``_GatherRows``
   (all_gather forward, all_reduce backward), each checked against the exact result;
2. SyncBatchNorm's kernel (``torch.nn.modules._functions.SyncBatchNorm``: batch statistics gathered over the
   group with nccl, which the module skips at world size 1) against ``F.batch_norm`` over the whole batch,
   outputs and input gradients (CUDA only: SyncBatchNorm has no CPU kernel);
3. a ``DistributedDataParallel`` step of a small conv net with SyncBatchNorm (gradient all_reduce through
   DDP's reducer) against the same step in one process;
4. the workflow's own workers: f_E training (``_classifier_worker``: SyncBatchNorm, train_classifier),
   GITDL (``_gitdl_worker``) and AVML with the CuPy soft-DTW on CUDA (``_avml_worker``), whose loss curves
   must match the same trainings in this one process.

Tolerances: collectives exact; SyncBatchNorm 1e-4 (float32 sums in another order); the DDP step 1e-5 on the
weights (TF32 off); the trainings' per-epoch losses within 2 % of one process's on CUDA (SyncBatchNorm: the
statistics are the whole batch's; bf16 autocast, TF32 and the order of sums differ), and within 10 % on a CPU,
where batch norm is per process (tests/test_ddp.py's widest bound; 6 % measured here for f_E with 2 processes; that
file checks the gloo path closely). The weights' relative difference is reported.

    PYTHONPATH=src python gpu_check/gpu_ddp_check.py --device cuda --json ddp.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

#: per-epoch loss tolerance against one process: on CUDA, SyncBatchNorm makes the statistics the whole batch's;
#: on a CPU batch norm is per process (tests/test_ddp.py checks that path closely; here its widest bound)
LOSS_RTOL = {"cuda": {"fe": 0.02, "gitdl": 0.02, "avml": 0.02}, "cpu": {"fe": 0.10, "gitdl": 0.10, "avml": 0.10}}


def data() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    clips = torch.from_numpy(rng.integers(0, 256, size=(24, 8, 16, 16, 3), dtype=np.uint8))
    labels = np.arange(24) % 3
    clips[labels == 1, ..., 0] //= 2
    clips[labels == 2, ..., 2] //= 2
    hard_negative = (np.arange(24) + 1) % 24  # the next video: always of another class
    return clips, labels, hard_negative


FE_KW = dict(epochs=2, batch_size=8, lr=3e-3, weight_decay=0.01, clip_frames=4, seed=5)
GITDL_KW = dict(num_frames=8, dim=16, width=8, layers=0, pool=2, epochs=2, batch_size=8, lr=1e-3, tau=0.1, sigma=2.0,
                seed=0)
AVML_KW = dict(num_frames=8, epochs=2, batch_size=8, lr=5e-4, gamma=0.1, margin=0.1, omega=1.0, use_triplet=True,
               use_score=True, seed=0)


class SmallBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def _collectives(device: str) -> dict:
    """Every check's result in plain values (rank 0's are returned)."""
    import torch.distributed as dist

    from finepseudo.ddp import _GatherRows

    rank, world = dist.get_rank(), dist.get_world_size()
    out: dict = {"backend": dist.get_backend(), "world": world}
    t = torch.full((1000,), float(rank + 1), device=device)
    dist.all_reduce(t)
    out["all_reduce"] = bool((t == world * (world + 1) / 2).all())
    parts = [torch.empty(5, device=device) for _ in range(world)]
    dist.all_gather(parts, torch.arange(5, device=device, dtype=torch.float32) + 10 * rank)
    out["all_gather"] = all(bool((p == torch.arange(5, device=device) + 10 * r).all()) for r, p in enumerate(parts))
    b = torch.full((7,), float(rank), device=device) if rank else torch.arange(7, device=device, dtype=torch.float32)
    dist.broadcast(b, 0)
    out["broadcast"] = bool((b == torch.arange(7, device=device)).all())
    local = (torch.arange(6, device=device, dtype=torch.float32).view(3, 2) + 100 * rank).requires_grad_(True)
    g = _GatherRows.apply(local)  # (world, 3, 2)
    w = torch.arange(g.numel(), device=device, dtype=torch.float32).view_as(g)
    (g * w).sum().backward()
    expect_g = torch.stack([torch.arange(6, device=device, dtype=torch.float32).view(3, 2) + 100 * r for r in range(world)])
    out["gather_rows"] = bool(torch.equal(g.detach(), expect_g)) and bool(torch.equal(local.grad, world * w[rank]))
    if torch.device(device).type == "cuda":
        out.update(_sync_bn(device, rank, world))
        out.update(_ddp_step(device, rank, world))
    else:
        out["sync_batch_norm"] = "skipped: no CPU kernel"
        out.update(_ddp_step(device, rank, world))
    return out


def _sync_bn(device: str, rank: int, world: int) -> dict:
    """SyncBatchNorm's kernel on this rank's rows of a batch against batch norm over the whole batch."""
    import torch.distributed as dist
    from torch.nn.modules._functions import SyncBatchNorm as SyncBNFunction

    g = torch.Generator(device="cpu").manual_seed(0)
    whole = torch.randn(4 * world, 6, 4, 5, 5, generator=g).to(device)
    weight = torch.linspace(0.5, 1.5, 6, device=device)
    bias = torch.linspace(-0.2, 0.2, 6, device=device)
    x = whole[rank::world].clone().contiguous(memory_format=torch.channels_last_3d).requires_grad_(True)
    rm, rv = torch.zeros(6, device=device), torch.ones(6, device=device)
    y = SyncBNFunction.apply(x, weight, bias, rm, rv, 1e-5, 0.1, dist.group.WORLD, world)
    up = torch.linspace(-1, 1, y.numel(), device=device).view_as(y)
    (y * up).sum().backward()
    xr = whole.clone().requires_grad_(True)
    yr = F.batch_norm(xr, torch.zeros(6, device=device), torch.ones(6, device=device), weight, bias, True, 0.1, 1e-5)
    up_all = torch.empty_like(yr)
    up_all[rank::world] = up
    ups = [torch.empty_like(up.contiguous()) for _ in range(world)]
    dist.all_gather(ups, up.contiguous())
    for r in range(world):
        up_all[r::world] = ups[r]
    (yr * up_all).sum().backward()
    err_y = float((y.detach() - yr.detach()[rank::world]).abs().max())
    err_g = float((x.grad - xr.grad[rank::world]).abs().max())
    return {"sync_batch_norm": err_y < 1e-4 and err_g < 1e-4, "sync_batch_norm_max_err": max(err_y, err_g)}


def _ddp_step(device: str, rank: int, world: int) -> dict:
    """Three SGD steps of a conv net with SyncBatchNorm under DistributedDataParallel (each process its rows of
    the batch) against the same steps in one process on the whole batch."""
    from torch.nn.parallel import DistributedDataParallel

    cuda = torch.device(device).type == "cuda"
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # other batch sizes, other kernels
    torch.manual_seed(0)
    ref = SmallBN().to(device)
    model = copy.deepcopy(ref)
    if cuda:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DistributedDataParallel(model, device_ids=[torch.device(device).index] if cuda else None)
    opt, opt_ref = torch.optim.SGD(ddp.parameters(), lr=0.1), torch.optim.SGD(ref.parameters(), lr=0.1)
    g = torch.Generator(device="cpu").manual_seed(1)
    for _ in range(3):
        x = torch.randn(4 * world, 3, 8, 8, generator=g).to(device)
        y = torch.randint(0, 3, (4 * world,), generator=g).to(device)
        opt.zero_grad()
        F.cross_entropy(ddp(x[rank::world]), y[rank::world]).backward()  # DDP averages the per-rank means
        opt.step()
        opt_ref.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        opt_ref.step()
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    sd, sr = model.state_dict(), ref.state_dict()
    err = max(float((sd[k].float() - sr[k].float()).abs().max()) for k in sr if sr[k].is_floating_point()
              and "running" not in k)
    # on a CPU (gloo), batch norm is per process: only the SyncBatchNorm world (CUDA) or world 1 is exact
    exact = cuda or world == 1
    return {"ddp_step": (err < 1e-5) if exact else True, "ddp_step_max_err": err,
            "ddp_step_tolerance": "1e-5 (SyncBatchNorm or one process)" if exact else
            "none: batch norm is per process on a CPU (reported only)"}


def _check_worker(device: str, fe_model, clips, labels, hard_negative, fe_kw, gitdl_kw, avml_kw, fa_init):
    """One process of the world: the checks above, then the workflow's three DDP workers."""
    from finepseudo.align.train import _avml_worker, _gitdl_worker
    from finepseudo.models.distributed import _classifier_worker

    t0 = time.time()
    checks = _collectives(device)
    fe, h_fe = _classifier_worker(device, fe_model, clips, labels, dict(fe_kw))
    fa, h_g = _gitdl_worker(device, clips, dict(gitdl_kw))
    both, h_a = _avml_worker(device, nn.ModuleDict({"fa": fa_init}), clips, labels, hard_negative, True, dict(avml_kw))
    models = nn.ModuleDict({"fe": fe, "gitdl": fa, "avml": both})
    history = {"checks": checks, "fe": [h["loss"] for h in h_fe], "gitdl": [h["loss"] for h in h_g],
               "avml": [h["loss"] for h in h_a], "seconds": time.time() - t0}
    return models, history


def rel_l2(a: dict, b: dict) -> float:
    num = sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in b if b[k].is_floating_point())
    den = sum(float(b[k].double().pow(2).sum()) for k in b if b[k].is_floating_point())
    return (num / max(den, 1e-30)) ** 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--world", type=int, default=0, help="processes (default: every GPU, or 2 on a CPU)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from finepseudo.align.alignability import FrameEncoder
    from finepseudo.align.train import pretrain_gitdl, train_avml
    from finepseudo.ddp import run_distributed
    from finepseudo.models.train import train_classifier
    from finepseudo.models.video import build_video_model

    cuda = args.device.startswith("cuda")
    world = args.world or (torch.cuda.device_count() if cuda else 2)
    torch.set_num_threads(1 if not cuda else 4)
    clips, labels, hard_negative = data()
    torch.manual_seed(0)
    fe0 = build_video_model("r2plus1d_tiny", 3)
    torch.manual_seed(1)
    fa0 = FrameEncoder(dim=GITDL_KW["dim"], width=GITDL_KW["width"], layers=0, pool=GITDL_KW["pool"])
    res: dict = {"device": args.device, "world": world, "backend": "nccl" if cuda else "gloo"}
    if cuda:
        res["device_names"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    t0 = time.time()
    state, hist = run_distributed(_check_worker, world, args.device, copy.deepcopy(fe0), clips, labels, hard_negative,
                                  FE_KW, GITDL_KW, AVML_KW, copy.deepcopy(fa0))
    res["ddp_seconds"] = time.time() - t0
    dev = "cuda:0" if cuda else "cpu"
    t0 = time.time()
    one = {}
    fe1 = copy.deepcopy(fe0)
    one["fe"] = [h["loss"] for h in train_classifier(fe1, clips, labels, device=dev, log=lambda m: None, **FE_KW)]
    fa1, hg = pretrain_gitdl(clips, device=dev, log=lambda m: None, **GITDL_KW)
    one["gitdl"] = [h["loss"] for h in hg]
    fa2, fs2, ha = train_avml(copy.deepcopy(fa0), clips, labels, hard_negative, device=dev, log=lambda m: None, **AVML_KW)
    one["avml"] = [h["loss"] for h in ha]
    res["one_process_seconds"] = time.time() - t0
    checks = hist["checks"]
    res["checks"] = checks
    ok = all(v for k, v in checks.items() if isinstance(v, bool))
    weights = {"fe": (fe1.state_dict(), "fe."), "gitdl": (fa1.state_dict(), "gitdl."),
               "avml": ({**{f"fa.{k}": v for k, v in fa2.state_dict().items()},
                         **{f"fs.{k}": v for k, v in fs2.state_dict().items()}}, "avml.")}
    for name, (ref_sd, prefix) in weights.items():
        got = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        ref_sd = {k: v.detach().cpu() for k, v in ref_sd.items()}
        a, b = np.array(hist[name]), np.array(one[name])
        tol = LOSS_RTOL["cuda" if cuda else "cpu"][name]
        rel = float(np.max(np.abs(a - b) / np.abs(b))) if len(a) == len(b) and len(b) else float("inf")
        res[name] = {"loss_ddp": a.tolist(), "loss_one_process": b.tolist(), "max_rel_loss_diff": rel,
                     "weights_rel_l2_diff": rel_l2(got, ref_sd) if set(got) == set(ref_sd) else None,
                     "loss_rtol": tol, "passed": rel <= tol}
        ok = ok and rel <= tol
        print(f"{name:6s}: per-epoch loss in {world} {res['backend']} process(es) {np.round(a, 4).tolist()} vs one "
              f"process {np.round(b, 4).tolist()}: max rel diff {rel:.2e} (tolerance {tol}); weights rel L2 diff "
              f"{res[name]['weights_rel_l2_diff']}")
    print("checks:", json.dumps(checks))
    res["passed"] = bool(ok)
    print(f"DDP check ({res['backend']}, world {world}): {'PASSED' if ok else 'FAILED'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
