"""Workflow steps of the collaborative pseudo-labeling rounds (file in, file out).

Round r (r >= 1) of a method: with f_E(r-1) and f_A(r-1) frozen, predict p_E and p_A for every
unlabeled video, combine, threshold (and reject novel videos in the open world), then fine-tune f_E
(cross-entropy) and f_A (L_AV) on labeled + accepted videos. The unlabeled list has no label column and
the evaluation-only truth is read by :func:`pseudo_quality_step` alone.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from .align_steps import _embed, load_fa, save_fa
from .alignability import class_alignability, pairwise_distance
from .alignability_train import embed_videos, train_avml
from .pseudolabel import pseudo_label_table, quality
from .runlog import environment
from .steps import Log, _setup_torch, load_videos, read_classes, resolve_device

__all__ = ["pseudo_label_step", "retrain_fe_step", "retrain_fa_step", "pseudo_quality_step", "training_set"]


def pseudo_label_step(*, fe: str, fa: str | None, labeled: str, unlabeled: str, classes: str, shards: list[str],
                      out: str, source: str, theta: float, delta: float | None, align: dict, clips_per_video: int,
                      device: str, threads: int, log: Log) -> None:
    """Pseudo-labels for the whole unlabeled pool from the frozen previous-round encoders."""
    from .train import load_checkpoint, predict_proba

    _setup_torch(threads, 0)
    dev = resolve_device(device)
    names = read_classes(classes)
    pool = pd.read_csv(unlabeled, sep="\t", usecols=["video"], dtype={"video": str})
    if pool.empty:
        pseudo_label_table([], None, None, None, source="fe", theta=theta).to_csv(out, sep="\t", index=False)
        return
    frames, pool = load_videos(shards, pool, log, "unlabeled")
    net, info = load_checkpoint(fe, dev)
    p_e = predict_proba(net, frames, clip_frames=info["metadata"]["fe"]["clip_frames"],
                        clips_per_video=clips_per_video, batch_size=32, device=dev)
    p_a = sbar = None
    if fa is not None:
        model, score, meta = load_fa(fa)
        gal = pd.read_csv(labeled, sep="\t", dtype={"video": str})
        g_emb, gal = _embed(model, meta, shards, gal, dev, log, "gallery")
        q_emb = embed_videos(model.to(dev), frames, num_frames=meta["num_frames"], device=dev)
        d = pairwise_distance(q_emb, g_emb, gamma=align["gamma"], backend=align["dtw_backend"])
        sbar, p_a = class_alignability(d, gal["label"].to_numpy(), len(names), score, align["tau"])
    table = pseudo_label_table(pool["video"].tolist(), p_e, p_a, sbar, source=source, theta=theta, delta=delta)
    table.to_csv(out, sep="\t", index=False)
    log(f"{len(table)} unlabeled videos: {int(table['accepted'].sum())} accepted at theta={theta} "
        f"(source={source}), {int(table['rejected_novel'].sum())} rejected as novel")


def training_set(labeled: str, pseudo: str) -> pd.DataFrame:
    """Labeled videos (ground truth) plus accepted pseudo-labeled videos: columns video, label, source."""
    lab = pd.read_csv(labeled, sep="\t", dtype={"video": str})[["video", "label"]].assign(source="labeled")
    ps = pd.read_csv(pseudo, sep="\t", dtype={"video": str})
    acc = ps.loc[ps["accepted"].astype(bool), ["video", "label"]].assign(source="pseudo")
    return pd.concat([lab, acc], ignore_index=True)


def retrain_fe_step(*, fe: str, labeled: str, pseudo: str, shards: list[str], out_model: str, out_history: str,
                    epochs: int, lr: float, seed: int, device: str, threads: int, log: Log) -> None:
    """Fine-tune f_E(r-1) with cross-entropy on labeled + accepted pseudo-labeled videos."""
    import torch

    from .train import load_checkpoint, save_checkpoint, train_classifier

    _setup_torch(threads, seed)
    dev = resolve_device(device)
    net, info = load_checkpoint(fe, dev)
    cfg = info["metadata"]["fe"]
    table = training_set(labeled, pseudo)
    frames, table = load_videos(shards, table, log, "labeled + pseudo-labeled")
    log(f"fine-tune f_E on {int((table['source'] == 'labeled').sum())} labeled + "
        f"{int((table['source'] == 'pseudo').sum())} pseudo-labeled videos for {epochs} epochs, lr={lr}")
    t0 = time.time()
    history = train_classifier(net, frames, torch.as_tensor(table["label"].to_numpy(np.int64)), epochs=epochs,
                               batch_size=cfg["batch_size"], lr=lr, weight_decay=cfg["weight_decay"],
                               clip_frames=cfg["clip_frames"], seed=seed, device=dev,
                               augment=cfg.get("augment") or None, log=log)
    pd.DataFrame(history).to_csv(out_history, sep="\t", index=False)
    meta = {**info["metadata"], "seed": seed, "n_train": len(table), "n_pseudo": int((table["source"] == "pseudo").sum()),
            "seconds": round(time.time() - t0, 1), "env": environment()}
    save_checkpoint(out_model, net, arch=info["arch"], num_classes=info["num_classes"],
                    model_kwargs=info.get("model_kwargs"), metadata=meta)


def retrain_fa_step(*, fa: str, labeled: str, pseudo: str, shards: list[str], out_model: str, out_history: str,
                    align: dict, loss: str, epochs: int, seed: int, device: str, threads: int, log: Log) -> None:
    """Continue AVML of f_A(r-1) + f_S on labeled + accepted videos, re-mining the hardest negatives
    with all-pairs DTW over the current embeddings."""
    _setup_torch(threads, seed)
    dev = resolve_device(device)
    model, score, meta = load_fa(fa)
    table = training_set(labeled, pseudo)
    frames, table = load_videos(shards, table, log, "labeled + pseudo-labeled")
    labels = table["label"].to_numpy()
    emb = embed_videos(model.to(dev), frames, num_frames=meta["num_frames"], device=dev)
    d = pairwise_distance(emb, emb, gamma=0.0, backend=align["dtw_backend"])
    d[labels[:, None] == labels[None, :]] = np.inf
    hard_neg = d.argmin(1)
    a = align["avml"]
    log(f"AVML ({loss}) round fine-tuning on {len(table)} videos ({int((table['source'] == 'pseudo').sum())} "
        f"pseudo-labeled) for {epochs} epochs")
    model, score, history = train_avml(
        model, frames, labels, hard_neg, num_frames=meta["num_frames"], epochs=epochs, batch_size=a["batch_size"],
        lr=a["lr"], gamma=align["gamma"], margin=align["margin"], omega=align["omega"],
        use_triplet=loss in ("av", "at"), use_score=loss in ("av", "score"), seed=seed, device=dev, log=log,
        score=score)
    pd.DataFrame(history).to_csv(out_history, sep="\t", index=False)
    save_fa(out_model, model.cpu(), score.cpu(), {**meta, "stage": "round", "seed": seed, "env": environment()})


def pseudo_quality_step(*, tables: list[str], truth: str, novel: str, out: str, log: Log) -> None:
    """Coverage, precision, per-class precision and p_E/p_A agreement of every round's pseudo-labels
    against the evaluation-only truth (the only step that reads it besides the report)."""
    tr = pd.read_csv(truth, sep="\t", dtype={"video": str})
    novel_labels = pd.read_csv(novel, sep="\t")["label"].astype(int).tolist()
    rows = []
    for r, path in enumerate(tables, start=1):
        q = quality(pd.read_csv(path, sep="\t", dtype={"video": str}), tr, novel_labels)
        q["per_class_precision"] = json.dumps(q["per_class_precision"])
        rows.append({"round": r, **q})
    df = pd.DataFrame(rows)
    df.to_csv(out, sep="\t", index=False)
    log(df.to_string(index=False))
