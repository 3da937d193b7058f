#!/usr/bin/env bash
# The GPU check: on a fresh GPU machine with torch and nvcc, builds torch_ext for the visible
# GPU's architecture, runs every CUDA test (each device-parametrized test's cuda case:
# opcheck of every op, gradcheck/gradgradcheck in float64, the parity suite against
# torch.nn.functional in float32/float16/bfloat16/float64, ...; and tests/python/test_cuda.py)
# and the bandwidth benchmark, and writes logs and tables under OUT_DIR. Sized to finish
# inside 10 minutes on an H100 or H200 (each step has its own limit).
#
#   bash benchmarks/gpu_check.sh OUT_DIR
#
# OUT_DIR/summary.txt: one line per step (ok / FAILED, seconds) and the tests' pass/fail
# counts per file; environment.txt (torch, CUDA, GPU, nvidia-smi), build.log, tests.log
# (failures in full, the slowest tests), junit.xml, bench.txt (bench_ops.py --device cuda),
# bench_compile.txt (bench_compile.py --device cuda).
# Exit status: 0 when every step passed.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

# The machine's CXX may be a toolset GCC that links part of libstdc++ into each library it
# builds (the build refuses such a library: cmake/TorchExtCheckRuntime.cmake says why); the
# system's compiler links the shared libstdc++. AOTInductor's tests compile with $CXX too.
if [ -x /usr/bin/g++ ] && [ -x /usr/bin/gcc ]; then export CC=/usr/bin/gcc CXX=/usr/bin/g++; fi

{ "$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
"GPU", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
  nvcc --version | tail -1; "${CXX:-c++}" --version | head -1; nproc; nvidia-smi; } > "$out/environment.txt" 2>&1
if ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "gpu_check: torch sees no CUDA device (see $out/environment.txt)" | tee "$out/summary.txt"
  exit 2
fi
head -1 "$out/environment.txt" | tee "$out/summary.txt"

failed=0
# step NAME LIMIT_SECONDS LOG COMMAND...: runs COMMAND under a time limit, appending to LOG.
step() {
  local name=$1 limit=$2 log=$3 start=$SECONDS rc=0
  shift 3
  timeout "$limit" "$@" >> "$out/$log" 2>&1 || rc=$?
  local verdict="ok"
  if [ "$rc" -ne 0 ]; then verdict="FAILED (exit $rc)"; failed=1; fi
  echo "$name: $verdict in $((SECONDS - start)) s" | tee -a "$out/summary.txt"
  tail -n 3 "$out/$log"
  return "$rc"
}

# The visible GPU's architecture only: a quick build, and it runs there.
arch=$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
step build 150 build.log env TORCH_EXT_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$arch}" \
  MAX_JOBS="$(nproc)" "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index -v -e . \
  || exit 1

# Every test with a cuda case, spread over worker processes when pytest-xdist is there (a
# test that crashes its worker is reported as such, and the others go on).
workers=()
if "$PYTHON" -c 'import xdist' 2> /dev/null; then workers=(-n 8); fi
step tests 170 tests.log "$PYTHON" -m pytest tests/python -k cuda -q -rfEs -p no:cacheprovider \
  "${workers[@]}" --durations=10 --junitxml="$out/junit.xml"
[ -f "$out/junit.xml" ] && "$PYTHON" - "$out/junit.xml" >> "$out/summary.txt" 2>&1 << 'EOF'
import collections, sys, xml.etree.ElementTree as ET
counts = collections.defaultdict(collections.Counter)
for case in ET.parse(sys.argv[1]).iter("testcase"):
    outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
    counts[case.get("classname", "?").split(".")[-1]][outcome] += 1
total = collections.Counter()
for module, c in sorted(counts.items()):
    total.update(c)
    print(f"  {module:<32} " + " ".join(f"{k} {v}" for k, v in sorted(c.items())))
print("  total: " + " ".join(f"{k} {v}" for k, v in sorted(total.items())))
EOF

# Each op's forward, backward, counted forward and count_active_ at 2^24 and 2^26
# elements, against the native op and a same-size copy (the bandwidth ceiling).
step bench 140 bench.txt "$PYTHON" benchmarks/bench_ops.py --device cuda --sizes 2^24 2^26 \
  --dtypes fp32 bf16 --modes forward backward bwd-op fwd+stats count --rounds 2 \
  --min-run-time 0.03

# Compiled training steps (MLP, conv-BN-act CNN, ResNet-18), native vs ours, eager and
# compiled, our ops as extern calls and decomposed: what decides torch_ext's decomposition
# table (torch_ext/transforms/decompositions.py) on CUDA. Rows print as they finish.
step compile-bench 150 bench_compile.txt "$PYTHON" benchmarks/bench_compile.py --device cuda \
  --models mlp cnn resnet18 --rounds 3 --min-run-time 0.05
exit "$failed"
