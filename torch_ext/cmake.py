"""The CMake arguments a C++ project needs to build against torch_ext and torch on this
machine: CMAKE_PREFIX_PATH with torch_ext's CMake package (``torch_ext.cmake_prefix_path``)
and torch's, and, for a CUDA build of torch, the CUDA toolkit its CMake config insists on.

    python -m torch_ext.cmake                         # prints them, one per line
    cmake -S . -B build $(python -m torch_ext.cmake)  # a project using TorchExt::torch_ext

Imports nothing of torch_ext: setup.py loads this file by path to build the library itself
(tools/torch_cmake.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch.utils import cpp_extension


def cuda_home() -> str | None:
    """The CUDA toolkit root: $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, or torch's guess.

    torch's own guess follows `nvcc` on PATH, which can be a wrapper script outside the
    toolkit, so the usual locations come first.
    """
    for candidate in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return candidate
    return cpp_extension.CUDA_HOME


def cuda_arch_list() -> str:
    """$TORCH_CUDA_ARCH_LIST, else the visible GPU's, else the architectures torch targets."""
    if os.environ.get("TORCH_CUDA_ARCH_LIST"):
        return os.environ["TORCH_CUDA_ARCH_LIST"]
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return f"{major}.{minor}"
    archs = [a for a in torch.cuda.get_arch_list() if a.startswith("sm_")]
    return ";".join(f"{a[3:-1]}.{a[-1]}" for a in archs)


def cuda_library_includes(home: str) -> list[str]:
    """Include folders of the CUDA library wheels torch depends on (``nvidia-*``), for headers
    that torch's CUDA headers include (``cusparse.h``, ``cublas_v2.h``) when the toolkit at
    ``home`` has only the compiler and runtime."""
    if (Path(home) / "include" / "cusparse.h").exists():
        return []
    found = []
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) + list(map(str, sys.path)):
        for include in sorted(Path(entry or ".").glob("nvidia/*/include")):
            if include.is_dir() and str(include) not in found:
                found.append(str(include))
    return found


def torch_cmake_args(
    extra_prefixes: list[str] | None = None, building_torch_ext: bool = False
) -> list[str]:
    """CMAKE_PREFIX_PATH (`extra_prefixes`, then torch's) and, for a CUDA build of torch, its
    toolkit; `building_torch_ext` adds what only torch_ext's own CMakeLists.txt reads (a
    project of the user's would report it as "Manually-specified variables were not used")."""
    prefixes = [*(extra_prefixes or []), torch.utils.cmake_prefix_path]
    args = [f"-DCMAKE_PREFIX_PATH={';'.join(prefixes)}"]
    home = cuda_home()
    if torch.version.cuda and home:
        args += [
            f"-DCUDA_TOOLKIT_ROOT_DIR={home}",
            f"-DCMAKE_CUDA_COMPILER={Path(home) / 'bin' / 'nvcc'}",
            f"-DTORCH_CUDA_ARCH_LIST={cuda_arch_list()}",
        ]
        if building_torch_ext:
            includes = ";".join(cuda_library_includes(home))
            args.append(f"-DTORCH_EXT_CUDA_LIBRARY_INCLUDES={includes}")
    return args


def package_prefix() -> str:
    """torch_ext's CMake package folder in this installation (``torch_ext.cmake_prefix_path``)."""
    return str(Path(__file__).resolve().parent / "share" / "cmake")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prefix",
        action="append",
        default=[],
        help="a CMake prefix to search first (another torch_ext install, ...); repeatable",
    )
    parser.add_argument(
        "--torch-only",
        action="store_true",
        help="leave out torch_ext's own CMake package (to build torch_ext itself)",
    )
    args = parser.parse_args(argv)
    prefixes = args.prefix + ([] if args.torch_only else [package_prefix()])
    print("\n".join(torch_cmake_args(prefixes, building_torch_ext=args.torch_only)))


if __name__ == "__main__":
    main()
