"""The monitor's writers, each a function of a window's report (or of the closed windows):
a readable table, a CSV of the history for plotting, TensorBoard scalars and histograms."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

import torch

from .reports import MonitorReport

__all__ = ["CSV_FIELDS", "summary_table", "write_csv", "write_tensorboard"]

CSV_FIELDS = (
    "window",
    "first_step",
    "steps",
    "layer",
    "activation",
    "units",
    "samples",
    "dead",
    "dormant",
    "dead_fraction",
    "dormant_fraction",
    "mean_activation_rate",
    "condition",
    "tau_dormant",
    "tau_dormant_fraction",
)


def summary_table(report: MonitorReport) -> str:
    """The window's layers as an aligned table, its columns as wide as the longest layer
    name and activation."""
    name_width = max([24, *(len(name) for name in report.layers)])
    kind_width = max([10, *(len(layer.activation) for layer in report.layers.values())])
    scored = any(layer.tau is not None for layer in report.layers.values())
    header = (
        f"{'layer':<{name_width}} {'activation':<{kind_width}} {'units':>6} {'dead':>6} "
        f"{'dead %':>7} {'dormant':>8} {'dormant %':>9} {'mean act.':>9}"
        + (f" {'tau-dorm. %':>11}" if scored else "")
    )
    lines = [
        f"DeadNeuronMonitor: window {report.window}, steps {report.first_step}"
        f"-{report.first_step + max(report.steps, 1) - 1}",
        header,
        "-" * len(header),
    ]
    for layer in report.layers.values():
        tau = layer.tau_dormant_fraction
        lines.append(
            f"{layer.name:<{name_width}} {layer.activation:<{kind_width}} {layer.units:>6} "
            f"{layer.dead:>6} {100 * layer.dead_fraction:>6.1f}% {layer.dormant:>8} "
            f"{100 * layer.dormant_fraction:>8.1f}% {layer.mean_activation_rate:>9.3f}"
            + ("" if not scored else f" {'-':>11}" if tau is None else f" {100 * tau:>10.1f}%")
        )
    if any(layer.condition == "saturated" for layer in report.layers.values()):
        lines.append(
            "(for Tanh, Sigmoid, Hardtanh, Hardsigmoid and Softsign, 'dead' counts saturated "
            "units: no sample inside the interval where |f'(z)| > grad_eps)"
        )
    return "\n".join(lines)


def write_csv(history: Iterable[MonitorReport], path: str) -> None:
    """One row per window of `history` and layer (CSV_FIELDS)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for report in history:
            for layer in report.layers.values():
                writer.writerow(
                    [
                        report.window,
                        report.first_step,
                        report.steps,
                        layer.name,
                        layer.activation,
                        layer.units,
                        layer.samples,
                        layer.dead,
                        layer.dormant,
                        layer.dead_fraction,
                        layer.dormant_fraction,
                        layer.mean_activation_rate,
                        layer.condition,
                        layer.tau_dormant,
                        layer.tau_dormant_fraction,
                    ]
                )


def write_tensorboard(
    report: MonitorReport, writer: Any, step: int, prefix: str = "dead_neurons"
) -> None:
    """The window's :meth:`~MonitorReport.metrics` as scalars and its per-unit activation
    rates as a histogram per layer (``<prefix>/<layer>/activation_rate``), to a
    ``torch.utils.tensorboard.SummaryWriter``."""
    for tag, value in report.metrics(prefix).items():
        writer.add_scalar(tag, value, step)
    for layer in report.layers.values():
        if layer.samples and layer.active_counts is not None:
            rates = torch.tensor(layer.active_counts, dtype=torch.float64) / layer.samples
            writer.add_histogram(f"{prefix}/{layer.name}/activation_rate", rates, step)
