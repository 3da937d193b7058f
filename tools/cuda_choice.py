"""Whether the build compiles the CUDA sources: TORCH_EXT_CUDA (auto|0|1), where "auto"
compiles them only when a GPU is visible or TORCH_CUDA_ARCH_LIST names architectures
(kernels this machine cannot run would cost most of a first build). Shared by setup.py
and scripts/setup.sh.

    python tools/cuda_choice.py     # prints the line setup.sh shows, if CUDA is left out
"""

from __future__ import annotations

import os
import sys

import torch

CPU_ONLY_NOTE = (
    "no GPU visible: building the CPU code only "
    "(TORCH_EXT_CUDA=1 or TORCH_CUDA_ARCH_LIST=<archs> compiles the CUDA kernels)"
)


def cuda_setting() -> str:
    """TORCH_EXT_CUDA for CMake: "auto" (CMake checks torch and nvcc), "0" or "1"."""
    value = os.environ.get("TORCH_EXT_CUDA", "auto").strip().lower()
    if value not in ("auto", "0", "1"):
        sys.exit(f"setup.py: TORCH_EXT_CUDA must be auto, 0 or 1, not {value!r}")
    if value == "auto" and not os.environ.get("TORCH_CUDA_ARCH_LIST") and not _gpu_visible():
        return "0"
    return value


def cpu_only_by_choice() -> bool:
    """Whether "auto" left CUDA out for want of a GPU."""
    return (
        os.environ.get("TORCH_EXT_CUDA", "auto").strip().lower() == "auto" and cuda_setting() == "0"
    )


def _gpu_visible() -> bool:
    return torch.version.cuda is not None and torch.cuda.is_available()


if __name__ == "__main__":
    if cpu_only_by_choice():
        print(CPU_ONLY_NOTE)
