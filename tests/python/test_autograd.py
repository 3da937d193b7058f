"""gradcheck and gradgradcheck in float64, for every op and every backward op."""

from __future__ import annotations

import pytest
import torch
from helpers import ACTIVATIONS, Activation, ids
from torch.autograd import gradcheck, gradgradcheck

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


ops = torch.ops.torch_ext


def away_from_kink(*shape: int) -> torch.Tensor:
    """float64 values with |x| >= 0.1: finite differences never straddle x == 0."""
    x = torch.randn(*shape, dtype=torch.float64)
    return (x.sign() * (x.abs() + 0.1)).requires_grad_(True)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_out_of_place(act: Activation):
    x = away_from_kink(3, 4)
    fn = lambda t: act.run(t)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.inplace_backward_ok], ids=str)
def test_in_place(act: Activation):
    x = away_from_kink(3, 4)
    fn = lambda t: act.run(t * 1.0, inplace=True)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (4, 3, 2, 2)], ids=str)
def test_prelu(shape, channels):
    if len(shape) < 2:
        channels = 1
    x = away_from_kink(*shape)
    w = torch.tensor([0.25, -0.5, 1.5][:channels], dtype=torch.float64, requires_grad=True)
    assert gradcheck(ops.prelu, (x, w))
    assert gradgradcheck(ops.prelu, (x, w))


def test_prelu_channels_last():
    x = away_from_kink(2, 3, 4, 5).detach().contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w = torch.tensor([0.25, -0.5, 1.5], dtype=torch.float64, requires_grad=True)
    assert gradcheck(ops.prelu, (x, w))
    assert gradgradcheck(ops.prelu, (x, w))


# is_result with a negative slope is invalid (test_errors checks that it raises).
@pytest.mark.parametrize("slope,is_result", [(0.0, False), (0.3, False), (-0.2, False), (0.0, True), (0.3, True)])
def test_leaky_relu_backward_op(slope: float, is_result: bool):
    g, s = away_from_kink(6), away_from_kink(6)
    fn = lambda g, s: ops.leaky_relu_backward(g, s, slope, is_result)  # noqa: E731
    assert gradcheck(fn, (g, s))
    assert gradgradcheck(fn, (g, s))


@pytest.mark.parametrize("is_result", [False, True])
@pytest.mark.parametrize("alpha,scale", [(1.0, 1.0), (0.5, 2.0), (1.6732632423543772, 1.0507009873554805)])
def test_elu_backward_op(alpha: float, scale: float, is_result: bool):
    g, s = away_from_kink(6), away_from_kink(6)
    if is_result:  # a valid result: y > -alpha * scale
        s = (s.detach().clamp(min=-alpha * scale + 0.1)).requires_grad_(True)
    fn = lambda g, s: ops.elu_backward(g, s, alpha, scale, is_result)  # noqa: E731
    assert gradcheck(fn, (g, s))
    assert gradgradcheck(fn, (g, s))


def test_prelu_backward_op():
    g, x = away_from_kink(2, 3, 4), away_from_kink(2, 3, 4)
    w = torch.tensor([0.25, -0.5, 1.5], dtype=torch.float64, requires_grad=True)
    assert gradcheck(ops.prelu_backward, (g, x, w))
    assert gradgradcheck(ops.prelu_backward, (g, x, w))


def test_what_each_op_keeps_for_backward():
    """float32: ELU/SELU keep their output (the next layer keeps it anyway), Leaky ReLU one
    bit per element (its input's signs, packed LSB first), PReLU its input and weight."""
    x = torch.randn(8, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    for fn in (ops.elu, ops.selu, ops.leaky_relu):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = fn(x) if fn is not ops.elu else fn(x, 1.0)
        assert len(saved) == 1
        if fn is ops.leaky_relu:
            bits = sum(1 << i for i, v in enumerate(x.tolist()) if v > 0)
            assert saved[0].dtype == torch.uint8 and saved[0].tolist() == [bits]
        else:
            assert saved[0].data_ptr() == y.data_ptr()
