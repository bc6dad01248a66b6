"""scripts/slurm/compare_outputs.py: equal results with different timings agree; any other change is found."""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts/slurm"))
import compare_outputs  # noqa: E402


def write_run(root: Path, weight: float = 1.0, seconds: float = 1.0, acc: float = 0.5, code: str = "aa") -> Path:
    d = root / "results" / "ds" / "models" / "m"
    d.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.full((3,), weight)}, "metadata": {"seconds": seconds, "arch": "x"}}, d / "fe.pt")
    (d / "fe.history.tsv").write_text(f"epoch\tloss\tacc\tseconds\n1\t0.5\t{acc}\t{seconds}\n")
    (d / "metrics.json").write_text(json.dumps({"top1": acc, "wall_seconds": seconds,
                                                "provenance": {"code": {"train_fe": code}}}))
    np.savez(d / "dtw.npz", distances=np.eye(2) * weight, seconds=np.array(seconds))
    (root / "results" / "logs").mkdir()
    (root / "results" / "logs" / "x.log").write_text(str(seconds))
    return root / "results"


def compare(a: Path, b: Path, *extra: str) -> tuple[int, str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = compare_outputs.main([str(a), str(b), "--arrays", *extra])
    return rc, out.getvalue()


def test_timing_fields_do_not_count(tmp_path):
    rc, out = compare(write_run(tmp_path / "a", seconds=1.0), write_run(tmp_path / "b", seconds=2.5))
    assert rc == 0, out


def test_a_changed_weight_or_metric_is_found(tmp_path):
    a = write_run(tmp_path / "a")
    rc, out = compare(a, write_run(tmp_path / "b", weight=1.0 + 1e-7))
    assert rc == 1 and "MISMATCH ds/models/m/fe.pt" in out and "MISMATCH ds/models/m/dtw.npz" in out
    rc, out = compare(a, write_run(tmp_path / "c", acc=0.6))
    assert rc == 1 and "MISMATCH ds/models/m/fe.history.tsv" in out and "MISMATCH ds/models/m/metrics.json" in out


def test_a_missing_file_is_found(tmp_path):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    (b / "ds" / "models" / "m" / "metrics.json").unlink()
    rc, out = compare(a, b)
    assert rc == 1 and "only in first run" in out


def test_code_digests_count_unless_ignored(tmp_path):
    a, b = write_run(tmp_path / "a", code="aa"), write_run(tmp_path / "b", code="bb")
    assert compare(a, b)[0] == 1
    assert compare(a, b, "--ignore", "code")[0] == 0
