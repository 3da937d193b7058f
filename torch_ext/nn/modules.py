"""Activation modules that run torch_ext's ops.

Each one subclasses its :mod:`torch.nn` counterpart and replaces only ``forward``: the
constructor, attributes, ``extra_repr`` and state dict (PReLU's ``weight``) are PyTorch's,
so models and checkpoints move between the two freely, and ``isinstance(m, torch.nn.ELU)``
stays true.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as F

__all__ = ["ELU", "LeakyReLU", "PReLU", "SELU"]


class LeakyReLU(torch.nn.LeakyReLU):
    r"""Leaky ReLU, :math:`x` if :math:`x > 0` else :math:`\text{negative\_slope} \cdot x`,
    run by ``torch.ops.torch_ext.leaky_relu``.

    Args:
        negative_slope: slope for :math:`x \le 0`. Default: ``0.01``.
        inplace: overwrite the input. Default: ``False``.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)


class PReLU(torch.nn.PReLU):
    r"""PReLU, :math:`x` if :math:`x > 0` else :math:`a \cdot x` with a learned slope
    :math:`a` per channel (dim 1) or shared, run by ``torch.ops.torch_ext.prelu``.

    Args:
        num_parameters: 1 (one shared slope) or the number of channels. Default: ``1``.
        init: the slopes' initial value. Default: ``0.25`` (He et al., 2015).

    Attributes:
        weight: the slopes, of shape ``(num_parameters,)``.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)


class ELU(torch.nn.ELU):
    r"""ELU, :math:`x` if :math:`x > 0` else :math:`\alpha (e^x - 1)`, run by
    ``torch.ops.torch_ext.elu``.

    Args:
        alpha: the negative saturation value. Default: ``1.0``.
        inplace: overwrite the input. Default: ``False``.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)


class SELU(torch.nn.SELU):
    r"""SELU, :math:`\lambda x` if :math:`x > 0` else :math:`\lambda\alpha (e^x - 1)`, run
    by ``torch.ops.torch_ext.selu``. Use with LeCun-normal init for self-normalization.

    Args:
        inplace: overwrite the input. Default: ``False``.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.selu(input, self.inplace)
