"""The default unit dim: a layer fed by a Linear counts along the features (the last dim),
also on [batch, tokens, features] inputs (a transformer's FFN); other layers keep the rule
for convolutions (dim 1 of inputs above 2-D). Counts are compared with plain torch."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

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


class Maker(torch.nn.Module):
    """`act` fed [batch, tokens, 6] (or a Conv1d's [batch, 6, length]) through ops between:
    the units are the 6 features (channels); units DEAD never fire."""

    def __init__(self, between: str):
        super().__init__()
        torch.manual_seed(0)
        self.between, self.act = between, torch.nn.ReLU()
        self.up, self.drop = torch.nn.Linear(4, 6), torch.nn.Dropout(0.25)
        self.conv, self.norm = torch.nn.Conv1d(4, 6, 1), torch.nn.BatchNorm1d(6)
        self.bias = torch.nn.Parameter(torch.zeros(6))
        self.ln = torch.nn.LayerNorm(6, elementwise_affine=False)
        with torch.no_grad():
            for layer in (self.up, self.conv):
                layer.bias[DEAD] = -100.0
            self.up.weight[DEAD] = self.conv.weight[DEAD] = 0.0

    def pre_activation(self, x):
        up, w, b = self.up, self.up.weight, self.up.bias
        return {
            "dropout": lambda: self.drop(up(x)),
            "scaled": lambda: up(x) * 0.5,
            "F.linear": lambda: torch.nn.functional.linear(x, w, b),
            "x @ W": lambda: x @ w.T + b,
            "bias apart": lambda: torch.nn.functional.linear(x, w) + self.bias + b,
            "cast": lambda: up(x).double(),
            "conv, residual": lambda: self.conv(x.mT) * 2 + x.mT.sum(1, keepdim=True),
            "conv, norm": lambda: torch.nn.functional.dropout(self.norm(self.conv(x.mT)), 0.1),
            "permuted": lambda: up(x).permute(0, 2, 1).contiguous(),
            "conv, transposed": lambda: self.conv(x.transpose(1, 2)).mT * 3,
            "conv, sliced (TCN)": lambda: self.conv(x.mT)[:, :, :-1].contiguous(),
            "conv, padded, pooled": lambda: F.max_pool1d(F.pad(self.conv(x.mT), (1, 0)), 1),
            "conv, concatenated": lambda: torch.cat([self.conv(x.mT)] * 2, dim=2),
            "conv, gated (WaveNet)": lambda: self._gated(torch.cat([self.conv(x.mT)] * 2, 1)),
            "conv, layer norm over channels (wav2vec)": lambda: F.gelu(
                self.ln(self.conv(x.mT).mT).mT
            ),
        }[self.between]()

    def _gated(self, h):
        filter, gate = h.chunk(2, dim=1)
        return torch.tanh(filter) * torch.sigmoid(gate) - 0.01  # dead units stay below 0

    def forward(self, x):
        return self.act(self.pre_activation(x))


# The dim of the activation's input that holds the units, per case (Maker).
UNIT_DIMS = {"dropout": -1, "scaled": -1, "F.linear": -1, "x @ W": -1, "bias apart": -1,
             "cast": -1, "conv, residual": 1, "conv, norm": 1, "permuted": 1,
             "conv, transposed": -1, "conv, sliced (TCN)": 1, "conv, padded, pooled": 1,
             "conv, concatenated": 1, "conv, gated (WaveNet)": 1,
             "conv, layer norm over channels (wav2vec)": 1}  # fmt: skip


@pytest.mark.parametrize("between", list(UNIT_DIMS))
def test_units_are_told_through_the_ops_between_the_layer_and_the_activation(between: str):
    """A Linear's features, or a convolution's channels, also when a dropout, a scale, a
    functional linear, a residual add, a cast or a permute sits between (the autograd
    graph is followed back through them): counted against plain torch, never along the
    tokens."""
    model = Maker(between).train()
    model.norm.eval()  # its running statistics keep the dead channels below 0
    x = torch.randn(3, 5, 4)  # 5 tokens: the wrong dim would give 5 units
    with DeadNeuronMonitor(model, window=1) as monitor:
        torch.manual_seed(1)
        model(x).sum().backward()
        monitor.step()
    torch.manual_seed(1)
    with torch.no_grad():
        z = model.pre_activation(x)
    reduce = [d for d in range(3) if d != UNIT_DIMS[between] % 3]
    layer = monitor.history[-1].layers["act"]
    assert layer.units == 6 and layer.samples == z.numel() // 6
    assert layer.active_counts == (z > 0).sum(reduce).tolist()
    assert layer.dead_units == DEAD


def test_convolutions_keep_dim_1_and_unknown_3d_inputs_are_not_counted(caplog):
    """A Conv1d's output counts its channels; a 3-D input nothing tells the units of (the
    model's own input, an op that mixes dims) is not counted, and a warning says so; one
    above 3-D keeps the convolutions' dim 1."""
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv1d(2, 6, 1), torch.nn.ReLU())
    with DeadNeuronMonitor(conv) as monitor:
        conv(torch.randn(3, 2, 5))
        assert monitor.report().layers["1"].units == 6
    bare = torch.nn.Sequential(torch.nn.ReLU())  # its input is the model's: no Linear feeds it
    with DeadNeuronMonitor(bare) as monitor:
        with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
            bare(torch.randn(3, 6, 5, requires_grad=True))
            bare(torch.randn(3, 6, 5).softmax(-1))
        assert monitor.report().layers == {}
        assert caplog.text.count("got a 3-D input that nothing before it tells") == 1
        bare(torch.randn(3, 6, 5, 2))
        assert monitor.report().layers["0"].units == 6


class Scale(torch.nn.Module):
    def forward(self, x):
        return x * 0.5


class WeightFirst(torch.nn.Module):
    """A product with the weight on the left (W @ x: the units along dim -2), viewed back
    to 3-D: not a Linear's features-last output, so not counted along the last dim."""

    def __init__(self):
        super().__init__()
        self.weight, self.act = torch.nn.Parameter(torch.randn(6, 4)), torch.nn.ReLU()

    def forward(self, x):  # x: [4, 5]
        return self.act((self.weight @ x).view(1, 6, 5))


def test_a_product_with_the_weight_first_is_not_taken_for_a_linear(caplog):
    model = WeightFirst()
    with DeadNeuronMonitor(model) as monitor:
        with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
            model(torch.randn(4, 5))
        assert monitor.report().layers == {}
        assert "got a 3-D input that nothing before it tells" in caplog.text


def test_an_input_above_3d_counted_before_any_graph_keeps_one_dim():
    """A first call without autograd (no graph to read) counts a 4-D input along dim 1,
    the convolutions' rule, and every later call keeps that dim: one layer, consistent
    counts, never a second guess that would mix dims or raise."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 6, 1)
    model = torch.nn.Sequential(conv, Scale(), torch.nn.ReLU())  # Scale's output: no feeder
    x = torch.randn(3, 2, 5, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        with torch.no_grad():
            model(x)
        model(x).sum().backward()
        monitor.step()
    z = conv(x).detach()
    layer = monitor.history[-1].layers["2"]
    assert layer.units == 6 and layer.samples == 2 * 3 * 5 * 4
    assert layer.active_counts == (2 * (z > 0).sum((0, 2, 3))).tolist()


def test_a_3d_call_of_unknown_feeder_waits_for_the_forward_to_decide(caplog):
    """A layer first called directly with a 3-D input (no feeder known: dim 1 after a
    Conv1d, the last after a Linear) is not counted there, and a warning says so; the
    model's forward then shows the Linear, and the layer counts its features from then on,
    one dim for every call. The direct call still keeps revive off the layer."""
    model = FFN(torch.nn.ReLU(), hidden=5)
    with DeadNeuronMonitor(model) as monitor:
        with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
            model.act(torch.randn(3, 5, 7))  # [batch, 5, 7]: which dim holds the units?
        assert "got a 3-D input that nothing before it tells" in caplog.text
        model(torch.randn(3, 5, 4))  # fed by up: [batch, 5 tokens, 5 features]
        model.act(torch.randn(2, 3, 5))  # decided now: the last dim
        assert monitor.report().layers["act"].units == 5
        assert monitor.report().layers["act"].samples == 3 * 5 + 2 * 3
        assert "called outside a forward of the whole model" in monitor.link_problem("act")
