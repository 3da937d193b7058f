#!/usr/bin/env bash
# pip install, quietly, of the requirements given, when this Python does not satisfy one of
# them yet (tools/pip_needed.py; pip itself takes ~15 s to confirm a dozen installed
# packages).
# Environment: PYTHON (default python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}

# pip gets every requirement when one is unsatisfied, so that it resolves them together (as
# one pip call always did) and refuses a conflicting set rather than flip between versions.
# If the check itself fails, pip decides.
unsatisfied=$("$PYTHON" tools/pip_needed.py "$@") || unsatisfied=all
[ -n "$unsatisfied" ] || exit 0
PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$PYTHON" -m pip install -q "$@"
