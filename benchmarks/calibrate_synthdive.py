#!/usr/bin/env python
"""Calibrate SynthDive: is it learnable with all labels, hard with few, and phase-sensitive?

Generates SynthDive (default config unless overridden), decodes every mp4 with ffmpeg into
``T_store`` frames uniformly over the video at ``--size`` px, then

1. trains f_E (``--arch``, default r2plus1d_tiny) from scratch on each labeled fraction of the
   train split (class-stratified, >= 1 per class, seeded) and reports test top-1 and wall time;
2. ``--dtw``: 1-nearest-neighbour test classification from simple per-frame features (centred
   downsampled pixels), with (a) temporally pooled features + cosine distance and (b) DTW over
   the per-frame cosine cost, overall and on the count-only sibling pairs (classes that differ
   only in the number of somersaults).

Commands behind the recorded figures (2 shared CPU cores, torch 2.14.1, default config and
model; each seed generates its own dataset)::

    .venv/bin/python benchmarks/calibrate_synthdive.py --seed S --fractions 1.0 0.1 --dtw

measured (seeds 0 / 1 / 2): 100 % labels, 30 epochs: 95.7 / 96.7 / 94.3 % test top-1 (training
~280-290 s of CPU time over 2 threads); 10 % labels (42 videos, 600 steps = 200 epochs):
31.4 / 30.5 / 40.5 %; 1-NN with a 10 % gallery, pooled vs DTW: 41.4 vs 77.6 / 46.2 vs 83.8 /
45.2 vs 81.9 % (count-only pairs 68.9 vs 96.3 / 76.7 vs 99.6 / 70.0 vs 94.8 %).
``--raw`` renders in memory without ffmpeg (same videos, no H.264 round trip) and ``--sweep``
runs several variants in parallel processes (set OMP_NUM_THREADS=1 / OPENBLAS_NUM_THREADS=1
when running many at once). Smoke test: ``--tiny --size 32 --epochs 2``.

Outputs go to ``benchmarks/out/calibrate/`` (dataset cache, decoded frames, results JSON).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from itertools import combinations
from pathlib import Path

import ffmpeg
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from finepseudo.data import synthdive
from finepseudo.models.video import build_video_model
from finepseudo.models.train import predict_proba, train_classifier


def decode_video(path: Path, t_store: int, size: int) -> np.ndarray:
    """Decode ``path`` to uint8 (t_store, size, size, 3): frames at the centres of t_store equal
    bins over the whole video, resized with area averaging."""
    out, _ = (
        ffmpeg.input(str(path))
        .filter("scale", size, size, flags="area")
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .run(capture_stdout=True, capture_stderr=True, cmd="ffmpeg")
    )
    frames = np.frombuffer(out, np.uint8).reshape(-1, size, size, 3)
    n = len(frames)
    idx = np.minimum(((np.arange(t_store) + 0.5) * n / t_store).astype(int), n - 1)
    return frames[idx]


def load_split(data: Path, split: str, t_store: int, size: int, cache: Path,
               jobs: int = 2) -> tuple[np.ndarray, np.ndarray, list]:
    """(clips uint8 (N, t_store, size, size, 3), labels (N,), annotation list), cached as .npz."""
    ann = json.loads((data / "annotations" / f"{split}.json").read_text())
    f = cache / f"{split}_{t_store}x{size}.npz"
    if f.is_file():
        z = np.load(f)
        return z["clips"], z["labels"], ann
    t0 = time.perf_counter()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, jobs)) as ex:  # each decode is an ffmpeg process
        clips = np.stack(list(ex.map(lambda a: decode_video(data / "videos" / f"{a['vid_name']}.mp4", t_store, size),
                                     ann)))
    labels = np.array([a["label"] for a in ann], np.int64)
    np.savez(f, clips=clips, labels=labels)
    print(f"[calibrate] decoded {len(ann)} {split} videos in {time.perf_counter() - t0:.1f}s", flush=True)
    return clips, labels, ann


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-stratified subset: round(fraction * n_c), at least 1 per class."""
    rng = np.random.default_rng([seed, 17])
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, round(fraction * len(idx)))
        keep.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep))


def count_only_pairs(classes: list[dict]) -> list[tuple[int, int]]:
    """Label pairs whose classes differ only in the somersault count."""
    pairs = []
    for a, b in combinations(classes, 2):
        same = all(a[k] == b[k] for k in ("takeoff", "twists", "position"))
        if same and a["somersaults"] != b["somersaults"] and not a["novel"] and not b["novel"]:
            pairs.append((a["label"], b["label"]))
    return pairs


def frame_features(clips: np.ndarray, grid: int = 12) -> np.ndarray:
    """Per-frame features: grey frames area-downsampled to grid x grid, centred and L2-normalised
    per frame. (N, T, H, W, 3) uint8 -> (N, T, grid * grid) float32."""
    n, t, h, w, _ = clips.shape
    g = clips.astype(np.float32).mean(-1)
    g = g[:, :, : h // grid * grid, : w // grid * grid].reshape(n, t, grid, h // grid, grid, w // grid).mean((3, 5))
    f = g.reshape(n, t, -1)
    f = f - f.mean(-1, keepdims=True)
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-6)


def dtw_distances(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Hard DTW between every query and gallery sequence over the cost 1 - cos.
    q (Nq, T, F), g (Ng, T, F), rows L2-normalised. Returns (Nq, Ng), normalised by 2T."""
    nq, t, _ = q.shape
    ng = g.shape[0]
    out = np.empty((nq, ng), np.float32)
    for i in range(nq):
        cost = 1.0 - np.einsum("tf,nsf->nts", q[i], g)  # (Ng, T, T)
        r = np.full((ng, t + 1, t + 1), np.inf, np.float32)
        r[:, 0, 0] = 0.0
        for a in range(1, t + 1):
            for b in range(1, t + 1):
                r[:, a, b] = cost[:, a - 1, b - 1] + np.minimum(np.minimum(r[:, a - 1, b - 1], r[:, a - 1, b]),
                                                                r[:, a, b - 1])
        out[i] = r[:, t, t] / (2 * t)
    return out


def nn_report(dist: np.ndarray, y_test: np.ndarray, y_gal: np.ndarray, pairs: list[tuple[int, int]]) -> dict:
    """1-NN accuracy overall and on each count-only pair (queries and gallery of the two classes)."""
    acc = float((y_gal[dist.argmin(1)] == y_test).mean())
    pair_acc = []
    for a, b in pairs:
        qm = np.isin(y_test, [a, b])
        gm = np.isin(y_gal, [a, b])
        if qm.sum() == 0 or gm.sum() == 0:
            continue
        d = dist[np.ix_(qm, gm)]
        pair_acc.append(float((y_gal[gm][d.argmin(1)] == y_test[qm]).mean()))
    return {"top1": acc, "count_pairs_mean": float(np.mean(pair_acc)) if pair_acc else None,
            "count_pairs": pair_acc}


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f} %"


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of area-averaging weights (each output pixel averages the input
    interval it covers), like ffmpeg's ``scale=flags=area``."""
    m = np.zeros((n_out, n_in), np.float32)
    edges = np.arange(n_out + 1) * n_in / n_out
    for o in range(n_out):
        lo, hi = edges[o], edges[o + 1]
        for i in range(int(np.floor(lo)), int(np.ceil(hi))):
            m[o, i] = min(hi, i + 1) - max(lo, i)
    return m / m.sum(1, keepdims=True)


def _render_sampled(job: tuple) -> np.ndarray:
    """Worker: render one planned video, keep t_store uniform frames, area-resize to size px."""
    item, spec, cfg, t_store, size = job
    frames, _ = synthdive.render_video(spec, cfg, np.random.default_rng(item["key"]))
    n = len(frames)
    idx = np.minimum(((np.arange(t_store) + 0.5) * n / t_store).astype(int), n - 1)
    f = frames[idx].astype(np.float32)
    a = area_matrix(f.shape[1], size)
    out = np.einsum("pw,towc->topc", a, np.einsum("oh,thwc->towc", a, f, optimize=True), optimize=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def raw_dataset(cfg: dict, seed: int, t_store: int, size: int, jobs: int) -> dict:
    """Render SynthDive in memory without the mp4 round trip (for sweeps on machines without
    ffmpeg): the same videos as :func:`synthdive.generate`, sampled and resized like the decoder."""
    resolved = synthdive.resolve_config(cfg)
    vocab = synthdive.load_diving48_vocab()
    plan = synthdive.plan_videos(resolved, seed)
    classes = synthdive.class_table(resolved, vocab)
    specs = {c["label"]: synthdive.parse_class(vocab[c["diving48_label"]]) for c in classes}
    job_list = [(it, specs[it["label"]], resolved, t_store, size) for it in plan]
    t0 = time.perf_counter()
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(jobs) as pool:
            clips = pool.map(_render_sampled, job_list, chunksize=8)
    else:
        clips = [_render_sampled(j) for j in job_list]
    print(f"[calibrate] rendered {len(plan)} videos in memory in {time.perf_counter() - t0:.1f}s", flush=True)
    out = {"classes": [{**c, "label": c["label"]} for c in classes]}
    for split in ("train", "test"):
        sel = [i for i, it in enumerate(plan) if it["split"] == split]
        out[split] = (np.stack([clips[i] for i in sel]), np.array([plan[i]["label"] for i in sel], np.int64))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "calibrate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="{}", help="JSON overrides of synthdive.DEFAULT_CONFIG")
    ap.add_argument("--tiny", action="store_true", help="use synthdive.TINY_CONFIG (smoke test)")
    ap.add_argument("--size", type=int, default=48, help="decoded frame size")
    ap.add_argument("--t-store", type=int, default=32)
    ap.add_argument("--clip-frames", type=int, default=16)
    ap.add_argument("--fractions", type=float, nargs="*", default=[1.0, 0.1])
    ap.add_argument("--arch", default="r2plus1d_tiny")
    ap.add_argument("--model-kwargs", default="{}", help="JSON kwargs for build_video_model")
    ap.add_argument("--epochs", type=int, default=30, help="epochs at 100%% labels")
    ap.add_argument("--min-steps", type=int, default=600,
                    help="smaller fractions train for max(epochs, ceil(min_steps / steps per epoch)) epochs")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--augment", default="{}", help="JSON overrides of augment.DEFAULT_AUGMENT")
    ap.add_argument("--clips-per-video", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtw", action="store_true", help="also run the pooled-vs-DTW 1-NN test")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--raw", action="store_true",
                    help="skip the mp4 round trip: render in memory (no ffmpeg needed; for sweeps)")
    ap.add_argument("--jobs", type=int, default=2, help="processes for --raw rendering and mp4 decoding")
    ap.add_argument("--sweep", type=Path, default=None,
                    help="JSON list of variants {name, args: {option: value}} run in parallel processes")
    ap.add_argument("--parallel", type=int, default=4, help="variants run at once with --sweep")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sweep is not None:
        return sweep(args)
    run_one(args)
    return 0


def _variant(job: tuple) -> dict:
    name, args = job
    import contextlib
    import io

    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        try:
            res = run_one(args)
        except Exception as exc:  # noqa: BLE001 - reported with the variant
            res = {"error": repr(exc)}
    res["name"] = name
    res["wall_seconds"] = round(time.perf_counter() - t0, 1)
    res["log_tail"] = [line for line in buf.getvalue().splitlines() if line.startswith("[calibrate]")]
    return res


def sweep(args: argparse.Namespace) -> int:
    """Run the variants of ``args.sweep`` (each: {name, args}) in parallel processes."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    variants = json.loads(args.sweep.read_text())
    base = {k: v for k, v in vars(args).items() if k not in ("sweep",)}
    jobs = []
    for v in variants:
        ns = argparse.Namespace(**{**base, "sweep": None})
        for k, val in v.get("args", {}).items():
            if not hasattr(ns, k):
                raise KeyError(f"variant {v['name']}: unknown option {k}")
            setattr(ns, k, type(getattr(ns, k))(val) if isinstance(getattr(ns, k), Path) else val)
        jobs.append((v["name"], ns))
    out = []
    with ProcessPoolExecutor(args.parallel, mp_context=mp.get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(_variant, j) for j in jobs]):
            res = fut.result()
            out.append(res)
            print(f"=== {res['name']} ({res['wall_seconds']}s)", flush=True)
            for line in res.get("log_tail", []):
                print("   ", line, flush=True)
            if "error" in res:
                print("    ERROR", res["error"], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep_results.json").write_text(json.dumps(out, indent=1))
    return 0


def run_one(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    cfg = dict(synthdive.TINY_CONFIG) if args.tiny else {}
    cfg.update(json.loads(args.config) if isinstance(args.config, str) else args.config)
    resolved = synthdive.resolve_config(cfg)
    key = hashlib.sha1(json.dumps([resolved, args.seed], sort_keys=True).encode()).hexdigest()[:10]
    if args.raw:
        data = f"in-memory (config {key})"
        ds = raw_dataset(cfg, args.seed, args.t_store, args.size, args.jobs)
        classes = ds["classes"]
        (x_tr, y_tr), (x_te, y_te) = ds["train"], ds["test"]
    else:
        data = args.out / f"synthdive_{key}"
        if not (data / "annotations" / "summary.json").is_file():
            summary = synthdive.generate(data, cfg, args.seed, log=lambda m: print(m, flush=True))
            print(f"[calibrate] generated in {summary['seconds']:.1f}s", flush=True)
        classes = json.loads((data / "annotations" / "classes.json").read_text())
        x_tr, y_tr, _ = load_split(data, "train", args.t_store, args.size, data, args.jobs)
        x_te, y_te, _ = load_split(data, "test", args.t_store, args.size, data, args.jobs)
    num_classes = len(classes)
    pairs = count_only_pairs(classes)
    results: dict = {"data": str(data), "config": resolved, "args": {k: str(v) for k, v in vars(args).items()},
                     "count_only_pairs": pairs, "runs": []}
    print(f"[calibrate] {num_classes} classes, train {len(y_tr)}, test {len(y_te)}, count-only pairs {pairs}",
          flush=True)

    if not args.no_train:
        for frac in args.fractions:
            sub = stratified_subset(y_tr, frac, args.seed)
            steps_per_epoch = int(np.ceil(len(sub) / args.batch_size))
            epochs = max(args.epochs, int(np.ceil(args.min_steps / steps_per_epoch)))
            torch.manual_seed(args.seed)
            model = build_video_model(args.arch, num_classes, **json.loads(args.model_kwargs))
            t0, c0 = time.perf_counter(), time.process_time()
            hist = train_classifier(
                model, torch.from_numpy(x_tr[sub]), y_tr[sub], epochs=epochs, batch_size=args.batch_size,
                lr=args.lr, weight_decay=args.weight_decay, clip_frames=args.clip_frames, seed=args.seed,
                device=args.device, augment=json.loads(args.augment),
                log=lambda m: print(m, flush=True))
            t_train, c_train = time.perf_counter() - t0, time.process_time() - c0
            prob = predict_proba(model, torch.from_numpy(x_te), clip_frames=args.clip_frames,
                                 clips_per_video=args.clips_per_video, device=args.device)
            t_total = time.perf_counter() - t0
            pred = prob.argmax(1)
            top1 = float((pred == y_te).mean())
            conf = np.zeros((num_classes, num_classes), int)
            np.add.at(conf, (y_te, pred), 1)
            pair_conf = {f"{a}-{b}": int(conf[a, b] + conf[b, a]) for a, b in pairs}
            run = {"fraction": frac, "labeled": len(sub), "epochs": epochs, "top1": top1,
                   "train_seconds": round(t_train, 1), "total_seconds": round(t_total, 1),
                   "train_cpu_seconds": round(c_train, 1),
                   "final_train_loss": hist[-1]["loss"], "final_train_acc": hist[-1]["acc"],
                   "per_class_acc": [float(conf[c, c] / max(1, conf[c].sum())) for c in range(num_classes)],
                   "count_pair_confusions": pair_conf, "confusion": conf.tolist()}
            results["runs"].append(run)
            print(f"[calibrate] fraction {frac:g} ({len(sub)} labeled, {epochs} epochs): test top-1 "
                  f"{top1 * 100:.1f} %, train {t_train:.0f}s (CPU time {c_train:.0f}s over {args.threads} threads), "
                  f"train+predict {t_total:.0f}s", flush=True)
            print(f"[calibrate]   per-class acc {[round(a, 2) for a in run['per_class_acc']]}", flush=True)
            print(f"[calibrate]   count-pair confusions {pair_conf}", flush=True)

    if args.dtw:
        f_tr, f_te = frame_features(x_tr), frame_features(x_te)
        for frac in args.fractions:
            sub = stratified_subset(y_tr, frac, args.seed)
            pooled_q = f_te.mean(1)
            pooled_g = f_tr[sub].mean(1)
            pooled_q /= np.linalg.norm(pooled_q, axis=1, keepdims=True)
            pooled_g /= np.linalg.norm(pooled_g, axis=1, keepdims=True)
            d_pool = 1.0 - pooled_q @ pooled_g.T
            t0 = time.perf_counter()
            d_dtw = dtw_distances(f_te, f_tr[sub])
            rep = {"fraction": frac, "pooled": nn_report(d_pool, y_te, y_tr[sub], pairs),
                   "dtw": nn_report(d_dtw, y_te, y_tr[sub], pairs), "dtw_seconds": time.perf_counter() - t0}
            results.setdefault("nn", []).append(rep)
            print(f"[calibrate] 1-NN on per-frame pixels, gallery {frac:g}: pooled top-1 "
                  f"{_pct(rep['pooled']['top1'])} (count pairs {_pct(rep['pooled']['count_pairs_mean'])}), "
                  f"DTW top-1 {_pct(rep['dtw']['top1'])} (count pairs {_pct(rep['dtw']['count_pairs_mean'])})",
                  flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    res_file = args.out / f"results_{key}_{int(time.time())}.json"
    res_file.write_text(json.dumps(results, indent=1, default=str))
    print(f"[calibrate] results in {res_file}", flush=True)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
