#!/usr/bin/env python3
"""List the SLURM jobs that a Snakemake run submitted and check where the profile placed them.

Reads `scontrol show job -o` (the test cluster keeps finished jobs for MinJobAge=3600 s), keeps
the jobs whose WorkDir is the run directory, maps each to its rule through the plugin's
`--comment rule_<rule>_wildcards_<...>`, writes them as a TSV, and checks:
  - every job COMPLETED with exit code 0:0 (unless --allow-failed),
  - each rule's partition is the one the profile gives it (set-resources, else default-resources),
  - GPU requests (TresPerJob gres:gpu) only where --expect-gpu-rules says so.
Exit status 0 when all checks pass.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path

import yaml

FIELD = re.compile(r"(\S+?)=(\S*)")


def jobs_in(workdir: Path) -> list[dict]:
    out = subprocess.run(["scontrol", "show", "job", "-o"], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        if not line.strip() or line.startswith("No jobs"):
            continue
        f = dict(FIELD.findall(line))
        if Path(f.get("WorkDir", "")).resolve() != workdir.resolve():
            continue
        comment = f.get("Comment", "")
        rule = comment[len("rule_") :].split("_wildcards_", 1)[0] if comment.startswith("rule_") else ""
        rows.append(
            {
                "job_id": f.get("JobId", ""),
                "rule": rule,
                "comment": comment,
                "partition": f.get("Partition", ""),
                "cpus": f.get("NumCPUs", ""),
                "gres": f.get("TresPerJob", ""),
                "mem": f.get("MinMemoryNode", ""),
                "time_limit": f.get("TimeLimit", ""),
                "state": f.get("JobState", ""),
                "exit_code": f.get("ExitCode", ""),
            }
        )
    return sorted(rows, key=lambda r: int(r["job_id"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("profile", type=Path, help="the profile config.yaml the run used")
    ap.add_argument("--out", type=Path, help="write the job table here (TSV)")
    ap.add_argument("--expect-gpu-rules", default="", help="comma-separated rules that must request a GPU")
    ap.add_argument("--allow-failed", action="store_true")
    args = ap.parse_args(argv)
    prof = yaml.safe_load(args.profile.read_text())
    default_part = (prof.get("default-resources") or {}).get("slurm_partition")
    set_res = prof.get("set-resources") or {}
    gpu_rules = {r for r in args.expect_gpu_rules.split(",") if r}
    rows = jobs_in(args.workdir)
    problems = []
    if not rows:
        problems.append(f"no SLURM jobs found with WorkDir={args.workdir}")
    for r in rows:
        want = (set_res.get(r["rule"]) or {}).get("slurm_partition", default_part)
        r["expected_partition"] = want
        if want and r["partition"] != want:
            problems.append(
                f"job {r['job_id']} ({r['rule']}): partition {r['partition']}, profile says {want}"
            )
        if not args.allow_failed and (r["state"] != "COMPLETED" or r["exit_code"] != "0:0"):
            problems.append(f"job {r['job_id']} ({r['rule']}): {r['state']} exit {r['exit_code']}")
        has_gpu = "gpu" in r["gres"]
        if has_gpu != (r["rule"] in gpu_rules):
            problems.append(
                f"job {r['job_id']} ({r['rule']}): gres {r['gres'] or 'none'}, GPU expected: {r['rule'] in gpu_rules}"
            )
    cols = [
        "job_id",
        "rule",
        "partition",
        "expected_partition",
        "cpus",
        "gres",
        "mem",
        "time_limit",
        "state",
        "exit_code",
        "comment",
    ]
    if args.out:
        with args.out.open("w", newline="") as fh:
            w = csv.DictWriter(fh, cols, delimiter="\t", extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    for r in rows:
        print("[jobs] " + "  ".join(f"{c}={r.get(c, '')}" for c in cols[:-1]))
    per_rule = {}
    for r in rows:
        per_rule.setdefault(r["rule"], set()).add(r["partition"])
    print(
        "[jobs] rules -> partitions: "
        + ", ".join(f"{k}:{'/'.join(sorted(v))}" for k, v in sorted(per_rule.items()))
    )
    for p in problems:
        print(f"[jobs] PROBLEM {p}")
    print(f"[jobs] {'OK' if not problems else 'FAILED'}: {len(rows)} jobs, {len(problems)} problems")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
