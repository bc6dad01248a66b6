import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


@pytest.fixture()
def one_thread():
    """Tiny tensors: one torch thread is faster and immune to other processes on a shared CPU. Modules of
    small model tests use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One whole-workflow run on config/test.yaml, shared by every test module that needs one (a minute or
    two on 2 cores); returns its ``results`` folder. Tests that change files work on a copy."""
    from wfutil import snakemake

    wd = tmp_path_factory.mktemp("tiny")
    snakemake(wd, "results/report.html")
    return wd / "results"
