"""Append a benchmark's or a study's figures to its CSV under version control, with their provenance.

Every script under ``benchmarks/`` and ``studies/`` calls :func:`append` with its rows; each row gets the
columns of :data:`PROVENANCE` in front: the date, the commit (short hash, ``+dirty`` when the work tree has
uncommitted changes), the machine (CPU model from ``/proc/cpuinfo``, or ``lscpu`` where there is none), its
logical cores and the command line that produced the row. The file keeps every earlier row: a row with a
column the file does not have yet adds that column (earlier rows get an empty field there). The README's
measured tables are generated from these files (``scripts/readme_tables.py``). ``BENCH_RECORD=0`` turns
recording off (smoke runs: the GPU check sets it).

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _record
    _record.append(ROOT / "benchmarks/results/seek_cut.csv", rows)
"""

from __future__ import annotations

import csv
import datetime
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE = ["date", "commit", "machine", "cores", "command"]
UNKNOWN = "unknown"


def cpu_model() -> str:
    """The CPU's model name: ``/proc/cpuinfo`` (Linux), else ``lscpu``, else "unknown"."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return UNKNOWN
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return UNKNOWN


def commit() -> str:
    """The short hash of HEAD, with ``+dirty`` when tracked files differ from it; "unknown" outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return UNKNOWN
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def command() -> str:
    """This process's command line, as a shell would take it, with the script's path relative to the repository."""
    argv = list(sys.argv)
    if argv:
        p = Path(argv[0]).resolve()
        if p.is_relative_to(ROOT):
            argv[0] = str(p.relative_to(ROOT))
    return "python " + shlex.join(argv)


def provenance() -> dict:
    return {"date": datetime.date.today().isoformat(), "commit": commit(), "machine": cpu_model(),
            "cores": os.cpu_count() or UNKNOWN, "command": command()}


def append(path: str | Path, rows: list[dict], **fixed) -> Path:
    """Append ``rows`` (dicts, figures and settings) to the CSV at ``path``, each with the provenance columns
    (``fixed`` overrides or adds columns in every row). Creates the file and its folder when missing. With
    ``BENCH_RECORD=0`` in the environment nothing is written (the GPU check and the test suite set it)."""
    path = Path(path)
    if os.environ.get("BENCH_RECORD") == "0":
        return path
    head = provenance() | fixed
    rows = [head | r for r in rows]
    old_cols, old_rows = [], []
    if path.exists() and path.stat().st_size:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            old_cols, old_rows = list(reader.fieldnames or []), list(reader)
    cols = list(old_cols) or list(PROVENANCE)
    for r in rows:
        cols += [k for k in r if k not in cols]
    path.parent.mkdir(parents=True, exist_ok=True)
    if cols == old_cols:
        with path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=cols).writerows(rows)
    else:  # a new column: rewrite the file with it, earlier rows unchanged
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(old_rows + rows)
    return path
