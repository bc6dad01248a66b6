#!/usr/bin/env python
"""Which nuisance makes SynthDive hard for whom: a fast in-memory ablation on development seeds (>= 100).

For each variant (the static scene, each nuisance alone, everything on, and config overrides) it renders a
small SynthDive in memory (no mp4 round trip: frames sampled uniformly over the annotated clip and
area-resized to ``--size`` px, as extraction does), then measures on the same test videos:

- ``fe_full``: f_E (the workflow's r2plus1d_tiny with clip_norm and its training loop, from a random init; rows
  before commit 9b619dc trained without clip_norm) trained on every
  train video for ``--steps`` steps: is the task learnable with this nuisance?
- ``fe_few``: the same with ``--few`` labeled videos per class (the semi-supervised regime);
- ``pixel_dtw`` and ``pixel_pooled``: the workflow's trivial baselines (:mod:`finepseudo.baselines.trivial`)
  with the ``--few`` labeled videos as gallery.

Every variant appends a row to ``studies/results/nuisance_ablation.csv`` (settings, figures and their
provenance: date, commit, machine, command; ``benchmarks/_record.py``)::

    .venv/bin/python studies/nuisance_ablation.py --seed 101 --variants static all background camera
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _record  # noqa: E402
from finepseudo.baselines import trivial  # noqa: E402
from finepseudo.data import synthdive  # noqa: E402
from finepseudo.data.frames import sample_indices  # noqa: E402
from finepseudo.data.synthdive import encoding  # noqa: E402
from finepseudo.models.train import predict_proba, train_classifier  # noqa: E402
from finepseudo.models.video import build_video_model  # noqa: E402

RESULTS = ROOT / "studies/results/nuisance_ablation.csv"
NUISANCES = {  # variant -> nuisance keys turned on (at their default values) over the static scene
    "static": (),
    "background": ("background",),
    "movers": ("movers",),
    "camera": ("camera_lag", "zoom", "zoom_drift", "roll_deg", "framing"),
    "view": ("view_angle_deg", "mirror"),
    "colours": ("colour_jitter",),
    "all": tuple(synthdive.STATIC_SCENE),
    "all_but_background": tuple(k for k in synthdive.STATIC_SCENE if k != "background"),
}


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) area-averaging weights, like ffmpeg's ``scale=flags=area``."""
    m = np.zeros((n_out, n_in), np.float32)
    edges = np.arange(n_out + 1) * n_in / n_out
    for o in range(n_out):
        lo, hi = edges[o], edges[o + 1]
        for i in range(int(np.floor(lo)), int(np.ceil(hi))):
            m[o, i] = min(hi, i + 1) - max(lo, i)
    return m / m.sum(1, keepdims=True)


def _render(job: tuple) -> np.ndarray:
    item, spec, cfg, t_store, size = job
    rng = np.random.default_rng(item["key"])
    frames, names = synthdive.render_video(spec, cfg, rng)
    start, end = encoding._annotated_span(names, cfg, rng)
    f = frames[sample_indices(len(frames), t_store, start, end)].astype(np.float32)
    a = area_matrix(f.shape[1], size)
    out = np.einsum("pw,towc->topc", a, np.einsum("oh,thwc->towc", a, f, optimize=True), optimize=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def dataset(cfg: dict, seed: int, t_store: int, size: int, jobs: int):
    resolved = synthdive.resolve_config(cfg)
    vocab = synthdive.load_diving48_vocab()
    plan = synthdive.plan_videos(resolved, seed)
    specs = {c["label"]: synthdive.parse_class(vocab[c["diving48_label"]]) for c in synthdive.class_table(resolved, vocab)}
    job_list = [(it, specs[it["label"]], resolved, t_store, size) for it in plan]
    with mp.get_context("fork").Pool(jobs) as pool:
        clips = pool.map(_render, job_list, chunksize=8)
    out = {}
    for split in ("train", "test"):
        sel = [i for i, it in enumerate(plan) if it["split"] == split]
        out[split] = (np.stack([clips[i] for i in sel]), np.array([plan[i]["label"] for i in sel], np.int64))
    return out


def few_subset(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 17])
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]))


def train_eval(x_tr, y_tr, x_te, y_te, num_classes: int, steps: int, seed: int, augment: dict,
               clip_norm: bool = True) -> float:
    torch.manual_seed(seed)
    model = build_video_model("r2plus1d_tiny", num_classes, clip_norm=clip_norm)
    train_classifier(model, torch.from_numpy(x_tr), y_tr, epochs=1, steps=steps, batch_size=16, lr=3e-3,
                     weight_decay=0.05, clip_frames=16, seed=seed, device="cpu", augment=augment, log=lambda m: None)
    prob = predict_proba(model, torch.from_numpy(x_te), clip_frames=16, clips_per_video=2, device="cpu")
    return 100 * float((prob.argmax(1) == y_te).mean())


def run_variant(name: str, args) -> dict:
    over = {k: v for k, v in synthdive.STATIC_SCENE.items() if k not in NUISANCES.get(name, tuple(synthdive.STATIC_SCENE))}
    for o in args.set:
        k, _, v = o.partition("=")
        over[k] = json.loads(v)
    cfg = {**over, "train_per_class": args.train_per_class, "test_per_class": args.test_per_class}
    t0 = time.perf_counter()
    ds = dataset(cfg, args.seed, 32, args.size, args.jobs)
    (x_tr, y_tr), (x_te, y_te) = ds["train"], ds["test"]
    k = int(y_tr.max()) + 1
    few = few_subset(y_tr, args.few, args.seed)
    row = {"variant": name, "set": " ".join(args.set), "render_s": round(time.perf_counter() - t0, 1)}
    idx = sample_indices(x_tr.shape[1], 16)  # the frames f_A and the workflow's baselines use
    g, q = trivial.frame_vectors(x_tr[few][:, idx], 12), trivial.frame_vectors(x_te[:, idx], 12)
    for name, d in (("pixel_dtw", trivial.dtw_distances(q, g)),
                    ("pixel_pooled", trivial.cosine_distances(trivial.pooled_vectors(q), trivial.pooled_vectors(g)))):
        pred, _ = trivial.decide(trivial.class_distances(d, y_tr[few], k))
        row[name] = 100 * float((pred == y_te).mean())
    aug = {"hflip": True} if name in ("view", "all", "all_but_background") or "mirror" in " ".join(args.set) else {}
    if args.steps:
        ts = args.seed if args.train_seed is None else args.train_seed
        row["fe_full"] = train_eval(x_tr, y_tr, x_te, y_te, k, args.steps, ts, aug, not args.no_clip_norm)
        row["fe_few"] = train_eval(x_tr[few], y_tr[few], x_te, y_te, k, args.few_steps, ts, aug, not args.no_clip_norm)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--train-seed", type=int, default=None, help="seed of f_E's init and batches (default: --seed)")
    ap.add_argument("--variants", nargs="+", default=list(NUISANCES))
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="synthdive overrides for every variant")
    ap.add_argument("--train-per-class", type=int, default=40)
    ap.add_argument("--test-per-class", type=int, default=15)
    ap.add_argument("--few", type=int, default=10, help="labeled videos per class of the few-label runs")
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--steps", type=int, default=600, help="f_E steps on all train videos (0: no training)")
    ap.add_argument("--few-steps", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-clip-norm", action="store_true", help="f_E without fe.clip_norm (the figures before 9b619dc)")
    args = ap.parse_args()
    if args.seed < 100:
        raise SystemExit("design choices are made on development seeds: --seed >= 100")
    torch.set_num_threads(1)
    for name in args.variants:
        row = run_variant(name, args)
        print(json.dumps(row), flush=True)
        _record.append(RESULTS, [{"seed": args.seed, "train_per_class": args.train_per_class, "few": args.few,
                                  "size": args.size, "steps": args.steps, **row}])


if __name__ == "__main__":
    main()
