"""The training part of the study: one network per architecture, activation and scenario,
watched by the DeadNeuronMonitor (dead units, and ReDo's tau-dormant units), scored on the
held-out split.

Two architectures: an MLP on the flat features, and a small convolutional network with
BatchNorm on the same features read as one-channel square images (the digits' 8x8).
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..monitor import DeadNeuronMonitor, LayerReport
from ..revive import revive
from .activations import ACTIVATIONS
from .data import Dataset, as_images
from .parallel import Workers, workers_of
from .wording import count, span

ARCHITECTURES = ("mlp", "cnn")
# An epoch's run time relative to the MLP's (measured on 2 cores), to start long jobs first.
RELATIVE_EPOCH_COST = {"mlp": 1.0, "cnn": 3.0}


@dataclass
class Settings:
    """Networks, optimiser (Adam) and scenario constants of the training study.

    The CNN costs about three times the MLP per epoch on 2 cores and learns the digits in
    fewer epochs, so it gets its own (smaller) epoch and seed counts to keep the default run
    near 3 minutes. Both epoch counts are multiples of ``revive_every``: the last revive
    then comes a full period before the end, and the final epochs show a whole cycle.
    """

    width: int = 64
    depth: int = 4
    epochs: int = 21
    batch: int = 64
    seeds: int = 4
    base_lr: float = 1e-3
    high_lr: float = 0.03
    negative_bias: float = -3.0
    revive_every: int = 3  # epochs between two torch_ext.revive calls in remedy_revive
    cnn_channels: tuple[int, ...] = (16, 32)
    cnn_epochs: int = 9
    cnn_seeds: int = 2
    architectures: tuple[str, ...] = ARCHITECTURES
    # ReDo's dormancy threshold (Sokar et al. 2023), the monitor's tau=: a unit whose mean
    # |output| over an epoch is at most tau times its layer's mean is tau-dormant.
    tau: float = 0.1

    def epochs_for(self, architecture: str) -> int:
        return self.cnn_epochs if architecture == "cnn" else self.epochs

    def seeds_for(self, architecture: str) -> int:
        return self.cnn_seeds if architecture == "cnn" else self.seeds


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    lr: float
    bias_init: float | None  # None: PyTorch's default init of the hidden biases
    activations: tuple[str, ...] = tuple(ACTIVATIONS)
    revive_every: int | None = None  # call torch_ext.revive after every this many epochs


def scenarios(settings: Settings) -> list[Scenario]:
    base_lr, high_lr, bias = settings.base_lr, settings.high_lr, settings.negative_bias
    every = settings.revive_every
    return [
        Scenario("baseline", f"Adam lr {base_lr:g}, PyTorch's default init", base_lr, None),
        Scenario("high_lr", f"Adam lr {high_lr:g}", high_lr, None),
        Scenario(
            "negative_bias",
            f"hidden biases initialised to {bias} (the MLP's Linear "
            "biases; the CNN's BatchNorm biases, which set where its normalised "
            "pre-activations sit)",
            base_lr,
            bias,
        ),
        # The lecture notes' remedies, applied to ReLU.
        Scenario(
            "remedy_low_lr",
            f"ReLU under high_lr with the rate cut to {high_lr / 10:g}",
            high_lr / 10,
            None,
            ("ReLU",),
        ),
        Scenario(
            "remedy_bias",
            "ReLU with hidden biases (CNN: BatchNorm biases) initialised to +0.01",
            base_lr,
            0.01,
            ("ReLU",),
        ),
        Scenario(
            "remedy_revive",
            f"ReLU under high_lr with torch_ext.revive(model, monitor, "
            f"optimizer) {span('after every', every, 'epoch')}",
            high_lr,
            None,
            ("ReLU",),
            revive_every=every,
        ),
    ]


def build_mlp(
    activation: str, features: int, classes: int, width: int, depth: int, bias_init: float | None
) -> torch.nn.Sequential:
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


def build_cnn(
    activation: str, side: int, classes: int, channels: tuple[int, ...], bias_init: float | None
) -> torch.nn.Sequential:
    """Conv3x3 -> BatchNorm -> activation per entry of `channels`, then 2x2 max-pooling and
    a Linear classifier, on one-channel ``side`` x ``side`` images.

    `bias_init` goes to the BatchNorm biases (beta): BatchNorm subtracts the batch mean, so
    a convolution's bias never reaches the activation, while beta shifts every normalised
    pre-activation of the channel.
    """
    layers: list[torch.nn.Module] = []
    fan_in = 1
    for width in channels:
        conv = torch.nn.Conv2d(fan_in, width, kernel_size=3, padding=1)
        if activation == "SELU":  # LeCun-normal, as for the MLP
            torch.nn.init.normal_(conv.weight, std=1 / math.sqrt(fan_in * 9))
            torch.nn.init.zeros_(conv.bias)
        norm = torch.nn.BatchNorm2d(width)
        if bias_init is not None:
            torch.nn.init.constant_(norm.bias, bias_init)
        layers += [conv, norm, ACTIVATIONS[activation](width)]
        fan_in = width
    layers += [
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(fan_in * (side // 2) ** 2, classes),
    ]
    return torch.nn.Sequential(*layers)


def build_model(
    architecture: str, activation: str, data: Dataset, settings: Settings, bias_init: float | None
) -> torch.nn.Sequential:
    if architecture == "mlp":
        return build_mlp(
            activation, data.features, data.classes, settings.width, settings.depth, bias_init
        )
    if architecture == "cnn":
        if data.image_side is None:
            raise ValueError(
                f"the CNN needs square images; {data.name} has {count(data.features, 'feature')}"
            )
        return build_cnn(
            activation, data.image_side, data.classes, settings.cnn_channels, bias_init
        )
    raise ValueError(f"unknown architecture '{architecture}' (expected one of {ARCHITECTURES})")


def model_inputs(architecture: str, x: torch.Tensor) -> torch.Tensor:
    """What `architecture` reads: the flat features for the MLP, images for the CNN."""
    return as_images(x) if architecture == "cnn" else x


@dataclass
class Run:
    """One trained network: its accuracy, the monitor's per-window (epoch) dead counts and,
    under a revive scenario, how many units ``torch_ext.revive`` re-initialised."""

    accuracy: float
    final_loss: float
    units: int  # hidden units (MLP features, CNN channels) over all monitored layers
    dead_units: list[int]  # per epoch
    dead_fraction: list[float]  # per epoch
    layer_dead_fraction: list[float]  # per hidden layer, last epoch
    layer_dormant_fraction: list[float]
    tau_dormant_fraction: list[float]  # per epoch (NaN where the monitor summed no |h|)
    layer_tau_dormant_fraction: list[float]  # per hidden layer, last epoch
    active_rate: (
        float  # last epoch: mean over hidden units of the share of inputs they are active on
    )
    revived: list[int]  # units revived after each epoch (0 where revive did not run)
    revive_warnings: list[str] = field(default_factory=list)  # what revive logged (skipped layers)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def collected_warnings(name: str = "torch_ext.revive") -> Iterator[list[str]]:
    """The warnings logged on `name` (default: revive's logger) inside the block, as
    messages.

    revive logs one warning per skipped layer and call: a run reviving every few epochs
    would repeat each many times. The study lists them, counted, in its printed summary and
    report instead. Propagation is untouched, so handlers the user configured still see
    every record.
    """
    handler = _Collect()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def revive_now(scenario: Scenario, epoch: int, epochs: int) -> bool:
    """Whether to revive after `epoch` (0-based): every `revive_every` epochs, except after
    the last, since nothing would train the revived units."""
    every = scenario.revive_every
    return every is not None and (epoch + 1) % every == 0 and epoch + 1 < epochs


def train_one(
    data: Dataset,
    scenario: Scenario,
    activation: str,
    settings: Settings,
    seed: int,
    architecture: str = "mlp",
) -> Run:
    torch.manual_seed(seed)
    model = build_model(architecture, activation, data, settings, scenario.bias_init)
    x_train = model_inputs(architecture, data.x_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=scenario.lr)
    generator = torch.Generator().manual_seed(seed)
    # One monitor window per epoch: its report then holds that epoch's counts when revive
    # reads it right after the epoch's last step closed the window.
    steps_per_epoch = math.ceil(len(x_train) / settings.batch)
    epochs = settings.epochs_for(architecture)
    loss = torch.tensor(float("nan"))
    revived: list[int] = []
    warnings: list[str] = []
    with DeadNeuronMonitor(
        model, window=steps_per_epoch, warn_dead_fraction=1.0, tau=settings.tau
    ) as monitor:
        for epoch in range(epochs):
            model.train()
            for batch in torch.randperm(len(x_train), generator=generator).split(settings.batch):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x_train[batch]), data.y_train[batch])
                loss.backward()
                optimizer.step()
                monitor.step()
            revived.append(0)
            if revive_now(scenario, epoch, epochs):
                with collected_warnings() as messages:
                    result = revive(model, monitor, optimizer)
                revived[-1] = sum(len(units) for units in result.values())
                warnings += messages
    return summarise(model, monitor, data, architecture, loss.item(), revived, warnings)


def summarise(
    model: torch.nn.Module,
    monitor: DeadNeuronMonitor,
    data: Dataset,
    architecture: str,
    final_loss: float,
    revived: list[int],
    warnings: list[str],
) -> Run:
    """The Run of a trained `model`: its test accuracy and the monitor's closed windows."""
    model.eval()
    with torch.no_grad():
        logits = model(model_inputs(architecture, data.x_test))
    accuracy = (logits.argmax(1) == data.y_test).float().mean().item()
    history = monitor.history
    last = list(history[-1].layers.values())
    units = sum(layer.units for layer in last)
    dead = [sum(layer.dead for layer in report.layers.values()) for report in history]
    tau_dormant = [
        sum(_tau_dormant(layer) for layer in report.layers.values()) for report in history
    ]
    return Run(
        accuracy=accuracy,
        final_loss=final_loss,
        units=units,
        dead_units=dead,
        dead_fraction=[d / units for d in dead],
        layer_dead_fraction=[layer.dead_fraction for layer in last],
        layer_dormant_fraction=[layer.dormant_fraction for layer in last],
        tau_dormant_fraction=[d / units for d in tau_dormant],
        layer_tau_dormant_fraction=[_tau_dormant(layer) / layer.units for layer in last],
        active_rate=sum(layer.mean_activation_rate * layer.units for layer in last) / units,
        revived=revived,
        revive_warnings=warnings,
    )


def _tau_dormant(layer: LayerReport) -> float:
    """The layer's tau-dormant units; NaN where the monitor has none to give (it could not
    sum the layer's outputs)."""
    return math.nan if layer.tau_dormant is None else float(layer.tau_dormant)


def _mean_std(values: list[float]) -> tuple[float, float]:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return float("nan"), float("nan")
    return statistics.fmean(clean), statistics.pstdev(clean) if len(clean) > 1 else 0.0


def _per_index_mean(rows: list[list[float]]) -> list[float]:
    return [statistics.fmean(column) for column in zip(*rows)]


@dataclass
class Cell:
    """All seeds of one activation under one scenario and architecture."""

    scenario: str
    activation: str
    architecture: str = "mlp"
    runs: list[Run] = field(default_factory=list)

    def summary(self) -> dict:
        acc, acc_std = _mean_std([r.accuracy for r in self.runs])
        dead, dead_std = _mean_std([r.dead_fraction[-1] for r in self.runs])
        dormant, _ = _mean_std([statistics.fmean(r.layer_dormant_fraction) for r in self.runs])
        tau_dormant, tau_dormant_std = _mean_std([r.tau_dormant_fraction[-1] for r in self.runs])
        active, _ = _mean_std([r.active_rate for r in self.runs])
        return {
            "architecture": self.architecture,
            "scenario": self.scenario,
            "activation": self.activation,
            "seeds": len(self.runs),
            "units": self.runs[0].units,
            "test_accuracy_mean": acc,
            "test_accuracy_std": acc_std,
            "dead_fraction_mean": dead,
            "dead_fraction_std": dead_std,
            "dormant_fraction_mean": dormant,
            "tau_dormant_fraction_mean": tau_dormant,
            "tau_dormant_fraction_std": tau_dormant_std,
            "active_rate_mean": active,
            "dead_fraction_per_epoch": _per_index_mean([r.dead_fraction for r in self.runs]),
            "layer_dead_fraction": _per_index_mean([r.layer_dead_fraction for r in self.runs]),
            "tau_dormant_fraction_per_epoch": _per_index_mean(
                [r.tau_dormant_fraction for r in self.runs]
            ),
            "layer_tau_dormant_fraction": _per_index_mean(
                [r.layer_tau_dormant_fraction for r in self.runs]
            ),
            "revived_per_epoch": _per_index_mean(
                [[float(n) for n in r.revived] for r in self.runs]
            ),
            "revive_warnings": dict(Counter(m for r in self.runs for m in r.revive_warnings)),
            "runs": [r.__dict__ for r in self.runs],
        }


def make_cells(settings: Settings) -> list[Cell]:
    return [
        Cell(s.name, a, arch)
        for arch in settings.architectures
        for s in scenarios(settings)
        for a in s.activations
    ]


def run_study(
    data: Dataset,
    settings: Settings,
    progress: Callable | None = None,
    workers: Workers | int = 1,
) -> list[Cell]:
    """Trains every cell's seeds, on up to `workers` processes (the same results for any
    number: each network seeds its own generators)."""
    cells = make_cells(settings)
    by_name = {s.name: s for s in scenarios(settings)}
    jobs = [(cell, seed) for cell in cells for seed in range(settings.seeds_for(cell.architecture))]
    with workers_of(workers) as pool:
        runs = pool.map(
            train_one,
            [
                (data, by_name[cell.scenario], cell.activation, settings, seed, cell.architecture)
                for cell, seed in jobs
            ],
            progress,
            cost=lambda job: settings.epochs_for(job[-1]) * RELATIVE_EPOCH_COST[job[-1]],
            desc="training",
            unit="net",
        )
    for (cell, _), run in zip(jobs, runs):
        cell.runs.append(run)
    return cells
