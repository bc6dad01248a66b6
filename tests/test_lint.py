"""The workflow passes Snakemake's linter and snakefmt, and the dry runs build the expected DAG."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_snakemake_lint_is_clean():
    r = _run(BIN / "snakemake", "--lint")
    assert "Congratulations, your workflow is in a good condition!" in r.stdout + r.stderr, r.stdout + r.stderr


def test_snakefmt_check():
    r = _run(BIN / "snakefmt", "--check", "Snakefile", "workflow")
    assert r.returncode == 0, r.stdout + r.stderr


def _dry_run(*configfiles):
    """A dry run in an empty working directory (outputs already in results/ do not change the DAG), with
    the default config and then ``configfiles`` layered on top, as `snakemake --configfile X` does."""
    import tempfile

    with tempfile.TemporaryDirectory() as wd:
        r = _run(BIN / "snakemake", "-s", ROOT / "Snakefile", "--directory", wd, "-n", "--quiet", "rules",
                 "--configfile", ROOT / "config/config.yaml", *configfiles)
    return r.returncode, r.stdout + r.stderr


def test_default_dry_run_lists_the_expected_jobs():
    rc, out = _dry_run()
    assert rc == 0, out
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts["extract_frames"] == "4"
    assert counts["train_fe"] == "2"  # 2 seeds x supervised at 20 % labels
    assert counts["pretrain_fe"] == counts["pretrain_gitdl"] == "1"  # once per dataset, shared by every split
    # pl, fa_only, finepseudo and finepseudo_mean x 2 seeds
    assert counts["select_hparams"] == counts["select_round"] == "8"
    assert counts["retrain_fe"] == counts["pseudo_label"] == "16"  # two rounds each
    assert counts["retrain_fa"] == "6"  # before round 2, for the methods that use p_A (not pl)
    assert counts["report"] == "1"


def test_cpu_benchmark_preset_dry_run_lists_the_expected_jobs():
    """Every method and ablation at 5/10/20 % labels over 3 seeds, the default run's two rounds."""
    rc, out = _dry_run(ROOT / "config/presets/cpu_benchmark.yaml")
    assert rc == 0, out
    c = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", out, re.M)}
    runs, pseudo_methods = 9, 8  # 3 fractions x 3 seeds; pl, fa_only, finepseudo, finepseudo_mean, 4 ablations
    assert c["train_fe"] == 2 * runs + 3  # supervised and supervised_scratch per run, supervised_full per seed
    assert c["retrain_fe"] == c["pseudo_label"] == 2 * c["select_hparams"] == 2 * pseudo_methods * runs
    assert c["train_alignability"] == 4 * runs and c["pretrain_gitdl"] == 2 and c["pretrain_fe"] == 1


def test_bad_config_value_stops_before_any_job(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text((ROOT / "config/test.yaml").read_text().replace("on_error: fail", "on_error: ignore"))
    rc, out = _dry_run(cfg)
    assert rc != 0
    assert "config key 'frames.on_error'" in out and "'skip'" in out


@pytest.mark.parametrize("missing", ["videos_dir", "vocab"])
def test_real_dataset_without_paths_names_the_keys(tmp_path, missing):
    cfg = tmp_path / "real.yaml"
    ann = tmp_path / "a.json"
    ann.write_text("[]")
    paths = {"videos_dir": str(tmp_path), "train_annotations": str(ann), "test_annotations": str(ann), "vocab": str(ann)}
    paths[missing] = None
    lines = ["dataset:", "  name: diving48"] + [f"  {k}: {'null' if v is None else v}" for k, v in paths.items()]
    cfg.write_text("\n".join(lines) + "\n")
    rc, out = _dry_run(cfg)
    assert rc != 0 and f"dataset.{missing}" in out


def test_benchmark_preset_dry_run_lists_the_expected_jobs():
    """All 8 methods x 3 label fractions x 3 seeds with 3 rounds: the job counts follow from the design."""
    rc, out = _dry_run(ROOT / "config/presets/benchmark.yaml")
    assert rc == 0, out
    c = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", out, re.M)}
    runs, pseudo_methods, fa_methods, rounds = 9, 6, 5, 3
    assert c["train_fe"] == runs + 3  # + supervised_full (100 % labels) per seed
    assert c["evaluate_fe"] == runs + 3  # supervised; pseudo-labeling methods are evaluated per round
    assert c["evaluate_round"] == pseudo_methods * runs * rounds
    assert c["select_hparams"] == c["select_round"] == c["pseudo_quality"] == pseudo_methods * runs
    assert c["pseudo_label"] == c["retrain_fe"] == pseudo_methods * runs * rounds
    assert c["retrain_fa"] == fa_methods * runs * (rounds - 1)  # the last round's f_A is never used
    assert c["train_alignability"] == 4 * runs  # AVML variants: L_AV, L_AT only, L_Score only, no GITDL
    assert c["pretrain_gitdl"] == 2 and c["extract_frames"] == 16  # GITDL once per dataset (with and without)
    assert c["pretrain_fe"] == 1  # the self-supervised f_E initialisation, shared by every method and split


@pytest.mark.parametrize("preset", ["diving48", "finegym99", "finegym288", "finediving"])
def test_real_dataset_presets_are_valid_and_name_missing_files(preset):
    rc, out = _dry_run(ROOT / f"config/presets/{preset}.yaml")
    assert rc != 0 and "CHANGE_ME" in out  # paths to set are named, nothing runs
    assert "invalid config" not in out


def test_ruff_is_clean():
    r = _run(BIN / "ruff", "check", "src", "tests", "benchmarks", "studies", "gpu_check", "scripts")
    assert r.returncode == 0, r.stdout + r.stderr
