"""What reviving a layer writes: fresh incoming weights for the dead units (scaled down to
their live peers), a small positive bias or the norm's fresh entries, zeroed outgoing weights with
the dead units' constant output folded into the readers' bias, and the optimizer's state
of those slices."""

from __future__ import annotations

import torch
from torch import Tensor

from ..monitor.distributed import world_size
from ..monitor.layer_kinds import hf_conv1d_class
from ..monitor.links import weight_out_dim, weight_out_in
from .optimizer_state import reset_optimizer_state, reset_reader_state
from .outgoing import grouped, outgoing_mask, outgoing_weights, over_kernel
from .plan import Plan

__all__ = ["REVIVED_BIAS", "fresh_rows", "revive_layer", "unit_index"]

REVIVED_BIAS = 0.01  # the lecture notes' remedy: a small positive bias starts the unit active


def unit_index(plan: Plan) -> Tensor:
    return torch.tensor(plan.units, device=plan.producer.weight.device)


def revive_layer(plan: Plan, optimizer: torch.optim.Optimizer | None) -> None:
    producer, norm = plan.producer, plan.norm
    dead = unit_index(plan)
    weight_out_in(producer)[dead] = plan.rows
    if producer.bias is not None:  # behind a norm, the norm's bias carries the remedy
        producer.bias[dead] = 0.0 if norm is not None else REVIVED_BIAS
    if norm is not None:
        _reset_norm(norm, dead, plan.norm_axis)
    outgoing = []
    for reader, path in plan.readers:
        columns = path.layout.indices(plan.width, dead)
        mask = outgoing_mask(reader, columns)
        _fold_into_bias(reader, mask, plan.constant)
        weight = weight_out_in(reader)
        weight.masked_fill_(over_kernel(weight, mask), 0.0)
        outgoing.append((reader, columns, mask))
    if optimizer is None:
        return
    reset_optimizer_state(optimizer, producer.weight, dead, dim=weight_out_dim(producer))
    if producer.bias is not None:
        reset_optimizer_state(optimizer, producer.bias, dead, dim=0)
    for param in (getattr(norm, "weight", None), getattr(norm, "bias", None)):
        if isinstance(param, Tensor):
            reset_optimizer_state(optimizer, param, dead, dim=plan.norm_axis)
    for reader, columns, mask in outgoing:
        if grouped(reader):  # a unit's entries are its group's outputs only
            reset_reader_state(optimizer, reader, mask)
        else:
            reset_optimizer_state(optimizer, reader.weight, columns, dim=1 - weight_out_dim(reader))


def _reset_norm(norm: torch.nn.Module, dead: Tensor, axis: int) -> None:
    """Start the units' normalized pre-activation from the notes' remedy: weight 1, bias
    +0.01, and running statistics of a fresh layer (mean 0, variance 1)."""
    for attr, value in (("weight", 1.0), ("bias", REVIVED_BIAS)):
        param = getattr(norm, attr, None)
        if isinstance(param, Tensor):
            param.index_fill_(axis, dead.to(param.device), value)
    for attr, value in (("running_mean", 0.0), ("running_var", 1.0)):
        buffer = getattr(norm, attr, None)
        if isinstance(buffer, Tensor):
            buffer.index_fill_(0, dead.to(buffer.device), value)


def fresh_rows(producer: torch.nn.Module, dead: Tensor) -> Tensor:
    """The dead units' incoming weights, drawn by the layer's own initialisation and each
    scaled down to the mean norm of the layer's live rows where larger; under
    torch.distributed rank 0's draw, since every rank's generator differs.

    The draw is made in a bare copy of the layer holding only as many rows as there are
    dead units (fan-in, and so the init's bound, does not depend on the rows): no copy of
    the whole weight, nor of the hooks and what they hold. The scaling is ReDo's intent (a
    reset unit starts no larger than its peers): a model initialised otherwise than its
    layers' ``reset_parameters`` (Hugging Face's std 0.02) would get rows far larger than the
    rest."""
    rows = _drawn_rows(producer, len(dead)).contiguous()
    if world_size() > 1:
        torch.distributed.broadcast(rows, src=0)
    return _scaled_to_live_rows(rows, weight_out_in(producer).detach(), dead)


def _drawn_rows(producer: torch.nn.Module, count: int) -> Tensor:
    """`count` rows of incoming weights, as ``[count, in, *kernel]``, drawn by the layer's own
    initialisation: ``reset_parameters`` of a bare copy holding `count` rows, or for Hugging
    Face's Conv1D (which has none) its constructor's draw."""
    weight = producer.weight
    conv1d = hf_conv1d_class()
    if conv1d is not None and isinstance(producer, conv1d):
        drawn = conv1d(count, producer.nx).weight.detach()
        return drawn.t().to(device=weight.device, dtype=weight.dtype)
    fresh = object.__new__(type(producer))
    fresh.__dict__.update(producer.__dict__)
    fresh._parameters = {
        name: None
        if param is None
        else torch.nn.Parameter(param.new_empty((count, *param.shape[1:])), param.requires_grad)
        for name, param in producer._parameters.items()
    }
    fresh.reset_parameters()
    return fresh.weight.detach()


def _scaled_to_live_rows(rows: Tensor, weight: Tensor, dead: Tensor) -> Tensor:
    """`rows` (one per dead unit, as the weight's rows) each scaled down to the mean norm of
    the weight's other rows where it is larger; unchanged where no row is live or the live
    rows are all zero. Only down: under a high learning rate the live rows grow well past
    their init, and fresh rows that large start the revived units far from a fresh start
    (the study's MLP lost 8 points of accuracy with them)."""
    live = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
    live[dead] = False
    if not live.any():
        return rows
    target = weight[live].flatten(1).float().norm(dim=1).mean()
    norms = rows.flatten(1).float().norm(dim=1)
    if target == 0 or not bool((norms > 0).all()):
        return rows
    scale = (target / norms).clamp(max=1.0).to(rows.dtype)
    return rows * scale.reshape(-1, *([1] * (rows.dim() - 1)))


def _fold_into_bias(reader: torch.nn.Module, mask: Tensor, constant: float) -> None:
    """Add the dead units' constant output, times their outgoing weights (under `mask`), to
    the reader's bias: what those weights contributed before they are zeroed."""
    if constant == 0.0:
        return
    outgoing = outgoing_weights(reader, mask)
    reader.bias += constant * outgoing.sum(dim=[d for d in range(outgoing.dim()) if d != 0])
