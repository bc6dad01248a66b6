"""SynthDive: a procedurally rendered, fine-grained diving benchmark (Diving48 V2 format).

Every video shows the same scene (sky, a diving platform on the left, a pool below) and one
articulated 2D diver performing a dive of one Diving48 class ``[takeoff, somersaults, twists,
position]``. The class is visible only through the *action phases*:

- ``approach`` and ``takeoff``: Forward/Reverse divers walk to the edge facing the water;
  Back/Inward divers stand at the edge with their back to the water and swing their arms.
  Forward/Inward rotate forward (relative to the diver), Back/Reverse backward, so on screen
  Forward/Back rotate clockwise and Reverse/Inward counter-clockwise (the pool is on the right).
- ``flight``: the somersault count as that many rotations in the given position (TUCK = compact
  ball, PIKE = straight legs folded to the chest, a long narrow V; STR = straight; FREE = straight
  with arms folded), twists as rotations about the body axis (periodic foreshortening of the
  shoulders, hips and folded legs).
- ``entry``: half-rotation counts end head-first (arms overhead), whole counts feet-first.
- ``splash``, then ``idle`` frames of calm water; ``idle`` frames of a standing diver precede.

Every phase's duration is scaled independently per video (on top of a per-video tempo), so clips
of one class are not frame-aligned. The nuisance of real sports video is drawn per video,
independently of the class, each with its own config key (:data:`CONFIG_DOCS`;
:data:`STATIC_SCENE` switches them all off):

- a broadcast camera that tracks the diver with lag, with zoom, roll and framing offset varying
  within the video, and shake;
- a background that differs between videos (an indoor hall or a sky, stands with a crowd, the
  deck and the tiled pool wall, other boards, colours of tower and water) and moves with the
  camera, static distractor shapes and moving ones (people walking on the deck, balls, birds);
- the viewpoint: mirrored views (the pool on the left) and angled views (the plane of the dive
  foreshortened, the diver's width turning into view), diver scale and position in the frame;
- appearance: skin, suit and cap colours, body size and limb proportions; lighting and noise.

Outputs of :func:`generate` (``out_dir``):

- ``videos/<vid_name>.mp4``: H.264, yuv420p, written by piping raw RGB frames to ``ffmpeg``;
- ``annotations/{train,test}.json``: Diving48 V2 format, a list of
  ``{"vid_name", "label", "start_frame", "end_frame"}``. ``frames[start_frame:end_frame]``
  (``end_frame`` **exclusive**) is the action (first to last non-idle frame) with a margin of
  ``annotation_margin`` idle frames on each side, as real, imprecise annotations have;
  ``label`` indexes ``vocab.json``;
- ``annotations/vocab.json``: the official vocabulary format, a list of
  ``[takeoff, somersaults, twists, position]`` indexed by SynthDive label (known classes
  ``0..K-1`` first, then novel classes);
- ``annotations/classes.json``: per label its Diving48 label, attributes, and ``novel`` flag;
- ``annotations/phases.json``: ``{vid_name: [phase name per video frame]}`` with phase names in
  :data:`PHASES` (for alignment analysis only, never for training);
- ``annotations/summary.json``: the summary dict returned by :func:`generate`.

The configuration keys, their defaults and meanings are :data:`DEFAULT_CONFIG` and
:data:`CONFIG_DOCS`; :data:`TINY_CONFIG` is a few-second configuration for CI.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import ffmpeg
import numpy as np

__all__ = [
    "CONFIG_DOCS",
    "DEFAULT_CLASSES",
    "DEFAULT_CONFIG",
    "PHASES",
    "STATIC_SCENE",
    "TINY_CONFIG",
    "class_table",
    "generate",
    "load_diving48_vocab",
    "parse_class",
    "plan_videos",
    "render_video",
    "resolve_config",
]

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

_SPLIT_CODE = {"train": 0, "test": 1}

# ----------------------------------------------------------------------------------------------
# vocabulary


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
    if position not in _POSITIONS:
        raise ValueError(f"unknown position {position!r} (expected one of {sorted(_POSITIONS)})")
    facing, sense = table[takeoff]
    return {
        "takeoff": takeoff,
        "position": position,
        "som_halves": _halves(som, "som"),
        "twist_halves": _halves(twist, "Twis"),
        "facing": facing,
        "sense": sense,
    }


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


# ----------------------------------------------------------------------------------------------
# the diver: poses (radians) as 8-vectors [hipL, hipR, kneeL, kneeR, shoulderL, shoulderR,
# elbowL, elbowR]; hip flexion folds the thigh forward, knee flexion folds the shin backward,
# shoulder 0 = arm down, pi/2 = forward, pi = overhead; elbow flexion folds the forearm forward.

_PI = math.pi
_STAND = np.array([0, 0, 0, 0, 0.15, 0.15, 0.15, 0.15])
_ARMS_UP = np.array([0, 0, 0, 0, _PI - 0.08, _PI - 0.08, 0, 0])
_CROUCH = np.array([1.0, 1.0, 1.7, 1.7, -0.7, -0.7, 0.2, 0.2])
_POSITIONS = {
    # compact ball: thighs on the chest, shins folded under, hands on the shins
    "TUCK": np.array([2.55, 2.55, 2.7, 2.7, 1.45, 1.45, 1.2, 1.2]),
    # open V / L: straight legs folded forward at the hips, arms reaching along the legs
    "PIKE": np.array([1.95, 1.95, 0, 0, 1.95, 1.95, 0.0, 0.0]),
    # straight body, arms by the sides
    "STR": np.array([0, 0, 0, 0, 0.12, 0.12, 0.05, 0.05]),
    # straight body, arms folded over the chest (twisting dives)
    "FREE": np.array([0.15, 0.15, 0.1, 0.1, 0.7, 0.7, 2.4, 2.4]),
}
_ENTRY_FEET = np.array([0, 0, 0, 0, 0.1, 0.1, 0, 0])

# segments: (joint a, joint b, radius as fraction of height, colour slot)
_SEGMENTS = (
    ("hipL", "kneeL", 0.058, "skin"),
    ("kneeL", "ankleL", 0.048, "skin"),
    ("hipR", "kneeR", 0.058, "skin"),
    ("kneeR", "ankleR", 0.048, "skin"),
    ("hipL", "hipR", 0.07, "suit"),
    ("hip", "chest", 0.085, "suit"),
    ("chest", "shoulder", 0.075, "skin"),
    ("shoulderL", "shoulderR", 0.06, "skin"),
    ("shoulderL", "elbowL", 0.045, "skin"),
    ("elbowL", "handL", 0.04, "skin"),
    ("shoulderR", "elbowR", 0.045, "skin"),
    ("elbowR", "handR", 0.04, "skin"),
    ("head", "head", 0.085, "cap"),
)


def _smooth(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _joints(pose: np.ndarray, psi: np.ndarray, dims: dict[str, float]) -> dict[str, np.ndarray]:
    """Body-frame joint positions for T frames, in 3D.

    pose: (T, 8) joint angles; psi: (T,) twist angles (rotation about the torso axis). Returns a
    dict name -> (T, 3): x = front of the diver, y = up along the torso, z = the diver's lateral axis,
    origin at the hip centre, after the twist (which turns x and z about y).
    """
    t = pose.shape[0]
    zero = np.zeros(t)
    hw, sw = dims["hip_w"], dims["shoulder_w"]
    pts3: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    pts3["hip"] = (zero, zero, zero)
    pts3["chest"] = (zero, zero + 0.55 * dims["torso"], zero)
    pts3["shoulder"] = (zero, zero + dims["torso"], zero)
    pts3["head"] = (zero, zero + dims["torso"] + dims["neck"] + dims["head"], zero)
    for side, k, z in (("L", 0, -1.0), ("R", 1, 1.0)):
        ah, ak = pose[:, 0 + k], pose[:, 2 + k]
        hx, hz = zero, zero + z * hw
        kx = hx + dims["thigh"] * np.sin(ah)
        ky = -dims["thigh"] * np.cos(ah)
        ax = kx + dims["shin"] * np.sin(ah - ak)
        ay = ky - dims["shin"] * np.cos(ah - ak)
        pts3["hip" + side] = (hx, zero, hz)
        pts3["knee" + side] = (kx, ky, hz)
        pts3["ankle" + side] = (ax, ay, hz)
        asx, ae = pose[:, 4 + k], pose[:, 6 + k]
        sy = zero + dims["torso"]
        sz = zero + z * sw
        ex = dims["upper_arm"] * np.sin(asx)
        ey = sy - dims["upper_arm"] * np.cos(asx)
        wx = ex + dims["forearm"] * np.sin(asx + ae)
        wy = ey - dims["forearm"] * np.cos(asx + ae)
        pts3["shoulder" + side] = (zero, sy, sz)
        pts3["elbow" + side] = (ex, ey, sz)
        pts3["hand" + side] = (wx, wy, sz)
    c, s = np.cos(psi), np.sin(psi)
    return {n: np.stack([x * c + z * s, y, z * c - x * s], axis=-1) for n, (x, y, z) in pts3.items()}


def _rot(points: np.ndarray, theta: np.ndarray, facing: float) -> np.ndarray:
    """Rotate body-frame points (T, ..., 3) by -theta about the lateral axis (forward = towards the
    diver's front) and mirror by ``facing`` into world axes (x right, y up, z towards the camera)."""
    c, s = np.cos(theta), np.sin(theta)
    while c.ndim < points.ndim - 1:
        c, s = c[:, None], s[:, None]
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    # forward rotation by theta: the head (0, 1) moves towards +x (the front)
    xr = x * c + y * s
    yr = -x * s + y * c
    return np.stack([facing * xr, yr, facing * z], axis=-1)


def _timeline(spec: dict[str, Any], cfg: dict[str, Any], rng: np.random.Generator) -> list[tuple[str, int]]:
    """Phase durations for one video: list of (phase, frames). Draws the video's tempo (one factor for
    every phase), then the idle frames before, each phase's own factor in order, and the idle frames after."""
    pf = cfg["phase_frames"]
    lo, hi = cfg["phase_scale"]
    tempo = rng.uniform(*cfg["speed"])

    def dur(base: float) -> int:
        return max(1, round(base * tempo * rng.uniform(lo, hi)))

    i_lo, i_hi = cfg["idle_frames"]
    flight = pf["flight_base"] + pf["half_somersault"] * spec["som_halves"]
    idle_before = int(rng.integers(i_lo, i_hi + 1))
    return [
        ("idle", idle_before),
        ("approach", dur(pf["approach"])),
        ("takeoff", dur(pf["takeoff"])),
        ("flight", max(2, dur(flight))),
        ("entry", dur(pf["entry"])),
        ("splash", max(2, dur(pf["splash"]))),
        ("idle", int(rng.integers(i_lo, i_hi + 1))),
    ]


def _lerp(a: np.ndarray, b: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    return a + (b - a) * w[..., None] if w.ndim else a + (b - a) * w


def _motion(spec: dict[str, Any], phases: list[tuple[str, int]], position_pose: np.ndarray,
            rng: np.random.Generator) -> dict[str, Any]:
    """Per-frame diver state: pose (T, 8), twist psi (T,), body rotation theta (T,), world anchor
    position (T, 2), whether the frame is airborne (anchor = joint centroid) or on the platform
    (feet on the platform), and the visibility of the diver."""
    names: list[str] = []
    for name, n in phases:
        names += [name] * n
    t_total = len(names)
    pose = np.zeros((t_total, 8))
    psi = np.zeros(t_total)
    theta = np.zeros(t_total)
    pos = np.zeros((t_total, 2))
    air = np.zeros(t_total, dtype=bool)
    visible = np.ones(t_total, dtype=bool)
    sense = spec["sense"]
    walking = spec["facing"] > 0  # Forward / Reverse walk to the edge facing the pool
    x_start = -1.3 if walking else -0.15
    x_edge = -0.18 if walking else -0.12
    lean = 0.3 * sense
    som_total = spec["som_halves"] * _PI
    twist_total = spec["twist_halves"] * _PI
    head_first = spec["som_halves"] % 2 == 1
    entry_pose = _ARMS_UP if head_first else _ENTRY_FEET
    drift = {"Forward": 0.9, "Back": 0.75, "Reverse": 0.6, "Inward": 0.45}[spec["takeoff"]]
    drift *= rng.uniform(0.85, 1.15)
    peak = rng.uniform(0.45, 0.7)
    stride = rng.uniform(0.8, 1.2)
    start = 0
    flight_start = flight_len = 0
    for k, (name, n) in enumerate(phases):
        idx = np.arange(start, start + n)
        s = (np.arange(n) + 1.0) / n  # progress at the end of each frame, in (0, 1]
        if name == "idle" and k == 0:
            pose[idx] = _STAND
            pos[idx, 0] = x_start
        elif name == "approach":
            pose[idx] = _STAND
            if walking:
                ph = 2 * _PI * stride * 1.5 * s
                sw = np.sin(ph)
                pose[idx, 0], pose[idx, 1] = 0.45 * sw, -0.45 * sw
                pose[idx, 2] = 0.6 * np.clip(-sw, 0, None)
                pose[idx, 3] = 0.6 * np.clip(sw, 0, None)
                pose[idx, 4], pose[idx, 5] = -0.4 * sw, 0.4 * sw
                pos[idx, 0] = x_start + (x_edge - x_start) * s
            else:
                raise_ = np.sin(_PI * s) ** 2
                pose[idx, 4] = pose[idx, 5] = 0.15 + (_PI - 0.3) * raise_
                pose[idx, 6] = pose[idx, 7] = 0.1
                pos[idx, 0] = x_edge
        elif name == "takeoff":
            down = _smooth(s / 0.5)
            up = _smooth((s - 0.5) / 0.5)
            pose[idx] = _lerp(_lerp(_STAND, _CROUCH, down), _ARMS_UP, up)
            theta[idx] = lean * np.sin(0.5 * _PI * s) * 0.5 + 0.5 * lean * up
            pos[idx, 0] = x_edge
        elif name == "flight":
            flight_start, flight_len = start, n
            air[idx] = True
            tuck_in = _smooth(s / 0.18)
            open_w = _smooth((s - 0.78) / 0.22) if spec["som_halves"] > 1 else _smooth((s - 0.6) / 0.4)
            p = _lerp(_lerp(_ARMS_UP, position_pose, tuck_in), entry_pose, open_w)
            pose[idx] = p
            theta[idx] = sense * (abs(lean) + (som_total - abs(lean)) * s)
            psi[idx] = twist_total * _smooth((s - 0.12) / 0.76)
        elif name == "entry":
            air[idx] = True
            pose[idx] = entry_pose
            theta[idx] = som_total * sense
            psi[idx] = twist_total
        elif name in ("splash", "idle"):
            air[idx] = True
            visible[idx] = False
            pose[idx] = entry_pose
            theta[idx] = som_total * sense
        start += n
    return {
        "names": names, "pose": pose, "psi": psi, "theta": theta, "pos": pos, "air": air,
        "visible": visible, "flight": (flight_start, flight_len), "drift": drift, "peak": peak,
        "head_first": head_first,
    }


# ----------------------------------------------------------------------------------------------
# rendering


def _capsule_cover(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray,
                   r: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of capsules. px, py: (H, W) pixel centres; a, b: (..., K, 2) segment
    end points in pixels; r: (..., K) radii in pixels. Returns (..., K, H, W) float32 in [0, 1]."""
    a = a.astype(np.float32)
    ab = (b - a).astype(np.float32)
    ax, ay = a[..., 0, None, None], a[..., 1, None, None]
    bx, by = ab[..., 0, None, None], ab[..., 1, None, None]
    dx = px - ax
    dy = py - ay
    den = np.maximum(bx * bx + by * by, 1e-6)
    t = np.clip((dx * bx + dy * by) / den, 0.0, 1.0)
    ex = dx - t * bx
    ey = dy - t * by
    d = np.sqrt(ex * ex + ey * ey) - r[..., None, None].astype(np.float32)
    return np.clip(0.5 - d, 0.0, 1.0)


def _box_cover(wx: np.ndarray, wy: np.ndarray, x0: float, x1: float, y0: float, y1: float,
               px_per_unit: float) -> np.ndarray:
    """Anti-aliased coverage of the world box [x0, x1] x [y0, y1]; wx, wy world coordinates."""
    dx = np.maximum(x0 - wx, wx - x1)
    dy = np.maximum(y0 - wy, wy - y1)
    d = np.maximum(dx, dy) * px_per_unit
    return np.clip(0.5 - d, 0.0, 1.0)


def _disc_cover(wx: np.ndarray, wy: np.ndarray, cx: float, cy: float, rad: float, px_per_unit: float) -> np.ndarray:
    """Anti-aliased coverage of the world disc of centre (cx, cy) and radius rad."""
    d = np.sqrt((wx - cx) ** 2 + (wy - cy) ** 2) - rad
    return np.clip(0.5 - d * px_per_unit, 0.0, 1.0)


def _over_(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """In place: composite ``color`` (3,) or (..., 3) with coverage ``alpha`` (broadcastable to
    img's leading axes) over ``img`` (..., 3) float32."""
    a = alpha[..., None]
    img += a * (color - img)


def _curve(n: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random curve over ``n`` frames with values in [-1, 1]: the mean of two sinusoids of 0.3 to
    1.2 cycles per video. Draws the two frequencies, then the two phases."""
    f = rng.uniform(0.3, 1.2, 2)
    ph = rng.uniform(0.0, 2 * _PI, 2)
    t = np.arange(n) / max(n - 1, 1)
    return 0.5 * (np.sin(2 * _PI * f[0] * t + ph[0]) + np.sin(2 * _PI * f[1] * t + ph[1]))


# render_video, step by step: each drawing step is a small function, and those that take ``rng``
# draw from the video's generator. The order of the calls is the order of the draws and so part of
# the output (tests/test_synthdive.py pins rendered clips): a draw added, removed or moved changes
# every draw after it, so only one added after the pixel noise leaves existing videos unchanged.


class _Figure(NamedTuple):
    scale: float  # body size factor
    dims: dict[str, float]  # segment lengths in world units
    position_pose: np.ndarray  # (8,) the dive position's joint angles, jittered


class _View(NamedTuple):
    mirror: bool  # frames flipped left-right: the pool on the left, every rotation reversed on screen
    cos_a: float  # the viewing angle: world x shows foreshortened by cos_a ...
    sin_a: float  # ... and the diver's lateral axis shows by sin_a (shoulders and hips turn into view)


class _Camera(NamedTuple):
    centre: np.ndarray  # (T, 2) screen-plane point (x foreshortened by the view) at the frame centre
    ppu: np.ndarray  # (T,) pixels per world unit: the zoom of each frame
    roll: np.ndarray  # (T,) roll of each frame in radians


class _Mover(NamedTuple):
    walker: bool  # a person walking on the pool deck (else a ball or bird crossing the scene)
    p0: np.ndarray  # (2,) world position at the first frame
    v: np.ndarray  # (2,) world units per frame
    size: float  # walker height or ball radius, world units
    colour: np.ndarray  # (3,) body colour
    head: np.ndarray  # (3,) head colour of a walker


class _Scene(NamedTuple):
    tex: np.ndarray  # (Ht, Wt, 3) float32 static world texture: backdrop, stands, boards, tower and platform
    x0: float  # world x of the texture's left edge
    y1: float  # world y of the texture's top edge
    dens: float  # texels per world unit
    water: np.ndarray  # (3,) water colour at the surface (it darkens with depth)
    water_alpha: float  # opacity of the water over what lies below the surface
    movers: list[_Mover]  # moving distractors


class _Diver(NamedTuple):
    layers: list[list[np.ndarray]]  # per frame, back to front: coverage (B_i, B_i) of skin, suit and cap
    colours: list[np.ndarray]  # (3,) colour of each layer
    lo_px: np.ndarray  # (T, 2) frame pixel of each frame's window's top-left corner


class _Splash(NamedTuple):
    foam_u: dict[int, float]  # frame -> splash progress (1 at the end of the splash phase, > 1 after)
    x_in: float  # world x where the diver enters the water
    vx: np.ndarray  # (D,) droplet velocities and radii
    vy: np.ndarray
    rd: np.ndarray


def _draw_figure(spec: dict[str, Any], cfg: dict[str, Any], rng: np.random.Generator) -> _Figure:
    """Draws the body size, then each segment length, then the jitter of the position's joint angles."""
    bj, pj = float(cfg["body_jitter"]), float(cfg["pose_jitter"])
    scale = rng.uniform(1 - bj, 1 + bj)

    def limb(v: float) -> float:
        return v * scale * rng.uniform(1 - bj, 1 + bj)

    dims = {
        "shin": limb(0.25), "thigh": limb(0.25), "torso": limb(0.30), "neck": limb(0.035),
        "head": limb(0.075), "upper_arm": limb(0.17), "forearm": limb(0.17),
        "hip_w": limb(0.06), "shoulder_w": limb(0.1),
    }
    position_pose = _POSITIONS[spec["position"]] + np.repeat(rng.uniform(-pj, pj, 4), 2)
    return _Figure(scale, dims, position_pose)


def _draw_water_level(rng: np.random.Generator) -> float:
    """Draws the height of the water surface below the platform top (y = 0)."""
    return -rng.uniform(3.0, 3.6)


def _draw_view(cfg: dict[str, Any], rng: np.random.Generator) -> _View:
    """Draws whether the view is mirrored, then the viewing angle (uniform in +-view_angle_deg)."""
    mirror = bool(rng.random() < float(cfg["mirror"]))
    angle = math.radians(float(cfg["view_angle_deg"])) * rng.uniform(-1.0, 1.0)
    return _View(mirror, math.cos(angle), math.sin(angle))


def _world_joints(spec: dict[str, Any], mot: dict[str, Any], phases: list[tuple[str, int]], fig: _Figure,
                  water_y: float) -> tuple[np.ndarray, dict[str, int], float]:
    """Joint positions in the world (no draws): the pose of each frame rotated into world axes and placed
    on the platform (feet on its top), on a parabola in flight, then straight down through the surface.
    Returns ``(world (T, J, 3), joint index by name, x of the entry point)``; z is the lateral offset."""
    t_total = len(mot["names"])
    xyz = _joints(mot["pose"], mot["psi"], fig.dims)
    names = list(xyz)
    jidx = {n: i for i, n in enumerate(names)}
    pts = np.stack([xyz[n] for n in names], axis=1)  # (T, J, 3) body frame
    world_rel = _rot(pts, mot["theta"], spec["facing"])  # (T, J, 3) around the hip
    pos = mot["pos"].copy()
    air = mot["air"]
    # platform frames: feet on the platform top (y = 0)
    foot = np.minimum(world_rel[:, jidx["ankleL"], 1], world_rel[:, jidx["ankleR"], 1])
    ground_y = -foot + 0.03
    centroid = world_rel[..., :2].mean(axis=1)  # (T, 2)
    anchor = np.where(air[:, None], centroid, 0.0)
    pos[~air, 1] = ground_y[~air]
    # airborne frames: centroid on a parabola from the last platform frame to the water
    f0, fn = mot["flight"]
    last = f0 - 1
    c0 = pos[last] + centroid[last]
    half_len = 0.62 if mot["head_first"] else 0.5
    y_end = water_y + half_len * fig.scale
    d_fall = c0[1] - y_end
    hp = mot["peak"]
    a_par = 2.0 * (hp + math.sqrt(hp * hp + hp * d_fall))
    b_par = a_par + d_fall
    s = (np.arange(fn) + 1.0) / fn
    pos[f0:f0 + fn, 0] = c0[0] + mot["drift"] * s
    pos[f0:f0 + fn, 1] = c0[1] + a_par * s - b_par * s * s
    # entry: straight down through the surface; afterwards hidden under water
    x_in = pos[f0 + fn - 1, 0]
    rest = np.arange(f0 + fn, t_total)
    n_entry = sum(n for name, n in phases if name == "entry")
    e = np.clip((rest - (f0 + fn) + 1.0) / n_entry, 0, None)
    pos[rest, 0] = x_in + 0.05 * e
    pos[rest, 1] = y_end - (half_len * fig.scale + 0.9) * e
    world = world_rel.copy()
    world[..., :2] += (pos - anchor)[:, None, :]
    return world, jidx, x_in


def _project(world: np.ndarray, view: _View) -> np.ndarray:
    """World joints (T, J, 3) -> points in the screen plane (T, J, 2), seen at the view's angle (no draws)."""
    return np.stack([world[..., 0] * view.cos_a + world[..., 2] * view.sin_a, world[..., 1]], axis=-1)


def _camera(screen: np.ndarray, visible: np.ndarray, water_y: float, size: int, cfg: dict[str, Any],
            rng: np.random.Generator) -> _Camera:
    """A broadcast camera that tracks the diver: zoom, roll and framing offset varying smoothly within the
    video, and an operator who follows with lag (a first-order filter), never letting the diver leave the
    frame or the view sink below the surface. Draws the base zoom, the lag, the zoom, roll and two framing
    curves (:func:`_curve`), then the shake (one normal per frame and axis)."""
    t_total = len(screen)
    z0 = rng.uniform(*cfg["zoom"])
    lag = rng.uniform(*cfg["camera_lag"])
    cz, cr, fx, fy = (_curve(t_total, rng) for _ in range(4))
    ppu = float(cfg["fig_scale"]) * size * z0 * np.exp(math.log1p(float(cfg["zoom_drift"])) * cz)
    roll = math.radians(float(cfg["roll_deg"])) * cr
    body = screen.mean(axis=1)
    ref = body.copy()
    ref[:, 1] = np.maximum(ref[:, 1], water_y + 0.6)
    ref[~visible] = ref[visible][-1]
    target = ref - float(cfg["framing"]) * size * np.stack([fx, fy], axis=-1) / ppu[:, None]
    for order in (range(1, t_total), range(t_total - 2, -1, -1)):  # light zero-phase smoothing
        step = 1 if order.start < order.stop else -1
        for i in order:
            target[i] = 0.6 * target[i] + 0.4 * target[i - step]
    k = 1.0 / (1.0 + lag)
    cam = target.copy()
    for i in range(1, t_total):
        cam[i] = cam[i - 1] + k * (target[i] - cam[i - 1])
    lim = (0.3 * size / ppu)[:, None]
    cam = ref - np.clip(ref - cam, -lim, lim)  # the diver stays within 0.3 frame widths of the centre
    cam = cam + rng.normal(0.0, float(cfg["shake_px"]), cam.shape) / ppu[:, None]
    return _Camera(cam, ppu, roll)


def _draw_lighting(cfg: dict[str, Any], rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """Draws the video's brightness gain, then its per-channel tint (applied by :func:`_expose`)."""
    lt = float(cfg["lighting"])
    gain = rng.uniform(1 - lt, 1 + lt)
    tint = 1.0 + rng.uniform(-lt, lt, 3) * 0.5
    return gain, tint


def _sky(wy: np.ndarray, water_y: float, shape: tuple[int, int]) -> np.ndarray:
    """The plain scene's sky gradient as a fresh (Ht, Wt, 3) float32 texture (no draws)."""
    sky_top = np.array([95, 150, 215.0], dtype=np.float32)
    sky_low = np.array([185, 210, 235.0], dtype=np.float32)
    wsky = np.clip((wy - water_y) / 5.0, 0, 1)[..., None]  # (Ht, 1, 1)
    return np.broadcast_to(sky_low * (1 - wsky) + sky_top * wsky, (*shape, 3)).copy()


def _draw_backdrop(wx: np.ndarray, wy: np.ndarray, water_y: float, dens: float,
                   rng: np.random.Generator) -> np.ndarray:
    """A varied backdrop as a fresh texture: an indoor hall (wall colour and banners) or an open sky (its two
    colours and clouds). Draws indoor or not, then the colours, then the banners or clouds."""
    shape = (wy.shape[0], wx.shape[1])
    if rng.random() < 0.6:  # indoor: a wall with a vertical gradient and banners
        wall = rng.uniform(50, 200, 3).astype(np.float32)
        shade = np.clip(1.0 - (wy - water_y) / 12.0, 0.6, 1.0)[..., None].astype(np.float32)
        tex = np.broadcast_to(wall * shade, (*shape, 3)).copy()
        for _ in range(int(rng.integers(2, 6))):
            bx, by = rng.uniform(wx.min(), wx.max()), rng.uniform(water_y + 1.5, water_y + 6.0)
            bw, bh = rng.uniform(0.4, 1.6), rng.uniform(0.15, 0.5)
            col, stripe = rng.uniform(20, 250, 3).astype(np.float32), rng.uniform(20, 250, 3).astype(np.float32)
            cov = _box_cover(wx, wy, bx - bw / 2, bx + bw / 2, by - bh / 2, by + bh / 2, dens)
            _over_(tex, cov, col)
            _over_(tex, cov * (np.sin(wx * rng.uniform(8, 20)) > 0.3), stripe)
        return tex
    top = np.array([rng.uniform(60, 130), rng.uniform(110, 180), rng.uniform(190, 240)], dtype=np.float32)
    low = np.array([rng.uniform(160, 220), rng.uniform(185, 230), rng.uniform(215, 250)], dtype=np.float32)
    wsky = np.clip((wy - water_y) / 5.0, 0, 1)[..., None]
    tex = np.broadcast_to(low * (1 - wsky) + top * wsky, (*shape, 3)).copy()
    for _ in range(int(rng.integers(1, 5))):
        cx_, cy_ = rng.uniform(wx.min(), wx.max()), rng.uniform(water_y + 2.5, water_y + 7.0)
        rx, ry = rng.uniform(0.4, 1.2), rng.uniform(0.12, 0.3)
        d = np.sqrt(((wx - cx_) / rx) ** 2 + ((wy - cy_) / ry) ** 2)
        _over_(tex, np.clip(1.2 - d, 0, 1) * 0.8, np.array([245, 245, 248.0], dtype=np.float32))
    return tex


def _draw_stands_(tex: np.ndarray, wx: np.ndarray, wy: np.ndarray, water_y: float, deck_h: float,
                  rng: np.random.Generator) -> None:
    """In place: tiers of seats behind the pool with a crowd on them, one colour per seat cell. Draws the
    stands' height, tier height, seat width, colours, the share of occupied seats, a palette of clothes, then
    one uniform per seat (occupied or not) and one palette entry per seat."""
    y_base = water_y + deck_h + 0.1
    y_top = y_base + rng.uniform(1.5, 4.0)
    tier, cell = rng.uniform(0.12, 0.25), rng.uniform(0.06, 0.13)
    seat = rng.uniform(40, 200, 3).astype(np.float32)
    fill = rng.uniform(0.35, 1.0)
    palette = rng.uniform(15, 245, (int(rng.integers(5, 12)), 3)).astype(np.float32) * 0.35 + seat * 0.65
    x0 = float(wx.min())
    nx = int((float(wx.max()) - x0) / cell) + 2
    ny = int((y_top - y_base) / tier) + 2
    occupied = rng.random((ny, nx)) < fill
    clothes = palette[rng.integers(len(palette), size=(ny, nx))]
    iy = np.clip(((wy - y_base) / tier).astype(int), 0, ny - 1)  # (Ht, 1)
    ix = np.clip(((wx - x0) / cell).astype(int), 0, nx - 1)  # (1, Wt)
    fy = ((wy - y_base) / tier) % 1.0
    fx = ((wx - x0) / cell) % 1.0
    body = np.where(occupied[iy, ix][..., None], clothes[iy, ix], seat)  # (Ht, Wt, 3)
    head = occupied[iy, ix] & (fy > 0.62) & (np.abs(fx - 0.5) < 0.28)
    body = np.where(head[..., None], np.array([205, 160, 125.0], dtype=np.float32), body)
    body = np.where((fy < 0.1)[..., None], seat * 0.55, body)  # the edge of each tier
    inside = np.clip((wy - y_base) * 40, 0, 1) * np.clip((y_top - wy) * 40, 0, 1)  # (Ht, 1)
    _over_(tex, np.broadcast_to(inside, tex.shape[:2]), body)


def _draw_pool_(tex: np.ndarray, wx: np.ndarray, wy: np.ndarray, water_y: float, deck_h: float,
                rng: np.random.Generator) -> None:
    """In place: the deck along the far side of the pool and the tiled pool wall under the surface. Draws the
    deck colour, the tile colour and the lane-line spacing."""
    deck = rng.uniform(150, 235, 3).astype(np.float32)
    tile = rng.uniform(120, 240, 3).astype(np.float32)
    lane = rng.uniform(0.6, 1.4)
    shape = tex.shape[:2]
    on_deck = np.clip((wy - water_y) * 40, 0, 1) * np.clip((water_y + deck_h - wy) * 40, 0, 1)
    grout = ((wx * 6.0) % 1.0 < 0.12)
    _over_(tex, np.broadcast_to(on_deck, shape), np.where(grout[..., None], deck * 0.8, deck))
    under = np.broadcast_to(np.clip((water_y - wy) * 40, 0, 1), shape)
    lines = (np.abs((wx / lane) % 1.0 - 0.5) < 0.05) | ((wy * 6.0) % 1.0 < 0.08)
    _over_(tex, under, np.where(lines[..., None], tile * 0.35, tile))


def _draw_boards_(tex: np.ndarray, wx: np.ndarray, wy: np.ndarray, water_y: float, dens: float,
                  rng: np.random.Generator) -> None:
    """In place: other platforms and springboards of the diving tower, behind the diver's. Draws their
    number, then per board its edge, length, height and colour."""
    for _ in range(int(rng.integers(0, 4))):
        edge, length = rng.uniform(-3.0, 2.5), rng.uniform(0.6, 2.0)
        top = rng.uniform(water_y + 0.6, 1.5)
        col = rng.uniform(110, 230, 3).astype(np.float32)
        _over_(tex, _box_cover(wx, wy, edge - length, edge, top - 0.12, top, dens), col)
        _over_(tex, _box_cover(wx, wy, edge - length * 0.7, edge - length * 0.5, water_y, top - 0.12, dens),
               col * 0.7)


def _draw_distractors_(tex: np.ndarray, wx: np.ndarray, wy: np.ndarray, water_y: float, px_per_unit: float,
                       cfg: dict[str, Any], rng: np.random.Generator) -> None:
    """In place: static, class-independent discs and boxes. Draws their number, then per shape its
    centre, size, colour and kind."""
    n_dis = int(rng.integers(cfg["distractors"][0], cfg["distractors"][1] + 1))
    for _ in range(n_dis):
        cx_, cy_ = rng.uniform(-3.0, 3.5), rng.uniform(water_y + 0.4, 1.8)
        rad = rng.uniform(0.08, 0.3)
        col = rng.uniform(40, 230, 3).astype(np.float32)
        if rng.random() < 0.5:
            cov = _disc_cover(wx, wy, cx_, cy_, rad, px_per_unit)
        else:
            cov = _box_cover(wx, wy, cx_ - rad, cx_ + rad, cy_ - 0.5 * rad, cy_ + 0.5 * rad, px_per_unit)
        _over_(tex, cov, col)


def _platform_(tex: np.ndarray, wx: np.ndarray, wy: np.ndarray, water_y: float, px_per_unit: float,
               colours: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
    """In place: the tower and the platform, whose top is y = 0 and edge x = 0 (no draws)."""
    if colours is None:
        colours = tuple(np.array(c, dtype=np.float32) for c in ((120, 118, 112), (175, 172, 165), (225, 225, 215)))
    for box, col in zip(((-1.25, -0.65, water_y - 1, -0.2), (-6.0, 0.0, -0.2, 0.0), (-6.0, 0.0, -0.04, 0.0)),
                        colours):
        _over_(tex, _box_cover(wx, wy, *box, px_per_unit), col)


def _draw_movers(x0: float, x1: float, y0: float, y1: float, water_y: float, deck_h: float, cfg: dict[str, Any],
                 rng: np.random.Generator) -> list[_Mover]:
    """Moving distractors: people walking along the deck and balls or birds crossing the scene. Draws their
    number, then per mover its kind, position, speed, size and colours."""
    out = []
    for _ in range(int(rng.integers(cfg["movers"][0], cfg["movers"][1] + 1))):
        walker = bool(rng.random() < 0.5)
        if walker:
            size = rng.uniform(0.3, 0.6)
            p0 = np.array([rng.uniform(x0, x1), water_y + deck_h + size / 2])
            v = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(0.01, 0.04), 0.0])
        else:
            size = rng.uniform(0.05, 0.15)
            p0 = np.array([rng.uniform(x0, x1), rng.uniform(max(y0, water_y + 0.3), y1)])
            ang = rng.uniform(0, 2 * _PI)
            v = rng.uniform(0.03, 0.1) * np.array([math.cos(ang), math.sin(ang)])
        colour = rng.uniform(20, 245, 3).astype(np.float32)
        head = np.array([rng.uniform(150, 235), rng.uniform(105, 175), rng.uniform(70, 140)], dtype=np.float32)
        out.append(_Mover(walker, p0, v, size, colour, head))
    return out


def _blur_(tex: np.ndarray, sigma: float) -> None:
    """In place: separable Gaussian blur of a texture (Ht, Wt, 3) with std ``sigma`` texels (edges repeated):
    the background out of focus, as behind a diver filmed with a long lens (no draws)."""
    if sigma <= 0:
        return
    r = int(math.ceil(2.5 * sigma))
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2).astype(np.float32)
    w /= w.sum()
    for axis in (0, 1):
        n = tex.shape[axis]
        pad = np.concatenate([np.take(tex, [0] * r, axis=axis), tex, np.take(tex, [n - 1] * r, axis=axis)], axis=axis)
        out = np.zeros_like(tex)
        for k, wk in enumerate(w):
            out += wk * np.take(pad, np.arange(k, k + n), axis=axis)
        tex[...] = out


def _scene(cam: _Camera, view: _View, size: int, water_y: float, cfg: dict[str, Any],
           rng: np.random.Generator) -> _Scene:
    """The static scene as a world texture (one texel per pixel at the closest zoom); each frame samples it
    under the camera. ``background: plain``: the same sky, tower and platform in every video, with the
    static distractors; ``varied``: per-video backdrop, stands with a crowd, deck and pool wall, other boards,
    static distractors, tower and platform in per-video colours, and water of per-video colour and clarity,
    then the moving distractors."""
    half = size / math.sqrt(2.0) / cam.ppu + 2.0 / cam.ppu  # (T,) reach of a frame in any direction
    x0 = float((cam.centre[:, 0] - half).min()) / view.cos_a
    x1 = float((cam.centre[:, 0] + half).max()) / view.cos_a
    y0 = float((cam.centre[:, 1] - half).min())
    y1 = float((cam.centre[:, 1] + half).max())
    dens = float(cam.ppu.max())
    tw_, th_ = math.ceil((x1 - x0) * dens) + 2, math.ceil((y1 - y0) * dens) + 2
    wx = (x0 + (np.arange(tw_, dtype=np.float32) + 0.5) / dens)[None, :]  # (1, Wt)
    wy = (y1 - (np.arange(th_, dtype=np.float32) + 0.5) / dens)[:, None]  # (Ht, 1)
    if cfg["background"] == "plain":
        tex = _sky(wy, water_y, (th_, tw_))
        _draw_distractors_(tex, wx, wy, water_y, dens, cfg, rng)
        _platform_(tex, wx, wy, water_y, dens)
        water, alpha, deck_h = np.array([40, 120, 175.0], dtype=np.float32), 0.88, 0.2
    else:
        deck_h = rng.uniform(0.15, 0.35)
        tex = _draw_backdrop(wx, wy, water_y, dens, rng)
        _draw_stands_(tex, wx, wy, water_y, deck_h, rng)
        _draw_pool_(tex, wx, wy, water_y, deck_h, rng)
        _draw_boards_(tex, wx, wy, water_y, dens, rng)
        _draw_distractors_(tex, wx, wy, water_y, dens, cfg, rng)
        # the background is out of focus and hazy; the diver's tower and platform, next to the diver, are not
        _blur_(tex, float(cfg["background_blur"]) * dens / (float(cfg["fig_scale"]) * size))
        mean = tex.reshape(-1, 3).mean(0)
        tex[...] = mean + (tex - mean) * np.float32(cfg["background_contrast"])
        tower = rng.uniform(90, 200, 3).astype(np.float32)
        _platform_(tex, wx, wy, water_y, dens, (tower, tower * 1.25, rng.uniform(170, 250, 3).astype(np.float32)))
        water = np.array([rng.uniform(20, 70), rng.uniform(90, 160), rng.uniform(140, 200)], dtype=np.float32)
        alpha = rng.uniform(0.72, 0.92)
    movers = _draw_movers(x0, x1, y0, y1, water_y, deck_h, cfg, rng)
    return _Scene(tex, x0, y1, dens, water, float(alpha), movers)


def _diver(screen: np.ndarray, jidx: dict[str, int], cam: _Camera, size: int, scale: float, cfg: dict[str, Any],
           rng: np.random.Generator) -> _Diver:
    """The diver's coverage per frame in a window of B x B pixels that follows it, as colour layers.
    Draws the skin colour (3 uniforms), then the swimsuit, then the cap: from a few fixed colours when
    ``colour_jitter`` is 0, else each channel moved by up to ``colour_jitter`` x 80 from it."""
    r_w = np.array([r for *_, r, _c in _SEGMENTS]) * scale * float(cfg["limb_width"])  # world units
    r_px = np.maximum(r_w[None, :] * cam.ppu[:, None], 0.75)  # (T, K)
    pts = screen - cam.centre[:, None, :]  # (T, J, 2)
    c, s = np.cos(cam.roll)[:, None], np.sin(cam.roll)[:, None]
    u = (c * pts[..., 0] + s * pts[..., 1]) * cam.ppu[:, None]
    v = (s * pts[..., 0] - c * pts[..., 1]) * cam.ppu[:, None]
    px = np.stack([u + size / 2, v + size / 2], axis=-1)  # (T, J, 2) pixel coordinates
    a_px = px[:, [jidx[a] for a, *_ in _SEGMENTS]]
    b_px = px[:, [jidx[b] for _, b, *_ in _SEGMENTS]]
    ends = np.concatenate([a_px, b_px], axis=1)
    reach = r_px.max(axis=1)[:, None]  # (T, 1)
    lo_px = np.floor(ends.min(axis=1) - reach - 1).astype(int)  # (T, 2)
    wins = (np.ceil(ends.max(axis=1) + reach + 1).astype(int) - lo_px).max(axis=1)  # (T,) window per frame
    slots = [[k for k, seg in enumerate(_SEGMENTS) if seg[3] == slot] for slot in ("skin", "suit", "cap")]
    layers = []
    for i, win in enumerate(wins):  # each frame in its own window: the zoom changes the diver's size
        wgrid = np.arange(max(8, win), dtype=np.float32) + 0.5
        cover = _capsule_cover(wgrid[None, :], wgrid[:, None], a_px[i] - lo_px[i], b_px[i] - lo_px[i],
                               r_px[i])  # (K, B, B)
        layers.append([cover[ks].max(axis=0) for ks in slots])  # coverage of a layer = max over its parts
    cj = float(cfg["colour_jitter"])
    skin = np.array([rng.uniform(150, 235), rng.uniform(105, 175), rng.uniform(70, 140)])
    suit = np.array([[200, 30, 40], [30, 30, 35], [230, 120, 20], [120, 40, 150], [20, 140, 60]],
                    dtype=np.float64)[rng.integers(5)]
    cap = np.array([[245, 245, 240], [250, 215, 40]], dtype=np.float64)[rng.integers(2)]
    if cj > 0:
        skin, suit, cap = (np.clip(col + rng.uniform(-80, 80, 3) * cj, 0, 255) for col in (skin, suit, cap))
    # layers, back to front: limbs (skin), swimsuit, head
    return _Diver(layers, [col.astype(np.float32) for col in (skin, suit, cap)], lo_px)


def _draw_splash(names: list[str], x_in: float, rng: np.random.Generator) -> _Splash:
    """A foam mound and droplets thrown from the entry point: draws the number of droplets, then their
    horizontal velocities, vertical velocities and radii."""
    names_arr = np.array(names)
    splash_idx = np.flatnonzero(names_arr == "splash")
    post_idx = np.flatnonzero((names_arr == "idle") & (np.arange(len(names)) > splash_idx[0]))
    ns = len(splash_idx)
    n_drops = int(rng.integers(8, 14))
    vx = rng.normal(0, 0.35, n_drops)
    vy = rng.uniform(0.7, 1.5, n_drops)
    rd = rng.uniform(0.035, 0.07, n_drops)
    foam_u = {int(fi): (j + 1.0) / ns for j, fi in enumerate(np.concatenate([splash_idx, post_idx]))}
    return _Splash(foam_u, x_in, vx, vy, rd)


def _quads(tex: np.ndarray) -> np.ndarray:
    """The 2 x 2 texel neighbourhood of every texel of ``tex`` (Ht, Wt, 3) as one row: (Ht * Wt, 12) float32
    (the last row and column repeat the edge), so that a bilinear lookup is one row gather."""
    pad = np.concatenate([tex, tex[-1:]], axis=0)
    pad = np.concatenate([pad, pad[:, -1:]], axis=1)
    quad = np.concatenate([pad[:-1, :-1], pad[:-1, 1:], pad[1:, :-1], pad[1:, 1:]], axis=-1)
    return np.ascontiguousarray(quad, dtype=np.float32).reshape(-1, 12)


def _sample(quads: np.ndarray, shape: tuple[int, int], fu: np.ndarray, fv: np.ndarray) -> np.ndarray:
    """Bilinear lookup in a texture of ``shape`` (Ht, Wt) given as :func:`_quads`, at texel coordinates ``fu``
    (column) and ``fv`` (row), arrays of one shape (0 = the centre of the first texel; clamped at the
    edges). Returns (..., 3) float32."""
    h, w = shape
    fu = np.clip(fu, 0.0, w - 1.0)
    fv = np.clip(fv, 0.0, h - 1.0)
    iu, iv = fu.astype(np.int64), fv.astype(np.int64)
    au, av = (fu - iu).astype(np.float32), (fv - iv).astype(np.float32)
    q = np.take(quads, iv * w + iu, axis=0).reshape(*fu.shape, 4, 3)
    wts = np.stack([(1 - au) * (1 - av), au * (1 - av), (1 - au) * av, au * av], axis=-1)
    return np.einsum("...kc,...k->...c", q, wts)


def _paint_movers_(img: np.ndarray, movers: list[_Mover], wx: np.ndarray, wy: np.ndarray, ppu: np.ndarray) -> None:
    """In place: the moving distractors over every frame of ``img`` (T, S, S, 3); wx, wy (T, S, S) are the
    world coordinates of the pixels and ppu (T, 1, 1) the zoom of each frame."""
    t = np.arange(len(img), dtype=np.float32)[:, None, None]
    for m in movers:
        cx_, cy_ = m.p0[0] + m.v[0] * t, m.p0[1] + m.v[1] * t  # (T, 1, 1)
        if m.walker:
            h = m.size
            sway = cx_ + 0.08 * h * np.sin(0.5 * t)
            _over_(img, _box_cover(wx, wy, sway - 0.14 * h, sway + 0.14 * h, cy_ - 0.5 * h, cy_ + 0.25 * h, ppu),
                   m.colour)
            _over_(img, _disc_cover(wx, wy, cx_, cy_ + 0.37 * h, 0.12 * h, ppu), m.head)
        else:
            _over_(img, _disc_cover(wx, wy, cx_, cy_, m.size, ppu), m.colour)


def _paint_diver_(frame: np.ndarray, i: int, diver: _Diver, size: int) -> None:
    """In place: the diver's layers over frame ``i``, clipped to the frame."""
    x0, y0 = diver.lo_px[i]
    win = diver.layers[i][0].shape[0]
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + win, size), min(y0 + win, size)
    if sx0 < sx1 and sy0 < sy1:
        for cov_l, col_l in zip(diver.layers[i], diver.colours):
            _over_(frame[sy0:sy1, sx0:sx1], cov_l[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0], col_l)


def _paint_water_(img: np.ndarray, scene: _Scene, water_y: float, wx: np.ndarray, wy: np.ndarray,
                  ppu: np.ndarray) -> None:
    """In place: the water over every frame of ``img`` (below the surface, over the diver), with ripples
    moving over time; it darkens with depth. wx, wy (T, S, S) world coordinates, ppu (T, 1, 1) zoom."""
    cov = np.clip(0.5 + (water_y - wy) * ppu, 0, 1) * np.float32(scene.water_alpha)
    depth = np.clip((water_y - wy) / 2.0, 0, 1)[..., None]
    t = np.arange(len(img), dtype=np.float32)[:, None, None]
    ripple = (8.0 * np.sin(wx * 9.0 + 0.7 * t) * np.sin(wy * 5.0))[..., None]
    _over_(img, cov, scene.water * (1.0 - 0.3 * depth) + ripple)


_FOAM_COLOUR = np.array([235, 242, 250.0], dtype=np.float32)


def _paint_splash_(frame: np.ndarray, uu: float, splash: _Splash, water_y: float, wx: np.ndarray,
                   wy: np.ndarray, ppu: float) -> None:
    """In place: the foam mound (growing, then fading after the splash phase) and, during the splash,
    the droplets above the surface; ``uu`` is the splash progress of the frame."""
    fade = max(0.0, 1.0 - max(0.0, uu - 1.0) * 0.5)
    width = 0.25 + 0.35 * min(uu, 1.0)
    hgt = 0.35 * math.sin(_PI * min(uu, 1.0)) + 0.05
    d = np.sqrt(((wx - splash.x_in) / width) ** 2 + ((wy - water_y) / hgt) ** 2) - 1.0
    cov = np.clip(0.5 - d * ppu * min(width, hgt), 0, 1) * 0.9 * fade
    if uu <= 1.0:
        dxp = splash.x_in + splash.vx * uu
        dyp = water_y + splash.vy * uu - 1.6 * uu * uu
        for q in np.flatnonzero(dyp >= water_y):
            cov = np.maximum(cov, _disc_cover(wx, wy, dxp[q], dyp[q], splash.rd[q], ppu))
    _over_(frame, cov, _FOAM_COLOUR)


def _expose(img: np.ndarray, gain: float, tint: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Lighting, then pixel noise (draws one standard normal per value, when ``sigma > 0``), then
    rounding to uint8. Scales ``img`` in place."""
    img *= (gain * tint).astype(np.float32)
    if sigma > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_video(spec: dict[str, Any], cfg: dict[str, Any],
                 rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Render one SynthDive video.

    spec: output of :func:`parse_class`; cfg: a resolved config (:func:`resolve_config`);
    rng: the video's generator (all randomness comes from it).
    Returns ``(frames, phases)``: frames (T, S, S, 3) uint8 RGB, phases a list of T phase names.

    The steps run in this order, which is also the order of the random draws: figure, water level,
    timeline, motion, view (mirror, angle), camera, lighting, scene (background, distractors, movers),
    diver colours, splash, pixel noise. A mirrored view flips the finished frames left-right.
    """
    size = int(cfg["frame_size"])
    fig = _draw_figure(spec, cfg, rng)
    water_y = _draw_water_level(rng)
    phases = _timeline(spec, cfg, rng)
    mot = _motion(spec, phases, fig.position_pose, rng)
    view = _draw_view(cfg, rng)
    world, jidx, x_in = _world_joints(spec, mot, phases, fig, water_y)
    screen = _project(world, view)
    cam = _camera(screen, mot["visible"], water_y, size, cfg, rng)
    gain, tint = _draw_lighting(cfg, rng)
    scene = _scene(cam, view, size, water_y, cfg, rng)
    diver = _diver(screen, jidx, cam, size, fig.scale, cfg, rng)
    splash = _draw_splash(mot["names"], x_in, rng)

    # world coordinates of every pixel of every frame, under the camera (x foreshortened by the view)
    grid = np.arange(size, dtype=np.float32) + np.float32(0.5 - size / 2)
    gu, gv = grid[None, None, :], grid[None, :, None]  # pixel offsets from the frame centre (right, down)
    c = np.cos(cam.roll).astype(np.float32)[:, None, None]
    s = np.sin(cam.roll).astype(np.float32)[:, None, None]
    ppu = cam.ppu.astype(np.float32)[:, None, None]
    cx, cy = (cam.centre[:, k].astype(np.float32)[:, None, None] for k in (0, 1))
    wx = (cx + (c * gu + s * gv) / ppu) / np.float32(view.cos_a)  # (T, S, S)
    wy = cy + (s * gu - c * gv) / ppu
    img = _sample(_quads(scene.tex), scene.tex.shape[:2], (wx - np.float32(scene.x0)) * np.float32(scene.dens) - 0.5,
                  (np.float32(scene.y1) - wy) * np.float32(scene.dens) - 0.5)  # (T, S, S, 3)
    _paint_movers_(img, scene.movers, wx, wy, ppu)
    for i in np.flatnonzero(mot["visible"]):
        _paint_diver_(img[i], i, diver, size)
    _paint_water_(img, scene, water_y, wx, wy, ppu)
    for i, uu in splash.foam_u.items():
        _paint_splash_(img[i], uu, splash, water_y, wx[i], wy[i], float(cam.ppu[i]))
    frames = _expose(img, gain, tint, float(cfg["noise_sigma"]), rng)
    if view.mirror:
        frames = np.ascontiguousarray(frames[:, :, ::-1])
    return frames, mot["names"]


# ----------------------------------------------------------------------------------------------
# encoding and the dataset


_CHUNK = 32  # videos per ffmpeg process (fixed: the encoded bytes depend on it)


def _encode_chunk(frames: list[np.ndarray], paths: list[Path], fps: int, crf: int) -> None:
    """Encode several videos with one ffmpeg process (start-up costs ~0.1 s of CPU per process).

    The frames of all videos are piped as one raw RGB stream; an IDR key frame is forced at each
    video's first frame and the segment muxer cuts one mp4 per video there. B-frames are off so
    every file starts at timestamp 0. frames: list of (T_i, S, S, 3) uint8.
    """
    size = frames[0].shape[1]
    starts = np.cumsum([0] + [len(f) for f in frames])[:-1]
    tmp = paths[0].parent / f".encode_{paths[0].stem}"
    tmp.mkdir(parents=True, exist_ok=True)
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{size}x{size}", framerate=fps)
    opts: dict[str, Any] = {
        "vcodec": "libx264", "pix_fmt": "yuv420p", "crf": crf, "preset": "veryfast", "bf": 0,
        "threads": 1, "x264-params": "forced-idr=1", "map_metadata": -1, "fflags": "+bitexact",
        "flags:v": "+bitexact", "loglevel": "error",
        "force_key_frames": "expr:" + "+".join(f"eq(n,{int(n)})" for n in starts),
        "f": "segment", "segment_format": "mp4", "reset_timestamps": 1,
    }
    if len(frames) > 1:
        opts["segment_frames"] = ",".join(str(int(n)) for n in starts[1:])
    stream = ffmpeg.output(stream, str(tmp / "%05d.mp4"), **opts)
    proc = ffmpeg.run_async(stream, cmd="ffmpeg", pipe_stdin=True, pipe_stderr=True, overwrite_output=True)
    try:
        for f in frames:
            proc.stdin.write(np.ascontiguousarray(f).tobytes())
        proc.stdin.close()
        err = proc.stderr.read()
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed encoding {paths[0].name}..: {err.decode(errors='replace').strip()}")
    for j, path in enumerate(paths):
        seg = tmp / f"{j:05d}.mp4"
        if not seg.is_file():
            raise RuntimeError(f"ffmpeg wrote no segment for {path} (expected {seg})")
        seg.replace(path)
    tmp.rmdir()


def _annotated_span(names: list[str], cfg: dict[str, Any], rng: np.random.Generator) -> tuple[int, int]:
    """The annotated clip ``[start, end)`` of a rendered video: the action (its non-idle frames) with a margin
    of idle frames before and after, each drawn from ``annotation_margin`` (after the render's last draw) and
    cut to the idle frames there are."""
    action = [j for j, n in enumerate(names) if n != "idle"]
    lo, hi = cfg["annotation_margin"]
    before = min(int(rng.integers(lo, hi + 1)), action[0])
    after = min(int(rng.integers(lo, hi + 1)), len(names) - 1 - action[-1])
    return action[0] - before, action[-1] + 1 + after


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


def plan_videos(cfg: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """The list of videos to render: dicts with split, vid_name, label, diving48_label, key
    (the per-video seed sequence entropy). Names are shuffled so they do not reveal the class."""
    vocab = load_diving48_vocab()
    table = class_table(cfg, vocab)
    plan: list[dict[str, Any]] = []
    for split in ("train", "test"):
        items = []
        for c in table:
            if c["novel"] and split == "test":
                continue
            n = cfg["train_per_class"] if split == "train" else cfg["test_per_class"]
            for k in range(int(n)):
                items.append((c["label"], c["diving48_label"], k))
        perm = np.random.default_rng([seed, _SPLIT_CODE[split], 7919]).permutation(len(items))
        width = max(4, len(str(len(items))))
        for j, pi in enumerate(perm):
            label, d48, k = items[pi]
            plan.append({"split": split, "vid_name": f"{split}_{j:0{width}d}", "label": int(label),
                         "diving48_label": int(d48), "key": [seed, _SPLIT_CODE[split], int(d48), int(k)]})
    return plan


def _render_chunk(items: list[dict[str, Any]], specs: dict[int, dict[str, Any]],
                  cfg: dict[str, Any]) -> list[tuple[np.ndarray, list[str], int, int]]:
    """Render planned videos: per item (frames, phase names, annotated start, end), each from its own key."""
    out = []
    for item in items:
        rng = np.random.default_rng(item["key"])
        frames, names = render_video(specs[item["label"]], cfg, rng)
        out.append((frames, names, *_annotated_span(names, cfg, rng)))
    return out


def generate(out_dir: str | os.PathLike, cfg: dict | None, seed: int,
             log: Callable[[str], Any] = print, workers: int = 1) -> dict[str, Any]:
    """Render SynthDive into ``out_dir`` (see the module docstring for the files written).

    cfg: the ``synthdive:`` config section (missing keys take :data:`DEFAULT_CONFIG` values);
    seed: all randomness derives from it (same seed and cfg -> byte-identical annotations and
    identical decoded frames, whatever ``workers``: the rendering processes, each video drawn from its
    own key). Returns a summary dict: ``videos`` per split, ``per_class`` counts per split (by label),
    ``frames`` (min/mean/max per video), ``classes``, ``seconds``.
    """
    cfg = resolve_config(cfg)
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    for tmp in (out / "videos").glob(".encode_*"):  # left by an interrupted run
        shutil.rmtree(tmp)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    vocab = load_diving48_vocab()
    table = class_table(cfg, vocab)
    plan = plan_videos(cfg, seed)
    specs = {c["label"]: parse_class(vocab[c["diving48_label"]]) for c in table}
    size, fps, crf = int(cfg["frame_size"]), int(cfg["fps"]), int(cfg["crf"])
    t0 = time.perf_counter()
    ann: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    phases: dict[str, list[str]] = {}
    lengths: list[int] = []
    total = len(plan)
    log_every = max(1, total // 10)
    log(f"[synthdive] rendering {total} videos ({len(table)} classes, {size}x{size}) into {out}")
    writer: threading.Thread | None = None
    failure: list[BaseException] = []

    def encode(frames: list[np.ndarray], paths: list[Path]) -> None:
        try:
            _encode_chunk(frames, paths, fps, crf)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failure.append(exc)

    chunks = [plan[c0:c0 + _CHUNK] for c0 in range(0, total, _CHUNK)]
    pool = None
    if workers > 1 and len(chunks) > 1:
        import concurrent.futures
        import multiprocessing

        # fork: every worker starts at the first submit, before the encoder thread exists (spawn would re-run
        # the calling script, e.g. a Snakemake rule script, in every worker)
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

        def in_order():  # at most workers + 1 chunks rendered ahead of the encoder, so memory stays bounded
            ahead: list[concurrent.futures.Future] = []
            for c in chunks:
                ahead.append(pool.submit(_render_chunk, c, specs, cfg))
                if len(ahead) > workers:
                    yield ahead.pop(0).result()
            for f in ahead:
                yield f.result()

        rendered = in_order()
    else:
        rendered = (_render_chunk(c, specs, cfg) for c in chunks)
    done = 0
    try:
        for items, videos in zip(chunks, rendered):
            chunk_frames, chunk_paths = [], []
            for item, (frames, names, start, end) in zip(items, videos):
                chunk_frames.append(frames)
                chunk_paths.append(out / "videos" / f"{item['vid_name']}.mp4")
                ann[item["split"]].append({"vid_name": item["vid_name"], "label": item["label"],
                                           "start_frame": start, "end_frame": end})
                phases[item["vid_name"]] = names
                lengths.append(len(names))
                done += 1
                if done % log_every == 0 or done == total:
                    el = time.perf_counter() - t0
                    rate = done / max(el, 1e-9)
                    log(f"[synthdive] {done}/{total} videos, {rate:.1f} videos/s, "
                        f"~{(total - done) / rate:.0f}s left")
            if writer is not None:
                writer.join()
            if failure:
                raise failure[0]
            writer = threading.Thread(target=encode, args=(chunk_frames, chunk_paths), daemon=True)
            writer.start()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if writer is not None:
        writer.join()
    if failure:
        raise failure[0]
    for items in ann.values():
        items.sort(key=lambda a: a["vid_name"])
    seconds = time.perf_counter() - t0
    per_class = {split: {str(c["label"]): sum(a["label"] == c["label"] for a in ann[split]) for c in table}
                 for split in ann}
    summary = {
        "videos": {split: len(v) for split, v in ann.items()},
        "per_class": per_class,
        "frames": {"min": int(min(lengths)), "mean": float(np.mean(lengths)), "max": int(max(lengths))},
        "classes": len(table),
        "novel_classes": sum(c["novel"] for c in table),
        "frame_size": size,
        "seconds": round(seconds, 2),
    }

    def dump(name: str, obj: Any) -> None:
        (out / "annotations" / name).write_text(json.dumps(obj, indent=1) + "\n")

    # videos left by an earlier run with another config would not be in the annotations
    for stale in sorted(set((out / "videos").glob("*.mp4")) - {out / "videos" / f"{n}.mp4" for n in phases}):
        stale.unlink()
    dump("train.json", ann["train"])
    dump("test.json", ann["test"])
    dump("vocab.json", [vocab[c["diving48_label"]] for c in table])
    dump("classes.json", table)
    dump("phases.json", {k: phases[k] for k in sorted(phases)})
    dump("summary.json", {k: v for k, v in summary.items() if k != "seconds"})
    log(f"[synthdive] done: {summary['videos']} videos, frames per video "
        f"{summary['frames']['min']}-{summary['frames']['max']}, {seconds:.1f}s")
    return summary
