"""Where a unit's outgoing weights lie in a reader: the entries of its weight (seen as
``[out, in, *kernel]``) that read the unit's input features. For a Linear or a plain
convolution, every output's entries at those inputs; for a grouped convolution (a depthwise
one after a MobileNet or EfficientNet expansion), input feature ``c`` is read only by its
group's outputs, at its place within the group."""

from __future__ import annotations

import torch
from torch import Tensor

from ..monitor.links import weight_out_dim, weight_out_in

__all__ = ["as_out_in", "grouped", "outgoing_mask", "outgoing_weights", "over_kernel"]


def grouped(reader: torch.nn.Module) -> bool:
    return getattr(reader, "groups", 1) != 1


def outgoing_mask(reader: torch.nn.Module, columns: Tensor) -> Tensor:
    """Boolean ``[out, in_per_group]``: True at the weight entries reading input features
    `columns` (indices into the reader's whole input)."""
    weight = weight_out_in(reader)
    out, per_group = weight.shape[0], weight.shape[1]
    groups = getattr(reader, "groups", 1)
    columns = columns.to(weight.device)
    group, place = columns // per_group, columns % per_group
    rows = group[:, None] * (out // groups) + torch.arange(out // groups, device=weight.device)
    mask = torch.zeros(out, per_group, dtype=torch.bool, device=weight.device)
    mask[rows.reshape(-1), place[:, None].expand_as(rows).reshape(-1)] = True
    return mask


def outgoing_weights(reader: torch.nn.Module, mask: Tensor) -> Tensor:
    """The reader's weight (``[out, in, *kernel]``) with every entry outside `mask` zero."""
    weight = weight_out_in(reader)
    return weight * over_kernel(weight, mask)


def as_out_in(value: Tensor, reader: torch.nn.Module) -> Tensor:
    """A tensor shaped like the reader's weight (its optimizer state), viewed as the weight
    is by :func:`weight_out_in`."""
    return value.t() if weight_out_dim(reader) == 1 else value


def over_kernel(tensor: Tensor, mask: Tensor) -> Tensor:
    """`mask` (``[out, in]``) broadcast over `tensor`'s kernel dims."""
    return mask.reshape(*mask.shape, *([1] * (tensor.dim() - 2))).expand_as(tensor)
