"""The tiny config end to end through Snakemake on a device, and the comparison of two such runs (run by
gpu_check/gpu_check.sh).

``run``: ``snakemake`` on config/test.yaml plus an overlay (``device: cuda`` and ``alignability.dtw_backend: cupy``,
so that mining fails rather than falls back when CuPy is unusable; or ``device: cpu`` and ``dtw_backend: cpu`` with
no GPU visible) in a fresh working directory, with the device probe (gpu_check/gpu_probe) on every job. It
checks that the run succeeded, that every job of a rule which requested a GPU (``gpu=1`` in Snakemake's job
log: the GPU-capable rules under ``device: cuda``) initialised CUDA, that ``mine_pairs`` ran the CuPy kernels,
and, for the CPU run, that no job touched CUDA; it writes the wall time and these facts as JSON.

``compare CPU GPU``: the two runs' ``results/`` folders, with ``--mode``

* ``device`` (a CPU run and a GPU run of the same config): the same files; the outputs that do not depend on
  the device (SynthDive videos and annotations, manifest, splits, frame shards) byte-identical; every table
  with the same header, row count and row keys (first column), every JSON file with the same keys; and every
  test top-1 (``eval/**/metrics.json``) within ``--videos-tolerance`` test videos (default 2: 25 points on the
  tiny config's 8 test videos; bf16 autocast, TF32 and CUDA's own random streams make the trainings differ at
  the level of single predictions), and their mean within half of that. Validation accuracies and the first
  epoch's training losses are reported, not gated;
* ``exact`` (two CPU runs: every table, JSON file, .npz and .pt equal, timings and versions aside; with
  ``--subset`` the first run may hold fewer files, e.g. a run of a few targets against a whole run).

    python gpu_check/gpu_workflow.py run --device cuda --workdir /tmp/wf_gpu --cores 8 --json gpu.json
    python gpu_check/gpu_workflow.py compare /tmp/wf_cpu/results /tmp/wf_gpu/results --json cmp.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "gpu_check" / "gpu_probe"
sys.path.insert(0, str(ROOT / "scripts" / "slurm"))
import compare_outputs as co  # noqa: E402  (scripts/slurm: the table/JSON/array comparison of two runs)

#: outputs that no device computes: they must be byte-identical between a CPU and a GPU run on one machine
DEVICE_INDEPENDENT = re.compile(r"^[^/]+/(raw/|manifest\.tsv$|classes\.tsv$|splits/|frames/)")
SKIP = ("logs/", "benchmarks/")


def overlay(device: str) -> dict:
    return {"device": device, "alignability": {"dtw_backend": "cupy" if device == "cuda" else "cpu"}}


def parse_jobs(log: str) -> list[dict]:
    """The jobs Snakemake started (its log's ``rule X:`` blocks): rule name and the gpu resource requested."""
    jobs = []
    for block in re.split(r"\n(?=\[[A-Z][a-z]{2} [A-Z][a-z]{2} )", log):
        m = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):", block, re.M)
        if not m:
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        gpu = re.search(r"\bgpu=(\d+)", res.group(1)) if res else None
        jobs.append({"rule": m.group(1), "gpu": int(gpu.group(1)) if gpu else 0})
    return jobs


def run(args) -> int:
    wd = args.workdir
    wd.mkdir(parents=True, exist_ok=True)
    ov = wd / "overlay.yaml"
    ov.write_text(json.dumps(overlay(args.device)) + "\n")  # JSON is YAML
    device_log = wd / "device_log.jsonl"
    device_log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "GPU_CHECK_DEVICE_LOG": str(device_log),
           "PYTHONPATH": os.pathsep.join(p for p in (str(PROBE), os.environ.get("PYTHONPATH", ""), str(ROOT / "src"))
                                         if p)}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # no job of the CPU run can use the GPU
    smk = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd)]
    opts = ["--cores", str(args.cores), "--scheduler", "greedy", "--configfile", str(ROOT / "config/test.yaml"), str(ov)]
    t0 = time.perf_counter()
    if args.prepared_data:
        # SynthDive, manifest and frames made elsewhere (a machine without ffmpeg): in place, marked up to date
        import tarfile

        with tarfile.open(args.prepared_data) as tar:
            names = tar.getnames()
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12
                tar.extractall(wd, filter="data")
            else:
                tar.extractall(wd)
        shards = sorted(n for n in names if re.fullmatch(r"results/[^/]+/frames/shard\d+\.npy", n))
        touch = smk + shards + ["--touch"] + opts
        print("$ " + " ".join(touch), flush=True)
        with open(wd / "snakemake_touch.log", "w") as out:
            if subprocess.run(touch, stdout=out, stderr=subprocess.STDOUT, env=env).returncode != 0:
                print(f"snakemake --touch failed: see {wd / 'snakemake_touch.log'}")
    cmd = smk + args.targets + opts
    print("$ " + " ".join(cmd), flush=True)
    with open(wd / "snakemake.log", "w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - t0
    log = (wd / "snakemake.log").read_text(errors="replace")
    jobs = parse_jobs(log)
    probes = [json.loads(line) for line in device_log.read_text().splitlines()] if device_log.exists() else []
    per_rule: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "gpu_requested": 0, "cuda_processes": 0,
                                                      "cupy_dtw_processes": 0, "probed": 0, "cuda_peak_mib": 0.0})
    for j in jobs:
        per_rule[j["rule"]]["jobs"] += 1
        per_rule[j["rule"]]["gpu_requested"] = max(per_rule[j["rule"]]["gpu_requested"], j["gpu"])
    for p in probes:
        r = per_rule[p["rule"]]
        r["probed"] += 1
        r["cuda_processes"] += bool(p["cuda_initialized"])
        r["cupy_dtw_processes"] += bool(p["cupy_dtw"])
        r["cuda_peak_mib"] = max(r["cuda_peak_mib"], p.get("cuda_peak_mib", 0.0))
    problems = []
    if rc != 0:
        tail = "\n".join(log.splitlines()[-30:])
        problems.append(f"snakemake exited with {rc}; the end of its log:\n{tail}")
    if args.device == "cuda":
        gpu_rules = sorted(r for r, v in per_rule.items() if v["gpu_requested"])
        if not gpu_rules:
            problems.append("no job requested a GPU (is device: cuda in effect?)")
        for r in gpu_rules:
            v = per_rule[r]
            if v["cuda_processes"] < v["jobs"]:
                problems.append(f"{r}: {v['cuda_processes']} of {v['jobs']} jobs initialised CUDA")
        if "mine_pairs" in per_rule and not per_rule["mine_pairs"]["cupy_dtw_processes"]:
            problems.append("mine_pairs did not run the CuPy DTW kernels")
    else:
        used = sorted(r for r, v in per_rule.items() if v["cuda_processes"])
        if used:
            problems.append(f"the CPU run initialised CUDA in {used}")
    if rc == 0 and len(probes) < sum(v["jobs"] for v in per_rule.values() if v["jobs"]) - 1:  # `all` runs no script
        problems.append(f"the device probe reported {len(probes)} processes for {len(jobs)} jobs")
    res = {"device": args.device, "targets": args.targets, "cores": args.cores, "wall_s": round(wall, 1),
           "returncode": rc, "jobs": len(jobs), "prepared_data": str(args.prepared_data) if args.prepared_data else None,
           "rules": dict(sorted(per_rule.items())), "problems": problems, "passed": not problems,
           "workdir": str(wd), "overlay": overlay(args.device)}
    if args.device == "cuda":
        res["rules_on_gpu"] = sorted(r for r, v in per_rule.items() if v["cuda_processes"])
        res["rules_with_cupy_dtw"] = sorted(r for r, v in per_rule.items() if v["cupy_dtw_processes"])
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{args.device} run: {len(jobs)} jobs in {wall:.1f} s, exit status {rc}")
    if args.device == "cuda":
        print(f"  rules whose jobs all used the GPU: {', '.join(res['rules_on_gpu'])}")
        print(f"  rules that ran the CuPy DTW kernels: {', '.join(res['rules_with_cupy_dtw']) or 'none'}")
    for p in problems:
        print(f"  PROBLEM: {p}")
    return 0 if not problems else 1


# ---------------------------------------------------------------------------------------------------------
# comparison


def _files(results: Path) -> dict[str, Path]:
    """Every file under ``results`` but logs and benchmarks, relative path -> path; folders that are symbolic links
    (outputs taken from Snakemake's cache) are followed."""
    out = {}
    for d, _, names in os.walk(results, followlinks=True):
        for n in names:
            p = Path(d) / n
            rel = p.relative_to(results).as_posix()
            if p.is_file() and not rel.startswith(SKIP) and not any(x.startswith(".snakemake") for x in rel.split("/")):
                out[rel] = p
    return out


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _rows(p: Path) -> list[list[str]]:
    return list(csv.reader(p.open(newline=""), delimiter="\t" if p.suffix == ".tsv" else ","))


def _keys(x, path=""):
    if isinstance(x, dict):
        out = set()
        for k, v in x.items():
            out |= {f"{path}/{k}"} | _keys(v, f"{path}/{k}")
        return out
    if isinstance(x, list):
        return {f"{path}[]#{len(x)}"} | set().union(*[_keys(v, f"{path}[]") for v in x]) if x else {f"{path}[]#0"}
    return set()


def _first_epoch_loss(p: Path) -> float | None:
    rows = _rows(p)
    if len(rows) < 2 or "loss" not in rows[0]:
        return None
    try:
        return float(rows[1][rows[0].index("loss")])
    except ValueError:
        return None


def compare_device(a: Path, b: Path, videos_tol: float) -> dict:
    fa, fb = _files(a), _files(b)
    problems: list[str] = []
    only = sorted(set(fa) ^ set(fb))
    problems += [f"{rel}: only in the {'CPU' if rel in fa else 'GPU'} run" for rel in only]
    common = sorted(set(fa) & set(fb))
    identical = [rel for rel in common if DEVICE_INDEPENDENT.match(rel)]
    for rel in identical:
        if _sha(fa[rel]) != _sha(fb[rel]):
            problems.append(f"{rel}: differs, though no device computes it")
    tables = jsons = 0
    for rel in common:
        if rel in identical:
            continue
        if rel.endswith((".tsv", ".csv")):
            ra, rb = _rows(fa[rel]), _rows(fb[rel])
            tables += 1
            if ra[:1] != rb[:1] or len(ra) != len(rb):
                problems.append(f"{rel}: header or row count differ ({ra[:1]}, {len(ra)} vs {rb[:1]}, {len(rb)} rows)")
            elif [r[:1] for r in ra] != [r[:1] for r in rb]:
                problems.append(f"{rel}: the row keys (first column) differ")
        elif rel.endswith(".json"):
            jsons += 1
            ka, kb = _keys(json.loads(fa[rel].read_text())), _keys(json.loads(fb[rel].read_text()))
            if ka != kb:
                problems.append(f"{rel}: other keys: {sorted(ka ^ kb)[:5]}")
    acc, val = [], []
    for rel in common:
        if not rel.split("/")[1:2] == ["eval"] or not rel.endswith(("/metrics.json", "/val_metrics.json")):
            continue
        ma, mb = json.loads(fa[rel].read_text()), json.loads(fb[rel].read_text())
        if "top1" not in ma or "top1" not in mb:
            continue
        entry = {"file": rel, "n": ma.get("n"), "top1_cpu": ma["top1"], "top1_gpu": mb["top1"],
                 "diff": round(mb["top1"] - ma["top1"], 3)}
        (val if rel.endswith("val_metrics.json") else acc).append(entry)
    tol_points = None
    if acc:
        n = min(e["n"] for e in acc if e["n"]) if any(e["n"] for e in acc) else None
        tol_points = 100.0 * videos_tol / n if n else None
        for e in acc:
            e_tol = 100.0 * videos_tol / e["n"] if e["n"] else tol_points
            if e_tol is not None and abs(e["diff"]) > e_tol + 1e-9:
                problems.append(f"{e['file']}: test top-1 {e['top1_cpu']} on the CPU, {e['top1_gpu']} on the GPU "
                                f"(tolerance {e_tol:g} points = {videos_tol:g} of {e['n']} test videos)")
        mean_abs = sum(abs(e["diff"]) for e in acc) / len(acc)
        if tol_points is not None and mean_abs > tol_points / 2 + 1e-9:
            problems.append(f"mean |test top-1 difference| {mean_abs:.1f} points over {len(acc)} evaluations > "
                            f"{tol_points / 2:g} (half the per-evaluation tolerance)")
    else:
        problems.append("no test metrics to compare")
    losses = []
    for rel in common:
        if rel.endswith("history.tsv"):
            la, lb = _first_epoch_loss(fa[rel]), _first_epoch_loss(fb[rel])
            if la is not None and lb is not None:
                losses.append({"file": rel, "epoch1_loss_cpu": la, "epoch1_loss_gpu": lb,
                               "rel_diff": round(abs(lb - la) / max(abs(la), 1e-12), 5)})
    return {"mode": "device", "files_compared": len(common), "byte_identical_device_independent": len(identical),
            "tables_checked": tables, "json_checked": jsons, "test_top1": acc, "val_top1_info": val,
            "videos_tolerance": videos_tol, "top1_tolerance_points": tol_points,
            "max_abs_top1_diff": max((abs(e["diff"]) for e in acc), default=None),
            "mean_abs_top1_diff": (sum(abs(e["diff"]) for e in acc) / len(acc)) if acc else None,
            "epoch1_loss_info": losses, "problems": problems, "passed": not problems}


def compare_exact(a: Path, b: Path, subset: bool) -> dict:
    fa, fb = _files(a), _files(b)
    rep = co.Report()
    missing = sorted(set(fa) - set(fb)) if subset else sorted(set(fa) ^ set(fb))
    rep.problems += [f"{rel}: only in {'the first' if rel in fa else 'the second'} run" for rel in missing]
    for rel in sorted(set(fa) & set(fb)):
        ext = Path(rel).suffix.lower()
        if ext in co.TABLE_EXT:
            co.compare_table(rel, fa[rel], fb[rel], co.TABLE_EXT[ext], 0.0, rep)
        elif ext == ".json":
            co.compare_json(rel, fa[rel], fb[rel], 0.0, rep)
        elif ext in (".npz", ".pt"):
            co.compare_arrays(rel, fa[rel], fb[rel], 0.0, rep)
    if not rep.matched:
        rep.problems.append("no table or JSON file compared")
    return {"mode": "exact", "subset": subset, "files_first": len(fa), "files_second": len(fb),
            "tables_json_equal": len(rep.matched), "arrays_equal": len(rep.matched_arrays),
            "ignored": {k: sorted(v) for k, v in rep.ignored.items()}, "problems": rep.problems,
            "passed": not rep.problems}


def compare(args) -> int:
    res = compare_exact(args.first, args.second, args.subset) if args.mode == "exact" else \
        compare_device(args.first, args.second, args.videos_tolerance)
    for name, path in (("first_run", args.first_json), ("second_run", args.second_json)):
        if path and path.exists():
            r = json.loads(path.read_text())
            res[f"{name}_wall_s"] = r.get("wall_s")
            res[f"{name}_device"] = r.get("device")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    if res["mode"] == "device":
        print(f"compared {res['files_compared']} files: {res['byte_identical_device_independent']} device-independent "
              f"ones byte-identical, {res['tables_checked']} tables and {res['json_checked']} JSON files by structure")
        for e in res["test_top1"]:
            print(f"  {e['file']}: test top-1 CPU {e['top1_cpu']} GPU {e['top1_gpu']}")
        print(f"  max |difference| {res['max_abs_top1_diff']} points, tolerance {res['top1_tolerance_points']} "
              f"({res['videos_tolerance']:g} test videos)")
    else:
        print(f"exact comparison: {res['tables_json_equal']} tables/JSON and {res['arrays_equal']} .npz/.pt equal")
    if "first_run_wall_s" in res or "second_run_wall_s" in res:
        print(f"  wall time: {res.get('first_run_device')} {res.get('first_run_wall_s')} s, "
              f"{res.get('second_run_device')} {res.get('second_run_wall_s')} s")
    for p in res["problems"][:40]:
        print(f"  PROBLEM: {p}")
    print("PASSED" if res["passed"] else "FAILED")
    return 0 if res["passed"] else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--device", choices=["cpu", "cuda"], required=True)
    r.add_argument("--workdir", type=Path, required=True)
    r.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    r.add_argument("--prepared-data", type=Path, default=None,
                   help="a tar of SynthDive, manifest and frames made elsewhere (gpu_check/gpu_prepare.py), for a machine "
                        "without ffmpeg: extracted into the working directory and marked up to date first")
    r.add_argument("--json", type=Path, default=None)
    r.add_argument("targets", nargs="*", default=["results/report.html"])
    c = sub.add_parser("compare")
    c.add_argument("first", type=Path, help="results/ of the CPU run (mode device) or of the first run (exact)")
    c.add_argument("second", type=Path, help="results/ of the GPU run (mode device) or of the reference run (exact)")
    c.add_argument("--mode", choices=["device", "exact"], default="device")
    c.add_argument("--subset", action="store_true", help="exact: the first run may hold fewer files")
    c.add_argument("--videos-tolerance", type=float, default=2.0)
    c.add_argument("--first-json", type=Path, default=None, help="the first run's JSON (wall time)")
    c.add_argument("--second-json", type=Path, default=None)
    c.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    raise SystemExit(run(args) if args.cmd == "run" else compare(args))


if __name__ == "__main__":
    main()
