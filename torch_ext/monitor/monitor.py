"""DeadNeuronMonitor, the monitor's facade: its configuration, attach and remove (which
wire the pieces below to the model), windows and reports, links for revive, checkpoints.

The pieces: the call-site table (sites.py: call sites, layers, the counting arguments),
the counting hooks (hooks.py), the forward tracker (tracker.py), the link tracer and its
book (the links package), the functional watch (functional.py), the writers (writers.py) and
the cross-rank sums (distributed.py)."""

from __future__ import annotations

import json
import logging
import math
import numbers
import warnings
import weakref
from collections.abc import Iterable
from typing import Any

import torch

from ..activations import ACTIVATIONS
from ..nn.modules import CountedActivation
from . import writers
from .counting import activation_rule, outside_inference_mode
from .distributed import LayerCounts, summed_over_ranks, warn_on_rank_zero, world_size
from .functional import FunctionalWatch
from .hooks import AbsSumHook, CountingHook, FusedCounter, counter_owner
from .links import Link, LinkBook, LinkTracer, Use
from .names import CALL
from .reports import (
    DeadFractionWarnings,
    MonitorReport,
    layer_report,
    report_from_dict,
    without_unit_detail,
)
from .rules import NoRule
from .selection import (
    ModuleSelector,
    counted_by_default,
    matches,
    ruleless_activation,
)
from .sites import CallSites, CallSiteTable, Layer
from .tracker import ForwardTracker

logger = logging.getLogger("torch_ext.monitor")


def _use_problem(link: Link, use: Use) -> str | None:
    """Why a forward's use of a layer (seen from module calls) is not covered by its traced
    link: fed by another module, read by a module the link does not have, called again, or
    returned. Fewer readers is fine (a dropout in eval passes its input on: the reader then
    reads the layer's output itself)."""
    fed = (link.norm or link.producer)[0]
    readers = {reader.name for reader in link.readers} | set(link.norm_readers)
    if (
        use.outside
        or use.producer != fed
        or not set(use.readers) <= readers
        or use.calls > 1
        or (use.returned and not link.returned)
    ):
        return (
            f"forwards use it differently (one is {use}; the traced one is fed by '{fed}', "
            f"read by {sorted(readers)}): the links traced in one would miss the others' "
            "readers"
        )
    return None


# --- the monitor -----------------------------------------------------------------------------
def _check_count(name: str, value: object, what: str) -> None:
    """`value` must be a whole number >= 1 (an int, NumPy's too; not a bool, a float or a
    string)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(
            f"DeadNeuronMonitor: {name} must be an int >= 1 ({what}), got "
            f"{type(value).__name__} {value!r}"
        )
    if value < 1:
        raise ValueError(f"DeadNeuronMonitor: {name} must be >= 1 {what}, got {value}")


class DeadNeuronMonitor:
    r"""Records, per unit of every activation layer, how often it is active and whether it
    still passes gradient, over windows of training steps.

    Args:
        model: the network to watch.
        window: training steps per window; :meth:`step` closes a step. Default: ``100``.
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
            Default: ``1e-3``.
        warn_dead_fraction: log a warning the first time a layer's dead fraction in a window
            exceeds this. Default: ``0.10``. (Formerly ``threshold=``, still accepted as a
            keyword with a ``DeprecationWarning``.)
        modules: which modules to watch: names, types, or ``(name, module) -> bool``
            predicates. A name that matches no module is a ``ValueError``. Default: every
            elementwise activation module of ``torch.nn`` (``ReLU``, ``LeakyReLU``, ``PReLU``,
            ``ELU``, ``SELU``, ``CELU``, ``torch_ext.nn``'s modules included; ``GELU``,
            ``SiLU``, ``Mish``, ``Hardswish``, ``Hardsigmoid``, ``Hardtanh``, ``ReLU6``,
            ``Tanh``, ``Sigmoid``, ``Softplus``, ``Softsign``, ``LogSigmoid``, ``Threshold``,
            the shrinks, ``RReLU``) and of Hugging Face (``GELUActivation``,
            ``NewGELUActivation``, ``QuickGELUActivation``, ...), each counted by its own
            derivative (see :mod:`torch_ext.monitor.rules`). Activations without a rule
            (softmaxes, ``GLU``, a subclass overriding ``forward``, ``XIELUActivation``) are
            listed by :attr:`skipped_modules`; selecting one is a ``ValueError``. Other
            modules (your own), when selected, are counted by ReLU's rule: gradient-alive
            where ``z > 0``.
        unit_dim: the dim that indexes units in a layer's input: an int for all layers or a
            ``{module name: dim}`` dict (for every call site of the module), whose names
            must be monitored modules (else ``ValueError``). Default: the last dim for 1-D
            and 2-D inputs; otherwise what made the input tells, directly or through the
            autograd graph's elementwise, slicing and permuting steps: the last dim after a
            Linear or a product with a weight (also of a ``[batch, tokens, features]``
            input), dim 1 after a convolution; when nothing tells, dim 1 for inputs above
            3-D, and a 3-D input is not counted (a warning says so). Decided at the layer's
            (call site's) first call that tells and kept, so every call counts along the
            same dim.
        call_sites: how a module called several times in one forward of the model is
            reported. ``"separate"``: one layer per call site, with its own units and counts
            (a ResNet ``BasicBlock`` applies its one ``relu`` after ``bn1`` and after the
            residual addition: two populations of units). ``"merged"``: one layer for all
            of the module's calls (a cell applied over a varying number of time steps).
            Or the modules to merge, given as in ``modules=`` (a name must be a monitored
            module, else ``ValueError``), the others separate. Default: ``"separate"``.
        count_eval: also count in eval mode. Default: ``False``.
        keep_windows: how many of the latest closed windows keep their per-unit lists
            (``dead_units``, ``active_counts``, ``alive_counts``) in :attr:`history` and
            :meth:`state_dict`; older windows keep only their scalars and histogram, so
            memory and checkpoints stay bounded over long runs. Default: ``10``.
        functional: also count the activations a module's forward calls as functions:
            ``F.relu``, ``torch.relu``, ``x.relu()``, ``F.leaky_relu``, ``F.elu``,
            ``F.selu``, ``F.celu``, ``F.prelu``, ``torch.ops.torch_ext.*``,
            ``torch_ext.functional.*``, ``F.gelu``, ``F.silu``, ``F.mish``, ``F.hardswish``,
            ``F.hardsigmoid``, ``F.hardtanh``, ``F.relu6``, ``torch.tanh``,
            ``torch.sigmoid``, ``F.softplus``, ``F.softsign``, ``F.logsigmoid``,
            ``F.threshold``, the shrinks and ``F.rrelu``, in place or not (see *Functional
            call sites*). Default: ``False``.
        tau: ReDo's dormancy threshold (Sokar et al., 2023): also sum ``|h|`` per unit and
            report each unit's score ``s_u = mean|h_u| / mean_k mean|h_k|`` over the window
            (``LayerReport.scores``) and the units with ``s_u <= tau``
            (``tau_dormant_units``), for every activation. ``None`` sums nothing (no cost).
            Default: ``None``.

    Call sites: the first call of a module in a forward of the whole model keeps the module's
    name (``layer1.0.relu``); its later calls in that forward are ``name#1``, ``name#2``, ...
    (``layer1.0.relu#1``): ``#`` is not a module path separator, and a model calling each
    module once reports exactly as with merged calls. Sites are numbered in call order (a
    forward that skips an earlier call shifts the later ones), afresh in each forward of the
    model (its forward pre-hook marks the start; the model called inside its own forward
    continues it). A call outside such a forward (a submodule called on its own) or inside
    ``torch.compile`` (which would recompile for each call index) counts under the module's
    name, the first call site. A call site that only some forwards reach (``cell.act#5`` of a
    longer sequence) is a layer from its first call on, reported with ``samples`` 0 in the
    windows where it did not run; :meth:`state_dict` and the ranks of
    ``torch.distributed`` carry it like any layer.

    Functional call sites (``functional=True``): a torch-function mode entered around each
    eager forward of the model sees every call of a supported activation function; one made
    inside an activation module's forward (``nn.ReLU`` calls ``F.relu``) or a monitored
    module's is left to that module. A call is a layer named by the module whose forward made
    it, the function and its index among that module's calls of the function in this forward
    of the model: ``block.0:relu#0``, ``block.0:relu#1``, ... (``:relu#0`` for the model's own
    forward; in-place forms count as the function; ``call_sites=`` applies to modules only).
    A call whose index another forward gave another width is not counted (a warning says so
    once). Their units and unit dim follow the rules above; they have no module
    (:meth:`module` is None) and revive does not rewire them. The mode is entered only in
    forwards that count (training, or ``count_eval``).
    The mode costs a Python call per torch operation in the forward (see
    ``benchmarks/bench_monitor.py``). Inside ``torch.compile`` functional calls are not
    counted (activation modules are): the first report after such a forward says so in a
    warning.

    Use as a context manager (hooks attached inside the ``with`` block) or call
    :meth:`attach` and :meth:`remove`. Counting happens in forward pre-hooks (so in-place
    activations are seen before they overwrite their input) with no host sync; the host
    reads the counts only when a window closes and when a report is read. Forwards that
    activation checkpointing recomputes during backward are not counted again; copies of the
    model (``copy.deepcopy``, ``torch.save``) do not count into the monitor. A ``torch_ext.nn``
    module counts inside its own kernel for one monitor; other monitors on the same model
    count it by hook, each with its own counts, and removing one leaves the others counting.

    For :func:`torch_ext.revive`, the monitor also learns which Linear/Conv feeds each layer
    and which read it: traced in the first eager training forward after :meth:`attach`, then
    compared with how every later eager forward of the model, training or eval, used the
    layer (seen from module calls: one Python hook call each), see :meth:`links`. A layer also
    called outside a forward of the whole model (a submodule called on its own), whose
    readers there go unseen, gets no links; a module called several times in a forward gets
    links per call site, except where ``call_sites=`` merges its calls into one layer;
    forwards while detached or under ``torch.compile`` are not seen.

    Under ``torch.distributed`` (initialized, world size > 1), :meth:`step` and
    :meth:`report` (and the readers built on it) are collective: every rank must call them,
    in the same order, and they report the counts summed over ranks, including layers that
    only some ranks have run. ``report(collective=False)`` reads this rank's counts alone,
    without communication, and may be called on one rank only.

    Example::

        monitor = torch_ext.DeadNeuronMonitor(model, window=50)
        with monitor:
            for x, y in loader:
                loss = loss_fn(model(x), y)
                loss.backward(); optimizer.step(); optimizer.zero_grad()
                monitor.step()
        print(monitor.summary())
    """

    def __init__(
        self,
        model: torch.nn.Module,
        window: int = 100,
        grad_eps: float = 1e-3,
        warn_dead_fraction: float = 0.10,
        modules: Iterable[ModuleSelector] | None = None,
        unit_dim: int | dict[str, int] | None = None,
        call_sites: str | Iterable[ModuleSelector] = "separate",
        count_eval: bool = False,
        keep_windows: int = 10,
        functional: bool = False,
        threshold: float | None = None,
        tau: float | None = None,
    ) -> None:
        if threshold is not None:
            warnings.warn(
                "DeadNeuronMonitor: threshold= is renamed warn_dead_fraction= (the dead "
                "fraction above which a layer is warned about); threshold= goes in the "
                "next release",
                DeprecationWarning,
                stacklevel=2,
            )
            warn_dead_fraction = threshold
        _check_count("window", window, "steps")
        if not 0 < grad_eps < 1:  # above 0 the activations' slope is 1: see alive_threshold
            raise ValueError(f"DeadNeuronMonitor: grad_eps must be in (0, 1), got {grad_eps}")
        if not 0 <= warn_dead_fraction <= 1:
            raise ValueError(
                f"DeadNeuronMonitor: warn_dead_fraction must be in [0, 1], got {warn_dead_fraction}"
            )
        if tau is not None and not (
            isinstance(tau, (int, float))
            and not isinstance(tau, bool)
            and math.isfinite(tau)
            and tau >= 0
        ):
            raise ValueError(
                f"DeadNeuronMonitor: tau must be a finite number >= 0 or None, got {tau!r}"
            )
        _check_count("keep_windows", keep_windows, "windows")
        if isinstance(call_sites, str) and call_sites not in ("separate", "merged"):
            raise ValueError(
                "DeadNeuronMonitor: call_sites must be 'separate', 'merged' or the "
                f"modules to merge, got '{call_sites}'"
            )
        # Held until remove(); afterwards only weakly, so a removed monitor keeps nothing alive.
        self._model_held: torch.nn.Module | None = model
        self._model = weakref.ref(model)
        self.window = window
        # Call sites, layers and what counting needs (grad_eps, unit_dim=, count_eval).
        self._table = CallSiteTable(grad_eps, unit_dim, count_eval, tau)
        self.keep_windows = keep_windows
        self.functional = functional
        self._selectors = list(modules) if modules is not None else None
        self._unit_dim = unit_dim
        self._call_sites = call_sites if isinstance(call_sites, str) else list(call_sites)
        self._check_names(model)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._steps = 0  # steps closed so far
        self._window_start = 0  # step at which the open window began
        self._history: list[MonitorReport] = []
        self._detailed_from = 0  # index of the oldest window that still has per-unit lists
        self._dead_fraction_warnings = DeadFractionWarnings(warn_dead_fraction)
        self._warned_compiled = False
        # Which weighted layer feeds each monitored layer and which read it, traced in the
        # first training forward after attach(), and how each forward since used each layer
        # (for revive()).
        self._book = LinkBook()
        self._tracker: ForwardTracker | None = None  # the watched model's forwards
        self._tracer: LinkTracer | None = None
        self._functional_watch: FunctionalWatch | None = None

    @property
    def warn_dead_fraction(self) -> float:
        """The dead fraction above which a layer is warned about, once."""
        return self._dead_fraction_warnings.threshold

    @warn_dead_fraction.setter
    def warn_dead_fraction(self, value: float) -> None:
        self._dead_fraction_warnings.threshold = value

    @property
    def grad_eps(self) -> float:
        """A unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``."""
        return self._table.grad_eps

    @grad_eps.setter
    def grad_eps(self, value: float) -> None:
        self._table.grad_eps = value

    @property
    def tau(self) -> float | None:
        """ReDo's dormancy threshold, or None when ``|h|`` is not summed."""
        return self._table.tau

    @property
    def count_eval(self) -> bool:
        """Whether forwards in eval mode are counted too."""
        return self._table.count_eval

    @count_eval.setter
    def count_eval(self, value: bool) -> None:
        self._table.count_eval = value

    @property
    def _sites(self) -> dict[str, CallSites]:
        return self._table.sites

    @property
    def _layers(self) -> dict[str, Layer]:
        return self._table.layers

    @property
    def threshold(self) -> float:
        """Deprecated name of :attr:`warn_dead_fraction`."""
        warnings.warn(
            "DeadNeuronMonitor.threshold is renamed warn_dead_fraction",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.warn_dead_fraction

    # --- hooks -----------------------------------------------------------------------------
    def _selected(self, name: str, module: torch.nn.Module) -> bool:
        if self._selectors is None:
            return counted_by_default(module) and self._rule_problem(module) is None
        return matches(self._selectors, name, module)

    def _rule_problem(self, module: torch.nn.Module) -> str | None:
        """Why `module`'s rule cannot count it for this grad_eps (RReLU's random slopes on
        both sides of it), or None."""
        rule = activation_rule(module)
        try:
            if rule is not None:
                rule.interval(self.grad_eps)
        except NoRule as error:
            return str(error)
        return None

    def _merged(self, name: str, module: torch.nn.Module) -> bool:
        """Whether the calls of monitored module `name` count into one layer (call_sites=)."""
        if isinstance(self._call_sites, str):
            return self._call_sites == "merged"
        return matches(self._call_sites, name, module)

    def _check_names(self, model: torch.nn.Module) -> None:
        """Names in ``modules=``, ``unit_dim=`` and ``call_sites=`` must name modules: a typo
        would otherwise leave a layer silently unwatched, counted along the wrong dim, or
        split into call sites."""
        names = [name for name, _ in model.named_modules()]
        wanted = [s for s in self._selectors or [] if isinstance(s, str)]
        unknown = [name for name in wanted if name not in set(names)]
        if unknown:
            raise ValueError(
                f"DeadNeuronMonitor: modules= names {unknown} match no module of the "
                f"model; its modules are {[n for n in names if n]}"
            )
        monitored = [name for name, module in model.named_modules() if self._selected(name, module)]
        unit_dims = self._unit_dim if isinstance(self._unit_dim, dict) else {}
        merged = [] if isinstance(self._call_sites, str) else self._call_sites
        for option, given in (("unit_dim", unit_dims), ("call_sites", merged)):
            unknown = [
                name for name in given if isinstance(name, str) and name not in set(monitored)
            ]
            if unknown:
                raise ValueError(
                    f"DeadNeuronMonitor: {option}= names {unknown} are not monitored "
                    f"layers; the monitored layers are {monitored}"
                )
        # A recognised activation without a rule (a softmax, a subclass overriding forward)
        # would be counted by ReLU's rule, the one for modules of the user's own: a wrong
        # count, so refuse it.
        ruleless = [
            f"{name} ({type(module).__name__})"
            for name, module in model.named_modules()
            if self._selected(name, module) and ruleless_activation(module)
        ]
        if ruleless:
            raise ValueError(
                f"DeadNeuronMonitor: modules= selects {ruleless}, activations it has no "
                "rule for (not elementwise, or a subclass whose forward may compute "
                "something else), and ReLU's rule would count them wrongly. Supported: "
                f"{', '.join(ACTIVATIONS)} and the activations of torch_ext.monitor.rules"
            )
        unfit = [
            f"{name}: {problem}"
            for name, module in model.named_modules()
            if self._selectors is not None
            and self._selected(name, module)
            and (problem := self._rule_problem(module)) is not None
        ]
        if unfit:
            raise ValueError(f"DeadNeuronMonitor: modules= selects layers it cannot count: {unfit}")
        # Layer names add "#k" for call sites (and ":" for functional calls): a module whose
        # own name holds "#" would share its name with another module's call site.
        clashing = [name for name in monitored if CALL in name]
        if clashing:
            raise ValueError(
                f"DeadNeuronMonitor: monitored modules {clashing} have '#' in their names, "
                "which the reports use for call sites ('act#1' is the second call of 'act'); "
                "rename them (e.g. the ModuleDict key) or leave them out with modules="
            )

    def attach(self) -> DeadNeuronMonitor:
        """Attach the counting hooks (idempotent). Returns the monitor."""
        if self._attached():
            return self
        model = self._model()
        if model is None:
            raise RuntimeError("DeadNeuronMonitor: the model it watched no longer exists")
        self._check_names(model)
        self._model_held = model
        for name, module in model.named_modules():
            if not self._selected(name, module):
                continue
            sites = self._sites.get(name)
            if sites is None:
                sites = self._sites[name] = CallSites(name, module, self._merged(name, module))
            sites.module = module
            self._count(sites, module)
        self._table.order_layers()
        if not self._sites and not self.functional:  # functional layers come at forwards
            logger.warning(
                "DeadNeuronMonitor: no module of the model matched; nothing is counted%s",
                _other_activations(model),
            )
        skipped = self.skipped_modules
        if skipped:
            kinds: dict[str, int] = {}
            for kind in skipped.values():
                kinds[kind] = kinds.get(kind, 0) + 1
            logger.info(
                "DeadNeuronMonitor: not monitored: %s (no dead-unit rule)",
                ", ".join(f"{count} {kind}" for kind, count in kinds.items()),
            )
        self._tracker = ForwardTracker(model, self)
        self._tracer = LinkTracer(self._book, self._table, model)
        self._tracker.subscribe(self._tracer)
        table = self._table
        table.tracker, table.makers_unit_dim = self._tracker, self._tracker.unit_dim
        table.on_outside_call = self._book.note_outside_call
        if self.functional:  # outside the tracer: its mode is entered first and left last
            monitored = {id(sites.module) for sites in self._sites.values() if not sites.functional}
            self._functional_watch = FunctionalWatch(table, self._tracker, monitored)
            self._tracker.subscribe(self._functional_watch, outermost=True)
        return self

    def _count(self, sites: CallSites, module: torch.nn.Module) -> None:
        """Count `module` inside its own kernel if it is a torch_ext.nn module whose one
        counter slot is free, else by a forward pre-hook: another monitor holds the slot (both
        then count), or the module is in place (the hook sees its input before it is gone)."""
        if (
            isinstance(module, CountedActivation)
            and not getattr(module, "inplace", False)
            and counter_owner(module) is None
        ):
            module.counter = FusedCounter(self._table, sites)
            return
        hook = CountingHook(self._table, sites)
        hook.handle = module.register_forward_pre_hook(hook)
        self._handles.append(hook.handle)
        if self.tau is not None:  # |h| per unit, from the output
            sums = AbsSumHook(hook, self._table)
            sums.handle = module.register_forward_hook(sums)
            self._handles.append(sums.handle)

    def _stop_watching(self) -> None:
        self._table.unwatch()
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None
        if self._tracer is not None:
            self._tracer.close()
            self._tracer = None
        if self._functional_watch is not None:
            self._functional_watch.close()
            self._functional_watch = None

    # --- functional call sites -------------------------------------------------------------
    def _placeholder_site(self, name: str) -> CallSites | None:
        """A functional call site another rank or a checkpoint names before this process ran
        it (``block.0:relu#0``); None for other names or without ``functional=True``."""
        return self._table.placeholder_site(name) if self.functional else None

    def links(self, name: str) -> tuple[torch.nn.Module | None, list[torch.nn.Module]]:
        """The Linear/Conv layer feeding monitored layer `name` (a module's name, or a call
        site's as in the reports; through a BatchNorm/LayerNorm/GroupNorm if one stands
        between) and the Linear/Conv layers reading its output (through pooling, dropout,
        flatten and views), as traced in the model's first training forward after
        :meth:`attach`; ``(None, [])`` when :meth:`link_problem` names a reason (that
        forward has not run or did not reach this call site, the layer is not in such a
        chain, another forward fed or read it through other modules or it was called outside
        a forward of the model, or one of those modules was replaced in the model since)."""
        link = self.link(name)
        if link is None:
            return None, []
        return link.producer[1](), [reader.module() for reader in link.readers]

    @property
    def model(self) -> torch.nn.Module | None:
        """The watched model, or None once it is gone (the monitor holds it weakly)."""
        return self._model()

    def link(self, name: str) -> Link | None:
        """The traced link of layer `name` (its producer, norm and readers, as weak
        references, and what revive could not keep exact), or None when
        :meth:`link_problem` names a reason."""
        return None if self.link_problem(name) is not None else self._book.links[name]

    def link_problem(self, name: str) -> str | None:
        """Why :meth:`links` has no chain for layer `name`, or None when it has one."""
        layer = self._layers.get(name)
        if layer is None:
            return f"'{name}' is not a monitored layer"
        if layer.sites.functional:
            return (
                "it is a functional call, made inside a module's forward: revive rewires "
                "the layers around activation modules only"
            )
        if not self._book.traced:
            return (
                "no eager training forward of the monitored model itself has run since "
                "attach(): links are learnt from its own forward, not from a submodule "
                "called directly (a LightningModule whose training_step calls self.net(x): "
                "monitor that submodule, DeadNeuronCallback(submodule='net')), and not "
                "inside torch.compile"
            )
        link = self._book.links.get(name)
        if link is None:
            return "it was not called in the model's first training forward after attach()"
        if link.problem is not None:
            return link.problem
        replaced = self._replaced_problem(layer.sites.name, link)
        if replaced is not None:  # a replaced module also changes how later forwards look
            return replaced
        return next(
            filter(None, (_use_problem(link, use) for use in self._book.uses.get(name, []))), None
        )

    def _replaced_problem(self, module_name: str, link: Link) -> str | None:
        """Which module of `link` is no longer the one at its name in the model, or None."""
        model = self._model()
        modules = {} if model is None else dict(model.named_modules())
        for name, ref in [(module_name, link.activation), *link.modules()]:
            if ref is None or ref() is None or modules.get(name) is not ref():
                return (
                    f"'{name}' is no longer the module the monitor saw there (replaced or "
                    "removed since)"
                )
        return None

    def remove(self) -> None:
        """Remove every hook; the model keeps no reference to the monitor, nor it to them."""
        self._model_held = None
        self._stop_watching()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for sites in self._sites.values():
            if sites.functional:
                continue
            if sites.module is not None and counter_owner(sites.module) is self._table:
                del sites.module.counter  # the class default (None) shows again
            sites.module = None

    def __enter__(self) -> DeadNeuronMonitor:
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    # --- windows ---------------------------------------------------------------------------
    def step(self) -> None:
        """Close a training step; after `window` steps the window's report joins the
        history, the layer warnings are checked, and the counts restart. Collective under
        ``torch.distributed``: every rank must call it."""
        self._steps += 1
        if self._steps - self._window_start >= self.window:
            report = self._current_report(collective=True)
            self._history.append(report)
            self._forget_old_unit_detail()
            self._warn(report)
            for layer in self._layers.values():
                layer.reset()
            self._window_start = self._steps

    def _warn_compiled(self) -> None:
        """Say once that functional calls went uncounted in compiled forwards (see
        ``functional``): the report would otherwise look complete."""
        compiled = self._tracker.compiled_forwards if self._tracker is not None else 0
        if self._functional_watch is not None and compiled and not self._warned_compiled:
            self._warned_compiled = True
            logger.warning(
                "DeadNeuronMonitor(functional=True): %d forwards of the model ran "
                "under torch.compile, where functional activation calls are not "
                "counted (activation modules are); run the model eagerly to count "
                "them",
                compiled,
            )

    def _forget_old_unit_detail(self) -> None:
        """Drop the per-unit lists of windows older than the last `keep_windows`: they grow
        with units x windows, and every checkpoint carries the history."""
        while self._detailed_from < len(self._history) - self.keep_windows:
            oldest = self._history[self._detailed_from]
            self._history[self._detailed_from] = without_unit_detail(oldest)
            self._detailed_from += 1

    def _warn(self, report: MonitorReport) -> None:
        for layer in self._dead_fraction_warnings.newly_over(report):
            warn_on_rank_zero(logger, self._dead_fraction_warnings.message(layer, report))

    def _gathered_counts(self, collective: bool) -> dict[str, LayerCounts]:
        """Each counted layer's counts on the host: this rank's, or with `collective` under
        torch.distributed, summed over ranks."""
        if collective and world_size() > 1:
            return summed_over_ranks(self._table, self._placeholder_site)
        result = {}
        for name, layer in self._layers.items():
            if layer.counts is not None:
                counts = layer.counts.cpu()
                result[name] = LayerCounts(
                    counts[0].tolist(), counts[1].tolist(), layer.samples, _host_sums(layer)
                )
        return result

    def _current_report(self, collective: bool) -> MonitorReport:
        self._warn_compiled()
        layers = {}
        for name, counted in self._gathered_counts(collective).items():
            layer = self._layers[name]
            unsummed = layer.sites.name in self._table.unsummed_sites or layer.sums_incomplete
            sums = None if unsummed else counted.abs_sums
            layers[name] = layer_report(
                layer, counted.active, counted.alive, counted.samples, sums, self.tau
            )
        return MonitorReport(
            window=len(self._history),
            first_step=self._window_start,
            steps=self._steps - self._window_start,
            layers=layers,
        )

    # --- reading ---------------------------------------------------------------------------
    def report(self, collective: bool = True) -> MonitorReport:
        """The open window's statistics if it has counted anything, else the last closed
        window's (a host sync).

        Args:
            collective: under ``torch.distributed``, sum the counts over ranks, which every
                rank must then call in the same order. ``False`` reads this rank's counts
                alone, without communication (the closed windows of :attr:`history` are
                summed over ranks either way). Default: ``True``.
        """
        current = self._current_report(collective)
        has_samples = any(layer.samples for layer in current.layers.values())
        if not has_samples and self._history:
            return self._history[-1]
        return current

    @property
    def history(self) -> list[MonitorReport]:
        """Reports of the closed windows, oldest first; those older than the last
        `keep_windows` have no per-unit lists (``has_unit_detail`` False)."""
        return list(self._history)

    @property
    def layer_names(self) -> list[str]:
        return list(self._layers)

    @property
    def skipped_modules(self) -> dict[str, str]:
        """The model's activation modules the monitor recognises but does not count, as
        ``{module name: type name}`` in the model's order: those without a rule
        (``UNSUPPORTED_ACTIVATIONS``: softmaxes and GLU, which are not elementwise; a
        subclass overriding ``forward``; activation-like classes of other libraries such
        as ``XIELUActivation``) and those whose rule cannot count them for this
        ``grad_eps`` (RReLU's random slopes on both sides of it). Empty when ``modules=``
        was given (the selection is then explicit) or the model is gone. Read from the
        model as it is now."""
        model = self._model()
        if self._selectors is not None or model is None:
            return {}
        return {
            name: type(module).__name__
            for name, module in model.named_modules()
            if not self._selected(name, module)
            and (ruleless_activation(module) or counted_by_default(module))
        }

    def module(self, name: str) -> torch.nn.Module | None:
        """The monitored module of layer `name`, a module's name or a call site's (``act#1``
        is ``act``); None once the model is gone."""
        model = self._model()
        layer = self._layers.get(name)
        if layer is not None and layer.sites.functional:
            return None
        module_name = name if layer is None else layer.sites.name
        return None if model is None else dict(model.named_modules()).get(module_name)

    def _attached(self) -> bool:
        return bool(self._handles) or any(
            sites.module is not None and not sites.functional for sites in self._sites.values()
        )

    def __repr__(self) -> str:
        model = self._model()
        watched = "no model (gone)" if model is None else type(model).__name__
        state = "attached" if self._attached() else "detached"
        return (
            f"DeadNeuronMonitor({watched}, window={self.window}, grad_eps={self.grad_eps}, "
            + ("" if self.tau is None else f"tau={self.tau}, ")
            + f"layers={len(self._layers)}, steps={self._steps}, "
            f"closed_windows={len(self._history)}, {state})"
        )

    def summary(self, collective: bool = True) -> str:
        """A readable table of :meth:`report` (``collective`` as there)."""
        return writers.summary_table(self.report(collective))

    def to_dict(self, collective: bool = True) -> dict[str, Any]:
        """Configuration, closed windows and the current report (``collective`` as in
        :meth:`report`), as plain Python data."""
        return {
            "config": {
                "window": self.window,
                "grad_eps": self.grad_eps,
                "warn_dead_fraction": self.warn_dead_fraction,
                "count_eval": self.count_eval,
                "keep_windows": self.keep_windows,
                "merged_call_sites": [name for name, sites in self._sites.items() if sites.merged],
            },
            "steps": self._steps,
            "history": [r.to_dict() for r in self._history],
            "current": self.report(collective).to_dict(),
        }

    def write_json(self, path: str, collective: bool = True) -> None:
        """Write :meth:`to_dict` as JSON."""
        with open(path, "w") as f:
            json.dump(self.to_dict(collective), f, indent=1)

    CSV_FIELDS = writers.CSV_FIELDS

    def write_csv(self, path: str) -> None:
        """Write one row per closed window and layer (the history, for plotting)."""
        writers.write_csv(self._history, path)

    def write_tensorboard(
        self,
        writer: Any,
        global_step: int | None = None,
        collective: bool = True,
        prefix: str = "dead_neurons",
    ) -> None:
        """Log :meth:`report` to a ``torch.utils.tensorboard.SummaryWriter``: its
        :meth:`~MonitorReport.metrics` as scalars (the callbacks' tags), per-unit activation
        rates as a histogram per layer (``<prefix>/<layer>/activation_rate``)."""
        step = self._steps if global_step is None else global_step
        writers.write_tensorboard(self.report(collective), writer, step, prefix)

    # --- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Counts, history and position, for checkpoint and resume."""
        return {
            "steps": self._steps,
            "window_start": self._window_start,
            "history": [r.to_dict() for r in self._history],
            "warned": sorted(self._dead_fraction_warnings.warned),
            "layers": {
                name: {
                    "counts": None if layer.counts is None else layer.counts.cpu().clone(),
                    "abs_sums": None if layer.abs_sums is None else layer.abs_sums.cpu().clone(),
                    "samples": layer.samples,
                    "module": layer.sites.name,
                    "call_site": layer.index,
                }
                for name, layer in self._layers.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved. Attach first: layers are matched by module
        and call site (a call site not seen here yet is made); a layer the state does not
        hold restarts uncounted. The counts move to the device of each layer's next input."""
        sites = {name: self._saved_site(name, entry) for name, entry in state["layers"].items()}
        unknown = sorted(name for name, site in sites.items() if site is None)
        if unknown:
            raise KeyError(
                f"DeadNeuronMonitor.load_state_dict: layers {unknown} are not monitored "
                f"here (monitored: {sorted(self._layers)}, calls merged for "
                f"{[n for n, s in self._sites.items() if s.merged]}); attach() to the same model "
                "with the same call_sites first"
            )
        self._steps = state["steps"]
        self._window_start = state["window_start"]
        self._history = [report_from_dict(r) for r in state["history"]]
        self._detailed_from = 0
        self._forget_old_unit_detail()
        self._dead_fraction_warnings.warned = set(state["warned"])
        saved = [(self._table.site(*sites[name]), entry) for name, entry in state["layers"].items()]
        loaded = {id(layer) for layer, _ in saved}
        for layer in self._layers.values():
            if id(layer) not in loaded:
                layer.counts, layer.samples, layer.abs_sums = None, 0, None
        for layer, entry in saved:
            device = layer.counts.device if layer.counts is not None else "cpu"
            counts, sums = entry["counts"], entry.get("abs_sums")
            with outside_inference_mode():
                layer.counts = None if counts is None else counts.to(device).clone()
                layer.abs_sums = None if sums is None else sums.to(device).clone()
            layer.samples = entry["samples"]
            # Saved without tau=: this window's |h| sums would miss its earlier samples.
            layer.sums_incomplete = self.tau is not None and sums is None and layer.samples > 0

    def _saved_site(self, name: str, entry: dict[str, Any]) -> tuple[CallSites, int] | None:
        """The module and call site a :meth:`state_dict` entry restores, or None when that
        module is not monitored here or its calls are merged here. Entries saved before call
        sites existed name the module."""
        module = entry.get("module", name)
        sites = self._sites.get(module) or self._placeholder_site(module)
        call = entry.get("call_site", 0)
        if sites is None or (call > 0 and sites.merged):
            return None
        return sites, call


def _host_sums(layer: Layer) -> list[float] | None:
    return None if layer.abs_sums is None else layer.abs_sums.cpu().tolist()


def _other_activations(model: torch.nn.Module) -> str:
    """What the model uses instead, for the warning when nothing matched: its activation
    modules without a dead-unit rule (torch's GELU, SiLU, ..., and classes named like
    activations, such as Hugging Face's GELUActivation), and a hint at activations called
    as functions, which only functional=True watches."""
    kinds: dict[str, int] = {}
    for module in model.modules():
        if ruleless_activation(module):
            name = type(module).__name__
            kinds[name] = kinds.get(name, 0) + 1
    hint = "if the model calls its activations as functions (F.gelu), pass functional=True"
    if not kinds:
        return f" ({hint})"
    found = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    return f" (the model's activations: {found}; the monitor has no rule for them; {hint})"
