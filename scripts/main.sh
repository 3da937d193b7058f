#!/usr/bin/env bash
# The main job: sets up and builds (scripts/setup.sh), then trains a small network on
# scikit-learn's bundled handwritten digits with each torch_ext activation.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}

bash scripts/setup.sh
"$PYTHON" examples/train_mlp.py "$@"
