#!/usr/bin/env bash
# One prepared GPU session: CUDA tests + GPU benchmarks, results under $OUT (at most 8 files).
#
# Run from the repository root on a machine with an NVIDIA GPU whose python3 already has torch,
# triton, numpy, scipy, scikit-learn and pytest. Pure-Python dependencies missing there
# (array-api-compat, array-api-strict) can be carried as wheels in .whl/:
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl array-api-compat array-api-strict
# Usage: OUT=/some/dir bash benchmarks/gpu_check.sh [bench ...]
set -uo pipefail
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  site=$(mktemp -d)
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
  export PYTHONPATH="$site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
export TRITON_INTERPRET=0  # compiled kernels (tests/conftest.py only defaults it to 1)
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
  python3 -m sciml_toolbox.cli info
  # CUDA-only tests, then the CPU suite's Triton tests compiled for the GPU
  python3 -m pytest -q -p no:cacheprovider tests/gpu -m gpu -x --timeout=300 2>/dev/null \
    || python3 -m pytest -q -p no:cacheprovider tests/gpu -m gpu
} 2>&1 | tee "$OUT/gpu_tests.log"
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=(attention optim dynamics stiefel multiview spell)
for b in "${benches[@]}"; do
  [ -f "benchmarks/bench_$b.py" ] || continue
  echo "== bench $b" | tee -a "$OUT/gpu_tests.log"
  timeout 240 python3 "benchmarks/bench_$b.py" --device cuda --out "$OUT/${b}_gpu.json" \
    2>&1 | tail -40 | tee -a "$OUT/gpu_tests.log"
done
