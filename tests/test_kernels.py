"""finepseudo.kernels: pinning the CPU kernels of torch and numpy (config key cpu_kernels), detecting a pin that
comes too late, the CPU facts, and that the workflow's jobs and report run and show the pinned kernels."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from finepseudo import kernels

ROOT = Path(__file__).resolve().parents[1]
FLAGS = set(kernels._cpuinfo().get("flags", "").split())
needs_avx2 = pytest.mark.skipif(not {"avx2", "fma"} <= FLAGS, reason="an x86-64 CPU with AVX2 and FMA")
needs_avx512 = pytest.mark.skipif("avx512f" not in FLAGS, reason="a CPU with AVX-512 (the native kernels differ)")

# every variable a library reads, unset so that a child process starts from the libraries' own choice
KNOBS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE",
         "OPENBLAS_L2_SIZE", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


@needs_avx2
def test_pin_sets_the_variables_and_native_sets_none():
    env = {"HOME": "/x"}
    got = kernels.pin_cpu_kernels("avx2", environ=env)
    assert got == kernels.PINNED_ENV["avx2"] and env == {"HOME": "/x", **got}
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["MKL_CBWR"] == "COMPATIBLE" and env["OPENBLAS_CORETYPE"] == "Haswell"
    assert "X86_V4" in env["NPY_DISABLE_CPU_FEATURES"].split()
    native = {"HOME": "/x"}
    assert kernels.pin_cpu_kernels("native", environ=native) == {} and native == {"HOME": "/x"}
    with pytest.raises(kernels.KernelPinError, match="cpu_kernels.*'avx512'"):
        kernels.pin_cpu_kernels("avx512", environ={})
    with pytest.raises(kernels.KernelPinError, match="NPY_ENABLE_CPU_FEATURES"):  # numpy refuses both at once
        kernels.pin_cpu_kernels("avx2", environ={"NPY_ENABLE_CPU_FEATURES": "X86_V3"})


@needs_avx2
def test_torch_and_numpy_imported_after_the_pin_run_the_avx2_kernels():
    code = ("import json\nfrom finepseudo.kernels import pin_cpu_kernels, cpu_facts\n{pin}\n"
            "import numpy, torch\nprint(json.dumps(cpu_facts()))")
    r = _python(code.format(pin="pin_cpu_kernels('avx2')"))
    assert r.returncode == 0, r.stderr
    pinned = json.loads(r.stdout.strip().splitlines()[-1])
    assert pinned["aten capability"] == "AVX2" and pinned["cpu_kernels"] == "avx2"
    assert "ONEDNN_MAX_CPU_ISA AVX2" in pinned["onednn"] and "MKL_CBWR COMPATIBLE" in pinned["mkl"]
    simd = pinned["numpy simd"].split(" (of ")[0].split()
    assert "X86_V4" not in simd and "AVX512_SPR" not in simd
    if "openblas" in pinned["numpy blas"].lower():
        assert pinned["numpy blas"].endswith("core Haswell")
    if "avx512f" in FLAGS:  # the same process without the pin runs other kernels: the pin is what changed them
        r = _python(code.format(pin=""))
        native = json.loads(r.stdout.strip().splitlines()[-1])
        assert native["aten capability"] == "AVX512" and native["cpu_kernels"] == "not pinned in this process"


@needs_avx2
@pytest.mark.parametrize("first", ["torch", "numpy"])
def test_a_pin_after_torch_or_numpy_is_imported_is_an_error_naming_the_key(first):
    r = _python(f"import {first}\nfrom finepseudo.kernels import pin_cpu_kernels\npin_cpu_kernels('avx2')")
    assert r.returncode != 0
    assert "KernelPinError" in r.stderr and "config key 'cpu_kernels'" in r.stderr and first in r.stderr
    # pinning again after the import, with the variables already in place, is not an error
    r = _python("from finepseudo.kernels import pin_cpu_kernels\npin_cpu_kernels('avx2')\nimport torch, numpy\n"
                "pin_cpu_kernels('avx2')\nprint(torch.backends.cpu.get_cpu_capability())")
    assert r.returncode == 0 and r.stdout.strip() == "AVX2", r.stderr


@needs_avx512
def test_variables_set_by_hand_after_the_import_are_detected_too():
    """A process that imported torch and ran an operation (ATen fixes its kernels at the first one: AVX-512
    here), then got the variables some other way: the pin does not pretend to hold."""
    code = ("import os, torch\nfrom finepseudo.kernels import PINNED_ENV, pin_cpu_kernels\ntorch.ones(8).exp()\n"
            "os.environ.update(PINNED_ENV['avx2'])\npin_cpu_kernels('avx2')")
    r = _python(code)
    assert r.returncode != 0 and "runs its AVX512 kernels" in r.stderr


def test_pin_job_takes_the_level_from_the_rule_settings_and_hands_back_the_rest(monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "pin_cpu_kernels", lambda level: calls.append(level))
    smk = SimpleNamespace(params=SimpleNamespace(settings={"cpu_kernels": "native", "device": "cpu"}),
                          config={"cpu_kernels": "avx2"})
    assert kernels.pin_job(smk) == {"device": "cpu"} and calls == ["native"]
    assert smk.params.settings == {"cpu_kernels": "native", "device": "cpu"}  # not modified
    # a rule without the key in its settings (its results do not depend on the kernels): the config's value
    assert kernels.pin_job(SimpleNamespace(params=SimpleNamespace(), config={"cpu_kernels": "native"})) == {}
    assert calls == ["native", "native"]


def test_cpu_facts_describe_this_process():
    import torch

    facts = kernels.cpu_facts()
    assert tuple(facts) == kernels.FACT_KEYS
    assert facts["aten capability"] == torch.backends.cpu.get_cpu_capability()
    assert facts["torch threads"] == str(torch.get_num_threads())
    if Path("/proc/cpuinfo").is_file():
        info = kernels._cpuinfo()
        assert facts["cpu model"] == info["model name"] and facts["cpu vendor"] == info["vendor_id"]
        assert ("avx2" in facts["cpu flags"].split()) == ("avx2" in FLAGS)
        assert ("avx512f" in facts["cpu flags"].split()) == ("avx512f" in FLAGS)
    assert facts["onednn"].startswith("v") or facts["onednn"] == "not built"


def test_the_report_shows_the_cpu_facts():
    from finepseudo.report.sections import section_software
    from finepseudo.runlog import environment

    env = environment()
    assert set(kernels.FACT_KEYS) <= set(env)  # what checkpoints and the report get
    html = section_software(env, {"cpu_kernels": "avx2"})
    assert "CPU and kernels" in html and "<b>avx2</b>" in html
    for key in kernels.FACT_KEYS:
        assert f"<td>{key}</td>" in html
    assert env["cpu model"] in html and env["aten capability"] in html
    assert "<td>torch</td>" in html  # the package table is still there, without the CPU rows
    assert html.count("<td>cpu model</td>") == 1


@needs_avx2
@pytest.mark.workflow
def test_the_tiny_runs_jobs_ran_the_pinned_kernels_and_the_report_says_so(tiny_run):
    """The whole-workflow run on config/test.yaml (cpu_kernels defaults to avx2): a trained model's checkpoint
    records the kernels of the job that trained it, and the report shows its own."""
    import torch

    ckpt = torch.load(next(tiny_run.glob("*/models/supervised/*/fe.pt")), map_location="cpu", weights_only=True)
    env = ckpt["metadata"]["env"]
    assert env["cpu_kernels"] == "avx2" and env["aten capability"] == "AVX2"
    assert "ONEDNN_MAX_CPU_ISA AVX2" in env["onednn"]
    html = (tiny_run / "report.html").read_text()
    assert "CPU and kernels" in html and "<td>aten capability</td>" in html
    assert "<td>cpu_kernels</td>\n      <td>avx2</td>" in html or "<td>cpu_kernels</td><td>avx2</td>" in html
