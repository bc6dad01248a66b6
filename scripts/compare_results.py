"""Compare two workflow working folders' results: the same files with the same contents, timing aside.

    .venv/bin/python scripts/compare_results.py [--ignore-code] RUN_A RUN_B [PREFIX ...]

RUN_A and RUN_B are folders holding a `results/` folder (two clones, or a run before and after a change).
Logs, benchmark files and the HTML report are left out; so are the fields that record how long something
took, which differ between any two runs of the same config: `seconds`, throughput and ETA columns of the
training histories, `seconds` in a model's metadata or an `.npz`, and time or date keys of JSON summaries.
Everything else must be equal: every tensor of every `.pt` bit for bit, every array, every table cell.
PREFIX (a path under results/, e.g. `synthdive/methods/pl/frac20_seed0`) limits the comparison to those
files. --ignore-code also leaves out the code digests an export's model card records (its JSON key `code`
and the README lines that print them), which change with any edit of the library, as a refactoring's do.
Exits 1 and lists the files that differ (or exist on one side only).

Two runs of the tiny config with the same code (`config/test.yaml`, 2 cores) agree under this comparison;
this is how a change meant to move code, not behaviour, is checked.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

SKIPPED_DIRS = ("logs", "benchmarks")
SKIPPED_FILES = ("report.html",)
TIMING_WORDS = ("second", "time", "elapsed", "clips_per", "items_per", "wall", "eta", "date", "created")
IGNORED_KEYS: set[str] = set()  # --ignore-code adds "code"


def timing(name: str) -> bool:
    return name == "s" or name in IGNORED_KEYS or any(word in name.lower() for word in TIMING_WORDS)


def without_timing(obj):
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if not timing(str(k))}
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def differing(a, b, path: str = "") -> list[str]:
    """Paths inside two loaded .pt objects whose values differ (timing keys skipped)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [path or "."]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a if not timing(str(k)) for d in differing(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} and {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differing(x, y, f"{path}[{i}]")]
    if isinstance(a, str) and isinstance(b, str) and a[:1] in "{[":
        try:
            return [] if without_timing(json.loads(a)) == without_timing(json.loads(b)) else [path]
        except json.JSONDecodeError:
            pass
    return [] if a == b else [path or "."]


def _without_digests(card: Path) -> list[str]:
    """A model card's lines, less those that print code digests (16 hex digits)."""
    return [line for line in card.read_text().splitlines() if not re.search(r"\b[0-9a-f]{16}\b", line)]


def same_file(a: Path, b: Path) -> str | None:
    """None when the two files agree apart from timing, else why not."""
    if a.read_bytes() == b.read_bytes():
        return None
    suffix = a.suffix
    if suffix == ".pt":
        found = differing(torch.load(a, weights_only=True, map_location="cpu"),
                          torch.load(b, weights_only=True, map_location="cpu"))
        return f"differs at {found[:5]}" if found else None
    if suffix in (".tsv", ".csv"):
        sep = "\t" if suffix == ".tsv" else ","
        x, y = pd.read_csv(a, sep=sep), pd.read_csv(b, sep=sep)
        keep = [c for c in x.columns if not timing(c)]
        if list(x.columns) != list(y.columns):
            return "columns differ"
        return None if x[keep].equals(y[keep]) else "table cells differ"
    if suffix == ".json":
        same = without_timing(json.loads(a.read_text())) == without_timing(json.loads(b.read_text()))
        return None if same else "JSON differs"
    if "code" in IGNORED_KEYS and a.name == "README.md" and (a.parent / "model.json").is_file():
        return None if _without_digests(a) == _without_digests(b) else "model card text differs"
    if suffix == ".npy":
        return None if np.array_equal(np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)) else "array differs"
    if suffix == ".npz":
        x, y = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
        if set(x.files) != set(y.files):
            return "arrays differ in names"
        bad = [k for k in x.files if not timing(k) and not np.array_equal(x[k], y[k])]
        return f"arrays differ: {bad}" if bad else None
    return "bytes differ"


def result_files(root: Path, prefixes: list[str]) -> set[Path]:
    files = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] in SKIPPED_DIRS or rel.name in SKIPPED_FILES:
            continue
        if prefixes and not any(str(rel).startswith(p) for p in prefixes):
            continue
        files.add(rel)
    return files


def compare(run_a: Path, run_b: Path, prefixes: list[str] = ()) -> list[str]:
    a_root, b_root = Path(run_a) / "results", Path(run_b) / "results"
    a_files, b_files = result_files(a_root, list(prefixes)), result_files(b_root, list(prefixes))
    problems = [f"{rel}: only in {run_a if rel in a_files else run_b}" for rel in sorted(a_files ^ b_files)]
    for rel in sorted(a_files & b_files):
        why = same_file(a_root / rel, b_root / rel)
        if why:
            problems.append(f"{rel}: {why}")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["--ignore-code"]:
        IGNORED_KEYS.add("code")
        argv = argv[1:]
    if len(argv) < 2:
        print(__doc__)
        return 2
    problems = compare(Path(argv[0]), Path(argv[1]), argv[2:])
    for line in problems:
        print(line)
    print(f"{len(problems)} file(s) differ" if problems else "the results agree (timing fields aside)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
