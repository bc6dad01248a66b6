"""Resumable training in the real workflow: a train_fe job killed mid-way (Snakemake and the job killed
together, as a lost node or ``scancel`` does; or only the job's Python process, which Snakemake then
retries as the SLURM profile's ``retries: 1`` does) continues from its epoch checkpoint and ends with the
same weights and history as an uninterrupted run, and nothing that was finished is computed again.

Works on copies of the shared tiny run (session fixture ``tiny_run``) with a longer f_E warm-up, so that
only train_fe runs. No timing: the kill waits for the checkpoint file to appear.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from wfutil import ROOT, SNAKEMAKE, run_env, snakemake

pytestmark = pytest.mark.workflow

EPOCHS = 40
TARGET = "results/synthdive/models/supervised/frac50_seed0/fe.pt"
LOG = "results/logs/synthdive/train_fe/supervised/frac50_seed0.log"
CHECKPOINT = TARGET + ".resume.pt"


@pytest.fixture(scope="module")
def setup(tiny_run, tmp_path_factory):
    """The config (fe.epochs raised) and the uninterrupted reference: a copy of the tiny run with train_fe
    run to the end under that config."""
    base = tmp_path_factory.mktemp("resume_wf")
    cfg = base / "long_fe.yaml"
    text = (ROOT / "config/test.yaml").read_text()
    text, n = re.subn(r"(?m)^(fe:\n(?:  .*\n)*?  epochs: )\d+", rf"\g<1>{EPOCHS}", text)
    assert n == 1, "config/test.yaml has no fe.epochs line to change"
    cfg.write_text(text)
    ref = base / "ref"
    shutil.copytree(tiny_run.parent, ref, symlinks=True)
    snakemake(ref, TARGET, configfile=cfg)
    assert not (ref / CHECKPOINT).exists()  # deleted once the outputs are written
    return cfg, ref


def _copy(tiny_run, dest: Path) -> tuple[Path, dict[str, int]]:
    shutil.copytree(tiny_run.parent, dest, symlinks=True)
    res = dest / "results"
    mtimes = {str(p.relative_to(dest)): p.stat().st_mtime_ns for p in res.rglob("*") if p.is_file()}
    return dest, mtimes


def _start(wd: Path, cfg: Path, *args) -> subprocess.Popen:
    cmd = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(wd), TARGET, "--cores", "2",
           "--configfile", str(cfg), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env(),
                            start_new_session=True)


def _wait_for(path: Path, proc: subprocess.Popen, limit_s: float = 600) -> None:
    """Until ``path`` exists (a safety limit only: the test does not depend on timing)."""
    end = time.monotonic() + limit_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before {path} appeared:\n"
                                 f"{proc.stdout.read()[-4000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.02)


def _session_processes(sid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getsid(int(d.name)) == sid:
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def _same_result(wd: Path, ref: Path) -> None:
    a = torch.load(wd / TARGET, weights_only=True)["state_dict"]
    b = torch.load(ref / TARGET, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    hist = TARGET.replace("fe.pt", "fe.history.tsv")
    cols = ["epoch", "loss", "acc"]
    ha, hb = pd.read_csv(wd / hist, sep="\t")[cols], pd.read_csv(ref / hist, sep="\t")[cols]
    assert len(ha) == EPOCHS
    pd.testing.assert_frame_equal(ha, hb, check_exact=True)
    assert not (wd / CHECKPOINT).exists()


def _unchanged_except_train_fe(wd: Path, before: dict[str, int]) -> None:
    """Files of finished jobs keep their mtimes; only train_fe's outputs, log and benchmark are new."""
    changed = sorted(p for p, t in before.items() if not (wd / p).exists() or (wd / p).stat().st_mtime_ns != t)
    own = re.compile(r"results/(synthdive/models/supervised/frac50_seed0/fe\.(pt|history\.tsv)"
                     r"|logs/synthdive/train_fe/supervised/frac50_seed0\.log"
                     r"|benchmarks/train_fe/synthdive/supervised/frac50_seed0\.tsv)$")
    assert all(own.match(p) for p in changed), changed


def _job_table(output: str) -> set[str]:
    return set(re.findall(r"^(\w+)\s+\d+$", output, re.M)) - {"total", "job", "count"}


def test_killed_run_resumes_with_rerun_incomplete(tiny_run, setup, tmp_path):
    cfg, ref = setup
    wd, before = _copy(tiny_run, tmp_path / "killed")
    proc = _start(wd, cfg)
    _wait_for(wd / CHECKPOINT, proc)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a lost node or scancel does
    proc.wait()
    proc.stdout.close()
    for _ in range(500):  # the group's processes are gone once the kernel has reaped them
        if not _session_processes(proc.pid):
            break
        time.sleep(0.02)
    assert not _session_processes(proc.pid), "a process of the killed run survived"
    epoch = torch.load(wd / CHECKPOINT, weights_only=True)["epoch"]
    assert 1 <= epoch < EPOCHS and not (wd / TARGET.replace("fe.pt", "fe.history.tsv")).exists()
    snakemake(wd, "--unlock", configfile=cfg)  # the killed Snakemake left its lock
    r = snakemake(wd, TARGET, "--rerun-incomplete", configfile=cfg)
    assert _job_table(r.stderr) == {"train_fe"}, r.stderr[-3000:]
    log = (wd / LOG).read_text()
    assert re.search(rf"resuming from epoch {epoch}/{EPOCHS} \(checkpoint \S*{re.escape(CHECKPOINT)}\)", log), log
    _same_result(wd, ref)
    _unchanged_except_train_fe(wd, before)


def test_killed_job_is_retried_and_resumes(tiny_run, setup, tmp_path):
    """The SLURM profile's path: the job dies (kill -9 of its Python process, not Snakemake) and Snakemake
    retries it (``retries`` in workflow/profiles/slurm/config.yaml); the retry resumes."""
    import yaml

    assert yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())["retries"] >= 1
    cfg, ref = setup
    wd, before = _copy(tiny_run, tmp_path / "retried")
    proc = _start(wd, cfg, "--retries", "1")
    _wait_for(wd / CHECKPOINT, proc)
    script = [pid for pid in _session_processes(proc.pid) if ".train_fe.py" in _cmdline(pid)]  # not retrain_fe
    assert len(script) == 1, [(p, _cmdline(p)) for p in _session_processes(proc.pid)]
    os.kill(script[0], signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == 0, out[-4000:]
    log = (wd / LOG).read_text()  # the retry's log
    assert re.search(rf"resuming from epoch \d+/{EPOCHS} \(checkpoint ", log), log
    _same_result(wd, ref)
    _unchanged_except_train_fe(wd, before)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_finished_run_leaves_no_checkpoint(tiny_run):
    """Every training job of the shared run deleted its epoch checkpoint with its outputs."""
    left = [str(p) for p in tiny_run.rglob("*") if p.name.endswith((".resume.pt", ".tmp"))]
    assert not left, left
    assert (tiny_run / "synthdive/models/ssl/fe_ssl.pt").is_file()  # the run trained (the check saw files)
