"""Dead-neuron monitor: per-unit activity statistics of activation layers during training.

A *unit* is a feature of a Linear output (the last dim) or a channel of a convolution
output (dim 1). Over a *window* of training steps (closed with :meth:`DeadNeuronMonitor.step`)
the monitor counts, per unit, the samples seen, the samples with pre-activation ``z > 0``
(*active*) and the samples whose local derivative ``|f'(z)|`` exceeds ``grad_eps``
(*gradient-alive*). A unit is **dead** when no sample left it gradient-alive, and
**dormant** when none made it active.

Counting runs in the registered op ``torch.ops.torch_ext.count_active_`` (one pass, no
temporary, no host sync); numbers reach the host only when a report is read or a window
closes.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Union

import torch
from torch import Tensor

from .nn.modules import _Counted

__all__ = ["DeadNeuronMonitor", "LayerReport", "MonitorReport"]

logger = logging.getLogger("torch_ext.monitor")

# The activation modules the monitor attaches to by default (torch_ext.nn's subclass these).
KNOWN_ACTIVATIONS: tuple[type[torch.nn.Module], ...] = (
    torch.nn.ReLU,
    torch.nn.LeakyReLU,
    torch.nn.PReLU,
    torch.nn.ELU,
    torch.nn.SELU,
    torch.nn.CELU,
)

ModuleSelector = Union[str, type, Callable[[str, torch.nn.Module], bool]]

# Layers whose units feed and read activations (what revive() re-initialises).
WEIGHTED_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)


def alive_threshold(module: torch.nn.Module, units: int, grad_eps: float, device) -> Tensor:
    """Per-unit z above which |f'(z)| > grad_eps for the activation `module`, from the
    activation definitions (``torch.ops.torch_ext.alive_threshold``). Modules the monitor
    does not know get ReLU's rule (gradient flows only for z > 0)."""
    threshold = torch.ops.torch_ext.alive_threshold
    if isinstance(module, torch.nn.PReLU):
        return torch.ops.torch_ext.slopes_alive_threshold(module.weight, units, grad_eps).to(device)
    if isinstance(module, torch.nn.LeakyReLU):
        value = threshold("leaky_relu", module.negative_slope, grad_eps)
    elif isinstance(module, torch.nn.SELU):
        value = threshold("selu", 0.0, grad_eps)
    elif isinstance(module, torch.nn.ELU):
        value = threshold("elu", module.alpha, grad_eps)
    elif isinstance(module, torch.nn.CELU):
        value = threshold("celu", module.alpha, grad_eps)
    else:
        value = threshold("relu", 0.0, grad_eps)
    return torch.full((units,), value, dtype=torch.float32, device=device)


@dataclass
class LayerReport:
    """Statistics of one monitored layer over one window."""

    name: str
    activation: str
    units: int
    samples: int  # per unit
    dead: int
    dormant: int
    dead_fraction: float
    dormant_fraction: float
    mean_activation_rate: float
    dead_units: list[int]
    activation_rate_histogram: list[int]  # units per rate bin [0, 0.1), ..., [0.9, 1.0]
    active_counts: list[int] = field(repr=False)
    alive_counts: list[int] = field(repr=False)


@dataclass
class MonitorReport:
    """One window's statistics: the steps it covers and a :class:`LayerReport` per layer."""

    window: int  # index of the window (0 for the first)
    first_step: int
    steps: int
    layers: dict[str, LayerReport]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Layer:
    """Counters of one monitored module, on the device of its inputs."""

    def __init__(self, name: str, module: torch.nn.Module) -> None:
        self.name = name
        self.module: torch.nn.Module | None = module  # None while detached
        self.activation = type(module).__name__
        self.counts: Tensor | None = None  # int64 [2, units]: active, alive
        self.samples = 0  # per unit, known on the host from shapes
        self.threshold: Tensor | None = None
        self.unit_dim: int | None = None

    def count(self, z: Tensor, unit_dim: int, grad_eps: float) -> None:
        torch.ops.torch_ext.count_active_(z.detach(), *self.prepare(z, unit_dim, grad_eps))

    def prepare(self, z: Tensor, unit_dim: int, grad_eps: float) -> tuple[Tensor, int, Tensor]:
        """Counts this call's samples; returns count_active_'s (counts, unit_dim, threshold)."""
        dim = unit_dim % z.dim()
        units = z.shape[dim]
        if self.counts is None:
            self.counts = torch.zeros(2, units, dtype=torch.int64, device=z.device)
        elif self.counts.shape[1] != units:
            raise ValueError(
                f"DeadNeuronMonitor: layer '{self.name}' was called with {units} units along "
                f"dim {dim}, but earlier with {self.counts.shape[1]}; pass unit_dim for it"
            )
        if self.threshold is None or isinstance(self.module, torch.nn.PReLU):
            self.threshold = alive_threshold(self.module, units, grad_eps, z.device)
        self.samples += z.numel() // units
        return self.counts, dim, self.threshold

    def reset(self) -> None:
        if self.counts is not None:
            self.counts.zero_()
        self.samples = 0


def _report(layer: _Layer, active: list[int], alive: list[int], samples: int) -> LayerReport:
    units = len(active)
    dead = [u for u in range(units) if samples > 0 and alive[u] == 0]
    dormant = sum(1 for u in range(units) if samples > 0 and active[u] == 0)
    rates = [a / samples if samples else 0.0 for a in active]
    histogram = [0] * 10
    for rate in rates:
        histogram[min(int(rate * 10), 9)] += 1
    return LayerReport(
        name=layer.name,
        activation=layer.activation,
        units=units,
        samples=samples,
        dead=len(dead),
        dormant=dormant,
        dead_fraction=len(dead) / units if units else 0.0,
        dormant_fraction=dormant / units if units else 0.0,
        mean_activation_rate=sum(rates) / units if units else 0.0,
        dead_units=dead,
        activation_rate_histogram=histogram,
        active_counts=list(active),
        alive_counts=list(alive),
    )


class _FusedCounter:
    """Set on a torch_ext.nn module as ``_counter``: its forward then runs the counted op,
    the activation and the counting in one pass (see torch_ext.nn.modules._Counted)."""

    def __init__(self, monitor: DeadNeuronMonitor, layer: _Layer) -> None:
        self._monitor = weakref.ref(monitor)
        self._layer = layer

    def counting_args(self, module: torch.nn.Module, z: Tensor) -> tuple[Tensor, int, Tensor] | None:
        monitor = self._monitor()
        if monitor is None or not monitor._counts_call(module, z):
            return None
        return self._layer.prepare(z, monitor._unit_dim_of(self._layer.name, z), monitor.grad_eps)


class DeadNeuronMonitor:
    r"""Records, per unit of every activation layer, how often it is active and whether it
    still passes gradient, over windows of training steps.

    Args:
        model: the network to watch.
        window: training steps per window; :meth:`step` closes a step. Default: ``100``.
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
            Default: ``1e-3``.
        threshold: log a warning the first time a layer's dead fraction in a window exceeds
            this. Default: ``0.10``.
        modules: which modules to watch: names, types, or ``(name, module) -> bool``
            predicates. Default: every ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU``,
            ``SELU`` and ``CELU`` (``torch_ext.nn``'s modules included).
        unit_dim: the dim that indexes units in a layer's input: an int for all layers or a
            ``{name: dim}`` dict. Default: the last dim for 1-D and 2-D inputs (Linear
            features), dim 1 otherwise (convolution channels).
        count_eval: also count in eval mode. Default: ``False``.

    Use as a context manager (hooks attached inside the ``with`` block) or call
    :meth:`attach` and :meth:`remove`. Counting happens in forward pre-hooks (so in-place
    activations are seen before they overwrite their input) with no host sync; the host
    reads the counts only when a window closes and when a report is read. Under
    ``torch.distributed``, closing a window and reading a report are collective: every rank
    must call them, and the counts are summed over ranks.

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
        threshold: float = 0.10,
        modules: Iterable[ModuleSelector] | None = None,
        unit_dim: int | dict[str, int] | None = None,
        count_eval: bool = False,
    ) -> None:
        if window < 1:
            raise ValueError(f"DeadNeuronMonitor: window must be >= 1 steps, got {window}")
        if not grad_eps > 0:
            raise ValueError(f"DeadNeuronMonitor: grad_eps must be > 0, got {grad_eps}")
        if not 0 <= threshold <= 1:
            raise ValueError(f"DeadNeuronMonitor: threshold must be in [0, 1], got {threshold}")
        # Held until remove(); afterwards only weakly, so a removed monitor keeps nothing alive.
        self._model_held: torch.nn.Module | None = model
        self._model = weakref.ref(model)
        self.window = window
        self.grad_eps = grad_eps
        self.threshold = threshold
        self.count_eval = count_eval
        self._selectors = list(modules) if modules is not None else None
        self._unit_dim = unit_dim
        self._layers: dict[str, _Layer] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._steps = 0  # steps closed so far
        self._window_start = 0  # step at which the open window began
        self._history: list[MonitorReport] = []
        self._warned: set[str] = set()
        # Which weighted layer feeds each monitored layer and which read it, learnt by
        # tensor identity in the first training forward after attach() (for revive()).
        self._links: dict[str, tuple[Any, list[Any]]] = {}
        self._discovery: list[torch.utils.hooks.RemovableHandle] = []
        self._produced_by: dict[int, Any] = {}

    # --- hooks -----------------------------------------------------------------------------
    def _selected(self, name: str, module: torch.nn.Module) -> bool:
        if self._selectors is None:
            return isinstance(module, KNOWN_ACTIVATIONS)
        for selector in self._selectors:
            if isinstance(selector, str) and selector == name:
                return True
            if isinstance(selector, type) and isinstance(module, selector):
                return True
            if callable(selector) and not isinstance(selector, type) and selector(name, module):
                return True
        return False

    def attach(self) -> DeadNeuronMonitor:
        """Attach the counting hooks (idempotent). Returns the monitor."""
        if self._handles:
            return self
        model = self._model()
        if model is None:
            raise RuntimeError("DeadNeuronMonitor: the model it watched no longer exists")
        self._model_held = model
        for name, module in model.named_modules():
            if not self._selected(name, module):
                continue
            layer = self._layers.get(name)
            if layer is None:
                layer = self._layers[name] = _Layer(name, module)
            layer.module = module
            if isinstance(module, _Counted) and not getattr(module, "inplace", False):
                module._counter = _FusedCounter(self, layer)  # counts inside its own kernel
            else:
                self._handles.append(module.register_forward_pre_hook(self._make_hook(layer)))
        if not self._layers:
            logger.warning("DeadNeuronMonitor: no module of the model matched; nothing is counted")
        if not self._links:
            self._start_discovery(model)
        return self

    def _start_discovery(self, model: torch.nn.Module) -> None:
        def produced(module, args, output):
            if isinstance(output, Tensor):
                self._produced_by[id(output)] = ("weighted", weakref.ref(module))

        def read(module, args):
            source = self._produced_by.get(id(args[0])) if args else None
            if source is not None and source[0] == "activation" and source[1] in self._links:
                self._links[source[1]][1].append(weakref.ref(module))

        for name, module in model.named_modules():
            if isinstance(module, WEIGHTED_LAYERS):
                self._discovery.append(module.register_forward_hook(produced))
                self._discovery.append(module.register_forward_pre_hook(read))
            elif name in self._layers:
                self._discovery.append(module.register_forward_hook(self._link_hook(name)))

    def _link_hook(self, name: str):
        def link(module, args, output):
            if not module.training or name in self._links or not args:
                return
            source = self._produced_by.get(id(args[0]))
            feeder = source[1] if source is not None and source[0] == "weighted" else None
            self._links[name] = (feeder, [])
            if isinstance(output, Tensor):
                self._produced_by[id(output)] = ("activation", name)

        return link

    def _stop_discovery(self) -> None:
        for handle in self._discovery:
            handle.remove()
        self._discovery.clear()
        self._produced_by.clear()

    def links(self, name: str) -> tuple[torch.nn.Module | None, list[torch.nn.Module]]:
        """The weighted layer (Linear/Conv) seen feeding monitored layer `name`, and those
        seen reading its output, in the first training forward after :meth:`attach`."""
        feeder, readers = self._links.get(name, (None, []))
        modules = [r() for r in readers]
        return (feeder() if feeder is not None else None), [m for m in modules if m is not None]

    def remove(self) -> None:
        """Remove every hook; the model keeps no reference to the monitor, nor it to them."""
        self._model_held = None
        self._stop_discovery()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for layer in self._layers.values():
            if layer.module is not None:
                vars(layer.module).pop("_counter", None)
            layer.module = None

    def __enter__(self) -> DeadNeuronMonitor:
        return self.attach()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def _counts_call(self, module: torch.nn.Module, z: Any) -> bool:
        return (module.training or self.count_eval) and isinstance(z, Tensor) and z.dim() > 0

    def _make_hook(self, layer: _Layer):
        monitor = weakref.ref(self)

        def count_inputs(module: torch.nn.Module, args: tuple) -> None:
            self_ = monitor()
            if self_ is None or not args or not self_._counts_call(module, args[0]):
                return
            layer.count(args[0], self_._unit_dim_of(layer.name, args[0]), self_.grad_eps)

        return count_inputs

    def _unit_dim_of(self, name: str, z: Tensor) -> int:
        if isinstance(self._unit_dim, int):
            return self._unit_dim
        if isinstance(self._unit_dim, dict) and name in self._unit_dim:
            return self._unit_dim[name]
        return -1 if z.dim() <= 2 else 1

    # --- windows ---------------------------------------------------------------------------
    def step(self) -> None:
        """Close a training step; after `window` steps the window's report joins the
        history, the layer warnings are checked, and the counts restart."""
        self._steps += 1
        if self._discovery and self._links:
            self._stop_discovery()  # one training forward has shown the structure
        if self._steps - self._window_start >= self.window:
            report = self._current_report()
            self._history.append(report)
            self._warn(report)
            for layer in self._layers.values():
                layer.reset()
            self._window_start = self._steps

    def _warn(self, report: MonitorReport) -> None:
        for layer in report.layers.values():
            if layer.name not in self._warned and layer.dead_fraction > self.threshold:
                self._warned.add(layer.name)
                logger.warning(
                    "DeadNeuronMonitor: layer '%s' (%s) has %d of %d units dead (%.1f%%) in "
                    "window %d (steps %d-%d)",
                    layer.name, layer.activation, layer.dead, layer.units,
                    100 * layer.dead_fraction, report.window, report.first_step,
                    report.first_step + report.steps - 1,
                )

    def _gathered_counts(self) -> dict[str, tuple[list[int], list[int], int]]:
        """Each layer's (active, alive, samples) on the host, summed over ranks."""
        names = [n for n, layer in self._layers.items() if layer.counts is not None]
        result = {}
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        for name in names:
            layer = self._layers[name]
            counts = layer.counts.clone()
            samples = torch.tensor([layer.samples], dtype=torch.int64, device=counts.device)
            if distributed and torch.distributed.get_world_size() > 1:
                torch.distributed.all_reduce(counts)
                torch.distributed.all_reduce(samples)
            counts = counts.cpu()
            result[name] = (counts[0].tolist(), counts[1].tolist(), int(samples.item()))
        return result

    def _current_report(self) -> MonitorReport:
        layers = {
            name: _report(self._layers[name], active, alive, samples)
            for name, (active, alive, samples) in self._gathered_counts().items()
        }
        return MonitorReport(
            window=len(self._history),
            first_step=self._window_start,
            steps=self._steps - self._window_start,
            layers=layers,
        )

    # --- reading ---------------------------------------------------------------------------
    def report(self) -> MonitorReport:
        """The open window's statistics if it has counted anything, else the last closed
        window's (a host sync; collective under torch.distributed)."""
        current = self._current_report()
        has_samples = any(layer.samples for layer in current.layers.values())
        if not has_samples and self._history:
            return self._history[-1]
        return current

    @property
    def history(self) -> list[MonitorReport]:
        """Reports of the closed windows, oldest first."""
        return list(self._history)

    @property
    def layer_names(self) -> list[str]:
        return list(self._layers)

    def module(self, name: str) -> torch.nn.Module | None:
        """The monitored module called `name` (None once the model is gone)."""
        model = self._model()
        return None if model is None else dict(model.named_modules()).get(name)

    def summary(self) -> str:
        """A readable table of :meth:`report`."""
        report = self.report()
        header = (f"{'layer':<24} {'activation':<10} {'units':>6} {'dead':>6} {'dead %':>7} "
                  f"{'dormant':>8} {'dormant %':>9} {'mean act.':>9}")
        lines = [
            f"DeadNeuronMonitor: window {report.window}, steps {report.first_step}"
            f"-{report.first_step + max(report.steps, 1) - 1}",
            header,
            "-" * len(header),
        ]
        for layer in report.layers.values():
            lines.append(
                f"{layer.name:<24} {layer.activation:<10} {layer.units:>6} {layer.dead:>6} "
                f"{100 * layer.dead_fraction:>6.1f}% {layer.dormant:>8} "
                f"{100 * layer.dormant_fraction:>8.1f}% {layer.mean_activation_rate:>9.3f}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Configuration, closed windows and the current report, as plain Python data."""
        return {
            "config": {
                "window": self.window,
                "grad_eps": self.grad_eps,
                "threshold": self.threshold,
                "count_eval": self.count_eval,
            },
            "steps": self._steps,
            "history": [r.to_dict() for r in self._history],
            "current": self.report().to_dict(),
        }

    def write_json(self, path: str) -> None:
        """Write :meth:`to_dict` as JSON."""
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)

    CSV_FIELDS = ("window", "first_step", "steps", "layer", "activation", "units", "samples",
                  "dead", "dormant", "dead_fraction", "dormant_fraction", "mean_activation_rate")

    def write_csv(self, path: str) -> None:
        """Write one row per closed window and layer (the history, for plotting)."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.CSV_FIELDS)
            for report in self._history:
                for layer in report.layers.values():
                    writer.writerow([report.window, report.first_step, report.steps, layer.name,
                                     layer.activation, layer.units, layer.samples, layer.dead,
                                     layer.dormant, layer.dead_fraction, layer.dormant_fraction,
                                     layer.mean_activation_rate])

    def write_tensorboard(self, writer: Any, global_step: int | None = None) -> None:
        """Log :meth:`report` to a ``torch.utils.tensorboard.SummaryWriter``: dead and dormant
        fractions as scalars, per-unit activation rates as a histogram, per layer."""
        report = self.report()
        step = self._steps if global_step is None else global_step
        for layer in report.layers.values():
            writer.add_scalar(f"dead_fraction/{layer.name}", layer.dead_fraction, step)
            writer.add_scalar(f"dormant_fraction/{layer.name}", layer.dormant_fraction, step)
            if layer.samples:
                rates = torch.tensor(layer.active_counts, dtype=torch.float64) / layer.samples
                writer.add_histogram(f"activation_rate/{layer.name}", rates, step)

    # --- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Counts, history and position, for checkpoint and resume."""
        return {
            "steps": self._steps,
            "window_start": self._window_start,
            "history": [r.to_dict() for r in self._history],
            "warned": sorted(self._warned),
            "layers": {
                name: {
                    "counts": None if layer.counts is None else layer.counts.cpu().clone(),
                    "samples": layer.samples,
                }
                for name, layer in self._layers.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved. Attach first: layers are matched by name."""
        unknown = set(state["layers"]) - set(self._layers)
        if unknown:
            raise KeyError(
                f"DeadNeuronMonitor.load_state_dict: layers {sorted(unknown)} are not monitored "
                f"here (monitored: {sorted(self._layers)}); attach() to the same model first"
            )
        self._steps = state["steps"]
        self._window_start = state["window_start"]
        self._history = [_report_from_dict(r) for r in state["history"]]
        self._warned = set(state["warned"])
        for name, saved in state["layers"].items():
            layer = self._layers[name]
            device = layer.counts.device if layer.counts is not None else "cpu"
            counts = saved["counts"]
            layer.counts = None if counts is None else counts.to(device).clone()
            layer.samples = saved["samples"]


def _report_from_dict(data: dict[str, Any]) -> MonitorReport:
    layers = {name: LayerReport(**layer) for name, layer in data["layers"].items()}
    return MonitorReport(window=data["window"], first_step=data["first_step"],
                         steps=data["steps"], layers=layers)
