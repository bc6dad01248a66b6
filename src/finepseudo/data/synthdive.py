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

Every phase's duration is scaled independently per video, so clips of one class are not
frame-aligned. Nuisance factors (lighting, camera shake, pixel noise, distractor shapes, body
size and limb ratios, suit/cap colours) are drawn per video independently of the class.

Outputs of :func:`generate` (``out_dir``):

- ``videos/<vid_name>.mp4``: H.264, yuv420p, written by piping raw RGB frames to ``ffmpeg``;
- ``annotations/{train,test}.json``: Diving48 V2 format, a list of
  ``{"vid_name", "label", "start_frame", "end_frame"}``. ``start_frame`` is the first frame of the
  action (first non-idle frame) and ``end_frame`` is **exclusive** (one past the last splash
  frame), so ``frames[start_frame:end_frame]`` is the action; ``label`` indexes ``vocab.json``;
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
    "phase_scale": [0.7, 1.4],
    "idle_frames": [0, 5],
    "phase_frames": {
        "approach": 8,
        "takeoff": 4,
        "flight_base": 5,
        "half_somersault": 5,
        "entry": 3,
        "splash": 6,
    },
    "shake_px": 0.5,
    "distractors": [2, 5],
    "lighting": 0.15,
    "body_jitter": 0.08,
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
    "fig_scale": "standing figure height as a fraction of the frame height (camera follows the diver).",
    "limb_width": "multiplier of the limb / torso thickness (1 = slender).",
    "noise_sigma": "std of Gaussian pixel noise, in 0-255 units (<= 5 keeps poses easy to see).",
    "phase_scale": "[min, max] of the independent per-video, per-phase duration factor.",
    "idle_frames": "[min, max] idle frames before and (independently) after the action.",
    "phase_frames": "base phase durations in frames before scaling; flight lasts "
    "flight_base + half_somersault * (number of half somersaults).",
    "shake_px": "std of the per-frame camera shake in pixels.",
    "distractors": "[min, max] number of static distractor shapes in the scene.",
    "lighting": "max relative change of brightness / per-channel tint per video.",
    "body_jitter": "max relative change of body size and of each limb length per video.",
    "pose_jitter": "max change (radians) of the joint angles of each position per video.",
    "crf": "libx264 constant rate factor (lower = higher quality, larger files).",
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
    for key in ("phase_scale", "idle_frames", "distractors"):
        lo, hi = out[key]
        if lo > hi or lo < 0:
            raise ValueError(f"synthdive.{key} must be [min, max] with 0 <= min <= max, got {out[key]}")
    if out["phase_scale"][0] <= 0:
        raise ValueError("synthdive.phase_scale must be positive")
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
    """Body-frame joint positions for T frames.

    pose: (T, 8) joint angles; psi: (T,) twist angles (rotation about the torso axis). Returns a
    dict name -> (T, 2) projected positions (x = front of the diver, y = up along the torso,
    origin at the hip centre); the lateral axis is foreshortened by the twist.
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
    return {n: np.stack([x * c + z * s, y], axis=-1) for n, (x, y, z) in pts3.items()}


def _rot(points: np.ndarray, theta: np.ndarray, facing: float) -> np.ndarray:
    """Rotate body-frame points (T, ..., 2) by -theta (forward = towards the diver's front) and
    mirror by ``facing`` into world axes (x right, y up)."""
    c, s = np.cos(theta), np.sin(theta)
    while c.ndim < points.ndim - 1:
        c, s = c[:, None], s[:, None]
    x, y = points[..., 0], points[..., 1]
    # forward rotation by theta: the head (0, 1) moves towards +x (the front)
    xr = x * c + y * s
    yr = -x * s + y * c
    return np.stack([facing * xr, yr], axis=-1)


def _timeline(spec: dict[str, Any], cfg: dict[str, Any], rng: np.random.Generator) -> list[tuple[str, int]]:
    """Phase durations for one video: list of (phase, frames)."""
    pf = cfg["phase_frames"]
    lo, hi = cfg["phase_scale"]

    def dur(base: float) -> int:
        return max(1, round(base * rng.uniform(lo, hi)))

    i_lo, i_hi = cfg["idle_frames"]
    flight = pf["flight_base"] + pf["half_somersault"] * spec["som_halves"]
    return [
        ("idle", int(rng.integers(i_lo, i_hi + 1))),
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
    """Anti-aliased coverage of capsules. px, py: (H, W) pixel centres; a, b: (T, K, 2) segment
    end points in pixels; r: (K,) radii in pixels. Returns (T, K, H, W) float32 in [0, 1]."""
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
    d = np.sqrt(ex * ex + ey * ey) - r[None, :, None, None].astype(np.float32)
    return np.clip(0.5 - d, 0.0, 1.0)


def _box_cover(wx: np.ndarray, wy: np.ndarray, x0: float, x1: float, y0: float, y1: float,
               px_per_unit: float) -> np.ndarray:
    """Anti-aliased coverage of the world box [x0, x1] x [y0, y1]; wx, wy world coordinates."""
    dx = np.maximum(x0 - wx, wx - x1)
    dy = np.maximum(y0 - wy, wy - y1)
    d = np.maximum(dx, dy) * px_per_unit
    return np.clip(0.5 - d, 0.0, 1.0)


def _over_(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """In place: composite ``color`` (3,) or (..., 3) with coverage ``alpha`` (broadcastable to
    img's leading axes) over ``img`` (..., 3) float32."""
    a = alpha[..., None].astype(np.float32)
    img += a * (color - img)


# render_video, step by step: each drawing step is a small function, and those that take ``rng``
# draw from the video's generator. The order of the calls is the order of the draws and so part of
# the output (tests/test_synthdive.py pins rendered clips): a draw added, removed or moved changes
# every draw after it, so only one added after the pixel noise leaves existing videos unchanged.


class _Figure(NamedTuple):
    scale: float  # body size factor
    dims: dict[str, float]  # segment lengths in world units
    position_pose: np.ndarray  # (8,) the dive position's joint angles, jittered


class _Scene(NamedTuple):
    tex: np.ndarray  # (Ht, Wt, 3) float32 static world texture: sky, distractors, tower and platform
    water_tex: np.ndarray  # (Ht, 1, 3) water colour per texture row
    water_cov: np.ndarray  # (Ht,) water coverage per texture row
    iu: np.ndarray  # (T,) texel column of each frame's top-left pixel
    iv: np.ndarray  # (T,) texel row of each frame's top-left pixel


class _Diver(NamedTuple):
    layers: list[tuple[np.ndarray, np.ndarray]]  # back to front: (coverage (T, B, B), colour (3,))
    lo_px: np.ndarray  # (T, 2) frame pixel of the window's top-left corner
    win: int  # window size B in pixels


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


def _world_joints(spec: dict[str, Any], mot: dict[str, Any], phases: list[tuple[str, int]], fig: _Figure,
                  water_y: float) -> tuple[np.ndarray, dict[str, int], float]:
    """Joint positions in the world (no draws): the pose of each frame rotated into world axes and placed
    on the platform (feet on its top), on a parabola in flight, then straight down through the surface.
    Returns ``(world (T, J, 2), joint index by name, x of the entry point)``."""
    t_total = len(mot["names"])
    xy = _joints(mot["pose"], mot["psi"], fig.dims)
    names = list(xy)
    jidx = {n: i for i, n in enumerate(names)}
    pts = np.stack([xy[n] for n in names], axis=1)  # (T, J, 2) body frame
    world_rel = _rot(pts, mot["theta"], spec["facing"])  # (T, J, 2) around the hip
    pos = mot["pos"].copy()
    air = mot["air"]
    # platform frames: feet on the platform top (y = 0)
    foot = np.minimum(world_rel[:, jidx["ankleL"], 1], world_rel[:, jidx["ankleR"], 1])
    ground_y = -foot + 0.03
    centroid = world_rel.mean(axis=1)  # (T, 2)
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
    world = world_rel - anchor[:, None, :] + pos[:, None, :]  # (T, J, 2)
    return world, jidx, x_in


def _camera(world: np.ndarray, visible: np.ndarray, water_y: float, px_per_unit: float, shake_px: float,
            rng: np.random.Generator) -> np.ndarray:
    """World position of the frame centre (T, 2): follows the diver, smoothed, never far below the
    surface. Draws the camera shake (one normal per frame and axis), then snaps to whole pixels."""
    t_total = len(world)
    body_c = world.mean(axis=1)
    cam = body_c.copy()
    cam[:, 1] = np.maximum(cam[:, 1], water_y + 0.6)
    cam[~visible] = cam[visible][-1]
    for _ in range(2):  # zero-phase smoothing
        for order in (range(1, t_total), range(t_total - 2, -1, -1)):
            step = 1 if order.start < order.stop else -1
            for i in order:
                cam[i] = 0.55 * cam[i] + 0.45 * cam[i - step]
    cam = cam + rng.normal(0.0, shake_px / px_per_unit, cam.shape)
    return np.round(cam * px_per_unit) / px_per_unit  # whole-pixel camera moves


def _draw_lighting(cfg: dict[str, Any], rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """Draws the video's brightness gain, then its per-channel tint (applied by :func:`_expose`)."""
    lt = float(cfg["lighting"])
    gain = rng.uniform(1 - lt, 1 + lt)
    tint = 1.0 + rng.uniform(-lt, lt, 3) * 0.5
    return gain, tint


def _sky(wy: np.ndarray, water_y: float, shape: tuple[int, int]) -> np.ndarray:
    """The sky gradient as a fresh (Ht, Wt, 3) float32 texture (no draws)."""
    sky_top = np.array([95, 150, 215.0], dtype=np.float32)
    sky_low = np.array([185, 210, 235.0], dtype=np.float32)
    wsky = np.clip((wy - water_y) / 5.0, 0, 1)[..., None]  # (Ht, 1, 1)
    return np.broadcast_to(sky_low * (1 - wsky) + sky_top * wsky, (*shape, 3)).copy()


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
            d = np.sqrt((wx - cx_) ** 2 + (wy - cy_) ** 2) - rad
            cov = np.clip(0.5 - d * px_per_unit, 0, 1)
        else:
            cov = _box_cover(wx, wy, cx_ - rad, cx_ + rad, cy_ - 0.5 * rad, cy_ + 0.5 * rad, px_per_unit)
        _over_(tex, cov, col)


def _platform_(tex: np.ndarray, wx: np.ndarray, wy: np.ndarray, water_y: float, px_per_unit: float) -> None:
    """In place: the tower and the platform, whose top is y = 0 and edge x = 0 (no draws)."""
    for box, col in (((-1.25, -0.65, water_y - 1, -0.2), (120, 118, 112)),
                     ((-6.0, 0.0, -0.2, 0.0), (175, 172, 165)),
                     ((-6.0, 0.0, -0.04, 0.0), (225, 225, 215))):
        _over_(tex, _box_cover(wx, wy, *box, px_per_unit), np.array(col, dtype=np.float32))


def _scene(cam: np.ndarray, size: int, px_per_unit: float, water_y: float, cfg: dict[str, Any],
           rng: np.random.Generator) -> _Scene:
    """The static scene as a world texture at one texel per pixel; each frame is a window of it. Sky,
    distractors (the only draws), tower and platform; the water is composited per frame, over the diver."""
    margin = size / 2 / px_per_unit + 2.0 / px_per_unit
    tx0, tx1 = cam[:, 0].min() - margin, cam[:, 0].max() + margin
    ty0, ty1 = cam[:, 1].min() - margin, cam[:, 1].max() + margin
    tw_, th_ = math.ceil((tx1 - tx0) * px_per_unit) + 2, math.ceil((ty1 - ty0) * px_per_unit) + 2
    wx = (tx0 + (np.arange(tw_, dtype=np.float32) + 0.5) / px_per_unit)[None, :]  # (1, Wt)
    wy = (ty1 - (np.arange(th_, dtype=np.float32) + 0.5) / px_per_unit)[:, None]  # (Ht, 1)
    tex = _sky(wy, water_y, (th_, tw_))
    _draw_distractors_(tex, wx, wy, water_y, px_per_unit, cfg, rng)
    _platform_(tex, wx, wy, water_y, px_per_unit)
    # water colour and coverage, composited over the diver later
    depth_w = np.clip((water_y - wy) / 2.0, 0, 1)  # (Ht, 1)
    water_tex = np.stack([40 - 15 * depth_w, 120 - 35 * depth_w, 175 - 35 * depth_w], axis=-1)  # (Ht, 1, 3)
    water_cov = (np.clip(0.5 + (water_y - wy) * px_per_unit, 0, 1) * 0.88)[:, 0]  # (Ht,)
    # texel offset of each frame's top-left pixel
    u = (cam[:, 0] - tx0) * px_per_unit - size / 2
    v = (ty1 - cam[:, 1]) * px_per_unit - size / 2
    iu, iv = np.rint(u).astype(int), np.rint(v).astype(int)
    return _Scene(tex, water_tex, water_cov, iu, iv)


def _diver(world: np.ndarray, jidx: dict[str, int], cam: np.ndarray, size: int, px_per_unit: float,
           scale: float, cfg: dict[str, Any], rng: np.random.Generator) -> _Diver:
    """The diver's coverage per frame in a window of B x B pixels that follows it, as colour layers.
    Draws the skin colour (3 uniforms), then the swimsuit, then the cap."""
    r_px = np.array([r for *_, r, _c in _SEGMENTS]) * scale * px_per_unit * float(cfg["limb_width"])
    r_px = np.maximum(r_px, 0.75)
    a_w = world[:, [jidx[a] for a, *_ in _SEGMENTS]]
    b_w = world[:, [jidx[b] for _, b, *_ in _SEGMENTS]]

    def to_px(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[..., 0] - cam[:, None, 0]) * px_per_unit + size / 2,
                         (cam[:, None, 1] - p[..., 1]) * px_per_unit + size / 2], axis=-1)

    a_px, b_px = to_px(a_w), to_px(b_w)  # (T, K, 2)
    ends = np.concatenate([a_px, b_px], axis=1)
    lo_px = np.floor(ends.min(axis=1) - r_px.max() - 1).astype(int)  # (T, 2)
    hi_px = np.ceil(ends.max(axis=1) + r_px.max() + 1).astype(int)
    win = int(max(8, (hi_px - lo_px).max()))
    wgrid = np.arange(win, dtype=np.float32) + 0.5
    cover = _capsule_cover(wgrid[None, :], wgrid[:, None], a_px - lo_px[:, None, :], b_px - lo_px[:, None, :],
                           r_px)  # (T, K, B, B)
    skin = np.array([rng.uniform(150, 235), rng.uniform(105, 175), rng.uniform(70, 140)])
    suit = np.array([[200, 30, 40], [30, 30, 35], [230, 120, 20], [120, 40, 150], [20, 140, 60]],
                    dtype=np.float64)[rng.integers(5)]
    cap = np.array([[245, 245, 240], [250, 215, 40]], dtype=np.float64)[rng.integers(2)]
    # layers, back to front: limbs (skin), swimsuit, head; coverage of a layer = max over its parts
    layers = []
    for slot, col in (("skin", skin), ("suit", suit), ("cap", cap)):
        ks = [k for k, seg in enumerate(_SEGMENTS) if seg[3] == slot]
        layers.append((cover[:, ks].max(axis=1), col.astype(np.float32)))  # (T, B, B)
    return _Diver(layers, lo_px, win)


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


def _paint_diver_(frame: np.ndarray, i: int, diver: _Diver, size: int) -> None:
    """In place: the diver's layers over frame ``i``, clipped to the frame."""
    x0, y0 = diver.lo_px[i]
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + diver.win, size), min(y0 + diver.win, size)
    if sx0 < sx1 and sy0 < sy1:
        for cov_l, col_l in diver.layers:
            _over_(frame[sy0:sy1, sx0:sx1], cov_l[i, sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0], col_l)


def _paint_water_(frame: np.ndarray, i: int, scene: _Scene, cam_i: np.ndarray, gridf: np.ndarray,
                  size: int, px_per_unit: float) -> None:
    """In place: the water rows of frame ``i``, with ripples moving over time."""
    y0_ = scene.iv[i]
    rows_cov = scene.water_cov[y0_:y0_ + size]
    wet = np.flatnonzero(rows_cov > 0)
    if len(wet):
        r0 = wet[0]
        fwx = cam_i[0] + (gridf - size / 2) / px_per_unit  # (S,)
        fwy = cam_i[1] - (gridf[r0:] - size / 2) / px_per_unit  # (R,)
        ripple = 8.0 * np.sin(fwx[None, :] * 9.0 + 0.7 * i) * np.sin(fwy[:, None] * 5.0)
        wcol = scene.water_tex[y0_ + r0:y0_ + size] + ripple[..., None]
        _over_(frame[r0:], np.broadcast_to(rows_cov[r0:, None], (size - r0, size)), wcol)


_FOAM_COLOUR = np.array([235, 242, 250.0], dtype=np.float32)


def _paint_splash_(frame: np.ndarray, uu: float, splash: _Splash, water_y: float, cam_i: np.ndarray,
                   gridf: np.ndarray, size: int, px_per_unit: float) -> None:
    """In place: the foam mound (growing, then fading after the splash phase) and, during the splash,
    the droplets above the surface; ``uu`` is the splash progress of the frame."""
    fade = max(0.0, 1.0 - max(0.0, uu - 1.0) * 0.5)
    width = 0.25 + 0.35 * min(uu, 1.0)
    hgt = 0.35 * math.sin(_PI * min(uu, 1.0)) + 0.05
    fwx = (cam_i[0] + (gridf - size / 2) / px_per_unit)[None, :]
    fwy = (cam_i[1] - (gridf - size / 2) / px_per_unit)[:, None]
    d = np.sqrt(((fwx - splash.x_in) / width) ** 2 + ((fwy - water_y) / hgt) ** 2) - 1.0
    cov = np.clip(0.5 - d * px_per_unit * min(width, hgt), 0, 1) * 0.9 * fade
    if uu <= 1.0:
        dxp = splash.x_in + splash.vx * uu
        dyp = water_y + splash.vy * uu - 1.6 * uu * uu
        for q in np.flatnonzero(dyp >= water_y):
            d = np.sqrt((fwx - dxp[q]) ** 2 + (fwy - dyp[q]) ** 2) - splash.rd[q]
            cov = np.maximum(cov, np.clip(0.5 - d * px_per_unit, 0, 1))
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
    timeline, motion, camera, lighting, scene (distractors), diver colours, splash, pixel noise.
    """
    size = int(cfg["frame_size"])
    fig = _draw_figure(spec, cfg, rng)
    water_y = _draw_water_level(rng)
    phases = _timeline(spec, cfg, rng)
    mot = _motion(spec, phases, fig.position_pose, rng)
    world, jidx, x_in = _world_joints(spec, mot, phases, fig, water_y)
    px_per_unit = float(cfg["fig_scale"]) * size  # world unit = nominal standing height
    cam = _camera(world, mot["visible"], water_y, px_per_unit, float(cfg["shake_px"]), rng)
    gain, tint = _draw_lighting(cfg, rng)
    scene = _scene(cam, size, px_per_unit, water_y, cfg, rng)
    diver = _diver(world, jidx, cam, size, px_per_unit, fig.scale, cfg, rng)
    splash = _draw_splash(mot["names"], x_in, rng)

    img = np.empty((len(mot["names"]), size, size, 3), dtype=np.float32)
    gridf = np.arange(size, dtype=np.float32) + 0.5
    for i, frame in enumerate(img):
        # background: the texture window under the camera
        frame[:] = scene.tex[scene.iv[i]:scene.iv[i] + size, scene.iu[i]:scene.iu[i] + size]
        if mot["visible"][i]:
            _paint_diver_(frame, i, diver, size)
        _paint_water_(frame, i, scene, cam[i], gridf, size, px_per_unit)
        if i in splash.foam_u:
            _paint_splash_(frame, splash.foam_u[i], splash, water_y, cam[i], gridf, size, px_per_unit)
    frames = _expose(img, gain, tint, float(cfg["noise_sigma"]), rng)
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
        "vcodec": "libx264", "pix_fmt": "yuv420p", "crf": crf, "preset": "medium", "bf": 0,
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


def generate(out_dir: str | os.PathLike, cfg: dict | None, seed: int,
             log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Render SynthDive into ``out_dir`` (see the module docstring for the files written).

    cfg: the ``synthdive:`` config section (missing keys take :data:`DEFAULT_CONFIG` values);
    seed: all randomness derives from it (same seed and cfg -> byte-identical annotations and
    identical decoded frames). Returns a summary dict: ``videos`` per split, ``per_class`` counts
    per split (by label), ``frames`` (min/mean/max per video), ``classes``, ``seconds``.
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

    for c0 in range(0, total, _CHUNK):
        chunk_frames, chunk_paths = [], []
        for i in range(c0, min(c0 + _CHUNK, total)):
            item = plan[i]
            rng = np.random.default_rng(item["key"])
            frames, names = render_video(specs[item["label"]], cfg, rng)
            chunk_frames.append(frames)
            chunk_paths.append(out / "videos" / f"{item['vid_name']}.mp4")
            action = [j for j, n in enumerate(names) if n != "idle"]
            ann[item["split"]].append({"vid_name": item["vid_name"], "label": item["label"],
                                       "start_frame": action[0], "end_frame": action[-1] + 1})
            phases[item["vid_name"]] = names
            lengths.append(len(names))
            done = i + 1
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
