"""torch_ext.revive refuses what it cannot do exactly: a layer whose function revive cannot
keep (a saturated ELU/SELU unit whose reader has no bias to take its constant output, a
zero-padded convolution reading it), whose weights are computed (parametrize, weight_norm,
spectral_norm, prune), whose parameters are shared, whose modules were replaced after the
monitor saw them, or whose output other forwards read elsewhere (multi-task heads). A
refused layer is named in a warning with the reason, and nothing is written: the model's
and the optimizer's state dicts and the outputs (computed with plain torch, before and
after) are unchanged."""

from __future__ import annotations

import copy
import logging
import warnings

import pytest
import torch
import torch.nn.utils.prune

import torch_ext
import torch_ext.nn as xnn
from torch_ext import DeadNeuronMonitor

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device

DEAD = [0, 3, 5]


def kill(layer: torch.nn.Module, units=DEAD) -> None:
    """Units `units` of `layer` never active: their pre-activation is about -100."""
    with torch.no_grad():
        layer.bias[units] = -100.0


def chain(activation: torch.nn.Module, reader: torch.nn.Module | None = None):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), activation, reader or torch.nn.Linear(6, 3))


def trained(model: torch.nn.Module, forwards, *, monitor_options=None):
    """An Adam step (so the optimizer has state), then `forwards` (callables running the model)
    under a fresh monitor, closed as one window. Returns the monitor (attached) and optimizer."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = DeadNeuronMonitor(model, window=1, **(monitor_options or {})).attach()
    for forward in forwards:
        optimizer.zero_grad()
        forward().pow(2).sum().backward()
        optimizer.step()
    monitor.step()
    return monitor, optimizer


def outputs(model: torch.nn.Module, forwards) -> list[torch.Tensor]:
    """The model's outputs, in eval mode (spectral_norm's power iteration frozen), no grad."""
    training = model.training
    model.eval()
    with torch.no_grad():
        result = [forward().detach().clone() for forward in forwards]
    model.train(training)
    return result


def assert_refused(model, monitor, optimizer, forwards, layer: str, why: str, caplog) -> None:
    """revive() skips `layer` with a warning naming it and `why`, and changes nothing."""
    assert layer in monitor.report().layers and monitor.report().layers[layer].dead >= len(DEAD)
    before = outputs(model, forwards)
    weights = copy.deepcopy(model.state_dict())
    state = copy.deepcopy(optimizer.state_dict())
    with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
        revived = torch_ext.revive(model, monitor, optimizer)
    assert layer not in revived
    messages = [r.getMessage() for r in caplog.records]
    messages = [m for m in messages if f"skipped layer '{layer}'" in m]
    assert messages and any(why in m for m in messages), [r.getMessage() for r in caplog.records]
    for old, new in zip(before, outputs(model, forwards)):
        assert torch.equal(old, new)
    assert_same_state(model.state_dict(), weights)
    assert_same_state(optimizer.state_dict(), state)


def assert_same_state(actual, expected) -> None:
    if isinstance(expected, torch.Tensor):
        assert torch.equal(actual, expected)
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_same_state(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same_state(a, e)
    else:
        assert actual == expected


# --- 1. saturated outputs that no bias can take ----------------------------------------------
@pytest.mark.parametrize(
    "activation",
    [xnn.ELU(), xnn.SELU(), torch.nn.ELU(0.5), torch.nn.CELU(), xnn.CELU(0.5)],
    ids=["xELU", "xSELU", "ELU(0.5)", "CELU", "xCELU(0.5)"],
)
def test_saturated_units_whose_reader_has_no_bias_are_not_revived(activation, caplog):
    """A dead ELU-family unit outputs -alpha (times scale): zeroing its outgoing weights drops
    that, and without a bias in the reader nothing can take it back."""
    model = chain(activation, torch.nn.Linear(6, 3, bias=False))
    kill(model[0])
    x = torch.randn(32, 4)
    forwards = [lambda: model(x)]
    monitor, optimizer = trained(model, forwards)
    assert_refused(model, monitor, optimizer, forwards, "1", "its reader '2' has no bias", caplog)


def test_saturated_units_read_by_a_zero_padded_convolution_are_not_revived(caplog):
    """At the borders the padding zeros stand where -alpha would be: no bias is right there."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 6, 1), xnn.ELU(), torch.nn.Conv2d(6, 3, 3, padding=1)
    )
    kill(model[0])
    x = torch.randn(8, 2, 5, 5)
    forwards = [lambda: model(x)]
    monitor, optimizer = trained(model, forwards)
    assert_refused(model, monitor, optimizer, forwards, "1", "pads with zeros", caplog)


@pytest.mark.parametrize("padding_mode", ["replicate", "reflect", "circular"])
def test_saturated_units_read_through_other_padding_are_revived_exactly(padding_mode):
    """Padding that copies the input repeats -alpha: the folded bias is exact everywhere."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 6, 1),
        xnn.ELU(),
        torch.nn.Conv2d(6, 3, 3, padding=1, padding_mode=padding_mode),
    )
    kill(model[0])
    x = torch.randn(8, 2, 5, 5)
    monitor, optimizer = trained(model, [lambda: model(x)])
    before = outputs(model, [lambda: model(x)])[0]
    assert torch_ext.revive(model, monitor, optimizer) == {"1": DEAD}
    torch.testing.assert_close(outputs(model, [lambda: model(x)])[0], before, rtol=1e-5, atol=1e-5)
    assert torch.all(model[2].weight[:, DEAD] == 0)


# --- 2. computed weights ---------------------------------------------------------------------
def parametrized_weight_norm(m):
    return torch.nn.utils.parametrizations.weight_norm(m)


def parametrized_spectral_norm(m):
    return torch.nn.utils.parametrizations.spectral_norm(m)


def orthogonal(m):
    return torch.nn.utils.parametrizations.orthogonal(m)


def old_weight_norm(m):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated, still in use
        return torch.nn.utils.weight_norm(m)


def old_spectral_norm(m):
    return torch.nn.utils.spectral_norm(m)


def pruned(m):
    return torch.nn.utils.prune.l1_unstructured(m, "weight", amount=0.3)


def pruned_bias(m):
    return torch.nn.utils.prune.random_unstructured(m, "bias", amount=0.3)


COMPUTED = [
    parametrized_weight_norm,
    parametrized_spectral_norm,
    orthogonal,
    old_weight_norm,
    old_spectral_norm,
    pruned,
    pruned_bias,
]


@pytest.mark.parametrize("role", ["producer", "reader"])
@pytest.mark.parametrize("wrap", COMPUTED, ids=[f.__name__ for f in COMPUTED])
def test_layers_with_computed_weights_are_not_revived(wrap, role: str, caplog):
    """Writing into a weight that a parametrization, a pre-hook or a mask recomputes is lost
    or half applied: revive refuses the layer before writing anything."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6))
    index = 0 if role == "producer" else 2
    kill(model[0])
    if wrap is pruned_bias and role == "producer":
        with torch.no_grad():  # keep the killed units' bias through the mask
            wrap(model[0])
            model[0].bias_mask.fill_(1.0)
    else:
        wrap(model[index])
    x = torch.randn(32, 6)
    forwards = [lambda: model(x)]
    monitor, optimizer = trained(model, forwards)
    name = f"'{index}'"
    assert_refused(model, monitor, optimizer, forwards, "1", f"{name} computes its", caplog)


def test_a_linear_subclass_with_its_own_forward_is_not_revived(caplog):
    class DropConnect(torch.nn.Linear):
        def forward(self, input):
            return torch.nn.functional.linear(input, self.weight * 0.5, self.bias)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), DropConnect(6, 3))
    kill(model[0])
    x = torch.randn(32, 4)
    forwards = [lambda: model(x)]
    monitor, optimizer = trained(model, forwards)
    assert_refused(model, monitor, optimizer, forwards, "1", "'2' overrides forward", caplog)


# --- 3. links that other forwards, tied parameters or replaced modules make wrong -----------
class TiedReader(torch.nn.Module):
    """fc2 reads the ReLU; `other` shares fc2's weight (or fc1's) on another path."""

    def __init__(self, tie: str):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.act, self.fc2 = torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6)
        self.other = torch.nn.Linear(6, 6)
        if tie == "reader":
            self.other.weight = self.fc2.weight
        else:
            self.other.weight = self.fc1.weight

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) + self.other(x)


@pytest.mark.parametrize("tie", ["reader", "producer"])
def test_layers_with_tied_parameters_are_not_revived(tie: str, caplog):
    model = TiedReader(tie)
    kill(model.fc1)
    x = torch.randn(32, 6)
    forwards = [lambda: model(x)]
    monitor, optimizer = trained(model, forwards)
    shared = "fc2" if tie == "reader" else "fc1"
    assert_refused(
        model,
        monitor,
        optimizer,
        forwards,
        "act",
        f"'{shared}' shares its weight with 'other'",
        caplog,
    )


class TwoTasks(torch.nn.Module):
    """A trunk (fc -> act) read by head `a` or head `b`, one per forward."""

    def __init__(self, alias: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.act = torch.nn.Linear(4, 6), torch.nn.ReLU()
        self.a, self.b = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
        if alias:  # head a also registered as `again`, which reads the input on task "c"
            self.again = self.a
            self.c_in = torch.nn.Linear(4, 6)

    def forward(self, x, task: str):
        if task == "c":
            return self.again(self.c_in(x))
        return getattr(self, task)(self.act(self.fc(x)))


def test_a_module_registered_twice_is_not_revived(caplog):
    model = TwoTasks(alias=True)
    kill(model.fc)
    x = torch.randn(32, 4)
    forwards = [lambda: model(x, "a"), lambda: model(x, "c")]
    monitor, optimizer = trained(model, forwards[:1])  # task c not even run: it still shares a
    assert_refused(model, monitor, optimizer, forwards, "act", "'a' is registered 2 times", caplog)


@pytest.mark.parametrize("order", ["ab", "ba", "aab"])
def test_a_layer_read_by_different_heads_in_different_forwards_is_not_revived(order: str, caplog):
    """The traced forward sees one head: the other head's forwards must not be left with a
    revived unit whose outgoing weights revive did not zero."""
    model = TwoTasks()
    kill(model.fc)
    x = torch.randn(32, 4)
    forwards = [lambda task=task: model(x, task) for task in order]
    monitor, optimizer = trained(model, forwards)
    assert_refused(
        model,
        monitor,
        optimizer,
        [lambda: model(x, "a"), lambda: model(x, "b")],
        "act",
        "read by ['a']",
        caplog,
    )


def test_an_evaluation_forward_on_another_head_counts_as_another_reader(caplog):
    model = TwoTasks()
    kill(model.fc)
    x = torch.randn(32, 4)
    model.eval()
    with DeadNeuronMonitor(model, window=1) as monitor:
        with torch.no_grad():
            model(x, "b")
        model.train()
        model(x, "a").sum().backward()
        monitor.step()
        assert "read by ['b']" in monitor.link_problem("act")
        assert monitor.links("act") == (None, [])


def test_a_layer_always_read_by_the_same_head_is_revived():
    """The control for the test above: one head only, revived with outputs unchanged."""
    model = TwoTasks()
    kill(model.fc)
    x = torch.randn(32, 4)
    forwards = [lambda: model(x, "a")] * 3
    monitor, optimizer = trained(model, forwards)
    before = outputs(model, forwards[:1])[0]
    assert torch_ext.revive(model, monitor, optimizer) == {"act": DEAD}
    torch.testing.assert_close(outputs(model, forwards[:1])[0], before, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("which", ["reader", "producer", "activation"])
def test_layers_whose_modules_were_replaced_are_not_revived(which: str, caplog):
    """Links name modules seen in a forward: one replaced since (same shape, the old one
    still alive) is not the one revive would write."""
    model = chain(torch.nn.ReLU())
    kill(model[0])
    x = torch.randn(32, 4)
    forwards = [lambda: model(x)]
    monitor, optimizer = trained(model, forwards)
    index = {"producer": 0, "activation": 1, "reader": 2}[which]
    old = model[index]
    model[index] = copy.deepcopy(old)
    assert_refused(
        model, monitor, optimizer, forwards, "1", f"'{index}' is no longer the module", caplog
    )
    assert old is not model[index]


def test_a_reassigned_parameter_of_another_width_is_not_revived(caplog):
    """in_features stays behind when the weight is reassigned: revive checks the tensors."""
    model = chain(torch.nn.ReLU())
    kill(model[0])
    x = torch.randn(32, 4)
    monitor, optimizer = trained(model, [lambda: model(x)])
    model[2].weight = torch.nn.Parameter(torch.randn(3, 7))
    weights = copy.deepcopy(model.state_dict())
    with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
        assert torch_ext.revive(model, monitor, optimizer) == {}
    assert "changed shape" in caplog.text
    assert_same_state(model.state_dict(), weights)


def test_a_forward_run_inside_an_except_block_is_still_watched(caplog):
    """The watch tells a forward's own failure from an exception being handled around it."""
    model = TwoTasks()
    kill(model.fc)
    x = torch.randn(32, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x, "a").sum().backward()
        try:
            raise KeyError("unrelated")
        except KeyError:
            model(x, "b")
        monitor.step()
        assert "read by ['b']" in monitor.link_problem("act")


def test_a_layer_also_called_outside_the_models_forward_is_not_revived(caplog):
    """A training loop calling submodules itself (task b here) runs them where no forward of
    the watched model shows their readers."""
    model = TwoTasks()
    kill(model.fc)
    x = torch.randn(32, 4)
    forwards = [lambda: model(x, "a"), lambda: model.b(model.act(model.fc(x)))]
    monitor, optimizer = trained(model, forwards)
    assert_refused(model, monitor, optimizer, forwards, "act", "called outside a forward", caplog)


def test_a_wrapper_whose_own_forward_never_runs_says_to_monitor_the_submodule(caplog):
    """A LightningModule-like wrapper whose training step calls its submodule directly: no
    forward of the watched model shows the layers' readers, and the warning says what to
    watch instead."""

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = chain(torch.nn.ReLU())

    model = Wrapper()
    kill(model.net[0])
    x = torch.randn(32, 4)
    forwards = [lambda: model.net(x)]
    monitor, optimizer = trained(model, forwards)
    assert_refused(model, monitor, optimizer, forwards, "net.1", "monitor that submodule", caplog)
