#!/usr/bin/env bash
# Keep the tree tidy: ruff (lint + format) for Python, clang-format for C++/CUDA (Debian
# 12's, 14.0), with the configurations in pyproject.toml and .clang-format.
#   bash scripts/tidy.sh          # fix the tree in place
#   bash scripts/tidy.sh --check  # change nothing; fail listing what is not tidy (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

check=0
[[ "${1:-}" == "--check" ]] && check=1

# Pinned: another ruff release may format differently, and --check would then fail CI.
RUFF_VERSION=0.17.6
[[ "$("$PYTHON" -m ruff --version 2>/dev/null)" == "ruff $RUFF_VERSION" ]] ||
  "$PYTHON" -m pip install -q "ruff==$RUFF_VERSION"
if ! command -v clang-format >/dev/null; then
  echo "tidy: installing clang-format (Debian package)"
  (apt-get install -y -q clang-format >/dev/null 2>&1 ||
    (apt-get update -q >/dev/null && apt-get install -y -q clang-format >/dev/null))
fi

python_files=(setup.py torch_ext tests benchmarks tools examples)
mapfile -t cpp_files < <(git ls-files 'csrc/*.h' 'csrc/*.cpp' 'csrc/*.cu' 'csrc/*.cuh' \
  'tests/cpp/*.cpp' 'examples/*.cpp' 'examples/*.h')

if ((check)); then
  "$PYTHON" -m ruff check "${python_files[@]}"
  "$PYTHON" -m ruff format --check "${python_files[@]}"
  clang-format --dry-run -Werror "${cpp_files[@]}"
  echo "tidy: clean"
else
  "$PYTHON" -m ruff check --fix "${python_files[@]}"
  "$PYTHON" -m ruff format "${python_files[@]}"
  clang-format -i "${cpp_files[@]}"
  echo "tidy: fixed (review with git diff)"
fi
