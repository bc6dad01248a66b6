"""Helpers for the whole-workflow tests: run Snakemake on the repository's Snakefile in a working
directory, and list the rules a dry run plans (with why)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def run_env() -> dict[str, str]:
    """The environment of a Snakemake run: this checkout's src/ first on the path of every job, ahead of an
    installed finepseudo (another checkout's editable install). The rule scripts put their own checkout's
    src/ first too; this makes the tests independent of that."""
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": path}


def snakemake(workdir, *args, configfile=ROOT / "config/test.yaml", check=True, snakefile=ROOT / "Snakefile",
              timeout=1200):
    cmd = [str(SNAKEMAKE), "-s", str(snakefile), "--directory", str(workdir), *map(str, args),
           "--cores", "2", "--configfile", str(configfile)]
    env = run_env()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"snakemake failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}")
    return r


def planned_rules(r):
    """Rule names of a ``-n --quiet rules`` dry run's job table."""
    return set(re.findall(r"^(\w+)\s+\d+$", r.stdout, re.M)) - {"total", "job"}
