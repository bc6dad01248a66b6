"""The model card of an export: ``model.json`` (read by :class:`finepseudo.export.model.ExportedModel`) and
``README.md`` (the same facts for a person).

The card says everything needed to use the model without the workflow: the architecture and its class
vocabulary, how frames are prepared (frames per video, clips per video, frame size, resize mode,
normalisation), p_E's calibration temperature, the dataset and split the model was trained on, its test
top-1 with a bootstrap interval, the config and code digests that made it, the software versions, and the
SHA-256 of every weights file. ``card_version`` says which layout this is; a reader refuses a version it does
not know instead of guessing.

Pure functions on dicts and files (no torch), so the card can be read and checked anywhere.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["CARD_VERSION", "CARD_FILE", "MARKDOWN_FILE", "ExportError", "make_card", "validate_card", "read_card",
           "write_card", "card_markdown", "file_sha256"]

#: The card layout this code writes and reads.
CARD_VERSION = 1
CARD_FILE = "model.json"
MARKDOWN_FILE = "README.md"

_NUM = (int, float)
_NONE = type(None)
# dotted key -> allowed types; keys under "alignability" are checked only when it is not null
REQUIRED: dict[str, tuple[type, ...]] = {
    "card_version": (int,),
    "dataset": (str,),
    "method": (str,),
    "split.label_percent": _NUM,
    "split.seed": (int,),
    "model.arch": (str,),
    "model.num_classes": (int,),
    "model.model_kwargs": (dict,),
    "model.weights": (str,),
    "classes": (list,),
    "preprocessing.frames_per_video": (int,),
    "preprocessing.clip_frames": (int,),
    "preprocessing.clips_per_video": (int,),
    "preprocessing.frame_size": (int,),
    "preprocessing.resize": (str,),
    "preprocessing.normalisation.mean": (list,),
    "preprocessing.normalisation.std": (list,),
    "preprocessing.batch_size": (int,),
    "calibration.temperature": (*_NUM, _NONE),
    "evaluation.top1": (*_NUM, _NONE),
    "evaluation.top1_ci95": (list, _NONE),
    "alignability": (dict, _NONE),
    "files": (dict,),
}
ALIGNABILITY_REQUIRED: dict[str, tuple[type, ...]] = {
    "weights": (str,),
    "arch": (dict,),
    "num_frames": (int,),
    "gamma": _NUM,
    "tau": _NUM,
    "gallery_videos": (int,),
}
RESIZE_MODES = ("crop", "squeeze")


class ExportError(ValueError):
    """An export folder cannot be used: the message names the file and what to do."""


def make_card(*, dataset: str, method: str, classes: list[str], arch: str, frames_per_video: int, frame_size: int,
              resize: str, clip_frames: int, clips_per_video: int, batch_size: int, label_percent: float, seed: int,
              model_kwargs: dict | None = None, temperature: float | None = None, alignability: dict | None = None,
              description: str = "") -> dict:
    """A card with every required field: the model, its classes and preprocessing (the workflow's normalisation,
    :data:`finepseudo.models.augment.MEAN` / ``STD``), p_E's ``temperature``, and empty evaluation, provenance and
    file fields, which the export step (or :func:`finepseudo.export.model.save_export` for ``files``) fills in.
    ``alignability``: None, or the phi_A fields (arch, num_frames, gamma, tau, gallery_videos)."""
    from finepseudo.models.augment import MEAN, STD

    return {
        "card_version": CARD_VERSION,
        "description": description,
        "dataset": dataset,
        "method": method,
        "split": {"label_percent": float(label_percent), "seed": int(seed)},
        "model": {"task": "video classification (f_E)", "arch": arch, "num_classes": len(classes),
                  "model_kwargs": dict(model_kwargs or {}), "weights": "", "selected_round": None},
        "classes": [{"index": i, "name": str(n)} for i, n in enumerate(classes)],
        "preprocessing": {
            "frames_per_video": int(frames_per_video), "frame_size": int(frame_size), "resize": resize,
            "pixel_format": "RGB, uint8",
            "frame_sampling": "frames_per_video frames at the centres of equal bins over the video's frames (or its "
                              "frame range), repeated when the video is shorter (finepseudo.data.frames.sample_indices)",
            "clip_frames": int(clip_frames), "clips_per_video": int(clips_per_video),
            "clip_sampling": "clip k takes clip_frames frames evenly spaced over the stored frames at phase "
                             "(k + 0.5) / clips_per_video of the stride (finepseudo.models.augment.eval_indices); "
                             "p_E is the softmax averaged over the clips",
            "normalisation": {"scale": 1 / 255, "mean": list(MEAN), "std": list(STD)},
            "input_layout": "(batch, 3, clip_frames, frame_size, frame_size), float32",
            "batch_size": int(batch_size),
        },
        "calibration": {"temperature": temperature,
                        "fitted_on": "not calibrated" if temperature is None else "given"},
        "evaluation": {"top1": None, "top1_ci95": None},
        "alignability": None if alignability is None else {"weights": "", **alignability},
        "files": {},
        "provenance": {},
        "software": {},
    }


def _get(card: dict, dotted: str) -> tuple[bool, Any]:
    node: Any = card
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _type_problems(node: dict, required: dict[str, tuple[type, ...]], prefix: str = "") -> list[str]:
    out = []
    for key, types in required.items():
        found, value = _get(node, key)
        if not found:
            out.append(f"key '{prefix}{key}' is missing")
        elif isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is _NONE else t.__name__ for t in types)
            out.append(f"key '{prefix}{key}' is {type(value).__name__} {value!r:.60}, not {names}")
    return out


def validate_card(card: Any, where: str = CARD_FILE) -> dict:
    """Check a card's version, keys, types and the facts that must agree (class count, files listed);
    return it, or raise :class:`ExportError` naming ``where`` and every problem."""
    if not isinstance(card, dict):
        raise ExportError(f"{where} is not a model card: it holds a JSON {type(card).__name__}, not an object")
    version = card.get("card_version")
    if version != CARD_VERSION:
        raise ExportError(f"{where}: card_version {version!r} is not one this finepseudo reads (it reads version "
                          f"{CARD_VERSION}): export the model again with this version, or load it with the finepseudo "
                          "version that wrote it")
    problems = _type_problems(card, REQUIRED)
    if not problems:
        n = card["model"]["num_classes"]
        if len(card["classes"]) != n:
            problems.append(f"'classes' lists {len(card['classes'])} classes but model.num_classes is {n}")
        for i, c in enumerate(card["classes"]):
            if not (isinstance(c, dict) and c.get("index") == i and isinstance(c.get("name"), str)):
                problems.append(f"classes[{i}] is {c!r:.60}, not {{'index': {i}, 'name': <text>}}")
                break
        prep = card["preprocessing"]
        if prep["resize"] not in RESIZE_MODES:
            problems.append(f"preprocessing.resize is {prep['resize']!r}, not one of {RESIZE_MODES}")
        for key in ("frames_per_video", "clip_frames", "clips_per_video", "frame_size", "batch_size"):
            if prep[key] < 1:
                problems.append(f"preprocessing.{key} is {prep[key]}, not a positive number")
        for key in ("mean", "std"):
            if len(prep["normalisation"][key]) != 3:
                problems.append(f"preprocessing.normalisation.{key} must hold 3 values (R, G, B)")
        t = card["calibration"]["temperature"]
        if t is not None and not t > 0:
            problems.append(f"calibration.temperature is {t}, not a positive number or null")
        weights = [card["model"]["weights"]]
        al = card["alignability"]
        if al is not None:
            problems += _type_problems(al, ALIGNABILITY_REQUIRED, "alignability.")
            if isinstance(al.get("weights"), str):
                weights.append(al["weights"])
        for name in weights:
            if name not in card["files"]:
                problems.append(f"the weights file {name!r} has no SHA-256 under 'files'")
        for name, digest in card["files"].items():
            if "/" in name or "\\" in name or name.startswith("."):
                problems.append(f"files: {name!r} is not a plain file name in the export folder")
            if not (isinstance(digest, str) and len(digest) == 64):
                problems.append(f"files: the SHA-256 of {name!r} is {digest!r:.70}, not 64 hex digits")
    if problems:
        raise ExportError(f"{where} is not a valid model card (version {CARD_VERSION}): " + "; ".join(problems)
                          + ". Export the model again (snakemake results/report.html writes every export).")
    return card


def read_card(folder: str | Path) -> dict:
    """The validated card of an export folder; errors name the file."""
    folder = Path(folder)
    path = folder / CARD_FILE
    if not folder.is_dir():
        raise ExportError(f"{folder} is not an export folder (no such folder): exports are written to "
                          "results/<dataset>/export/<method>/frac<P>_seed<S>/")
    if not path.is_file():
        raise ExportError(f"{path} not found: {folder} is not an export folder (it must hold {CARD_FILE}, "
                          "written by the workflow's export_model rule)")
    try:
        card = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path} is not valid JSON ({exc}): the card was damaged; export the model again") from None
    return validate_card(card, str(path))


def write_card(folder: str | Path, card: dict) -> None:
    """Validate ``card`` and write ``model.json`` and its Markdown view ``README.md`` into ``folder``."""
    folder = Path(folder)
    validate_card(card, str(folder / CARD_FILE))
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    (folder / MARKDOWN_FILE).write_text(card_markdown(card))


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fmt(x: Any, nd: int = 1) -> str:
    return "–" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def _short(version: str) -> str:
    """'ffmpeg version 5.1.9-0+deb12u1 Copyright ...' -> '5.1.9-0+deb12u1'; other versions unchanged."""
    words = str(version).split()
    return words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else str(version)


def card_markdown(card: dict) -> str:
    """A short Markdown view of the card (the README of the export folder)."""
    m, p, e, c = card["model"], card["preprocessing"], card["evaluation"], card["calibration"]
    sp = card["split"]
    lo, hi = e["top1_ci95"] or (None, None)
    rnd = f", pseudo-labeling round {m['selected_round']} (chosen on validation)" if m.get("selected_round") else ""
    lines = [
        f"# {card['method']} on {card['dataset']} ({_fmt(float(sp['label_percent']), 0)} % labels, split seed "
        f"{sp['seed']})",
        "",
        f"{card.get('description', '')}".strip(),
        "",
        "## Model",
        "",
        f"- f_E: `{m['arch']}`, {m['num_classes']} classes, {m.get('parameters', '?')} parameters, weights "
        f"`{m['weights']}` (safetensors){rnd}",
        f"- test top-1: **{_fmt(e['top1'])} %** (95 % interval {_fmt(lo)}-{_fmt(hi)}, {e.get('interval', '')}) on "
        f"{e.get('videos', '?')} test videos" if e["top1"] is not None else "- test top-1: not evaluated",
        f"- p_E calibration: temperature {_fmt(c['temperature'], 3)} ({c.get('fitted_on', '')})",
    ]
    al = card["alignability"]
    if al:
        lines.append(f"- phi_A: f_A + f_S in `{al['weights']}`, {al['gallery_videos']} labeled gallery videos, "
                     f"{al['num_frames']} frames per video, gamma {al['gamma']}, tau {al['tau']}")
    else:
        lines.append("- phi_A: not exported (this method's pseudo-labels do not use f_A)")
    lines += [
        "",
        "## Preprocessing",
        "",
        f"- decode the video (or its frame range), resize to {p['frame_size']} x {p['frame_size']} "
        f"(`{p['resize']}`: {'short side, then a centre crop' if p['resize'] == 'crop' else 'stretched'}), RGB",
        f"- {p['frames_per_video']} frames per video, uniform over the clip; {p['clips_per_video']} clips of "
        f"{p['clip_frames']} frames each, evenly spaced; softmax averaged over the clips",
        f"- pixels / 255, then (x - {p['normalisation']['mean']}) / {p['normalisation']['std']}",
        "",
        "## Classes",
        "",
        ", ".join(f"{k['index']} {k['name']}" for k in card["classes"]),
        "",
        "## Use",
        "",
        "```bash",
        "finepseudo predict THIS_FOLDER video.mp4 more_videos/ --out predictions.tsv",
        "```",
        "",
        "```python",
        "from finepseudo.export import ExportedModel",
        "model = ExportedModel.load('THIS_FOLDER')",
        "table = model.predict(['video.mp4'])",
        "```",
        "",
        "## Provenance",
        "",
        f"- config sha256 `{card.get('provenance', {}).get('config_sha256', '?')}`",
        "- code digests: " + ", ".join(f"{k} `{v}`" for k, v in card.get("provenance", {}).get("code", {}).items()),
        "- software: " + ", ".join(f"{k} {_short(v)}" for k, v in card.get("software", {}).items()
                                   if k in ("python", "torch", "numpy", "safetensors", "ffmpeg")),
        "- files: " + ", ".join(f"`{k}` sha256 {v[:12]}..." for k, v in card["files"].items()),
        "",
    ]
    return "\n".join(lines)
