"""Which f_A design aligns SynthDive's classes best? GITDL + AVML for a few encoder variants, scored by
phi_A's accuracy on the test split (class-mean and 1-NN DTW against the labeled gallery).

Uses a finished default run's frames and split (run the workflow first), trains every variant with the
workflow's own training functions, and prints one line per variant. Raw grey pixels (16 x 16, per-frame
centred) are the reference an embedding should beat. This is a design study, not part of the workflow;
it reads the test labels only to score the variants, as the report does.

    PYTHONPATH=src .venv/bin/python studies/fa_variants.py --results results/synthdive --split frac10_seed0

Choose designs on a development dataset, not on the benchmark's test split: generate SynthDive with another
seed in a separate working directory and point --results there, e.g.

    printf 'synthdive:\n  seed: 101\n' > /tmp/dev/dev.yaml
    cd /tmp/dev && snakemake -s <repo>/Snakefile --cores 2 results/synthdive/splits/frac10_seed0/labeled.tsv \
        results/synthdive/frames/shard{0,1,2,3}.npy --configfile <repo>/config/config.yaml /tmp/dev/dev.yaml

Every run appends one row per variant to ``studies/results/fa_variants.csv``; the rows measured so far (on the
development dataset, and earlier, wrongly, on the default run's own data) are there with their notes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from finepseudo.align.alignability import FrameEncoder, gitdl_loss, pairwise_distance, to_float_frames
from finepseudo.align.train import augment_view, embed_videos, train_avml
from finepseudo.models.steps import load_videos

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _record  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "studies/results/fa_variants.csv"


class PositionalEncoder(FrameEncoder):
    """The earlier design: a transformer with learned absolute positional embeddings, not residual."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.pos = nn.Parameter(torch.zeros(1, 64, self.dim))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, frames):
        b, t = frames.shape[:2]
        z = self.proj(self.cnn(to_float_frames(frames))).view(b, t, -1)
        return F.normalize(self.head(self.temporal(z + self.pos[:, :t])), dim=-1)


def pixels(frames: torch.Tensor, t: int = 16, side: int = 16) -> np.ndarray:
    idx = np.linspace(0, frames.shape[1] - 1, t).round().astype(int)
    x = F.interpolate(frames[:, idx].float().mean(-1), size=(side, side), mode="area").reshape(len(frames), t, -1)
    return F.normalize(x - x.mean(-1, keepdim=True), dim=-1).numpy().astype(np.float32)


def scores(q: np.ndarray, g: np.ndarray, yq: np.ndarray, yg: np.ndarray) -> tuple[float, float]:
    d = pairwise_distance(q, g, gamma=0.0, backend="cpu")
    cm = np.stack([d[:, yg == c].mean(1) for c in np.unique(yg)], 1)
    return float((yg[d.argmin(1)] == yq).mean()), float((np.unique(yg)[cm.argmin(1)] == yq).mean())


def gitdl(model, frames, epochs, *, lr=1e-3, batch=16, seed=1):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * ((len(frames) + batch - 1) // batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(frames), generator=gen).split(batch):
            if len(idx) >= 2:
                v1, t1 = augment_view(frames[idx], 16, gen)
                v2, t2 = augment_view(frames[idx], 16, gen)
                z = model(torch.cat([v1, v2]))
                loss = gitdl_loss(z[: len(idx)], z[len(idx):], t1, t2, tau=0.1, sigma=2.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
    return model.eval()


VARIANTS = {
    "global pooling, no transformer": (FrameEncoder, {"pool": 1, "layers": 0}, 10),
    "4x4 pooling, transformer + positions": (PositionalEncoder, {"pool": 4, "layers": 1}, 10),
    "4x4 pooling, transformer, no positions": (FrameEncoder, {"pool": 4, "layers": 1}, 10),
    "4x4 pooling, no transformer": (FrameEncoder, {"pool": 4, "layers": 0}, 10),
    "4x4 pooling, no transformer, no GITDL": (FrameEncoder, {"pool": 4, "layers": 0}, 0),
    "4x4 pooling, no transformer, 5 epochs": (FrameEncoder, {"pool": 4, "layers": 0}, 5),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results/synthdive")
    ap.add_argument("--split", default="frac10_seed0")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.results)
    shards = sorted(str(p) for p in (root / "frames").glob("shard*.npy"))
    quiet = lambda m: None  # noqa: E731
    read = lambda p: pd.read_csv(p, sep="\t", dtype={"video": str})  # noqa: E731
    man = read(root / "manifest.tsv")
    fl, lab = load_videos(shards, read(root / "splits" / args.split / "labeled.tsv"), quiet, "labeled")
    ft, test = load_videos(shards, read(root / "splits" / args.split / "test.tsv"), quiet, "test")
    ftr, _ = load_videos(shards, man[man["split"] == "train"][["video"]], quiet, "train")
    yl, yt = lab["label"].to_numpy(), test["label"].to_numpy()
    print(f"{len(ftr)} train videos for GITDL, {len(yl)} labeled (gallery, AVML), {len(yt)} test")
    nn1, cm = scores(pixels(ft), pixels(fl), yt, yl)
    print(f"{'pixels 16x16 (no training)':42s} 1-NN {nn1:.3f} class-mean {cm:.3f}")
    rows = [{"variant": "pixels 16x16 (no training)", "gitdl_1nn": round(nn1, 3), "gitdl_class_mean": round(cm, 3)}]
    for name in args.variants:
        cls, kw, epochs = VARIANTS[name]
        torch.manual_seed(0)
        t0 = time.time()
        model = gitdl(cls(dim=128, width=16, **kw), ftr, epochs) if epochs else cls(dim=128, width=16, **kw).eval()
        el = embed_videos(model, fl, num_frames=16)
        g = scores(embed_videos(model, ft, num_frames=16), el, yt, yl)
        d = pairwise_distance(el, el, gamma=0.0, backend="cpu")
        d[yl[:, None] == yl[None, :]] = np.inf
        model, _, _ = train_avml(model, fl, yl, d.argmin(1), num_frames=16, epochs=15, batch_size=16, lr=5e-4,
                                 gamma=0.1, margin=0.1, omega=1.0, use_triplet=True, use_score=True, seed=2, log=quiet)
        a = scores(embed_videos(model, ft, num_frames=16), embed_videos(model, fl, num_frames=16), yt, yl)
        print(f"{name:42s} GITDL 1-NN {g[0]:.3f} class-mean {g[1]:.3f} | +AVML 1-NN {a[0]:.3f} class-mean {a[1]:.3f}"
              f" ({time.time() - t0:.0f} s)", flush=True)
        rows.append({"variant": name, "gitdl_1nn": round(g[0], 3), "gitdl_class_mean": round(g[1], 3),
                     "avml_1nn": round(a[0], 3), "avml_class_mean": round(a[1], 3), "seconds": round(time.time() - t0)})
    print(f"appended to {_record.append(RESULTS, rows, results=str(args.results), split=args.split)}")


if __name__ == "__main__":
    main()
