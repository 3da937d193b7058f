"""The default unit dim: a layer fed by a Linear counts along the features (the last dim),
also on [batch, tokens, features] inputs (a transformer's FFN); other layers keep the rule
for convolutions (dim 1 of inputs above 2-D). Counts are compared with plain torch."""

from __future__ import annotations

import logging

import pytest
import torch

import torch_ext
import torch_ext.nn as xnn
from torch_ext import DeadNeuronMonitor

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device

DEAD = [1, 4]


class FFN(torch.nn.Module):
    """A transformer block's feed-forward part: Linear -> activation -> Linear per token."""

    def __init__(self, activation: torch.nn.Module, features: int = 4, hidden: int = 6):
        super().__init__()
        torch.manual_seed(0)
        self.up, self.act = torch.nn.Linear(features, hidden), activation
        self.down = torch.nn.Linear(hidden, features)
        with torch.no_grad():
            self.up.bias[DEAD] = -100.0

    def forward(self, x):  # x: [batch, tokens, features]
        return x + self.down(self.act(self.up(x)))


@pytest.mark.parametrize("tokens", [5, 6], ids=["tokens!=hidden", "tokens==hidden"])
@pytest.mark.parametrize("activation", [torch.nn.ReLU(), xnn.ELU()], ids=["hook", "fused"])
def test_ffn_on_tokens_counts_units_along_the_features(activation, tokens: int):
    model = FFN(activation)
    x = torch.randn(3, tokens, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
    z = model.up(x).detach()
    layer = monitor.history[-1].layers["act"]
    assert layer.units == 6 and layer.samples == 3 * tokens
    assert layer.active_counts == (z > 0).sum((0, 1)).tolist()
    assert layer.dead_units == DEAD


def test_ffn_on_tokens_is_revived_with_its_output_kept():
    model = FFN(torch.nn.ReLU())
    x = torch.randn(3, 6, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        with torch.no_grad():
            before = x + model.down(torch.relu(model.up(x)))  # the function, in plain torch
        assert torch_ext.revive(model, monitor) == {"act": DEAD}
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-6, atol=1e-6)
    assert torch.all(model.down.weight[:, DEAD] == 0)


def test_convolutions_and_unfed_layers_keep_dim_1():
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv1d(2, 6, 1), torch.nn.ReLU())
    bare = torch.nn.Sequential(torch.nn.ReLU())  # its input is the model's: no Linear feeds it
    for model, x in ((conv, torch.randn(3, 2, 5)), (bare, torch.randn(3, 6, 5))):
        with DeadNeuronMonitor(model) as monitor:
            model(x)
            name = "1" if model is conv else "0"
            assert monitor.report().layers[name].units == 6


def test_a_3d_call_of_unknown_feeder_waits_for_the_forward_to_decide(caplog):
    """A layer first called directly with a 3-D input (no feeder known: dim 1 after a
    Conv1d, the last after a Linear) is not counted there, and a warning says so; the
    model's forward then shows the Linear, and the layer counts its features from then on,
    one dim for every call. The direct call still keeps revive off the layer."""
    model = FFN(torch.nn.ReLU(), hidden=5)
    with DeadNeuronMonitor(model) as monitor:
        with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
            model.act(torch.randn(3, 5, 7))  # [batch, 5, 7]: which dim holds the units?
        assert "got a 3-D input outside an eager forward" in caplog.text
        model(torch.randn(3, 5, 4))  # fed by up: [batch, 5 tokens, 5 features]
        model.act(torch.randn(2, 3, 5))  # decided now: the last dim
        assert monitor.report().layers["act"].units == 5
        assert monitor.report().layers["act"].samples == 3 * 5 + 2 * 3
        assert "called outside a forward of the whole model" in monitor.link_problem("act")
