# Shared settings for the one-node test cluster scripts (sourced, not run).
# SLURM_TEST_SCRATCH: where state, spool, logs, pid files and the MUNGE key live. Only
# /etc/slurm/slurm.conf and /etc/slurm/gres.conf are written outside it (the jobstep plugin drops
# SLURM_CONF from the job environment, so the conf must sit at the compiled-in path); existing
# copies are backed up into the scratch dir and put back by stop_cluster.sh.
SLURM_TEST_SCRATCH=${SLURM_TEST_SCRATCH:-/tmp/finepseudo-slurm}
SLURM_ETC=/etc/slurm
CLUSTER_STATE="$SLURM_TEST_SCRATCH/cluster.state"   # PIDs and backup bookkeeping, read by stop
# Files under /etc/slurm that start_cluster.sh writes (and stop_cluster.sh restores).
SLURM_ETC_FILES=(slurm.conf gres.conf)

log() { printf '[slurm %(%H:%M:%S)T] %s\n' -1 "$*"; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# elapsed seconds since a `date +%s.%N` stamp, one decimal
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
