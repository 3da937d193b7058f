#!/usr/bin/env bash
# Builds the HTML documentation (docs/: the API reference from the docstrings, the guides
# from README.md) into build/docs, with every Sphinx warning an error. Installs Sphinx and
# myst-parser first if missing (docs/requirements.txt). Needs torch_ext built and
# importable: run scripts/setup.sh first on a fresh machine.
#
# The pins keep docutils at 0.19..0.21 (Sphinx 8 and myst-parser 5 need docutils >= 0.20,
# which breaks packages that pin docutils <= 0.19, awscli for one) and do not touch torch.
#
# Environment: PYTHON (default python3). Arguments are passed to sphinx-build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
mapfile -t requirements < <(grep -Ev '^(#|$)' docs/requirements.txt)
PYTHON=$PYTHON bash scripts/pip_install.sh "${requirements[@]}"
# -E: read every page afresh, so each build reports every warning (-W makes them errors;
# --keep-going lists them all before failing).
"$PYTHON" -m sphinx -E -W --keep-going -q -b html docs build/docs "$@"
echo "docs: $(pwd)/build/docs/index.html"
