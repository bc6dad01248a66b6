"""Speed and memory of predicting new videos with an exported model, end to end (decode included).

Generates (or reuses) ``--videos`` SynthDive videos with the generator's default settings (only the number of
videos per class set: 1 train and enough test videos per class), then runs the ``finepseudo predict`` command
(:func:`finepseudo.cli.main`, the same code as the workflow's predict_videos rule) in a fresh process on the first
n videos for each n of ``--sizes``, and prints videos per second (from the command's start to its last row:
loading the model, decoding with ffmpeg, f_E and phi_A; not the interpreter's start and imports), the peak
resident memory of the process (``ru_maxrss``) and the peak of the process and its ffmpeg processes together
(sampled every 50 ms). Memory that does not grow from the smaller to the larger folder is what streaming
promises.

Model: ``--model`` an export folder (``results/synthdive/export/finepseudo/frac10_seed0`` after the default
run). Without it, an export of untrained models with the default config's sizes, read from
``config/config.yaml``: f_E ``fe.arch`` with 14 classes, ``frames.num_frames`` frames of ``frames.size`` px,
``eval.clips_per_video`` clips of ``fe.clip_frames`` frames, ``eval.batch_size`` videos per batch; f_A with the
``alignability`` sizes and a gallery of 28 videos (2 per class, as 10 % labels give) for phi_A. Speed does not
depend on the weights' values.

    PYTHONPATH=src .venv/bin/python benchmarks/predict_speed.py                  # 500 videos, sizes 100 and 500
    PYTHONPATH=src .venv/bin/python benchmarks/predict_speed.py --model results/synthdive/export/finepseudo/frac10_seed0

Figures measured with it: ``benchmarks/results/predict_speed.csv`` (shown in the README's "Use a trained model").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _record  # noqa: E402
from scale_store import MemoryPeak  # noqa: E402

RESULTS = ROOT / "benchmarks/results/predict_speed.csv"


def _videos(out: Path, n: int) -> list[Path]:
    """At least ``n`` SynthDive videos under ``out`` (generated once, then reused), sorted by name."""
    from finepseudo.data.synthdive import generate

    folder = out / "synthdive"
    videos = sorted((folder / "videos").glob("*.mp4"))
    if len(videos) < n:
        classes = 14
        per_class = math.ceil(max(n - classes, 1) / classes)
        t0 = time.perf_counter()
        generate(folder, {"train_per_class": 1, "test_per_class": per_class}, seed=0, log=lambda m: None)
        print(f"generated SynthDive videos in {time.perf_counter() - t0:.0f} s into {folder}")
        videos = sorted((folder / "videos").glob("*.mp4"))
    if len(videos) < n:
        raise SystemExit(f"only {len(videos)} videos in {folder / 'videos'}; delete the folder and rerun")
    return videos[:n]


def _untrained_export(out: Path, names: list[str]) -> Path:
    """An export of untrained models with the default config's sizes (see the module docstring)."""
    import numpy as np
    import torch
    import yaml

    from finepseudo.align.alignability import FrameEncoder, ScoreHead
    from finepseudo.export.card import make_card
    from finepseudo.export.model import save_export
    from finepseudo.models.video import build_video_model

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    fr, fe, al, ev = cfg["frames"], cfg["fe"], cfg["alignability"], cfg["eval"]
    arch = {k: al[k] for k in ("dim", "width", "layers", "pool")}
    torch.manual_seed(0)
    gallery = 2 * len(names)
    card = make_card(dataset="synthdive", method="finepseudo", classes=names, arch=fe["arch"],
                     frames_per_video=fr["num_frames"], frame_size=fr["size"], resize=fr["resize"],
                     clip_frames=fe["clip_frames"], clips_per_video=ev["clips_per_video"], batch_size=ev["batch_size"],
                     label_percent=10, seed=0, temperature=2.0,
                     description="untrained weights with the default config's sizes (benchmarks/predict_speed.py)",
                     alignability={"arch": arch, "num_frames": al["num_frames"], "gamma": al["gamma"], "tau": al["tau"],
                                   "gallery_videos": gallery})
    emb = torch.nn.functional.normalize(torch.randn(gallery, al["num_frames"], al["dim"]), dim=-1).numpy()
    folder = out / "model"
    save_export(folder, card, build_video_model(fe["arch"], len(names)), fa=FrameEncoder(**arch), score=ScoreHead(),
                gallery_embeddings=emb, gallery_labels=np.repeat(np.arange(len(names)), 2))
    return folder


class TreePeak:
    """Peak of the summed VmRSS and RssAnon of this process and its ffmpeg processes (started from the decoding
    threads), sampled every ``period`` seconds in a thread."""

    def __init__(self, period: float = 0.05):
        self.period, self.rss_kb, self.anon_kb, self._stop = period, 0, 0, threading.Event()

    _read = staticmethod(MemoryPeak._read)  # VmRSS and RssAnon of one process, in kB

    @staticmethod
    def _pids() -> list[int]:
        """This process and its ffmpeg children. A child is counted once it runs ffmpeg: between fork and exec it
        still shows the parent's pages, which would count them twice."""
        me = os.getpid()
        pids = [me]
        for task in os.listdir(f"/proc/{me}/task"):
            try:
                with open(f"/proc/{me}/task/{task}/children") as f:
                    children = [int(p) for p in f.read().split()]
                for pid in children:
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() == "ffmpeg":
                            pids.append(pid)
            except OSError:
                continue
        return pids

    def _loop(self) -> None:
        while not self._stop.is_set():
            vals = [self._read(p) for p in self._pids()]
            self.rss_kb = max(self.rss_kb, sum(v[0] for v in vals))
            self.anon_kb = max(self.anon_kb, sum(v[1] for v in vals))
            time.sleep(self.period)

    def __enter__(self) -> TreePeak:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _worker(model: str, videos: str, table: str) -> None:
    """One measured run of the command, in this (fresh) process; prints a JSON line."""
    import torch

    from finepseudo.cli import main

    with TreePeak() as peak:
        t0 = time.perf_counter()
        rc = main(["predict", model, videos, "--out", table, "--no-progress"])
        seconds = time.perf_counter() - t0
    rows = sum(1 for _ in open(table)) - 1
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"rc": rc, "videos": rows, "seconds": seconds, "videos_per_s": rows / seconds,
                      "peak_rss_mb": own, "peak_tree_rss_mb": peak.rss_kb / 1024, "peak_tree_anon_mb": peak.anon_kb / 1024,
                      "torch_threads": torch.get_num_threads(), "load": os.getloadavg()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=500, help="SynthDive videos to generate or reuse (default 500)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="folder sizes to time (default 100 and --videos)")
    ap.add_argument("--model", help="an export folder (default: untrained models with the default config's sizes)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/out/predict_speed"), help="working folder")
    ap.add_argument("--worker", nargs=3, metavar=("MODEL", "VIDEOS", "TABLE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    videos = _videos(out, args.videos)
    vocab = out / "synthdive/annotations/vocab.json"
    names = ["_".join(v) for v in json.loads(vocab.read_text())][:14] if vocab.is_file() else [str(i) for i in range(14)]
    model = Path(args.model) if args.model else _untrained_export(out, names)
    sizes = args.sizes or sorted({min(100, args.videos), args.videos})
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"model {model}; CPU {cpu}, {os.cpu_count()} cores; python {platform.python_version()}")
    for n in sizes:
        folder = out / f"videos_{n}"
        folder.mkdir(exist_ok=True)
        for v in videos[:n]:
            link = folder / v.name
            if not link.exists():
                link.symlink_to(v.resolve())
        r = subprocess.run([sys.executable, __file__, "--worker", str(model), str(folder), str(out / f"pred_{n}.tsv")],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        if r.returncode != 0:
            raise SystemExit(r.stderr[-3000:])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{res['videos']} videos: {res['seconds']:.1f} s, {res['videos_per_s']:.1f} videos/s end to end; peak RSS of "
              f"the process {res['peak_rss_mb']:.0f} MB, with its ffmpeg processes {res['peak_tree_rss_mb']:.0f} MB (anonymous "
              f"{res['peak_tree_anon_mb']:.0f} MB); {res['torch_threads']} torch threads; load average at the end "
              f"{res['load'][0]:.1f}; exit status {res['rc']}")
        _record.append(RESULTS, [{"model": args.model or "untrained, default config sizes", "videos": res["videos"],
                                  "seconds": round(res["seconds"], 1), "videos_per_s": round(res["videos_per_s"], 2),
                                  "peak_rss_mb": round(res["peak_rss_mb"]), "peak_tree_rss_mb": round(res["peak_tree_rss_mb"]),
                                  "peak_tree_anon_mb": round(res["peak_tree_anon_mb"]), "torch_threads": res["torch_threads"],
                                  "load_at_end": round(res["load"][0], 1), "rc": res["rc"]}])


if __name__ == "__main__":
    main()
