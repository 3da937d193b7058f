"""Counting: the gradient-alive threshold of each activation, the counters of each call
site, and the hooks (or the torch_ext.nn modules' own kernels) that fill them."""

from __future__ import annotations

import contextlib
import sys
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..activations import activation_of
from .names import site_name

if TYPE_CHECKING:
    from .monitor import DeadNeuronMonitor


# --- thresholds ------------------------------------------------------------------------------
class FunctionalRule:
    """Stands for the activation module of a functional call site: what the monitor's alive
    rule reads (the function's kind and parameter; PReLU's slopes)."""

    def __init__(self, kind: str, param: float = 0.0, weight: Tensor | None = None) -> None:
        self.kind = kind
        self.param = param
        self.weight = weight


def alive_rule(module: torch.nn.Module | None) -> tuple[str, float] | None:
    """The activation formula and parameter that decide when a unit of `module` passes
    gradient, or None for PReLU, whose learned slopes are tensors read on the device."""
    if isinstance(module, FunctionalRule):  # a functional call site
        return None if module.kind == "prelu" else (module.kind, float(module.param))
    spec = activation_of(module)
    if spec is None:
        return "relu", 0.0  # modules the monitor does not know: gradient flows only for z > 0
    return None if spec.rule == "prelu" else (spec.rule, spec.param(module))


def alive_threshold(module: torch.nn.Module, units: int, grad_eps: float, device) -> Tensor:
    """Per-unit z above which ``|f'(z)| > grad_eps`` for the activation ``module``, from the
    activation definitions (``torch.ops.torch_ext.alive_threshold``), as the float32 tensor
    ``count_active_`` takes. Modules the monitor does not know get ReLU's rule (gradient
    flows only for ``z > 0``).

    Args:
        module: the activation module (PReLU's thresholds come from its learned slopes).
        units: the layer's number of units.
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
        device: where the result goes (the counts' device).

    Returns:
        A float32 tensor of shape ``(units,)``.
    """
    rule = alive_rule(module)
    if rule is None:
        slopes = torch.ops.torch_ext.slopes_alive_threshold(module.weight, units, grad_eps)
        # The op's result takes the default dtype (float64 under set_default_dtype).
        return slopes.to(device=device, dtype=torch.float32)
    value = torch.ops.torch_ext.alive_threshold(rule[0], rule[1], grad_eps)
    return torch.full((units,), value, dtype=torch.float32, device=device)


# --- counting --------------------------------------------------------------------------------
def recomputing() -> bool:
    """True while autograd runs a backward pass on this thread (activation checkpointing
    recomputes forwards there)."""
    return not torch.compiler.is_compiling() and torch._C._current_graph_task_id() != -1


def inside_forward_of(model: torch.nn.Module) -> bool:
    """Whether a forward of `model` is running below the one starting now: the model called
    inside its own forward. (A forward cut short by KeyboardInterrupt, which skips the
    always_call hooks that would have ended it, is not on the stack any more.)"""
    call_impl = torch.nn.Module._call_impl.__code__
    frame, calls = sys._getframe(1), 0
    while frame is not None:
        if frame.f_code is call_impl and frame.f_locals.get("self") is model:
            calls += 1
            if calls > 1:
                return True
        frame = frame.f_back
    return False


def outside_inference_mode() -> AbstractContextManager[Any]:
    """Counters outlive the call that creates them: made inside ``torch.inference_mode()``
    they would be inference tensors, which no later training step may update."""
    if not torch.compiler.is_compiling() and torch.is_inference_mode_enabled():
        return torch.inference_mode(False)
    return contextlib.nullcontext()


class CallSites:
    """A monitored module and its layers, one per call site (its k-th call in a forward of
    the watched model), or a single one counting every call when `merged`."""

    def __init__(
        self,
        name: str,
        module: torch.nn.Module | FunctionalRule,
        merged: bool,
        activation: str | None = None,
    ) -> None:
        self.name = name
        self.module: torch.nn.Module | FunctionalRule | None = module  # None while detached
        # A functional call site (``block.0:relu#0``) has a rule instead of a module.
        self.functional = isinstance(module, FunctionalRule)
        self.activation = activation or type(module).__name__
        self.merged = merged
        self.layers: list[Layer] = [Layer(self, 0)]
        self._forward = -1  # the forward whose calls `_next` numbers
        self._next = 0

    def next_call(self, forward: int) -> int:
        """The call site of this call, the module's next one in forward number `forward`."""
        if self.merged:
            return 0
        if forward != self._forward:  # a new forward of the model: numbering restarts
            self._forward, self._next = forward, 0
        self._next += 1
        return self._next - 1


class Layer:
    """Counters of one call site of a monitored module, on the device of its inputs."""

    def __init__(self, sites: CallSites, index: int) -> None:
        self.sites = sites
        self.index = index
        self.name = site_name(sites.name, index)
        self.activation = sites.activation
        self.counts: Tensor | None = None  # int64 [2, units]: active, alive
        self.samples = 0  # per unit, known on the host from shapes
        self.threshold: Tensor | None = None
        self._threshold_key: tuple | None = None
        # Whether a Linear feeds it (its units are then the last dim, see unit_dim): decided
        # once, at this call site's first call, so every call counts along the same dim.
        self.fed_by_linear: bool | None = None

    @property
    def module(self) -> torch.nn.Module | None:
        return self.sites.module

    def prepare(
        self, z: Tensor, unit_dim: int, grad_eps: float
    ) -> tuple[Tensor, int, Tensor] | None:
        """Counts this call's samples; returns count_active_'s (counts, unit_dim, threshold),
        or None when the call holds nothing to count (an empty batch or a 0-wide layer)."""
        if not -z.dim() <= unit_dim < z.dim():
            raise ValueError(
                f"DeadNeuronMonitor: unit_dim {unit_dim} of layer '{self.name}' is "
                f"out of range for its {z.dim()}-D input"
            )
        if z.numel() == 0:
            return None
        dim = unit_dim % z.dim()
        units = z.shape[dim]
        counts = self._counts_on(z.device, units, dim)
        threshold = self._threshold_for(units, grad_eps, z.device)
        self.samples += z.numel() // units
        return counts, dim, threshold

    def _counts_on(self, device: torch.device, units: int, dim: int) -> Tensor:
        if self.counts is None:
            with outside_inference_mode():
                self.counts = torch.zeros(2, units, dtype=torch.int64, device=device)
        elif self.counts.shape[1] != units:
            raise ValueError(
                f"DeadNeuronMonitor: layer '{self.name}' was called with {units} units along "
                f"dim {dim}, but earlier with {self.counts.shape[1]}; pass unit_dim for it"
            )
        elif self.counts.device != device:
            # model.to(device), or load_state_dict() before the first call: follow the input.
            with outside_inference_mode():
                self.counts = self.counts.to(device)
        return self.counts

    def _threshold_for(self, units: int, grad_eps: float, device: torch.device) -> Tensor:
        """The alive threshold for this call, recomputed when what it depends on changed
        (negative_slope, alpha, grad_eps, the unit count, the device) between calls."""
        rule = alive_rule(self.module)
        if rule is None:
            # PReLU's slopes change every optimizer step (and behind any version counter when
            # set through .data): computed on the device for this call only, without a sync.
            return alive_threshold(self.module, units, grad_eps, device)
        key = (rule, grad_eps, units, device)
        if key != self._threshold_key:
            with outside_inference_mode():
                self.threshold = alive_threshold(self.module, units, grad_eps, device)
            self._threshold_key = key
        return self.threshold

    def reset(self) -> None:
        if self.counts is not None:
            self.counts.zero_()
        self.samples = 0


# --- hooks -----------------------------------------------------------------------------------
class InertHook:
    """What a monitor's hook becomes in a copy or a pickle of the model: nothing."""

    def __call__(self, *args: Any) -> None:
        return None


class Hook:
    """Base of the hooks a monitor puts on a model. ``copy.deepcopy(model)`` (an EMA or
    teacher copy) and ``torch.save(model)`` copy a module's hooks with it: those copies
    become :class:`InertHook`, so a copy never counts into the monitor and the model
    pickles while watched."""

    def __reduce__(self) -> tuple[type, tuple]:
        return InertHook, ()


def no_counter() -> None:
    return None


class CountingHook(Hook):
    """Forward pre-hook counting a monitored module's input (before an in-place activation
    overwrites it) into the layer of its call site."""

    def __init__(self, monitor: DeadNeuronMonitor, sites: CallSites) -> None:
        self._monitor = weakref.ref(monitor)
        self._sites = sites

    def __call__(self, module: torch.nn.Module, args: tuple) -> None:
        monitor = self._monitor()
        if monitor is None or module is not self._sites.module:
            return
        layer = monitor._call_site(self._sites)  # every call takes a site, counted or not
        prepared = monitor._counting_args(layer, module, args[0]) if args else None
        if prepared is not None:
            torch.ops.torch_ext.count_active_(args[0].detach(), *prepared)


class FusedCounter:
    """Set on a torch_ext.nn module as ``counter``: its forward then runs the counted op,
    the activation and the counting in one pass (see torch_ext.nn.modules.CountedActivation), into
    the counts of its call site. A copy or pickle of the module gets ``None`` instead (see
    :class:`Hook`)."""

    def __init__(self, monitor: DeadNeuronMonitor, sites: CallSites) -> None:
        self._monitor = weakref.ref(monitor)
        self._sites = sites

    def __reduce__(self) -> tuple[Callable[[], None], tuple]:
        return no_counter, ()

    def monitor(self) -> DeadNeuronMonitor | None:
        return self._monitor()

    def counting_args(
        self, module: torch.nn.Module, z: Tensor
    ) -> tuple[Tensor, int, Tensor] | None:
        monitor = self._monitor()
        if monitor is None or module is not self._sites.module:
            return None
        return monitor._counting_args(monitor._call_site(self._sites), module, z)


def counter_owner(module: torch.nn.Module) -> DeadNeuronMonitor | None:
    """The live monitor counting inside `module`'s kernel, or None when its slot is free
    (never set, a copy's None, or left by a monitor dropped without remove())."""
    counter = vars(module).get("counter")
    return counter.monitor() if isinstance(counter, FusedCounter) else None
