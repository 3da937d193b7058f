#!/usr/bin/env bash
# Runs every test: sets up and builds (scripts/setup.sh), then pytest (over every core) and
# ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}

TORCH_EXT_BUILD_TESTS=1 bash scripts/setup.sh  # with the GoogleTest suite
# What only the tests need: the frameworks of torch_ext.integrations' callbacks, and ONNX
# (torch.onnx's exporter needs onnxscript; onnxruntime runs the exported models), at the
# versions they were tested with; pip leaves torch as it is.
echo "test: Python packages for the integration and ONNX tests"
PYTHON=$PYTHON bash scripts/pip_install.sh "lightning==2.6.6" "transformers==5.24.0" "accelerate==1.15.0" \
  "onnx==1.23.2" "onnxruntime==1.32.0" "onnxscript==0.7.2"
# And Sphinx, for tests/python/test_docs.py (the docs build, its API pages).
mapfile -t docs_requirements < <(grep -Ev '^(#|$)' docs/requirements.txt)
PYTHON=$PYTHON bash scripts/pip_install.sh "${docs_requirements[@]}"
# On every core (pytest-xdist; `-n 0` after the command runs them in one process). OpenMP's
# idle threads sleep rather than spin: with a worker per core, a spinning pool of one
# worker's intra-op threads takes the core the other needs.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} \
  "$PYTHON" -m pytest tests/python -n auto --dist loadgroup "$@"
ctest --test-dir build/cmake --output-on-failure --parallel "$(nproc)"
