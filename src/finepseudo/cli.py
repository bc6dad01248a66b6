"""The ``finepseudo`` console command (installed with the package; ``python -m finepseudo.cli`` works too).

``finepseudo predict MODEL_DIR VIDEO_OR_FOLDER ... --out predictions.tsv`` classifies videos with an exported
model (``results/<dataset>/export/<method>/frac<P>_seed<S>/``), the same implementation as the workflow's
``predict_videos`` rule: one row per video with its top-5 classes, their names and calibrated probabilities,
p_A's class where phi_A is exported, and a status. Exit status: 0 when every video was predicted, 1 when some
could not be read (their rows say why), 2 when the model folder or the arguments are unusable.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="finepseudo", description="FinePseudo: use the models the workflow trained.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="classify videos with an exported model",
                       description="Classify videos with an exported model folder. Videos are decoded and sampled "
                                   "with the workflow's own frame extraction; rows are written as they are predicted.")
    p.add_argument("model_dir", help="an export folder: results/<dataset>/export/<method>/frac<P>_seed<S>")
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FOLDER",
                   help="video files, or folders searched recursively for video files (.mp4, .avi, .mkv, .mov, ...)")
    p.add_argument("--out", required=True, help="the predictions table to write (TSV)")
    p.add_argument("--page", help="also write an HTML page: a frame strip per video with its top-3 classes")
    p.add_argument("--ranges", help="TSV of frame ranges per video id: columns video, start_frame, end_frame "
                                    "(exclusive, -1: to the end), optionally start_sec, end_sec (the workflow's "
                                    "manifest.tsv is one); other videos are read whole")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="where the model runs (default cpu; auto: a GPU when torch sees one)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="videos per forward pass (default: the card's, the evaluation's batch size)")
    p.add_argument("--workers", type=int, default=2, help="decoding threads, one ffmpeg process each (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def _predict(args: argparse.Namespace) -> int:
    import torch

    from finepseudo.export.card import ExportError
    from finepseudo.export.model import ExportedModel
    from finepseudo.export.stream import run_prediction
    from finepseudo.export.videos import collect_videos, read_ranges, with_ranges

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = ExportedModel.load(args.model_dir, device=args.device)
        items = with_ranges(collect_videos(args.inputs), read_ranges(args.ranges) if args.ranges else None)
    except (ExportError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"finepseudo predict: {exc}", file=sys.stderr)
        return 2
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), unit="video", file=sys.stderr, dynamic_ncols=True)
    failed: list[str] = []

    def on_row(row: dict) -> None:
        if row["status"] == "failed":
            failed.append(f"{row['path']}: {row['reason']}")
        if bar is not None:
            bar.update(1)

    try:
        counts = run_prediction(model, items, args.out, page=args.page, title=args.out, batch_size=args.batch_size,
                                workers=args.workers, on_row=on_row)
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.out}" + (f" and {args.page}" if args.page else "") + ": "
          + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), file=sys.stderr)
    for line in failed:
        print(f"could not read {line}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "predict":
        return _predict(args)
    return 2  # argparse rejects unknown commands before this


if __name__ == "__main__":
    sys.exit(main())
