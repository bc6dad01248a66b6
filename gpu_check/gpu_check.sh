#!/usr/bin/env bash
# The whole GPU check in one go, for a lent GPU machine without network (one H100 or H200, 16 cores; at most
# 8 minutes), and the same script on a CPU machine, where the GPU parts are skipped with a "no GPU" line and the
# rest runs on the CPU (CI runs it so: tests/test_gpu_check.py).
#
#   bash gpu_check/gpu_check.sh --prepare   # here, with network: wheels and the tiny config's data into .whl/
#   bash gpu_check/gpu_check.sh             # anywhere: results under $OUT (default gpu_check/out)
#
# The device tool: command "bash gpu_check/gpu_check.sh", carry [".whl"], timeout_s 540.
#
# Nothing is installed from the network: when the interpreter lacks Snakemake, the wheels in .whl/ (made by
# --prepare: Snakemake's closure and the workflow's packages for CPython 3.12 manylinux x86_64, see
# gpu_check/gpu_prepare.py) are installed with pip --no-index into $GPU_CHECK_SITE (/tmp/gpu_check_site), and
# torchvision only when the image has none. Without an ffmpeg binary, both workflow runs start from the tiny
# config's SynthDive, manifest and frames made by --prepare (.whl/tiny_data.tar.gz; the workflow never calls ffprobe).
#
# Parts, each under `timeout` with its own limit (GPU_CHECK_LIMIT_<PART> overrides; on a GPU machine every limit is
# also cut to what is left of GPU_CHECK_BUDGET_S, 480 s, so one slow part cannot eat the others):
#   env                versions, card, driver, ffmpeg, where each package comes from
#   dtw_tests          tests/test_dtw.py + tests/test_dtw_gpu.py (the GPU tests skip without a GPU)
#   workflow_cpu       config/test.yaml through Snakemake, device: cpu (GPU machine: on half the cores, at the same
#                      time as workflow_gpu on the other half, so that the wall times compare)
#   workflow_gpu       GPU: the same with device: cuda: every GPU-capable rule on the GPU, CuPy mining, the report
#   workflow_compare   GPU: the two runs (same files and tables, device-independent outputs identical, test top-1
#                      within 2 test videos, wall times); CPU: the CPU run vs $GPU_CHECK_REFERENCE, exactly
#   ddp_nccl           GPU: DDP with nccl and SyncBatchNorm over the GPUs present | ddp_gloo: its CPU smoke
#   resume_gpu         GPU: a training killed mid-run and rerun gives the same weights | resume_cpu: on the CPU
#   fe_throughput      GPU: R(2+1)D-18 clips/s in bf16, channels-last, store+loader vs synthetic input, compile
#                      off/on, share of the peak | fe_throughput_cpu: its CPU smoke
#   dtw_bench          GPU: benchmarks/gpu_bench.py --quick
#   preset_budget      the presets' GPU hours at the measured clips/s (or the assumption without one)
# Under $OUT: summary.json (every part: passed, failed, timeout or skipped, with why and its figures),
# console.log, logs.tar.gz (each part's log, the runs' Snakemake logs, tables and reports). Exit status 0 when
# no part failed or timed out.
#
# Environment: PY (interpreter; default .venv/bin/python, else python3), OUT, GPU_CHECK_WORK (scratch folder),
# GPU_CHECK_FORCE_CPU=1 (act as if there were no GPU), GPU_CHECK_WF_TARGETS (the CPU run's targets without a GPU,
# default results/report.html), GPU_CHECK_REFERENCE (results/ of a whole CPU run of config/test.yaml to compare the
# CPU run with, exactly, when there is no GPU), GPU_CHECK_DTW_K (a pytest -k expression for dtw_tests without a GPU),
# GPU_CHECK_ONLY (space-separated part names: run only those, e.g. to rerun one part in what is left of a GPU loan;
# workflow_compare needs both workflow runs).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi
fi
if [ "${1:-}" = --prepare ]; then
  exec "$PY" gpu_check/gpu_prepare.py "${@:2}"
fi
OUT=${OUT:-gpu_check/out}
export BENCH_RECORD=0 # the benchmarks it runs report under $OUT, not in benchmarks/results/
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$WORK/logs" "$WORK/results" "$WORK/status"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T_START=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLCONFIGDIR="$WORK/mplconfig"
REPORT=("$PY" "$ROOT/gpu_check/gpu_check_report.py")
WF=("$PY" "$ROOT/gpu_check/gpu_workflow.py")

# limit NAME GPU_DEFAULT CPU_DEFAULT: the part's limit in seconds, cut to what is left of the budget
limit() {
  local var="GPU_CHECK_LIMIT_$(echo "$1" | tr '[:lower:]' '[:upper:]')" lim
  if [ $GPU = 1 ]; then lim=${!var:-$2}; else lim=${!var:-$3}; fi
  if [ "$BUDGET" -gt 0 ]; then
    local left=$((BUDGET - ($(date +%s) - T_START) - 20)) # 20 s for the summary and the archive
    [ "$left" -lt "$lim" ] && lim=$left
  fi
  echo "$lim"
}

# part NAME LIMIT DEVICE CMD...: run CMD under timeout, its output in logs/NAME.log, its status for the summary
part() {
  local name=$1 lim=$2 dev=$3 st rc t0 ms secs
  shift 3
  if [ -n "${GPU_CHECK_ONLY:-}" ] && [[ " $GPU_CHECK_ONLY " != *" $name "* ]]; then
    skip "$name" "not selected (GPU_CHECK_ONLY=$GPU_CHECK_ONLY)"
    return
  fi
  if [ "$lim" -lt 10 ]; then
    "${REPORT[@]}" mark --work "$WORK" "$name" skipped --reason "no time left in the ${BUDGET} s budget" --device "$dev"
    echo "[$name] skipped: no time left in the ${BUDGET} s budget"
    return
  fi
  echo "[$name] started (limit ${lim} s, $dev)"
  t0=$(date +%s%N)
  timeout -k 15 "$lim" "$@" >"$WORK/logs/$name.log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  secs="$((ms / 1000)).$(printf %03d $((ms % 1000)))" # milliseconds: a fast part must not read 0.0
  case $rc in
  0) st=passed ;;
  124 | 137) st=timeout ;;
  *) st=failed ;;
  esac
  local why=()
  [ $st = timeout ] && why=(--reason "over its ${lim} s limit")
  "${REPORT[@]}" mark --work "$WORK" "$name" "$st" --rc "$rc" --seconds "$secs" --limit "$lim" --device "$dev" "${why[@]}"
  echo "[$name] $st in $secs s (exit status $rc); the end of logs/$name.log:"
  tail -n 6 "$WORK/logs/$name.log" | sed 's/^/    /'
}

# skip NAME REASON
skip() {
  "${REPORT[@]}" mark --work "$WORK" "$1" skipped --reason "$2"
  echo "[$1] skipped: $2"
}

main() {
  echo "[gpu_check] $STARTED, work folder $WORK, results in $OUT"

  # --- packages: the carried wheels when the interpreter has no Snakemake -------------------------------------
  SITE=${GPU_CHECK_SITE:-/tmp/gpu_check_site}
  if ! "$PY" -c "import snakemake" >/dev/null 2>&1; then
    if ls .whl/*.whl >/dev/null 2>&1; then
      echo "[gpu_check] installing the carried wheels (.whl/) into $SITE"
      timeout 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        .whl/*.whl >"$WORK/logs/pip.log" 2>&1 || echo "[gpu_check] pip install failed: see logs/pip.log"
      export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" GPU_CHECK_SITE="$SITE"
      if ! "$PY" -c "import torchvision" >/dev/null 2>&1 && ls .whl/ifmissing/torchvision-*.whl >/dev/null 2>&1; then
        echo "[gpu_check] the image has no usable torchvision: installing the carried one"
        timeout 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
          .whl/ifmissing/torchvision-*.whl >>"$WORK/logs/pip.log" 2>&1 || echo "[gpu_check] torchvision install failed"
      fi
    else
      echo "[gpu_check] $PY has no Snakemake and .whl/ holds no wheels: run 'bash gpu_check/gpu_check.sh --prepare'"
    fi
  fi
  export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

  # --- GPU or not -----------------------------------------------------------------------------------------------
  GPU=0
  if [ "${GPU_CHECK_FORCE_CPU:-0}" = 1 ]; then
    GPU_LINE="no GPU: GPU_CHECK_FORCE_CPU=1"
  elif GPU_LINE=$("$PY" -c "import torch; ok = torch.cuda.is_available(); print(f'GPU: {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}' if ok else 'no GPU: torch.cuda.is_available() is False')" 2>&1); then
    case $GPU_LINE in GPU:*) GPU=1 ;; esac
  else
    GPU_LINE="no GPU: torch does not import ($(echo "$GPU_LINE" | tail -n 1))"
  fi
  GPU_LINE=$(echo "$GPU_LINE" | tail -n 1)
  echo "[gpu_check] $GPU_LINE"
  if [ $GPU = 1 ]; then BUDGET=${GPU_CHECK_BUDGET_S:-480}; else BUDGET=${GPU_CHECK_BUDGET_S:-0}; fi

  # --- the parts ------------------------------------------------------------------------------------------------
  part env "$(limit env 30 300)" cpu "${REPORT[@]}" env --json "$WORK/results/env.json"

  DATA_ARGS=()
  if ! command -v ffmpeg >/dev/null 2>&1; then
    if [ -f .whl/tiny_data.tar.gz ]; then
      DATA_ARGS=(--prepared-data "$ROOT/.whl/tiny_data.tar.gz")
      echo "[gpu_check] no ffmpeg here: both workflow runs start from the carried SynthDive and frames (.whl/tiny_data.tar.gz)"
    else
      echo "[gpu_check] no ffmpeg here and no .whl/tiny_data.tar.gz: SynthDive cannot be made (run --prepare)"
    fi
  fi
  read -r -a TARGETS <<<"${GPU_CHECK_WF_TARGETS:-results/report.html}"

  if [ $GPU = 1 ]; then
    # phase 1: the CPU and the GPU run of the tiny config at the same time, each on half of the cores
    read -r HALF_A HALF_B N_HALF < <("$PY" -c "import os; c = sorted(os.sched_getaffinity(0)); h = max(1, len(c) // 2); print(','.join(map(str, c[:h])), ','.join(map(str, c[h:] or c[:h])), h)")
    PIN_A=() PIN_B=()
    if command -v taskset >/dev/null 2>&1; then PIN_A=(taskset -c "$HALF_A") PIN_B=(taskset -c "$HALF_B"); fi
    part workflow_gpu "$(limit workflow_gpu 150 0)" cuda "${PIN_A[@]}" "${WF[@]}" run --device cuda --workdir "$WORK/wf_gpu" \
      --cores "$N_HALF" --json "$WORK/results/workflow_gpu.json" "${DATA_ARGS[@]}" results/report.html &
    part workflow_cpu "$(limit workflow_cpu 150 0)" cpu "${PIN_B[@]}" "${WF[@]}" run --device cpu --workdir "$WORK/wf_cpu" \
      --cores "$N_HALF" --json "$WORK/results/workflow_cpu.json" "${DATA_ARGS[@]}" results/report.html &
    wait
    # phase 2: correctness parts together (the GPU is shared; nothing here is timed)
    part workflow_compare "$(limit workflow_compare 40 0)" cpu "${WF[@]}" compare "$WORK/wf_cpu/results" "$WORK/wf_gpu/results" \
      --first-json "$WORK/results/workflow_cpu.json" --second-json "$WORK/results/workflow_gpu.json" \
      --json "$WORK/results/workflow_compare.json" &
    part dtw_tests "$(limit dtw_tests 100 0)" cuda "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_dtw.py \
      tests/test_dtw_gpu.py &
    part ddp_nccl "$(limit ddp_nccl 100 0)" cuda "$PY" gpu_check/gpu_ddp_check.py --device cuda \
      --json "$WORK/results/ddp_nccl.json" &
    part resume_gpu "$(limit resume_gpu 100 0)" cuda "$PY" gpu_check/resume_check.py --device cuda \
      --json "$WORK/results/resume_gpu.json" &
    wait
    skip ddp_gloo "a GPU is present: ddp_nccl runs instead"
    skip resume_cpu "a GPU is present: resume_gpu runs instead"
    skip fe_throughput_cpu "a GPU is present: fe_throughput runs instead"
    # phases 3 and 4: the timed parts, alone on the machine (f_E's throughput first: it feeds the presets' budgets;
    # it writes its figures after every variant, so a cut-off torch.compile leaves the others)
    W=$(($(nproc) > 6 ? $(nproc) - 4 : 2))
    part fe_throughput "$(limit fe_throughput 140 0)" cuda "$PY" benchmarks/fe_throughput.py --device cuda \
      --workers "$W" --compile both --json "$WORK/results/fe_throughput.json"
    part dtw_bench "$(limit dtw_bench 60 0)" cuda "$PY" benchmarks/gpu_bench.py --quick --csv "$WORK/logs/gpu_bench.csv"
  else
    NOGPU="$GPU_LINE"
    DTW_K=()
    [ -n "${GPU_CHECK_DTW_K:-}" ] && DTW_K=(-k "$GPU_CHECK_DTW_K")
    part dtw_tests "$(limit dtw_tests 0 900)" cpu "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_dtw.py \
      tests/test_dtw_gpu.py "${DTW_K[@]}"
    part workflow_cpu "$(limit workflow_cpu 0 1500)" cpu "${WF[@]}" run --device cpu --workdir "$WORK/wf_cpu" \
      --json "$WORK/results/workflow_cpu.json" "${DATA_ARGS[@]}" "${TARGETS[@]}"
    skip workflow_gpu "$NOGPU"
    if [ -n "${GPU_CHECK_REFERENCE:-}" ]; then
      part workflow_compare "$(limit workflow_compare 0 300)" cpu "${WF[@]}" compare "$WORK/wf_cpu/results" \
        "$GPU_CHECK_REFERENCE" --mode exact --subset --first-json "$WORK/results/workflow_cpu.json" \
        --json "$WORK/results/workflow_compare.json"
    else
      skip workflow_compare "$NOGPU (and no GPU_CHECK_REFERENCE run to compare the CPU run with)"
    fi
    skip ddp_nccl "$NOGPU"
    part ddp_gloo "$(limit ddp_gloo 0 600)" cpu "$PY" gpu_check/gpu_ddp_check.py --device cpu \
      --json "$WORK/results/ddp_gloo.json"
    skip resume_gpu "$NOGPU"
    part resume_cpu "$(limit resume_cpu 0 600)" cpu "$PY" gpu_check/resume_check.py --device cpu \
      --json "$WORK/results/resume_cpu.json"
    skip dtw_bench "$NOGPU"
    skip fe_throughput "$NOGPU"
    part fe_throughput_cpu "$(limit fe_throughput_cpu 0 600)" cpu "$PY" benchmarks/fe_throughput.py --device cpu \
      --arch r2plus1d_tiny --size 32 --batch 2 --steps 2 --warmup 1 --workers 1 --json "$WORK/results/fe_throughput_cpu.json"
  fi

  # the presets' GPU hours, at the measured rate when there is one
  RATE=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1])).get('workflow_clips_per_s') or '')" \
    "$WORK/results/fe_throughput.json" 2>/dev/null)
  part preset_budget "$(limit preset_budget 20 120)" cpu "$PY" scripts/preset_budget.py \
    config/presets/diving48.yaml config/presets/finegym99.yaml config/presets/finegym288.yaml \
    config/presets/finediving.yaml ${RATE:+--clips-per-s "$RATE"} --json "$WORK/results/preset_budget.json"

  # --- summary and archive -----------------------------------------------------------------------------------------
  WALL=$(($(date +%s) - T_START))
  "${REPORT[@]}" summary --work "$WORK" --out "$OUT/summary.json" --gpu "$GPU" --gpu-line "$GPU_LINE" --started "$STARTED" \
    --wall "$WALL" --budget "$BUDGET"
  RC=$?
  cp "$OUT/summary.json" "$WORK/results/summary.json"
  tar -czf "$OUT/logs.tar.gz" -C "$WORK" --exclude='*.npy' --exclude='*.npz' --exclude='*.pt' --exclude='*.mp4' \
    --exclude='.snakemake' --exclude='mplconfig' --exclude='status' \
    logs results $(cd "$WORK" && ls -d wf_cpu wf_gpu 2>/dev/null) 2>/dev/null
  echo "[gpu_check] done in ${WALL} s: $OUT/summary.json, $OUT/console.log, $OUT/logs.tar.gz"
  return $RC
}

main 2>&1 | tee "$OUT/console.log"
exit "${PIPESTATUS[0]}"
