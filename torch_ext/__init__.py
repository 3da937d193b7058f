"""torch_ext: Leaky ReLU, PReLU, ELU, CELU and SELU as registered PyTorch ops.

The ops live in ``torch.ops.torch_ext`` (one shared library serves Python, LibTorch C++
programs and TorchScript); :mod:`torch_ext.functional` and :mod:`torch_ext.nn` offer them
in the shape of :mod:`torch.nn.functional` and :mod:`torch.nn`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

#: The package's version (the ``version`` of ``pyproject.toml``).
__version__ = "0.1.0"

try:
    from . import _C
except ImportError as error:  # pragma: no cover - only without a build
    raise ImportError(
        "torch_ext's compiled parts are missing; build them with "
        "`pip install --no-build-isolation -e .` in the source folder"
    ) from error


def _torch_mismatch(
    built: str, built_cuda: str | None, installed: str, installed_cuda: str | None
) -> str | None:
    """Why a build against torch `built` (with CUDA kernels for `built_cuda`, or None) cannot
    load into torch `installed` (a CUDA build for `installed_cuda`, or None), or None when it
    can. C++ extensions load only into the release they were built against (what the wheel's
    metadata pins, ``torch==<release>``); the local version (``+cpu``, ``+cu130``) matters
    only to a build with CUDA kernels, which needs a torch of the same CUDA major version. A
    CPU-only build links torch's CPU libraries alone, so it loads into either."""
    release = built.split("+")[0]
    if installed.split("+")[0] != release:
        return f"torch_ext was built against torch {built}, but torch {installed} is installed"
    if built_cuda and (installed_cuda or "").split(".")[0] != built_cuda.split(".")[0]:
        what = f"CUDA {installed_cuda}" if installed_cuda else "no CUDA"
        return (
            f"torch_ext was built with CUDA {built_cuda} kernels against torch {built}, but "
            f"the installed torch {installed} has {what}"
        )
    return None


def _check_torch_version() -> None:
    built_cuda = _C.cuda_version if _C.with_cuda else None
    problem = _torch_mismatch(_C.torch_version, built_cuda, torch.__version__, torch.version.cuda)
    if problem is not None:
        raise ImportError(
            f"{problem}; C++ extensions only load into the torch release they were built "
            f"with. Install torch {_C.torch_version}, or rebuild torch_ext against this torch "
            "from its source folder: "
            "`pip install --no-build-isolation --force-reinstall --no-deps .`"
        )


def library_path() -> str:
    """Return the path of the shared library that registers ``torch.ops.torch_ext``.

    ``torch.ops.load_library(torch_ext.library_path())`` registers the ops in a process
    that does not import this package (for example one that only loads TorchScript).
    """
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), _C.library_name)


#: The folder holding torch_ext's CMake package (share/cmake/TorchExt), for a C++ project's
#: ``CMAKE_PREFIX_PATH``, as :data:`torch.utils.cmake_prefix_path` is for torch's:
#: ``find_package(TorchExt)`` then gives the target ``TorchExt::torch_ext``.
#: ``python -m torch_ext.cmake`` prints every argument CMake needs on this machine.
cmake_prefix_path: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "share", "cmake")


def build_info() -> dict[str, Any]:
    """Return how the extension was built and which CPU loops it runs.

    Keys: ``torch_version`` (built against), ``with_cuda``, ``cuda_version``,
    ``cuda_arch_list``, ``cpu_isas`` (ISAs compiled), ``cpu_isa`` (the one this CPU runs).
    """
    return {
        "torch_version": _C.torch_version,
        "with_cuda": _C.with_cuda,
        "cuda_version": _C.cuda_version,
        "cuda_arch_list": list(_C.cuda_arch_list),
        "cpu_isas": list(_C.cpu_isas),
        "cpu_isa": torch.ops.torch_ext._cpu_isa(),
    }


_check_torch_version()
torch.ops.load_library(library_path())

from . import functional, nested, nn, transforms  # noqa: E402,F401  (needs the ops registered)
from .monitor import DeadNeuronMonitor  # noqa: E402
from .revive import ReviveReport, revive  # noqa: E402

__all__ = [
    "DeadNeuronMonitor",
    "build_info",
    "cmake_prefix_path",
    "functional",
    "library_path",
    "nn",
    "revive",
    "ReviveReport",
]
