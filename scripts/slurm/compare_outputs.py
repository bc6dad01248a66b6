#!/usr/bin/env python3
"""Compare the results/ trees of two runs of the same workflow (e.g. SLURM vs local).

Tables (.tsv, .csv) and JSON files must be equal, cell by cell and value by value, except
columns/keys that record when, where, how long or with which software something ran (see
IGNORE_WORDS below; every ignored column/key is listed in the output). Numbers are compared
exactly by default: both runs use the same thread counts, so trained models' float metrics
must agree bit for bit; --rtol allows a relative tolerance instead.
With --arrays, .npz archives and .pt files (torch.load) are compared the same way, array by
array and key by key (so model weights must be identical too).
--ignore KEY leaves out more columns/keys (e.g. ``code``: the code digests an export's model card records,
which change with any edit of the library, when checking that a refactoring kept the results).
Files under results/logs and results/benchmarks are skipped (timings, host names). Every other
file must exist on both sides; their byte equality is reported for information only.
Exit status 0 when everything compared matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import sys
from pathlib import Path

TABLE_EXT = {".tsv": "\t", ".csv": ","}
SKIP_DIRS = {"logs", "benchmarks", ".snakemake"}
# Column/key names that hold run metadata rather than results: a key is ignored when one of its
# words (split at anything but letters and digits) is in IGNORE_WORDS.
IGNORE_WORDS = {
    "time",
    "times",
    "runtime",
    "walltime",
    "timestamp",
    "datetime",
    "date",
    "s",
    "sec",
    "secs",
    "second",
    "seconds",
    "duration",
    "elapsed",
    "wall",
    "started",
    "finished",
    "version",
    "versions",
    "host",
    "hostname",
    "node",
    "nodename",
    "pid",
    "user",
    "slurm",
    "jobid",
    "python",
    "platform",
    "cuda",
    "rss",
    "vms",
    "uss",
    "pss",
    "swap",
    "load",
    "eta",  # estimated time remaining (progress columns of training histories)
}
# Benchmark-style names that contain separators themselves.
IGNORE_NAMES = {
    "h:m:s",
    "cpu_time",
    "io_in",
    "io_out",
    "mean_load",
    "max_rss",
    "max_vms",
    "max_uss",
    "max_pss",
    "job_id",
    "device_name",
}


# Names given with --ignore, for the current comparison (main sets them).
EXTRA_IGNORED: set[str] = set()


def ignored(key: str) -> bool:
    k = key.lower()
    return k in IGNORE_NAMES or k in EXTRA_IGNORED or bool(set(re.split(r"[^a-z0-9]+", k)) & IGNORE_WORDS)


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def values_equal(a, b, rtol: float) -> bool:
    if a == b:
        return True
    fa, fb = num(a), num(b)
    if fa is None or fb is None or isinstance(a, bool) or isinstance(b, bool):
        return False
    if math.isnan(fa) and math.isnan(fb):
        return True
    return rtol > 0 and math.isclose(fa, fb, rel_tol=rtol, abs_tol=0.0)


class Report:
    def __init__(self):
        self.problems: list[str] = []
        self.ignored: dict[str, set[str]] = {}
        self.matched: list[str] = []
        self.matched_arrays: list[str] = []

    def ignore(self, rel: str, key: str):
        self.ignored.setdefault(rel, set()).add(key)

    def verdict(self, rel: str, bad: list[str], what: str, matched: list[str]) -> None:
        """``rel`` goes to ``matched`` when ``bad`` (its differing ``what``) is empty, else it is a problem
        that names the first five differences."""
        if bad:
            self.problems.append(f"{rel}: {len(bad)} differing {what}, first: " + "; ".join(bad[:5]))
        else:
            matched.append(rel)


def compare_table(rel: str, pa: Path, pb: Path, sep: str, rtol: float, rep: Report) -> None:
    ra = list(csv.reader(pa.open(newline=""), delimiter=sep))
    rb = list(csv.reader(pb.open(newline=""), delimiter=sep))
    if not ra and not rb:
        rep.matched.append(rel)
        return
    if not ra or not rb or ra[0] != rb[0]:
        rep.problems.append(f"{rel}: headers differ: {ra[:1]} vs {rb[:1]}")
        return
    header = ra[0]
    if len(ra) != len(rb):
        rep.problems.append(f"{rel}: {len(ra) - 1} vs {len(rb) - 1} data rows")
        return
    keep = []
    for j, col in enumerate(header):
        if ignored(col):
            rep.ignore(rel, col)
        else:
            keep.append(j)
    bad = []
    for i, (x, y) in enumerate(zip(ra[1:], rb[1:]), start=2):
        if len(x) != len(y):
            bad.append(f"line {i}: {len(x)} vs {len(y)} fields")
            continue
        for j in keep:
            if j < len(x) and not values_equal(x[j], y[j], rtol):
                bad.append(f"line {i} column {header[j]!r}: {x[j]!r} vs {y[j]!r}")
    rep.verdict(rel, bad, "cells", rep.matched)


def compare_json_values(a, b, path: str, rel: str, rtol: float, rep: Report, bad: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if ignored(str(k)):
                rep.ignore(rel, f"{path}/{k}")
                continue
            if k not in a or k not in b:
                bad.append(f"{path}/{k}: only in {'first' if k in a else 'second'}")
                continue
            compare_json_values(a[k], b[k], f"{path}/{k}", rel, rtol, rep, bad)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            bad.append(f"{path}: list lengths {len(a)} vs {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            compare_json_values(x, y, f"{path}[{i}]", rel, rtol, rep, bad)
    elif not values_equal(a, b, rtol):
        bad.append(f"{path or '/'}: {a!r} vs {b!r}")


def compare_json(rel: str, pa: Path, pb: Path, rtol: float, rep: Report) -> None:
    try:
        a, b = json.loads(pa.read_text()), json.loads(pb.read_text())
    except json.JSONDecodeError as exc:
        rep.problems.append(f"{rel}: not valid JSON ({exc})")
        return
    bad: list[str] = []
    compare_json_values(a, b, "", rel, rtol, rep, bad)
    rep.verdict(rel, bad, "values", rep.matched)


def _as_tree(obj):
    """numpy/torch containers -> nested dicts/lists of numpy arrays and plain values."""
    import numpy as np

    if isinstance(obj, dict) or hasattr(obj, "files"):  # dict, OrderedDict, NpzFile
        keys = obj.files if hasattr(obj, "files") else list(obj)
        return {str(k): _as_tree(obj[k]) for k in keys}
    if isinstance(obj, (list, tuple)):
        return [_as_tree(x) for x in obj]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor
        return obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return [_as_tree(x) for x in obj.ravel()]
    return obj


def compare_tree(a, b, path: str, rel: str, rtol: float, rep: Report, bad: list) -> None:
    import numpy as np

    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if ignored(k):
                rep.ignore(rel, f"{path}/{k}")
            elif k not in a or k not in b:
                bad.append(f"{path}/{k}: only in {'first' if k in a else 'second'}")
            else:
                compare_tree(a[k], b[k], f"{path}/{k}", rel, rtol, rep, bad)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            bad.append(f"{path}: lengths {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            compare_tree(x, y, f"{path}[{i}]", rel, rtol, rep, bad)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            bad.append(f"{path}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
        elif a.dtype.kind in "fc":
            ok = np.array_equal(a, b, equal_nan=True) or (
                rtol > 0 and np.allclose(a, b, rtol=rtol, atol=0.0, equal_nan=True)
            )
            if not ok:
                bad.append(f"{path}: max |diff| {np.nanmax(np.abs(a.astype(float) - b.astype(float))):.3g}")
        elif not np.array_equal(a, b):
            bad.append(f"{path}: arrays differ")
    elif not values_equal(a, b, rtol):
        bad.append(f"{path or '/'}: {a!r} vs {b!r}"[:300])


def compare_arrays(rel: str, pa: Path, pb: Path, rtol: float, rep: Report) -> None:
    try:
        if pa.suffix == ".npz":
            import numpy as np

            with np.load(pa, allow_pickle=False) as x, np.load(pb, allow_pickle=False) as y:
                a, b = _as_tree(x), _as_tree(y)
        else:
            import torch

            a = _as_tree(torch.load(pa, map_location="cpu", weights_only=True))
            b = _as_tree(torch.load(pb, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 - report unreadable files as problems
        rep.problems.append(f"{rel}: cannot load ({type(exc).__name__}: {exc})")
        return
    bad: list[str] = []
    compare_tree(a, b, "", rel, rtol, rep, bad)
    rep.verdict(rel, bad, "entries", rep.matched_arrays)


def sha256(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def files(root: Path) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.is_file() and not (set(rel.parts[:-1]) & SKIP_DIRS):
            out[rel.as_posix()] = p
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first", type=Path, help="results/ folder of the first run (e.g. SLURM)")
    ap.add_argument("second", type=Path, help="results/ folder of the second run (e.g. local)")
    ap.add_argument("--arrays", action="store_true", help="also compare .npz and .pt contents")
    ap.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numbers (default: exact)")
    ap.add_argument(
        "--min-tables", type=int, default=1, help="fail unless at least this many tables/JSON matched"
    )
    ap.add_argument(
        "--ignore", action="append", default=[], metavar="KEY",
        help="also ignore columns/keys named KEY (repeatable); e.g. --ignore code leaves out the code digests of "
        "export model cards, which change with any library edit, when checking that a refactoring kept results",
    )
    args = ap.parse_args(argv)
    EXTRA_IGNORED.clear()
    EXTRA_IGNORED.update(k.lower() for k in args.ignore)
    fa, fb = files(args.first), files(args.second)
    rep = Report()
    for rel in sorted(set(fa) ^ set(fb)):
        rep.problems.append(f"{rel}: only in {'first' if rel in fa else 'second'} run")
    same_bytes, diff_bytes = [], []
    for rel in sorted(set(fa) & set(fb)):
        ext = Path(rel).suffix.lower()
        if ext in TABLE_EXT:
            compare_table(rel, fa[rel], fb[rel], TABLE_EXT[ext], args.rtol, rep)
        elif ext == ".json":
            compare_json(rel, fa[rel], fb[rel], args.rtol, rep)
        elif args.arrays and ext in (".npz", ".pt"):
            compare_arrays(rel, fa[rel], fb[rel], args.rtol, rep)
        else:
            (same_bytes if sha256(fa[rel]) == sha256(fb[rel]) else diff_bytes).append(rel)
    print(f"[compare] {args.first} vs {args.second}")
    print(f"[compare] tables/JSON equal: {len(rep.matched)}")
    for rel in rep.matched:
        print(f"[compare]   = {rel}")
    if args.arrays:
        print(f"[compare] .npz/.pt contents equal: {len(rep.matched_arrays)}")
        for rel in rep.matched_arrays:
            print(f"[compare]   = {rel}")
    for rel, keys in sorted(rep.ignored.items()):
        print(f"[compare]   ignored in {rel}: {', '.join(sorted(keys))}")
    print(f"[compare] other files: {len(same_bytes)} byte-identical, {len(diff_bytes)} differ (not checked)")
    for rel in diff_bytes:
        print(f"[compare]   ~ {rel}")
    if len(rep.matched) < args.min_tables:
        rep.problems.append(f"only {len(rep.matched)} tables/JSON matched, expected >= {args.min_tables}")
    for p in rep.problems:
        print(f"[compare] MISMATCH {p}")
    print(
        f"[compare] {'OK' if not rep.problems else 'FAILED'}: {len(rep.matched)} matched, {len(rep.problems)} problems"
    )
    return 0 if not rep.problems else 1


if __name__ == "__main__":
    sys.exit(main())
