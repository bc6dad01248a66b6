#!/usr/bin/env bash
# End-to-end test of the Snakemake SLURM executor on a real one-node SLURM cluster (localhost).
#
#   scripts/slurm/test_slurm_workflow.sh [all|toy|workflow]      (default: all; needs root)
#
# Phases (each timed, each bounded by `timeout -s KILL`):
#   cluster_start   install slurm-wlm/munge if missing, start munged/slurmctld/slurmd (start_cluster.sh)
#   toy_*           scripts/slurm/toy: SLURM run through a test copy of workflow/profiles/slurm
#                   (train_fe asks for the cluster's fake GPU and must land on the "gpu" partition),
#                   the same run locally, outputs compared; then the NEGATIVE test: a rule that fails
#                   only inside a SLURM job must fail the run and Snakemake must name its log file.
#   workflow_*      the real workflow on config/test.yaml: `--executor slurm` in a scratch copy of
#                   the repository, the same target locally in a second copy with --cores equal to
#                   the test profile's cores (same threads per job); every TSV/CSV/JSON and every
#                   .npz/.pt (model weights included) compared, timing/version fields ignored
#                   (compare_outputs.py --arrays); every job's partition checked (check_placement.py).
# The daemons are stopped (stop_cluster.sh: by PID, /etc/slurm restored) on exit, whatever happens.
# Environment: VENV (default <repo>/.venv), SLURM_TEST_SCRATCH (default /tmp/finepseudo-slurm),
#   WORKFLOW_CONFIG (default config/test.yaml), WORKFLOW_TARGET (default results/report.html),
#   WORKFLOW_TIMEOUT (seconds per workflow run, default 1800), WORKFLOW_RTOL (default 0 = exact).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
here=$REPO/scripts/slurm
source "$here/common.sh"
MODE=${1:-all}
case "$MODE" in all|toy|workflow) ;; *) echo "usage: $0 [all|toy|workflow]" >&2; exit 2 ;; esac
VENV=${VENV:-$REPO/.venv}
export PATH="$VENV/bin:$PATH"   # jobs inherit it (sbatch --export=ALL): the same python everywhere
PY=$VENV/bin/python
SNAKEMAKE=$VENV/bin/snakemake
WORKFLOW_CONFIG=${WORKFLOW_CONFIG:-config/test.yaml}
WORKFLOW_TARGET=${WORKFLOW_TARGET:-results/report.html}
WORKFLOW_TIMEOUT=${WORKFLOW_TIMEOUT:-1800}
WORKFLOW_RTOL=${WORKFLOW_RTOL:-0}
CORES=$(nproc)
S=$SLURM_TEST_SCRATCH
RUNS=$S/runs
PROFILE_DIR=$S/profile-slurm-test

declare -a TIMINGS=()
failures=0
t_all=$(date +%s.%N)

CHILD=""   # process group of the Snakemake run in progress (setsid), ended on exit
summary() {
  local rc=$?
  set +e
  if [ -n "$CHILD" ] && kill -0 -- "-$CHILD" 2>/dev/null; then
    log "ending the Snakemake run in progress (process group $CHILD)"
    kill -TERM -- "-$CHILD" 2>/dev/null
    for _ in $(seq 20); do kill -0 -- "-$CHILD" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$CHILD" 2>/dev/null
  fi
  log "stopping the test cluster"
  bash "$here/stop_cluster.sh"
  echo "================ SLURM workflow test summary ================"
  for line in "${TIMINGS[@]}"; do echo "  $line"; done
  echo "  total                      $(since "$t_all") s"
  if [ "$rc" = 0 ] && [ "$failures" = 0 ]; then
    echo "  RESULT: PASS"
  else
    echo "  RESULT: FAIL (rc=$rc, failed checks=$failures); logs under $RUNS"
  fi
  exit $(( rc != 0 ? rc : (failures > 0 ? 1 : 0) ))
}
trap summary EXIT
trap 'log "interrupted"; exit 143' TERM INT

# timed NAME CMD... : run CMD, record and print its wall time; returns CMD's status.
timed() {
  local name=$1; shift
  local t0 rc=0
  t0=$(date +%s.%N)
  "$@" || rc=$?
  local dt
  dt=$(since "$t0")
  TIMINGS+=("$(printf '%-26s %7s s  (rc=%s)' "$name" "$dt" "$rc")")
  log "TIMING $name $dt s (rc=$rc)"
  return $rc
}
check() {  # check DESCRIPTION CMD... : a failed check is counted, the test goes on
  local what=$1; shift
  if "$@"; then log "CHECK OK: $what"; else log "CHECK FAILED: $what"; failures=$((failures + 1)); fi
}

# copy_tree SRC DEST: the files git would see (tracked + untracked, not ignored), no results/.
copy_tree() {
  local src=$1 dest=$2
  mkdir -p "$dest"
  if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z -co --exclude-standard . | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$dest" -xf -
  else
    cp -a "$src/." "$dest/"
  fi
  rm -rf "$dest/results" "$dest/.snakemake" "$dest/logs"
}

# run_smk NAME DIR TIMEOUT ARGS... : snakemake in DIR, output to $RUNS/NAME.log; tail on failure
# (unless EXPECT_FAIL=1). `--configfile` takes several values: pass it as --configfile=FILE, or
# the target that follows is read as a second config file.
run_smk() {
  local name=$1 dir=$2 limit=$3; shift 3
  local logf=$RUNS/$name.log rc=0
  log "[$name] (cd $dir && snakemake $*)  > $logf"
  # Own process group (setsid) so that an interrupted test can end the whole run; waited for in
  # the background so that TERM/INT reach the traps at once. PYTHONPATH: the copy's src/ comes
  # before the editable install's path, also when Snakemake unpickles a job's objects.
  (cd "$dir" && PYTHONPATH="$dir/src${PYTHONPATH:+:$PYTHONPATH}" exec setsid timeout -s KILL "$limit" "$SNAKEMAKE" "$@") \
    >"$logf" 2>&1 &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  grep -E "steps \([0-9]+%\) done|Nothing to be done" "$logf" | tail -n 1 | sed "s/^/[$name] /" || true
  if [ "$rc" != 0 ] && [ "${EXPECT_FAIL:-0}" != 1 ]; then
    [ "$rc" = 137 ] && log "[$name] KILLED after ${limit} s (timeout)"
    echo "----- last 60 lines of $logf -----"; tail -n 60 "$logf"; echo "-----"
  fi
  return $rc
}

# ---------------------------------------------------------------- cluster
timed cluster_start timeout -s KILL 600 bash "$here/start_cluster.sh"
mkdir -p "$RUNS"
timeout -s KILL 300 "$PY" "$here/make_test_profile.py" "$REPO/workflow/profiles/slurm/config.yaml" "$PROFILE_DIR" --cores "$CORES"
SLURM_ARGS=(--executor slurm --workflow-profile "$PROFILE_DIR")
LOCAL_ARGS=(--cores "$CORES" --workflow-profile none)

# ---------------------------------------------------------------- toy
if [ "$MODE" = all ] || [ "$MODE" = toy ]; then
  for d in toy_slurm toy_local toy_fail; do copy_tree "$here/toy" "$RUNS/$d"; done
  # gpu=1: train_fe asks for the fake GPU, so the profile must send it to the "gpu" partition.
  if timed toy_slurm_run run_smk toy_slurm "$RUNS/toy_slurm" 300 "${SLURM_ARGS[@]}" --config gpu=1; then
    check "toy: every job completed on the partition the profile gives its rule" \
      timeout -s KILL 300 "$PY" "$here/check_placement.py" "$RUNS/toy_slurm" "$PROFILE_DIR/config.yaml" \
      --expect-gpu-rules train_fe --out "$RUNS/toy_slurm.jobs.tsv"
    check "toy: train_fe saw the SLURM allocation (2 CPUs, a GPU)" \
      grep -q "partition=gpu threads=2 cpus=2 gpus=0" "$RUNS/toy_slurm/logs/train_fe.log"
  else
    failures=$((failures + 1))
  fi
  timed toy_local_run run_smk toy_local "$RUNS/toy_local" 300 "${LOCAL_ARGS[@]}" --config gpu=1 \
    || failures=$((failures + 1))
  check "toy: SLURM and local outputs equal" \
    timed toy_compare timeout -s KILL 300 "$PY" "$here/compare_outputs.py" "$RUNS/toy_slurm/results" "$RUNS/toy_local/results" --min-tables 2

  # Negative test: fail_under_slurm exits 3 inside a SLURM job; the run must fail and name the log.
  neg_rc=0
  EXPECT_FAIL=1 timed toy_negative_run run_smk toy_fail "$RUNS/toy_fail" 300 "${SLURM_ARGS[@]}" --retries 0 fail_target \
    || neg_rc=$?
  check "negative: the run failed (rc=$neg_rc, not a timeout)" test "$neg_rc" != 0 -a "$neg_rc" != 137
  # The main process's error block: "log: <rule log>, <SLURM log> (check log file(s) for error details)"
  neg_line=$(grep -E "log: logs/fail_under_slurm.log, .*logs/slurm/rule_fail_under_slurm/.*check log file" "$RUNS/toy_fail.log" | head -n 1 || true)
  check "negative: Snakemake's output names the rule's log file" test -n "$neg_line"
  log "negative test output line: ${neg_line:-<none>}"
  check "negative: the rule's log says why" grep -q "failing on purpose inside SLURM job" "$RUNS/toy_fail/logs/fail_under_slurm.log"
fi

# ---------------------------------------------------------------- real workflow
if [ "$MODE" = all ] || [ "$MODE" = workflow ]; then
  if [ ! -f "$REPO/Snakefile" ] || [ ! -f "$REPO/$WORKFLOW_CONFIG" ]; then
    log "workflow not found ($REPO/Snakefile, $REPO/$WORKFLOW_CONFIG)"
    failures=$((failures + 1))
  else
    copy_tree "$REPO" "$RUNS/wf_slurm"
    copy_tree "$REPO" "$RUNS/wf_local"
    slurm_ok=0
    if timed workflow_slurm_run run_smk wf_slurm "$RUNS/wf_slurm" "$WORKFLOW_TIMEOUT" \
        "$WORKFLOW_TARGET" "${SLURM_ARGS[@]}" --configfile="$WORKFLOW_CONFIG"; then
      slurm_ok=1
      check "workflow: every job completed on the partition the profile gives its rule" \
        timeout -s KILL 300 "$PY" "$here/check_placement.py" "$RUNS/wf_slurm" "$PROFILE_DIR/config.yaml" \
        --out "$RUNS/wf_slurm.jobs.tsv"
    else
      failures=$((failures + 1))
    fi
    local_ok=0
    if timed workflow_local_run run_smk wf_local "$RUNS/wf_local" "$WORKFLOW_TIMEOUT" \
        "$WORKFLOW_TARGET" "${LOCAL_ARGS[@]}" --configfile="$WORKFLOW_CONFIG"; then
      local_ok=1
    else
      failures=$((failures + 1))
    fi
    if [ $slurm_ok = 1 ] && [ $local_ok = 1 ]; then
      check "workflow: SLURM and local tables/JSON and .npz/.pt equal" \
        timed workflow_compare timeout -s KILL 300 "$PY" "$here/compare_outputs.py" "$RUNS/wf_slurm/results" "$RUNS/wf_local/results" \
        --rtol "$WORKFLOW_RTOL" --min-tables 5 --arrays
    fi
  fi
fi
