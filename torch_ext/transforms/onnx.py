"""ONNX export of models using torch_ext's ops: each op translates as its native twin does.

``torch.onnx.export(..., dynamo=True)`` traces the model with ``torch.export`` (the
in-place forms become the out-of-place ops there) and translates each ATen op with
onnxscript's torchlib; it has no translation for a custom op unless given one. The table
here maps each torch_ext op to the very torchlib function that translates its ATen twin, so
a model exports to the ONNX ops its native counterpart exports to (``LeakyRelu``,
``PRelu``, ``Elu``, ``Selu``, ``Celu``), and any ONNX runtime runs it. (Inductor's
decompositions, :mod:`torch_ext.transforms.decompositions`, would not do: they write SELU
and CELU as ``aten.elu`` with scales, which torchlib exports as ``Mul``, ``Elu``, ``Mul``.) For example::

    from torch_ext.transforms.onnx import custom_translation_table

    program = torch.onnx.export(
        model, (x,), dynamo=True, custom_translation_table=custom_translation_table()
    )

onnxscript (a dependency of torch.onnx's exporter) is imported only when the table is made.
The counted ops (the dead-neuron monitor's) have no translation: remove the monitor before
exporting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["custom_translation_table"]

ops = torch.ops.torch_ext


def custom_translation_table() -> dict[torch._ops.OpOverload, Callable[..., Any]]:
    """Return the translations of torch_ext's ops for :func:`torch.onnx.export`.

    Pass it as ``custom_translation_table`` (merged with any translations of your own). Each
    translation takes the op's arguments and calls onnxscript's torchlib function for the
    op's ATen twin; arguments that only choose what autograd keeps (``save_output``) do not
    change the exported computation.

    Raises:
        ImportError: if onnxscript is not installed (``pip install onnxscript``).
    """
    from onnxscript.function_libs.torch_lib.ops import core, nn

    def leaky_relu(self: Any, negative_slope: float = 0.01) -> Any:
        return nn.aten_leaky_relu(self, negative_slope)

    def prelu(self: Any, weight: Any) -> Any:
        return core.aten_prelu(self, weight)

    def elu(self: Any, alpha: float = 1.0, save_output: bool = False) -> Any:
        return nn.aten_elu(self, alpha)

    def selu(self: Any, save_output: bool = False) -> Any:
        return core.aten_selu(self)

    def celu(self: Any, alpha: float = 1.0, save_output: bool = False) -> Any:
        return nn.aten_celu(self, alpha)

    return {
        ops.leaky_relu.default: leaky_relu,
        ops.prelu.default: prelu,
        ops.elu.default: elu,
        ops.selu.default: selu,
        ops.celu.default: celu,
    }
