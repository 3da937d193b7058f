#!/usr/bin/env bash
# The main job: sets up and builds (scripts/setup.sh), then runs the dying-ReLU study on
# scikit-learn's bundled handwritten digits and writes its report folder (path printed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}

bash scripts/setup.sh
"$PYTHON" -m torch_ext.study "$@"
