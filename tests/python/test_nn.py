"""torch_ext.nn modules against their torch.nn counterparts."""

from __future__ import annotations

import pytest
import torch
from helpers import graph_node_kinds

import torch_ext.nn as xnn

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


PAIRS = [
    (xnn.LeakyReLU, torch.nn.LeakyReLU, {"negative_slope": 0.2}),
    (xnn.LeakyReLU, torch.nn.LeakyReLU, {"negative_slope": 0.05, "inplace": True}),
    (xnn.ELU, torch.nn.ELU, {"alpha": 0.7}),
    (xnn.ELU, torch.nn.ELU, {"inplace": True}),
    (xnn.SELU, torch.nn.SELU, {}),
    (xnn.SELU, torch.nn.SELU, {"inplace": True}),
    (xnn.PReLU, torch.nn.PReLU, {}),
    (xnn.PReLU, torch.nn.PReLU, {"num_parameters": 3, "init": 0.1}),
]


def names(pair):
    ours, _, kwargs = pair
    return ours.__name__ + "".join(f"-{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("ours_cls,native_cls,kwargs", PAIRS, ids=[names(p) for p in PAIRS])
def test_module_matches_torch_nn(ours_cls, native_cls, kwargs):
    ours, native = ours_cls(**kwargs), native_cls(**kwargs)
    assert repr(ours) == repr(native)
    assert isinstance(ours, native_cls)
    base = torch.randn(4, 3, 5, dtype=torch.float64)
    results = []
    for module in (ours.double(), native.double()):
        leaf = base.clone().requires_grad_(True)
        y = module(leaf * 1.0)
        y.pow(2).sum().backward()
        params = [p.grad for p in module.parameters()]
        results.append((y.detach(), leaf.grad, params))
    torch.testing.assert_close(results[0], results[1])


def test_prelu_state_dict_moves_both_ways():
    native = torch.nn.PReLU(3, init=0.3)
    with torch.no_grad():
        native.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    ours = xnn.PReLU(3)
    ours.load_state_dict(native.state_dict())
    torch.testing.assert_close(ours.weight, native.weight)
    back = torch.nn.PReLU(3)
    back.load_state_dict(ours.state_dict())
    torch.testing.assert_close(back.weight, native.weight)
    assert list(ours.state_dict()) == ["weight"]


def test_prelu_constructor_signature():
    m = xnn.PReLU(num_parameters=4, init=0.5, dtype=torch.float64)
    assert m.weight.shape == (4,) and m.weight.dtype == torch.float64
    assert torch.all(m.weight == 0.5)
    assert m.extra_repr() == "num_parameters=4"


def test_prelu_trains():
    """The slope is a parameter: a step of SGD moves it the way the gradient says."""
    torch.manual_seed(0)
    m = xnn.PReLU(1, init=0.25)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x = -torch.rand(64) - 0.5  # all negative: output = w * x
    target = -x  # w = -1 is the answer
    for _ in range(200):
        opt.zero_grad()
        loss = (m(x) - target).pow(2).mean()
        loss.backward()
        opt.step()
    torch.testing.assert_close(m.weight.detach(), torch.tensor([-1.0]), atol=1e-3, rtol=0)


def test_modules_in_sequential_script():
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        xnn.LeakyReLU(0.1),
        torch.nn.Linear(8, 8),
        xnn.PReLU(8),
        torch.nn.Linear(8, 8),
        xnn.ELU(),
        torch.nn.Linear(8, 3),
        xnn.SELU(),
    )
    scripted = torch.jit.script(model)
    x = torch.randn(4, 5)
    torch.testing.assert_close(scripted(x), model(x))
    called = graph_node_kinds(scripted.inlined_graph)
    assert {
        "torch_ext::leaky_relu",
        "torch_ext::prelu",
        "torch_ext::elu",
        "torch_ext::selu",
    } <= called
