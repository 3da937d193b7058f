"""Revive dead units: the lecture notes' remedy (bias +0.01) applied the way ReDo
(Sokar et al., 2023) does it, without changing what the network computes."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import Tensor
from torch.nn.utils import parametrize

from .monitor import (KNOWN_ACTIVATIONS, WEIGHTED_LAYERS, DeadNeuronMonitor, LayerReport,
                      _in_features, _out_features, _world_size)

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
    """One layer to revive: its dead units, the modules around it, and its dead units'
    constant output."""

    name: str
    units: list[int]
    producer: torch.nn.Module
    activation: torch.nn.Module
    readers: list[torch.nn.Module]
    constant: float
    rows: Tensor | None = None  # the fresh incoming weights, drawn before anything is written


@torch.no_grad()
def revive(model: torch.nn.Module, monitor: DeadNeuronMonitor,
           optimizer: torch.optim.Optimizer | None = None) -> dict[str, list[int]]:
    """Re-initialise the dead units that ``monitor`` reports, keeping the network's function.

    For each dead unit of a monitored layer: the incoming weights (its row of the Linear or
    output channel of the convolution feeding the activation) are drawn afresh from that
    layer's own initialisation, its bias is set to +0.01 (the lecture notes' remedy), and
    its outgoing weights (its column in the layers reading the activation) are zeroed, as
    ReDo does. A dead unit's constant output (0 for ReLU; -alpha for a saturated ELU, times
    scale for SELU) is folded into the reading layers' bias, so outputs are unchanged at the
    moment of revival (exactly for ReLU; for ELU-family units up to their residual
    ``alpha * e^z <= grad_eps``) while the unit can learn again.

    The layers around each activation are the ones the monitor traced feeding and reading it
    in the model's first training forward after it attached, checked against every eager
    forward it watched since (see :meth:`DeadNeuronMonitor.links`). A layer is skipped, with
    a warning on the logger ``torch_ext.monitor`` naming it and why, and nothing of it
    written (its modules' parameters and the optimizer's state stay as they were), when
    revive cannot keep the function exactly:

    * its activation module is called at several call sites in a forward (reported as
      ``act``, ``act#1``, ...; the warning names them): links are traced per module, not per
      call site. Likewise a module called several times with ``call_sites="merged"``;
    * it is not a plain Linear/Conv -> activation -> Linear/Conv chain in the traced forward
      (an operation between them, a second use of a tensor, a shape that does not match, a
      grouped reader), or the monitor has no links for it;
    * another forward fed or read it through other modules (a multi-task head), or one of
      its modules was replaced in the model since (``model[2] = nn.Linear(...)``);
    * its activation's dead output is not a known constant (a Leaky ReLU or PReLU unit
      still outputs ``slope * z``), or is a nonzero constant (ELU, SELU, CELU) that a
      reader cannot take: it has no bias, or it is a convolution padding with zeros;
    * the weight or bias of its feeding or reading layers is computed rather than a
      parameter revive can write (:mod:`torch.nn.utils.parametrize` such as
      ``parametrizations.weight_norm``/``spectral_norm``/``orthogonal``, the older
      ``torch.nn.utils.weight_norm``/``spectral_norm``, ``torch.nn.utils.prune``), or the
      layer's class overrides ``forward``;
    * a parameter of those layers is shared with another module, or one of them is
      registered at several places in ``model`` (tied weights would change elsewhere).

    Skipping rather than raising lets the other layers be revived, as a training loop that
    calls ``revive`` periodically wants; every check runs before the first write.

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
    owners = _parameter_owners(model, monitor._model())
    plans = [plan for name, layer in report.layers.items()
             if (plan := _plan(monitor, owners, name, layer)) is not None]
    plans = _revivable_on_every_rank(plans)
    for plan in plans:  # drawn (and broadcast) before any write
        plan.rows = _fresh_rows(plan.producer, _index(plan))
    for plan in plans:
        _revive_layer(plan, optimizer)
    return {plan.name: plan.units for plan in plans}


def _check_model(model: torch.nn.Module, monitor: DeadNeuronMonitor) -> None:
    watched = monitor._model()
    if watched is None or not any(m is watched for m in model.modules()):
        raise ValueError("revive: the monitor does not watch this model (nor one of its submodules)")


def _skip(name: str, why: str) -> None:
    logger.warning("revive: skipped layer '%s': %s", name, why)


def _plan(monitor: DeadNeuronMonitor, owners: _Owners, name: str,
          layer: LayerReport) -> _Plan | None:
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
    constant = _saturated_output(activation)
    # Writability first: reading a parametrized weight (for its shape) computes it, which
    # for spectral_norm in training mode is a power iteration that updates its buffers.
    problem = (_first(_writable_problem(m, owners) for m in (producer, *readers))
               or _shape_problem(layer.units, producer, readers)
               or _dead_output_problem(activation, layer.dead_units)
               or _fold_problem(constant, readers, owners))
    if problem is not None:
        _skip(name, problem)
        return None
    return _Plan(name, list(layer.dead_units), producer, activation, readers, constant)


def _first(problems: Iterable[str | None]) -> str | None:
    return next((p for p in problems if p is not None), None)


def _shape_problem(units: int, producer: torch.nn.Module,
                   readers: list[torch.nn.Module]) -> str | None:
    """The tensors revive indexes must have a slice per unit: the attributes (out_features,
    in_channels, ...) stay behind when a parameter is reassigned."""
    widths = [_out_features(producer), producer.weight.shape[0]]
    if producer.bias is not None:
        widths.append(producer.bias.shape[0])
    for reader in readers:
        widths += [_in_features(reader), reader.weight.shape[1]]
    if any(width != units for width in widths):
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


def _fold_problem(constant: float, readers: list[torch.nn.Module],
                  owners: _Owners) -> str | None:
    """Why a reader cannot take the dead units' constant output into its bias exactly."""
    if constant == 0.0:
        return None
    for reader in readers:
        name = f"'{owners.name(reader)}'"
        if reader.bias is None:
            return (f"its dead units output {constant:.4g} and its reader {name} has no bias to "
                    "take that when their outgoing weights are zeroed")
        if _pads_with_zeros(reader):
            return (f"its dead units output {constant:.4g} and its reader {name} pads with zeros: "
                    "at the borders no bias keeps its output")
    return None


def _pads_with_zeros(reader: torch.nn.Module) -> bool:
    """Whether a convolution reads zeros beyond its input's borders (padding that copies the
    input, or none, repeats a constant input exactly)."""
    if isinstance(reader, torch.nn.Linear) or reader.padding_mode != "zeros":
        return False
    if reader.padding == "same":
        return any(k > 1 for k in reader.kernel_size)
    return reader.padding != "valid" and any(p > 0 for p in reader.padding)


@dataclass
class _Owners:
    """Who holds what in the model revive writes into, to refuse tied weights."""

    names: dict[int, str]  # id(module) -> its name in the watched model (as in the report)
    places: dict[int, list[str]]  # id(module) -> every name it has in the model
    holders: dict[int, list[str]]  # id(parameter) -> every module name holding it

    def name(self, module: torch.nn.Module) -> str:
        return self.names.get(id(module), type(module).__name__)


def _parameter_owners(model: torch.nn.Module, watched: torch.nn.Module) -> _Owners:
    places: dict[int, list[str]] = {}
    holders: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        places.setdefault(id(module), []).append(name)
        for param in module._parameters.values():
            if param is not None:
                holders.setdefault(id(param), []).append(name)
    names = {id(module): name for name, module in watched.named_modules()}
    return _Owners(names, places, holders)


# forward (and the convolution it calls) as torch.nn defines them: a subclass that overrides
# them may use its weight otherwise (DropConnect, fake quantization, ...).
_PLAIN_FORWARDS = {getattr(cls, attr) for cls in WEIGHTED_LAYERS
                   for attr in ("forward", "_conv_forward") if hasattr(cls, attr)}


def _writable_problem(module: torch.nn.Module, owners: _Owners) -> str | None:
    """Why revive cannot write `module`'s weight and bias as the plain parameters of this one
    module, or None."""
    name = f"'{owners.name(module)}'"
    computed = _computed_tensor(module)
    if computed is not None:
        return f"{name} computes its {computed}; revive writes only plain parameters"
    kind = type(module)
    if any(getattr(kind, attr, None) not in (None, *_PLAIN_FORWARDS)
           for attr in ("forward", "_conv_forward")):
        return (f"{name} overrides forward ({kind.__name__}): revive cannot tell how it uses its "
                "weight")
    places = owners.places.get(id(module), [])
    if len(places) > 1:
        return (f"{name} is registered {len(places)} times in the model ({places}): revive would "
                "change it at every place")
    for attr, param in module._parameters.items():
        others = [n for n in owners.holders.get(id(param), []) if n not in places]
        if param is not None and others:
            return (f"{name} shares its {attr} with '{others[0]}' (tied parameters): revive would "
                    "change that module too")
    return None


def _computed_tensor(module: torch.nn.Module) -> str | None:
    """How `module`'s weight or bias is computed from other tensors, or None when both are
    its own parameters."""
    if parametrize.is_parametrized(module):
        return f"{' and '.join(module.parametrizations)} through torch.nn.utils.parametrize"
    for attr in ("weight", "bias"):
        value = getattr(module, attr, None)
        if value is not None and module._parameters.get(attr) is not value:
            return f"{attr} {_computed_by(module, attr)}"
    return None


def _computed_by(module: torch.nn.Module, attr: str) -> str:
    """The forward pre-hook that recomputes `attr` (weight_norm's WeightNorm, spectral_norm's
    SpectralNorm, prune's pruning method), as far as it names itself."""
    for hook in module._forward_pre_hooks.values():
        if attr in (getattr(hook, "name", None), getattr(hook, "_tensor_name", None)):
            return f"in its {type(hook).__name__} forward pre-hook"
    return "from other tensors: it is not a parameter of the module"


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


def _index(plan: _Plan) -> Tensor:
    return torch.tensor(plan.units, device=plan.producer.weight.device)


def _revive_layer(plan: _Plan, optimizer: torch.optim.Optimizer | None) -> None:
    producer = plan.producer
    dead = _index(plan)
    producer.weight[dead] = plan.rows
    if producer.bias is not None:
        producer.bias[dead] = REVIVED_BIAS
    for reader in plan.readers:
        _fold_into_bias(reader, dead, plan.constant)
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
    if constant == 0.0:
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
