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

from finepseudo.align.steps import embed_table, load_fa, save_fa
from finepseudo.align.alignability import class_alignability, pairwise_distance
from finepseudo.align.train import embed_videos, train_avml_ddp
from finepseudo.pseudo import hparams as hp
from finepseudo.pseudo.pseudolabel import combine, pseudo_label_table
from finepseudo.runlog import environment
from finepseudo.stats import softmax
from finepseudo.device import resolve_device, setup_torch
from finepseudo.models.steps import Log, load_videos, read_classes

__all__ = ["select_hparams_step", "read_hparams", "pseudo_label_step", "retrain_fe_step", "retrain_fa_step",
           "training_set"]


def _predict(*, fe: str, fa: str | None, gallery: str, table: pd.DataFrame, shards: list[str], align: dict,
             clips_per_video: int, dev: str, num_classes: int, log: Log, what: str):
    """f_E's logits and phi_A's Sbar (mean alignability per class, None without f_A) of the videos in
    ``table``, from frozen encoders; the gallery is the labeled training videos. -> (p_E, logits, Sbar, table):
    p_E is the softmax averaged over the test clips (the paper's p_E), logits their average."""
    from finepseudo.models.train import load_checkpoint, predict_proba_and_logits

    frames, table = load_videos(shards, table, log, what)
    net, info = load_checkpoint(fe, dev)
    p_e, logits = predict_proba_and_logits(net, frames, clip_frames=info["metadata"]["fe"]["clip_frames"],
                                           clips_per_video=clips_per_video, batch_size=32, device=dev)
    sbar = None
    if fa is not None:
        model, score, meta = load_fa(fa)
        gal = pd.read_csv(gallery, sep="\t", dtype={"video": str})
        g_emb, gal = embed_table(model, meta, shards, gal, dev, log, "gallery")
        q_emb = embed_videos(model.to(dev), frames, num_frames=meta["num_frames"], device=dev)
        d = pairwise_distance(q_emb, g_emb, gamma=align["gamma"], backend=align["dtw_backend"])
        sbar, _ = class_alignability(d, gal["label"].to_numpy(), num_classes, score, 1.0)
    return p_e, logits, sbar, table


def calibrated_pe(p_e: np.ndarray, logits: np.ndarray, temperature: float | None) -> np.ndarray:
    """p_E as combined: the paper's averaged softmax (``temperature`` None) or softmax(logits / T_E)."""
    return np.asarray(p_e, np.float64) if temperature is None else softmax(np.asarray(logits) / temperature)


def fit_pe_temperature(*, fe: str, val: str, shards: list[str], clips_per_video: int, dev: str, log: Log,
                       num_classes: int) -> tuple[float, pd.DataFrame]:
    """T_E of an f_E checkpoint, fitted on the validation split (1.0 without validation videos)."""
    val_t = pd.read_csv(val, sep="\t", dtype={"video": str})
    if val_t.empty:
        log("no validation videos: p_E is not calibrated (T_E = 1)")
        return 1.0, pd.DataFrame(columns=["temperature", "val_nll"])
    _, logits, _, val_t = _predict(fe=fe, fa=None, gallery="", table=val_t, shards=shards, align={},
                                   clips_per_video=clips_per_video, dev=dev, num_classes=num_classes, log=log,
                                   what="validation")
    return hp.select_temperature(logits, val_t["label"].to_numpy())


def fit_on_validation(p_e_raw: np.ndarray | None, logits: np.ndarray | None, p_a: np.ndarray | None,
                      labels: np.ndarray, *, source: str, rule: str, calibrate: bool, choose_theta: bool,
                      theta: float, theta_grid: list[float], target_precision: float) -> dict:
    """What one set of encoders (round 0, or a round's f_E(r-1) and f_A(r-1)) fits on the validation split,
    in this order: p_E's temperature T_E (``calibrate``, except for the log-linear pool, whose weight on
    p_E is its temperature), the pool weights (alpha, beta) (``rule`` loglinear), then theta on the combined
    probabilities (``choose_theta``; with ``agree``, on the validation videos whose branches agree).

    Returns T_E, weights, theta, the theta candidates table, the combined validation probabilities, and
    each branch's and the combination's validation top-1 and their agreement (for the report)."""
    y = np.asarray(labels, np.int64)
    out: dict = {"T_E": None, "weights": None, "theta": float(theta), "theta_table": None, "n_val": int(len(y))}
    if source != "fa" and calibrate and not (source == "both" and rule == "loglinear"):
        out["T_E"], _ = hp.select_temperature(logits, y)
    p_e = None if p_e_raw is None else calibrated_pe(p_e_raw, logits, out["T_E"])
    if source == "both" and rule == "loglinear":
        out["weights"], _ = hp.fit_pool_weights(p_e_raw, p_a, y)
    p = combine(p_e, p_a, source, rule, out["weights"])
    gate = np.ones(len(y), bool)
    if source == "both" and rule == "agree":
        gate = p_e.argmax(1) == p_a.argmax(1)
    if choose_theta:
        out["theta"], out["theta_table"] = hp.select_theta(p[gate], y[gate], theta_grid, target_precision)
    top1 = {name: round(100.0 * float((q.argmax(1) == y).mean()), 4) if len(y) else None
            for name, q in (("p_E", p_e), ("p_A", p_a), ("combined", p)) if q is not None}
    out["val_top1"] = top1
    if p_e is not None and p_a is not None and len(y):
        out["val_agreement"] = round(float((p_e.argmax(1) == p_a.argmax(1)).mean()), 6)
    out["p"] = p
    return out


def read_hparams(path: str) -> dict:
    """The hyper-parameters a method's rounds use (written by :func:`select_hparams_step`)."""
    return json.loads(Path(path).read_text())["values"]


def select_hparams_step(*, fe: str, fa: str | None, labeled: str, val: str, classes: str, shards: list[str],
                        out: str, out_candidates: str, method: str, source: str, open_world: bool, defaults: dict,
                        select: list[str], theta_grid: list[float], tau_grid: list[float], target_precision: float,
                        known_keep: float, align: dict, clips_per_video: int, device: str, threads: int,
                        log: Log, calibrate: bool = False, out_calibration: str | None = None,
                        out_reliability: str | None = None, accept: dict | None = None,
                        rule: str = "average") -> None:
    """Choose theta, tau and (open world) delta for a method on the validation split, from its round-0
    encoders (f_E after the supervised warm-up, f_A after AVML), which never trained on those videos.
    ``defaults`` holds the config values used for what is not selected. With ``calibrate``, p_E is
    temperature-scaled on validation (T_E) before it is combined or thresholded. Writes hparams.json (the
    values, where each came from, whether a choice sits at the edge of its grid), the candidates table and,
    when asked, the validation calibration of p_E, p_E calibrated, p_A and the combination (ECE, NLL,
    reliability bins)."""
    setup_torch(threads, 0)
    dev = resolve_device(device)
    names = read_classes(classes)
    val_t = pd.read_csv(val, sep="\t", dtype={"video": str})
    values = {"theta": defaults["theta"], "tau": defaults["tau"] if source != "fe" else None,
              "delta": defaults["delta"] if open_world else None, "T_E": None}
    chosen_on = {k: ("config" if v is not None else "not used") for k, v in values.items()}
    chosen_on["T_E"] = "not calibrated (the paper's p_E)"
    chosen_on["rounds"] = "validation" if "rounds" in select and len(val_t) else "config"
    candidates = []
    dists: dict = {}
    at_edge = {"theta": False, "tau": False, "T_E": False}
    todo = [k for k in ("theta", "tau", "delta") if k in select and values[k] is not None]
    if (todo or calibrate) and val_t.empty:
        log("no validation videos (hparams.val_per_class is 0, or every class has one labeled video): "
            "theta, tau and delta come from config and p_E is not calibrated")
    elif todo or calibrate:
        p_e_raw, logits, sbar, val_t = _predict(fe=fe, fa=fa, gallery=labeled, table=val_t, shards=shards,
                                                align=align, clips_per_video=clips_per_video, dev=dev,
                                                num_classes=len(names), log=log, what="validation")
        y = val_t["label"].to_numpy()
        if "tau" in todo:
            values["tau"], tab = hp.select_tau(sbar, y, tau_grid)
            chosen_on["tau"] = "validation"
            at_edge["tau"] = values["tau"] in (min(tau_grid), max(tau_grid))
            candidates.append(tab.assign(hparam="tau", value=tab["tau"]).drop(columns="tau"))
        p_a = softmax(sbar / values["tau"]) if sbar is not None else None
        fit = fit_on_validation(p_e_raw if source != "fa" else None, logits, p_a if source != "fe" else None, y,
                                source=source, rule=rule, calibrate=calibrate, choose_theta="theta" in todo,
                                theta=values["theta"], theta_grid=theta_grid, target_precision=target_precision)
        if fit["T_E"] is not None:
            values["T_E"] = fit["T_E"]
            chosen_on["T_E"] = "validation"
            at_edge["T_E"] = values["T_E"] in (min(hp.TEMPERATURE_GRID), max(hp.TEMPERATURE_GRID))
        if fit["weights"] is not None:
            values["weights"] = list(fit["weights"])
            chosen_on["weights"] = "validation"
        p = fit["p"]
        if "theta" in todo:
            values["theta"], tab = fit["theta"], fit["theta_table"]
            chosen_on["theta"] = "validation"
            at_edge["theta"] = values["theta"] in (min(theta_grid), max(theta_grid))
            candidates.append(tab.assign(hparam="theta", value=tab["theta"]).drop(columns="theta"))
        if "delta" in todo:
            values["delta"] = hp.select_delta(sbar, known_keep)
            chosen_on["delta"] = "validation"
        dists = {"p_E": p_e_raw, "p_E_calibrated": calibrated_pe(p_e_raw, logits, values["T_E"] or 1.0),
                 "p_A": p_a if source != "fe" else None, "combined": p}
    table = pd.concat(candidates, ignore_index=True) if candidates else pd.DataFrame(columns=["hparam", "value"])
    table.insert(0, "hparam", table.pop("hparam"))
    table.insert(1, "value", table.pop("value"))
    table["chosen"] = [values.get(h) is not None and np.isclose(v, values[h]) for h, v in zip(table["hparam"],
                                                                                              table["value"])]
    table.to_csv(out_candidates, sep="\t", index=False)
    if out_calibration:  # empty tables when there is no validation video
        _write_calibration(dists, val_t["label"].to_numpy() if dists else np.zeros(0, np.int64),
                           {"p_E": 1.0, "p_E_calibrated": values["T_E"] or 1.0, "p_A": values["tau"]},
                           out_calibration, out_reliability)
    record = {"method": method, "values": values, "chosen_on": chosen_on, "n_val": int(len(val_t)),
              "at_grid_edge": at_edge, "accept": accept or {"rule": "threshold", "min_accept": 0.0},
              "combine": rule if source == "both" else source,
              "rule": {"theta": f"smallest of {sorted(theta_grid)} with validation precision >= {target_precision}, "
                                "chosen again in every round for that round's encoders",
                       "weights": "(alpha, beta) of the log-linear pool with the lowest validation log-loss, "
                                  "refitted in every round",
                       "tau": f"lowest validation log-loss of p_A over {list(tau_grid)}",
                       "delta": f"keeps {known_keep} of the (known-class) validation videos",
                       "rounds": "best validation top-1 of f_E over rounds 1..pseudo.rounds (ties: fewer)",
                       "T_E": "lowest validation log-loss of softmax(logits / T_E), refitted for each round's f_E"}}
    Path(out).write_text(json.dumps(record, indent=2))
    log(f"{method}: " + ", ".join(f"{k}={v} ({chosen_on[k]})" for k, v in values.items())
        + f"; rounds: {chosen_on['rounds']}; {len(val_t)} validation videos")


def _write_calibration(dists: dict, labels: np.ndarray, temps: dict, out: str, out_reliability: str | None) -> None:
    """calibration.tsv (one row per distribution: temperature, n, top1, ece, nll) and reliability.tsv."""
    from finepseudo.stats import expected_calibration_error, nll, reliability_table

    rows, rel = [], []
    for name, q in dists.items():
        if q is None:
            continue
        q = np.asarray(q, np.float64)
        rows.append({"distribution": name, "temperature": temps.get(name), "n": len(labels),
                     "top1": round(100.0 * float((q.argmax(1) == labels).mean()), 4) if len(labels) else np.nan,
                     "ece": round(expected_calibration_error(q, labels), 6), "nll": round(nll(q, labels), 6)})
        rel.append(reliability_table(q, labels).assign(distribution=name))
    cols = ["distribution", "temperature", "n", "top1", "ece", "nll"]
    pd.DataFrame(rows, columns=cols).to_csv(out, sep="\t", index=False)
    if out_reliability:
        rcols = ["distribution", "bin", "lo", "hi", "count", "confidence", "accuracy"]
        table = pd.concat(rel, ignore_index=True)[rcols] if rel else pd.DataFrame(columns=rcols)
        table.to_csv(out_reliability, sep="\t", index=False)


def pseudo_label_step(*, fe: str, fa: str | None, labeled: str, unlabeled: str, classes: str, shards: list[str],
                      out: str, source: str, hparams: str, align: dict, clips_per_video: int,
                      device: str, threads: int, log: Log, val: str | None = None, calibrate: bool = False,
                      accept: dict | None = None, out_info: str | None = None, rule: str = "average",
                      theta_grid: list[float] | None = None, target_precision: float = 0.8) -> None:
    """Pseudo-labels for the whole unlabeled pool from the frozen previous-round encoders.

    tau and delta come from ``hparams`` (round 0's choice on validation, or config). Then this round's
    encoders are fitted on ``val`` (:func:`fit_on_validation`): p_E's temperature (``calibrate``), the pool
    weights (``rule`` loglinear) and, where hparams chose theta on validation, theta again, for this
    round's combined confidence (a theta chosen on round 0's encoders does not fit a later round's). The
    unlabeled videos are then combined, thresholded (``accept``: see
    :func:`finepseudo.pseudo.pseudolabel.accept_mask`) and, in the open world, filtered. ``out_info``
    (JSON): everything this round used, with each branch's validation top-1 and their agreement."""
    setup_torch(threads, 0)
    dev = resolve_device(device)
    names = read_classes(classes)
    record = json.loads(Path(hparams).read_text())
    hpv = record["values"]
    theta, tau, delta = hpv["theta"], hpv["tau"], hpv["delta"]
    choose_theta = record["chosen_on"].get("theta") == "validation"
    pool = pd.read_csv(unlabeled, sep="\t", usecols=["video"], dtype={"video": str})
    info: dict = {"theta": theta, "tau": tau, "delta": delta, "T_E": None, "weights": None, "source": source,
                  "combine": rule if source == "both" else source}
    val_t = pd.read_csv(val, sep="\t", dtype={"video": str}) if val is not None else pd.DataFrame()
    fit = None
    if len(val_t) and (calibrate or choose_theta or (source == "both" and rule == "loglinear")):
        p_e_raw, logits, sbar, val_t = _predict(fe=fe, fa=fa, gallery=labeled, table=val_t, shards=shards,
                                                align=align, clips_per_video=clips_per_video, dev=dev,
                                                num_classes=len(names), log=log, what="validation")
        p_a = softmax(sbar / tau) if sbar is not None else None
        fit = fit_on_validation(p_e_raw if source != "fa" else None, logits, p_a if source != "fe" else None,
                                val_t["label"].to_numpy(), source=source, rule=rule, calibrate=calibrate,
                                choose_theta=choose_theta, theta=theta, theta_grid=theta_grid or [theta],
                                target_precision=target_precision)
        theta = fit["theta"]
        info.update({"theta": theta, "T_E": fit["T_E"], "weights": fit["weights"], "n_val": fit["n_val"],
                     "theta_chosen_on": "validation, this round" if choose_theta else "config",
                     "val_top1": fit["val_top1"], "val_agreement": fit.get("val_agreement")})
        if fit["theta_table"] is not None:
            info["theta_candidates"] = fit["theta_table"].to_dict("records")
    elif len(val_t) == 0 and (calibrate or choose_theta):
        log("no validation videos: round 0's theta is kept and p_E is not calibrated")
    if pool.empty:
        table = pseudo_label_table([], None, None, None, source="fe", theta=theta)
    else:
        p_e, logits, sbar, pool = _predict(fe=fe, fa=fa, gallery=labeled, table=pool, shards=shards, align=align,
                                           clips_per_video=clips_per_video, dev=dev, num_classes=len(names),
                                           log=log, what="unlabeled")
        p_e = calibrated_pe(p_e, logits, info["T_E"])
        p_a = softmax(sbar / tau) if sbar is not None else None
        table = pseudo_label_table(pool["video"].tolist(), p_e, p_a, sbar, source=source, theta=theta, delta=delta,
                                   accept=accept, info=info, rule=rule,
                                   weights=tuple(info["weights"]) if info["weights"] else None)
    table.to_csv(out, sep="\t", index=False)
    info["accepted"] = int(table["accepted"].sum())
    info["pool"] = int(len(table))
    if out_info:
        Path(out_info).write_text(json.dumps(info, indent=2))
    log(f"{len(table)} unlabeled videos: {info['accepted']} accepted (theta={theta}, tau={tau}, T_E={info['T_E']}, "
        f"weights={info['weights']}, source={source}, combine={info['combine']}, rule={info.get('rule', 'threshold')}, "
        f"min_accept used: {info.get('min_accept_used', False)}), {int(table['rejected_novel'].sum())} rejected as "
        f"novel (delta={delta}); validation top-1 {info.get('val_top1')}")


def training_set(labeled: str, pseudo: str) -> pd.DataFrame:
    """Labeled videos (ground truth) plus accepted pseudo-labeled videos: columns video, label, source and
    confidence (the pseudo-label's; empty for labeled videos)."""
    lab = pd.read_csv(labeled, sep="\t", dtype={"video": str})[["video", "label"]].assign(source="labeled")
    ps = pd.read_csv(pseudo, sep="\t", dtype={"video": str})
    acc = ps.loc[ps["accepted"].astype(bool), ["video", "label", "confidence"]].assign(source="pseudo")
    return pd.concat([lab, acc], ignore_index=True)


def retrain_fe_step(*, fe: str, labeled: str, pseudo: str, shards: list[str], out_model: str, out_history: str,
                    recipe: dict, seed: int, device: str, threads: int, log: Log, init: str | None = None,
                    init_seed: int | None = None, workers: int = 0) -> None:
    """Train f_E of round r with cross-entropy on labeled + accepted pseudo-labeled videos.

    recipe (config ``pseudo.fe``): ``init`` ``fixed`` (start again from the warm-up's initialisation:
    ``init`` is the self-supervised checkpoint or None for the seeded random init of ``init_seed``, the
    paper's practice, which limits confirmation bias) or ``previous`` (fine-tune ``fe``, round r-1's f_E);
    ``steps`` optimiser steps; ``lr`` peak learning rate; ``labeled_share`` share of labeled videos in
    every batch (0: uniform over all); ``weight`` ``none`` or ``confidence`` (a pseudo-labeled video's loss
    weight is its pseudo-label confidence, a labeled video's is 1)."""
    from finepseudo.models.steps import init_fe_model
    from finepseudo.models.distributed import train_classifier_ddp
    from finepseudo.resume import for_output
    from finepseudo.models.train import load_checkpoint, save_checkpoint

    setup_torch(threads, seed)
    dev = resolve_device(device)
    prev, info = load_checkpoint(fe, dev)
    cfg = info["metadata"]["fe"]
    if recipe["init"] == "fixed":
        if init_seed is None:
            raise ValueError("pseudo.fe.init is 'fixed' but no initialisation seed was given")
        net = init_fe_model(cfg, info["num_classes"], init_seed, init, **info.get("model_kwargs", {}))
        start = f"the warm-up's initialisation ({'self-supervised' if init else 'random, seed ' + str(init_seed)})"
    elif recipe["init"] == "previous":
        net, start = prev, f"round r-1's f_E ({fe})"
    else:
        raise ValueError(f"config key pseudo.fe.init must be 'fixed' or 'previous', got {recipe['init']!r}")
    table = training_set(labeled, pseudo)
    frames, table = load_videos(shards, table, log, "labeled + pseudo-labeled")
    is_lab = (table["source"] == "labeled").to_numpy()
    weight = None
    if recipe.get("weight", "none") == "confidence":
        weight = np.where(is_lab, 1.0, table["confidence"].fillna(1.0).to_numpy(np.float64))
    elif recipe.get("weight", "none") != "none":
        raise ValueError(f"config key pseudo.fe.weight must be 'none' or 'confidence', got {recipe['weight']!r}")
    log(f"train f_E on {int(is_lab.sum())} labeled + {int((~is_lab).sum())} pseudo-labeled videos from {start}: "
        f"{recipe['steps']} steps, lr={recipe['lr']}, labeled share per batch {recipe.get('labeled_share', 0)}, "
        f"weight={recipe.get('weight', 'none')}")
    ckpt = for_output(out_model, step="retrain_fe", log=log, code=__file__,
                      settings={"recipe": recipe, "seed": seed, "init_seed": init_seed, "device": dev,
                                "threads": threads},
                      inputs={"fe": fe, "labeled": labeled, "pseudo": pseudo, "shards": shards, "init": init})
    t0 = time.time()
    history = train_classifier_ddp(net, frames, table["label"].to_numpy(np.int64).copy(),
                                   world_size=int(cfg.get("gpus", 1)), epochs=0,
                                   steps=int(recipe["steps"]), batch_size=cfg["batch_size"], lr=recipe["lr"],
                                   weight_decay=cfg["weight_decay"], clip_frames=cfg["clip_frames"], seed=seed,
                                   device=dev, augment=cfg.get("augment") or None, log=log, sample_weight=weight,
                                   labeled_mask=is_lab, labeled_share=float(recipe.get("labeled_share", 0.0)),
                                   workers=workers, checkpoint=ckpt)
    pd.DataFrame(history).to_csv(out_history, sep="\t", index=False)
    meta = {**info["metadata"], "seed": seed, "n_train": len(table), "n_pseudo": int((~is_lab).sum()),
            "recipe": recipe, "seconds": round(time.time() - t0, 1), "env": environment()}
    save_checkpoint(out_model, net, arch=info["arch"], num_classes=info["num_classes"],
                    model_kwargs=info.get("model_kwargs"), metadata=meta)
    ckpt.clear()


def retrain_fa_step(*, fa: str, labeled: str, pseudo: str, shards: list[str], out_model: str, out_history: str,
                    align: dict, loss: str, epochs: int, seed: int, device: str, threads: int, log: Log) -> None:
    """Continue AVML of f_A(r-1) + f_S on labeled + accepted videos, re-mining the hardest negatives
    with all-pairs DTW over the current embeddings."""
    setup_torch(threads, seed)
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
    from finepseudo.resume import for_output

    ckpt = for_output(out_model, step="retrain_fa", log=log, code=__file__,
                      settings={"align": align, "loss": loss, "epochs": epochs, "seed": seed, "device": dev,
                                "threads": threads},
                      inputs={"fa": fa, "labeled": labeled, "pseudo": pseudo, "shards": shards})
    model, score, history = train_avml_ddp(
        model, frames, labels, hard_neg, world_size=int(align.get("gpus", 1)), num_frames=meta["num_frames"],
        epochs=epochs, batch_size=a["batch_size"],
        lr=a["lr"], gamma=align["gamma"], margin=align["margin"], omega=align["omega"],
        use_triplet=loss in ("av", "at"), use_score=loss in ("av", "score"), seed=seed, device=dev, log=log,
        score=score, checkpoint=ckpt, hflip=bool(align.get("hflip", False)))
    pd.DataFrame(history).to_csv(out_history, sep="\t", index=False)
    save_fa(out_model, model.cpu(), score.cpu(), {**meta, "stage": "round", "seed": seed, "env": environment()})
    ckpt.clear()
