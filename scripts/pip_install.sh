#!/usr/bin/env bash
# pip install, quietly, of the requirements given that this Python does not satisfy yet
# (tools/pip_needed.py; pip itself takes ~15 s to confirm a dozen installed packages).
# Environment: PYTHON (default python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}

unsatisfied=$("$PYTHON" tools/pip_needed.py "$@")  # one per line
needed=()
while IFS= read -r spec; do
  [ -z "$spec" ] || needed+=("$spec")
done <<<"$unsatisfied"
((${#needed[@]})) || exit 0
PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$PYTHON" -m pip install -q "${needed[@]}"
