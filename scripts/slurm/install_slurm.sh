#!/usr/bin/env bash
# Installs Debian's SLURM (slurmctld, slurmd, client tools) and MUNGE with apt-get, only when a
# command is missing. Needs root. Used by start_cluster.sh; safe to run again (does nothing then).
set -euo pipefail
need=()
for cmd in slurmctld slurmd sbatch squeue sinfo scontrol; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
for cmd in munged mungekey munge; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "[slurm-install] slurm-wlm and munge already installed ($(dpkg-query -W -f='${Package} ${Version}' slurm-wlm 2>/dev/null || echo 'not from apt'))"
  exit 0
fi
echo "[slurm-install] missing: ${need[*]}; installing slurm-wlm and munge with apt-get"
if [ "$(id -u)" != 0 ]; then
  echo "[slurm-install] must be root to install packages" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's maintainer scripts try to start munge/slurm services; on a machine without systemd
# as PID 1 that fails harmlessly, and we start our own daemons anyway (start_cluster.sh).
timeout -s KILL 300 apt-get update -qq
timeout -s KILL 600 apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
echo "[slurm-install] installed: $(dpkg-query -W -f='${Package} ${Version}, ' slurm-wlm munge)"
