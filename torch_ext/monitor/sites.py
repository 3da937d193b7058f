"""Call sites: every monitored module's layers (one per call in a forward of the model, or
one for all its calls when merged), named by the one grammar of names.py; which layer a
call counts into; and count_active_'s arguments for it (the unit_dim rule, the layer's
threshold). Counting hooks, the torch_ext.nn modules' fused counters and the functional
watch hold the CallSiteTable, never the monitor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

from .counting import (
    FUNCTIONS,
    FunctionalRule,
    alive_rule,
    alive_threshold,
    condition_of,
    function_activation_name,
    outside_inference_mode,
    recomputing,
    unfollowed,
)
from .names import parse, site_name
from .rules import FUNCTION_RULES, ActivationRule, NoRule

if TYPE_CHECKING:
    from .tracker import ForwardTracker

__all__ = ["CallSiteTable", "CallSites", "Counting", "Layer"]


class Counting(NamedTuple):
    """What one call of a layer counts into: count_active_'s ``(counts, unit_dim,
    alive_threshold)``, and with ``tau=`` the per-unit sums of ``|h|`` (float64) that
    ``abs_sum_`` (or a torch_ext.nn module's counted op) adds the activation's output to."""

    counts: Tensor
    unit_dim: int
    threshold: Tensor
    abs_sums: Tensor | None


logger = logging.getLogger("torch_ext.monitor")


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
        # With tau=: per unit, the sum of |h| over the window (float64), for ReDo's score;
        # incomplete when a checkpoint without them was resumed mid-window.
        self.abs_sums: Tensor | None = None
        self.sums_incomplete = False
        self.threshold: Tensor | None = None
        self._threshold_key: tuple | None = None
        # Its units' dim as what made its input tells (-1 after a Linear, 1 after a
        # convolution; see unit_dim_of): decided once, at this call site's first eager call
        # that tells, so every call counts along one dim.
        self.told_unit_dim: int | None = None
        self.warned_unit_dim = False
        # Whether a call of the model's forward (with its call index) counted into it; if
        # not, its counts are from calls without one, which may have to move (see
        # CallSiteTable._rehome_unnumbered).
        self.numbered = False

    @property
    def module(self) -> torch.nn.Module | None:
        return self.sites.module

    @property
    def condition(self) -> str:
        """``"dead"``, or ``"saturated"`` for activations flat on both sides (Tanh, ...)."""
        return condition_of(self.sites.module)

    def prepare(
        self, z: Tensor, unit_dim: int, grad_eps: float, sums: bool = False
    ) -> Counting | None:
        """Counts this call's samples; returns what it counts into (the abs sums with
        `sums`), or None when the call holds nothing to count (an empty batch or a 0-wide
        layer)."""
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
        abs_sums = self._abs_sums_on(z.device, units) if sums else None
        self.samples += z.numel() // units
        return Counting(counts, dim, threshold, abs_sums)

    def _abs_sums_on(self, device: torch.device, units: int) -> Tensor:
        if self.abs_sums is None or self.abs_sums.shape[0] != units:
            with outside_inference_mode():
                self.abs_sums = torch.zeros(units, dtype=torch.float64, device=device)
        elif self.abs_sums.device != device:
            with outside_inference_mode():
                self.abs_sums = self.abs_sums.to(device)
        return self.abs_sums

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
        if self.abs_sums is not None:
            self.abs_sums.zero_()
        self.samples = 0
        self.sums_incomplete = False

    def move_counts_to(self, other: Layer) -> None:
        """Hand this layer's counts and samples to `other` (added to its own, which must be
        of the same width), and start afresh."""
        if other.counts is None:
            other.counts, other.samples = self.counts, self.samples
            other.abs_sums = self.abs_sums
        else:
            other.counts += self.counts.to(other.counts.device)
            other.samples += self.samples
            if self.abs_sums is not None and other.abs_sums is not None:
                other.abs_sums += self.abs_sums.to(other.abs_sums.device)
            elif self.abs_sums is not None:
                other.abs_sums = self.abs_sums
        self.counts, self.samples, self.abs_sums = None, 0, None
        self.threshold, self._threshold_key = None, None


def _units_unknown(z: Tensor) -> int | None:
    return None


def _ignore_outside_call(module_name: str) -> None:
    return None


class CallSiteTable:
    """The monitored modules' call sites and layers, in the model's order.

    Args:
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
        unit_dim: the monitor's ``unit_dim=`` (an int, ``{module name: dim}`` or None).
        count_eval: count forwards in eval mode too.
        tau: ReDo's dormancy threshold; when set, each call also sums ``|h|`` per unit.

    Attributes:
        sites: ``{module name: CallSites}`` (a functional call site's name for those).
        layers: every call site's layer, by module then call site: the reports' order.
        tracker: the watched model's forwards, while attached (numbers the call sites).
        makers_unit_dim: the dim of a tensor of the forward running now that holds its
            units, as what made it tells (-1 after a Linear, 1 after a convolution), or None
            (unknown): the tracker's ``unit_dim``, while attached.
        on_outside_call: told the module name of a call made outside a forward of the model
            (the links note it: its readers there go unseen).
    """

    def __init__(
        self,
        grad_eps: float,
        unit_dim: int | dict[str, int] | None,
        count_eval: bool,
        tau: float | None = None,
    ):
        self.grad_eps = grad_eps
        self.tau = tau
        self.unit_dim = unit_dim
        self.count_eval = count_eval
        self.sites: dict[str, CallSites] = {}
        self.layers: dict[str, Layer] = {}
        self.tracker: ForwardTracker | None = None
        self.makers_unit_dim: Callable[[Tensor], int | None] = _units_unknown
        self.on_outside_call: Callable[[str], None] = _ignore_outside_call
        # Modules (call sites' module names) whose output was not shaped as their input on
        # some call: their |h| sums miss calls, so they get no tau-dormant score.
        self.unsummed_sites: set[str] = set()
        self.refused: set[str] = set()  # layers not counted for want of a rule, said once
        self.warned_transformed = False

    def unsummed(self, name: str) -> None:
        """Module or functional site `name` returned an output not shaped as its input:
        said once; its layers report no tau-dormant score."""
        if name not in self.unsummed_sites:
            self.unsummed_sites.add(name)
            logger.warning(
                "DeadNeuronMonitor: '%s' returned an output not shaped as its input, so its "
                "units' |h| cannot be summed: it gets no tau-dormant score",
                name,
            )

    def unwatch(self) -> None:
        """Detached: no forwards are followed, no feeder known, no outside call noted."""
        self.tracker = None
        self.makers_unit_dim = _units_unknown
        self.on_outside_call = _ignore_outside_call

    def order_layers(self) -> None:
        """Lay out :attr:`layers` (and so every report) by module, then call site."""
        self.layers = {layer.name: layer for sites in self.sites.values() for layer in sites.layers}

    def site(self, sites: CallSites, index: int) -> Layer:
        """The layer of call site `index` of `sites`' module, made (with the sites before it)
        at its first call, or when a checkpoint or another rank names it."""
        if index >= len(sites.layers):
            sites.layers += [Layer(sites, i) for i in range(len(sites.layers), index + 1)]
            self.order_layers()
        return sites.layers[index]

    def layer_of_call(self, module_name: str, index: int) -> Layer:
        """The layer counting call `index` of a forward of monitored module `module_name`."""
        sites = self.sites[module_name]
        return self.site(sites, 0 if sites.merged else index)

    def call_site(self, sites: CallSites) -> Layer:
        """The layer a call of `sites`' module counts into: its call site in the watched
        forward of the model running now. A call outside one, compiled or recomputed counts
        under the module's name (see :meth:`counting_args`); one outside a forward is
        noted too, as it may feed readers revive never sees."""
        tracker = self.tracker
        if unfollowed():  # compiled (a mutable index would be a guard) or under torch.func
            return sites.layers[0]
        if tracker is not None and tracker.in_forward:
            return self.site(sites, sites.next_call(tracker.forward_index))
        if tracker is not None and not recomputing():
            self.on_outside_call(sites.name)
        return sites.layers[0]

    def counting_args(self, layer: Layer, module: torch.nn.Module, z: Any) -> Counting | None:
        """What this call of `layer` counts into, or None when it is not counted."""
        if not (
            (module.training or self.count_eval)
            and isinstance(z, Tensor)
            and z.dim() > 0
            and not recomputing()
        ):
            return None
        if torch._C._are_functorch_transforms_active():
            self._say_transformed_once()
            return None
        unit_dim = self.unit_dim_of(layer, z)
        if unit_dim is None:
            return None
        if not self._numbers_calls():
            if layer.index == 0:
                layer = self._layer_of_width(layer.sites, z, unit_dim)
        else:
            self._rehome_unnumbered(layer, z, unit_dim)
            layer.numbered = True
        try:
            return layer.prepare(z, unit_dim, self.grad_eps, sums=self.tau is not None)
        except NoRule as error:  # grad_eps changed since attach (RReLU's random slopes)
            self._refuse_once(layer.name, error)
            return None

    def _say_transformed_once(self) -> None:
        """Calls inside a torch.func transform are not counted: under vmap a layer's input
        is a batch of per-sample wrappers the counting ops cannot write through, and under
        grad a second, transformed run of a forward eager mode has counted already."""
        if not self.warned_transformed:
            self.warned_transformed = True
            logger.warning(
                "DeadNeuronMonitor: forwards inside torch.func transforms (grad, vmap, "
                "functional_call under them) are not counted; the model's eager forwards are"
            )

    def _refuse_once(self, name: str, error: NoRule) -> None:
        if name not in self.refused:
            self.refused.add(name)
            logger.warning("DeadNeuronMonitor: layer '%s' is not counted: %s", name, error)

    def _rehome_unnumbered(self, layer: Layer, z: Tensor, unit_dim: int) -> None:
        """A call site of the model's forward whose layer holds only counts of calls without
        an index, of another width (the decoder's half of a shared activation, called on its
        own before the first forward): those counts move to the module's site of their
        width, or a new one, and the site starts afresh for the forward's own calls."""
        if layer.numbered or layer.counts is None or not -z.dim() <= unit_dim < z.dim():
            return
        if layer.counts.shape[1] == z.shape[unit_dim]:
            return
        width = layer.counts.shape[1]
        sites = layer.sites
        target = next(
            (
                other
                for other in sites.layers
                if other is not layer
                and not other.numbered
                and other.counts is not None
                and other.counts.shape[1] == width
            ),
            None,
        ) or self.site(sites, len(sites.layers))
        layer.move_counts_to(target)

    def _numbers_calls(self) -> bool:
        """Whether the call running now has its call site from the watched forward's count;
        else (compiled, outside a forward of the model) it counts under the module's name."""
        return (
            not torch.compiler.is_compiling()
            and self.tracker is not None
            and self.tracker.in_forward
        )

    def _layer_of_width(self, sites: CallSites, z: Tensor, unit_dim: int) -> Layer:
        """For a call whose call site is not numbered: the module's first layer of z's width,
        so a module used at two widths (8 and 16 units) counts as in eager, its calls of
        each width into the call site of that width (``act`` and ``act#1``), made in the
        order the widths first come. Merged sites keep their one layer."""
        if sites.merged or not -z.dim() <= unit_dim < z.dim():
            return sites.layers[0]
        units = z.shape[unit_dim]
        for layer in sites.layers:
            if layer.counts is None or layer.counts.shape[1] == units:
                return layer
        return self.site(sites, len(sites.layers))

    def unit_dim_of(self, layer: Layer, z: Tensor) -> int | None:
        """The dim of `z` that indexes `layer`'s units: ``unit_dim=`` if given for it, else
        the last dim of a 1-D/2-D input or of a Linear's output, else dim 1 (channels) for a
        convolution's output and for inputs above 3-D. A 3-D input is either (a Conv1d's
        channels lie along dim 1, a Linear's features, a transformer's FFN, along the last):
        when nothing that made it tells (its maker is not known: the model's input, an op
        that mixes dims, a call under torch.compile or outside the model's forward before
        any eager forward showed its maker), it is not counted, and a warning says what to
        do, once: None."""
        if isinstance(self.unit_dim, int):
            return self.unit_dim
        if isinstance(self.unit_dim, dict) and layer.sites.name in self.unit_dim:
            return self.unit_dim[layer.sites.name]
        if z.dim() <= 2:
            return -1
        if layer.told_unit_dim is None and self._numbers_calls():
            # Decided once, at the call site's first eager call that tells: every call
            # counts along one dim. Elsewhere the maker is unknown, and nothing is decided.
            layer.told_unit_dim = self.makers_unit_dim(z)
        if layer.told_unit_dim is not None and -z.dim() <= layer.told_unit_dim < z.dim():
            return layer.told_unit_dim
        if z.dim() > 3:  # [N, C, H, W]: a Linear there is rare, a convolution the rule
            if self._numbers_calls():
                layer.told_unit_dim = 1  # counted so once: every call counts so
            return 1
        if not layer.warned_unit_dim:
            layer.warned_unit_dim = True
            logger.warning(
                "DeadNeuronMonitor: layer '%s' got a 3-D input that nothing before it tells "
                "the units of (no Linear, matrix product or convolution made it, as far as "
                "the model's modules and the autograd graph show: a call without autograd "
                "shows no graph, and one under torch.compile or outside an eager forward of "
                "the model shows neither): its units lie along dim 1 after a Conv1d but "
                "along the last dim after a Linear, so such calls are not counted; pass "
                "unit_dim (an int, or {layer name: dim}), or run one eager training forward "
                "of the model first",
                layer.name,
            )
        return None

    # --- functional call sites -----------------------------------------------------------
    def functional_layer(self, name: str, kind: str, param: Any) -> Layer:
        """The layer of functional call site `name`, made at its first call; its rule follows
        the call's parameter (negative_slope, alpha, PReLU's weight; the derived rule of a
        function outside the ReLU family, an ActivationRule)."""
        sites = self.sites.get(name)
        if sites is None:
            sites = self.sites[name] = CallSites(
                name, FunctionalRule(kind), merged=True, activation=function_activation_name(kind)
            )
            self.order_layers()
        rule = sites.module
        if kind == "prelu":
            rule.weight = param
        elif isinstance(param, ActivationRule):
            rule.rule = param
        else:
            rule.param = param
        return sites.layers[0]

    def placeholder_site(self, name: str) -> CallSites | None:
        """A functional call site another rank or a checkpoint names before this process ran
        it (``block.0:relu#0``); None for other names."""
        kind = parse(name).function
        if kind not in FUNCTIONS and kind not in FUNCTION_RULES:
            return None
        self.functional_layer(name, kind, None if kind == "prelu" else 0.0)
        return self.sites[name]
