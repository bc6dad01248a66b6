"""Scale benchmark of the frame store: a Diving48-sized store through the real data paths.

Writes a frame store of ``--videos`` generated videos (default 18,000, Diving48's size) x 32 frames x
112 x 112 x 3 in ``--shards`` shard arrays with their index files (21.7 GB at the defaults) under
``--root``, then, each in a fresh process so that peaks do not mix:

* ``train_fe``: one epoch of :func:`finepseudo.models.train.train_classifier` (the f_E warm-up's and rounds'
  data path: batch requests, reads of 16-frame clips, augmentation, ``--workers`` loader processes)
  with a minimal model, since what is measured is the data path;
* ``gitdl``: one epoch of :func:`finepseudo.align.train.pretrain_gitdl` (reads whole stored
  videos, two augmented 16-frame views each) with the smallest frame encoder, on ``--gitdl-videos``
  videos (its per-frame CNN at 112 px is slow on a 2-core CPU; the data path is the same per video);
* ``eval``: one pass of :func:`finepseudo.models.train.predict_proba` over all videos (evaluation's path).

For each it prints clips per second, peak RSS and peak anonymous memory (``RssAnon`` of the process
and its loader workers, sampled every 50 ms: memory the kernel cannot drop, unlike the file pages of
the memory-mapped store). The store is deleted afterwards unless ``--keep``.

    PYTHONPATH=src .venv/bin/python benchmarks/scale_store.py --root /tmp/scale     # the full size
    PYTHONPATH=src .venv/bin/python benchmarks/scale_store.py --root /tmp/s --videos 500   # a quick look

Target (issue 10): peak anonymous memory under 3 GB at the full size on the 2-core machine.
Measured figures: ``benchmarks/results/scale_store.csv`` (the README's "Real datasets: adapters and the frame
store" shows them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results/scale_store.csv"

T, S = 32, 112


def write_store(root: Path, videos: int, shards: int) -> list[str]:
    """Generated frames: a smooth moving pattern per video (cheap to make, not constant, so reads are real)."""
    from finepseudo.data.frames import index_path, write_index

    root.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:S, 0:S]
    base = ((xx[None] * 2 + yy[None] + np.arange(T)[:, None, None] * 7) % 256).astype(np.uint8)  # (T, S, S)
    paths, t0, done = [], time.time(), 0
    for k, part in enumerate(np.array_split(np.arange(videos), shards)):
        path = root / f"shard{k}.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(part), T, S, S, 3))
        for j, v in enumerate(part):
            shift = int(v) % 251
            arr[j, ..., 0] = base + shift
            arr[j, ..., 1] = base[:, ::-1] + shift
            arr[j, ..., 2] = shift
        arr.flush()
        del arr
        write_index(index_path(path), [{"video": f"v{int(v):05d}", "status": "ok", "n_decoded": T, "reason": "",
                                        "row": j} for j, v in enumerate(part)])
        paths.append(str(path))
        done += len(part)
        print(f"  wrote {path.name}: {done}/{videos} videos, {time.time() - t0:.0f} s", flush=True)
    return paths


class MemoryPeak:
    """Peak RSS and RssAnon of this process plus its children (loader workers), sampled in a thread."""

    def __init__(self, period: float = 0.05):
        self.period, self.rss, self.anon, self._stop = period, 0, 0, threading.Event()

    @staticmethod
    def _read(pid: int) -> tuple[int, int]:
        rss = anon = 0
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon = int(line.split()[1])
        except OSError:
            pass
        return rss, anon

    def _pids(self) -> list[int]:
        pids = [os.getpid()]
        try:
            with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def _loop(self):
        while not self._stop.is_set():
            vals = [self._read(p) for p in self._pids()]
            self.rss = max(self.rss, sum(v[0] for v in vals))
            self.anon = max(self.anon, sum(v[1] for v in vals))
            time.sleep(self.period)

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class _Linear(torch.nn.Module):
    """The smallest classifier: global average pool + a linear layer (the data path is what is measured)."""

    def __init__(self, classes: int = 48):
        super().__init__()
        self.fc = torch.nn.Linear(3, classes)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3, 4)))


def run_case(case: str, shards: list[str], workers: int, gitdl_videos: int) -> dict:
    from finepseudo.data.frames import FrameStore

    torch.set_num_threads(1)
    store = FrameStore(shards)
    quiet = lambda m: None  # noqa: E731
    with MemoryPeak() as mem:
        t0 = time.perf_counter()
        if case == "train_fe":
            from finepseudo.models.train import train_classifier

            n = len(store)
            labels = np.arange(n) % 48
            train_classifier(_Linear(), store, labels, epochs=1, batch_size=16, lr=1e-3, weight_decay=0.0,
                             clip_frames=16, seed=0, log=quiet, workers=workers)
        elif case == "gitdl":
            from finepseudo.align.train import pretrain_gitdl

            n = min(gitdl_videos, len(store))
            sub = FrameStore(shards, store.ids[:n])
            pretrain_gitdl(sub, num_frames=16, dim=8, width=2, layers=0, pool=1, epochs=1, batch_size=16,
                           lr=1e-3, tau=0.1, sigma=2.0, seed=0, log=quiet)
        elif case == "eval":
            from finepseudo.models.train import predict_proba

            n = len(store)
            predict_proba(_Linear().eval(), store, clip_frames=16, clips_per_video=2, batch_size=32, workers=workers)
        else:
            raise ValueError(case)
        sec = time.perf_counter() - t0
    return {"case": case, "videos": n, "seconds": round(sec, 1), "clips_per_s": round(n / sec, 1),
            "peak_rss_gb": round(mem.rss / 2**20, 2), "peak_anon_gb": round(mem.anon / 2**20, 2),
            "workers": workers if case != "gitdl" else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="folder for the store (deleted afterwards)")
    ap.add_argument("--videos", type=int, default=18000)
    ap.add_argument("--shards", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="loader processes for train_fe and eval")
    ap.add_argument("--gitdl-videos", type=int, default=2000)
    ap.add_argument("--cases", nargs="+", default=["train_fe", "eval", "gitdl"])
    ap.add_argument("--keep", action="store_true", help="keep the store")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        shards = sorted(str(p) for p in args.root.glob("shard*.npy"))
        print(json.dumps(run_case(args.case, shards, args.workers, args.gitdl_videos)))
        return
    size_gb = args.videos * T * S * S * 3 / 2**30
    print(f"writing {args.videos} videos x {T} x {S} x {S} x 3 ({size_gb:.1f} GiB) in {args.shards} shards "
          f"to {args.root}", flush=True)
    try:
        t0 = time.time()
        write_store(args.root, args.videos, args.shards)
        rows = [{"case": "write", "videos": args.videos, "shards": args.shards, "seconds": round(time.time() - t0, 1)}]
        print(f"store written in {rows[0]['seconds']:.0f} s", flush=True)
        print(f"{'case':9s} {'videos':>7s} {'workers':>7s} {'seconds':>8s} {'clips/s':>8s} {'peak RSS GB':>12s} "
              f"{'peak anon GB':>13s}", flush=True)
        for case in args.cases:
            out = subprocess.run([sys.executable, __file__, "--root", str(args.root), "--case", case,
                                  "--workers", str(args.workers), "--gitdl-videos", str(args.gitdl_videos)],
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"{case}: failed\n{out.stderr[-2000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['case']:9s} {r['videos']:7d} {r['workers']:7d} {r['seconds']:8.1f} {r['clips_per_s']:8.1f} "
                  f"{r['peak_rss_gb']:12.2f} {r['peak_anon_gb']:13.2f}", flush=True)
            rows.append({"shards": args.shards, **r})
        print(f"appended to {_record.append(RESULTS, rows, store_videos=args.videos)}")
    finally:
        if not args.keep:
            shutil.rmtree(args.root, ignore_errors=True)
            print(f"deleted {args.root}")


if __name__ == "__main__":
    main()
