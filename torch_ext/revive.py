"""Revive dead units: the lecture notes' remedy (bias +0.01) applied the way ReDo
(Sokar et al., 2023) does it, without changing what the network computes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parametrize

from .activations import ACTIVATIONS, activation_of
from .monitor import DeadNeuronMonitor, LayerReport, MonitorReport
from .monitor.distributed import world_size
from .monitor.structure import NORM_LAYERS, WEIGHTED_LAYERS, Reader, in_features, out_features

__all__ = ["revive", "ReviveReport"]

logger = logging.getLogger("torch_ext.monitor")

REVIVED_BIAS = 0.01  # the lecture notes' remedy: a small positive bias starts the unit active


def _saturated_output(activation: torch.nn.Module) -> float:
    """What a dead unit outputs (f(z) for z -> -inf): 0 for ReLU and for Leaky ReLU / PReLU
    units of slope 0 (see _dead_output_problem), -alpha for ELU, ..."""
    spec = activation_of(activation)
    constant = None if spec is None else spec.dead_output(activation)
    return 0.0 if constant is None else constant


class ReviveReport(dict):
    """What :func:`revive` did: ``{layer name: revived units}``, as a dict, plus

    Attributes:
        skipped: ``{layer name: why}`` for every layer with dead units that was left as it
            was (also logged as a warning).
        inexact: ``{layer name: [why, ...]}`` for the revived layers whose function changed
            (only with ``exact=False``): what their revived units now reach.
    """

    def __init__(
        self, revived: dict[str, list[int]], skipped: dict[str, str], inexact: dict[str, list[str]]
    ) -> None:
        super().__init__(revived)
        self.skipped = skipped
        self.inexact = inexact

    def __repr__(self) -> str:
        return (
            f"ReviveReport({dict.__repr__(self)}, skipped={self.skipped!r}, "
            f"inexact={self.inexact!r})"
        )


@dataclass
class _Plan:
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


@torch.no_grad()
def revive(
    model: torch.nn.Module,
    monitor: DeadNeuronMonitor,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    exact: bool = True,
    window: MonitorReport | None = None,
) -> ReviveReport:
    """Re-initialise the dead units that ``monitor`` reports, keeping the network's function.

    For each dead unit of a monitored layer (call site): the incoming weights (its row of the
    Linear or output channel of the convolution feeding the activation) are drawn afresh from
    that layer's own initialisation and its bias set to +0.01 (the lecture notes' remedy); if
    a BatchNorm, LayerNorm or GroupNorm stands between them, the producer's bias entry is set
    to 0 and the norm's parameters for the unit to weight 1, bias +0.01, its running
    statistics to mean 0, variance 1, so the unit starts from a small positive
    pre-activation. Its outgoing weights (its columns in the Linear/Conv layers reading the
    activation, through pooling, dropout, flatten and views) are zeroed, as ReDo (Sokar et
    al., 2023) does. A dead unit's constant output (0 for ReLU; -alpha for a saturated ELU,
    times scale for SELU) is folded into the reading layers' bias, so outputs are unchanged
    at the moment of revival (exactly for ReLU; for ELU-family units up to their residual
    ``alpha * e^z <= grad_eps``) while the unit can learn again.

    The layers around each call site are the ones the monitor traced in the model's first
    training forward after it attached, checked against every eager forward it watched since
    (see :meth:`DeadNeuronMonitor.links`). Some structures cannot keep the function exactly:
    the unit's output also flows into a residual addition, is read by a norm layer or
    returned by the model, or a LayerNorm/GroupNorm normalizes the unit together with
    others. Such a layer is skipped by default; with ``exact=False`` it is revived and the
    report's :attr:`~ReviveReport.inexact` says what changed. A layer is skipped, with a
    warning on the logger ``torch_ext.monitor`` naming it and why, and nothing of it written
    (its modules' parameters and the optimizer's state stay as they were), when revive
    cannot do it right:

    * it is not a plain Linear/Conv [-> norm] -> activation -> Linear/Conv chain in the
      traced forward (another operation between them, a second use of a tensor, a shape
      that does not match, a grouped reader), or the monitor has no links for it (its calls
      merged into one layer, a call site the traced forward did not reach);
    * another forward fed or read it through other modules (a multi-task head), or one of
      its modules was replaced in the model since (``model[2] = nn.Linear(...)``);
    * its activation's dead output is not a known constant (a Leaky ReLU or PReLU unit
      still outputs ``slope * z``), or is a nonzero constant (ELU, SELU, CELU) that a
      reader cannot take: it has no bias, it is a convolution padding with zeros, or the
      path to it does not keep constants (dropout in training, average pooling over padding);
    * the weight or bias of its feeding, norm or reading layers is computed rather than a
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
        optimizer: if given, its per-parameter state of the revived slices (every state
            tensor shaped like its parameter: the producer's weight rows and bias entries,
            the norm's entries and the readers' weight columns) is reset: first moments and
            momentum buffers (Adam's ``exp_avg``, SGD's ``momentum_buffer``) to zero, as for
            a fresh parameter; the states that scale the step by the gradient's history
            (Adam's ``exp_avg_sq``, Adagrad's ``sum``, RMSprop's ``square_avg``, ...) to the
            mean of the parameter's other slices, since the per-parameter step count (and so
            Adam's bias correction) goes on: zeroed, a revived entry would step several times
            further than its peers. Default: ``None``.
        exact: revive only layers whose function revive keeps unchanged. ``False`` also
            revives the layers named in the report's ``inexact``. Default: ``True``.
        window: the window whose dead units to revive: a report of ``monitor``, e.g.
            ``monitor.report()`` for the open window. Default: the last closed window
            (``monitor.history[-1]``): a unit is dead only over a whole window, and the open
            one may have seen a single batch. A window that covers no completed step or
            holds no sample is refused: a warning names it and nothing is revived.

    Under ``torch.distributed`` every rank must call it (the report is collective): the
    re-drawn weights are broadcast from rank 0, so replicas stay identical, and a layer is
    revived only if every rank can revive it.

    Returns:
        :class:`ReviveReport`: ``{layer name: revived units}``, with the skipped layers and
        why in ``skipped``, and with ``exact=False`` the changes in ``inexact``.
    """
    _check_model(model, monitor)
    report = _window_to_revive(monitor, window)
    if report is None:
        return ReviveReport({}, {}, {})
    owners = _parameter_owners(model, monitor._model())
    plans, skipped = [], {}
    for name, layer in report.layers.items():
        if not layer.dead:
            continue
        plan = _plan(monitor, owners, name, layer, exact)
        if isinstance(plan, str):
            _skip(name, plan, skipped)
        else:
            plans.append(plan)
    plans = _revivable_on_every_rank(plans, skipped)
    for plan in plans:  # drawn (and broadcast) before any write
        plan.rows = _fresh_rows(plan.producer, _index(plan))
    for plan in plans:
        _revive_layer(plan, optimizer)
    return ReviveReport(
        {plan.name: plan.units for plan in plans},
        skipped,
        {plan.name: plan.inexact for plan in plans if plan.inexact},
    )


def _check_model(model: torch.nn.Module, monitor: DeadNeuronMonitor) -> None:
    watched = monitor._model()
    if watched is None or not any(m is watched for m in model.modules()):
        raise ValueError(
            "revive: the monitor does not watch this model (nor one of its submodules)"
        )


def _window_to_revive(
    monitor: DeadNeuronMonitor, window: MonitorReport | None
) -> MonitorReport | None:
    """The window revive acts on, or None (with a warning naming it) when it cannot say
    which units are dead: none closed yet, or one without a completed step or a sample."""
    if window is None:
        history = monitor.history
        if not history:
            logger.warning(
                "revive: no window of the monitor has closed yet (the open window %d has "
                "%d steps): nothing revived; call it after monitor.step() closes one, or pass "
                "window=monitor.report()",
                monitor.report(collective=False).window,
                monitor.report(collective=False).steps,
            )
            return None
        window = history[-1]
    samples = sum(layer.samples for layer in window.layers.values())
    if window.steps < 1 or samples == 0:
        logger.warning(
            "revive: window %d covers %d completed steps and %d samples: too few to call a "
            "unit dead; nothing revived",
            window.window,
            window.steps,
            samples,
        )
        return None
    return window


def _skip(name: str, why: str, skipped: dict[str, str]) -> None:
    logger.warning("revive: skipped layer '%s': %s", name, why)
    skipped[name] = why


def _plan(
    monitor: DeadNeuronMonitor, owners: _Owners, name: str, layer: LayerReport, exact: bool
) -> _Plan | str:
    """What reviving layer `name` touches, or why it cannot be done right."""
    if layer.dead_units is None:
        return "the report has no per-unit detail"
    problem = monitor.link_problem(name)
    if problem is not None:
        return problem
    link = monitor._link(name)
    producer, activation = link.producer[1](), monitor.module(name)
    norm = link.norm[1]() if link.norm is not None else None
    readers = [(reader.module(), reader) for reader in link.readers]
    constant = _saturated_output(activation)
    # Writability first: reading a parametrized weight (for its shape) computes it, which
    # for spectral_norm in training mode is a power iteration that updates its buffers.
    modules = [m for m in (producer, norm, *(r for r, _ in readers)) if m is not None]
    problem = (
        _first(_writable_problem(m, owners) for m in modules)
        or _shape_problem(link.units, producer, readers)
        or _dead_output_problem(activation, layer.dead_units)
        or _fold_problem(constant, readers, owners)
    )
    if problem is not None:
        return problem
    if link.inexact and exact:
        return (
            "reviving it would change the network's function: "
            + "; ".join(link.inexact)
            + " (revive(..., exact=False) revives it anyway)"
        )
    axis = _norm_axis(norm, link.unit_dim, link.input_ndim)
    return _Plan(
        name,
        list(layer.dead_units),
        link.units,
        producer,
        norm,
        axis,
        activation,
        readers,
        constant,
        list(link.inexact),
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
    widths = [out_features(producer) - units, producer.weight.shape[0] - units]
    if producer.bias is not None:
        widths.append(producer.bias.shape[0] - units)
    for reader, path in readers:
        width = path.layout.width(units)
        widths += [in_features(reader) - width, reader.weight.shape[1] - width]
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
    constant: float, readers: list[tuple[torch.nn.Module, Reader]], owners: _Owners
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
                "not keep a constant (dropout in training, or an average over padding)"
            )
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
_PLAIN_FORWARDS = {
    getattr(cls, attr)
    for cls in (*WEIGHTED_LAYERS, *NORM_LAYERS, torch.nn.SyncBatchNorm)
    for attr in ("forward", "_conv_forward")
    if hasattr(cls, attr)
}


def _writable_problem(module: torch.nn.Module, owners: _Owners) -> str | None:
    """Why revive cannot write `module`'s weight and bias as the plain parameters of this one
    module, or None."""
    name = f"'{owners.name(module)}'"
    computed = _computed_tensor(module)
    if computed is not None:
        return f"{name} computes its {computed}; revive writes only plain parameters"
    kind = type(module)
    if any(
        getattr(kind, attr, None) not in (None, *_PLAIN_FORWARDS)
        for attr in ("forward", "_conv_forward")
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
    for attr, param in module._parameters.items():
        others = [n for n in owners.holders.get(id(param), []) if n not in places]
        if param is not None and others:
            return (
                f"{name} shares its {attr} with '{others[0]}' (tied parameters): revive would "
                "change that module too"
            )
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


def _revivable_on_every_rank(plans: list[_Plan], skipped: dict[str, str]) -> list[_Plan]:
    """The plans every rank made (all of them in one process): each revived layer takes a
    broadcast, so the ranks must agree on the list."""
    if world_size() == 1:
        return plans
    gathered: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(gathered, [plan.name for plan in plans])
    common = set.intersection(*(set(names) for names in gathered))
    for plan in plans:
        if plan.name not in common:
            _skip(plan.name, "another rank cannot revive it (see that rank's warning)", skipped)
    return [plan for plan in plans if plan.name in common]


def _index(plan: _Plan) -> Tensor:
    return torch.tensor(plan.units, device=plan.producer.weight.device)


def _revive_layer(plan: _Plan, optimizer: torch.optim.Optimizer | None) -> None:
    producer, norm = plan.producer, plan.norm
    dead = _index(plan)
    producer.weight[dead] = plan.rows
    if producer.bias is not None:  # behind a norm, the norm's bias carries the remedy
        producer.bias[dead] = 0.0 if norm is not None else REVIVED_BIAS
    if norm is not None:
        _reset_norm(norm, dead, plan.norm_axis)
    outgoing = []
    for reader, path in plan.readers:
        columns = path.layout.indices(plan.width, dead)
        _fold_into_bias(reader, columns, plan.constant)
        reader.weight[:, columns] = 0.0
        outgoing.append((reader, columns))
    if optimizer is None:
        return
    _reset_optimizer_state(optimizer, producer.weight, dead, dim=0)
    if producer.bias is not None:
        _reset_optimizer_state(optimizer, producer.bias, dead, dim=0)
    for param in (getattr(norm, "weight", None), getattr(norm, "bias", None)):
        if isinstance(param, Tensor):
            _reset_optimizer_state(optimizer, param, dead, dim=plan.norm_axis)
    for reader, columns in outgoing:
        _reset_optimizer_state(optimizer, reader.weight, columns, dim=1)


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


def _fresh_rows(producer: torch.nn.Module, dead: Tensor) -> Tensor:
    """The dead units' incoming weights, drawn by the layer's own initialisation and each
    scaled to the mean norm of the layer's live rows; under torch.distributed rank 0's draw,
    since every rank's generator differs.

    The draw is made in a bare copy of the layer holding only as many rows as there are
    dead units (fan-in, and so the init's bound, does not depend on the rows): no copy of
    the whole weight, nor of the hooks and what they hold. The scaling is ReDo's intent (a
    reset unit starts like its peers): a model initialised otherwise than its layers'
    ``reset_parameters`` (Hugging Face's std 0.02) would get rows far larger than the rest."""
    fresh = object.__new__(type(producer))
    fresh.__dict__.update(producer.__dict__)
    fresh._parameters = {
        name: None
        if param is None
        else torch.nn.Parameter(param.new_empty((len(dead), *param.shape[1:])), param.requires_grad)
        for name, param in producer._parameters.items()
    }
    fresh.reset_parameters()
    rows = fresh.weight.detach().contiguous()
    if world_size() > 1:
        torch.distributed.broadcast(rows, src=0)
    return _scaled_to_live_rows(rows, producer.weight.detach(), dead)


def _scaled_to_live_rows(rows: Tensor, weight: Tensor, dead: Tensor) -> Tensor:
    """`rows` (one per dead unit, as the weight's rows) each scaled to the mean norm of the
    weight's other rows; unchanged where no row is live or the live rows are all zero."""
    live = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
    live[dead] = False
    if not live.any():
        return rows
    target = weight[live].flatten(1).float().norm(dim=1).mean()
    norms = rows.flatten(1).float().norm(dim=1)
    if target == 0 or not bool((norms > 0).all()):
        return rows
    scale = (target / norms).to(rows.dtype)
    return rows * scale.reshape(-1, *([1] * (rows.dim() - 1)))


def _fold_into_bias(reader: torch.nn.Module, columns: Tensor, constant: float) -> None:
    """Add the dead units' constant output, times their outgoing weights (`columns`), to the
    reader's bias: what those weights contributed before they are zeroed."""
    if constant == 0.0:
        return
    outgoing = reader.weight[:, columns]
    reader.bias += constant * outgoing.sum(dim=[d for d in range(outgoing.dim()) if d != 0])


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


def _reset_optimizer_state(
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
