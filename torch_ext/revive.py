"""Revive dead units: the lecture notes' remedy (bias +0.01) applied the way ReDo
(Sokar et al., 2023) does it, without changing what the network computes."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .monitor import (KNOWN_ACTIVATIONS, DeadNeuronMonitor, LayerReport, _in_features,
                      _out_features, _world_size)

__all__ = ["revive"]

logger = logging.getLogger("torch_ext.monitor")

REVIVED_BIAS = 0.01  # the lecture notes' remedy: a small positive bias starts the unit active

# Output of a dead (saturated) unit: f(z) for z -> -inf.
_SATURATED_OUTPUT = {
    torch.nn.ELU: lambda m: -m.alpha,
    torch.nn.CELU: lambda m: -m.alpha,
    torch.nn.SELU: lambda m: -1.0507009873554805 * 1.6732632423543772,
}


def _saturated_output(activation: torch.nn.Module) -> float:
    for kind, value in _SATURATED_OUTPUT.items():
        if isinstance(activation, kind):
            return value(activation)
    return 0.0  # ReLU, and Leaky ReLU / PReLU units with slope 0


@dataclass
class _Plan:
    """One layer to revive: its dead units and the modules around it."""

    name: str
    units: list[int]
    producer: torch.nn.Module
    activation: torch.nn.Module
    readers: list[torch.nn.Module]


@torch.no_grad()
def revive(model: torch.nn.Module, monitor: DeadNeuronMonitor,
           optimizer: torch.optim.Optimizer | None = None) -> dict[str, list[int]]:
    """Re-initialise the dead units that ``monitor`` reports, keeping the network's function.

    For each dead unit of a monitored layer: the incoming weights (its row of the Linear or
    output channel of the convolution feeding the activation) are drawn afresh from that
    layer's own initialisation, its bias is set to +0.01 (the lecture notes' remedy), and
    its outgoing weights (its column in the layers reading the activation) are zeroed, as
    ReDo does. A dead unit's constant output (0 for ReLU; -alpha for a saturated ELU) is
    folded into the reading layers' bias, so outputs are unchanged at the moment of
    revival (exactly for ReLU; for ELU-family units up to their residual
    ``alpha * e^z <= grad_eps``; convolutions with zero padding differ at borders for
    ELU-family units) while the unit can learn again.

    The layers around each activation are the ones the monitor saw feeding and reading it in
    the model's first training forward after it attached. A layer that is not a plain
    Linear/Conv -> activation -> Linear/Conv chain there (an operation between them, a
    second use of a tensor, a shape that does not match), whose activation's dead output is
    not a known constant, or whose links the monitor does not have, is skipped with a
    warning naming it and why.

    Args:
        model: the model the monitor watches (or one containing it, e.g. its DDP wrapper).
        monitor: the monitor whose :meth:`~DeadNeuronMonitor.report` names the dead units.
        optimizer: if given, its per-parameter state of the revived slices (Adam's
            ``exp_avg``/``exp_avg_sq``, SGD's ``momentum_buffer``: every state tensor shaped
            like its parameter) is reset as for a fresh parameter, zero for those: the
            producer's weight rows and bias entries and the readers' weight columns. Per-
            parameter step counts are kept. Default: ``None``.

    Under ``torch.distributed`` every rank must call it (the report is collective): the
    re-drawn weights are broadcast from rank 0, so replicas stay identical, and a layer is
    revived only if every rank can revive it.

    Returns:
        ``{layer name: revived units}``.
    """
    _check_model(model, monitor)
    report = monitor.report()
    plans = [plan for name, layer in report.layers.items()
             if (plan := _plan(monitor, name, layer)) is not None]
    plans = _revivable_on_every_rank(plans)
    for plan in plans:
        _revive_layer(plan, optimizer)
    return {plan.name: plan.units for plan in plans}


def _check_model(model: torch.nn.Module, monitor: DeadNeuronMonitor) -> None:
    watched = monitor._model()
    if watched is None or not any(m is watched for m in model.modules()):
        raise ValueError("revive: the monitor does not watch this model (nor one of its submodules)")


def _skip(name: str, why: str) -> None:
    logger.warning("revive: skipped layer '%s': %s", name, why)


def _plan(monitor: DeadNeuronMonitor, name: str, layer: LayerReport) -> _Plan | None:
    """What reviving layer `name` touches, or None (with a warning) when it cannot be done
    exactly."""
    if not layer.dead:
        return None
    if layer.dead_units is None:
        _skip(name, "the report has no per-unit detail")
        return None
    problem = monitor.link_problem(name)
    if problem is not None:
        _skip(name, problem)
        return None
    (producer, readers), activation = monitor.links(name), monitor.module(name)
    if producer is None or activation is None or not readers:
        _skip(name, "the model no longer holds the layers the monitor saw around it")
        return None
    problem = (_shape_problem(layer.units, producer, readers)
               or _dead_output_problem(activation, layer.dead_units))
    if problem is not None:
        _skip(name, problem)
        return None
    return _Plan(name, list(layer.dead_units), producer, activation, readers)


def _shape_problem(units: int, producer: torch.nn.Module, readers: list[torch.nn.Module]) -> str | None:
    if _out_features(producer) != units or any(_in_features(r) != units for r in readers):
        return "the layers around it changed shape since the monitor saw them"
    return None


def _dead_output_problem(activation: torch.nn.Module, dead: list[int]) -> str | None:
    """Why a dead unit's output is not a constant revive can fold away, or None."""
    if not isinstance(activation, KNOWN_ACTIVATIONS):
        return (f"the output of a dead {type(activation).__name__} unit is unknown (revive knows "
                "ReLU, LeakyReLU, PReLU, ELU, SELU and CELU)")
    if isinstance(activation, torch.nn.LeakyReLU) and activation.negative_slope != 0:
        return ("its dead units still output negative_slope * z, which zeroing their outgoing "
                "weights would drop")
    if isinstance(activation, torch.nn.PReLU):
        weight = activation.weight.detach()
        slopes = weight if weight.numel() == 1 else weight[torch.tensor(dead, device=weight.device)]
        if bool(torch.any(slopes != 0)):
            return ("its dead units still output slope * z, which zeroing their outgoing weights "
                    "would drop")
    return None


def _revivable_on_every_rank(plans: list[_Plan]) -> list[_Plan]:
    """The plans every rank made (all of them in one process): each revived layer takes a
    broadcast, so the ranks must agree on the list."""
    if _world_size() == 1:
        return plans
    gathered: list[Any] = [None] * _world_size()
    torch.distributed.all_gather_object(gathered, [plan.name for plan in plans])
    common = set.intersection(*(set(names) for names in gathered))
    for plan in plans:
        if plan.name not in common:
            _skip(plan.name, "another rank cannot revive it (see that rank's warning)")
    return [plan for plan in plans if plan.name in common]


def _revive_layer(plan: _Plan, optimizer: torch.optim.Optimizer | None) -> None:
    producer = plan.producer
    dead = torch.tensor(plan.units, device=producer.weight.device)
    producer.weight[dead] = _fresh_rows(producer, dead)
    if producer.bias is not None:
        producer.bias[dead] = REVIVED_BIAS
    constant = _saturated_output(plan.activation)
    for reader in plan.readers:
        _fold_into_bias(reader, dead, constant)
        reader.weight[:, dead] = 0.0
    if optimizer is not None:
        _reset_optimizer_state(optimizer, producer.weight, dead, dim=0)
        if producer.bias is not None:
            _reset_optimizer_state(optimizer, producer.bias, dead, dim=0)
        for reader in plan.readers:
            _reset_optimizer_state(optimizer, reader.weight, dead, dim=1)


def _fresh_rows(producer: torch.nn.Module, dead: Tensor) -> Tensor:
    """The dead units' incoming weights, drawn by the layer's own initialisation; under
    torch.distributed rank 0's draw, since every rank's generator differs."""
    fresh = copy.deepcopy(producer)
    fresh.reset_parameters()
    rows = fresh.weight[dead].contiguous()
    if _world_size() > 1:
        torch.distributed.broadcast(rows, src=0)
    return rows


def _fold_into_bias(reader: torch.nn.Module, dead: Tensor, constant: float) -> None:
    """Add the dead units' constant output, times their outgoing weights, to the reader's
    bias: what those weights contributed before they are zeroed."""
    if constant == 0.0 or reader.bias is None:
        return
    outgoing = reader.weight[:, dead]
    reader.bias += constant * outgoing.sum(dim=[d for d in range(outgoing.dim()) if d != 0])


def _fresh_state_fill(optimizer: torch.optim.Optimizer, key: str, group: dict[str, Any]) -> Any:
    """The value a fresh parameter's state entry `key` starts from: zero for moments and
    momentum buffers, the few exceptions of torch.optim named here."""
    if isinstance(optimizer, torch.optim.Rprop) and key == "step_size":
        return group["lr"]
    if isinstance(optimizer, torch.optim.Adagrad) and key == "sum":
        return group["initial_accumulator_value"]
    return 0.0


def _reset_optimizer_state(optimizer: torch.optim.Optimizer, param: Tensor, index: Tensor,
                           dim: int) -> None:
    """Reset the slices `index` along `dim` of every state tensor of `param` shaped like it."""
    state = optimizer.state.get(param)
    if not state:
        return
    group = next((g for g in optimizer.param_groups if any(p is param for p in g["params"])), {})
    for key, value in state.items():
        if not isinstance(value, Tensor) or value.shape != param.shape:
            continue
        index_here = index.to(value.device)
        if isinstance(optimizer, torch.optim.ASGD) and key == "ax":  # the parameter's average
            fresh = param.index_select(dim, index).to(value.device, value.dtype)
            value.index_copy_(dim, index_here, fresh)
        else:
            value.index_fill_(dim, index_here, _fresh_state_fill(optimizer, key, group))
