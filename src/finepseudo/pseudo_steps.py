"""Workflow steps of the collaborative pseudo-labeling rounds (file in, file out).

Round r (r >= 1) of a method: with f_E(r-1) and f_A(r-1) frozen, predict p_E and p_A for every
unlabeled video, combine, threshold (and reject novel videos in the open world), then fine-tune f_E
(cross-entropy) and f_A (L_AV) on labeled + accepted videos. The unlabeled list has no label column and
the evaluation-only truth is read by :func:`pseudo_quality_step` alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .align_steps import _embed, load_fa, save_fa
from .alignability import class_alignability, pairwise_distance
from .alignability_train import embed_videos, train_avml
from . import hparams as hp
from .pseudolabel import combine, pseudo_label_table
from .runlog import environment
from .steps import Log, _setup_torch, load_videos, read_classes, resolve_device

__all__ = ["select_hparams_step", "read_hparams", "pseudo_label_step", "retrain_fe_step", "retrain_fa_step",
           "training_set"]


def _predict(*, fe: str, fa: str | None, gallery: str, table: pd.DataFrame, shards: list[str], align: dict,
             clips_per_video: int, dev: str, num_classes: int, log: Log, what: str):
    """p_E and Sbar (phi_A's mean alignability per class, None without f_A) of the videos in ``table``,
    from frozen encoders; the gallery is the labeled training videos. -> (p_E, Sbar, table)."""
    from .train import load_checkpoint, predict_proba

    frames, table = load_videos(shards, table, log, what)
    net, info = load_checkpoint(fe, dev)
    p_e = predict_proba(net, frames, clip_frames=info["metadata"]["fe"]["clip_frames"],
                        clips_per_video=clips_per_video, batch_size=32, device=dev)
    sbar = None
    if fa is not None:
        model, score, meta = load_fa(fa)
        gal = pd.read_csv(gallery, sep="\t", dtype={"video": str})
        g_emb, gal = _embed(model, meta, shards, gal, dev, log, "gallery")
        q_emb = embed_videos(model.to(dev), frames, num_frames=meta["num_frames"], device=dev)
        d = pairwise_distance(q_emb, g_emb, gamma=align["gamma"], backend=align["dtw_backend"])
        sbar, _ = class_alignability(d, gal["label"].to_numpy(), num_classes, score, 1.0)
    return p_e, sbar, table


def read_hparams(path: str) -> dict:
    """The hyper-parameters a method's rounds use (written by :func:`select_hparams_step`)."""
    return json.loads(Path(path).read_text())["values"]


def select_hparams_step(*, fe: str, fa: str | None, labeled: str, val: str, classes: str, shards: list[str],
                        out: str, out_candidates: str, method: str, source: str, open_world: bool, defaults: dict,
                        select: list[str], theta_grid: list[float], tau_grid: list[float], target_precision: float,
                        known_keep: float, align: dict, clips_per_video: int, device: str, threads: int,
                        log: Log) -> None:
    """Choose theta, tau and (open world) delta for a method on the validation split, from its round-0
    encoders (f_E after the supervised warm-up, f_A after AVML), which never trained on those videos.
    ``defaults`` holds the config values used for what is not selected. Writes hparams.json (the values
    and where each came from) and the candidates table."""
    _setup_torch(threads, 0)
    dev = resolve_device(device)
    names = read_classes(classes)
    val_t = pd.read_csv(val, sep="\t", dtype={"video": str})
    values = {"theta": defaults["theta"], "tau": defaults["tau"] if source != "fe" else None,
              "delta": defaults["delta"] if open_world else None}
    chosen_on = {k: ("config" if v is not None else "not used") for k, v in values.items()}
    chosen_on["rounds"] = "validation" if "rounds" in select and len(val_t) else "config"
    candidates = []
    todo = [k for k in ("theta", "tau", "delta") if k in select and values[k] is not None]
    if todo and val_t.empty:
        log("no validation videos (hparams.val_per_class is 0, or every class has one labeled video): "
            "theta, tau and delta come from config")
    elif todo:
        p_e, sbar, val_t = _predict(fe=fe, fa=fa, gallery=labeled, table=val_t, shards=shards, align=align,
                                    clips_per_video=clips_per_video, dev=dev, num_classes=len(names), log=log,
                                    what="validation")
        y = val_t["label"].to_numpy()
        if "tau" in todo:
            values["tau"], tab = hp.select_tau(sbar, y, tau_grid)
            chosen_on["tau"] = "validation"
            candidates.append(tab.assign(hparam="tau", value=tab["tau"]).drop(columns="tau"))
        p_a = hp.softmax(sbar / values["tau"]) if sbar is not None else None
        if "theta" in todo:
            p = combine(p_e, p_a, source)
            values["theta"], tab = hp.select_theta(p, y, theta_grid, target_precision)
            chosen_on["theta"] = "validation"
            candidates.append(tab.assign(hparam="theta", value=tab["theta"]).drop(columns="theta"))
        if "delta" in todo:
            values["delta"] = hp.select_delta(sbar, known_keep)
            chosen_on["delta"] = "validation"
    table = pd.concat(candidates, ignore_index=True) if candidates else pd.DataFrame(columns=["hparam", "value"])
    table.insert(0, "hparam", table.pop("hparam"))
    table.insert(1, "value", table.pop("value"))
    table["chosen"] = [values.get(h) is not None and np.isclose(v, values[h]) for h, v in zip(table["hparam"],
                                                                                              table["value"])]
    table.to_csv(out_candidates, sep="\t", index=False)
    record = {"method": method, "values": values, "chosen_on": chosen_on, "n_val": int(len(val_t)),
              "rule": {"theta": f"smallest of {sorted(theta_grid)} with validation precision >= {target_precision}",
                       "tau": f"lowest validation log-loss of p_A over {list(tau_grid)}",
                       "delta": f"keeps {known_keep} of the (known-class) validation videos",
                       "rounds": "best validation top-1 of f_E over rounds 1..pseudo.rounds (ties: fewer)"}}
    Path(out).write_text(json.dumps(record, indent=2))
    log(f"{method}: " + ", ".join(f"{k}={v} ({chosen_on[k]})" for k, v in values.items())
        + f"; rounds: {chosen_on['rounds']}; {len(val_t)} validation videos")


def pseudo_label_step(*, fe: str, fa: str | None, labeled: str, unlabeled: str, classes: str, shards: list[str],
                      out: str, source: str, hparams: str, align: dict, clips_per_video: int,
                      device: str, threads: int, log: Log) -> None:
    """Pseudo-labels for the whole unlabeled pool from the frozen previous-round encoders, with the
    theta, tau and delta of ``hparams`` (chosen on validation or taken from config)."""
    _setup_torch(threads, 0)
    dev = resolve_device(device)
    names = read_classes(classes)
    hpv = read_hparams(hparams)
    theta, tau, delta = hpv["theta"], hpv["tau"], hpv["delta"]
    pool = pd.read_csv(unlabeled, sep="\t", usecols=["video"], dtype={"video": str})
    if pool.empty:
        pseudo_label_table([], None, None, None, source="fe", theta=theta).to_csv(out, sep="\t", index=False)
        return
    p_e, sbar, pool = _predict(fe=fe, fa=fa, gallery=labeled, table=pool, shards=shards, align=align,
                               clips_per_video=clips_per_video, dev=dev, num_classes=len(names), log=log,
                               what="unlabeled")
    p_a = hp.softmax(sbar / tau) if sbar is not None else None
    table = pseudo_label_table(pool["video"].tolist(), p_e, p_a, sbar, source=source, theta=theta, delta=delta)
    table.to_csv(out, sep="\t", index=False)
    log(f"{len(table)} unlabeled videos: {int(table['accepted'].sum())} accepted at theta={theta}, tau={tau} "
        f"(source={source}), {int(table['rejected_novel'].sum())} rejected as novel (delta={delta})")


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
    history = train_classifier(net, frames, torch.as_tensor(table["label"].to_numpy(np.int64).copy()), epochs=epochs,
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
