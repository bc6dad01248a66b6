#!/usr/bin/env bash
# Starts a real one-node SLURM cluster on localhost for tests:
#   munged (as user munge, key/socket/log under the scratch dir), slurmctld, slurmd -N localhost.
# Two partitions on the one node, "cpu" (default) and "gpu", matching the partition names in
# workflow/profiles/slurm/config.yaml, and one fake GPU (gres gpu:1 backed by /dev/null) so that
# `--gpus=1` submissions are accepted and placement of GPU rules can be checked.
# Writes /etc/slurm/slurm.conf and /etc/slurm/gres.conf (backing up existing ones); everything else
# lives in $SLURM_TEST_SCRATCH (default /tmp/finepseudo-slurm). Stop with stop_cluster.sh, which
# kills only the PIDs recorded here and restores /etc/slurm.
# Installs slurm-wlm and munge first when missing (install_slurm.sh). Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
t0=$(date +%s.%N)

[ "$(id -u)" = 0 ] || { echo "start_cluster.sh must run as root" >&2; exit 1; }
bash "$here/install_slurm.sh"

if [ -f "$CLUSTER_STATE" ]; then
  # shellcheck disable=SC1090
  source "$CLUSTER_STATE"
  for p in "${MUNGED_PID:-}" "${SLURMCTLD_PID:-}" "${SLURMD_PID:-}"; do
    if pid_alive "$p"; then
      echo "a test cluster started from $SLURM_TEST_SCRATCH is still running (pid $p); run stop_cluster.sh first" >&2
      exit 1
    fi
  done
  echo "stale $CLUSTER_STATE found (daemons gone); restoring /etc/slurm from it first" >&2
  bash "$here/stop_cluster.sh"
fi
for port in 6817 6818; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    echo "port $port is already in use: another slurmctld/slurmd runs here; not starting a second cluster" >&2
    exit 1
  fi
done

S=$SLURM_TEST_SCRATCH
# A failed start undoes itself: stop what did start and restore /etc/slurm.
started_ok=0
trap '[ "$started_ok" = 1 ] || { echo "start failed; cleaning up" >&2; bash "$here/stop_cluster.sh"; }' EXIT
rm -rf "$S"
mkdir -p "$S"/{state,spool,log,run,etc-backup}
chmod 755 "$S"
# Bookkeeping first, so that stop_cluster.sh can undo a half-finished start.
{
  echo "SLURM_ETC_EXISTED=$([ -d "$SLURM_ETC" ] && echo 1 || echo 0)"
} >"$CLUSTER_STATE"
mkdir -p "$SLURM_ETC"
for f in "${SLURM_ETC_FILES[@]}"; do
  if [ -e "$SLURM_ETC/$f" ]; then
    cp -a "$SLURM_ETC/$f" "$S/etc-backup/$f"
    echo "BACKUP_${f//./_}=1" >>"$CLUSTER_STATE"
    log "backed up existing $SLURM_ETC/$f to $S/etc-backup/$f"
  else
    echo "BACKUP_${f//./_}=0" >>"$CLUSTER_STATE"
  fi
done

# --- MUNGE: own key, socket, pid and log under the scratch dir, daemon runs as user munge.
M=$S/munge
mkdir -p "$M"/{run,log,lib}
chown -R munge:munge "$M"
chmod 700 "$M/lib" "$M/log"
chmod 755 "$M" "$M/run"   # munged needs o+x on every directory above its socket
runuser -u munge -- mungekey --create --keyfile="$M/munge.key" --force
chmod 600 "$M/munge.key"
MUNGE_SOCKET=$M/run/munge.socket.2
runuser -u munge -- munged --key-file="$M/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$M/run/munged.pid" --log-file="$M/log/munged.log" --seed-file="$M/lib/munged.seed"
for _ in $(seq 50); do [ -s "$M/run/munged.pid" ] && break; sleep 0.1; done
MUNGED_PID=$(cat "$M/run/munged.pid")
echo "MUNGED_PID=$MUNGED_PID" >>"$CLUSTER_STATE"
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null
log "munged up (pid $MUNGED_PID)"

# --- slurm.conf
ncpu=$(nproc)
mem_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo)
real_mem=$((mem_kb / 1024 * 85 / 100))
cat >"$SLURM_ETC/slurm.conf" <<CONF
# Written by scripts/slurm/start_cluster.sh for a one-node TEST cluster; removed/restored by
# stop_cluster.sh. Scratch: $S
ClusterName=finepseudo-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# No slurmdbd: sacct does not work, use the plugin's squeue status command. Finished jobs stay
# visible to squeue/scontrol for MinJobAge seconds (must be >= 3 x the plugin's initial wait).
MinJobAge=3600
JobCompType=jobcomp/filetxt
JobCompLoc=$S/log/jobcomp.log
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$ncpu RealMemory=$real_mem Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
CONF
cat >"$SLURM_ETC/gres.conf" <<CONF
# Written by scripts/slurm/start_cluster.sh: one fake GPU (/dev/null as its device file) for the test cluster.
NodeName=localhost Name=gpu File=/dev/null Count=1
CONF

# --- daemons (both fork; their PID files are the record of what we started)
slurmctld -c -i
for _ in $(seq 100); do [ -s "$S/run/slurmctld.pid" ] && break; sleep 0.1; done
SLURMCTLD_PID=$(cat "$S/run/slurmctld.pid")
echo "SLURMCTLD_PID=$SLURMCTLD_PID" >>"$CLUSTER_STATE"
log "slurmctld up (pid $SLURMCTLD_PID)"
slurmd -N localhost
for _ in $(seq 100); do [ -s "$S/run/slurmd.pid" ] && break; sleep 0.1; done
SLURMD_PID=$(cat "$S/run/slurmd.pid")
echo "SLURMD_PID=$SLURMD_PID" >>"$CLUSTER_STATE"
log "slurmd up (pid $SLURMD_PID)"

state=""
for _ in $(seq 120); do
  state=$(sinfo -h -N -n localhost -o '%T' 2>/dev/null | head -n1 || true)
  case "$state" in
    idle*|mixed*|allocated*) break ;;
    down*|drain*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
case "$state" in
  idle*|mixed*|allocated*) ;;
  *) echo "node did not become idle (state '$state'); see $S/log/slurmctld.log and slurmd.log" >&2
     tail -n 20 "$S/log/slurmctld.log" "$S/log/slurmd.log" >&2 || true
     exit 1 ;;
esac
started_ok=1
sinfo
log "cluster up after $(since "$t0") s"
