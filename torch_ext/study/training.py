"""The training part of the study: one MLP per activation and scenario, watched by the
DeadNeuronMonitor, scored on the held-out split."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import nn as xnn
from ..monitor import DeadNeuronMonitor
from .data import Dataset

# The activations compared, as torch_ext.nn modules (width -> module).
ACTIVATIONS: dict[str, Callable[[int], torch.nn.Module]] = {
    "ReLU": lambda width: torch.nn.ReLU(),
    "LeakyReLU": lambda width: xnn.LeakyReLU(0.01),
    "PReLU": lambda width: xnn.PReLU(width),
    "ELU": lambda width: xnn.ELU(1.0),
    "SELU": lambda width: xnn.SELU(),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    lr: float
    bias_init: float | None  # None: PyTorch's default init of the hidden biases
    activations: tuple[str, ...] = tuple(ACTIVATIONS)


def scenarios(base_lr: float, high_lr: float, negative_bias: float) -> list[Scenario]:
    return [
        Scenario("baseline", f"Adam lr {base_lr:g}, PyTorch's default init", base_lr, None),
        Scenario("high_lr", f"Adam lr {high_lr:g}", high_lr, None),
        Scenario("negative_bias", f"hidden biases initialised to {negative_bias}", base_lr,
                 negative_bias),
        # The lecture notes' remedies, applied to ReLU.
        Scenario("remedy_low_lr", f"ReLU under high_lr with the rate cut to {high_lr / 10:g}",
                 high_lr / 10, None, ("ReLU",)),
        Scenario("remedy_bias", "ReLU with hidden biases initialised to +0.01", base_lr, 0.01,
                 ("ReLU",)),
    ]


@dataclass
class Settings:
    """Network, optimiser (Adam) and scenario constants of the training study."""

    width: int = 64
    depth: int = 4
    epochs: int = 30
    batch: int = 64
    seeds: int = 8
    base_lr: float = 1e-3
    high_lr: float = 0.03
    negative_bias: float = -3.0


def build_mlp(activation: str, features: int, classes: int, width: int, depth: int,
              bias_init: float | None) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    fan_in = features
    for _ in range(depth):
        linear = torch.nn.Linear(fan_in, width)
        if activation == "SELU":  # LeCun-normal, as self-normalisation requires
            torch.nn.init.normal_(linear.weight, std=1 / math.sqrt(fan_in))
            torch.nn.init.zeros_(linear.bias)
        if bias_init is not None:
            torch.nn.init.constant_(linear.bias, bias_init)
        layers += [linear, ACTIVATIONS[activation](width)]
        fan_in = width
    layers.append(torch.nn.Linear(fan_in, classes))
    return torch.nn.Sequential(*layers)


@dataclass
class Run:
    """One trained network: its accuracy and the monitor's per-window dead fractions."""

    accuracy: float
    final_loss: float
    dead_fraction: list[float]  # over all hidden units, per window (epoch)
    layer_dead_fraction: list[float]  # per hidden layer, last window
    layer_dormant_fraction: list[float]


def train_one(data: Dataset, scenario: Scenario, activation: str, settings: Settings,
              seed: int) -> Run:
    torch.manual_seed(seed)
    model = build_mlp(activation, data.features, data.classes, settings.width, settings.depth,
                      scenario.bias_init)
    optimizer = torch.optim.Adam(model.parameters(), lr=scenario.lr)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(data.x_train) / settings.batch)
    loss = torch.tensor(float("nan"))
    with DeadNeuronMonitor(model, window=steps_per_epoch, threshold=1.0) as monitor:
        for _ in range(settings.epochs):
            model.train()
            for batch in torch.randperm(len(data.x_train), generator=generator).split(settings.batch):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
                loss.backward()
                optimizer.step()
                monitor.step()
    model.eval()
    with torch.no_grad():
        logits = model(data.x_test)
    accuracy = (logits.argmax(1) == data.y_test).float().mean().item()
    history = monitor.history
    last = history[-1].layers.values()
    return Run(
        accuracy=accuracy,
        final_loss=loss.item(),
        dead_fraction=[sum(l.dead for l in r.layers.values()) / sum(l.units for l in r.layers.values())
                       for r in history],
        layer_dead_fraction=[l.dead_fraction for l in last],
        layer_dormant_fraction=[l.dormant_fraction for l in last],
    )


@dataclass
class Cell:
    """All seeds of one activation under one scenario."""

    scenario: str
    activation: str
    runs: list[Run] = field(default_factory=list)

    def summary(self) -> dict:
        def mean_std(values: list[float]) -> tuple[float, float]:
            clean = [v for v in values if not math.isnan(v)]
            if not clean:
                return float("nan"), float("nan")
            return statistics.fmean(clean), statistics.pstdev(clean) if len(clean) > 1 else 0.0

        acc, acc_std = mean_std([r.accuracy for r in self.runs])
        dead, dead_std = mean_std([r.dead_fraction[-1] for r in self.runs])
        dormant, _ = mean_std([statistics.fmean(r.layer_dormant_fraction) for r in self.runs])
        windows = len(self.runs[0].dead_fraction)
        return {
            "scenario": self.scenario,
            "activation": self.activation,
            "seeds": len(self.runs),
            "test_accuracy_mean": acc,
            "test_accuracy_std": acc_std,
            "dead_fraction_mean": dead,
            "dead_fraction_std": dead_std,
            "dormant_fraction_mean": dormant,
            "dead_fraction_per_epoch": [statistics.fmean(r.dead_fraction[w] for r in self.runs)
                                        for w in range(windows)],
            "layer_dead_fraction": [statistics.fmean(r.layer_dead_fraction[i] for r in self.runs)
                                    for i in range(len(self.runs[0].layer_dead_fraction))],
            "runs": [r.__dict__ for r in self.runs],
        }


def run_study(data: Dataset, settings: Settings, progress: Callable | None = None) -> list[Cell]:
    cells = [Cell(s.name, a) for s in scenarios(settings.base_lr, settings.high_lr,
                                                 settings.negative_bias) for a in s.activations]
    by_name = {s.name: s for s in scenarios(settings.base_lr, settings.high_lr, settings.negative_bias)}
    jobs = [(cell, seed) for cell in cells for seed in range(settings.seeds)]
    for cell, seed in (progress(jobs, desc="training", unit="net") if progress else jobs):
        cell.runs.append(train_one(data, by_name[cell.scenario], cell.activation, settings, seed))
    return cells
