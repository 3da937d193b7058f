"""DeadNeuronMonitor: which units it reports dead or dormant, its counts against a float64
reference, windows, hooks, and its readers and writers; counting under the ways models are
run (inference mode, device moves, empty inputs, checkpointing, copies, float64 defaults,
parameter changes) and a history of bounded size."""

from __future__ import annotations

import copy
import csv
import gc
import io
import json
import logging
import pickle
import re
import weakref

import pytest
import torch

import torch_ext
import torch_ext.nn as xnn
from torch_ext import DeadNeuronMonitor

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


DEAD = [1, 4, 6]  # units given bias -100


def kill(layer: torch.nn.Module, units=DEAD) -> None:
    with torch.no_grad():
        layer.bias[units] = -100.0


def mlp(activation: torch.nn.Module, width: int = 8) -> torch.nn.Sequential:
    torch.manual_seed(0)
    layers = torch.nn.Sequential(torch.nn.Linear(5, width), activation, torch.nn.Linear(width, 3))
    return layers.to(torch.empty(()).device)  # a parametrized activation was built on the CPU


def cnn(activation: torch.nn.Module, channels: int = 8) -> torch.nn.Sequential:
    torch.manual_seed(0)
    layers = torch.nn.Sequential(
        torch.nn.Conv2d(3, channels, 3, padding=1), activation, torch.nn.Conv2d(channels, 2, 1)
    )
    return layers.to(torch.empty(()).device)


def run(model: torch.nn.Module, monitor: DeadNeuronMonitor, steps: int, x: torch.Tensor) -> None:
    for _ in range(steps):
        model(x).sum().backward()
        monitor.step()


@pytest.mark.parametrize("kind", ["linear", "conv", "conv-channels-last"])
@pytest.mark.parametrize(
    "activation",
    [torch.nn.ReLU(), xnn.ELU(), torch.nn.SELU(), torch.nn.CELU(), xnn.CELU(0.5)],
    ids=["ReLU", "xELU", "SELU", "CELU", "xCELU"],
)
def test_killed_units_are_exactly_the_dead_ones(kind: str, activation):
    if kind == "linear":
        model, x = mlp(activation), torch.randn(64, 5)
    else:
        model, x = cnn(activation), torch.randn(4, 3, 6, 6)
        if kind == "conv-channels-last":
            model, x = (
                model.to(memory_format=torch.channels_last),
                x.contiguous(memory_format=torch.channels_last),
            )
    kill(model[0])
    with DeadNeuronMonitor(model, window=3) as monitor:
        run(model, monitor, 3, x)
    (layer,) = monitor.history[-1].layers.values()
    assert layer.dead_units == DEAD
    assert layer.dormant == len(DEAD) + sum(1 for a in layer.active_counts if a == 0) - len(DEAD)
    assert layer.units == 8 and layer.dead == 3 and layer.dead_fraction == 3 / 8


def test_leaky_relu_units_are_dormant_not_dead():
    model = mlp(xnn.LeakyReLU(0.01))
    kill(model[0])
    with DeadNeuronMonitor(model, window=2) as monitor:
        run(model, monitor, 2, torch.randn(32, 5))
    layer = monitor.history[-1].layers["1"]
    assert layer.dead == 0
    assert {u for u in range(8) if layer.active_counts[u] == 0} >= set(DEAD)


@pytest.mark.parametrize("slope,dead", [(0.25, []), (0.0, DEAD)])
def test_prelu_unit_is_dead_only_with_a_zero_slope(slope: float, dead):
    model = mlp(xnn.PReLU(8, init=slope))
    kill(model[0])
    with DeadNeuronMonitor(model, window=1) as monitor:
        run(model, monitor, 1, torch.randn(32, 5))
    assert monitor.history[-1].layers["1"].dead_units == dead


REFERENCE_DERIVATIVES = {  # the activation (hooked or fused), f'(z) for z <= 0, input scale
    "ELU(0.5)": (lambda: torch.nn.ELU(alpha=0.5), lambda z: 0.5 * torch.exp(z), 6.0),
    "CELU(2)": (lambda: torch.nn.CELU(alpha=2.0), lambda z: torch.exp(z / 2.0), 12.0),
    "xCELU(0.5)": (lambda: xnn.CELU(alpha=0.5), lambda z: torch.exp(z / 0.5), 6.0),
    "xCELU(2)": (lambda: xnn.CELU(alpha=2.0), lambda z: torch.exp(z / 2.0), 12.0),
}


@pytest.mark.parametrize("make", [lambda: torch.nn.CELU(1e38), lambda: xnn.CELU(1e38)])
def test_a_threshold_below_float32s_range_counts_every_unit_alive(make):
    """CELU with alpha 1e38 (hooked, or counted in torch_ext's kernel): |f'(z)| =
    exp(z / alpha) > grad_eps down to z = alpha ln(grad_eps), about -4.6e38, below
    float32's range, so every float32 z is gradient-alive (the threshold did not fit a
    float32 tensor: an error on the first call)."""
    model = mlp(make(), width=16)
    with DeadNeuronMonitor(model, window=1, grad_eps=1e-2) as monitor:
        run(model, monitor, 1, torch.randn(50, 5))
    layer = monitor.history[-1].layers["1"]
    assert layer.samples == 50
    assert layer.alive_counts == [50] * 16


@pytest.mark.parametrize("name", list(REFERENCE_DERIVATIVES))
def test_counts_equal_float64_reference(name: str):
    """Active and alive counts of an ELU or CELU layer (counted by a hook, or inside
    torch_ext's kernel) equal those computed from the captured pre-activations in float64,
    over several steps and a window boundary."""
    make, negative_derivative, input_scale = REFERENCE_DERIVATIVES[name]
    torch.manual_seed(1)
    model = mlp(make(), width=16)
    captured = []
    model[1].register_forward_pre_hook(lambda m, args: captured.append(args[0].detach().double()))
    grad_eps = 1e-2
    with DeadNeuronMonitor(model, window=4, grad_eps=grad_eps) as monitor:
        assert (getattr(model[1], "counter", None) is not None) == name.startswith("x")  # fused
        run(model, monitor, 4, torch.randn(50, 5) * input_scale)
    z = torch.cat(captured)
    layer = monitor.history[-1].layers["1"]
    assert layer.samples == z.shape[0] == 200
    assert layer.active_counts == (z > 0).sum(0).tolist()
    derivative = torch.where(z > 0, 1.0, negative_derivative(z))
    alive = (derivative > grad_eps).sum(0)
    assert 0 < alive.sum() < z.numel()  # the threshold falls inside the data
    assert layer.alive_counts == alive.tolist()


def test_recovered_unit_stops_being_dead_and_windows_roll_over():
    model = mlp(torch.nn.ReLU())
    kill(model[0])
    x = torch.randn(16, 5)
    with DeadNeuronMonitor(model, window=2) as monitor:
        run(model, monitor, 2, x)
        with torch.no_grad():
            model[0].bias[4] = 100.0  # unit 4 recovers
        run(model, monitor, 5, x)
    history = monitor.history
    assert [(r.window, r.first_step, r.steps) for r in history] == [(0, 0, 2), (1, 2, 2), (2, 4, 2)]
    assert history[0].layers["1"].dead_units == DEAD
    assert history[1].layers["1"].dead_units == [1, 6]
    current = monitor.report()  # step 6 of the open window: one step counted
    assert current.window == 3 and current.steps == 1
    assert current.layers["1"].samples == 16


@pytest.mark.parametrize(
    "activation",
    [
        torch.nn.ReLU(inplace=True),
        torch.nn.LeakyReLU(0.1, inplace=True),
        torch.nn.ELU(inplace=True),
        xnn.ELU(inplace=True),
        torch.nn.CELU(inplace=True),
        xnn.CELU(0.5, inplace=True),
    ],
    ids=repr,
)
def test_in_place_activations_are_counted_on_their_input(activation):
    model = mlp(activation)
    kill(model[0])
    captured = []
    model[0].register_forward_hook(lambda m, a, out: captured.append(out.detach().clone()))
    with DeadNeuronMonitor(model, window=1) as monitor:
        run(model, monitor, 1, torch.randn(20, 5))
    layer = monitor.history[-1].layers["1"]
    assert layer.active_counts == (captured[0] > 0).sum(0).tolist()
    assert set(DEAD) <= {u for u in range(8) if layer.active_counts[u] == 0}


@pytest.mark.parametrize("call_sites", ["separate", "merged"])
def test_module_called_twice_is_counted_per_call_site_or_merged(call_sites: str):
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    model = Twice()
    x = torch.randn(10, 4)
    with DeadNeuronMonitor(model, window=1, call_sites=call_sites) as monitor:
        model(x)
        monitor.step()
    layers = monitor.history[-1].layers
    first, second = (x > 0).sum(0), (model.lin(torch.relu(x)) > 0).sum(0)
    if call_sites == "separate":
        assert list(layers) == ["act", "act#1"]
        assert layers["act"].samples == layers["act#1"].samples == 10
        assert layers["act"].active_counts == first.tolist()
        assert layers["act#1"].active_counts == second.tolist()
    else:
        assert list(layers) == ["act"] and layers["act"].samples == 20
        assert layers["act"].active_counts == (first + second).tolist()


def test_eval_mode_is_not_counted_unless_asked():
    model = mlp(torch.nn.ReLU())
    x = torch.randn(8, 5)
    with DeadNeuronMonitor(model, window=10) as monitor:
        model.eval()
        model(x)
        assert monitor.report().layers == {}
        model.train()
        model(x)
        assert monitor.report().layers["1"].samples == 8
    with DeadNeuronMonitor(model, window=10, count_eval=True) as monitor:
        model.eval()
        model(x)
        assert monitor.report().layers["1"].samples == 8


@pytest.mark.parametrize(
    "selector,named",
    [
        ("1", "1 (Softmax)"),
        (torch.nn.Softmax, "1 (Softmax)"),
        (lambda name, m: isinstance(m, torch.nn.GLU), "2 (GLU)"),
    ],
    ids=["name", "type", "predicate"],
)
def test_selecting_an_activation_without_a_rule_is_refused(selector, named: str):
    """Softmax or GLU (not elementwise: a unit's output depends on the others) counted by
    ReLU's rule would be counted wrongly: modules= selecting one is a ValueError naming it
    and the supported kinds."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Softmax(dim=-1), torch.nn.GLU())
    with pytest.raises(ValueError, match=re.escape(named) + r".*no rule.*ReLU, Leaky"):
        DeadNeuronMonitor(model, modules=[selector]).attach()


def test_module_selection_by_name_and_type():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4),
        torch.nn.ReLU(),
        torch.nn.Linear(4, 4),
        torch.nn.Tanh(),
        torch.nn.Linear(4, 4),
        torch.nn.ELU(),
    )
    x = torch.randn(5, 3)
    for selectors, expected in (
        (None, ["1", "3", "5"]),  # Tanh too, by its own rule
        (["1", "5"], ["1", "5"]),
        ([torch.nn.ELU], ["5"]),
        ([lambda name, m: isinstance(m, torch.nn.Linear)], ["0", "2", "4"]),
    ):
        with DeadNeuronMonitor(model, modules=selectors) as monitor:
            model(x)
            assert sorted(monitor.report().layers) == expected


def test_unit_dim_override():
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU())
    with DeadNeuronMonitor(model, unit_dim={"1": 1}) as monitor:
        model(torch.randn(2, 5, 4))  # [batch, tokens, features]: units would be dim -1 ...
        layer = monitor.report().layers["1"]
    assert layer.units == 5 and layer.samples == 12  # ... but the user named dim 1


def test_remove_leaves_no_hook_and_no_reference():
    model = mlp(torch.nn.ReLU())
    monitor = DeadNeuronMonitor(model).attach()
    assert model[1]._forward_pre_hooks
    monitor.remove()
    assert not any(m._forward_pre_hooks for m in model.modules())
    monitor_ref, model_ref = weakref.ref(monitor), weakref.ref(model)
    model(torch.randn(2, 5))
    del monitor
    gc.collect()
    assert monitor_ref() is None
    del model
    gc.collect()
    assert model_ref() is None


def test_warning_names_the_layer_once(caplog):
    model = mlp(torch.nn.ReLU())
    kill(model[0])
    with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
        with DeadNeuronMonitor(model, window=1, warn_dead_fraction=0.25) as monitor:
            run(model, monitor, 3, torch.randn(16, 5))
    warnings = [r.getMessage() for r in caplog.records if "dead" in r.getMessage()]
    assert len(warnings) == 1
    assert "layer '1' (ReLU) has 3 of 8 units dead (37.5%, above 25.0%) in window 0" in warnings[0]


def test_json_csv_and_summary(tmp_path):
    model = mlp(torch.nn.ReLU())
    kill(model[0])
    with DeadNeuronMonitor(model, window=2) as monitor:
        run(model, monitor, 4, torch.randn(16, 5))
    monitor.write_json(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["steps"] == 4 and len(data["history"]) == 2
    assert data["history"][1]["layers"]["1"]["dead_units"] == DEAD
    monitor.write_csv(tmp_path / "m.csv")
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert [(r["window"], r["layer"], r["dead"]) for r in rows] == [
        ("0", "1", "3"),
        ("1", "1", "3"),
    ]
    summary = monitor.summary()
    assert "1" in summary and "ReLU" in summary and "37.5%" in summary


def test_state_dict_round_trip_resumes_counting():
    x = torch.randn(16, 5)
    model = mlp(torch.nn.ReLU())
    kill(model[0])
    with DeadNeuronMonitor(model, window=4) as monitor:
        run(model, monitor, 6, x)
        state = monitor.state_dict()
        run(model, monitor, 2, x)
        expected = monitor.history
    resumed = DeadNeuronMonitor(model, window=4).attach()
    resumed.load_state_dict(state)
    run(model, resumed, 2, x)
    resumed.remove()
    assert [r.to_dict() for r in resumed.history] == [r.to_dict() for r in expected]


def test_load_state_dict_rejects_unknown_layers():
    model = mlp(torch.nn.ReLU())
    monitor = DeadNeuronMonitor(model).attach()
    state = monitor.state_dict()
    state["layers"]["nope"] = {"counts": None, "samples": 0}
    with pytest.raises(KeyError, match="layers \\['nope'\\] are not monitored"):
        monitor.load_state_dict(state)


def test_tensorboard_scalars_and_histograms(tmp_path):
    tensorboard = pytest.importorskip("torch.utils.tensorboard")
    model = mlp(torch.nn.ReLU())
    kill(model[0])
    with DeadNeuronMonitor(model, window=1) as monitor:
        run(model, monitor, 1, torch.randn(16, 5))
        writer = tensorboard.SummaryWriter(str(tmp_path))
        monitor.write_tensorboard(writer)
        writer.close()
        metrics = monitor.report().metrics()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    # One tag scheme, the callbacks' (report.metrics): per layer and over all units.
    assert (
        set(events.Tags()["scalars"])
        == set(metrics)
        == {
            "dead_neurons/1/dead_fraction",
            "dead_neurons/1/dormant_fraction",
            "dead_neurons/dead_fraction",
            "dead_neurons/dormant_fraction",
        }
    )
    assert events.Scalars("dead_neurons/1/dead_fraction")[0].value == pytest.approx(3 / 8)
    assert events.Scalars("dead_neurons/dead_fraction")[0].value == pytest.approx(3 / 8)
    assert events.Tags()["histograms"] == ["dead_neurons/1/activation_rate"]
    report = monitor.history[-1]
    assert set(report.metrics("")) == {t.removeprefix("dead_neurons/") for t in metrics}
    with pytest.raises(TypeError, match="prefix must be a str"):
        report.metrics(None)


def test_threshold_keyword_still_works_with_a_deprecation_warning():
    model = mlp(torch.nn.ReLU())
    with pytest.warns(DeprecationWarning, match="renamed warn_dead_fraction"):
        monitor = DeadNeuronMonitor(model, threshold=0.3)
    assert monitor.warn_dead_fraction == 0.3
    with pytest.warns(DeprecationWarning, match="renamed warn_dead_fraction"):
        assert monitor.threshold == 0.3
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="warn_dead_fraction"):
        DeadNeuronMonitor(model, threshold=2)


def test_invalid_configuration():
    model = mlp(torch.nn.ReLU())
    with pytest.raises(ValueError, match="window must be >= 1"):
        DeadNeuronMonitor(model, window=0)
    for name in ("window", "keep_windows"):  # a whole number, not one that rounds or parses
        for value in (2.5, True, "3", None):
            with pytest.raises(TypeError, match=f"{name} must be an int >= 1"):
                DeadNeuronMonitor(model, **{name: value})
    with pytest.raises(ValueError, match="warn_dead_fraction must be in"):
        DeadNeuronMonitor(model, warn_dead_fraction=2)
    for grad_eps in (0.0, 1.0, 2.0):  # >= 1: a ReLU unit passing gradient 1 would be "dead"
        with pytest.raises(ValueError, match=r"grad_eps must be in \(0, 1\)"):
            DeadNeuronMonitor(model, grad_eps=grad_eps)


def test_units_changing_between_calls_is_a_clear_error():
    """A call site of the model's forward whose width changes from one forward to the next:
    its counts cannot go on, and the error says what to do."""
    act = torch.nn.ReLU()
    model = torch.nn.Sequential(act)
    with DeadNeuronMonitor(model):
        model(torch.randn(2, 3))
        with pytest.raises(
            ValueError, match="layer '0' was called with 4 units along dim 1, but earlier with 3"
        ):
            model(torch.randn(2, 4))


def test_calls_without_a_numbered_call_site_count_by_width():
    """Calls outside a forward of the model (and compiled ones) have no call index: a
    module used at two widths counts each width into its own call site, in the order the
    widths came, as an eager forward numbers them, instead of failing the step."""
    act = torch.nn.ReLU()
    with DeadNeuronMonitor(torch.nn.Sequential(act)) as monitor:
        act(torch.randn(2, 3))
        act(torch.randn(5, 4))
        act(torch.randn(1, 3))
        layers = monitor.report().layers
    assert {name: (layer.units, layer.samples) for name, layer in layers.items()} == {
        "0": (3, 3),
        "0#1": (4, 5),
    }


def test_package_exports_the_monitor():
    assert torch_ext.DeadNeuronMonitor is DeadNeuronMonitor


@pytest.mark.parametrize(
    "activation",
    [xnn.LeakyReLU(0.1), xnn.PReLU(8), xnn.ELU(), xnn.SELU(), xnn.CELU(0.5), xnn.CELU(-1.5)],
    ids=repr,
)
def test_torch_ext_modules_count_inside_their_kernel(activation):
    """Watched torch_ext.nn modules get no hook: they run the counted op themselves, with
    the counts a hook on the native module gives."""
    model = mlp(activation)
    kill(model[0])
    x = torch.randn(40, 5)
    native = mlp(
        {
            "LeakyReLU": lambda: torch.nn.LeakyReLU(0.1),
            "PReLU": lambda: torch.nn.PReLU(8),
            "ELU": lambda: torch.nn.ELU(),
            "SELU": lambda: torch.nn.SELU(),
            "CELU": lambda: torch.nn.CELU(activation.alpha),
        }[type(activation).__name__]()
    )
    native.load_state_dict(model.state_dict())
    reports = []
    for net in (model, native):
        with DeadNeuronMonitor(net, window=1) as monitor:
            if net is model:
                assert not net[1]._forward_pre_hooks and net[1].counter is not None
            outputs = net(x)
            monitor.step()
        reports.append((outputs, monitor.history[-1].layers["1"]))
    assert "counter" not in vars(model[1])
    torch.testing.assert_close(reports[0][0], reports[1][0])
    assert reports[0][1] == reports[1][1]


def reference_counts(z: torch.Tensor, alive: torch.Tensor) -> tuple[list[int], list[int]]:
    """Active and alive counts per unit (last dim) of captured pre-activations `z`, `alive`
    the elementwise gradient-alive mask computed from the activation's formula."""
    return (z > 0).flatten(0, -2).sum(0).tolist(), alive.flatten(0, -2).sum(0).tolist()


def capture_inputs(module: torch.nn.Module) -> list[torch.Tensor]:
    captured: list[torch.Tensor] = []
    module.register_forward_pre_hook(
        lambda m, args: captured.append(args[0].detach().double().clone())
    )
    return captured


@pytest.mark.parametrize("activation", [torch.nn.ReLU(), xnn.PReLU(8)], ids=["hook", "fused"])
def test_first_count_under_inference_mode_keeps_training_working(activation):
    model = mlp(activation)
    captured = capture_inputs(model[1])
    x = torch.randn(16, 5)
    with DeadNeuronMonitor(model, window=10, count_eval=True) as monitor:
        model.eval()
        with torch.inference_mode():
            model(x)  # creates the counters
        model.train()
        model(x).sum().backward()
        model(x).sum().backward()
        layer = monitor.report().layers["1"]
    z = torch.cat(captured)
    alive = z > 0 if isinstance(activation, torch.nn.ReLU) else torch.ones_like(z, dtype=torch.bool)
    assert layer.samples == 48
    assert (layer.active_counts, layer.alive_counts) == reference_counts(z, alive)
    assert not monitor._layers["1"].counts.is_inference()


def test_counts_follow_the_model_to_another_device():
    """model.to(device) after counting started, and load_state_dict before any forward, put
    the counts on the device of the next input (meta without a GPU: placement, no values;
    the model is an activation alone, as a Linear on meta costs seconds of imports)."""
    target = "cuda" if torch.cuda.is_available() else "meta"
    with torch.device("cpu"):
        model = torch.nn.Sequential(torch.nn.Identity(), xnn.ELU())
        x = torch.randn(16, 8)
    with DeadNeuronMonitor(model, window=10) as monitor:
        model(x)
        state = monitor.state_dict()
        model.to(target)
        model(x.to(target))
        assert monitor._layers["1"].counts.device.type == target
        if target == "cuda":
            assert monitor.report().layers["1"].active_counts == (x > 0).sum(0).mul(2).tolist()
    resumed = DeadNeuronMonitor(model, window=10).attach()
    resumed.load_state_dict(state)
    model(x.to(target))
    assert resumed._layers["1"].counts.device.type == target
    if target == "cuda":
        assert resumed.report().layers["1"].active_counts == (x > 0).sum(0).mul(2).tolist()
    resumed.remove()


@pytest.mark.parametrize("activation", [torch.nn.ReLU(), xnn.ELU()], ids=["hook", "fused"])
def test_empty_batches_and_zero_width_layers_count_nothing(activation):
    model = mlp(activation)
    x = torch.randn(6, 5)
    with DeadNeuronMonitor(model, window=10) as monitor:
        assert activation(torch.randn(0, 8)).shape == (0, 8)
        assert activation(torch.randn(4, 0)).shape == (4, 0)
        assert monitor.report().layers == {}
        summary = monitor.summary()
        expected = (model[0](x) > 0).sum(0).tolist()
        model(x)
        layer = monitor.report().layers["1"]
    assert "window 0" in summary
    assert layer.samples == 6 and layer.active_counts == expected


class Checkpointed(torch.nn.Module):
    def __init__(self, use_reentrant: bool | None, activation=xnn.ELU):
        super().__init__()
        torch.manual_seed(0)
        self.block = torch.nn.Sequential(
            torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), activation()
        )
        self.head = torch.nn.Linear(8, 2)
        self.use_reentrant = use_reentrant

    def forward(self, x):
        if self.use_reentrant is None:
            return self.head(self.block(x))
        h = torch.utils.checkpoint.checkpoint(self.block, x, use_reentrant=self.use_reentrant)
        return self.head(h)


@pytest.mark.parametrize("activation", [xnn.ELU, xnn.LeakyReLU, xnn.PReLU], ids=str)
@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpoint_recomputation_is_not_counted_twice(use_reentrant: bool, activation):
    """The watched forward (counted) and its recompute (not counted) save the same tensors,
    as non-reentrant checkpointing requires; gradients equal the unwatched model's."""
    x = torch.randn(12, 5, requires_grad=True)
    reports, grads = [], []
    for model in (Checkpointed(None, activation), Checkpointed(use_reentrant, activation)):
        with DeadNeuronMonitor(model, window=2) as monitor:
            run(model, monitor, 2, x)
        reports.append(monitor.history[-1].layers)
        grads.append([p.grad for p in model.parameters()])
    plain, checkpointed = reports
    assert plain["block.1"].samples == 24 and sorted(plain) == ["block.1", "block.3"]
    assert checkpointed == plain
    unwatched = Checkpointed(None, activation)
    for _ in range(2):
        unwatched(x).sum().backward()
    for ours in grads:
        for got, expected in zip(ours, (p.grad for p in unwatched.parameters())):
            torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("activation", [xnn.LeakyReLU, xnn.PReLU, xnn.ELU, xnn.SELU, xnn.CELU])
def test_a_watched_activation_saves_what_the_unwatched_one_saves(activation):
    """Counting changes nothing autograd keeps: the Leaky ReLU keeps its 1-bit sign mask
    (not its float input) whether watched or not."""
    model = mlp(activation())
    x = torch.randn(6, 5)
    saved = []
    for watched in (False, True):
        kept: list[torch.Tensor] = []
        hooks = torch.autograd.graph.saved_tensors_hooks(
            lambda t, kept=kept: kept.append(t) or t, lambda t: t
        )
        with DeadNeuronMonitor(model, modules=[] if not watched else None) as monitor, hooks:
            model(x)
            assert monitor.report().layers.get("1") is None or watched
            if watched:
                assert monitor.report().layers["1"].samples == 6  # it did count
        saved.append([(t.dtype, tuple(t.shape), t.untyped_storage().nbytes()) for t in kept])
    assert saved[0] == saved[1]


def test_deepcopy_of_the_model_does_not_feed_the_monitor():
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 8),
        xnn.LeakyReLU(0.1),
        torch.nn.Linear(8, 2),
    )
    x = torch.randn(10, 5)
    with DeadNeuronMonitor(model, window=10) as monitor:
        early = copy.deepcopy(model)  # before the first forward (links not learnt yet)
        model(x)
        late = copy.deepcopy(model)
        reference = model(x)
        for copied in (early, late):
            torch.testing.assert_close(copied(x), reference)
        report = monitor.report().layers
        feeder, readers = monitor.links("1")
    assert early[3].counter is None and late[3].counter is None
    assert report["1"].samples == 20 and report["3"].samples == 20  # model's two forwards only
    assert feeder is model[0] and readers == [model[2]]


def test_whole_model_pickles_while_watched():
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 8),
        xnn.ELU(),
        torch.nn.Linear(8, 2),
    )
    x = torch.randn(10, 5)
    with DeadNeuronMonitor(model, window=10) as monitor:
        saved = []
        for _ in range(2):  # before and after the forward that learns the links
            buffer = io.BytesIO()
            torch.save(model, buffer)
            saved.append(buffer.getvalue())
            model(x)
        reference = model(x)
        for data in saved:
            loaded = torch.load(io.BytesIO(data), weights_only=False)
            torch.testing.assert_close(loaded(x), reference)
        assert monitor.report().layers["1"].samples == 30  # the loaded copies counted nothing


@pytest.mark.parametrize("prelu", [torch.nn.PReLU, xnn.PReLU], ids=["hook", "fused"])
def test_prelu_monitoring_under_float64_default_dtype(prelu):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = mlp(prelu(8))
        with torch.no_grad():
            model[1].weight[:4] = 0.0  # units 0-3 pass gradient only when active
        captured = capture_inputs(model[1])
        with DeadNeuronMonitor(model, window=1) as monitor:
            run(model, monitor, 1, torch.randn(20, 5))
    finally:
        torch.set_default_dtype(previous)
    z = torch.cat(captured)
    layer = monitor.history[-1].layers["1"]
    slope_alive = (model[1].weight.detach().abs() > 1e-3).double()
    assert (layer.active_counts, layer.alive_counts) == reference_counts(
        z, (z > 0) | (slope_alive > 0)
    )


def test_names_that_match_no_module_are_a_clear_error():
    model = mlp(torch.nn.ReLU())
    with pytest.raises(
        ValueError, match=r"modules= names \['nope'\] match no module.*\['0', '1', '2'\]"
    ):
        DeadNeuronMonitor(model, modules=["1", "nope"])
    with pytest.raises(
        ValueError, match=r"unit_dim= names \['2', 'x'\] are not monitored layers.*\['1'\]"
    ):
        DeadNeuronMonitor(model, unit_dim={"1": -1, "2": 1, "x": 0})


@pytest.mark.parametrize("fused", [False, True], ids=["hook", "fused"])
def test_thresholds_follow_parameter_changes_between_steps(fused: bool):
    """negative_slope, alpha and grad_eps changed between steps: each window's alive counts
    follow the values of its step (float64 reference from the activation formulas)."""
    leaky = xnn.LeakyReLU(0.1) if fused else torch.nn.LeakyReLU(0.1)
    elu = xnn.ELU(1.0) if fused else torch.nn.ELU(1.0)
    celu = xnn.CELU(1.0) if fused else torch.nn.CELU(1.0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), leaky, torch.nn.Linear(8, 8), elu, torch.nn.Linear(8, 8), celu
    )
    captured = {"1": capture_inputs(leaky), "3": capture_inputs(elu), "5": capture_inputs(celu)}
    x = torch.randn(30, 5) * 3
    settings = [(0.1, 1.0, 1e-3), (0.0, 1.0, 1e-3), (0.0, 1e-4, 1e-3), (0.0, 1.0, 0.5)]
    with DeadNeuronMonitor(model, window=1) as monitor:
        for slope, alpha, grad_eps in settings:
            leaky.negative_slope, elu.alpha, monitor.grad_eps = slope, alpha, grad_eps
            celu.alpha = 4 * alpha  # CELU's threshold: alpha * log(grad_eps)
            run(model, monitor, 1, x)
    for step, (slope, alpha, grad_eps) in enumerate(settings):
        z_leaky, z_elu, z_celu = captured["1"][step], captured["3"][step], captured["5"][step]
        layers = monitor.history[step].layers
        leaky_alive = torch.where(z_leaky > 0, 1.0, abs(slope)) > grad_eps
        elu_alive = torch.where(z_elu > 0, 1.0, alpha * torch.exp(z_elu)) > grad_eps
        celu_alive = torch.where(z_celu > 0, 1.0, torch.exp(z_celu / (4 * alpha))) > grad_eps
        assert layers["1"].alive_counts == reference_counts(z_leaky, leaky_alive)[1], step
        assert layers["3"].alive_counts == reference_counts(z_elu, elu_alive)[1], step
        assert layers["5"].alive_counts == reference_counts(z_celu, celu_alive)[1], step


def test_state_dict_stays_bounded_over_many_windows():
    """Per-unit lists only for the last keep_windows windows: a checkpoint after 1000
    windows is the one after keep_windows windows plus each later window's scalars."""
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU()
    )
    monitor = DeadNeuronMonitor(model, window=1, keep_windows=5).attach()
    model(torch.randn(3, 4))

    def size() -> int:
        return len(pickle.dumps(monitor.state_dict()))

    sizes = {}
    for window in range(1, 1001):
        monitor.step()
        if window in (5, 100, 1000):
            sizes[window] = size()
    history = monitor.history
    assert len(history) == 1000
    assert all(r.layers["1"].has_unit_detail for r in history[-5:])
    assert not any(r.layers["1"].has_unit_detail for r in history[:-5])
    scalars = len(pickle.dumps(history[0].to_dict()))  # one window without per-unit lists
    detail = len(pickle.dumps(history[-1].to_dict()))
    growth = (sizes[1000] - sizes[5]) / 995
    assert 0 < growth <= scalars  # each later window adds its scalars ...
    assert 10 * growth < detail  # ... not its per-unit lists
    assert (sizes[1000] - sizes[100]) / 900 == pytest.approx((sizes[100] - sizes[5]) / 95, rel=0.1)
    monitor.remove()


def test_windows_past_keep_windows_say_they_lost_unit_detail(tmp_path):
    model = mlp(torch.nn.ReLU())
    kill(model[0])
    with DeadNeuronMonitor(model, window=1, keep_windows=2) as monitor:
        run(model, monitor, 5, torch.randn(16, 5))
    history = monitor.history
    old, recent = history[0].layers["1"], history[-1].layers["1"]
    assert not old.has_unit_detail and old.dead_units is None and old.active_counts is None
    assert old.dead == 3 and old.dead_fraction == 3 / 8 and sum(old.activation_rate_histogram) == 8
    assert recent.has_unit_detail and recent.dead_units == DEAD
    monitor.write_csv(tmp_path / "m.csv")
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert [r["dead"] for r in rows] == ["3"] * 5
    monitor.write_json(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    assert [w["layers"]["1"]["dead_units"] for w in data["history"]] == [
        None,
        None,
        None,
        DEAD,
        DEAD,
    ]
    assert data["config"]["keep_windows"] == 2
    resumed = DeadNeuronMonitor(model, window=1, keep_windows=2).attach()
    resumed.load_state_dict(monitor.state_dict())
    assert [r.to_dict() for r in resumed.history] == [r.to_dict() for r in history]
    resumed.remove()


def test_nothing_matched_names_the_activations_the_model_has(caplog):
    """A model whose activations have no rule (torch's Softmax, a GELUActivation of the
    user's own, not Hugging Face's) is not silently watched with nothing: the warning names
    them."""

    class GELUActivation(torch.nn.Module):  # named as transformers.activations names its own
        def forward(self, x):
            return torch.nn.functional.gelu(x)

    model = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.Softmax(-1), torch.nn.Linear(4, 4), GELUActivation()
    )
    with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
        DeadNeuronMonitor(model).attach().remove()
    (message,) = [r.getMessage() for r in caplog.records if "no module" in r.getMessage()]
    assert "1 Softmax, 1 GELUActivation" in message and "no rule" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
        DeadNeuronMonitor(torch.nn.Linear(4, 4)).attach().remove()
    (message,) = [r.getMessage() for r in caplog.records if "no module" in r.getMessage()]
    assert "nothing is counted" in message and "pass functional=True" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):  # it may count later
        DeadNeuronMonitor(torch.nn.Linear(4, 4), functional=True).attach().remove()
    assert not [r for r in caplog.records if "no module" in r.getMessage()]


def test_repr_says_what_is_watched_and_how():
    model = mlp(torch.nn.ReLU())
    monitor = DeadNeuronMonitor(model, window=4)
    assert repr(monitor) == (
        "DeadNeuronMonitor(Sequential, window=4, grad_eps=0.001, layers=0, steps=0, "
        "closed_windows=0, detached)"
    )
    with monitor:
        model(torch.randn(3, 5))
        monitor.step()
        assert repr(monitor).endswith("layers=1, steps=1, closed_windows=0, attached)")
    assert repr(monitor).endswith("detached)")
    assert "grad_eps=0.001, tau=0.1, layers=0" in repr(DeadNeuronMonitor(model, tau=0.1))


def test_summary_columns_line_up_for_long_names():
    model = torch.nn.Sequential()
    model.add_module("a_rather_long_block_name_for_the_first_layer", torch.nn.Linear(5, 8))
    model.add_module("an_even_longer_activation_module_name_in_the_model", torch.nn.ReLU())
    model.add_module("head", torch.nn.Linear(8, 2))
    with DeadNeuronMonitor(model) as monitor:
        model(torch.randn(4, 5))
        lines = monitor.summary().splitlines()
    header, rule, row = lines[1:4]
    assert len(rule) == len(header) == len(row)
    assert header.index("units") + len("units") == row.index(" 8 ") + len(" 8")
