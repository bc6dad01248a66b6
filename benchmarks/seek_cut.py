"""Cutting a FineGym element out of a long video: time against the source video's length.

Generates test videos of ``--minutes`` minutes (25 fps, 320 x 180, H.264 with a key frame every 2 s
like YouTube's), then cuts a 2-second element near the end of each with
:func:`finepseudo.data.frames.decode_video` (input seeking, what extraction does) and, for comparison, by
decoding from the start and dropping the frames before the element (what decoding the whole file did).
Prints the median of 3 cuts per video. The seeking cut should not grow with the video's length.

    PYTHONPATH=src .venv/bin/python benchmarks/seek_cut.py --root /tmp/seek

Measured figures: ``benchmarks/results/seek_cut.csv`` (shown in the README's "Real datasets: adapters and the
frame store").
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from finepseudo.data.frames import decode_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results/seek_cut.csv"


def make_video(path: Path, minutes: float) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=320x180:rate=25:duration={minutes * 60}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "50", "-pix_fmt", "yuv420p", str(path)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 8, 32])
    ap.add_argument("--full-decode-max", type=float, default=8, help="longest video also cut by full decoding (min)")
    args = ap.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        print(f"{'video min':>9s} {'seek cut s':>10s} {'decode-from-start s':>20s} {'frames':>6s}")
        for m in args.minutes:
            path = args.root / f"v{m:g}.mp4"
            make_video(path, m)
            start = m * 60 * 0.9
            times, n = [], 0
            for _ in range(3):
                t0 = time.perf_counter()
                n = len(decode_video(path, 112, start_sec=start, end_sec=start + 2))
                times.append(time.perf_counter() - t0)
            full = float("nan")
            if m <= args.full_decode_max:
                t0 = time.perf_counter()
                every = decode_video(path, 112)
                _ = every[int(start * 25):int((start + 2) * 25)]
                full = time.perf_counter() - t0
            print(f"{m:9g} {statistics.median(times):10.2f} {full:20.2f} {n:6d}", flush=True)
            rows.append({"video_minutes": m, "seek_cut_s": round(statistics.median(times), 2),
                         "decode_from_start_s": "" if full != full else round(full, 2), "frames": n})
    finally:
        shutil.rmtree(args.root, ignore_errors=True)
    if rows:
        print(f"appended to {_record.append(RESULTS, rows)}")


if __name__ == "__main__":
    main()
