"""gpu_check/gpu_check.sh, the one-shot GPU check, on a CPU machine (issue 19): it must exit 0, run every CPU part
and mark the GPU parts skipped with a "no GPU" line, so that it cannot rot between GPU loans. Plus unit tests of
its pieces that can fail without a GPU: the comparison of a CPU and a GPU run, the job/device bookkeeping, the
wheel-closure metadata, the shell script's syntax and format, and the PyTorch internals the GPU parts call."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
GPU_CHECK = ROOT / "gpu_check"
SCRIPT = GPU_CHECK / "gpu_check.sh"
GPU_PARTS = {"workflow_gpu", "ddp_nccl", "resume_gpu", "dtw_bench", "fe_throughput"}
CPU_PARTS = {"env", "dtw_tests", "workflow_cpu", "workflow_compare", "ddp_gloo", "resume_cpu", "fe_throughput_cpu",
             "preset_budget"}
# the CPU run of the script in CI: the tiny config up to f_E's evaluation and the CuPy-capable mining rule (the
# GPU machine runs the whole report), compared exactly with the suite's own whole tiny run
SHORT_TARGETS = ("results/synthdive/eval/supervised/frac50_seed0/metrics.json "
                 "results/synthdive/alignability/frac50_seed0/triplets_gitdl.tsv")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------------------
# the whole script, CPU mode


@pytest.mark.workflow
def test_gpu_check_runs_on_a_cpu_machine_and_skips_the_gpu_parts(tiny_run, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "PY": sys.executable, "OUT": str(out), "GPU_CHECK_WORK": str(work),
           "GPU_CHECK_FORCE_CPU": "1", "GPU_CHECK_WF_TARGETS": SHORT_TARGETS, "GPU_CHECK_REFERENCE": str(tiny_run),
           "GPU_CHECK_DTW_K": "golden or nvcc or cupy_backend_without_gpu"}
    r = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "no GPU" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    parts = summary["parts"]
    assert summary["ok"] and not summary["gpu"]
    assert set(parts) == GPU_PARTS | CPU_PARTS
    for name in GPU_PARTS:
        assert parts[name]["status"] == "skipped" and parts[name]["reason"].startswith("no GPU"), (name, parts[name])
    for name in CPU_PARTS:
        assert parts[name]["status"] == "passed", (name, parts[name])
        assert parts[name]["seconds"] > 0 and parts[name]["limit_s"] > 0
    res = {n: parts[n].get("results", {}) for n in parts}
    wf = res["workflow_cpu"]
    assert wf["passed"] and wf["returncode"] == 0 and {"pretrain_fe", "train_fe", "mine_pairs"} <= set(wf["rules"])
    assert all(v["cuda_processes"] == 0 and v["probed"] == v["jobs"] for k, v in wf["rules"].items() if k != "all")
    cmp = res["workflow_compare"]
    assert cmp["mode"] == "exact" and cmp["passed"] and cmp["tables_json_equal"] >= 5 and cmp["arrays_equal"] >= 3
    assert res["resume_cpu"]["bit_identical"] and res["resume_cpu"]["checkpoint_epoch_at_kill"] == 2
    assert res["ddp_gloo"]["checks"]["all_reduce"] and res["ddp_gloo"]["world"] == 2
    assert res["fe_throughput_cpu"]["workflow_clips_per_s"] > 0
    assert [row["preset"] for row in res["preset_budget"]] == ["diving48.yaml", "finegym99.yaml", "finegym288.yaml",
                                                               "finediving.yaml"]
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = tar.getnames()
    assert "logs/workflow_cpu.log" in names and "wf_cpu/snakemake.log" in names
    assert not any(n.endswith((".pt", ".npy")) for n in names)
    assert (out / "console.log").read_text().count("[gpu_check] done") == 1


def test_gpu_check_runs_only_the_selected_parts(tmp_path):
    """GPU_CHECK_ONLY (a rerun of one part): the others are skipped with the reason, the summary and archive are
    written, and the exit status follows the selected part."""
    out = tmp_path / "out"
    env = {**os.environ, "PY": sys.executable, "OUT": str(out), "GPU_CHECK_WORK": str(tmp_path / "work"),
           "GPU_CHECK_FORCE_CPU": "1", "GPU_CHECK_ONLY": "preset_budget"}
    r = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    parts = json.loads((out / "summary.json").read_text())["parts"]
    assert parts["preset_budget"]["status"] == "passed" and len(parts["preset_budget"]["results"]) == 4
    assert parts["workflow_cpu"]["status"] == "skipped" and "not selected" in parts["workflow_cpu"]["reason"]
    assert parts["fe_throughput"]["reason"].startswith("no GPU")
    with tarfile.open(out / "logs.tar.gz") as tar:
        assert "logs/preset_budget.log" in tar.getnames()


# ---------------------------------------------------------------------------------------------------------
# pieces


def test_shell_script_syntax_and_format():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    shfmt = shutil.which("shfmt") or shutil.which("shfmt", path=str(Path(sys.executable).parent))
    if shfmt is None:
        pytest.skip("shfmt not installed")
    r = subprocess.run([shfmt, "-i", "2", "-d", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def _tree(root: Path, top1: dict[str, float], frames: bytes = b"frames") -> Path:
    """A minimal results/ tree: a device-independent file, a table, a JSON file and test metrics."""
    d = root / "results" / "synthdive"
    (d / "frames").mkdir(parents=True)
    (d / "frames" / "shard0.status.tsv").write_bytes(frames)
    (d / "models").mkdir()
    (d / "models" / "fe.history.tsv").write_text("epoch\tloss\tseconds\n1\t1.25\t3.0\n")
    for method, acc in top1.items():
        e = d / "eval" / method / "frac50_seed0"
        e.mkdir(parents=True)
        (e / "metrics.json").write_text(json.dumps({"n": 8, "top1": acc, "seconds": 0.1}))
        (e / "predictions.tsv").write_text("video\tpred\nv1\t0\nv2\t1\n")
    (root / "results" / "logs").mkdir()
    (root / "results" / "logs" / "x.log").write_text(str(top1))  # logs differ freely
    return root / "results"


def test_device_comparison_passes_within_tolerance_and_fails_outside(tmp_path):
    wf = _load("gpu_workflow", GPU_CHECK / "gpu_workflow.py")
    cpu = _tree(tmp_path / "cpu", {"pl": 25.0, "finepseudo": 37.5})
    ok = wf.compare_device(cpu, _tree(tmp_path / "gpu_ok", {"pl": 37.5, "finepseudo": 37.5}), 2.0)
    assert ok["passed"], ok["problems"]
    assert ok["top1_tolerance_points"] == 25.0 and ok["max_abs_top1_diff"] == 12.5
    far = wf.compare_device(cpu, _tree(tmp_path / "gpu_far", {"pl": 62.5, "finepseudo": 37.5}), 2.0)
    assert not far["passed"] and any("test top-1 25.0 on the CPU, 62.5 on the GPU" in p for p in far["problems"])
    drift = wf.compare_device(cpu, _tree(tmp_path / "gpu_drift", {"pl": 50.0, "finepseudo": 12.5}), 2.0)
    assert not drift["passed"] and any("mean |test top-1 difference|" in p for p in drift["problems"])
    data = wf.compare_device(cpu, _tree(tmp_path / "gpu_data", {"pl": 25.0, "finepseudo": 37.5}, b"other"), 2.0)
    assert not data["passed"] and any("frames/shard0.status.tsv: differs" in p for p in data["problems"])
    extra = _tree(tmp_path / "gpu_extra", {"pl": 25.0, "finepseudo": 37.5})
    (extra / "synthdive" / "eval" / "pl" / "frac50_seed0" / "predictions.tsv").write_text("video\tpred\nv1\t0\n")
    rows = wf.compare_device(cpu, extra, 2.0)
    assert not rows["passed"] and any("row count" in p for p in rows["problems"])


def test_exact_comparison_finds_a_changed_cell_and_allows_a_subset(tmp_path):
    wf = _load("gpu_workflow", GPU_CHECK / "gpu_workflow.py")
    a = _tree(tmp_path / "a", {"pl": 25.0})
    b = _tree(tmp_path / "b", {"pl": 25.0, "fa_only": 50.0})
    assert wf.compare_exact(a, b, subset=True)["passed"]
    assert not wf.compare_exact(a, b, subset=False)["passed"]
    (b / "synthdive" / "models" / "fe.history.tsv").write_text("epoch\tloss\tseconds\n1\t1.26\t9.0\n")
    res = wf.compare_exact(a, b, subset=True)
    assert not res["passed"] and any("fe.history.tsv" in p for p in res["problems"])


def test_snakemake_job_log_parsing():
    wf = _load("gpu_workflow", GPU_CHECK / "gpu_workflow.py")
    log = """Select jobs to execute...

[Mon Dec  7 18:47:58 2026]
localrule generate_synthdive:
    output: results/synthdive/raw/videos
    resources: tmpdir=/tmp, runtime=30, mem_mb=2000
[Mon Dec  7 18:48:10 2026]
Finished jobid: 3 (Rule: generate_synthdive)
[Mon Dec  7 18:48:11 2026]
rule mine_pairs:
    input: a
    resources: tmpdir=/tmp, runtime=30, gpu=1, mem_mb=2100
[Mon Dec  7 18:48:12 2026]
checkpoint build_manifest:
    resources: tmpdir=/tmp, gpu=0
"""
    assert wf.parse_jobs(log) == [{"rule": "generate_synthdive", "gpu": 0}, {"rule": "mine_pairs", "gpu": 1},
                                  {"rule": "build_manifest", "gpu": 0}]
    assert wf.overlay("cuda") == {"device": "cuda", "alignability": {"dtw_backend": "cupy"}}


def test_device_probe_names_rule_scripts_only():
    probe = _load("gpu_probe_sitecustomize", GPU_CHECK / "gpu_probe" / "sitecustomize.py")
    assert probe._rule_of("/w/.snakemake/scripts/tmpab12cd.mine_pairs.py") == "mine_pairs"
    assert probe._rule_of("-c") is None and probe._rule_of("/w/benchmarks/gpu_bench.py") is None


def test_probe_reports_each_rule_process(tmp_path):
    """A process started like a rule script writes one line; CUDA not initialised on this machine's CPU run."""
    script = tmp_path / ".snakemake" / "scripts" / "tmpxyz.train_fe.py"
    script.parent.mkdir(parents=True)
    script.write_text("import torch\nprint(torch.ones(2).sum())\n")
    log = tmp_path / "device.jsonl"
    env = {**os.environ, "GPU_CHECK_DEVICE_LOG": str(log), "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(GPU_CHECK / "gpu_probe"), str(ROOT / "src")])}
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=300)
    rec = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(rec) == 1 and rec[0]["rule"] == "train_fe" and rec[0]["torch"] and not rec[0]["cuda_initialized"]


def test_wheel_requirements_follow_the_target_markers(tmp_path):
    prep = _load("gpu_prepare", GPU_CHECK / "gpu_prepare.py")
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    meta = ("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: pyyaml>=6\n"
            "Requires-Dist: tzdata; sys_platform == \"win32\"\nRequires-Dist: typing-extensions; python_version < \"3.13\"\n"
            "Requires-Dist: gdown>=4; extra == \"gdown\"\n")
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("demo-1.0.dist-info/METADATA", meta)
    assert [r.name for r in prep.requirements(wheel)] == ["pyyaml", "typing-extensions"]
    assert prep.in_image("nvidia-cudnn-cu13") and prep.in_image("torch") and not prep.in_image("pandas")
    assert "pulp" in prep.SKIP


def test_peak_table_and_steady_rate():
    fe = _load("fe_throughput", BENCH / "fe_throughput.py")
    assert fe.peak_for("NVIDIA H100 80GB HBM3") == 989.4 and fe.peak_for("NVIDIA H100 PCIe") == 756.5
    assert fe.peak_for("NVIDIA H200") == 989.4 and fe.peak_for("NVIDIA H200 NVL") == 835.5
    assert fe.peak_for("Some GPU") is None
    assert fe.steady_rate([0.0, 1.0, 2.0, 2.5, 3.0], warmup=1, batch=4) == pytest.approx(3 * 4 / 2.0)
    with pytest.raises(RuntimeError):
        fe.steady_rate([0.0, 1.0], warmup=1, batch=4)


def test_the_torch_internals_the_ddp_check_calls_exist():
    """gpu_ddp_check.py calls SyncBatchNorm's autograd function directly (the module skips it at world size 1)."""
    from torch.nn.modules._functions import SyncBatchNorm

    params = list(inspect.signature(SyncBatchNorm.forward).parameters)
    assert params[1:] == ["input", "weight", "bias", "running_mean", "running_var", "eps", "momentum",
                          "process_group", "world_size"]
    from finepseudo.align.train import _avml_worker, _gitdl_worker
    from finepseudo.ddp import _GatherRows
    from finepseudo.models.distributed import _classifier_worker

    assert list(inspect.signature(_classifier_worker).parameters) == ["device", "model", "clips", "labels", "kwargs"]
    assert list(inspect.signature(_gitdl_worker).parameters) == ["device", "frames", "kwargs"]
    assert list(inspect.signature(_avml_worker).parameters)[:2] == ["device", "both"]
    assert callable(_GatherRows.apply)


def test_summary_marks_parts_that_never_ran(tmp_path):
    rep = GPU_CHECK / "gpu_check_report.py"
    subprocess.run([sys.executable, str(rep), "mark", "--work", str(tmp_path), "env", "passed", "--seconds", "1",
                    "--limit", "5", "--rc", "0"], check=True)
    subprocess.run([sys.executable, str(rep), "mark", "--work", str(tmp_path), "dtw_bench", "skipped", "--reason",
                    "no GPU: test"], check=True)
    r = subprocess.run([sys.executable, str(rep), "summary", "--work", str(tmp_path), "--out", str(tmp_path / "s.json")],
                       capture_output=True, text=True)
    s = json.loads((tmp_path / "s.json").read_text())
    assert r.returncode == 1 and not s["ok"]  # the parts that never ran make it fail
    assert s["parts"]["env"]["status"] == "passed" and s["parts"]["dtw_bench"]["reason"] == "no GPU: test"
    assert s["parts"]["workflow_gpu"]["status"] == "not run"
