"""DeadNeuronMonitor: which units it reports dead or dormant, its counts against a float64
reference, windows, hooks, and its readers and writers."""

from __future__ import annotations

import csv
import gc
import json
import logging
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
    return torch.nn.Sequential(torch.nn.Linear(5, width), activation, torch.nn.Linear(width, 3))


def cnn(activation: torch.nn.Module, channels: int = 8) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, channels, 3, padding=1), activation,
                               torch.nn.Conv2d(channels, 2, 1))


def run(model: torch.nn.Module, monitor: DeadNeuronMonitor, steps: int, x: torch.Tensor) -> None:
    for _ in range(steps):
        model(x).sum().backward()
        monitor.step()


@pytest.mark.parametrize("kind", ["linear", "conv", "conv-channels-last"])
@pytest.mark.parametrize("activation", [torch.nn.ReLU(), xnn.ELU(), torch.nn.SELU(), torch.nn.CELU()],
                         ids=["ReLU", "xELU", "SELU", "CELU"])
def test_killed_units_are_exactly_the_dead_ones(kind: str, activation):
    if kind == "linear":
        model, x = mlp(activation), torch.randn(64, 5)
    else:
        model, x = cnn(activation), torch.randn(4, 3, 6, 6)
        if kind == "conv-channels-last":
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
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


def test_counts_equal_float64_reference():
    """Active and alive counts of an ELU layer equal those computed from the captured
    pre-activations in float64, over several steps and a window boundary."""
    torch.manual_seed(1)
    model = mlp(torch.nn.ELU(alpha=0.5), width=16)
    captured = []
    model[1].register_forward_pre_hook(lambda m, args: captured.append(args[0].detach().double()))
    grad_eps = 1e-2
    with DeadNeuronMonitor(model, window=4, grad_eps=grad_eps) as monitor:
        run(model, monitor, 4, torch.randn(50, 5) * 3)
    z = torch.cat(captured)
    layer = monitor.history[-1].layers["1"]
    assert layer.samples == z.shape[0] == 200
    assert layer.active_counts == (z > 0).sum(0).tolist()
    derivative = torch.where(z > 0, 1.0, 0.5 * torch.exp(z))
    assert layer.alive_counts == (derivative > grad_eps).sum(0).tolist()


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


@pytest.mark.parametrize("activation", [torch.nn.ReLU(inplace=True), torch.nn.LeakyReLU(0.1, inplace=True),
                                        torch.nn.ELU(inplace=True), xnn.ELU(inplace=True)], ids=repr)
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


def test_module_called_twice_is_counted_twice():
    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    model = Twice()
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(torch.randn(10, 4))
        monitor.step()
    assert monitor.history[-1].layers["act"].samples == 20


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


def test_module_selection_by_name_and_type():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4),
                                torch.nn.Tanh(), torch.nn.Linear(4, 4), torch.nn.ELU())
    x = torch.randn(5, 3)
    for selectors, expected in (
        (None, ["1", "5"]),
        (["3"], ["3"]),
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
        with DeadNeuronMonitor(model, window=1, threshold=0.25) as monitor:
            run(model, monitor, 3, torch.randn(16, 5))
    warnings = [r.getMessage() for r in caplog.records if "dead" in r.getMessage()]
    assert len(warnings) == 1
    assert "layer '1' (ReLU) has 3 of 8 units dead (37.5%) in window 0" in warnings[0]


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
    assert [(r["window"], r["layer"], r["dead"]) for r in rows] == [("0", "1", "3"), ("1", "1", "3")]
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
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Scalars("dead_fraction/1")[0].value == pytest.approx(3 / 8)
    assert "activation_rate/1" in events.Tags()["histograms"]


def test_invalid_configuration():
    model = mlp(torch.nn.ReLU())
    with pytest.raises(ValueError, match="window must be >= 1"):
        DeadNeuronMonitor(model, window=0)
    with pytest.raises(ValueError, match="threshold must be in"):
        DeadNeuronMonitor(model, threshold=2)


def test_units_changing_between_calls_is_a_clear_error():
    act = torch.nn.ReLU()
    with DeadNeuronMonitor(torch.nn.Sequential(act)):
        act(torch.randn(2, 3))
        with pytest.raises(ValueError, match="layer '0' was called with 4 units along dim 1, but earlier with 3"):
            act(torch.randn(2, 4))


def test_package_exports_the_monitor():
    assert torch_ext.DeadNeuronMonitor is DeadNeuronMonitor


@pytest.mark.parametrize("activation", [xnn.LeakyReLU(0.1), xnn.PReLU(8), xnn.ELU(), xnn.SELU()], ids=repr)
def test_torch_ext_modules_count_inside_their_kernel(activation):
    """Watched torch_ext.nn modules get no hook: they run the counted op themselves, with
    the counts a hook on the native module gives."""
    model = mlp(activation)
    kill(model[0])
    x = torch.randn(40, 5)
    native = mlp({"LeakyReLU": torch.nn.LeakyReLU(0.1), "PReLU": torch.nn.PReLU(8),
                  "ELU": torch.nn.ELU(), "SELU": torch.nn.SELU()}[type(activation).__name__])
    native.load_state_dict(model.state_dict())
    reports = []
    for net in (model, native):
        with DeadNeuronMonitor(net, window=1) as monitor:
            if net is model:
                assert not net[1]._forward_pre_hooks and net[1]._counter is not None
            outputs = net(x)
            monitor.step()
        reports.append((outputs, monitor.history[-1].layers["1"]))
    assert "_counter" not in vars(model[1])
    torch.testing.assert_close(reports[0][0], reports[1][0])
    assert reports[0][1] == reports[1][1]
