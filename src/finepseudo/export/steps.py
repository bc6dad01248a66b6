"""The workflow's export and prediction steps (file in, file out), called by ``workflow/scripts/export_model.py``
and ``predict_videos.py``."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finepseudo.export.card import ExportError, make_card
from finepseudo.device import resolve_device, setup_torch
from finepseudo.models.steps import Log, read_classes

__all__ = ["export_model_step", "predict_videos_step", "config_sha256", "bootstrap_top1"]

N_BOOT = 2000


def config_sha256(config: dict) -> str:
    """SHA-256 of a config as canonical JSON (keys sorted), the card's config digest."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def bootstrap_top1(correct: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """Top-1 (%) of one model on its test videos with a 95 % percentile bootstrap interval over the videos:
    :func:`finepseudo.stats.paired_bootstrap` of the model against an always-wrong one, with one split (its
    two-level bootstrap then resamples videos only) -> (top1, lo, hi)."""
    from finepseudo.stats import paired_bootstrap

    c = np.asarray(correct, dtype=np.float64)
    r = paired_bootstrap([c], [np.zeros_like(c)], n_boot=n_boot, seed=seed)
    return r["diff"], r["lo"], r["hi"]


def _selected(models: list[str], model: str, what: str) -> int:
    """Index of ``model`` (the file the evaluation scored) among the rule's candidate inputs ``models``."""
    real = [os.path.realpath(m) for m in models]
    target = os.path.realpath(model)
    if target not in real:
        raise ExportError(f"{what} names the model {model}, which is none of this export's inputs {models}: the "
                          "evaluation and the export disagree about the model; rerun the evaluation")
    return real.index(target)


def export_model_step(*, dataset: str, method: str, frac: str, seed: int, metrics: str, predictions: str,
                      models: list[str], fa_models: list[str], classes: str, labeled: str, val: str,
                      shards: list[str], hparams: str | None, out: str, frames: dict, eval: dict, align: dict,
                      config: dict, code: dict, description: str, threads: int, log: Log) -> None:
    """Export the f_E whose test predictions the report scores (``metrics``' ``model``: the warm-up's or the round
    chosen on validation) as ``out`` (a folder): its weights, p_E's temperature fitted on validation for this f_E
    (the rounds' procedure), the top-1 with a bootstrap interval over the test videos, and, when ``fa_models``
    are given (methods whose pseudo-labels use phi_A), the f_A + f_S that pseudo-labeled the chosen round with the
    method's tau and the labeled gallery's embeddings. ``fa_models[r - 1]`` is round r's f_A (the AVML model for
    round 1)."""
    from finepseudo.align.steps import embed_table, load_fa
    from finepseudo.data.frames import ffmpeg_version
    from finepseudo.export.model import save_export
    from finepseudo.models.train import load_checkpoint
    from finepseudo.pseudo.steps import fit_pe_temperature, read_hparams
    from finepseudo.runlog import environment

    setup_torch(threads, 0)
    dev = resolve_device(eval["device"])
    names = read_classes(classes)
    m = json.loads(Path(metrics).read_text())
    source = m["model"]
    rnd = m.get("selected_round")
    idx = _selected(models, source, metrics)
    net, info = load_checkpoint(models[idx])
    meta = info["metadata"]
    if info["num_classes"] != len(names):
        raise ExportError(f"{models[idx]} has {info['num_classes']} classes but {classes} lists {len(names)}")
    log(f"{method} frac{frac} seed{seed}: exporting {source}" + (f" (round {rnd}, chosen on validation)" if rnd else ""))

    # p_E's calibration on validation, as each round fits it for its f_E
    t_e, table = fit_pe_temperature(fe=models[idx], val=val, shards=shards, clips_per_video=eval["clips_per_video"],
                                    dev=dev, log=log, num_classes=len(names))
    n_val = len(pd.read_csv(val, sep="\t", usecols=["video"]))
    if n_val:
        nll = dict(zip(table["temperature"], table["val_nll"]))
        calibration = {"temperature": t_e, "fitted_on": f"validation split ({n_val} videos): lowest NLL of "
                       "softmax(mean clip logits / T) over a grid of 0.25-64, as the pseudo-labeling rounds fit it",
                       "val_nll": nll[t_e], "val_nll_at_1": nll.get(1.0)}
    else:
        calibration = {"temperature": None, "fitted_on": "not calibrated: the split has no validation video "
                       "(hparams.val_per_class 0); probabilities are the evaluation's p_E"}

    # the report's figure: test top-1 of this model, with an interval over its test videos
    pred = pd.read_csv(predictions, sep="\t", dtype={"video": str})
    correct = (pred["pred"] == pred["label"]).to_numpy()
    top1, lo, hi = bootstrap_top1(correct)
    if abs(top1 - m["top1"]) > 1e-9:
        raise ExportError(f"{predictions} gives top-1 {top1} but {metrics} says {m['top1']}: rerun the evaluation")

    card = make_card(dataset=dataset, method=method, classes=names, arch=info["arch"],
                     model_kwargs=info.get("model_kwargs"), frames_per_video=frames["num_frames"],
                     frame_size=frames["size"], resize=frames["resize"], clip_frames=meta["fe"]["clip_frames"],
                     clips_per_video=eval["clips_per_video"], batch_size=eval["batch_size"], label_percent=float(frac),
                     seed=seed, description=description)
    card["split"].update(labeled_videos=int(meta.get("n_train", 0)), validation_videos=n_val)
    card["model"].update(parameters=int(sum(p.numel() for p in net.parameters())), selected_round=rnd, source=source,
                         training={k: meta[k] for k in ("n_train", "n_pseudo", "seed", "init", "fe", "recipe")
                                   if k in meta})
    card["calibration"] = calibration
    card["evaluation"] = {"split": "test", "videos": int(len(pred)), "top1": float(m["top1"]), "top1_ci95": [lo, hi],
                          "mean_class_accuracy": m.get("mean_class_accuracy"),
                          "interval": f"95 % percentile bootstrap over the {len(pred)} test videos ({N_BOOT} replicates, "
                                      "seed 0)",
                          "predictions": predictions}
    card["provenance"] = {"config": config, "config_sha256": config_sha256(config), "code": code}
    card["software"] = {**environment(), "ffmpeg": ffmpeg_version(), "safetensors": _version("safetensors")}
    fa = score = emb = gal_labels = None
    if fa_models:
        if rnd is None or not 1 <= rnd <= len(fa_models):
            raise ExportError(f"{metrics} has selected_round {rnd!r}, but f_A models exist for rounds 1-{len(fa_models)}")
        fa_path = fa_models[rnd - 1]
        fa, score, fa_meta = load_fa(fa_path)
        tau = read_hparams(hparams)["tau"]
        gal = pd.read_csv(labeled, sep="\t", dtype={"video": str})
        emb, gal = embed_table(fa, fa_meta, shards, gal, dev, log, "gallery")
        gal_labels = gal["label"].to_numpy(np.int64)
        card["alignability"] = {
            "weights": "", "arch": dict(fa_meta["arch"]), "num_frames": int(fa_meta["num_frames"]),
            "gamma": float(align["gamma"]), "tau": float(tau), "tau_chosen_on": _chosen_on(hparams, "tau"),
            "source": fa_path, "gallery_videos": int(len(gal)), "gallery": gal["video"].tolist(),
            "p_A": "Sbar_c = mean over the gallery videos of class c of sigmoid(f_S(D)), D = soft-DTW_gamma(1 - cos) / "
                   "(T + T) between f_A's frame embeddings; p_A = softmax(Sbar / tau)",
        }
        log(f"phi_A: f_A {fa_path}, tau {tau}, gallery of {len(gal)} labeled videos")
    out_dir = Path(out)
    save_export(out_dir, card, net.cpu(), fa=fa, score=score, gallery_embeddings=emb, gallery_labels=gal_labels)
    log(f"wrote {out_dir}: top-1 {top1:.1f} % [{lo:.1f}, {hi:.1f}], T_E {calibration['temperature']}, "
        f"files {sorted(card['files'])}")


def _chosen_on(hparams: str, key: str) -> str:
    return json.loads(Path(hparams).read_text())["chosen_on"].get(key, "config")


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except Exception:  # noqa: BLE001 - reported as absent
        return "not installed"


def predict_videos_step(*, export: str, videos_dir: str, ranges: str | None, out: str, page: str, name: str,
                        batch_size: int | None, device: str, threads: int, workers: int, log: Log) -> None:
    """Predict every video of ``videos_dir`` (:func:`finepseudo.export.videos.list_videos`) with the export folder
    ``export``: the predictions table ``out`` and the page ``page``, streamed; progress in the log."""
    from finepseudo.export.model import ExportedModel
    from finepseudo.export.stream import run_prediction
    from finepseudo.export.videos import list_videos, read_ranges, with_ranges

    setup_torch(threads, 0)
    model = ExportedModel.load(export, device=device)
    items = with_ranges(list_videos(videos_dir), read_ranges(ranges) if ranges else None)
    log(f"predicting {len(items)} videos of {videos_dir} with {export} ({model.card['method']}, "
        f"{'f_E + phi_A' if model.has_alignability else 'f_E'}), device {model.device}")
    t0 = time.perf_counter()
    state = {"n": 0}

    def progress(row: dict) -> None:
        state["n"] += 1
        n = state["n"]
        if row["status"] == "failed":
            log(f"[predict] FAILED {row['video']}: {row['reason']}")
        if n % 50 == 0 or n == len(items):
            rate = n / max(time.perf_counter() - t0, 1e-9)
            log(f"[predict] {n}/{len(items)} videos, {rate:.1f} videos/s, {(len(items) - n) / rate:.0f} s left")

    counts = run_prediction(model, items, out, page=page, title=name, batch_size=batch_size, workers=workers,
                            on_row=progress)
    log(f"wrote {out} and {page}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
