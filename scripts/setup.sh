#!/usr/bin/env bash
# Prepares this machine for torch_ext and builds it, idempotently: system packages (only
# those missing), Python packages (pip runs only for those missing: scripts/pip_install.sh),
# then the extension and the GoogleTest suite (ccache and ninja make a rebuild quick).
#
# Environment: PYTHON (default python3), TORCH_SPEC (default torch==2.14.1),
# TORCHVISION_SPEC (default torchvision==0.29.1; "" skips it),
# TORCH_EXT_CUDA / TORCH_CUDA_ARCH_LIST, TORCH_EXT_BUILD_TESTS=1 (the GoogleTest suite; see
# setup.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.14.1}

system_packages=(cmake ninja-build g++ libgtest-dev ccache)
missing=()
for package in "${system_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1  # quiet: a line per stage
echo "setup: Python packages"
packages=("$TORCH_SPEC" numpy pytest pytest-xdist expecttest hypothesis scikit-learn matplotlib tqdm tensorboard setuptools wheel)
# The tests on real architectures: torchvision of the same release as torch (0.29.1 goes
# with 2.14.1). Another torch: set TORCHVISION_SPEC, or "" to skip those tests.
TORCHVISION_SPEC=${TORCHVISION_SPEC-torchvision==0.29.1}
[ -z "$TORCHVISION_SPEC" ] || packages+=("$TORCHVISION_SPEC")
PYTHON=$PYTHON bash scripts/pip_install.sh "${packages[@]}"

cpu_only_note=$("$PYTHON" tools/cuda_choice.py)
[ -z "$cpu_only_note" ] || echo "setup: $cpu_only_note"
# The build's output goes to a log, shown (its end) only if the build fails.
mkdir -p build
log=build/setup-build.log
echo "setup: building torch_ext (log: $log)"
# The GoogleTest suite only when asked (scripts/test.sh asks): the main job does not need it.
if ! TORCH_EXT_BUILD_TESTS=${TORCH_EXT_BUILD_TESTS:-0} \
  "$PYTHON" -m pip install -v --no-build-isolation --no-deps -e . \
  > "$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "setup: the build failed; the whole log is $log" >&2
  exit 1
fi
