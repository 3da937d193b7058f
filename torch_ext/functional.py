"""Functional forms of torch_ext's activations, shaped like :mod:`torch.nn.functional`.

Each function calls the registered op ``torch.ops.torch_ext.<name>`` (or its in-place
form), so it works in eager mode, under ``torch.compile`` and ``torch.export``, and inside
``torch.jit.script``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "SELU_ALPHA",
    "SELU_SCALE",
    "celu",
    "celu_",
    "elu",
    "elu_",
    "leaky_relu",
    "leaky_relu_",
    "prelu",
    "selu",
    "selu_",
]

#: SELU's :math:`\alpha \approx 1.6733` and :math:`\lambda \approx 1.0507` (``SELU_SCALE``), as
#: the C++ library's kernels use them (``torch.ops.torch_ext.selu_constants()``).
SELU_ALPHA, SELU_SCALE = torch.ops.torch_ext.selu_constants()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    r"""Apply Leaky ReLU element-wise: :math:`x` if :math:`x > 0`, else
    :math:`\text{negative\_slope} \cdot x`.

    Args:
        input: a floating-point tensor (float32, float64, bfloat16 or float16).
        negative_slope: slope for :math:`x \le 0`. Default: ``0.01``.
        inplace: overwrite ``input``. Its backward uses the result, which needs
            ``negative_slope >= 0``. Default: ``False``.

    See :func:`torch.nn.functional.leaky_relu`; the gradient at ``x == 0`` is the slope.
    """
    if inplace:
        return torch.ops.torch_ext.leaky_relu_(input, negative_slope)
    return torch.ops.torch_ext.leaky_relu(input, negative_slope)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    r"""Apply PReLU element-wise: :math:`x` if :math:`x > 0`, else :math:`w \cdot x`.

    Args:
        input: a floating-point tensor; dim 1 is the channel dim (one channel if
            ``input.dim() < 2``).
        weight: the learned slopes, of ``input``'s dtype, 0-D or 1-D, with 1 element or
            one per channel.

    See :func:`torch.nn.functional.prelu`.
    """
    return torch.ops.torch_ext.prelu(input, weight)


def elu(
    input: Tensor, alpha: float = 1.0, inplace: bool = False, save_output: bool = False
) -> Tensor:
    r"""Apply ELU element-wise: :math:`x` if :math:`x > 0`, else
    :math:`\alpha (e^x - 1)`.

    Args:
        input: a floating-point tensor.
        alpha: the negative saturation value. Default: ``1.0``.
        inplace: overwrite ``input``. Its backward uses the result, which needs
            ``alpha >= 0``. Default: ``False``.
        save_output: out of place, keep the output for backward instead of the input, as
            the in-place form does (saves memory when the next layer keeps the output
            anyway). The output must then not be modified in place before backward, and in
            float32 the gradient loses precision for ``x`` below about -10 (0 below -17).
            Applies to float32/float64 with ``alpha >= 0``; otherwise the input is kept.
            Default: ``False`` (the input is kept, as PyTorch does).

    See :func:`torch.nn.functional.elu`; the gradient at ``x == 0`` is ``alpha``.
    """
    if inplace:
        return torch.ops.torch_ext.elu_(input, alpha)
    return torch.ops.torch_ext.elu(input, alpha, save_output=save_output)


def celu(
    input: Tensor, alpha: float = 1.0, inplace: bool = False, save_output: bool = False
) -> Tensor:
    r"""Apply CELU element-wise: :math:`x` if :math:`x > 0`, else
    :math:`\alpha (e^{x / \alpha} - 1)` (Barron, 2017): ELU with its input scaled by
    :math:`1 / \alpha`, continuously differentiable at 0 for any :math:`\alpha`.

    Args:
        input: a floating-point tensor.
        alpha: the negative saturation value; must not be 0. Default: ``1.0``.
        inplace: overwrite ``input``. Its backward uses the result, which needs
            ``alpha >= 0``. Default: ``False``.
        save_output: keep the output for backward instead of the input; see :func:`elu`.
            Default: ``False``.

    See :func:`torch.nn.functional.celu`; the gradient at ``x == 0`` is ``1``.
    """
    if inplace:
        return torch.ops.torch_ext.celu_(input, alpha)
    return torch.ops.torch_ext.celu(input, alpha, save_output=save_output)


def selu(input: Tensor, inplace: bool = False, save_output: bool = False) -> Tensor:
    r"""Apply SELU element-wise: :math:`\lambda x` if :math:`x > 0`, else
    :math:`\lambda \alpha (e^x - 1)`, with :math:`\alpha \approx 1.6733` and
    :math:`\lambda \approx 1.0507` (Klambauer et al., 2017).

    Args:
        input: a floating-point tensor.
        inplace: overwrite ``input``. Default: ``False``.
        save_output: keep the output for backward instead of the input; see :func:`elu`.
            Default: ``False``.

    See :func:`torch.nn.functional.selu`.
    """
    if inplace:
        return torch.ops.torch_ext.selu_(input)
    return torch.ops.torch_ext.selu(input, save_output=save_output)


# The in-place forms under torch.nn.functional's names (F.leaky_relu_, F.elu_, ...).


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    r"""In-place version of :func:`leaky_relu` (see its ``inplace``)."""
    return torch.ops.torch_ext.leaky_relu_(input, negative_slope)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    r"""In-place version of :func:`elu` (see its ``inplace``)."""
    return torch.ops.torch_ext.elu_(input, alpha)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    r"""In-place version of :func:`celu` (see its ``inplace``)."""
    return torch.ops.torch_ext.celu_(input, alpha)


def selu_(input: Tensor) -> Tensor:
    r"""In-place version of :func:`selu`."""
    return torch.ops.torch_ext.selu_(input)
