#!/usr/bin/env bash
# Runs every test: sets up and builds (scripts/setup.sh), then pytest and ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}

bash scripts/setup.sh
"$PYTHON" -m pytest tests/python "$@"
ctest --test-dir build/cmake --output-on-failure
