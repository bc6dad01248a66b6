"""scripts/compare_results.py: equal results with different timings agree; any other change is found."""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from compare_results import compare  # noqa: E402


def write_run(root: Path, weight: float = 1.0, seconds: float = 1.0, acc: float = 0.5):
    d = root / "results" / "ds" / "models" / "m"
    d.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.full((3,), weight)}, "metadata": {"seconds": seconds, "arch": "x"}}, d / "fe.pt")
    (d / "fe.history.tsv").write_text(f"epoch\tloss\tacc\tseconds\n1\t0.5\t{acc}\t{seconds}\n")
    (d / "metrics.json").write_text(json.dumps({"top1": acc, "wall_seconds": seconds}))
    np.savez(d / "dtw.npz", distances=np.eye(2) * weight, seconds=np.array(seconds))
    (root / "results" / "logs").mkdir()
    (root / "results" / "logs" / "x.log").write_text(str(seconds))


def test_timing_fields_do_not_count(tmp_path):
    write_run(tmp_path / "a", seconds=1.0)
    write_run(tmp_path / "b", seconds=2.5)
    assert compare(tmp_path / "a", tmp_path / "b") == []


def test_a_changed_weight_or_metric_is_found(tmp_path):
    write_run(tmp_path / "a")
    write_run(tmp_path / "b", weight=1.0 + 1e-7)
    found = compare(tmp_path / "a", tmp_path / "b")
    assert any("fe.pt" in p for p in found) and any("dtw.npz" in p for p in found)
    write_run(tmp_path / "c", acc=0.6)
    found = compare(tmp_path / "a", tmp_path / "c")
    assert any("history.tsv" in p for p in found) and any("metrics.json" in p for p in found)


def test_a_missing_file_is_found(tmp_path):
    write_run(tmp_path / "a")
    write_run(tmp_path / "b")
    (tmp_path / "b" / "results" / "ds" / "models" / "m" / "metrics.json").unlink()
    assert any("only in" in p for p in compare(tmp_path / "a", tmp_path / "b"))
