"""The optimizer's per-parameter state of revived slices: what a fresh parameter would have
(zero moments), or, for the states that scale a step by the gradient's history, their
peers' mean, so a revived entry steps as its peers do."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .outgoing import as_out_in, over_kernel

__all__ = ["reset_optimizer_state", "reset_reader_state"]


# Optimizer state that scales the step by the gradient's history (Adam's second moment, its
# AMSGrad maximum, Adamax's infinity norm, Adagrad's sum, RMSprop's and Adadelta's averages).
# Zeroed under a step count that keeps running (bias correction is per parameter, not per
# slice), a revived entry would step several times further than its peers (Adam: up to
# (1 - beta1) / sqrt(1 - beta2) ~ 3x at once, more over the next steps): it takes its peers'
# mean instead, so it steps as they do.
_SCALE_STATES = {"exp_avg_sq", "max_exp_avg_sq", "exp_inf", "sum", "square_avg", "acc_delta"}


def _fresh_state_fill(optimizer: torch.optim.Optimizer, key: str, group: dict[str, Any]) -> Any:
    """The value a fresh parameter's state entry `key` starts from: zero for moments and
    momentum buffers, the few exceptions of torch.optim named here."""
    if isinstance(optimizer, torch.optim.Rprop) and key == "step_size":
        return group["lr"]
    if isinstance(optimizer, torch.optim.Adagrad) and key == "sum":
        return group["initial_accumulator_value"]
    return 0.0


def _peers_mean(value: Tensor, index: Tensor, dim: int) -> Tensor | None:
    """The mean of `value` over the slices along `dim` that are not `index` (the ones kept),
    shaped as one slice; None when every slice is revived."""
    kept = torch.ones(value.shape[dim], dtype=torch.bool, device=value.device)
    kept[index] = False
    if not bool(kept.any()):
        return None
    return value[(slice(None),) * dim + (kept,)].mean(dim, keepdim=True)


def reset_optimizer_state(
    optimizer: torch.optim.Optimizer, param: Tensor, index: Tensor, dim: int
) -> None:
    """Reset the slices `index` along `dim` of every state tensor of `param` shaped like it:
    as for a fresh parameter, except the step-scaling states (see _SCALE_STATES)."""
    state = optimizer.state.get(param)
    if not state:
        return
    index = index.to(param.device)  # the slices' indices come from another layer's device
    group = next((g for g in optimizer.param_groups if any(p is param for p in g["params"])), {})
    for key, value in state.items():
        if not isinstance(value, Tensor) or value.shape != param.shape:
            continue
        index_here = index.to(value.device)
        peers = _peers_mean(value, index_here, dim) if key in _SCALE_STATES else None
        if isinstance(optimizer, torch.optim.ASGD) and key == "ax":  # the parameter's average
            fresh = param.index_select(dim, index).to(value.device, value.dtype)
            value.index_copy_(dim, index_here, fresh)
        elif peers is not None:
            shape = list(value.shape)
            shape[dim] = len(index_here)
            value.index_copy_(dim, index_here, peers.expand(shape).contiguous())
        else:
            value.index_fill_(dim, index_here, _fresh_state_fill(optimizer, key, group))


def _peers_of_entries(view: Tensor, where: Tensor) -> Tensor | None:
    """For each entry, the mean of its output's entries outside `where` at the same kernel
    place, or of every output's where an output has none (a depthwise reader's row is one
    unit's); None when every entry is under `where`."""
    kept = (~where).to(view.dtype)
    if not bool(kept.any()):
        return None
    row_count = kept.sum(1, keepdim=True)
    per_row = (view * kept).sum(1, keepdim=True) / row_count.clamp(min=1)
    overall = (view * kept).sum((0, 1), keepdim=True) / kept.sum((0, 1), keepdim=True).clamp(min=1)
    return torch.where(row_count > 0, per_row, overall).expand_as(view)


def reset_reader_state(
    optimizer: torch.optim.Optimizer, reader: torch.nn.Module, mask: Tensor
) -> None:
    """Reset the state entries of a reader's weight under `mask` (``[out, in]``, see
    outgoing.py): as :func:`reset_optimizer_state` does for whole slices, for the entries a
    grouped reader keeps per unit."""
    param = reader.weight
    state = optimizer.state.get(param)
    if not state:
        return
    group = next((g for g in optimizer.param_groups if any(p is param for p in g["params"])), {})
    for key, value in state.items():
        if not isinstance(value, Tensor) or value.shape != param.shape:
            continue
        view = as_out_in(value, reader)
        where = over_kernel(view, mask.to(value.device))
        if isinstance(optimizer, torch.optim.ASGD) and key == "ax":
            fresh = as_out_in(param.detach(), reader).to(value.device, value.dtype)
            view.copy_(torch.where(where, fresh, view))
            continue
        peers = _peers_of_entries(view, where) if key in _SCALE_STATES else None
        if peers is not None:
            view.copy_(torch.where(where, peers, view))
        else:
            view.masked_fill_(where, _fresh_state_fill(optimizer, key, group))
