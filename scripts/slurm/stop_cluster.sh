#!/usr/bin/env bash
# Stops the daemons that start_cluster.sh started (by the PIDs it recorded, nothing else), then
# puts /etc/slurm back as it was: backed-up slurm.conf/gres.conf restored, files we created
# removed. Safe to call more than once and after a half-finished start.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
if [ ! -f "$CLUSTER_STATE" ]; then
  log "no $CLUSTER_STATE: nothing to stop"
  exit 0
fi
# shellcheck disable=SC1090
source "$CLUSTER_STATE"
stop_pid() {  # name pid
  local name=$1 pid=${2:-}
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do pid_alive "$pid" || { log "stopped $name (pid $pid)"; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  log "killed $name (pid $pid) after 10 s"
}
# Jobs still queued or running on this private test cluster (e.g. after a killed Snakemake) are
# cancelled first: their slurmstepd processes would outlive slurmd.
if pid_alive "${SLURMCTLD_PID:-}"; then
  mapfile -t jobs < <(timeout -s KILL 10 squeue -h -o %i 2>/dev/null || true)
  if [ ${#jobs[@]} -gt 0 ]; then
    log "cancelling ${#jobs[@]} job(s) left on the test cluster: ${jobs[*]}"
    timeout -s KILL 10 scancel "${jobs[@]}" 2>/dev/null || true
    for _ in $(seq 30); do
      [ -z "$(timeout -s KILL 5 squeue -h -t PENDING,RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
fi
stop_pid slurmd "${SLURMD_PID:-}"
stop_pid slurmctld "${SLURMCTLD_PID:-}"
stop_pid munged "${MUNGED_PID:-}"
for f in "${SLURM_ETC_FILES[@]}"; do
  var="BACKUP_${f//./_}"
  case "${!var:-unset}" in
    1) cp -a "$SLURM_TEST_SCRATCH/etc-backup/$f" "$SLURM_ETC/$f" && log "restored $SLURM_ETC/$f" ;;
    0) rm -f "$SLURM_ETC/$f" ;;
    *) ;;  # start never got that far: it did not touch this file
  esac
done
if [ "${SLURM_ETC_EXISTED:-1}" = 0 ]; then
  rmdir "$SLURM_ETC" 2>/dev/null || true
fi
rm -f "$CLUSTER_STATE"
log "cluster stopped; logs kept in $SLURM_TEST_SCRATCH/log"
