"""Leaky ReLU's 1-bit sign mask: what its autograd keeps instead of the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import DTYPES, LAYOUTS, ids, make_input

import torch_ext.functional as X

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


ops = torch.ops.torch_ext


def memory_order(t: torch.Tensor) -> torch.Tensor:
    """t's elements in its memory order (t dense)."""
    return t.as_strided((t.numel(),), (1,), t.storage_offset()) if t.numel() else t.reshape(-1)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("layout", [*LAYOUTS, "odd-large"])
def test_masked_forward(layout: str, dtype: torch.dtype):
    x = torch.randn(1000 * 33 + 5).to(dtype) if layout == "odd-large" else make_input(layout, dtype)
    result, mask = ops.leaky_relu_masked(x, 0.1)
    torch.testing.assert_close(result, F.leaky_relu(x, 0.1), rtol=0, atol=0)
    expected = np.packbits(
        (memory_order(torch.empty_like(result).copy_(x)) > 0).cpu().numpy().astype(np.uint8),
        bitorder="little",
    )
    assert mask.dtype == torch.uint8 and mask.numel() == (x.numel() + 7) // 8
    assert mask.cpu().numpy().tobytes() == expected.tobytes()


@pytest.mark.parametrize("slope", [0.0, 0.01, -0.2, 1.5])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_masked_backward_is_bitwise_the_input_backward(
    layout: str, dtype: torch.dtype, slope: float
):
    x = make_input(layout, dtype)
    result, mask = ops.leaky_relu_masked(x, slope)
    g = torch.randn(x.shape, dtype=torch.float64).to(dtype)
    ours = ops.leaky_relu_backward_masked(g, mask, slope, result.stride())
    assert torch.equal(ours, ops.leaky_relu_backward(g, x, slope, False))
    assert ours.stride() == result.stride()


@pytest.mark.parametrize("grad_layout", ["contiguous", "transposed", "channels_last", "strided"])
def test_masked_backward_takes_grad_output_in_any_layout(grad_layout: str):
    """The mask's bits follow the result's memory order, named by result_strides; a
    grad_output laid out otherwise is read in that order, not misread."""
    x = make_input("channels_last", torch.float32)
    result, mask = ops.leaky_relu_masked(x, 0.1)
    g = torch.randn(x.shape)
    if grad_layout == "transposed":
        g = g.transpose(0, 3).contiguous().transpose(0, 3)
    elif grad_layout == "channels_last":
        g = g.contiguous(memory_format=torch.channels_last)
    elif grad_layout == "strided":
        g = torch.randn(*x.shape[:-1], 2 * x.shape[-1])[..., ::2]
    ours = ops.leaky_relu_backward_masked(g, mask, 0.1, result.stride())
    assert torch.equal(ours, ops.leaky_relu_backward(g, x, 0.1, False))


@pytest.mark.parametrize("slope", [0.0, 0.01, -0.2])
@pytest.mark.parametrize("layout", ["2d", "channels_last", "transposed", "strided"])
def test_autograd_gradients_are_bitwise_native(layout: str, slope: float):
    x = make_input(layout, torch.float32)
    g = torch.randn(x.shape)
    grads = []
    for fn in (X.leaky_relu, F.leaky_relu):
        leaf = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(leaf, slope), leaf, g)
        grads.append(grad)
    assert torch.equal(grads[0], grads[1])


def test_saved_bytes_are_a_32nd_of_the_input():
    x = torch.randn(256, 1024, requires_grad=True)
    sizes = []

    def pack(t):
        sizes.append(t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        X.leaky_relu(x)
    assert sizes == [x.numel() // 8]


def test_errors():
    g = torch.randn(20)
    with pytest.raises(TypeError, match="'sign_mask' to be uint8"):
        ops.leaky_relu_backward_masked(g, torch.zeros(3), 0.1, [1])
    with pytest.raises(RuntimeError, match=r"'sign_mask' to be a contiguous 1-D tensor of 3 bytes"):
        ops.leaky_relu_backward_masked(g, torch.zeros(4, dtype=torch.uint8), 0.1, [1])
    mask = torch.zeros(3, dtype=torch.uint8)
    with pytest.raises(
        RuntimeError, match=r"'result_strides' to have one stride per dim of 'grad_output' \(1\)"
    ):
        ops.leaky_relu_backward_masked(g, mask, 0.1, [4, 1])
    with pytest.raises(
        RuntimeError, match=r"'result_strides' \[2\] to lay out a tensor of shape \[20\] densely"
    ):
        ops.leaky_relu_backward_masked(g, mask, 0.1, [2])
    with pytest.raises(RuntimeError, match=r"'result_strides' \[1, 1\] to lay out"):
        ops.leaky_relu_backward_masked(g.view(4, 5), mask, 0.1, [1, 1])
    with pytest.raises(RuntimeError, match="leaky_relu_masked: not differentiable"):
        ops.leaky_relu_masked(torch.randn(3, requires_grad=True), 0.1)


def test_opcheck():
    x = torch.randn(5, 7)
    torch.library.opcheck(ops.leaky_relu_masked.default, (x, 0.1))
    _, mask = ops.leaky_relu_masked(x, 0.1)
    torch.library.opcheck(
        ops.leaky_relu_backward_masked.default, (torch.randn(5, 7), mask, 0.1, [7, 1])
    )
    torch.library.opcheck(
        ops.leaky_relu_backward_masked.default,
        (torch.randn(5, 7, requires_grad=True), mask, 0.1, [7, 1]),
    )
    torch.library.opcheck(
        ops.leaky_relu_backward_masked.default, (torch.randn(7, 5).t(), mask, 0.1, [7, 1])
    )


def test_offloading_hooks_store_only_the_mask():
    """save_on_cpu (what activation offloading uses) copies each saved tensor: only the
    mask's bytes, as the create_graph stand-in for the input is not a saved tensor."""
    x = torch.randn(256, 1024, requires_grad=True)
    stored = []
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: stored.append(t.clone()) or stored[-1], lambda t: t
    ):
        y = X.leaky_relu(x * 1.0)
    assert y.shape == x.shape
    assert sum(t.untyped_storage().nbytes() for t in stored) == x.numel() // 8
