"""The resume path of f_E training on a device: a training killed mid-run (SIGKILL) and run again gives the
weights of an uninterrupted run (run by gpu_check/gpu_check.sh, on the GPU and on the CPU).

Three processes train r2plus1d_tiny with :func:`finepseudo.models.train.train_classifier` from the same seed on
the same generated clips, with loader worker processes and an epoch checkpoint (:class:`finepseudo.resume.
Checkpointer`): (1) two uninterrupted runs, A and B, in one process (B - A is the device's own run-to-run
noise: cuDNN's non-deterministic kernels on a GPU; zero on a CPU); (2) a run killed with SIGKILL in the second
step of epoch ``--kill-after + 1`` (it stops there until the kill lands, so the kill always falls mid-epoch,
after the checkpoint of epoch ``--kill-after`` was written); (3) the same command again, which must log
``resuming from epoch k/N`` and finish. Passes when the resumed weights R equal A within the tolerance

    max |R - A| <= max(1e-6 x max |A|, 3 x max |B - A|)     (CUDA; over every tensor of the state dict)
    R == A bit for bit                                       (CPU, as the README states)

and the checkpoint held epoch k when the process was killed. Writes the figures with ``--json``.

    PYTHONPATH=src python gpu_check/resume_check.py --device cuda --json resume.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HOLD_ENV = "RESUME_CHECK_HOLD_AT_STEP"


class Hold(nn.Module):
    """``net``, which stops (sleeps) before forward call number ``hold`` (1-based) when that is set."""

    def __init__(self, net: nn.Module, hold: int | None):
        super().__init__()
        self.net, self.hold, self.calls = net, hold, 0

    def forward(self, x):
        self.calls += 1
        if self.hold and self.calls == self.hold:
            print(f"HOLD at step {self.calls}", flush=True)
            time.sleep(3600)
        return self.net(x)


def sizes(device: str) -> dict:
    if torch.device(device).type == "cuda":
        return {"videos": 64, "frames": 16, "size": 32, "epochs": 4, "batch_size": 8, "clip_frames": 8, "workers": 2}
    return {"videos": 24, "frames": 8, "size": 16, "epochs": 3, "batch_size": 8, "clip_frames": 4, "workers": 0}


def data(sz: dict) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(0)
    clips = torch.from_numpy(rng.integers(0, 256, size=(sz["videos"], sz["frames"], sz["size"], sz["size"], 3),
                                          dtype=np.uint8))
    labels = np.arange(sz["videos"]) % 4
    clips[labels == 1, ..., 0] //= 2  # something to learn
    clips[labels == 2, ..., 1] //= 2
    return clips, labels


def train(device: str, checkpoint=None, hold: int | None = None) -> tuple[dict, list[dict]]:
    from finepseudo.models.train import train_classifier
    from finepseudo.models.video import build_video_model

    sz = sizes(device)
    clips, labels = data(sz)
    torch.manual_seed(0)
    model = Hold(build_video_model("r2plus1d_tiny", 4), hold)
    hist = train_classifier(model, clips, labels, epochs=sz["epochs"], batch_size=sz["batch_size"], lr=3e-3,
                            weight_decay=0.05, clip_frames=sz["clip_frames"], seed=3, device=device,
                            workers=sz["workers"], checkpoint=checkpoint, log=print)
    return {k: v.detach().cpu() for k, v in model.net.state_dict().items()}, hist


def child(args) -> None:
    from finepseudo.resume import Checkpointer

    torch.set_num_threads(4 if torch.device(args.device).type == "cuda" else 1)  # tiny tensors on a CPU: 1 is fastest
    if args.child == "reference":
        a, ha = train(args.device)
        b, hb = train(args.device)
        torch.save({"A": a, "B": b, "hist_A": [h["loss"] for h in ha], "hist_B": [h["loss"] for h in hb]},
                   args.work / "reference.pt")
        return
    hold = int(os.environ.get(HOLD_ENV, "0")) or None
    ckpt = Checkpointer(args.work / "fe.pt.resume.pt", {"check": "resume_check", "device": args.device}, log=print)
    r, hr = train(args.device, ckpt, hold)
    torch.save({"R": r, "hist_R": [h["loss"] for h in hr]}, args.work / "resumed.pt")


def run_child(args, what: str, env_extra: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, __file__, "--child", what, "--device", args.device, "--work", str(args.work)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env_extra or {})})


def max_abs_diff(a: dict, b: dict) -> float:
    return max((float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point()),
               default=0.0)


def parent(args) -> int:
    sz = sizes(args.device)
    steps_per_epoch = -(-sz["videos"] // sz["batch_size"])
    hold_at = args.kill_after * steps_per_epoch + 2  # the second step of epoch kill_after + 1
    res = {"device": args.device, "model": "r2plus1d_tiny", **sz, "kill_after_epoch": args.kill_after,
           "killed_at_step": hold_at, "steps_per_epoch": steps_per_epoch}
    if torch.device(args.device).type == "cuda":
        res["device_name"] = torch.cuda.get_device_name(0)
    t0 = time.time()
    r = run_child(args, "reference")
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        raise SystemExit("the reference runs failed")
    ref = torch.load(args.work / "reference.pt", weights_only=True)
    print(f"reference runs A and B done in {time.time() - t0:.1f} s")

    # the run that is killed: wait for its HOLD line, check the checkpoint, SIGKILL
    ckpt_file = args.work / "fe.pt.resume.pt"
    ckpt_file.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", "run", "--device", args.device, "--work", str(args.work)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, HOLD_ENV: str(hold_at)}, start_new_session=True)
    lines, held = [], False
    deadline = time.time() + 300
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith("HOLD"):
            held = True
            break
        if time.time() > deadline:
            break
    epoch_at_kill = None
    if held:
        saved = torch.load(ckpt_file, map_location="cpu", weights_only=True)
        epoch_at_kill = int(saved["epoch"])
    os.killpg(proc.pid, signal.SIGKILL)  # the process and its loader workers
    proc.wait()
    res.update({"killed": held, "kill_signal": "SIGKILL", "checkpoint_epoch_at_kill": epoch_at_kill,
                "killed_run_output_tail": lines[-5:]})
    print(f"killed run: held={held}, checkpoint at epoch {epoch_at_kill}, exit status {proc.returncode}")

    r = run_child(args, "run")
    res["resumed_run_output_tail"] = r.stdout.splitlines()[-8:]
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        res["error"] = "the resumed run failed"
    resumed_line = [ln for ln in r.stdout.splitlines() if "resuming from epoch" in ln]
    res["resume_log_line"] = resumed_line[0] if resumed_line else None
    ok = held and epoch_at_kill == args.kill_after and r.returncode == 0 and bool(resumed_line) and \
        f"resuming from epoch {args.kill_after}/{sz['epochs']}" in resumed_line[0]
    if r.returncode == 0:
        rs = torch.load(args.work / "resumed.pt", weights_only=True)
        a, b, rr = ref["A"], ref["B"], rs["R"]
        scale = max(float(v.abs().max()) for v in a.values() if v.is_floating_point())
        noise = max_abs_diff(a, b)
        diff = max_abs_diff(rr, a)
        cuda = torch.device(args.device).type == "cuda"
        tol = max(1e-6 * scale, 3 * noise) if cuda else 0.0
        res.update({"max_abs_weight": scale, "max_abs_diff_B_vs_A": noise, "max_abs_diff_resumed_vs_A": diff,
                    "tolerance": tol, "tolerance_rule": "max(1e-6 x max|A|, 3 x max|B - A|)" if cuda else "bit-identical",
                    "loss_A": ref["hist_A"], "loss_B": ref["hist_B"], "loss_resumed": rs["hist_R"],
                    "bit_identical": diff == 0.0})
        ok = ok and diff <= tol
        print(f"max |R - A| = {diff:.3g}, max |B - A| = {noise:.3g} (run-to-run noise), tolerance {tol:.3g}; "
              f"losses A {np.round(ref['hist_A'], 5).tolist()} resumed {np.round(rs['hist_R'], 5).tolist()}")
    res["passed"] = bool(ok)
    res["seconds"] = time.time() - t0
    print(f"resume check on {args.device}: {'PASSED' if ok else 'FAILED'} ({res['seconds']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--kill-after", type=int, default=2, help="the epoch whose checkpoint the killed run has written")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", choices=["reference", "run"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="resume-check-") as tmp:
        args.work = args.work or Path(tmp)
        args.work.mkdir(parents=True, exist_ok=True)
        raise SystemExit(parent(args))


if __name__ == "__main__":
    main()
