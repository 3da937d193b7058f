#!/usr/bin/env bash
# The GPU check: on a fresh GPU machine with torch and nvcc, builds torch_ext with its
# CUDA kernels, runs the test suite on CUDA (every device-parametrized test's cuda case,
# and tests/python/test_cuda.py) and the GPU benchmark, and writes logs and tables under
# OUT_DIR. Sized to finish inside 8 minutes on an H100 (each step has its own limit).
#
#   bash benchmarks/gpu_check.sh OUT_DIR
#
# OUT_DIR/summary.txt: one line per step (ok / FAILED, seconds); build.log, tests.log,
# bench.txt (bench_ops.py --device cuda), environment.txt (torch, CUDA, GPU, nvidia-smi).
# Exit status: 0 when every step passed.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

{ "$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
"GPU", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
  nvcc --version | tail -1; nvidia-smi; } > "$out/environment.txt" 2>&1
if ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "gpu_check: torch sees no CUDA device (see $out/environment.txt)" | tee "$out/summary.txt"
  exit 2
fi

failed=0
# step NAME LIMIT_SECONDS LOG COMMAND...: runs COMMAND under a time limit into LOG.
step() {
  local name=$1 limit=$2 log=$3 start=$SECONDS rc=0
  shift 3
  timeout "$limit" "$@" > "$out/$log" 2>&1 || rc=$?
  local verdict="ok"
  if [ "$rc" -ne 0 ]; then verdict="FAILED (exit $rc)"; failed=1; fi
  echo "$name: $verdict in $((SECONDS - start)) s" | tee -a "$out/summary.txt"
  tail -n 3 "$out/$log"
}

# The visible GPU's architecture only: a quick build, and it runs there.
arch=$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
step build 150 build.log env TORCH_EXT_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$arch}" \
  "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index -v -e .
[ "$failed" -eq 0 ] || exit 1
step tests 210 tests.log "$PYTHON" -m pytest tests/python -k cuda -q -p no:cacheprovider -rs
step bench 120 bench.txt "$PYTHON" benchmarks/bench_ops.py --device cuda --rounds 2 \
  --min-run-time 0.05
exit "$failed"
