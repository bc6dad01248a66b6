"""Workflow step of the trivial baselines (file in, file out), called by the rule script
``workflow/scripts/trivial_baselines.py``: one label fraction and split seed, every baseline of
:data:`finepseudo.registry.TRIVIAL_BASELINES` the rule asks for, written like an evaluation's outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from finepseudo.align.train import eval_indices
from finepseudo.baselines.trivial import (class_distances, class_mean_distances, cosine_distances, decide,
                                          dtw_distances, frame_vectors, pooled_features, pooled_vectors)
from finepseudo.models.evaluate import classification_metrics
from finepseudo.device import resolve_device, setup_torch
from finepseudo.models.steps import Log, load_videos, read_classes
from finepseudo.registry import TRIVIAL_BASELINES

__all__ = ["trivial_baselines_step", "pixel_vectors", "OUTPUT_FILES"]

#: The files of each baseline, as an evaluation writes them (evaluate_fe_step).
OUTPUT_FILES = ("metrics", "per_class", "confusion", "predictions")


def pixel_vectors(frames, num_frames: int, size: int, chunk: int = 64) -> np.ndarray:
    """The pixel vectors of the ``num_frames`` frames f_A embeds (uniform over the stored ones,
    :func:`finepseudo.align.train.eval_indices`): frames uint8 (N, T_store, H, W, 3), a FrameStore or a
    tensor -> float32 (N, num_frames, 3 * size * size) (:func:`finepseudo.baselines.trivial.frame_vectors`),
    read ``chunk`` videos at a time."""
    n = len(frames)
    idx = eval_indices(int(frames.shape[1]), num_frames)
    parts = [frame_vectors(frames[np.arange(i, min(i + chunk, n)), idx], size) for i in range(0, n, chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, num_frames, 3 * size * size), np.float32)


def _write(paths: dict[str, str], name: str, table: pd.DataFrame, pred: np.ndarray, confidence: np.ndarray,
           names: list[str], info: dict, log: Log) -> None:
    """metrics.json, per_class.tsv, confusion.tsv and predictions.tsv of one baseline (columns of
    predictions.tsv as evaluate_fe writes them: video, label, pred, confidence)."""
    labels = table["label"].to_numpy(np.int64)
    onehot = np.eye(len(names), dtype=np.float32)[pred]  # the decision itself: classification_metrics takes argmax
    summary, per_class, confusion = classification_metrics(onehot, labels, names)
    summary.update({"method": name, "baseline": TRIVIAL_BASELINES[name], **info})
    Path(paths["metrics"]).parent.mkdir(parents=True, exist_ok=True)
    Path(paths["metrics"]).write_text(json.dumps(summary, indent=2))
    per_class.to_csv(paths["per_class"], sep="\t", index=False)
    confusion.to_csv(paths["confusion"], sep="\t")
    pd.DataFrame({"video": table["video"], "label": labels, "pred": pred,
                  "confidence": np.round(confidence, 6)}).to_csv(paths["predictions"], sep="\t", index=False)
    log(f"{name}: top-1 {summary['top1']:.1f} % on {summary['n']} test videos")


def trivial_baselines_step(*, labeled: str, test: str, classes: str, shards: list[str], pa_test: str,
                           out: dict[str, dict[str, str]], pixel_size: int, num_frames: int, dtw_backend: str,
                           clip_frames: int, clips_per_video: int, batch_size: int, device: str, threads: int,
                           log: Log, ssl_model: str | None = None) -> None:
    """The trivial baselines of one split: ``out`` maps each baseline to compute (names of
    :data:`~finepseudo.registry.TRIVIAL_BASELINES`) to its output paths (:data:`OUTPUT_FILES`).

    The gallery is ``labeled`` (the split's labeled.tsv, what the methods train on; never val.tsv), the
    queries ``test`` (its labels are the ground truth of the metrics only). pixel_dtw and pixel_pooled use
    ``num_frames`` frames per video (alignability.num_frames, the frames f_A sees) downsampled to
    ``pixel_size`` (baselines.pixel_size); phi_a reads ``pa_test`` (predict_alignability's p_A table of
    the test videos, against the same gallery); ssl_probe needs ``ssl_model`` (fe_ssl.pt) and pools its
    features over the test clips (``clip_frames``, ``clips_per_video``, ``batch_size``) on ``device``."""
    unknown = sorted(set(out) - set(TRIVIAL_BASELINES))
    if unknown:
        raise ValueError(f"unknown trivial baseline(s) {unknown}; known: {list(TRIVIAL_BASELINES)}")
    if "ssl_probe" in out and ssl_model is None:
        raise ValueError("ssl_probe needs the self-supervised f_E (fe_ssl.pt), which exists with fe.init: ssl only")
    setup_torch(threads, 0)
    dev = resolve_device(device)
    names = read_classes(classes)
    gal = pd.read_csv(labeled, sep="\t", dtype={"video": str})
    g_frames, gal = load_videos(shards, gal, log, "labeled gallery")
    tst = pd.read_csv(test, sep="\t", dtype={"video": str})
    t_frames, tst = load_videos(shards, tst, log, "test")
    g_labels = gal["label"].to_numpy(np.int64)
    common = {"gallery": labeled, "n_gallery": len(gal), "test": test}
    log(f"trivial baselines {sorted(out)}: gallery of {len(gal)} labeled videos ({labeled}), {len(tst)} test videos")

    if {"pixel_dtw", "pixel_pooled"} & set(out):
        t0 = time.time()
        g_vec, t_vec = (pixel_vectors(f, num_frames, pixel_size) for f in (g_frames, t_frames))
        pix = {**common, "pixel_size": pixel_size, "num_frames": num_frames, "colour": "RGB, centred per frame"}
        log(f"pixel vectors {t_vec.shape[1:]} per video in {time.time() - t0:.1f} s")
        if "pixel_dtw" in out:
            t0 = time.time()
            d = dtw_distances(t_vec, g_vec, backend=dtw_backend)
            pred, conf = decide(class_distances(d, g_labels, len(names)))
            _write(out["pixel_dtw"], "pixel_dtw", tst, pred, conf, names,
                   {**pix, "dtw_backend": dtw_backend, "seconds": round(time.time() - t0, 1)}, log)
        if "pixel_pooled" in out:
            t0 = time.time()
            d = cosine_distances(pooled_vectors(t_vec), pooled_vectors(g_vec))
            pred, conf = decide(class_distances(d, g_labels, len(names)))
            _write(out["pixel_pooled"], "pixel_pooled", tst, pred, conf, names,
                   {**pix, "seconds": round(time.time() - t0, 1)}, log)

    if "phi_a" in out:
        pa = pd.read_csv(pa_test, sep="\t", dtype={"video": str})
        missing = sorted(set(tst["video"]) - set(pa["video"]))
        extra = sorted(set(pa["video"]) - set(tst["video"]))
        if missing or extra:
            raise ValueError(f"{pa_test} does not hold the test videos of {test} that have frames ({len(missing)} "
                             f"missing, e.g. {missing[:3]}; {len(extra)} not in the test split, e.g. {extra[:3]}): "
                             "rerun predict_alignability")
        pa = pa.set_index("video").loc[tst["video"]]
        _write(out["phi_a"], "phi_a", tst, pa["pred"].to_numpy(np.int64), pa["confidence"].to_numpy(np.float64),
               names, {**common, "p_A": pa_test}, log)

    if "ssl_probe" in out:
        from finepseudo.models.video import build_video_model

        t0 = time.time()
        ckpt = torch.load(ssl_model, map_location="cpu", weights_only=True)
        model = build_video_model(ckpt["arch"], 1, weights=ssl_model, **ckpt.get("model_kwargs", {}))
        kw = {"clip_frames": clip_frames, "clips_per_video": clips_per_video, "batch_size": batch_size, "device": dev}
        g_feat, t_feat = pooled_features(model, g_frames, **kw), pooled_features(model, t_frames, **kw)
        pred, conf = decide(class_mean_distances(t_feat, g_feat, g_labels, len(names)))
        _write(out["ssl_probe"], "ssl_probe", tst, pred, conf, names,
               {**common, "model": ssl_model, "features": f"{ckpt['arch']} pooled, {g_feat.shape[1]} dims",
                "classifier": "nearest class mean, cosine, centred by the gallery mean",
                "clip_frames": clip_frames, "clips_per_video": clips_per_video,
                "seconds": round(time.time() - t0, 1)}, log)
