"""SynthDive's specification: the classes, the phases, the configuration keys with their defaults and meanings.

- :data:`PHASES`: the phase names written to ``phases.json``;
- :data:`DEFAULT_CLASSES`, :func:`load_diving48_vocab`, :func:`parse_class`, :func:`class_table`: which Diving48
  classes are rendered and what each looks like (take-off, half rotations, position);
- :data:`DEFAULT_CONFIG`, :data:`CONFIG_DOCS`, :data:`STATIC_SCENE`, :data:`TINY_CONFIG` and
  :func:`resolve_config`: the ``synthdive:`` config section.

Standard library only (no numpy, no ffmpeg): the workflow validates a config against these defaults while
Snakemake plans the DAG (:mod:`finepseudo.config`), before any video is rendered.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PHASES: tuple[str, ...] = ("idle", "approach", "takeoff", "flight", "entry", "splash")
"""Phase names written to ``phases.json`` (``idle`` occurs before and after the action)."""

#: Default class subset, as indices into the official Diving48 vocabulary. Chosen so most classes
#: have a sibling differing in one attribute: counts (3/7, 19/24/20/29, 32/34, 41/43),
#: position (7/8, 43/44), twists (7/5, 24/21) and take-off (7/24/43, 8/34/44).
DEFAULT_CLASSES: tuple[int, ...] = (3, 7, 8, 5, 19, 24, 21, 20, 29, 32, 34, 41, 43, 44)

DEFAULT_CONFIG: dict[str, Any] = {
    "classes": None,
    "novel_classes": [],
    "train_per_class": 30,
    "test_per_class": 15,
    "frame_size": 64,
    "fps": 25,
    "fig_scale": 0.5,
    "limb_width": 1.3,
    "noise_sigma": 3.0,
    "speed": [0.8, 1.25],
    "phase_scale": [0.6, 1.7],
    "idle_frames": [0, 8],
    "annotation_margin": [0, 6],
    "phase_frames": {
        "approach": 8,
        "takeoff": 4,
        "flight_base": 5,
        "half_somersault": 5,
        "entry": 3,
        "splash": 6,
    },
    "background": "varied",
    "background_blur": 2.0,
    "background_contrast": 0.3,
    "camera_lag": [0.0, 3.0],
    "zoom": [0.8, 1.25],
    "zoom_drift": 0.15,
    "roll_deg": 4.0,
    "framing": 0.12,
    "mirror": 0.5,
    "view_angle_deg": 20.0,
    "shake_px": 0.5,
    "distractors": [2, 5],
    "movers": [0, 2],
    "lighting": 0.15,
    "colour_jitter": 0.5,
    "body_jitter": 0.12,
    "pose_jitter": 0.12,
    "crf": 17,
}

CONFIG_DOCS: dict[str, str] = {
    "classes": "Diving48 labels (indices into the official vocabulary) of the known classes; "
    "null = DEFAULT_CLASSES (14 classes with one-attribute siblings).",
    "novel_classes": "Diving48 labels of open-world classes rendered only in the train split "
    "(for the unlabeled pool); labels K.. after the known classes, flagged novel in classes.json.",
    "train_per_class": "train videos per class (known and novel).",
    "test_per_class": "test videos per known class.",
    "frame_size": "rendered frame width = height in pixels (even, for yuv420p).",
    "fps": "frame rate written into the mp4 (durations below are in frames).",
    "fig_scale": "standing figure height as a fraction of the frame height at zoom 1 (the camera follows the diver).",
    "limb_width": "multiplier of the limb / torso thickness (1 = slender).",
    "noise_sigma": "std of Gaussian pixel noise, in 0-255 units (<= 5 keeps poses easy to see).",
    "speed": "[min, max] of the per-video tempo: one factor on every phase's duration.",
    "phase_scale": "[min, max] of the independent per-video, per-phase duration factor (on top of speed).",
    "idle_frames": "[min, max] idle frames before and (independently) after the action.",
    "annotation_margin": "[min, max] idle frames the annotated clip keeps before and (independently) after "
    "the action (at most the idle frames there are), as imprecise real annotations do.",
    "phase_frames": "base phase durations in frames before scaling; flight lasts "
    "flight_base + half_somersault * (number of half somersaults).",
    "background": "plain: the same sky, tower and platform in every video; varied: per-video backdrop (hall "
    "or sky), stands with a crowd, deck, pool wall, other boards, colours of tower and water.",
    "background_blur": "std in pixels (at zoom 1) of the blur of a varied background: out of focus behind the "
    "diver, as with a long lens (0 = sharp).",
    "background_contrast": "contrast of a varied background around its mean colour (1 = as drawn; lower is hazier, "
    "as a lit diver against a darker, out-of-focus hall).",
    "camera_lag": "[min, max] time constant in frames of the operator following the diver (0 = no lag).",
    "zoom": "[min, max] of the per-video zoom (diver scale: fig_scale x zoom).",
    "zoom_drift": "max relative zoom change within a video (smooth).",
    "roll_deg": "max camera roll in degrees, varying smoothly within a video.",
    "framing": "max offset of the diver from the frame centre, as a fraction of the frame, varying smoothly.",
    "mirror": "probability that a video is mirrored (the pool on the left).",
    "view_angle_deg": "max angle between the view and the diver's plane (x foreshortened, the body's width "
    "turning into view).",
    "shake_px": "std of the per-frame camera shake in pixels.",
    "distractors": "[min, max] number of static distractor shapes in the scene.",
    "movers": "[min, max] number of moving distractors (people walking on the deck, balls or birds).",
    "lighting": "max relative change of brightness / per-channel tint per video.",
    "colour_jitter": "0: suit, skin and cap from a few fixed colours; 1: each channel moved by up to 80.",
    "body_jitter": "max relative change of body size and of each limb length per video.",
    "pose_jitter": "max change (radians) of the joint angles of each position per video.",
    "crf": "libx264 constant rate factor (lower = higher quality, larger files).",
}

#: Keys that add the nuisance of real sports video, with the values that switch each one off
#: (``resolve_config({**cfg, **STATIC_SCENE})`` renders the earlier static-camera, fixed-scene benchmark).
STATIC_SCENE: dict[str, Any] = {
    "background": "plain",
    "camera_lag": [0.0, 0.0],
    "zoom": [1.0, 1.0],
    "zoom_drift": 0.0,
    "roll_deg": 0.0,
    "framing": 0.0,
    "mirror": 0.0,
    "view_angle_deg": 0.0,
    "movers": [0, 0],
    "colour_jitter": 0.0,
}

TINY_CONFIG: dict[str, Any] = {
    "classes": [7, 8, 24, 43],
    "train_per_class": 6,
    "test_per_class": 2,
    "frame_size": 32,
    "phase_scale": [0.8, 1.2],
    "idle_frames": [0, 2],
    "phase_frames": {
        "approach": 4,
        "takeoff": 2,
        "flight_base": 2,
        "half_somersault": 3,
        "entry": 2,
        "splash": 3,
    },
}
"""Overrides of DEFAULT_CONFIG for CI: 4 classes, 6 train + 2 test per class, 32 px, ~25 frames."""

#: The Diving48 positions the renderer draws (:data:`finepseudo.data.synthdive.motion._POSITIONS` holds their
#: joint angles).
POSITIONS: tuple[str, ...] = ("TUCK", "PIKE", "STR", "FREE")


# ----------------------------------------------------------------------------------------------
# classes: the Diving48 vocabulary


def load_diving48_vocab(path: str | os.PathLike | None = None) -> list[list[str]]:
    """The official Diving48 vocabulary: a list of ``[takeoff, somersaults, twists, position]``.

    path: a ``Diving48_vocab.json`` to read (the official file); None = ``$FINEPSEUDO_DIVING48_VOCAB``
    if set, else the built-in copy of the official 48-class table.
    """
    if path is None:
        path = os.environ.get("FINEPSEUDO_DIVING48_VOCAB")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"Diving48 vocabulary not found: {p}")
        return json.loads(p.read_text())
    return [list(c) for c in _DIVING48_VOCAB]


_DIVING48_VOCAB: tuple[tuple[str, str, str, str], ...] = (
    ("Back", "15som", "05Twis", "FREE"), ("Back", "15som", "15Twis", "FREE"),
    ("Back", "15som", "25Twis", "FREE"), ("Back", "15som", "NoTwis", "PIKE"),
    ("Back", "15som", "NoTwis", "TUCK"), ("Back", "25som", "15Twis", "PIKE"),
    ("Back", "25som", "25Twis", "PIKE"), ("Back", "25som", "NoTwis", "PIKE"),
    ("Back", "25som", "NoTwis", "TUCK"), ("Back", "2som", "15Twis", "FREE"),
    ("Back", "2som", "25Twis", "FREE"), ("Back", "35som", "NoTwis", "PIKE"),
    ("Back", "35som", "NoTwis", "TUCK"), ("Back", "3som", "NoTwis", "PIKE"),
    ("Back", "3som", "NoTwis", "TUCK"), ("Back", "Dive", "NoTwis", "PIKE"),
    ("Back", "Dive", "NoTwis", "TUCK"), ("Forward", "15som", "1Twis", "FREE"),
    ("Forward", "15som", "2Twis", "FREE"), ("Forward", "15som", "NoTwis", "PIKE"),
    ("Forward", "1som", "NoTwis", "PIKE"), ("Forward", "25som", "1Twis", "PIKE"),
    ("Forward", "25som", "2Twis", "PIKE"), ("Forward", "25som", "3Twis", "PIKE"),
    ("Forward", "25som", "NoTwis", "PIKE"), ("Forward", "25som", "NoTwis", "TUCK"),
    ("Forward", "35som", "NoTwis", "PIKE"), ("Forward", "35som", "NoTwis", "TUCK"),
    ("Forward", "45som", "NoTwis", "TUCK"), ("Forward", "Dive", "NoTwis", "PIKE"),
    ("Forward", "Dive", "NoTwis", "STR"), ("Inward", "15som", "NoTwis", "PIKE"),
    ("Inward", "15som", "NoTwis", "TUCK"), ("Inward", "25som", "NoTwis", "PIKE"),
    ("Inward", "25som", "NoTwis", "TUCK"), ("Inward", "35som", "NoTwis", "TUCK"),
    ("Inward", "Dive", "NoTwis", "PIKE"), ("Reverse", "15som", "05Twis", "FREE"),
    ("Reverse", "15som", "15Twis", "FREE"), ("Reverse", "15som", "25Twis", "FREE"),
    ("Reverse", "15som", "35Twis", "FREE"), ("Reverse", "15som", "NoTwis", "PIKE"),
    ("Reverse", "25som", "15Twis", "PIKE"), ("Reverse", "25som", "NoTwis", "PIKE"),
    ("Reverse", "25som", "NoTwis", "TUCK"), ("Reverse", "35som", "NoTwis", "TUCK"),
    ("Reverse", "Dive", "NoTwis", "PIKE"), ("Reverse", "Dive", "NoTwis", "TUCK"),
)


def _halves(token: str, suffix: str) -> int:
    """'15som' -> 3 half rotations, '2Twis' -> 4, '05Twis' -> 1, 'Dive' -> 1, 'NoTwis' -> 0."""
    if token == "Dive":
        return 1
    if token == "NoTwis":
        return 0
    if not token.endswith(suffix):
        raise ValueError(f"cannot parse {token!r}: expected '<digits>{suffix}'")
    digits = token[: -len(suffix)]
    value = float(digits[0] + "." + digits[1:]) if len(digits) > 1 else float(digits)
    return round(2 * value)


def parse_class(attrs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``[takeoff, somersaults, twists, position]`` into rendering parameters.

    Returns a dict with ``takeoff`` and ``position`` (strings), ``som_halves`` and
    ``twist_halves`` (numbers of half rotations), ``facing`` (+1 = facing the pool on the
    right, -1 = back to the pool) and ``sense`` (+1 = forward rotation relative to the diver).
    """
    takeoff, som, twist, position = attrs
    table = {"Forward": (1, 1), "Back": (-1, -1), "Reverse": (1, -1), "Inward": (-1, 1)}
    if takeoff not in table:
        raise ValueError(f"unknown take-off {takeoff!r} (expected one of {sorted(table)})")
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r} (expected one of {sorted(POSITIONS)})")
    facing, sense = table[takeoff]
    return {
        "takeoff": takeoff,
        "position": position,
        "som_halves": _halves(som, "som"),
        "twist_halves": _halves(twist, "Twis"),
        "facing": facing,
        "sense": sense,
    }


def class_table(cfg: dict[str, Any], vocab: list[list[str]]) -> list[dict[str, Any]]:
    """SynthDive classes of a resolved config: dicts with label (0..K-1 known, then novel),
    diving48_label, takeoff, somersaults, twists, position, novel (as written to classes.json)."""
    table = []
    for novel, ids in ((False, cfg["classes"]), (True, cfg["novel_classes"])):
        for d48 in ids:
            if not 0 <= d48 < len(vocab):
                raise ValueError(f"synthdive class {d48} is not a Diving48 label (0..{len(vocab) - 1})")
            attrs = list(vocab[d48])
            parse_class(attrs)
            table.append({"label": len(table), "diving48_label": d48, "takeoff": attrs[0],
                          "somersaults": attrs[1], "twists": attrs[2], "position": attrs[3],
                          "novel": novel})
    return table


# ----------------------------------------------------------------------------------------------
# configuration


def resolve_config(cfg: dict | None) -> dict[str, Any]:
    """Merge ``cfg`` over :data:`DEFAULT_CONFIG` (one level deep for ``phase_frames``) and validate."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise KeyError(f"unknown synthdive config keys {unknown}; known keys: {sorted(DEFAULT_CONFIG)}")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_CONFIG.items()}
    for k, v in cfg.items():
        if k == "phase_frames" and v is not None:
            bad = sorted(set(v) - set(DEFAULT_CONFIG["phase_frames"]))
            if bad:
                raise KeyError(f"unknown synthdive.phase_frames keys {bad}")
            out[k].update(v)
        elif v is not None or k == "classes":
            out[k] = v
    if out["classes"] is None:
        out["classes"] = list(DEFAULT_CLASSES)
    out["classes"] = [int(c) for c in out["classes"]]
    out["novel_classes"] = [int(c) for c in (out["novel_classes"] or [])]
    if len(set(out["classes"])) != len(out["classes"]) or not out["classes"]:
        raise ValueError(f"synthdive.classes must be non-empty and unique, got {out['classes']}")
    if set(out["classes"]) & set(out["novel_classes"]):
        raise ValueError("synthdive.novel_classes must not overlap synthdive.classes")
    if int(out["frame_size"]) % 2 or int(out["frame_size"]) < 16:
        raise ValueError(f"synthdive.frame_size must be even and >= 16, got {out['frame_size']}")
    for key in ("phase_scale", "idle_frames", "distractors", "speed", "annotation_margin", "camera_lag", "zoom",
                "movers"):
        lo, hi = out[key]
        if lo > hi or lo < 0:
            raise ValueError(f"synthdive.{key} must be [min, max] with 0 <= min <= max, got {out[key]}")
    for key in ("phase_scale", "speed", "zoom"):
        if out[key][0] <= 0:
            raise ValueError(f"synthdive.{key} must be positive, got {out[key]}")
    if out["background"] not in ("plain", "varied"):
        raise ValueError(f"synthdive.background must be plain or varied, got {out['background']!r}")
    if not 0 <= float(out["mirror"]) <= 1:
        raise ValueError(f"synthdive.mirror is a probability in [0, 1], got {out['mirror']}")
    if not 0 <= float(out["view_angle_deg"]) < 80:
        raise ValueError(f"synthdive.view_angle_deg must be in [0, 80), got {out['view_angle_deg']}")
    return out
