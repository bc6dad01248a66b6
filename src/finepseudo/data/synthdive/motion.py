"""The diver's motion and the camera: per-frame poses, trajectories and the camera path of one video.

Poses are 8-vectors of joint angles in radians ``[hipL, hipR, kneeL, kneeR, shoulderL, shoulderR, elbowL,
elbowR]``: hip flexion folds the thigh forward, knee flexion folds the shin backward, shoulder 0 = arm down,
pi/2 = forward, pi = overhead; elbow flexion folds the forearm forward.

The functions that take ``rng`` draw from the video's generator, and
:func:`~finepseudo.data.synthdive.drawing.render_video` calls them in a fixed order, which is part of the output
(see there).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

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


def _curve(n: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random curve over ``n`` frames with values in [-1, 1]: the mean of two sinusoids of 0.3 to
    1.2 cycles per video. Draws the two frequencies, then the two phases."""
    f = rng.uniform(0.3, 1.2, 2)
    ph = rng.uniform(0.0, 2 * _PI, 2)
    t = np.arange(n) / max(n - 1, 1)
    return 0.5 * (np.sin(2 * _PI * f[0] * t + ph[0]) + np.sin(2 * _PI * f[1] * t + ph[1]))


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
