"""What a window of the monitor reports, per layer, as plain data, and the one warning about a
layer whose dead fraction passes the threshold (said by the monitor and the callbacks)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sites import Layer


# --- reports ---------------------------------------------------------------------------------
@dataclass
class LayerReport:
    """Statistics of one monitored layer over one window.

    ``dead_units``, ``active_counts`` and ``alive_counts`` are per unit. The monitor keeps
    them only for its last ``keep_windows`` windows: older reports have them ``None`` and
    ``has_unit_detail`` False, their scalar fields intact.

    Attributes:
        name: the layer: a module's name, a call site's (``act#1``) or a functional call's
            (``block.0:relu#0``).
        activation: the activation's name (its class name for a module, e.g. ``"ReLU"``).
        units: how many units the layer has.
        samples: how many samples each unit saw in the window.
        dead: units that no sample left gradient-alive (``|f'(z)| > grad_eps``).
        dormant: units that no sample made active (``z > 0``).
        dead_fraction: ``dead / units``.
        dormant_fraction: ``dormant / units``.
        mean_activation_rate: the fraction of samples with ``z > 0``, averaged over units.
        dead_units: the indices of the dead units.
        activation_rate_histogram: how many units have an activation rate in each of the
            bins ``[0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]``.
        active_counts: per unit, the samples with ``z > 0``.
        alive_counts: per unit, the gradient-alive samples.
        has_unit_detail: whether the per-unit lists are kept.
        condition: what ``dead`` means for this activation: ``"dead"``, or
            ``"saturated"`` for activations flat on both sides (Tanh, Sigmoid, Hardtanh,
            Hardsigmoid, Softsign): no sample left the unit inside the interval where
            ``|f'(z)| > grad_eps``.
        tau: the monitor's ``tau=`` (ReDo's dormancy threshold), or None.
        tau_dormant: units whose score is at most ``tau`` (None without ``tau=``, when the
            layer's outputs could not be summed, or when an output in the window was inf or
            NaN).
        tau_dormant_fraction: ``tau_dormant / units``.
        tau_dormant_units: the indices of the tau-dormant units.
        scores: per unit, ReDo's score ``mean|h_u| / mean_k mean|h_k|`` over the window
            (all 0 when every output of the layer was 0).
        mean_abs: per unit, ``mean|h_u|``: the mean absolute output over the window.
    """

    name: str
    activation: str
    units: int
    samples: int  # per unit
    dead: int
    dormant: int
    dead_fraction: float
    dormant_fraction: float
    mean_activation_rate: float
    dead_units: list[int] | None
    activation_rate_histogram: list[int]  # units per rate bin [0, 0.1), ..., [0.9, 1.0]
    active_counts: list[int] | None = field(repr=False)
    alive_counts: list[int] | None = field(repr=False)
    has_unit_detail: bool = True
    condition: str = "dead"
    tau: float | None = None
    tau_dormant: int | None = None
    tau_dormant_fraction: float | None = None
    tau_dormant_units: list[int] | None = None
    scores: list[float] | None = field(default=None, repr=False)
    mean_abs: list[float] | None = field(default=None, repr=False)


@dataclass
class MonitorReport:
    """One window's statistics: the steps it covers and a :class:`LayerReport` per layer.

    Attributes:
        window: the window's index (0 for the first).
        first_step: the index of the window's first step.
        steps: how many steps the window covers.
        layers: ``{layer name: LayerReport}``, by module (in the model's order), then call
            site.
    """

    window: int  # index of the window (0 for the first)
    first_step: int
    steps: int
    layers: dict[str, LayerReport]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain Python data (nested dicts and lists), e.g. for JSON."""
        return asdict(self)

    def metrics(self, prefix: str = "dead_neurons") -> dict[str, float]:
        """The window's fractions as named scalars, the one tag scheme of
        :meth:`DeadNeuronMonitor.write_tensorboard` and the Lightning and Hugging Face
        callbacks: ``<prefix>/<layer>/dead_fraction`` and ``.../dormant_fraction`` per layer
        (and ``.../tau_dormant_fraction`` with the monitor's ``tau=``), and over all units
        ``<prefix>/dead_fraction`` and ``<prefix>/dormant_fraction``."""
        if not isinstance(prefix, str):
            raise TypeError(f"MonitorReport.metrics: prefix must be a str, got {prefix!r}")
        head = f"{prefix}/" if prefix else ""  # "": the tags start with the layer's name
        metrics: dict[str, float] = {}
        for name, layer in self.layers.items():
            metrics[f"{head}{name}/dead_fraction"] = layer.dead_fraction
            metrics[f"{head}{name}/dormant_fraction"] = layer.dormant_fraction
            if layer.tau_dormant_fraction is not None:
                metrics[f"{head}{name}/tau_dormant_fraction"] = layer.tau_dormant_fraction
        units = sum(layer.units for layer in self.layers.values())
        if units:
            layers = self.layers.values()
            metrics[f"{head}dead_fraction"] = sum(layer.dead for layer in layers) / units
            metrics[f"{head}dormant_fraction"] = sum(layer.dormant for layer in layers) / units
        return metrics


def redo_scores(abs_sums: list[float]) -> list[float]:
    """ReDo's score per unit: its mean |h| over the layer's mean (the sample counts cancel:
    every unit of a layer sees the same samples); all 0 when the layer output only zeros."""
    mean = sum(abs_sums) / len(abs_sums) if abs_sums else 0.0
    return [value / mean if mean > 0 else 0.0 for value in abs_sums]


def layer_report(
    layer: Layer,
    active: list[int],
    alive: list[int],
    samples: int,
    abs_sums: list[float] | None = None,
    tau: float | None = None,
) -> LayerReport:
    """The report of one layer from its counts (and, with `tau`, its |h| sums)."""
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
        condition=layer.condition,
        tau=tau,
        **_tau_fields(abs_sums if samples > 0 else None, tau, samples),
    )


def _tau_fields(abs_sums: list[float] | None, tau: float | None, samples: int) -> dict[str, Any]:
    """The tau fields, or none: without tau=, without sums, or when a sum is not finite (an
    inf or NaN output in the window): no unit's score can be told then."""
    if tau is None or abs_sums is None or not all(math.isfinite(v) for v in abs_sums):
        return {}
    scores = redo_scores(abs_sums)
    dormant = [u for u, score in enumerate(scores) if score <= tau]
    return {
        "tau_dormant": len(dormant),
        "tau_dormant_fraction": len(dormant) / len(scores) if scores else 0.0,
        "tau_dormant_units": dormant,
        "scores": scores,
        "mean_abs": [value / samples for value in abs_sums],
    }


def without_unit_detail(report: MonitorReport) -> MonitorReport:
    """`report` with its per-unit lists dropped (scalars and histograms kept)."""
    layers = {
        name: dataclasses.replace(
            layer,
            dead_units=None,
            active_counts=None,
            alive_counts=None,
            tau_dormant_units=None,
            scores=None,
            mean_abs=None,
            has_unit_detail=False,
        )
        for name, layer in report.layers.items()
    }
    return dataclasses.replace(report, layers=layers)


def report_from_dict(data: dict[str, Any]) -> MonitorReport:
    layers = {name: LayerReport(**layer) for name, layer in data["layers"].items()}
    return MonitorReport(
        window=data["window"], first_step=data["first_step"], steps=data["steps"], layers=layers
    )


class DeadFractionWarnings:
    """The one warning about a layer whose dead fraction passes ``threshold``: said once per
    layer (the names already warned about are kept, and checkpointed by their owners), in
    the same words by the monitor and both training callbacks.

    Args:
        threshold: the dead fraction above which a layer is warned about; None warns never.
    """

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.warned: set[str] = set()

    def newly_over(self, report: MonitorReport) -> list[LayerReport]:
        """The layers of `report` whose dead fraction passes the threshold for the first
        time (they are then counted as warned about)."""
        if self.threshold is None:
            return []
        over = [
            layer
            for layer in report.layers.values()
            if layer.dead_fraction > self.threshold and layer.name not in self.warned
        ]
        self.warned.update(layer.name for layer in over)
        return over

    def message(self, layer: LayerReport, report: MonitorReport) -> str:
        return (
            f"DeadNeuronMonitor: layer '{layer.name}' ({layer.activation}) has {layer.dead} of "
            f"{layer.units} units {layer.condition} ({100 * layer.dead_fraction:.1f}%, above "
            f"{100 * self.threshold:.1f}%) in window {report.window} (steps "
            f"{report.first_step}-{report.first_step + report.steps - 1})"
        )
