"""DeadNeuronMonitor counts per call site: a module called k times in one forward of the
model is k layers (``act``, ``act#1``, ...), numbered afresh in each forward, by hook and in
the fused kernels alike; ``call_sites="merged"`` (or a selection of modules) counts all of a
module's calls as one layer, for a cell looped over a varying number of steps. Sites that only
some forwards reach survive windows, checkpoints and resume; revive refuses every site of a
module called at several. Counts are compared with pre-activations computed by hand with
plain torch (or recorded by the test's own hooks)."""

from __future__ import annotations

import copy
import csv
import logging

import pytest
import torch
import torch.nn.functional as F
from test_revive_refusals import assert_same_state

import torch_ext
import torch_ext.nn as xnn
from torch_ext import DeadNeuronMonitor

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device

DEAD = [1, 4]
GRAD_EPS = 0.5  # coarse: ELU units in their negative regime are alive or not by sample
NATIVE = {"ReLU": F.relu, "LeakyReLU": lambda z: F.leaky_relu(z, 0.1), "ELU": F.elu}


def native(activation: torch.nn.Module):
    return NATIVE[type(activation).__name__]


def reference(zs: list[torch.Tensor], f, unit_dim: int) -> tuple[list[int], list[int], int]:
    """Per unit of pre-activations `zs`: samples with z > 0, samples with |f'(z)| > GRAD_EPS
    (f' by autograd in float64; for ReLU, z > 0 under any grad_eps < 1); and the samples per
    unit."""
    z = torch.cat([z.detach().double().movedim(unit_dim, -1).flatten(0, -2) for z in zs])
    z.requires_grad_()
    (derivative,) = torch.autograd.grad(f(z).sum(), z)
    return ((z > 0).sum(0).tolist(), (derivative.abs() > GRAD_EPS).sum(0).tolist(), z.shape[0])


def counted(layer) -> tuple[list[int], list[int], int]:
    return layer.active_counts, layer.alive_counts, layer.samples


class Residual(torch.nn.Module):
    """Calls its one activation twice, before and after a residual addition (as ResNet's
    BasicBlock does with its ``relu``)."""

    def __init__(self, activation: torch.nn.Module, conv: bool = False, width: int = 6):
        super().__init__()
        torch.manual_seed(0)

        def make():
            return (
                torch.nn.Conv2d(width, width, 3, padding=1)
                if conv
                else torch.nn.Linear(width, width)
            )

        self.fc1, self.act, self.fc2 = make(), activation, make()
        with torch.no_grad():
            self.fc1.bias[DEAD] = -100.0

    def forward(self, x):
        return self.act(self.fc2(self.act(self.fc1(x))) + x)

    def pre_activations(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs of the two calls of `act`, by hand."""
        with torch.no_grad():
            z1 = self.fc1(x)
            return z1, self.fc2(native(self.act)(z1)) + x


ACTIVATIONS = [torch.nn.ReLU(), torch.nn.ReLU(inplace=True), xnn.LeakyReLU(0.1), xnn.ELU()]


@pytest.mark.parametrize("conv", [False, True], ids=["linear", "conv"])
@pytest.mark.parametrize(
    "activation", ACTIVATIONS, ids=["ReLU", "ReLU-inplace", "xLeakyReLU", "xELU"]
)
def test_a_module_called_twice_is_two_layers_with_their_own_counts(activation, conv: bool):
    model = Residual(copy.deepcopy(activation), conv)
    batches = [torch.randn(8, 6, 4, 4) if conv else torch.randn(8, 6) for _ in range(2)]
    fused = isinstance(model.act, xnn.ELU | xnn.LeakyReLU)
    with DeadNeuronMonitor(model, window=2, grad_eps=GRAD_EPS) as monitor:
        assert (getattr(model.act, "counter", None) is not None) == fused  # kernel or hook
        assert bool(model.act._forward_pre_hooks) != fused
        for x in batches:
            model(x).sum().backward()
            monitor.step()
    layers = monitor.history[-1].layers
    assert list(layers) == ["act", "act#1"]
    unit_dim = 1 if conv else -1
    first, second = zip(*(model.pre_activations(x) for x in batches))
    assert counted(layers["act"]) == reference(list(first), native(model.act), unit_dim)
    assert counted(layers["act#1"]) == reference(list(second), native(model.act), unit_dim)
    assert layers["act"].samples == 2 * 8 * (16 if conv else 1)
    assert layers["act"].active_counts != layers["act#1"].active_counts  # two populations
    if isinstance(model.act, torch.nn.ReLU):
        assert layers["act"].dead_units == DEAD and layers["act#1"].dead == 0


def test_two_monitors_split_the_same_call_sites():
    """The first monitor counts in the kernel, the second by a hook: both number alike."""
    model = Residual(xnn.ELU())
    x = torch.randn(8, 6)
    with (
        DeadNeuronMonitor(model, grad_eps=GRAD_EPS) as first,
        DeadNeuronMonitor(model, grad_eps=GRAD_EPS) as second,
    ):
        model(x)
        model(x)
        reports = [first.report().layers, second.report().layers]
    assert reports[0] == reports[1] and list(reports[0]) == ["act", "act#1"]
    z1, z2 = model.pre_activations(x)
    assert counted(reports[0]["act#1"]) == reference([z2, z2], F.elu, -1)


def test_a_direct_call_counts_under_the_modules_name_and_keeps_the_numbering():
    model = Residual(torch.nn.ReLU())
    x, y = torch.randn(8, 6), torch.randn(5, 6)
    with DeadNeuronMonitor(model) as monitor:
        model(x)
        model.act(y)  # outside a forward of the model: the first call site
        model.act(y)
        model(x)
        layers = monitor.report().layers
    z1, z2 = model.pre_activations(x)
    assert list(layers) == ["act", "act#1"]
    assert counted(layers["act"]) == reference([z1, y, y, z1], F.relu, -1)
    assert counted(layers["act#1"]) == reference([z2, z2], F.relu, -1)


def test_each_call_site_decides_its_own_unit_dim():
    """A Linear on [batch, tokens, features] feeds the first call (units: the features), a
    convolution the second (units: its channels, dim 1)."""

    class TwoShapes(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up, self.conv, self.act = (
                torch.nn.Linear(4, 6),
                torch.nn.Conv1d(3, 5, 1),
                torch.nn.ReLU(),
            )

        def forward(self, x, y):
            return self.act(self.up(x)).sum() + self.act(self.conv(y)).sum()

    model = TwoShapes()
    x, y = torch.randn(2, 7, 4), torch.randn(2, 3, 8)
    with DeadNeuronMonitor(model) as monitor:
        model(x, y)
        layers = monitor.report().layers
    assert counted(layers["act"]) == reference([model.up(x)], F.relu, -1)
    assert counted(layers["act#1"]) == reference([model.conv(y)], F.relu, 1)
    assert (layers["act"].units, layers["act#1"].units) == (6, 5)


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpoint_recomputation_takes_no_call_site(use_reentrant: bool):
    class Checkpointed(torch.nn.Module):
        def __init__(self, checkpointed: bool):
            super().__init__()
            self.block, self.checkpointed = Residual(torch.nn.ReLU()), checkpointed

        def forward(self, x):
            if not self.checkpointed:
                return self.block(x)
            return torch.utils.checkpoint.checkpoint(self.block, x, use_reentrant=use_reentrant)

    x = torch.randn(8, 6, requires_grad=True)
    reports = []
    for model in (Checkpointed(False), Checkpointed(True)):
        with DeadNeuronMonitor(model, window=2) as monitor:
            for _ in range(2):
                model(x).sum().backward()
                monitor.step()
        reports.append(monitor.history[-1].layers)
    assert list(reports[1]) == ["block.act", "block.act#1"] and reports[1] == reports[0]
    assert reports[0]["block.act"].samples == 16


# --- a cell looped over a varying number of time steps ---------------------------------------
class Cell(torch.nn.Module):
    def __init__(self, activation: torch.nn.Module, features: int = 3, hidden: int = 5):
        super().__init__()
        self.inp, self.rec = torch.nn.Linear(features, hidden), torch.nn.Linear(hidden, hidden)
        self.act = activation

    def forward(self, x_t, h):
        return self.act(self.inp(x_t) + self.rec(h))


class Loop(torch.nn.Module):
    """An RNN-style model: the cell's activation runs once per time step of the input
    ``[T, batch, features]``."""

    def __init__(self, activation: torch.nn.Module):
        super().__init__()
        torch.manual_seed(0)
        self.cell, self.head = Cell(activation), torch.nn.Linear(5, 2)

    def forward(self, x):
        h = x.new_zeros(x.shape[1], 5)
        for x_t in x:
            h = self.cell(x_t, h)
        return self.head(h)

    def pre_activations(self, x) -> list[torch.Tensor]:
        """The cell's pre-activation at every time step, by hand."""
        zs, h = [], x.new_zeros(x.shape[1], 5)
        with torch.no_grad():
            for x_t in x:
                zs.append(self.cell.inp(x_t) + self.cell.rec(h))
                h = native(self.cell.act)(zs[-1])
        return zs


STEPS = [3, 5, 2, 4]  # time steps of each batch: windows of two batches see 5, then 4 sites


def sequences(steps=STEPS) -> list[torch.Tensor]:
    return [torch.randn(t, 6, 3) for t in steps]


def trained(model: Loop, batches, monitor: DeadNeuronMonitor) -> None:
    for x in batches:
        model(x).sum().backward()
        monitor.step()


@pytest.mark.parametrize("activation", [torch.nn.ReLU(), xnn.ELU()], ids=["hook", "fused"])
def test_a_loop_over_varying_steps_is_one_layer_per_step_or_merged(activation):
    batches = sequences()
    model = Loop(copy.deepcopy(activation))
    zs = [model.pre_activations(x) for x in batches]
    f = native(model.cell.act)
    with DeadNeuronMonitor(model, window=2, grad_eps=GRAD_EPS) as monitor:
        trained(model, batches, monitor)
    sites = ["cell.act"] + [f"cell.act#{k}" for k in range(1, 5)]
    for window, report in enumerate(monitor.history):
        assert list(report.layers) == sites
        pair = zs[2 * window : 2 * window + 2]
        for k, site in enumerate(sites):
            steps = [z[k] for z in pair if len(z) > k]
            if steps:
                assert counted(report.layers[site]) == reference(steps, f, -1), (window, site)
            else:  # cell.act#4 in the second window: no batch ran 5 steps
                layer = report.layers[site]
                assert (layer.samples, layer.dead, layer.active_counts) == (0, 0, [0] * 5)

    model = Loop(copy.deepcopy(activation))
    with DeadNeuronMonitor(model, window=2, grad_eps=GRAD_EPS, call_sites="merged") as merged:
        trained(model, batches, merged)
    for window, report in enumerate(merged.history):
        steps = [z_t for z in zs[2 * window : 2 * window + 2] for z_t in z]
        assert list(report.layers) == ["cell.act"]
        assert counted(report.layers["cell.act"]) == reference(steps, f, -1)


def test_call_sites_merged_for_selected_modules_only():
    class Both(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.loop, self.block = Loop(torch.nn.ReLU()), Residual(torch.nn.ReLU())
            self.up = torch.nn.Linear(2, 6)

        def forward(self, x):
            return self.block(self.up(self.loop(x)))

    model = Both()
    x = torch.randn(3, 6, 3)
    for option in (["loop.cell.act"], [lambda name, m: name.startswith("loop.")]):
        check_selected(model, x, option)
    with pytest.raises(ValueError, match=r"call_sites= names \['loop.cell'\] are not monitored"):
        DeadNeuronMonitor(model, call_sites=["loop.cell"])
    with pytest.raises(ValueError, match="call_sites must be 'separate', 'merged' or"):
        DeadNeuronMonitor(model, call_sites="per-call")


def check_selected(model: torch.nn.Module, x: torch.Tensor, option) -> None:
    with DeadNeuronMonitor(model, call_sites=option) as monitor:
        model(x)
        layers = monitor.report().layers
    assert list(layers) == ["loop.cell.act", "block.act", "block.act#1"]
    assert layers["loop.cell.act"].samples == 3 * 6 and layers["block.act#1"].samples == 6
    assert monitor.to_dict()["config"]["merged_call_sites"] == ["loop.cell.act"]


def test_call_sites_survive_a_checkpoint_and_resume(tmp_path):
    """Saved mid-window after 5 sites, resumed by a monitor that has seen none of them, then
    a longer sequence: the history equals the uninterrupted run's."""
    batches = sequences([3, 5, 2, 4, 6, 1])
    model = Loop(torch.nn.ReLU())
    with DeadNeuronMonitor(model, window=2) as whole:
        trained(model, batches, whole)
    with DeadNeuronMonitor(model, window=2) as first:
        trained(model, batches[:3], first)
        state = first.state_dict()
    resumed = DeadNeuronMonitor(model, window=2).attach()
    assert resumed.layer_names == ["cell.act"]
    resumed.load_state_dict(state)
    assert resumed.layer_names == ["cell.act"] + [f"cell.act#{k}" for k in range(1, 5)]
    trained(model, batches[3:], resumed)
    assert [r.to_dict() for r in resumed.history] == [r.to_dict() for r in whole.history]
    assert [list(r.layers) for r in resumed.history] == [list(r.layers) for r in whole.history]
    assert resumed.history[-1].layers["cell.act#5"].samples == 6
    resumed.write_csv(tmp_path / "m.csv")
    rows = [
        (r["window"], r["layer"], r["samples"]) for r in csv.DictReader(open(tmp_path / "m.csv"))
    ]
    assert ("1", "cell.act#4", "0") in rows and ("2", "cell.act#5", "6") in rows
    assert "cell.act#5" in resumed.summary()
    resumed.remove()

    merged = DeadNeuronMonitor(model, window=2, call_sites="merged").attach()
    with pytest.raises(
        KeyError, match=r"layers \['cell.act#1', .*'cell.act#4'\] are not monitored"
    ):
        merged.load_state_dict(state)
    merged.remove()


def test_sites_a_resumed_state_does_not_hold_restart_uncounted():
    model = Loop(torch.nn.ReLU())
    with DeadNeuronMonitor(model, window=10) as monitor:
        trained(model, sequences([2]), monitor)
        state = monitor.state_dict()
        trained(model, sequences([4]), monitor)
        monitor.load_state_dict(state)
        assert list(monitor.report().layers) == ["cell.act", "cell.act#1"]
        assert monitor.report().layers["cell.act"].samples == 6


# --- links and revive ------------------------------------------------------------------------
class Shared(torch.nn.Module):
    """One ReLU between three Linear layers, twice: each call a plain chain by itself."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.fc3 = (torch.nn.Linear(6, 6) for _ in range(3))
        self.act = torch.nn.ReLU()
        with torch.no_grad():
            self.fc1.bias[DEAD] = -100.0
            self.fc2.bias[DEAD] = -100.0

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def test_revive_revives_each_call_site_of_a_shared_module_exactly():
    """Each call of the shared ReLU is its own plain chain (fc1 -> act -> fc2, fc2 -> act#1
    -> fc3): both are revived, fc2 both as a reader (columns zeroed) and as a producer (rows
    redrawn), and the outputs stay those of the network before."""
    model = Shared()
    x = torch.randn(32, 6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        optimizer.step()
        monitor.step()
        layers = monitor.history[-1].layers
        assert monitor.links("act") == (model.fc1, [model.fc2])
        assert monitor.links("act#1") == (model.fc2, [model.fc3])
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor, optimizer)
        after = model(x).detach()
    assert all(set(DEAD) <= set(layers[s].dead_units) for s in ("act", "act#1"))
    assert revived == {"act": layers["act"].dead_units, "act#1": layers["act#1"].dead_units}
    assert revived.skipped == {} and revived.inexact == {}
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert torch.all(model.fc3.weight[:, DEAD] == 0) and torch.all(model.fc2.bias[DEAD] == 0.01)
    assert torch.all(model.fc1.bias[DEAD] == 0.01)


def test_revive_refuses_a_merged_module_called_twice_and_changes_nothing(caplog):
    model = Shared()
    x = torch.randn(32, 6)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with DeadNeuronMonitor(model, window=1, call_sites="merged") as monitor:
        model(x).sum().backward()
        optimizer.step()
        monitor.step()
        assert set(DEAD) <= set(monitor.history[-1].layers["act"].dead_units)
        before = model(x).detach()
        weights, state = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
        with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
            revived = torch_ext.revive(model, monitor, optimizer)
        after = model(x).detach()
        assert monitor.links("act") == (None, []) and monitor.module("act") is model.act
    why = "it is called 2 times in one forward, its calls merged into one layer"
    assert revived == {} and revived.skipped == {"act": why}
    assert any(f"skipped layer 'act': {why}" in r.getMessage() for r in caplog.records)
    assert torch.equal(after, before)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert_same_state(optimizer.state_dict(), state)


def test_revive_refuses_every_site_of_a_loop_and_changes_nothing(caplog):
    model = Loop(torch.nn.ReLU())
    with torch.no_grad():
        model.cell.inp.bias[DEAD] = -100.0  # dead at every time step
    x = torch.randn(3, 6, 3)
    with DeadNeuronMonitor(model, window=2) as monitor:
        trained(model, sequences(), monitor)  # the last window: 4 sites run, cell.act#4 not
        model.eval()  # not counted: the report stays the last window's
        before, weights = model(x).detach(), copy.deepcopy(model.state_dict())
        with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
            assert torch_ext.revive(model, monitor) == {}
        assert torch.equal(model(x).detach(), before)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    # Each step's input is inp(x_t) + rec(h): an addition, not a Linear's output; the
    # traced forward (the first, a shorter sequence) did not reach the later sites.
    reasons = (
        "its input is not the output of a Linear/Conv layer",
        "it was not called in the model's first training forward",
    )
    skipped = [r.getMessage() for r in caplog.records if "skipped layer" in r.getMessage()]
    assert len(skipped) == 4 and all(any(why in m for why in reasons) for m in skipped)
    assert reasons[0] in skipped[0]


def test_link_queries_name_call_sites():
    model = Residual(torch.nn.ReLU())
    with DeadNeuronMonitor(model) as monitor:
        model(torch.randn(4, 6))
        assert monitor.link_problem("act#2") == "'act#2' is not a monitored layer"
        assert monitor.module("act#1") is model.act and monitor.module("act#2") is None
        assert monitor.links("act") == (model.fc1, [model.fc2])  # links are per call site
        assert "its input is not the output of a Linear/Conv" in monitor.link_problem("act#1")


# --- torchvision --------------------------------------------------------------------------------
def test_resnet18_reports_every_relu_call_site():
    """Each BasicBlock's relu is two layers (after bn1; after the residual addition); the
    stem's once. Units are channels, samples batch * H * W, counts those of the test's own
    hooks on the ReLUs, numbered by call within each forward."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    relus = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.ReLU)}
    calls: dict[str, int] = {}
    expected: dict[str, tuple[torch.Tensor, int]] = {}

    def recorder(name: str):
        def record(module, args):  # before the in-place ReLU overwrites its input
            index = calls[name] = calls.get(name, -1) + 1
            site, z = name if index == 0 else f"{name}#{index}", args[0].detach()
            active, samples = expected.get(site, (0, 0))
            expected[site] = (active + (z > 0).sum((0, 2, 3)), samples + z.numel() // z.shape[1])

        return record

    for name, relu in relus.items():
        relu.register_forward_pre_hook(recorder(name))
    steps, batch = 2, 4
    with DeadNeuronMonitor(model, window=steps) as monitor:
        for _ in range(steps):
            calls.clear()
            model(torch.randn(batch, 3, 32, 32)).sum().backward()
            monitor.step()
    layers = monitor.history[-1].layers
    blocks = [f"layer{i}.{j}.relu" for i in range(1, 5) for j in range(2)]
    assert list(layers) == ["relu"] + [site for b in blocks for site in (b, f"{b}#1")]
    side = {"relu": 16, "layer1": 8, "layer2": 4, "layer3": 2, "layer4": 1}  # 32 / stride
    for site, layer in layers.items():
        stage = site.split(".")[0]
        assert layer.units == (64 if stage == "relu" else 64 * 2 ** (int(stage[-1]) - 1)), site
        assert layer.samples == steps * batch * side[stage] ** 2 == expected[site][1], site
        assert layer.active_counts == expected[site][0].tolist(), site


def test_a_module_name_with_a_hash_is_refused_as_it_would_clash_with_call_sites():
    """ModuleDict keys may hold '#': 'acts.a#1' would be both that module and the second
    call of 'acts.a'. Refused with a clear error, not reported as one merged layer."""
    model = torch.nn.Module()
    model.acts = torch.nn.ModuleDict({"a": torch.nn.ReLU(), "a#1": torch.nn.ReLU()})
    with pytest.raises(ValueError, match=r"\['acts.a#1'\] have '#' in their names"):
        DeadNeuronMonitor(model)
    monitor = DeadNeuronMonitor(model, modules=["acts.a"])  # left out: fine
    assert monitor.attach().layer_names == ["acts.a"]
    monitor.remove()
