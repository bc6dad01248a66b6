"""Which library code a workflow step runs, as a digest that goes into the rule's params.

Snakemake re-runs a script rule when the script file changes, but not when a library module the script
imports changes. Each rule therefore passes ``code=<digest>`` in its params: the SHA-256 of the script
and of every ``finepseudo`` module it imports, directly or through other modules (the import graph, read
from the source with :mod:`ast`, not a hand-kept list). Edit a module and exactly the rules whose steps
import it see changed params and are planned again; Snakemake's between-workflow cache hashes params too,
so its key changes with the same edit. See docs/architecture.md ("Code-aware reruns").

Imports are found wherever they are written (module top, inside functions, under ``if``), so lazily
imported modules count. Only files matter, not where the checkout lives: the same code gives the same
digest in any folder.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

__all__ = ["imported_modules", "module_closure", "code_digest"]

PACKAGE = "finepseudo"


def _module_file(src: Path, dotted: str) -> Path | None:
    """The file of module ``dotted`` (``finepseudo.x.y``) under ``src``, or None if there is none."""
    base = src.joinpath(*dotted.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _dotted_name(src: Path, path: Path) -> str | None:
    """``finepseudo.x.y`` for a file under ``src``, None for a file outside it (a rule script)."""
    try:
        rel = path.resolve().relative_to(src.resolve())
    except ValueError:
        return None
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path, src: Path, package: str = PACKAGE) -> set[str]:
    """Dotted names of the ``package`` modules that the file at ``path`` imports (one level, no recursion).

    ``from finepseudo.a import b`` yields ``finepseudo.a`` and, when ``b`` is a module, ``finepseudo.a.b``;
    relative imports are resolved against the importing module's package. Parent packages are included,
    since importing ``finepseudo.a.b`` runs ``finepseudo/__init__.py`` and ``finepseudo/a/__init__.py``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _dotted_name(src, path)
    is_pkg = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if me is None:
                    continue  # a relative import outside the package cannot reach it
                parts = me.split(".") if is_pkg else me.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    found = set()
    for name in names:
        if name != package and not name.startswith(package + "."):
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and every parent package it runs
            dotted = ".".join(parts[:i])
            if _module_file(src, dotted) is not None:
                found.add(dotted)
    return found


def module_closure(entry: Path, src: Path, package: str = PACKAGE) -> list[Path]:
    """Every ``package`` module file that running ``entry`` imports, transitively, sorted."""
    seen: set[str] = set()
    todo = sorted(imported_modules(Path(entry), Path(src), package))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imported_modules(_module_file(src, name), src, package) - seen)
    return sorted(_module_file(src, n) for n in seen)


@lru_cache(maxsize=None)
def _digest(entry: str, src: str, package: str) -> str:
    src_path = Path(src)
    h = hashlib.sha256()
    files = [(Path(entry).name, Path(entry))] + [
        (str(p.resolve().relative_to(src_path.resolve())), p) for p in module_closure(Path(entry), src_path, package)
    ]
    for name, path in files:
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def code_digest(entry: str | Path, src: str | Path, package: str = PACKAGE) -> str:
    """SHA-256 (16 hex digits) of the script ``entry`` and of the ``package`` modules it imports
    transitively from ``src``; file names are taken relative to ``src`` so the checkout's location does
    not enter."""
    return _digest(str(entry), str(src), package)
