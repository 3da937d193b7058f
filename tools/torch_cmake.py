"""torch_ext/cmake.py from the source tree, loaded by path: setup.py needs its CMake
arguments before the torch_ext package (whose library it is building) can be imported.

    python tools/torch_cmake.py --torch-only   # what setup.py passes: torch's, no torch_ext
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_torch_ext_cmake", Path(__file__).resolve().parents[1] / "torch_ext" / "cmake.py"
)
assert _spec is not None and _spec.loader is not None
_cmake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cmake)
torch_cmake_args = _cmake.torch_cmake_args

if __name__ == "__main__":
    _cmake.main()
