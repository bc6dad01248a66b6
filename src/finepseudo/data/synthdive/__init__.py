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

The configuration keys, their defaults and meanings are :data:`DEFAULT_CONFIG` and
:data:`CONFIG_DOCS`; :data:`TINY_CONFIG` is a few-second configuration for CI.

The package, in the order a video is made:

- :mod:`finepseudo.data.synthdive.spec`: classes, phases, config keys and defaults, config validation
  (standard library only: :mod:`finepseudo.config` reads the defaults while Snakemake plans the DAG);
- :mod:`finepseudo.data.synthdive.motion`: the diver's poses and trajectory, the view and the camera path;
- :mod:`finepseudo.data.synthdive.drawing`: :func:`render_video`, the frames of one video;
- :mod:`finepseudo.data.synthdive.encoding`: :func:`plan_videos` and :func:`generate`, the dataset on disk
  (``ffmpeg``, rendering processes, annotation files; the files written are listed there).

Names starting with ``_`` are private to the package. Everything below is importable from
``finepseudo.data.synthdive``; :func:`render_video`, :func:`plan_videos` and :func:`generate` are imported on
first use, so that reading the spec does not import numpy or ffmpeg.
"""

from __future__ import annotations

from finepseudo.data.synthdive.spec import (
    CONFIG_DOCS,
    DEFAULT_CLASSES,
    DEFAULT_CONFIG,
    PHASES,
    STATIC_SCENE,
    TINY_CONFIG,
    class_table,
    load_diving48_vocab,
    parse_class,
    resolve_config,
)

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


def __getattr__(name: str):
    if name == "render_video":
        from finepseudo.data.synthdive.drawing import render_video

        return render_video
    if name == "plan_videos":
        from finepseudo.data.synthdive.encoding import plan_videos

        return plan_videos
    if name == "generate":
        from finepseudo.data.synthdive.encoding import generate

        return generate
    raise AttributeError(f"module 'finepseudo.data.synthdive' has no attribute {name!r}")
