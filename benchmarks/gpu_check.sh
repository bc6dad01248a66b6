#!/usr/bin/env bash
# One-shot GPU check for finepseudo.align.dtw, meant for the lent GPU machine (no network there):
# the DTW tests (CPU + GPU) and the GPU benchmark, logs and CSV under $OUT.
#   bash benchmarks/gpu_check.sh            (OUT defaults to benchmarks/out/gpu)
# Optional: pysdtw 0.0.5 as a wheel in .whl/dtw_pysdtw/ (carried along), installed to /tmp only.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
PY=${PY:-python3}
if ls .whl/dtw_pysdtw/*.whl >/dev/null 2>&1; then
  if $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site_pysdtw \
      .whl/dtw_pysdtw/*.whl >"$OUT/pip.log" 2>&1; then
    export PYSDTW_PATH=/tmp/site_pysdtw
  fi
fi
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  $PY -c "import sys, cupy, torch, numpy; print(sys.version); print('cupy', cupy.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
  which nvcc && nvcc --version | tail -1
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
echo "== pytest"
timeout 200 $PY -m pytest -q -p no:cacheprovider -rs tests/test_dtw.py tests/test_dtw_gpu.py >"$OUT/pytest.log" 2>&1
echo "pytest exit code: $?"
grep -E "passed|failed|error" "$OUT/pytest.log" | tail -3
grep -E "^(FAILED|ERROR)" "$OUT/pytest.log" | head -20
echo "== benchmark"
timeout 150 $PY benchmarks/gpu_bench.py --csv "$OUT/gpu_bench.csv" >"$OUT/gpu_bench.log" 2>&1
echo "bench exit code: $?"
cat "$OUT/gpu_bench.log"
