#!/usr/bin/env bash
# CI part for the SLURM executor, called by .ci/run after the pytest suite (needs root: it installs
# slurm-wlm/munge with apt-get when missing and starts a one-node cluster on localhost).
# Runs scripts/slurm/test_slurm_workflow.sh all: the toy workflow and the real workflow on
# config/test.yaml through `--executor slurm` with a test copy of workflow/profiles/slurm, the same
# runs locally, outputs compared, plus the negative test (a rule failing under SLURM must fail the
# run and Snakemake must print its log path). Exits non-zero on any failure.
# The whole part is bounded: TERM after SLURM_CI_TIMEOUT seconds (the test stops its daemons on
# TERM), KILL 60 s later. Skipped with a message (exit 0) when SLURM_CI_SKIP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SLURM_CI_SKIP:-0}" = 1 ]; then
  echo "[slurm-ci] skipped (SLURM_CI_SKIP=1)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "[slurm-ci] needs root (apt-get, slurmd as root)" >&2
  exit 1
fi
rc=0
timeout -k 60 -s TERM "${SLURM_CI_TIMEOUT:-3000}" bash scripts/slurm/test_slurm_workflow.sh all || rc=$?
if [ "$rc" = 0 ]; then
  echo "[slurm-ci] SLURM executor tests passed"
else
  echo "[slurm-ci] SLURM executor tests FAILED (rc=$rc)" >&2
fi
exit "$rc"
