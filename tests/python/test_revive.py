"""torch_ext.revive: dead units re-initialised without changing the network's outputs, only
in plain Linear/Conv -> activation -> Linear/Conv chains (norms, pooling and residual
structure: test_revive_structures.py), and with the optimizer's state of the revived slices
reset."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

import torch_ext
from torch_ext import DeadNeuronMonitor

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device

DEAD = [0, 3, 5]


def network(activation: torch.nn.Module, conv: bool) -> torch.nn.Sequential:
    torch.manual_seed(0)
    if conv:
        return torch.nn.Sequential(torch.nn.Conv2d(2, 6, 1), activation, torch.nn.Conv2d(6, 3, 1))
    return torch.nn.Sequential(torch.nn.Linear(4, 6), activation, torch.nn.Linear(6, 3))


@pytest.mark.parametrize("conv", [False, True], ids=["linear", "conv"])
@pytest.mark.parametrize(
    "activation",
    [
        torch.nn.ReLU(),
        torch.nn.ELU(),
        torch.nn.SELU(),
        torch.nn.ReLU(inplace=True),
        torch.nn.CELU(0.5),
        torch_ext.nn.CELU(2.0),
    ],
    ids=repr,
)
def test_revive_keeps_outputs_and_makes_units_trainable(activation, conv: bool):
    model = network(activation, conv)
    x = torch.randn(32, 2, 3, 3) if conv else torch.randn(32, 4)
    with torch.no_grad():
        model[0].bias[DEAD] = -100.0
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        assert monitor.history[-1].layers["1"].dead_units == DEAD
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor)
        after = model(x).detach()
    assert revived == {"1": DEAD}
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert torch.all(model[0].bias[DEAD] == 0.01)
    assert torch.all(model[2].weight[:, DEAD] == 0)

    # The revived units learn again: first their (zeroed) outgoing weights get gradient,
    # then, once those moved, their incoming weights too.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(2):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        assert torch.all(model[2].weight.grad[:, DEAD].flatten(1).abs().sum(0) > 0)
        incoming = model[0].weight.grad[DEAD].flatten(1).abs().sum(1)
        assert torch.all(incoming > 0) if step == 1 else torch.all(incoming == 0)
        optimizer.step()


def test_links_found_by_the_monitor():
    model = network(torch.nn.ReLU(), conv=False)
    with DeadNeuronMonitor(model) as monitor:
        model(torch.randn(3, 4))
        monitor.step()
        feeder, readers = monitor.links("1")
    assert feeder is model[0] and readers == [model[2]]
    assert not any(m._forward_hooks for m in model.modules())  # discovery hooks are gone


def kill_units(layer: torch.nn.Module, units=DEAD) -> None:
    with torch.no_grad():
        layer.bias[units] = -100.0


class Permuted(torch.nn.Module):
    """fc1's features are permuted before the ReLU: dim 1 of the ReLU's input holds them,
    but that input is not fc1's output, and fc2 reads the last dim (token positions). The
    contiguous copy is made once the permuted view is freed: it can take the view's id()."""

    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)

    def forward(self, x):  # x: [batch, 6 tokens, 4]
        return self.fc2(self.act(self.fc1(x).permute(0, 2, 1).contiguous()))


class Concatenated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = (
            torch.nn.Linear(6, 6),
            torch.nn.ReLU(),
            torch.nn.Linear(12, 3),
        )

    def forward(self, x):
        h = self.act(self.fc1(x))
        return self.fc2(torch.cat([h, x], dim=1))


class Tokens(torch.nn.Module):
    """Linear layers on [batch, tokens, features]: units lie along the last dim."""

    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)

    def forward(self, x):  # x: [batch, tokens, 4]
        return torch.tanh(self.fc2(self.act(self.fc1(x * 2.0))))


NOT_PLAIN = [  # model, its input, why revive refuses
    (Permuted, lambda: torch.randn(16, 6, 4), "its input is not the output of a Linear/Conv layer"),
    (
        Concatenated,
        lambda: torch.randn(16, 6),
        "its output is used by cat outside a Linear/Conv layer",
    ),
]


@pytest.mark.parametrize("make,data,why", NOT_PLAIN, ids=[m.__name__ for m, _, _ in NOT_PLAIN])
def test_revive_skips_layers_that_are_not_a_plain_chain(make, data, why, caplog):
    """Links are right or absent: revive names the layer and why, and changes nothing."""
    torch.manual_seed(0)
    model = make()
    kill_units(model.fc1)
    x = data()
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        assert set(DEAD) <= set(monitor.history[-1].layers["act"].dead_units)
        before, weights = model(x).detach(), copy.deepcopy(model.state_dict())
        with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
            revived = torch_ext.revive(model, monitor)
        after = model(x).detach()
        assert monitor.links("act") == (None, [])
    assert revived == {}
    assert torch.equal(after, before)
    assert all(torch.equal(value, weights[key]) for key, value in model.state_dict().items())
    assert any(
        "skipped layer 'act'" in r.getMessage() and why in r.getMessage() for r in caplog.records
    )


def test_revive_still_revives_a_plain_chain_inside_other_operations():
    """Linear layers on [batch, tokens, features] (as many tokens as features here): by
    default a layer fed by a Linear counts along the features' dim, a plain chain revived
    exactly; counted along dim 1 (tokens), its units are not fc1's features and the link is
    refused."""
    torch.manual_seed(0)
    model = Tokens()
    kill_units(model.fc1)
    x = torch.randn(16, 6, 4)
    with DeadNeuronMonitor(model, window=1, unit_dim={"act": 1}) as monitor:
        model(x)
        assert monitor.links("act") == (None, [])
        assert monitor.link_problem("act") == (
            "its units lie along dim 1, but its feeder 'fc1' writes features along dim 2"
        )
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor)
        after = model(x).detach()
        assert monitor.links("act") == (model.fc1, [model.fc2])
    assert revived == {"act": DEAD}
    torch.testing.assert_close(after, before, rtol=1e-6, atol=1e-6)
    assert torch.all(model.fc2.weight[:, DEAD] == 0) and torch.all(model.fc1.bias[DEAD] == 0.01)


def trained_with_stale_state(optimizer_class, steps: int = 3, **options):
    """A network trained a few steps with every unit alive (the optimizer's state is
    non-zero everywhere), then units DEAD killed and seen dead for one step."""
    model = network(torch.nn.ReLU(), conv=False)
    optimizer = optimizer_class(model.parameters(), **options)
    x = torch.randn(32, 4)

    def train_step():
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()

    for _ in range(steps):
        train_step()
    kill_units(model[0])
    monitor = DeadNeuronMonitor(model, window=1).attach()
    train_step()
    monitor.step()
    return model, optimizer, monitor


@pytest.mark.parametrize(
    "optimizer_class,options,fresh",
    [
        (torch.optim.Adam, {"lr": 1e-2}, {}),
        (torch.optim.AdamW, {"lr": 1e-2, "amsgrad": True}, {}),
        (torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9}, {}),
        (torch.optim.Rprop, {"lr": 1e-2}, {"step_size": 1e-2}),
    ],
    ids=["Adam", "AdamW-amsgrad", "SGD-momentum", "Rprop"],
)
def test_revive_resets_optimizer_state_of_the_revived_slices_only(optimizer_class, options, fresh):
    model, optimizer, monitor = trained_with_stale_state(optimizer_class, **options)
    before = copy.deepcopy(optimizer.state_dict()["state"])
    revived = torch_ext.revive(model, monitor, optimizer)
    monitor.remove()
    assert revived == {"1": DEAD}
    slices = {0: (DEAD, 0), 1: (DEAD, 0), 2: (DEAD, 1)}  # param index -> revived slice, dim
    after = optimizer.state_dict()["state"]
    stale = set()  # (param index, key) whose revived slices held old state
    for index, state in before.items():
        param = list(model.parameters())[index]
        for key, value in state.items():
            expected = value.clone()
            if index in slices and value.shape == param.shape:
                units, dim = slices[index]
                revived_slices = torch.tensor(units, device=value.device)
                if key in ("exp_avg_sq", "max_exp_avg_sq"):  # the other slices' mean
                    kept = [i for i in range(value.shape[dim]) if i not in units]
                    peers = value.index_select(dim, torch.tensor(kept, device=value.device))
                    mean = peers.mean(dim, keepdim=True).expand_as(
                        value.index_select(dim, revived_slices)
                    )
                    expected.index_copy_(dim, revived_slices, mean.contiguous())
                else:
                    expected.index_fill_(dim, revived_slices, fresh.get(key, 0.0))
                if not torch.equal(expected, value):
                    stale.add((index, key))
            assert torch.equal(after[index][key], expected), (index, key)
    assert {index for index, _ in stale} == set(slices)  # the test is not vacuous


def test_revived_weights_step_like_their_peers_under_adam():
    """Adam's step count goes on after revive: zeroed second moments would make the revived
    entries' next steps several times larger than the others' (bias correction near 1 after
    many steps, v ~ (1 - beta2) g^2). With their peers' mean they step no further than the
    others."""
    model, optimizer, monitor = trained_with_stale_state(torch.optim.Adam, steps=1000, lr=1e-4)
    x = torch.randn(32, 4)
    assert torch_ext.revive(model, monitor, optimizer) == {"1": DEAD}
    monitor.remove()
    live = [u for u in range(6) if u not in DEAD]
    for _ in range(3):  # a few steps: momentum builds up while v stays comparable
        before = model[0].weight.detach().clone()
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()
        moved = (model[0].weight.detach() - before).abs().mean(1)
        assert moved[DEAD].mean() <= 1.5 * moved[live].mean()


@pytest.mark.parametrize("live_scale", [0.01, 100.0], ids=["small_peers", "large_peers"])
def test_fresh_rows_start_no_larger_than_their_live_peers(live_scale: float):
    """Fresh incoming rows are the layer's own init draw, scaled down to the mean norm of
    the live rows where that is smaller (a model initialised at std 0.02), and left as drawn
    where the live rows grew larger (a high learning rate)."""
    model = network(torch.nn.ReLU(), conv=False)
    x = torch.randn(32, 4)
    live = [u for u in range(6) if u not in DEAD]
    with torch.no_grad():
        model[0].weight *= live_scale
        model[0].bias[DEAD] = -1e6
        model[0].bias[live] = 1e3  # alive on every sample
    peers = model[0].weight[live].detach().norm(dim=1).mean()
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        torch.manual_seed(1)
        assert torch_ext.revive(model, monitor) == {"1": DEAD}
    torch.manual_seed(1)
    drawn = torch.nn.Linear(4, len(DEAD)).weight.detach().norm(dim=1)  # the init's own draw
    norms = model[0].weight[DEAD].detach().norm(dim=1)
    expected = torch.minimum(drawn, peers.expand(len(DEAD)))
    torch.testing.assert_close(norms, expected, rtol=1e-5, atol=0)


def test_units_alive_again_since_the_closed_window_are_not_revived(caplog):
    """revive acts on the last closed window; a unit it calls dead that the open window has
    since seen gradient-alive is dead no more: it keeps its weights (a warning names it),
    the others are revived, and the output on the data is what it was."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    kill_units(model[0])
    x = torch.randn(64, 8)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        assert set(DEAD) <= set(monitor.history[-1].layers["1"].dead_units)
        with torch.no_grad():
            model[0].bias[DEAD[0]] = 100.0  # alive again, seen by the open window
        model(x).sum().backward()
        before, weights = model(x).detach(), model[0].weight[DEAD[0]].clone()
        with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
            revived = torch_ext.revive(model, monitor)
    assert DEAD[0] not in revived["1"] and set(DEAD[1:]) <= set(revived["1"])
    assert torch.equal(model[0].weight[DEAD[0]], weights)
    assert f"units [{DEAD[0]}] were dead over window 0 but are not since" in caplog.text
    torch.testing.assert_close(model(x).detach(), before, rtol=0, atol=1e-6)
