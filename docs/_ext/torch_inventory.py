"""An intersphinx inventory of the PyTorch pages these docs point to, written at build time.

Intersphinx would download PyTorch's ``objects.inv`` while building; the build must work
offline, so the few torch names the docstrings and guides reference are listed here, each
with its page in PyTorch's documentation, and written as a local inventory (the format
Sphinx reads: four header lines, then zlib-compressed ``name domain:role priority uri
display`` lines, a ``$`` ending the uri standing for the name).
"""

from __future__ import annotations

import zlib
from pathlib import Path

TORCH_DOCS = "https://docs.pytorch.org/docs/stable/"

_ACTIVATIONS = ("leaky_relu", "prelu", "elu", "selu", "celu", "gelu", "silu", "relu")
_MODULES = ("LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "ReLU", "Module")

# (name, role, page): page "" is generated/<name>.html, its anchor the name.
_OBJECTS: tuple[tuple[str, str, str], ...] = (
    ("torch", "py:module", "torch.html#module-torch"),
    ("torch.nn", "py:module", "nn.html#module-torch.nn"),
    ("torch.nn.functional", "py:module", "nn.functional.html#module-torch.nn.functional"),
    ("torch.Tensor", "py:class", "tensors.html#$"),
    ("torch.device", "py:class", "tensor_attributes.html#$"),
    ("torch.optim.Optimizer", "py:class", "optim.html#$"),
    ("torch.autograd.Function", "py:class", "autograd.html#$"),
    ("torch.func.vmap", "py:function", ""),
    ("torch.onnx.export", "py:function", "onnx.html#$"),
    ("torch.utils.cmake_prefix_path", "py:data", "cpp_extension.html"),
    ("torch.nn.utils.parametrize", "py:module", "nn.html#module-torch.nn.utils.parametrize"),
    *((f"torch.nn.functional.{name}", "py:function", "") for name in _ACTIVATIONS),
    *((f"torch.nn.{name}", "py:class", "") for name in _MODULES),
    # Where autodoc finds them (the classes' own modules), for signatures
    ("torch.nn.modules.module.Module", "py:class", "generated/torch.nn.Module.html"),
    ("torch.optim.optimizer.Optimizer", "py:class", "optim.html#torch.optim.Optimizer"),
)


def write_inventory(path: Path) -> Path:
    """Write the inventory to `path` and return it."""
    lines = [
        f"{name} {role} 1 {page or f'generated/{name}.html#$'} -" for name, role, page in _OBJECTS
    ]
    header = (
        "# Sphinx inventory version 2\n# Project: PyTorch\n# Version: stable\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    path.write_bytes(header.encode() + zlib.compress(("\n".join(lines) + "\n").encode()))
    return path
