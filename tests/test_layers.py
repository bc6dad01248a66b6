"""The library's import layers and its freedom from import cycles, as pyproject.toml's ``[tool.importlinter]``
contracts state them (docs/architecture.md, layers): ``lint-imports`` passes on this checkout, and fails on a
copy of it with an upward import or a cycle between sibling modules, each hidden inside a function."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
LAYERS = "Layers: a module imports only from its layer or below"
ACYCLIC = "No import cycles between the modules of a package"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``tree/src`` with ``tree/pyproject.toml``'s contracts (no cache
    written into the tree)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")], cwd=tree,
                          capture_output=True, text=True, env=env, timeout=300)


def _verdicts(r: subprocess.CompletedProcess) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, from lint-imports' summary lines."""
    out = {}
    for line in r.stdout.splitlines():
        for name in (LAYERS, ACYCLIC):
            if line.startswith(name + " "):
                out[name] = line[len(name):].strip()
    return out


def test_the_import_contracts_hold():
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _verdicts(r) == {LAYERS: "KEPT", ACYCLIC: "KEPT"}, r.stdout


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src/finepseudo", tree / "src/finepseudo", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code)


@pytest.mark.parametrize("module,code,expect,named", [
    # data is below report: an import of report from data, even inside a function, breaks the layers (and, as
    # report reads data, closes a cycle between the two)
    ("data/splits.py", "def _upward():\n    import finepseudo.report  # noqa: F401\n", {LAYERS: "BROKEN"},
     "finepseudo.data is not allowed to import finepseudo.report"),
    # datasets imports errors; errors importing datasets back closes a circle inside data, which the layers
    # (package granularity) allow and the other contract does not
    ("data/errors.py", "def _circle():\n    from finepseudo.data import datasets  # noqa: F401\n",
     {LAYERS: "KEPT", ACYCLIC: "BROKEN"}, "No cycles are allowed in finepseudo.data"),
], ids=["upward", "circle"])
def test_the_contracts_catch_a_broken_layering(tmp_path, module, code, expect, named):
    tree = _copy(tmp_path)
    assert _verdicts(_lint_imports(tree)) == {LAYERS: "KEPT", ACYCLIC: "KEPT"}  # the copy passes as it is
    _append(tree / "src/finepseudo" / module, code)
    r = _lint_imports(tree)
    assert r.returncode != 0, r.stdout + r.stderr
    verdicts = _verdicts(r)
    assert {name: verdicts.get(name) for name in expect} == expect, r.stdout
    assert named in r.stdout, r.stdout
