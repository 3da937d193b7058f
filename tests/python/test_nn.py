"""torch_ext.nn modules against their torch.nn counterparts."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from helpers import graph_node_kinds
from ulps import assert_values, forward_ulps

import torch_ext.nn as xnn

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


PAIRS = [
    (xnn.LeakyReLU, torch.nn.LeakyReLU, {"negative_slope": 0.2}),
    (xnn.LeakyReLU, torch.nn.LeakyReLU, {"negative_slope": 0.05, "inplace": True}),
    (xnn.ELU, torch.nn.ELU, {"alpha": 0.7}),
    (xnn.ELU, torch.nn.ELU, {"inplace": True}),
    (xnn.CELU, torch.nn.CELU, {}),
    (xnn.CELU, torch.nn.CELU, {"alpha": 0.7}),
    (xnn.CELU, torch.nn.CELU, {"alpha": -1.5}),
    (xnn.CELU, torch.nn.CELU, {"alpha": 2.0, "inplace": True}),
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
        torch.nn.Linear(3, 3),
        xnn.CELU(0.5),
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
        "torch_ext::celu",
    } <= called


SAVES_OUTPUT = [  # the modules with save_output, and a native configuration of each
    (xnn.ELU, torch.nn.ELU, {"alpha": 0.5}),
    (xnn.CELU, torch.nn.CELU, {"alpha": 0.5}),
    (xnn.CELU, torch.nn.CELU, {"alpha": 2.0, "inplace": True}),
    (xnn.SELU, torch.nn.SELU, {}),
]


@pytest.mark.parametrize("save_output", [False, True])
@pytest.mark.parametrize(
    "ours_cls,native_cls,kwargs", SAVES_OUTPUT, ids=[names(p) for p in SAVES_OUTPUT]
)
def test_repr_state_dict_and_copies_keep_the_configuration(
    ours_cls, native_cls, kwargs, save_output: bool
):
    """repr is torch.nn's plus save_output when set; the state dict is torch.nn's (empty:
    save_output is not in it), both ways; deepcopy and torch.save/load keep every argument
    and compute what the original does."""
    ours, native = ours_cls(**kwargs, save_output=save_output), native_cls(**kwargs)
    expected = repr(native)
    if save_output:
        inner = expected[expected.index("(") + 1 : -1]
        expected = f"{type(native).__name__}({inner + ', ' if inner else ''}save_output=True)"
    assert repr(ours) == expected
    assert ours.state_dict().keys() == native.state_dict().keys() == set()
    ours.load_state_dict(native.state_dict())
    native.load_state_dict(ours.state_dict())
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    x = torch.randn(4, 6, dtype=torch.float64)
    for copied in (copy.deepcopy(ours), loaded):
        assert type(copied) is ours_cls and repr(copied) == repr(ours)
        assert copied.save_output == save_output and copied.inplace == ours.inplace
        assert getattr(copied, "alpha", None) == getattr(ours, "alpha", None)
        torch.testing.assert_close(copied(x.clone()), native(x.clone()))


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_celu_scripts_and_traces(alpha: float):
    """torch.jit.script and torch.jit.trace of a model with torch_ext.nn.CELU call
    torch_ext::celu (celu_ in place) and give eager's values and gradients."""
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        xnn.CELU(alpha),
        torch.nn.Linear(8, 8),
        xnn.CELU(alpha, inplace=True),
        torch.nn.Linear(8, 3),
        xnn.CELU(alpha, save_output=True),
    ).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    eager_leaf = x.clone().requires_grad_(True)
    eager = model(eager_leaf)
    (eager_grad,) = torch.autograd.grad(eager.pow(2).sum(), eager_leaf)
    for module in (torch.jit.script(model), torch.jit.trace(model, (x,))):
        assert {"torch_ext::celu", "torch_ext::celu_"} <= graph_node_kinds(module.inlined_graph)
        leaf = x.clone().requires_grad_(True)
        y = module(leaf)
        (grad,) = torch.autograd.grad(y.pow(2).sum(), leaf)
        torch.testing.assert_close(y, eager)
        torch.testing.assert_close(grad, eager_grad)


@pytest.mark.parametrize("ours_cls,native_cls,kwargs", PAIRS, ids=[names(p) for p in PAIRS])
def test_module_under_autocast_matches_torch_nn(ours_cls, native_cls, kwargs, device):
    """torch.autocast (CPU bfloat16, CUDA float16): the output's dtype and values and the
    input's and parameters' gradients equal the native module's. PReLU is one of autocast's
    lower-precision ops (input and weight cast; the weight's gradient back in float32); the
    others run in their input's dtype."""
    dtype = torch.bfloat16 if device == "cpu" else torch.float16
    results = []
    data = (torch.randn(6, 3, 5, dtype=torch.float64) * 3).float()
    for cls in (ours_cls, native_cls):
        module = cls(**kwargs)
        x = data.clone().requires_grad_()
        with torch.autocast(device, dtype=dtype):
            h = x * 1.0  # a non-leaf: the in-place modules may write it
            y = module(h)
        (y.float() ** 2).sum().backward()
        results.append((y, x.grad, [p.grad for p in module.parameters()]))
    (y, x_grad, p_grads), (y_native, x_grad_native, p_grads_native) = results
    assert y.dtype == y_native.dtype
    name = {"LeakyReLU": "leaky_relu", "PReLU": "prelu"}.get(ours_cls.__name__)
    name = name or ours_cls.__name__.lower()
    assert_values(y, y_native, forward_ulps(name, y.dtype, kwargs.get("alpha", 1.0)))
    # the ELU family's 1-2 ulps of the output, through (y ** 2)' = 2 y, in the input's dtype
    tolerance = {"rtol": 1e-6, "atol": 1e-6} if name in ("elu", "selu", "celu") else {}
    torch.testing.assert_close(x_grad, x_grad_native, **(tolerance or {"rtol": 0, "atol": 0}))
    for got, expected in zip(p_grads, p_grads_native):
        assert got.dtype == expected.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
