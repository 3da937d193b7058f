#!/usr/bin/env bash
# Runs every test: sets up and builds (scripts/setup.sh), then pytest and ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}

TORCH_EXT_BUILD_TESTS=1 bash scripts/setup.sh  # with the GoogleTest suite
# What only the tests need: the frameworks of torch_ext.integrations' callbacks (the
# versions they were tested with; pip leaves torch as it is).
echo "test: Python packages for the integration tests"
PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 "$PYTHON" -m pip install -q \
  "lightning==2.6.6" "transformers==5.24.0" "accelerate==1.15.0"
"$PYTHON" -m pytest tests/python "$@"
ctest --test-dir build/cmake --output-on-failure
