#!/usr/bin/env bash
# The GoogleTest suite under AddressSanitizer and UndefinedBehaviorSanitizer: configures
# (TORCH_EXT_SANITIZE=ON, CPU only, -O1 -g), builds and runs ctest in build/sanitize,
# idempotently (ccache and ninja make a rerun quick). Exits non-zero on a failing test or
# any sanitizer report; prints how long each step took.
#
# Needs what scripts/setup.sh installs (it runs it when torch or a tool is missing).
# Environment: PYTHON (default python3), TORCH_EXT_SANITIZE_BUILD_DIR (default
# build/sanitize), MAX_JOBS (parallel compile jobs and tests), SANITIZE_ISAS (the CPU
# loops to run the suite with, as ATEN_CPU_CAPABILITY values; default: the machine's best
# ("native"), avx2 too where that is AVX512, and the generic loops ("default")).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
BUILD_DIR=${TORCH_EXT_SANITIZE_BUILD_DIR:-build/sanitize}
JOBS=${MAX_JOBS:-$(nproc)}
default_isas="native default"
grep -q -w avx512f /proc/cpuinfo 2>/dev/null && default_isas="native avx2 default"
read -r -a isas <<<"${SANITIZE_ISAS:-$default_isas}"

start=$SECONDS
step_start=$SECONDS
step_done() {
  echo "sanitize: $1 took $((SECONDS - step_start)) s"
  step_start=$SECONDS
}

if ! "$PYTHON" -c "import torch" 2>/dev/null || ! command -v cmake >/dev/null \
   || ! command -v ninja >/dev/null || ! dpkg -s libgtest-dev >/dev/null 2>&1; then
  bash scripts/setup.sh
  step_done "setup"
fi

mkdir -p "$BUILD_DIR"
mapfile -t torch_args < <("$PYTHON" tools/torch_cmake.py --torch-only)
cmake -S . -B "$BUILD_DIR" -GNinja "${torch_args[@]}" \
  -DTORCH_EXT_SANITIZE=ON -DTORCH_EXT_CUDA=0 -DTORCH_EXT_BUILD_TESTS=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" \
  -DPython_EXECUTABLE="$(command -v "$PYTHON")" >"$BUILD_DIR/configure.log" 2>&1 \
  || { cat "$BUILD_DIR/configure.log" >&2; echo "sanitize: configure failed" >&2; exit 1; }
step_done "configure"
cmake --build "$BUILD_DIR" --parallel "$JOBS"
step_done "build"

# Sanitizer reports abort the test that hits them (ctest fails); the log is searched too,
# so that no report goes unnoticed whatever the exit status. The build is CPU only: the
# GPUs are hidden, so that a CUDA build of torch does not start the CUDA driver under ASan.
export CUDA_VISIBLE_DEVICES=""
status=0
for isa in "${isas[@]}"; do
  echo "sanitize: ctest with ATEN_CPU_CAPABILITY=${isa}"
  if [ "$isa" = native ]; then
    ctest --test-dir "$BUILD_DIR" --output-on-failure --parallel "$JOBS" || status=1
  else
    ATEN_CPU_CAPABILITY=$isa ctest --test-dir "$BUILD_DIR" --output-on-failure --parallel "$JOBS" \
      || status=1
  fi
  if grep -E -n "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer" \
       "$BUILD_DIR/Testing/Temporary/LastTest.log"; then
    echo "sanitize: sanitizer report(s) above (full log: $BUILD_DIR/Testing/Temporary/LastTest.log)" >&2
    status=1
  fi
  step_done "ctest (ATEN_CPU_CAPABILITY=${isa})"
done

echo "sanitize: total $((SECONDS - start)) s, $([ $status -eq 0 ] && echo clean || echo FAILED)"
exit $status
