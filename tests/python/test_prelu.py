"""PReLU values and gradients (input and weight) against torch.nn.functional.prelu, for
every layout and dtype, shared and per-channel weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import DTYPES, LAYOUTS, ids, make_input, special_values
from ulps import assert_weight_grad

import torch_ext.functional as X

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


def weights_for(x: torch.Tensor) -> list[torch.Tensor]:
    shared = [torch.tensor([0.25], dtype=x.dtype), torch.tensor(-0.3, dtype=x.dtype)]
    if x.dim() < 2:
        return shared[:1] if x.dim() == 0 else shared
    channels = torch.linspace(-0.5, 1.5, x.shape[1], dtype=torch.float64).to(x.dtype)
    return [*shared, channels]


def value_and_grads(fn, x: torch.Tensor, w: torch.Tensor, grad: torch.Tensor):
    xl = x.detach().clone().requires_grad_(True)
    wl = w.detach().clone().requires_grad_(True)
    y = fn(xl, wl)
    gx, gw = torch.autograd.grad(y, (xl, wl), grad, allow_unused=True)
    return y.detach(), gx, gw if gw is not None else torch.zeros_like(wl)


def check(x: torch.Tensor, w: torch.Tensor, **tolerance):
    grad = torch.randn(x.shape, dtype=torch.float64).to(x.dtype)
    if x.is_contiguous(memory_format=torch.channels_last) and x.dim() == 4:
        grad = grad.contiguous(memory_format=torch.channels_last)
    ours = value_and_grads(X.prelu, x, w, grad)
    native = value_and_grads(F.prelu, x, w, grad)
    torch.testing.assert_close(ours, native, **tolerance)
    assert ours[0].stride() == native[0].stride() or not x.is_non_overlapping_and_dense()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_value_and_grads_match_native(layout: str, dtype: torch.dtype):
    x = make_input(layout, dtype)
    for w in weights_for(x):
        # Reduced types: the weight gradient sums many rounded terms (native sums in its own order).
        tolerance = (
            {"rtol": 2e-2, "atol": 2e-2 * max(1, x.numel() ** 0.5)}
            if dtype in (torch.bfloat16, torch.float16)
            else {}
        )
        check(x, w, **tolerance)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_forward_on_rows_of_every_width_is_natives(dtype: torch.dtype):
    """[N, C] inputs (one weight per element of a row): rows of whole vectors, of a partial
    one and of both, for every vector width, give native's bits."""
    for channels in [*range(1, 34), 47, 63, 64, 65, 100]:
        x = torch.randn(5, channels, dtype=torch.float64).to(dtype)
        x[0, 0] = 0.0
        w = torch.linspace(-0.5, 1.5, channels, dtype=torch.float64).to(dtype)
        assert torch.equal(X.prelu(x, w), F.prelu(x, w)), channels


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "nc", "ncl"])
def test_one_pass_backward_on_large_inputs(layout: str, dtype: torch.dtype):
    """Sizes where the one-pass backward runs many chunks and flushes its float lanes.
    Value and input gradient equal native's; the weight gradient, a sum of up to 12,544
    rounded terms per channel, is held to a float64 reference within 1e-6 (float32) of the
    sum of the terms' magnitudes (cancellation makes a relative bound on the sum itself
    meaningless; native's own error is of the same size). bfloat16/float16: the terms,
    exact products in float, are summed as float32's, then rounded once to the dtype."""
    shape = {
        "nchw": (8, 16, 28, 28),
        "channels_last": (8, 16, 28, 28),
        "nc": (4096, 96),
        "ncl": (16, 24, 700),
    }[layout]
    x = torch.randn(shape, dtype=dtype)
    g = torch.randn(shape, dtype=dtype)
    if layout == "channels_last":
        x, g = (t.contiguous(memory_format=torch.channels_last) for t in (x, g))
    dims = [d for d in range(x.dim()) if d != 1]
    terms = torch.where(x.double() > 0, 0.0, x.double() * g.double())
    bound = (1e-13 if dtype == torch.float64 else 1e-6) * terms.abs().sum(dims)
    rounding = torch.finfo(dtype).eps / 2 if x.element_size() == 2 else 0.0
    for w in weights_for(x):
        ours = value_and_grads(X.prelu, x, w, g)
        native = value_and_grads(F.prelu, x, w, g)
        torch.testing.assert_close(ours[:2], native[:2], rtol=0, atol=0)
        reference = terms.sum(dims) if w.numel() > 1 else terms.sum().reshape(w.shape)
        limit = (bound if w.numel() > 1 else bound.sum()) + rounding * reference.abs()
        assert torch.all((ours[2].double() - reference).abs() <= limit)


def test_weight_gradient_is_exact_in_float64():
    """The per-channel weight gradient against a float64 reference sum."""
    x = torch.randn(16, 8, 40, 40, dtype=torch.float64)
    g = torch.randn_like(x)
    w = torch.rand(8, dtype=torch.float64, requires_grad=True)
    (gw,) = torch.autograd.grad(X.prelu(x, w), w, g)
    expected = torch.where(x > 0, 0.0, x * g).sum((0, 2, 3))
    torch.testing.assert_close(gw, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_special_values(dtype: torch.dtype):
    x = special_values(dtype)
    w = torch.tensor([0.25], dtype=dtype)
    ours, native = X.prelu(x, w), F.prelu(x, w)
    torch.testing.assert_close(ours, native, equal_nan=True)
    zeros = native == 0
    assert torch.equal(ours[zeros].signbit(), native[zeros].signbit())


def test_gradient_at_zero():
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64, requires_grad=True)
    gx, gw = torch.autograd.grad(X.prelu(x, w).sum(), (x, w))
    torch.testing.assert_close(gx, w.detach().expand(2, 3))  # the slope, as SEMANTICS.md says
    torch.testing.assert_close(gw, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "rows"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_weight_gradient_does_not_depend_on_thread_timing(layout: str, dtype: torch.dtype):
    """Per-chunk partial sums are merged in a fixed order: 30 identical calls with 4
    threads give one value, bitwise (it used to depend on which thread finished first)."""
    shape = (64, 96) if layout == "rows" else (16, 8, 40, 40)
    x = torch.randn(shape, dtype=dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(x)
    w = torch.rand(x.shape[1], dtype=dtype)
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        values = {
            torch.ops.torch_ext.prelu_backward(g, x, w)[1].cpu().view(torch.uint8).numpy().tobytes()
            for _ in range(30)
        }
    finally:
        torch.set_num_threads(threads)
    assert len(values) == 1


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "rows"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_weight_gradient_does_not_depend_on_the_thread_count(layout: str, dtype: torch.dtype):
    """The chunks whose partial sums are merged depend on the size alone: 1, 2 and 3 threads
    give the same bits (they used to differ in float64)."""
    shape = (512, 96) if layout == "rows" else (16, 8, 40, 40)
    x = torch.randn(shape, dtype=dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    g, w = torch.randn_like(x), torch.rand(x.shape[1], dtype=dtype)
    threads = torch.get_num_threads()
    values = set()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            values.add(
                torch.ops.torch_ext.prelu_backward(g, x, w)[1].view(torch.uint8).numpy().tobytes()
            )
    finally:
        torch.set_num_threads(threads)
    assert len(values) == 1


@pytest.mark.parametrize("shape", [(64, 96), (16, 8, 40, 40), (256, 64, 8, 8), (4096, 32)])
def test_float32_weight_gradient_is_within_its_stated_bound(shape):
    """The README's bound: each term x * g rounded once (as natively), summed in float lanes
    of at most 32 terms, then in float64: |ours - exact| <= 34 u sum|x * g| per channel."""
    x, g = torch.randn(shape), torch.randn(shape)
    w = torch.rand(shape[1])
    dims = [d for d in range(len(shape)) if d != 1]
    terms = torch.where(x.double() > 0, 0.0, x.double() * g.double())
    exact, size = terms.sum(dims), terms.abs().sum(dims)
    ours = torch.ops.torch_ext.prelu_backward(g, x, w)[1].double()
    assert torch.all((ours - exact).abs() <= 34 * 2.0**-24 * size)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_weight_gradient_does_not_depend_on_the_layouts(dtype: torch.dtype):
    """The weight gradient is summed in the one pass's order whatever the layouts: a
    broadcast grad_output (y.sum().backward()), a strided or 1-D input, on any thread count."""
    x = torch.randn(8, 16, 9, 9, dtype=dtype)
    w = torch.rand(16, dtype=dtype)
    grads = []
    for grad_output in (torch.ones((), dtype=dtype).expand(x.shape), torch.ones_like(x)):
        grads.append(torch.ops.torch_ext.prelu_backward(grad_output, x, w)[1])
    assert len({g.view(torch.uint8).numpy().tobytes() for g in grads}) == 1
    strided = torch.randn(8, 32, 9, 9, dtype=dtype)[:, ::2]
    ones = torch.ones_like(strided)
    assert torch.equal(
        torch.ops.torch_ext.prelu_backward(ones, strided, w)[1],
        torch.ops.torch_ext.prelu_backward(ones, strided.contiguous(), w)[1],
    )
    flat = torch.randn(2**16 + 3, dtype=dtype)
    threads = torch.get_num_threads()
    values = set()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            values.add(
                torch.ops.torch_ext.prelu_backward(flat, flat, w[:1])[1]
                .view(torch.uint8)
                .numpy()
                .tobytes()
            )
    finally:
        torch.set_num_threads(threads)
    assert len(values) == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
def test_backward_reads_a_broadcast_grad_output_as_broadcast(dtype: torch.dtype):
    """A grad_output of fewer elements that broadcasts to the input can share the input's
    strides ([1, 3] and [2, 3] contiguous): it is read broadcast, not past its end; and
    size-1 dims with any stride (a slice) take the one pass like any other layout."""
    x = torch.randn(4, 3, 5, dtype=dtype)
    w = torch.rand(3, dtype=dtype)
    for g in (torch.randn(1, 3, 5, dtype=dtype), torch.randn(3, 5, dtype=dtype)):
        ours = torch.ops.torch_ext.prelu_backward(g, x, w)
        native = torch.ops.aten._prelu_kernel_backward(g.expand_as(x), x, w.reshape(1, 3, 1))
        torch.testing.assert_close(ours[0], native[0], rtol=0, atol=0)
        assert_weight_grad(ours[1], native[1].sum((0, 2)), x, w, g.expand_as(x))
    sliced = torch.randn(1, 1, 2, dtype=dtype)[:, :, 1:]  # strides (2, 2, 1), offset 1
    g = torch.randn(1, 1, 1, dtype=dtype)
    w = torch.tensor([0.25], dtype=dtype)
    ours = torch.ops.torch_ext.prelu_backward(g, sliced, w)
    native = torch.ops.aten._prelu_kernel_backward(g, sliced, w)
    torch.testing.assert_close(ours[0], native[0], rtol=0, atol=0)
    torch.testing.assert_close(ours[1], native[1].reshape(1), rtol=0, atol=0)
