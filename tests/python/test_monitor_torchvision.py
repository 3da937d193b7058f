"""DeadNeuronMonitor on torchvision models (CPU, small random inputs, a window of a few
forward/backward steps): its per-call-site counts and dead units are compared with the test's
own forward pre-hooks on the same modules (plain torch: a unit is dead where ``z <= 0`` for
every sample of the window), and its report of the activation modules it skips with the
model's own modules. (ResNet-18's call-site layout is tested in test_monitor_call_sites.py.)"""

from __future__ import annotations

import logging

import pytest
import torch

from torch_ext import DeadNeuronMonitor

torchvision = pytest.importorskip("torchvision")


class Reference:
    """Per call site of the given modules, over all forwards: samples with z > 0 per unit,
    samples per unit, the calls made in each forward, from forward pre-hooks (which see an
    in-place ReLU's input before it is overwritten). Units: dim 1 of a 4-D input (channels),
    the last dim of a 2-D one (features)."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.active: dict[str, torch.Tensor] = {}
        self.samples: dict[str, int] = {}
        self.calls: dict[str, int] = {}  # in the current forward
        self.calls_per_forward: list[dict[str, int]] = []
        self.handles = [m.register_forward_pre_hook(self._recorder(n)) for n, m in modules.items()]

    def _recorder(self, name: str):
        def record(module, args):
            index = self.calls[name] = self.calls.get(name, -1) + 1
            site = name if index == 0 else f"{name}#{index}"
            z = args[0].detach()
            assert z.dim() in (2, 4), (site, z.shape)
            per_unit = z.movedim(1, -1).reshape(-1, z.shape[1])
            self.active[site] = self.active.get(site, 0) + (per_unit > 0).sum(0)
            self.samples[site] = self.samples.get(site, 0) + per_unit.shape[0]

        return record

    def forward(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        self.calls = {}
        out = model(x)
        self.calls_per_forward.append(dict(self.calls))
        return out

    def dead(self, site: str) -> list[int]:
        return torch.nonzero(self.active[site] == 0).flatten().tolist()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def run_window(
    model: torch.nn.Module,
    reference: Reference,
    monitor: DeadNeuronMonitor,
    steps: int,
    batch: int,
    side: int = 32,
) -> dict:
    """`steps` forward+backward steps on random data (no optimizer step: the weights stay as
    built); the closed window's layers."""
    model.train()
    for _ in range(steps):
        reference.forward(model, torch.randn(batch, 3, side, side)).sum().backward()
        monitor.step()
    assert len(monitor.history) == 1
    return monitor.history[-1].layers


def assert_matches_reference(layers: dict, reference: Reference) -> None:
    assert set(layers) == set(reference.samples)
    for site, layer in layers.items():
        assert layer.samples == reference.samples[site], site
        assert layer.units == reference.active[site].numel(), site
        assert layer.active_counts == reference.active[site].tolist(), site
        assert layer.dead_units == reference.dead(site), site  # ReLU: alive iff z > 0
        assert layer.dead == len(reference.dead(site)), site


def relus_of(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.ReLU)}


# --- ResNet-18: dead units by construction --------------------------------------------------
STEM_DEAD = [3, 17, 40]
BLOCK_DEAD = [0, 5, 63]


def test_resnet18_reports_the_channels_a_batchnorm_bias_kills_at_their_call_site_only():
    """A BatchNorm bias of -100 kills its channels: in train mode the normalized values of a
    channel have mean 0 and variance 1 over its n samples, so |x_hat| <= sqrt(n - 1) (16 for
    layer1.0.bn1's 4*8*8, 32 for the stem's 4*16*16) and weight 1 * x_hat - 100 < 0. Those
    channels are dead at ``relu`` (stem) and ``layer1.0.relu`` (after bn1); the block's
    second call site ``layer1.0.relu#1`` (after the residual add) sees bn2 + identity, not
    dead there."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    with torch.no_grad():
        for bn, channels in ((model.bn1, STEM_DEAD), (model.layer1[0].bn1, BLOCK_DEAD)):
            bn.weight[channels] = 1.0
            bn.bias[channels] = -100.0
    reference = Reference(relus_of(model))
    with DeadNeuronMonitor(model, window=2) as monitor:
        layers = run_window(model, reference, monitor, steps=2, batch=4)
    reference.remove()

    # The construction worked (the reference is plain torch) and nothing else died there.
    assert reference.dead("relu") == STEM_DEAD
    assert reference.dead("layer1.0.relu") == BLOCK_DEAD
    assert not set(BLOCK_DEAD) & set(reference.dead("layer1.0.relu#1"))
    # The monitor says exactly that, site by site.
    assert layers["relu"].dead_units == STEM_DEAD
    assert layers["layer1.0.relu"].dead_units == BLOCK_DEAD
    assert layers["layer1.0.relu#1"].dead_units == reference.dead("layer1.0.relu#1")
    assert layers["layer1.0.relu"].units == layers["relu"].units == 64
    assert layers["relu"].samples == 2 * 4 * 16 * 16
    assert layers["layer1.0.relu"].samples == 2 * 4 * 8 * 8
    assert_matches_reference(layers, reference)


# --- VGG-11 with batch norm -----------------------------------------------------------------
def test_vgg11_bn_reports_every_relu_with_channels_or_features_as_units():
    """Every nn.ReLU of vgg11_bn is one layer (each is called once): units are the channels of
    the conv ReLUs and the features of the classifier's; samples batch * H * W for a conv
    ReLU (32x32 inputs: 32, 16, 8, 8, 4, 4, 2, 2 after the pools), batch for a classifier
    one. (The 25088 -> 4096 classifier is swapped for a narrower one of the same shape of
    layers, for speed.)"""
    torch.manual_seed(0)
    model = torchvision.models.vgg11_bn(num_classes=10)
    width = 48
    model.classifier = torch.nn.Sequential(
        torch.nn.Linear(512 * 7 * 7, width),
        torch.nn.ReLU(True),
        torch.nn.Dropout(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(True),
        torch.nn.Dropout(),
        torch.nn.Linear(width, 10),
    )
    relus = relus_of(model)
    assert len(relus) == 10
    steps, batch = 2, 4
    reference = Reference(relus)
    with DeadNeuronMonitor(model, window=steps) as monitor:
        layers = run_window(model, reference, monitor, steps=steps, batch=batch)
    reference.remove()

    assert all(calls == {name: 0 for name in relus} for calls in reference.calls_per_forward)
    assert list(layers) == list(relus)  # one layer per module, no call-site suffixes
    conv_units = [64, 128, 256, 256, 512, 512, 512, 512]  # vgg "A" config
    conv_sides = [32, 16, 8, 8, 4, 4, 2, 2]
    conv_relus = [n for n in relus if n.startswith("features.")]
    assert len(conv_relus) == 8
    for name, units, side in zip(conv_relus, conv_units, conv_sides):
        assert layers[name].units == units, name
        assert layers[name].samples == steps * batch * side * side, name
    for name in ("classifier.1", "classifier.4"):
        assert layers[name].units == width, name
        assert layers[name].samples == steps * batch, name
    assert_matches_reference(layers, reference)


# --- MobileNetV3-small: ReLU, Hardswish and Hardsigmoid counted ---------------------------
def test_mobilenet_v3_small_counts_every_activation_it_has(caplog):
    """mobilenet_v3_small mixes ReLU (some blocks, the SE squeeze) with Hardswish and
    Hardsigmoid (the SE scale): every one is a layer, counted by its own rule (each called
    once per forward; the SE ones on [N, C, 1, 1], so batch samples per unit), the ReLUs'
    counts those of the test's hooks; nothing is skipped or logged as such."""
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=10)
    relus = relus_of(model)
    others = [
        name
        for name, m in model.named_modules()
        if type(m) in (torch.nn.Hardswish, torch.nn.Hardsigmoid)
    ]
    assert relus and others

    steps, batch = 2, 4
    reference = Reference(relus)
    monitor = DeadNeuronMonitor(model, window=steps)
    assert monitor.skipped_modules == {}
    with caplog.at_level(logging.INFO, logger="torch_ext.monitor"):
        monitor.attach()
    try:
        layers = run_window(model, reference, monitor, steps=steps, batch=batch)
    finally:
        monitor.remove()
        reference.remove()

    assert all(calls == {name: 0 for name in relus} for calls in reference.calls_per_forward)
    assert set(layers) == set(relus) | set(others)
    for name, layer in layers.items():
        if name.endswith(".activation") or name.endswith(".scale_activation"):
            assert layer.samples == steps * batch, name  # SE: [N, C, 1, 1]
    assert_matches_reference({name: layers[name] for name in relus}, reference)
    assert not [r for r in caplog.records if "not monitored" in r.getMessage()]


def test_skipped_modules_is_empty_and_nothing_logged_when_modules_are_chosen(caplog):
    """With ``modules=`` the selection is explicit: nothing is reported as skipped, nor
    logged."""
    model = torchvision.models.mobilenet_v3_small(num_classes=10)
    explicit = DeadNeuronMonitor(model, modules=[torch.nn.ReLU])
    assert explicit.skipped_modules == {}
    with caplog.at_level(logging.INFO, logger="torch_ext.monitor"):
        explicit.attach()
    explicit.remove()
    assert not [r for r in caplog.records if "not monitored" in r.getMessage()]
    with pytest.raises(AttributeError):
        explicit.skipped_modules = {}  # read-only
