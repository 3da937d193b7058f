"""Jagged nested tensors (torch.nested, layout=torch.jagged) through the ops, as
torch.nn.functional's activations take them (torch_ext/nested.py): values as native's,
gradients as the same ops on the packed values, nesting kept; PReLU and the counting ops
refuse with their reason."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ulps import assert_values, forward_ulps

import torch_ext.functional as X

ops = torch.ops.torch_ext
CASES = {  # ours, native, the name and parameter of its bound (ulps.py)
    "leaky_relu": (X.leaky_relu, F.leaky_relu, 0.2),
    "elu": (X.elu, F.elu, 0.7),
    "selu": (X.selu, F.selu, None),
    "celu": (X.celu, F.celu, 2.0),
}


def jagged(components, **kwargs) -> torch.Tensor:
    return torch.nested.nested_tensor(components, layout=torch.jagged, **kwargs)


def call(fn, x, param, inplace):
    return fn(x, inplace=inplace) if param is None else fn(x, param, inplace=inplace)


@pytest.mark.parametrize("inplace", [False, True], ids=["out_of_place", "in_place"])
@pytest.mark.parametrize("name", CASES)
def test_values_and_nesting_as_native(name: str, inplace: bool):
    ours, native, param = CASES[name]
    components = [torch.randn(2, 5) * 3, torch.randn(7, 5) * 3]
    x = jagged(components)
    got = call(ours, x, param, inplace)
    expected = call(native, jagged(components), param, inplace)
    assert got.is_nested and got.shape == x.shape  # the input's nesting (its nested int)
    assert (got is x) == inplace
    assert torch.equal(got.offsets(), expected.offsets())
    assert_values(got.values(), expected.values(), forward_ulps(name, torch.float32, param))


@pytest.mark.parametrize("inplace", [False, True], ids=["out_of_place", "in_place"])
@pytest.mark.parametrize("name", CASES)
def test_gradient_is_the_ops_gradient_on_the_values(name: str, inplace: bool):
    ours, _, param = CASES[name]
    components = [torch.randn(3, 4, dtype=torch.float64), torch.randn(1, 4, dtype=torch.float64)]
    x = jagged(components, requires_grad=True)
    y = call(ours, x * 1.0 if inplace else x, param, inplace)
    (y.values() ** 2).sum().backward()
    dense = torch.cat(components).requires_grad_()
    (call(ours, dense * 1.0, param, inplace) ** 2).sum().backward()
    torch.testing.assert_close(x.grad.values(), dense.grad, rtol=0, atol=0)


REFUSED = {
    "prelu": lambda x: ops.prelu(x, torch.tensor([0.25])),
    "leaky_relu_counted": lambda x: ops.leaky_relu_counted(
        x, 0.1, torch.zeros(2, 4, dtype=torch.int64), -1, torch.zeros(4)
    ),
}


@pytest.mark.parametrize("name", REFUSED)
def test_what_cannot_run_on_a_jagged_tensor_says_why(name: str):
    x = jagged([torch.randn(2, 4), torch.randn(3, 4)])
    with pytest.raises(NotImplementedError, match=rf"torch_ext::{name}: jagged nested tensors"):
        REFUSED[name](x)
