"""Rewrite the README's measured tables from the CSVs of ``benchmarks/results/`` and ``studies/results/``.

A generated table sits between a marker comment and ``<!-- /table -->``; the marker names the CSV and what to
show, one setting per line::

    <!-- table: studies/results/nuisance_ablation.csv
    rows: 1 5 4 6 14 16
    columns: variant = variant | set = overrides | fe_full:.1f = f_E full
    -->
    ...generated: the table and a line with the rows' provenance...
    <!-- /table -->

- ``rows:`` data rows by their 1-based position in the file (the files are append-only, so positions stay), or
  ``where:`` ``column=value`` pairs separated by ``|``, all of which a row must match; neither: every row;
- ``columns:`` ``name[:format] = header`` separated by ``|`` (the header defaults to the name; the format is a
  Python format spec applied to numbers, e.g. ``.1f``; an empty field stays empty);
- ``provenance: no`` leaves out the line naming the rows' dates, commits, machines and commands.

    python scripts/readme_tables.py           # rewrite README.md
    python scripts/readme_tables.py --check   # exit 1 and name the stale tables when README.md is out of date
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- table: (?P<spec>.*?)-->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def parse_spec(spec: str) -> dict:
    lines = [s.strip() for s in spec.strip().splitlines() if s.strip()]
    out = {"csv": lines[0], "rows": None, "where": {}, "columns": [], "provenance": True}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "rows":
            out["rows"] = [int(x) for x in value.split()]
        elif key == "where":
            out["where"] = dict(p.split("=", 1) for p in (s.strip() for s in value.split("|")) if p)
        elif key == "columns":
            for item in value.split("|"):
                name, _, header = item.partition("=")
                name, _, fmt = name.strip().partition(":")
                out["columns"].append((name, fmt, header.strip() or name))
        elif key == "provenance":
            out["provenance"] = value.lower() not in ("no", "false", "0")
        else:
            raise ValueError(f"unknown table setting {key!r} in marker for {lines[0]}")
    return out


def _cell(value: str, fmt: str) -> str:
    if value is not None and value.lower() == "nan":
        return ""
    if value in ("", None) or not fmt:
        return "" if value is None else value.replace("|", "\\|")
    try:
        return format(float(value), fmt)
    except ValueError:
        return value


def render(spec: dict, root: Path = ROOT) -> str:
    with (root / spec["csv"]).open(newline="") as f:
        rows = list(csv.DictReader(f))
    if spec["rows"]:
        bad = [i for i in spec["rows"] if not 1 <= i <= len(rows)]
        if bad:
            raise ValueError(f"{spec['csv']} has {len(rows)} rows; no row {bad}")
        rows = [rows[i - 1] for i in spec["rows"]]
    rows = [r for r in rows if all(r.get(k) == v for k, v in spec["where"].items())]
    if not rows:
        raise ValueError(f"no row of {spec['csv']} matches {spec['where']}")
    cols = spec["columns"] or [(k, "", k) for k in rows[0]]
    missing = [c for c, _, _ in cols if c not in rows[0]]
    if missing:
        raise ValueError(f"{spec['csv']} has no column {missing}")
    lines = ["| " + " | ".join(h for _, _, h in cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(_cell(r[c], fmt) for c, fmt, _ in cols) + " |" for r in rows]
    if spec["provenance"]:
        seen: list[str] = []
        for r in rows:
            p = (f"{r.get('date', 'unknown')}, commit {r.get('commit', 'unknown')}, {r.get('machine', 'unknown')}, "
                 f"{r.get('cores', 'unknown')} cores, command: `{r.get('command', 'unknown')}`")
            if p not in seen:
                seen.append(p)
        lines += ["", f"*From `{spec['csv']}`: " + "; ".join(seen) + ".*"]
    return "\n".join(lines) + "\n"


def rewrite(text: str, root: Path = ROOT) -> tuple[str, list[str]]:
    """The text with every block regenerated, and the CSVs of the blocks that changed."""
    stale: list[str] = []

    def one(m: re.Match) -> str:
        spec = parse_spec(m.group("spec"))
        body = render(spec, root)
        if body != m.group("body"):
            stale.append(spec["csv"])
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(one, text), stale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table is out of date")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args()
    text = args.readme.read_text()
    new, stale = rewrite(text)
    if args.check:
        if stale:
            print(f"{args.readme} is out of date with {', '.join(stale)}: run python scripts/readme_tables.py")
            sys.exit(1)
        print(f"{args.readme}: every generated table is up to date")
        return
    if new != text:
        args.readme.write_text(new)
    print(f"{args.readme}: {len(stale)} table(s) rewritten" + (f" ({', '.join(stale)})" if stale else ""))


if __name__ == "__main__":
    main()
