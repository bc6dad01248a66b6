#!/usr/bin/env python
"""Frame strips of SynthDive, one row per nuisance, for the README (what the videos look like).

Row 1 is the static scene (every nuisance key at its ``STATIC_SCENE`` value); each following row turns one
nuisance on at its default value, with the same class and video seed; the last row is the default config
(every nuisance on). Writes ``docs/img/synthdive_nuisances.jpg``::

    .venv/bin/python scripts/synthdive_strips.py [--d48 24] [--seed 3] [--frames 10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from finepseudo.data import synthdive as sd  # noqa: E402

# nuisance rows: (label, keys turned on at their default values)
ROWS = (
    ("static scene", ()),
    ("background: varied (hall or sky, crowd, deck, boards)", ("background",)),
    ("moving distractors", ("movers",)),
    ("camera: lag, zoom, roll, framing", ("camera_lag", "zoom", "zoom_drift", "roll_deg", "framing")),
    ("viewpoint: angle", ("view_angle_deg",)),
    ("viewpoint: mirrored", ("mirror",)),
    ("appearance: colours", ("colour_jitter",)),
    ("default: everything on", tuple(sd.STATIC_SCENE)),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--d48", type=int, default=24, help="Diving48 label of the dive (24: Forward 25som NoTwis PIKE)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "docs/img/synthdive_nuisances.jpg"))
    args = ap.parse_args()
    spec = sd.parse_class(sd.load_diving48_vocab()[args.d48])
    strips = []
    for label, keys in ROWS:
        over = {k: v for k, v in sd.STATIC_SCENE.items() if k not in keys}
        if label.endswith("mirrored"):
            over["mirror"] = 1.0  # the default mirrors half of the videos: show one that is
        cfg = sd.resolve_config(over)
        frames, _ = sd.render_video(spec, cfg, np.random.default_rng(args.seed))
        idx = np.linspace(0, len(frames) - 1, args.frames).round().astype(int)
        strips.append((label, np.concatenate(list(frames[idx]), axis=1)))
    fig, axes = plt.subplots(len(strips), 1, figsize=(args.frames * 0.9, len(strips) * 1.15))
    for ax, (label, strip) in zip(axes, strips):
        ax.imshow(strip, interpolation="nearest")
        ax.set_title(label, fontsize=8, loc="left", pad=2)
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90, pil_kwargs={"quality": 85})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
