"""The README's measured tables are generated from the CSVs of benchmarks/results/ and studies/results/
(scripts/readme_tables.py), and every benchmark and study appends its rows there with their provenance
(benchmarks/_record.py)."""

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tables = _load("readme_tables", ROOT / "scripts" / "readme_tables.py")
record = _load("_record", ROOT / "benchmarks" / "_record.py")


def test_readme_is_up_to_date_with_the_csvs():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_result_csv_has_the_provenance_columns():
    files = sorted((ROOT / "benchmarks" / "results").glob("*.csv")) + sorted((ROOT / "studies" / "results").glob("*.csv"))
    assert len(files) >= 9
    for f in files:
        with f.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows, f
        assert list(rows[0])[:5] == record.PROVENANCE, f
        assert all(r[c] for r in rows for c in record.PROVENANCE), f"{f}: an empty provenance field (write unknown)"


def test_a_changed_csv_makes_the_check_fail(tmp_path):
    (tmp_path / "r.csv").write_text("date,commit,machine,cores,command,x,y\n2026-01-01,abc,cpu,2,run,a,1.234\n")
    readme = "intro\n<!-- table: r.csv\ncolumns: x = name | y:.1f = value\n-->\nold\n<!-- /table -->\nend\n"
    new, stale = tables.rewrite(readme, tmp_path)
    assert stale == ["r.csv"] and "| a | 1.2 |" in new and "commit abc" in new and new.endswith("<!-- /table -->\nend\n")
    assert tables.rewrite(new, tmp_path) == (new, [])
    with (tmp_path / "r.csv").open("a") as fh:
        fh.write("2026-01-02,def,cpu,2,run,b,nan\n")
    again, stale = tables.rewrite(new, tmp_path)
    assert stale == ["r.csv"] and "| b |  |" in again


def test_row_selection(tmp_path):
    (tmp_path / "r.csv").write_text("date,commit,machine,cores,command,part,v\n" + "".join(
        f"d,c,m,1,x,{p},{i}\n" for i, p in enumerate("aabab")))
    spec = tables.parse_spec("r.csv\nrows: 5 1\ncolumns: v\nprovenance: no\n")
    assert tables.render(spec, tmp_path).splitlines()[2:] == ["| 4 |", "| 0 |"]
    spec = tables.parse_spec("r.csv\nwhere: part=b\ncolumns: v\nprovenance: no\n")
    assert tables.render(spec, tmp_path).splitlines()[2:] == ["| 2 |", "| 4 |"]


def test_record_appends_with_provenance_and_new_columns(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_RECORD", raising=False)
    out = tmp_path / "res" / "x.csv"
    record.append(out, [{"a": 1}])
    record.append(out, [{"a": 2, "b": 3}], note="n")
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:5] == record.PROVENANCE and list(rows[0])[5:] == ["a", "note", "b"]
    assert [r["a"] for r in rows] == ["1", "2"] and rows[0]["b"] == "" and rows[1]["note"] == "n"
    assert rows[0]["machine"] and rows[0]["commit"] and rows[0]["command"].startswith("python ")
    monkeypatch.setenv("BENCH_RECORD", "0")
    record.append(out, [{"a": 9}])
    assert len(out.read_text().splitlines()) == 3
