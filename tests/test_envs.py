"""The conda environments the rules name (envs/*.yaml) against the rules and pyproject.toml.

- every `conda:` file named in the Snakefile or workflow/rules/*.smk exists and is a valid,
  conda-forge-only environment file; every rule that runs something names one;
- every package in those files is pinned to one exact version with `=` (no ranges, no wildcards
  in the version; a build-string glob after a second `=`, as in `ffmpeg=8.0.1=gpl*`, is allowed);
- where a package is both in an env file and in pyproject.toml (dependencies and extras), the
  versions agree (names normalised: pytorch <-> torch, cupy <-> cupy-cuda13x, matplotlib-base <->
  matplotlib, seaborn-base <-> seaborn, ...); all env files pin the same Python;
- every third-party module that a rule's script imports (and the finepseudo modules it imports
  load at module level) is provided by that rule's env. Snakemake appends its own sys.path to a
  script's, so a missing package would silently come from the main environment instead of
  failing; this check is the only place that notices.
The rules are found by parsing the .smk files as text, so the test follows whatever rules exist.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted(
    [p for p in [ROOT / "Snakefile"] if p.exists()] + list((ROOT / "workflow" / "rules").glob("*.smk"))
)

# conda-forge name -> the PyPI name it corresponds to (after PEP 503 normalisation).
CONDA_TO_PIP = {
    "pytorch": "torch",
    "pytorch-gpu": "torch",
    "pytorch-cpu": "torch",
    "matplotlib-base": "matplotlib",
    "seaborn-base": "seaborn",
    "cupy": "cupy",
    "cupy-core": "cupy",
}
# PyPI names that are builds of one project -> the project name used for comparison.
PIP_ALIASES = {"cupy-cuda13x": "cupy", "cupy-cuda12x": "cupy", "cupy-cuda11x": "cupy"}
# import name -> the conda-forge package names that provide it.
IMPORT_TO_CONDA = {
    "torch": {"pytorch", "pytorch-gpu", "pytorch-cpu"},
    "torchvision": {"torchvision"},
    "yaml": {"pyyaml"},
    "ffmpeg": {"ffmpeg-python"},
    "matplotlib": {"matplotlib", "matplotlib-base"},
    "seaborn": {"seaborn", "seaborn-base"},
    "cupy": {"cupy", "cupy-core"},
    "sklearn": {"scikit-learn"},
    "PIL": {"pillow"},
}
# Imported in scripts but not needed in the env: the project itself (scripts put src/ on sys.path)
# and Snakemake (its script preamble puts Snakemake's own paths on sys.path).
NOT_ENV_PACKAGES = {"finepseudo", "snakemake"}
EXACT_SPEC = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)=(?P<version>[0-9][A-Za-z0-9_.+!]*)(=(?P<build>[A-Za-z0-9_.*+]+))?$"
)
PIP_EXACT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)(\[[^\]]*\])?==(?P<version>[^\s;,=<>!~*]+)(\s*;.*)?$"
)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- rule parsing
RULE_HEAD = re.compile(r"^(rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
# `conda:` followed (same line or next non-empty line) by a quoted path.
CONDA_DIRECTIVE = re.compile(r"^\s*conda:\s*(?:\n\s*)?[rf]?(['\"])(?P<path>[^'\"]+)\1", re.MULTILINE)
SCRIPT_DIRECTIVE = re.compile(r"^\s*script:\s*(?:\n\s*)?[rf]?(['\"])(?P<path>[^'\"]+)\1", re.MULTILINE)
ACTION = re.compile(r"^\s*(shell|script|run|wrapper|notebook|cwl|template_engine):", re.MULTILINE)


def rule_blocks() -> list[tuple[Path, str, str]]:
    """(file, rule name, rule text) for every rule/checkpoint in the Snakefile and rules/*.smk.
    A rule's text runs from its header to the next non-indented, non-comment line."""
    out = []
    for f in RULE_FILES:
        lines = f.read_text().splitlines(keepends=True)
        for i, line in enumerate(lines):
            m = RULE_HEAD.match(line)
            if not m:
                continue
            body = [line]
            for nxt in lines[i + 1 :]:
                if nxt.strip() and not nxt[0].isspace() and not nxt.lstrip().startswith("#"):
                    break
                body.append(nxt)
            out.append((f, m.group(2), "".join(body)))
    return out


def conda_refs() -> list[tuple[Path, str, Path]]:
    """(file, rule, resolved env path) for every `conda:` directive inside a rule."""
    refs = []
    for f, rule, body in rule_blocks():
        for m in CONDA_DIRECTIVE.finditer(body):
            refs.append((f, rule, (f.parent / m.group("path")).resolve()))
    return refs


def referenced_envs() -> list[Path]:
    return sorted({p for _, _, p in conda_refs()})


# --------------------------------------------------------------------------- env parsing
def load_env(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path}: not a YAML mapping"
    return data


def conda_specs(env: dict) -> list[str]:
    return [d for d in env.get("dependencies") or [] if isinstance(d, str)]


def pip_specs(env: dict) -> list[str]:
    out = []
    for d in env.get("dependencies") or []:
        if isinstance(d, dict):
            out.extend(d.get("pip") or [])
    return out


def env_versions(env: dict) -> dict[str, tuple[str, str]]:
    """comparison name -> (version, spec) for the conda and pip packages of one env."""
    versions = {}
    for spec in conda_specs(env):
        m = EXACT_SPEC.match(spec.replace(" ", ""))
        if m:
            name = norm(m.group("name"))
            pip_name = CONDA_TO_PIP.get(name, name)
            versions[PIP_ALIASES.get(pip_name, pip_name)] = (m.group("version"), spec)
    for spec in pip_specs(env):
        m = PIP_EXACT.match(spec.strip())
        if m:
            name = norm(m.group("name"))
            versions[PIP_ALIASES.get(name, name)] = (m.group("version"), spec)
    return versions


def pyproject_pins() -> dict[str, tuple[str, str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    reqs = list(project.get("dependencies", []))
    for group in (project.get("optional-dependencies") or {}).values():
        reqs.extend(group)
    pins = {}
    for req in reqs:
        m = PIP_EXACT.match(req.strip())
        if m:
            name = norm(m.group("name"))
            pins[PIP_ALIASES.get(name, name)] = (m.group("version"), req)
    return pins


# --------------------------------------------------------------------------- import scanning
def _guarded(node: ast.AST, parents: dict) -> bool:
    """True if the import sits in a `try:` body whose handlers catch ImportError (or broader)."""
    child = node
    while child in parents:
        parent = parents[child]
        if isinstance(parent, ast.Try) and child in parent.body:
            for h in parent.handlers:
                names = {getattr(h.type, "id", None)} | {
                    getattr(e, "id", None) for e in getattr(h.type, "elts", [])
                }
                if h.type is None or names & {
                    "ImportError",
                    "ModuleNotFoundError",
                    "Exception",
                    "BaseException",
                }:
                    return True
        child = parent
    return False


def module_imports(path: Path, top_level_only: bool) -> set[str]:
    """Absolute module names imported by a file (unguarded imports only)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if _guarded(node, parents):
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside the finepseudo package
                pkg = "finepseudo" + ("." + node.module if node.module else "")
                names.add(pkg)
                if not node.module:
                    names.update(f"finepseudo.{a.name}" for a in node.names)
            elif node.module:
                names.add(node.module)
                if node.module == "finepseudo":
                    names.update(f"finepseudo.{a.name}" for a in node.names)
    return names


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party packages a script needs at start-up: everything the script imports,
    plus the module-level imports of the finepseudo modules it loads (transitively)."""
    src = ROOT / "src"
    stdlib = set(sys.stdlib_module_names)
    todo = [(script, False)]
    seen: set[Path] = set()
    found: set[str] = set()
    while todo:
        path, top_only = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for mod in module_imports(path, top_level_only=top_only):
            top = mod.split(".")[0]
            if top == "finepseudo":
                parts = mod.split(".")
                for k in range(1, len(parts) + 1):
                    base = src.joinpath(*parts[:k])
                    for cand in (base.with_suffix(".py"), base / "__init__.py"):
                        if cand.exists():
                            todo.append((cand, True))
            elif top not in stdlib and top not in NOT_ENV_PACKAGES and top != "__future__":
                found.add(top)
    return found


# --------------------------------------------------------------------------- tests
def test_rules_found():
    assert RULE_FILES, "no Snakefile or workflow/rules/*.smk found"
    assert rule_blocks(), "no rules parsed from the Snakefile / workflow/rules/*.smk"
    assert conda_refs(), "no rule names a conda: environment"


def test_every_rule_with_an_action_names_a_conda_env():
    missing = [
        f"{f.relative_to(ROOT)}: rule {rule}"
        for f, rule, body in rule_blocks()
        if ACTION.search(body) and not CONDA_DIRECTIVE.search(body)
    ]
    assert not missing, "rules that run code without a conda: env: " + ", ".join(missing)


def test_referenced_env_files_exist():
    missing = [f"{f.relative_to(ROOT)}: rule {rule} -> {p}" for f, rule, p in conda_refs() if not p.is_file()]
    assert not missing, "conda: files that do not exist: " + "; ".join(missing)


@pytest.mark.parametrize("env_path", referenced_envs(), ids=lambda p: p.name)
def test_env_file_is_valid_and_conda_forge_only(env_path: Path):
    assert env_path.is_file(), f"{env_path} missing"
    env = load_env(env_path)
    assert set(env) <= {"name", "channels", "dependencies"}, f"{env_path.name}: unexpected keys {sorted(env)}"
    assert env.get("channels") == ["conda-forge", "nodefaults"], (
        f"{env_path.name}: channels must be [conda-forge, nodefaults], got {env.get('channels')}"
    )
    deps = env.get("dependencies")
    assert isinstance(deps, list) and deps, f"{env_path.name}: no dependencies"
    for d in deps:
        assert isinstance(d, str) or (isinstance(d, dict) and set(d) == {"pip"}), (
            f"{env_path.name}: bad entry {d!r}"
        )
    if pip_specs(env):
        assert any(norm(s.split("=")[0]) == "pip" for s in conda_specs(env)), (
            f"{env_path.name}: pip: block without pip"
        )
    names = [norm(s.split("=")[0]) for s in conda_specs(env)]
    assert len(names) == len(set(names)), f"{env_path.name}: a package is listed twice"
    assert env_path.read_text().lstrip().startswith("#"), (
        f"{env_path.name}: starts without a comment saying what it is for"
    )


@pytest.mark.parametrize("env_path", referenced_envs(), ids=lambda p: p.name)
def test_env_pins_every_package_exactly(env_path: Path):
    env = load_env(env_path)
    loose = [s for s in conda_specs(env) if not EXACT_SPEC.match(s.replace(" ", ""))]
    loose += [s for s in pip_specs(env) if not PIP_EXACT.match(s.strip())]
    assert not loose, f"{env_path.name}: not pinned to one exact version: {loose}"
    specs = [s.replace(" ", "") for s in conda_specs(env)]
    assert any(s.startswith("python=") for s in specs), f"{env_path.name}: python is not pinned"


def test_env_pins_agree_with_pyproject():
    pins = pyproject_pins()
    assert pins, "no == pins found in pyproject.toml"
    compared, bad = 0, []
    for env_path in referenced_envs():
        for name, (version, spec) in env_versions(load_env(env_path)).items():
            if name in pins:
                compared += 1
                if pins[name][0] != version:
                    bad.append(f"{env_path.name}: {spec!r} but pyproject.toml has {pins[name][1]!r}")
    assert compared, "no package appears both in an env file and in pyproject.toml"
    assert not bad, "\n".join(bad)


def test_envs_pin_the_same_python_and_shared_packages():
    seen: dict[str, dict[str, str]] = {}
    for env_path in referenced_envs():
        for name, (version, _) in env_versions(load_env(env_path)).items():
            seen.setdefault(name, {})[env_path.name] = version
    differing = {n: v for n, v in seen.items() if len(set(v.values())) > 1}
    assert not differing, f"envs pin different versions of the same package: {differing}"


def _script_rules():
    out = []
    for f, rule, body in rule_blocks():
        c, s = CONDA_DIRECTIVE.search(body), SCRIPT_DIRECTIVE.search(body)
        if c and s and s.group("path").endswith(".py"):
            out.append((rule, (f.parent / s.group("path")).resolve(), (f.parent / c.group("path")).resolve()))
    return out


@pytest.mark.parametrize("rule,script,env_path", _script_rules(), ids=[r for r, _, _ in _script_rules()])
def test_env_provides_what_the_rule_script_imports(rule: str, script: Path, env_path: Path):
    assert script.is_file(), f"rule {rule}: script {script} missing"
    if not env_path.is_file():
        pytest.fail(f"rule {rule}: env {env_path} missing")
    env = load_env(env_path)
    provided = {norm(s.replace(" ", "").split("=")[0]) for s in conda_specs(env)}
    provided |= {norm(re.split(r"[=<>!~\[; ]", s.strip())[0]) for s in pip_specs(env)}
    missing = []
    for mod in sorted(third_party_imports(script)):
        candidates = {norm(c) for c in IMPORT_TO_CONDA.get(mod, {mod})}
        if not candidates & provided:
            missing.append(f"{mod} (conda-forge: {' or '.join(sorted(candidates))})")
    assert not missing, f"rule {rule}: {env_path.name} lacks packages its script imports: {missing}"


GPU_RESOURCE = re.compile(r"^\s*gpu\s*=", re.MULTILINE)


def test_slurm_profile_places_every_gpu_rule():
    """A rule that can request a GPU must have its own partition in the SLURM profile: otherwise it
    inherits default-resources' CPU partition and is submitted there with --gpus=N."""
    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    default_part = (profile.get("default-resources") or {}).get("slurm_partition")
    placed = profile.get("set-resources") or {}
    gpu_rules = sorted({rule for _, rule, body in rule_blocks() if GPU_RESOURCE.search(body)})
    unplaced = [
        r
        for r in gpu_rules
        if not (placed.get(r) or {}).get("slurm_partition") or placed[r]["slurm_partition"] == default_part
    ]
    assert not unplaced, f"GPU-capable rules without a GPU partition in workflow/profiles/slurm: {unplaced}"
