"""torch_ext.revive: dead units re-initialised without changing the network's outputs."""

from __future__ import annotations

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
@pytest.mark.parametrize("activation", [torch.nn.ReLU(), torch.nn.ELU(), torch.nn.SELU(),
                                        torch.nn.ReLU(inplace=True)], ids=repr)
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
