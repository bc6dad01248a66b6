#!/usr/bin/env bash
# Installs everything the workflow and its tests need on a fresh Debian/Ubuntu machine:
# ffmpeg (apt, when missing and we are root) and a Python virtual environment in .venv
# with the pinned packages from pyproject.toml. Safe to re-run: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing ffmpeg with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
  else
    echo "[setup] ffmpeg/ffprobe not found: install ffmpeg (e.g. 'sudo apt-get install ffmpeg')" >&2
    exit 1
  fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.finepseudo-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] installing pinned Python packages (torch takes about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]" --config-settings editable_mode=compat
  touch "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch,snakemake;print("torch",torch.__version__,"snakemake",snakemake.__version__)')"
