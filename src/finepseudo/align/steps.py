"""Workflow steps of the alignability branch (file in, file out), called by the rules' scripts:
GITDL pre-training, DTW pair mining, AVML training, phi_A predictions and pair verification."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from finepseudo.align import dtw
from finepseudo.align.alignability import FrameEncoder, ScoreHead, class_alignability, pairwise_distance
from finepseudo.align.train import embed_videos, eval_indices, pretrain_gitdl_ddp, train_avml_ddp
from finepseudo.data.frames import sample_indices
from finepseudo.resume import for_output
from finepseudo.runlog import environment
from finepseudo.device import resolve_device, setup_torch
from finepseudo.models.steps import Log, load_videos, read_classes

__all__ = ["pretrain_gitdl_step", "mine_pairs_step", "train_alignability_step", "predict_alignability_step",
           "pair_verification_step", "average_precision", "save_fa", "load_fa", "embed_table"]


def save_fa(path: str, model: FrameEncoder, score: ScoreHead | None, meta: dict) -> None:
    """Save f_A (and the score head) as tensors plus JSON-safe metadata, loadable with ``weights_only=True``."""
    meta = json.loads(json.dumps(meta, default=_json_default))
    torch.save({"fa": model.state_dict(), "fs": None if score is None else score.state_dict(), "meta": meta}, path)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"f_A metadata value of type {type(x).__name__} cannot be saved: {x!r}")


def load_fa(path: str) -> tuple[FrameEncoder, ScoreHead | None, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    m = ckpt["meta"]["arch"]
    model = FrameEncoder(**m)
    model.load_state_dict(ckpt["fa"])
    score = None
    if ckpt["fs"] is not None:
        score = ScoreHead()
        score.load_state_dict(ckpt["fs"])
        score.eval()
    return model.eval(), score, ckpt["meta"]


def _arch(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("dim", "width", "layers", "pool")} | {"clip_norm": bool(cfg.get("clip_norm", False))}


def pretrain_gitdl_step(*, manifest: str, shards: list[str], out_model: str, out_history: str, cfg: dict,
                        seed: int, device: str, threads: int, log: Log) -> None:
    """GITDL on every training video. Only the ``video`` and ``split`` columns of the manifest are
    read: no label reaches this step."""
    setup_torch(threads, seed)
    dev = resolve_device(device)
    vids = pd.read_csv(manifest, sep="\t", usecols=["video", "split"], dtype={"video": str})
    train = vids[vids["split"] == "train"][["video"]]
    frames, train = load_videos(shards, train, log, "train")
    g = cfg["gitdl"]
    log(f"GITDL pre-training of f_A on {len(train)} train videos (labels unused), device={dev}")
    ckpt = for_output(out_model, step="pretrain_gitdl", log=log, code=__file__,
                      settings={"cfg": cfg, "seed": seed, "device": dev, "threads": threads},
                      inputs={"manifest": manifest, "shards": shards})
    if g["epochs"] == 0 or g.get("steps") == 0:
        torch.manual_seed(seed)
        model, history = FrameEncoder(**_arch(cfg)).eval(), []
        log("gitdl.epochs or gitdl.steps is 0: f_A keeps its seeded random initialisation (the no-GITDL ablation)")
    else:
        model, history = pretrain_gitdl_ddp(
            frames, world_size=int(cfg.get("gpus", 1)), num_frames=cfg["num_frames"], **_arch(cfg),
            epochs=g["epochs"], steps=g.get("steps"), batch_size=g["batch_size"], lr=g["lr"], tau=g["tau"],
            sigma=g["sigma"], seed=seed, device=dev, log=log, checkpoint=ckpt, hflip=bool(cfg.get("hflip", False)))
    pd.DataFrame(history, columns=["epoch", "loss", "items_per_s", "seconds", "eta_s"]).to_csv(
        out_history, sep="\t", index=False)
    save_fa(out_model, model.cpu(), None, {"arch": _arch(cfg), "stage": "gitdl", "seed": seed, "gitdl": g,
                                            "num_frames": cfg["num_frames"], "env": environment()})
    ckpt.clear()


def mine_pairs_step(*, model: str, labeled: str, shards: list[str], out_triplets: str, out_distances: str,
                    backend: str, threads: int, device: str, log: Log) -> None:
    """All-pairs hard DTW between the labeled videos' f_A embeddings (CuPy on a GPU); for each anchor
    the hardest positive (same class, largest distance) and hardest negative (other class, smallest)."""
    setup_torch(threads, 0)
    dev = resolve_device(device)
    fa, _, meta = load_fa(model)
    table = pd.read_csv(labeled, sep="\t", dtype={"video": str})
    frames, table = load_videos(shards, table, log, "labeled")
    emb = embed_videos(fa.to(dev), frames, num_frames=meta["num_frames"], device=dev)
    t0 = time.time()
    d = pairwise_distance(emb, emb, gamma=0.0, backend=backend)
    secs = time.time() - t0
    n, t = emb.shape[:2]
    log(f"all-pairs DTW over {n} labeled videos ({n * n} pairs of {t}x{t}) in {secs:.2f} s, backend={backend}")
    labels = table["label"].to_numpy()
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    dn = np.where(same | np.eye(n, dtype=bool), np.inf, d)
    dp = np.where(same, d, -np.inf)
    neg = dn.argmin(1)
    rows = []
    for i in range(n):
        has_pos = same[i].any()
        p = int(dp[i].argmax()) if has_pos else i
        rows.append({"anchor": table["video"][i], "label": int(labels[i]),
                     "positive": table["video"][p], "d_pos": round(float(d[i, p]), 6),
                     "negative": table["video"][int(neg[i])], "negative_label": int(labels[neg[i]]),
                     "d_neg": round(float(d[i, neg[i]]), 6)})
    trip = pd.DataFrame(rows)
    trip.to_csv(out_triplets, sep="\t", index=False)
    np.savez_compressed(out_distances, distances=d.astype(np.float32), videos=table["video"].to_numpy(str),
                        labels=labels, seconds=secs)
    violated = float((trip["d_pos"] >= trip["d_neg"]).mean()) if n else 0.0
    log(f"{len(trip)} triplets; share with hardest positive farther than hardest negative: {violated:.2f}")


def train_alignability_step(*, model: str, labeled: str, triplets: str, shards: list[str], out_model: str,
                            out_history: str, cfg: dict, loss: str, seed: int, device: str, threads: int,
                            log: Log) -> None:
    """AVML: L_AV = L_AT + omega L_Score on the labeled videos, from the GITDL f_A.
    ``loss`` is ``av`` (both terms), ``at`` (L_AT only) or ``score`` (L_Score only)."""
    setup_torch(threads, seed)
    dev = resolve_device(device)
    fa, _, meta = load_fa(model)
    table = pd.read_csv(labeled, sep="\t", dtype={"video": str})
    frames, table = load_videos(shards, table, log, "labeled")
    trip = pd.read_csv(triplets, sep="\t", dtype={"anchor": str, "negative": str}).set_index("anchor")
    pos = {v: i for i, v in enumerate(table["video"])}
    missing = [v for v in table["video"] if v not in trip.index or trip.at[v, "negative"] not in pos]
    if missing:  # a mined negative must exist: never fall back to the anchor itself
        raise ValueError(f"triplets {triplets} do not match the labeled videos of {labeled} ({len(missing)} "
                         f"without a usable mined negative, e.g. {missing[:3]}): delete it and rerun mine_pairs")
    hard_neg = np.array([pos[trip.at[v, "negative"]] for v in table["video"]])
    a = cfg["avml"]
    log(f"AVML ({loss}) on {len(table)} labeled videos: gamma={cfg['gamma']} margin={cfg['margin']} "
        f"omega={cfg['omega']}, device={dev}")
    ckpt = for_output(out_model, step="train_alignability", log=log, code=__file__,
                      settings={"cfg": cfg, "loss": loss, "seed": seed, "device": dev, "threads": threads},
                      inputs={"model": model, "labeled": labeled, "triplets": triplets, "shards": shards})
    fa, score, history = train_avml_ddp(
        fa, frames, table["label"].to_numpy(), hard_neg, world_size=int(cfg.get("gpus", 1)),
        num_frames=cfg["num_frames"], epochs=a["epochs"],
        batch_size=a["batch_size"], lr=a["lr"], gamma=cfg["gamma"], margin=cfg["margin"], omega=cfg["omega"],
        use_triplet=loss in ("av", "at"), use_score=loss in ("av", "score"), seed=seed, device=dev, log=log,
        checkpoint=ckpt, hflip=bool(cfg.get("hflip", False)))
    pd.DataFrame(history).to_csv(out_history, sep="\t", index=False)
    save_fa(out_model, fa.cpu(), score.cpu(), {**meta, "stage": "avml", "loss": loss, "avml": a, "seed": seed,
                                               "gamma": cfg["gamma"], "env": environment()})
    ckpt.clear()


def embed_table(model: FrameEncoder, meta: dict, shards: list[str], table: pd.DataFrame, dev: str, log: Log,
                what: str):
    """f_A's frame embeddings of the videos of ``table`` that have frames (``meta["num_frames"]`` each, see
    :func:`~finepseudo.align.train.embed_videos`), and the table of those videos; ``what`` names the set in
    the log."""
    frames, table = load_videos(shards, table, log, what)
    return embed_videos(model.to(dev), frames, num_frames=meta["num_frames"], device=dev), table


def predict_alignability_step(*, model: str, labeled: str, queries: dict[str, str], classes: str,
                              shards: list[str], out: dict[str, str], cfg: dict, device: str, threads: int,
                              log: Log) -> None:
    """phi_A: class-mean alignability of each query video against the labeled gallery; p_A tables.
    Query tables are read for their ``video`` column only (no label is used)."""
    setup_torch(threads, 0)
    dev = resolve_device(device)
    fa, score, meta = load_fa(model)
    names = read_classes(classes)
    gal = pd.read_csv(labeled, sep="\t", dtype={"video": str})
    g_emb, gal = embed_table(fa, meta, shards, gal, dev, log, "gallery")
    for name, path in queries.items():
        q = pd.read_csv(path, sep="\t", usecols=["video"], dtype={"video": str})
        if q.empty:
            pd.DataFrame(columns=["video", "pred", "confidence", "max_sbar"]).to_csv(out[name], sep="\t", index=False)
            continue
        q_emb, q = embed_table(fa, meta, shards, q, dev, log, name)
        d = pairwise_distance(q_emb, g_emb, gamma=cfg["gamma"], backend=cfg["dtw_backend"])
        sbar, p = class_alignability(d, gal["label"].to_numpy(), len(names), score, cfg["tau"])
        df = pd.DataFrame({"video": q["video"], "pred": p.argmax(1), "confidence": p.max(1).round(6),
                           "max_sbar": sbar.max(1).round(6)})
        df = pd.concat([df, pd.DataFrame(p.round(6), columns=[f"p_{c}" for c in range(len(names))]),
                        pd.DataFrame(sbar.round(6), columns=[f"sbar_{c}" for c in range(len(names))])], axis=1)
        df.to_csv(out[name], sep="\t", index=False)
        log(f"p_A for {len(df)} {name} videos against a gallery of {len(gal)}")


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """AP of ranking pairs by ``scores`` (higher = more likely positive), ties broken stably."""
    order = np.argsort(-scores, kind="stable")
    pos = positive[order].astype(np.float64)
    if pos.sum() == 0:
        return float("nan")
    precision = np.cumsum(pos) / np.arange(1, len(pos) + 1)
    return float((precision * pos).sum() / pos.sum())


def _frame_phases(phases: list[str], start: int, end: int, num_stored: int, num_frames: int) -> list[str]:
    """Phase label of each frame f_A sees: stored frames sampled over [start, end), then f_A's subset."""
    stored = sample_indices(len(phases), num_stored, start, end)
    return [phases[i] for i in stored[eval_indices(num_stored, num_frames)]]


def pair_verification_step(*, models: dict[str, str], test: str, manifest: str, shards: list[str],
                           phases: str | None, out_table: str, out_phase: str, out_example: str, cfg: dict,
                           device: str, threads: int, log: Log) -> None:
    """Same-class vs different-class verification over every pair of test videos (the paper's Fig. 1):
    average precision of per-timestamp cosine, pooled cosine, DTW cost and the learned alignability
    score, for each f_A in ``models`` (e.g. after GITDL and after AVML). Test labels are used only
    as the verification ground truth here. On SynthDive also the share of DTW-aligned frame pairs
    that fall in the same action phase, against the per-timestamp (identity) alignment."""
    setup_torch(threads, 0)
    dev = resolve_device(device)
    # the test frames are read once and shared by every f_A stage
    frames, tab = load_videos(shards, pd.read_csv(test, sep="\t", dtype={"video": str}), log, "test")
    if phases:
        ph = json.loads(Path(phases).read_text())
        man = pd.read_csv(manifest, sep="\t", dtype={"video": str}).set_index("video")
    rows, phase_rows, example = [], [], None
    iu = None
    for stage, path in models.items():
        fa, score, meta = load_fa(path)
        emb = embed_videos(fa.to(dev), frames, num_frames=meta["num_frames"], device=dev)
        n = len(emb)
        iu = np.triu_indices(n, 1)
        labels = tab["label"].to_numpy()
        same = (labels[:, None] == labels[None, :])[iu]
        per_ts = np.einsum("itf,jtf->ijt", emb, emb).mean(-1)[iu]
        pooled = emb.mean(1)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled_cos = (pooled @ pooled.T)[iu]
        d_hard = pairwise_distance(emb, emb, gamma=0.0, backend=cfg["dtw_backend"])[iu]
        measures = {"per-timestamp cosine": per_ts, "temporally pooled cosine": pooled_cos, "DTW cost": -d_hard}
        if score is not None:
            d_soft = pairwise_distance(emb, emb, gamma=cfg["gamma"], backend=cfg["dtw_backend"])[iu]
            with torch.no_grad():
                measures["learned alignability score"] = score.prob(torch.as_tensor(d_soft).float()).numpy()
        for name, s in measures.items():
            rows.append({"f_A": stage, "measure": name, "average_precision": round(average_precision(s, same), 4),
                         "pairs": int(len(s)), "positives": int(same.sum())})
        if phases:
            num_stored = int(frames.shape[1])
            fr = [_frame_phases(ph[v], int(man.at[v, "start_frame"]), int(man.at[v, "end_frame"]), num_stored,
                                meta["num_frames"]) for v in tab["video"]]
            agree_dtw, agree_id = [], []
            for i, j in zip(*iu):
                if labels[i] != labels[j]:
                    continue
                c = 1.0 - emb[i] @ emb[j].T
                path_ij, _ = dtw.dtw_path(c)
                agree_dtw.append(np.mean([fr[i][a] == fr[j][b] for a, b in path_ij]))
                agree_id.append(np.mean([fr[i][t] == fr[j][t] for t in range(len(fr[i]))]))
                if example is None and stage == list(models)[-1] and len(agree_dtw) == 1:
                    idx = eval_indices(num_stored, meta["num_frames"])
                    example = {"cost": c, "path": np.array(path_ij), "frames_u": frames[i, idx].numpy(),
                               "frames_v": frames[j, idx].numpy(), "videos": np.array([tab["video"][i], tab["video"][j]]),
                               "phases_u": np.array(fr[i]), "phases_v": np.array(fr[j])}
            phase_rows.append({"f_A": stage, "alignment": "DTW path", "same_phase_share": round(float(np.mean(agree_dtw)), 4),
                               "pairs": len(agree_dtw)})
            phase_rows.append({"f_A": stage, "alignment": "per-timestamp (identity)",
                               "same_phase_share": round(float(np.mean(agree_id)), 4), "pairs": len(agree_id)})
    pd.DataFrame(rows).to_csv(out_table, sep="\t", index=False)
    pd.DataFrame(phase_rows, columns=["f_A", "alignment", "same_phase_share", "pairs"]).to_csv(
        out_phase, sep="\t", index=False)
    np.savez_compressed(out_example, **(example or {}))
    log("pair verification:\n" + pd.DataFrame(rows).to_string(index=False))
