"""What reviving a layer touches (its dead units, the modules around them, their constant
output), and every reason it cannot be done exactly, checked before anything is written."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parametrize

from ..activations import ACTIVATIONS, activation_of
from ..monitor import DeadNeuronMonitor, LayerReport
from ..monitor.counting import activation_rule
from ..monitor.distributed import world_size
from ..monitor.layer_kinds import hf_conv1d_class
from ..monitor.links import (
    NORM_LAYERS,
    WEIGHTED_LAYERS,
    Reader,
    in_features,
    out_features,
    weight_out_in,
)
from .outgoing import outgoing_mask, outgoing_weights

__all__ = [
    "Owners",
    "Plan",
    "logger",
    "parameter_owners",
    "plan_layer",
    "revivable_on_every_rank",
    "skip_layer",
    "units_to_revive",
]

#: What revive(select=...) re-initialises in a layer.
SELECTIONS = ("dead", "tau_dormant", "dead_or_tau_dormant")

logger = logging.getLogger("torch_ext.revive")


def _saturated_output(activation: torch.nn.Module) -> float:
    """What a dead unit outputs (f(z) for z -> -inf): 0 for ReLU and for Leaky ReLU / PReLU
    units of slope 0 (see _dead_output_problem), -alpha for ELU, ..."""
    spec = activation_of(activation)
    constant = None if spec is None else spec.dead_output(activation)
    return 0.0 if constant is None else constant


@dataclass
class Plan:
    """One layer to revive: its dead units, the modules around it, and its dead units'
    constant output."""

    name: str
    units: list[int]
    width: int  # the layer's unit count
    producer: torch.nn.Module
    norm: torch.nn.Module | None
    norm_axis: int  # the axis of the norm's parameters that holds the units
    activation: torch.nn.Module
    readers: list[tuple[torch.nn.Module, Reader]]
    constant: float
    inexact: list[str]
    rows: Tensor | None = None  # the fresh incoming weights, drawn before anything is written
    # With exact=False, for units whose output is not a constant revive can fold away: the
    # most a reader's output can change (on any sample, or on average; see _drift_note).
    change_bound: float | None = None


def units_to_revive(layer: LayerReport, select: str) -> list[int] | str:
    """The units `select` names in `layer` (sorted), or why there are none to take."""
    if select == "dead":
        return list(layer.dead_units)
    if layer.tau_dormant_units is None:
        return (
            "the report has no tau-dormant verdict for it (the monitor needs tau=, the layer "
            "an output shaped as its input, and the window finite outputs)"
        )
    if select == "tau_dormant":
        return list(layer.tau_dormant_units)
    return sorted({*layer.dead_units, *layer.tau_dormant_units})


@dataclass
class _Drift:
    """Units whose output is not a known constant: how large it may be per unit, on any
    sample (`peak`: the sup of |f| over the activation's dead set, for dead units) and on
    average over the window (`mean`: the largest mean |h|, with tau=)."""

    peak: float | None
    mean: float | None
    what: str  # "dead GELU units", ...


def _drift(
    monitor: DeadNeuronMonitor,
    activation: torch.nn.Module,
    layer: LayerReport,
    units: list[int],
    readers: list[tuple[torch.nn.Module, Reader]],
) -> _Drift | None:
    """None where the units output a constant revive can fold: dead units of the ReLU family
    (as before), and dead units of another activation whose dead set outputs exactly 0
    (ReLU6 or ReLU² below 0, a shrink's band); else how far from 0 their output may be."""
    rule = activation_rule(activation)
    all_dead = set(units) <= set(layer.dead_units)
    if all_dead and rule is None:
        return None  # the ReLU family: _dead_output_problem decides
    peak = None
    if all_dead:
        # Never active (z <= 0 on every sample): only the dead set's part below 0 was hit.
        active = layer.active_counts
        never_active = active is not None and all(active[u] == 0 for u in units)
        peak = rule.dead_output_bound(monitor.grad_eps, nonpositive=never_active)
        if peak == 0.0:
            return None
    mean = None if layer.mean_abs is None else max(layer.mean_abs[u] for u in units)
    if not all(_mean_reaches(reader, path) for reader, path in readers):
        mean = None
    if any(path.gated for _, path in readers):  # times another branch: only 0 stays bounded
        peak, mean = None, (mean if mean == 0.0 else None)
    if any(path.unbounded for _, path in readers):  # an Lp pool sums its window
        peak = mean = None
    scale = max((path.scale for _, path in readers), default=1.0)  # dropout's 1/(1-p)
    peak = None if peak is None else peak * scale
    mean = None if mean is None else mean * scale
    kind = layer.condition if all_dead else "tau-dormant"
    return _Drift(peak, mean, f"{kind} {type(activation).__name__} units")


def _mean_reaches(reader: torch.nn.Module, path: Reader) -> bool:
    """Whether the units' mean |h| over the window bounds the mean |h| a reader's output
    reads: each of its outputs must read each unit at one place, over as many places as the
    activation has. Not through a max pool (it passes the larger values), nor when the units
    lie at several places of the reader's input (a flatten of their positions), nor when a
    convolution reads fewer places than there are (stride, no padding: the places it reads
    may hold more than the mean) or pads with other values than zeros."""
    if path.max_pooled or path.layout.outer * path.layout.block > 1:
        return False
    if not isinstance(reader, torch.nn.modules.conv._ConvNd):
        return True  # Linear, Conv1D: one value per unit and place
    kernel, dilation = reader.kernel_size, reader.dilation
    same = reader.padding == "same" or (
        not isinstance(reader.padding, str)
        and all(2 * p == d * (k - 1) for p, d, k in zip(reader.padding, dilation, kernel))
    )
    return same and reader.padding_mode == "zeros" and all(s == 1 for s in reader.stride)


def _drift_problem(drift: _Drift) -> str | None:
    """Why no bound on the change can be stated (then revive refuses, even inexactly)."""
    if drift.peak is not None and math.isinf(drift.peak) and drift.mean is None:
        return f"its {drift.what} still output slope * z, unbounded, which zeroing drops"
    if drift.peak is None and drift.mean is None:
        return (
            f"no bound on what zeroing the outgoing weights of its {drift.what} changes: "
            "their mean |h| is unknown or does not carry to the reader (through a max or Lp "
            "pool, a gate, a flatten of their positions, a strided or unpadded convolution)"
        )
    return None


def _reader_weight(readers: list, width: int, units: list[int]) -> float:
    """The largest sum of |w| over the units' outgoing weights into one reader output."""
    largest = 0.0
    for reader, path in readers:
        columns = path.layout.indices(width, torch.tensor(units, device=reader.weight.device))
        weights = outgoing_weights(reader, outgoing_mask(reader, columns)).detach().abs()
        per_output = weights.sum(dim=[d for d in range(weights.dim()) if d != 0])
        largest = max(largest, float(per_output.max()) if per_output.numel() else 0.0)
    return largest


def _drift_note(drift: _Drift, weight: float) -> tuple[str, float]:
    """What reviving drops, in words, and the bound on a reader output's change: on any
    sample where the units' peak output is known, else on average over the window."""
    parts = []
    if drift.peak is not None and math.isfinite(drift.peak):
        parts.append(
            f"by at most {drift.peak * weight:.3g} on any sample (they output up to "
            f"{drift.peak:.3g} where they pass no gradient)"
        )
    if drift.mean is not None:
        parts.append(
            f"by at most {drift.mean * weight:.3g} on average over the window's forwards "
            f"(mean |h| up to {drift.mean:.3g}, with the weights they ran with)"
        )
    finite = drift.peak if drift.peak is not None and math.isfinite(drift.peak) else None
    bound = (finite if finite is not None else drift.mean) * weight
    note = (
        f"zeroing the outgoing weights of its {drift.what} changes a reader's output "
        + " and ".join(parts)
    )
    return note, bound


def skip_layer(name: str, why: str, skipped: dict[str, str]) -> None:
    logger.warning("revive: skipped layer '%s': %s", name, why)
    skipped[name] = why


def plan_layer(
    monitor: DeadNeuronMonitor,
    owners: Owners,
    name: str,
    layer: LayerReport,
    exact: bool,
    units: list[int] | None = None,
) -> Plan | str:
    """What reviving `units` (default: the dead ones) of layer `name` touches, or why it
    cannot be done right."""
    if layer.dead_units is None:
        return "the report has no per-unit detail"
    units = list(layer.dead_units) if units is None else units
    problem = monitor.link_problem(name)
    if problem is not None:
        return problem
    link = monitor.link(name)
    producer, activation = link.producer[1](), monitor.module(name)
    norm = link.norm[1]() if link.norm is not None else None
    readers = [(reader.module(), reader) for reader in link.readers]
    drift = _drift(monitor, activation, layer, units, readers)
    constant = _saturated_output(activation) if drift is None else 0.0
    # Writability first: reading a parametrized weight (for its shape) computes it, which
    # for spectral_norm in training mode is a power iteration that updates its buffers.
    modules = [m for m in (producer, norm, *(r for r, _ in readers)) if m is not None]
    problem = (
        _first(_writable_problem(m, owners) for m in modules)
        or _shape_problem(link.units, producer, readers)
        or (_drift_problem(drift) if drift is not None else None)
        or (
            _dead_output_problem(activation, units)
            if drift is None and activation_rule(activation) is None
            else None
        )
        or _fold_problem(constant, readers, owners)
    )
    if problem is not None:
        return problem
    inexact = list(link.inexact)
    change = None
    if drift is not None:
        note, change = _drift_note(drift, _reader_weight(readers, link.units, units))
        inexact.append(note)
    if inexact and exact:
        return (
            "reviving it would change the network's function: "
            + "; ".join(inexact)
            + " (revive(..., exact=False) revives anyway)"
        )
    axis = _norm_axis(norm, link.unit_dim, link.input_ndim)
    return Plan(
        name,
        units,
        link.units,
        producer,
        norm,
        axis,
        activation,
        readers,
        constant,
        inexact,
        change_bound=change,
    )


def _norm_axis(norm: torch.nn.Module | None, unit_dim: int, ndim: int) -> int:
    """The axis of `norm`'s affine parameters that holds the units (the normalized dims of a
    LayerNorm are its parameters' axes; BatchNorm and GroupNorm have one per channel)."""
    if isinstance(norm, torch.nn.LayerNorm):
        return unit_dim - (ndim - len(norm.normalized_shape))
    return 0


def _first(problems: Iterable[str | None]) -> str | None:
    return next((p for p in problems if p is not None), None)


def _shape_problem(
    units: int, producer: torch.nn.Module, readers: list[tuple[torch.nn.Module, Reader]]
) -> str | None:
    """The tensors revive indexes must have a slice per unit: the attributes (out_features,
    in_channels, ...) stay behind when a parameter is reassigned."""
    widths = [out_features(producer) - units, weight_out_in(producer).shape[0] - units]
    if producer.bias is not None:
        widths.append(producer.bias.shape[0] - units)
    for reader, path in readers:
        width = path.layout.width(units)
        groups = getattr(reader, "groups", 1)
        widths += [in_features(reader) - width, weight_out_in(reader).shape[1] * groups - width]
    if any(widths):
        return "the layers around it changed shape since the monitor saw them"
    return None


def _dead_output_problem(activation: torch.nn.Module, dead: list[int]) -> str | None:
    """Why a dead unit's output is not a constant revive can fold away, or None."""
    spec = activation_of(activation)
    if spec is None:
        return (
            f"the output of a dead {type(activation).__name__} unit is unknown (revive knows "
            f"{', '.join(ACTIVATIONS)})"
        )
    if isinstance(activation, torch.nn.PReLU):
        weight = activation.weight.detach()
        slopes = weight if weight.numel() == 1 else weight[torch.tensor(dead, device=weight.device)]
        if bool(torch.any(slopes != 0)):
            return (
                "its dead units still output slope * z, which zeroing their outgoing weights "
                "would drop"
            )
    elif spec.dead_output(activation) is None:
        return (
            "its dead units still output negative_slope * z, which zeroing their outgoing "
            "weights would drop"
        )
    return None


def _fold_problem(
    constant: float, readers: list[tuple[torch.nn.Module, Reader]], owners: Owners
) -> str | None:
    """Why a reader cannot take the dead units' constant output into its bias exactly."""
    if constant == 0.0:
        return None
    for reader, path in readers:
        name = f"'{owners.name(reader)}'"
        if reader.bias is None:
            return (
                f"its dead units output {constant:.4g} and its reader {name} has no bias to "
                "take that when their outgoing weights are zeroed"
            )
        if _pads_with_zeros(reader):
            return (
                f"its dead units output {constant:.4g} and its reader {name} pads with zeros: "
                "at the borders no bias keeps its output"
            )
        if not path.keeps_constant:
            return (
                f"its dead units output {constant:.4g} and the way to its reader {name} does "
                "not keep a constant (dropout in training, an average over padding, a gate)"
            )
    return None


def _pads_with_zeros(reader: torch.nn.Module) -> bool:
    """Whether a convolution reads zeros beyond its input's borders (padding that copies the
    input, or none, repeats a constant input exactly)."""
    if not isinstance(reader, torch.nn.modules.conv._ConvNd) or reader.padding_mode != "zeros":
        return False  # a Linear, Hugging Face's Conv1D, or padding that copies the input
    if reader.padding == "same":
        return any(k > 1 for k in reader.kernel_size)
    return reader.padding != "valid" and any(p > 0 for p in reader.padding)


@dataclass
class Owners:
    """Who holds what in the model revive writes into, to refuse tied weights."""

    names: dict[int, str]  # id(module) -> its name in the watched model (as in the report)
    places: dict[int, list[str]]  # id(module) -> every name it has in the model
    holders: dict[int, list[str]]  # id(parameter) -> every module name holding it

    def name(self, module: torch.nn.Module) -> str:
        return self.names.get(id(module), type(module).__name__)


def parameter_owners(model: torch.nn.Module, watched: torch.nn.Module) -> Owners:
    places: dict[int, list[str]] = {}
    holders: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        places.setdefault(id(module), []).append(name)
        for param in module._parameters.values():
            if param is not None:
                holders.setdefault(id(param), []).append(name)
    names = {id(module): name for name, module in watched.named_modules()}
    return Owners(names, places, holders)


# forward (and the convolution it calls) as torch.nn defines them: a subclass that overrides
# them may use its weight otherwise (DropConnect, fake quantization, ...).
_PLAIN_FORWARDS = {
    getattr(cls, attr)
    for cls in (*WEIGHTED_LAYERS, *NORM_LAYERS, torch.nn.SyncBatchNorm)
    for attr in ("forward", "_conv_forward")
    if hasattr(cls, attr)
}


def _writable_problem(module: torch.nn.Module, owners: Owners) -> str | None:
    """Why revive cannot write `module`'s weight and bias as the plain parameters of this one
    module, or None."""
    name = f"'{owners.name(module)}'"
    computed = _computed_tensor(module)
    if computed is not None:
        return f"{name} computes its {computed}; revive writes only plain parameters"
    kind = type(module)
    conv1d = hf_conv1d_class()  # Hugging Face's own forward is plain too
    plain = (*_PLAIN_FORWARDS, *((conv1d.forward,) if conv1d is not None else ()))
    if any(
        getattr(kind, attr, None) not in (None, *plain) for attr in ("forward", "_conv_forward")
    ):
        return (
            f"{name} overrides forward ({kind.__name__}): revive cannot tell how it uses its weight"
        )
    places = owners.places.get(id(module), [])
    if len(places) > 1:
        return (
            f"{name} is registered {len(places)} times in the model ({places}): revive would "
            "change it at every place"
        )
    sharded = [attr for attr, p in module._parameters.items() if _is_sharded(p)]
    if sharded:
        return (
            f"the {sharded[0]} of {name} is sharded across ranks (a DTensor: FSDP2's fully_shard, "
            "tensor parallelism); revive writes only whole, plain parameters"
        )
    for attr, param in module._parameters.items():
        others = [n for n in owners.holders.get(id(param), []) if n not in places]
        if param is not None and others:
            return (
                f"{name} shares its {attr} with '{others[0]}' (tied parameters): revive would "
                "change that module too"
            )
    return None


def _is_sharded(param: torch.Tensor | None) -> bool:
    """A DTensor parameter (each rank holds a shard, or a replica under a mesh)."""
    if param is None or not torch.distributed.is_available():
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(param, DTensor)


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


def revivable_on_every_rank(plans: list[Plan], skipped: dict[str, str]) -> list[Plan]:
    """The plans every rank made (all of them in one process): each revived layer takes a
    broadcast, so the ranks must agree on the list."""
    if world_size() == 1:
        return plans
    gathered: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(gathered, [plan.name for plan in plans])
    common = set.intersection(*(set(names) for names in gathered))
    for plan in plans:
        if plan.name not in common:
            skip_layer(
                plan.name, "another rank cannot revive it (see that rank's warning)", skipped
            )
    return [plan for plan in plans if plan.name in common]
