"""Drawing SynthDive frames: :func:`render_video` renders one video (uint8 RGB frames and its phase names).

The scene (backdrop, stands, pool, boards, distractors, tower and platform) is a world texture drawn once per
video and sampled under the camera of each frame; the moving distractors, the diver (anti-aliased capsules),
the water and the splash are painted over it, then lighting and pixel noise. The diver's motion and the
camera come from :mod:`finepseudo.data.synthdive.motion`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from finepseudo.data.synthdive.motion import (
    _PI,
    _Camera,
    _camera,
    _draw_figure,
    _draw_view,
    _draw_water_level,
    _motion,
    _project,
    _timeline,
    _View,
    _world_joints,
)

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


# render_video, step by step: each drawing step is a small function, and those that take ``rng``
# draw from the video's generator. The order of the calls is the order of the draws and so part of
# the output (tests/test_synthdive.py pins rendered clips): a draw added, removed or moved changes
# every draw after it, so only one added after the pixel noise leaves existing videos unchanged.


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
