"""Download, here, the wheels that ``gpu_check/gpu_check.sh`` installs on the GPU machine (which has no network).

That machine's image has Python 3.12, torch 2.11 (CUDA 13), cupy-cuda13x 14.2, numpy and pytest, and nothing else
of ours. This script resolves the dependency closure of what the check runs (Snakemake and the workflow's
Python packages) from the ``Requires-Dist`` metadata of the downloaded wheels themselves, for CPython 3.12 on
manylinux x86_64, keeping one version of each package (the version installed in the environment running this
script, which pip resolved together, or the pin below), minus what the image already has (torch, cupy, numpy,
pytest and their own dependencies) and minus PuLP (the check runs Snakemake with ``--scheduler greedy``, which
never imports it; its wheel is 17 MB of solver binaries). Every wheel goes through ``pip download --no-deps
--only-binary=:all:`` into ``.whl/`` (ignored by git; the device tool's ``carry`` brings it along); a package
published as a source distribution only (connection_pool 0.0.3) is built into its pure-Python wheel here with
``pip wheel``. ``.whl/manifest.json`` lists each wheel with its size and why it is there.

One wheel is only installed when the image lacks it (``.whl/ifmissing/``): torchvision 0.26.0 (built for
torch 2.11 + CUDA 13, ``+cu130`` on PyPI; R(2+1)D-18 comes from it). imageio-ffmpeg (a static ffmpeg binary with
libx264, for SynthDive's encoder and frame extraction) would be one, but its wheel is 28 MiB and the carried
folder must stay small (the device tool carries 64 MiB at most): instead, ``.whl/tiny_data.tar.gz`` holds the
outputs of config/test.yaml's SynthDive generation, manifest and frame extraction (the only rules that run
ffmpeg; the workflow never calls ffprobe), made here, which a machine without ffmpeg puts in the working
directory and marks up to date (``snakemake --touch``) before the tiny workflow runs from there on. (Snakemake's
between-workflow cache cannot do this: it restores the videos as symbolic links into the cache, which
build_manifest refuses as links leaving the dataset folder.) Prepare again after changing those rules or the
tiny config.

    .venv/bin/python gpu_check/gpu_prepare.py          # or: bash gpu_check/gpu_check.sh --prepare
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

#: what the check needs on the GPU machine beyond the image: Snakemake and the workflow's imports
#: (pyproject.toml's runtime pins); None = the version installed here
ROOTS: dict[str, str | None] = {
    "snakemake": "9.27.1",
    "pandas": "3.1.1",
    "seaborn": "0.13.2",
    "matplotlib": "3.11.2",
    "pyyaml": "6.0.3",
    "ffmpeg-python": "0.2.0",
    "jsonschema": "4.26.0",
}
#: installed on the GPU machine only when the image lacks the module (name -> (version, module or command))
IF_MISSING: dict[str, tuple[str, str]] = {
    "torchvision": ("0.26.0", "import:torchvision"),  # torch 2.11's torchvision, +cu130 on PyPI
}
#: in the image: torch 2.11 (cu130), cupy-cuda13x 14.2, numpy, pytest, and their own requirements
IMAGE = {
    "torch", "numpy", "cupy-cuda13x", "pytest",
    "filelock", "typing-extensions", "setuptools", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "fsspec",
    "triton", "cuda-pathfinder", "cuda-bindings", "iniconfig", "pluggy", "pygments",
}
IMAGE_PREFIXES = ("nvidia-", "cuda-")
#: left out on purpose, with the reason
SKIP = {"pulp": "gpu_check.sh runs Snakemake with --scheduler greedy, which never imports PuLP (a 17 MB wheel)"}
#: packages whose pure-Python wheel (py3-none-any) is taken even where a compiled one exists (smaller, same API)
PURE = {"fonttools"}
#: pins where the version installed here is not the one to carry
PINS: dict[str, str] = {}

PYTHON = "3.12"  # the GPU machine's; --python changes it (a rehearsal here with another interpreter)
TARGET_ENV = {
    "python_version": PYTHON, "python_full_version": f"{PYTHON}.0", "implementation_name": "cpython",
    "implementation_version": f"{PYTHON}.0", "platform_python_implementation": "CPython", "os_name": "posix",
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "platform_release": "",
    "platform_version": "", "extra": "",
}
PLATFORMS = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform",
             "manylinux2014_x86_64"]


def in_image(name: str) -> bool:
    return name in IMAGE or name.startswith(IMAGE_PREFIXES)


def version_for(name: str, pinned: str | None) -> str:
    if pinned:
        return pinned
    if name in PINS:
        return PINS[name]
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        raise SystemExit(f"{name}: not installed here and not pinned in {Path(__file__).name}; add it to PINS") from None


def download(name: str, version: str, dest: Path, log) -> Path:
    """``pip download`` one wheel (no dependencies) for CPython 3.12 manylinux x86_64; returns its path."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    if name in PURE:
        cmd += ["--python-version", TARGET_ENV["python_version"], "--implementation", "py", "--platform", "any"]
    else:
        cmd += ["--python-version", TARGET_ENV["python_version"], "--implementation", "cp", *PLATFORMS]
    cmd.append(f"{name}=={version}")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 and "No matching distribution" in r.stderr:
        # published as a source distribution only (connection_pool 0.0.3): build its wheel here, which must come
        # out pure Python (py3-none-any), so it installs on the GPU machine as it would here
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", "-w", str(dest),
                            f"{name}=={version}"], capture_output=True, text=True)
        built = [p for p in set(dest.glob("*.whl")) - before if not p.name.endswith("-none-any.whl")]
        if built:
            raise SystemExit(f"{name}=={version} has no wheel and its source builds a compiled one: {built[0].name}")
    if r.returncode != 0:
        raise SystemExit(f"pip download {name}=={version} failed:\n{r.stdout}{r.stderr}")
    new = set(dest.glob("*.whl")) - before
    key = canonicalize_name(name).replace("-", "_")
    match = [p for p in dest.glob("*.whl") if canonicalize_name(p.name.split("-")[0]).replace("-", "_") == key
             and p.name.split("-")[1] == version]
    if not match:
        raise SystemExit(f"pip download {name}=={version} left no wheel in {dest} (new: {sorted(map(str, new))})")
    log(f"  {match[0].name} ({match[0].stat().st_size / 2**20:.2f} MiB)")
    return match[0]


def requirements(wheel: Path) -> list[Requirement]:
    """The wheel's ``Requires-Dist`` entries that apply on the target (CPython 3.12, Linux x86_64, no extras)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        msg = email.parser.Parser().parsestr(z.read(meta).decode())
    out = []
    for line in msg.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or Marker(str(req.marker)).evaluate(TARGET_ENV):
            out.append(req)
    return out


def resolve(dest: Path, log) -> dict:
    """Download the closure breadth-first into ``dest``; the wheels that only the conditional ones need go to
    ``dest/ifmissing``. Returns the manifest."""
    if dest.exists():
        shutil.rmtree(dest)
    todo: list[tuple[str, str | None, str]] = [(canonicalize_name(n), v, "(root)") for n, v in ROOTS.items()]
    todo += [(canonicalize_name(n), v, "(if missing)") for n, (v, _) in IF_MISSING.items()]
    chosen: dict[str, dict] = {}
    left_out: dict[str, str] = {}
    while todo:
        name, pinned, parent = todo.pop(0)
        if name in chosen:
            chosen[name]["needed_by"].append(parent)
            continue
        version = version_for(name, pinned)
        wheel = download(name, version, dest, log)
        chosen[name] = {"version": version, "path": wheel, "bytes": wheel.stat().st_size, "needed_by": [parent]}
        for req in requirements(wheel):
            dep = canonicalize_name(req.name)
            if dep in SKIP:
                left_out[dep] = SKIP[dep]
                continue
            if in_image(dep):
                left_out.setdefault(dep, "in the GPU machine's image")
                continue
            v = Version(chosen[dep]["version"] if dep in chosen else version_for(dep, None))
            if req.specifier and not req.specifier.contains(v, prereleases=True):
                raise SystemExit(f"{name} {version} needs {req}, but the closure has {dep} {v}: pin another version")
            todo.append((dep, str(v), name))
    # unconditional: the roots and everything an unconditional wheel needs (a fixed point)
    always = {n for n, e in chosen.items() if "(root)" in e["needed_by"]}
    grew = True
    while grew:
        grew = False
        for n, e in chosen.items():
            if n not in always and any(p in always for p in e["needed_by"]):
                always.add(n)
                grew = True
    (dest / "ifmissing").mkdir()
    for n, e in chosen.items():
        if n not in always:
            e["path"] = e["path"].rename(dest / "ifmissing" / e["path"].name)
        e["wheel"] = str(e.pop("path").relative_to(dest))
    total = sum(e["bytes"] for e in chosen.values())
    always_bytes = sum(chosen[n]["bytes"] for n in always)
    manifest = {"target": f"CPython {TARGET_ENV['python_version']}, manylinux x86_64", "total_bytes": total,
                "always_installed_bytes": always_bytes,
                "if_missing": {canonicalize_name(n): what for n, (_, what) in IF_MISSING.items()},
                "left_out": dict(sorted(left_out.items())), "packages": dict(sorted(chosen.items()))}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def git(*args: str) -> str:
    r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def build_data(dest: Path, log) -> dict:
    """config/test.yaml's SynthDive, manifest and frame shards (the outputs of the only rules that run ffmpeg) with
    their logs, made here with this checkout's code, as ``dest/tiny_data.tar.gz`` (paths relative to a working
    directory)."""
    import tarfile
    import tempfile

    import yaml

    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    ds = cfg["dataset"]["name"]
    targets = [f"results/{ds}/frames/shard{k}.npy" for k in range(cfg["frames"]["shards"])]
    with tempfile.TemporaryDirectory(prefix="gpu-prepare-") as tmp:
        wd = Path(tmp)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)}
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd), *targets,
               "--cores", "2", "--scheduler", "greedy", "--configfile", str(ROOT / "config/test.yaml")]
        log(f"  snakemake {' '.join(targets)} (config/test.yaml)")
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"the tiny data preparation failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        members = [f"results/{ds}/raw", f"results/{ds}/manifest.tsv", f"results/{ds}/classes.tsv", f"results/{ds}/frames",
                   "results/logs/generate_synthdive.log", f"results/logs/{ds}/build_manifest.log",
                   f"results/logs/{ds}/extract_frames"]
        out = dest / "tiny_data.tar.gz"
        with tarfile.open(out, "w:gz") as tar:
            for m in members:
                tar.add(wd / m, arcname=m)
    log(f"  {out.name} ({out.stat().st_size / 2**20:.2f} MiB)")
    return {"file": out.name, "bytes": out.stat().st_size, "members": members, "targets": targets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=ROOT / ".whl")
    ap.add_argument("--python", default=PYTHON, help="target CPython version (default %(default)s: the GPU machine's)")
    ap.add_argument("--no-data", action="store_true", help="wheels only, without the tiny config's data")
    args = ap.parse_args()
    TARGET_ENV["python_version"] = args.python
    TARGET_ENV["python_full_version"] = TARGET_ENV["implementation_version"] = f"{args.python}.0"
    print(f"[prepare] resolving the closure into {args.dest}")
    m = resolve(args.dest, print)
    n = len(m["packages"])
    print(f"[prepare] {n} wheels, {m['total_bytes'] / 2**20:.1f} MiB in all "
          f"({m['always_installed_bytes'] / 2**20:.1f} MiB always installed, the rest only when the image lacks it)")
    for dep, why in sorted(m["left_out"].items()):
        print(f"[prepare] not carried: {dep} ({why})")
    if not args.no_data:
        print("[prepare] the tiny config's SynthDive, manifest and frames (for a machine without ffmpeg)")
        m["tiny_data"] = build_data(args.dest, print)
    m["prepared_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    m["commit"] = git("rev-parse", "HEAD")
    m["tree_dirty"] = bool(git("status", "--porcelain", "--", "src", "workflow", "config", "Snakefile"))
    carried = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    m["carried_bytes"] = carried
    (args.dest / "manifest.json").write_text(json.dumps(m, indent=1) + "\n")
    print(f"[prepare] .whl/ holds {carried / 2**20:.1f} MiB in all (commit {m['commit'][:10]}"
          f"{', uncommitted changes in src/workflow/config' if m['tree_dirty'] else ''})")


if __name__ == "__main__":
    main()
