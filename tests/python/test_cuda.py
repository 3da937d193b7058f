"""CUDA-only behaviour: launches on the current stream with no host sync (a CUDA graph
captures them), 64-bit indexing past 2^31 elements, deterministic PReLU weight gradients.
The device-independent suite runs on CUDA too (the `device` fixture in conftest.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

ops = torch.ops.torch_ext
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def every_op(
    x: torch.Tensor, g: torch.Tensor, w: torch.Tensor, counts: torch.Tensor, thr: torch.Tensor
) -> list[torch.Tensor]:
    result, mask = ops.leaky_relu_masked(x, 0.1)
    return [
        ops.leaky_relu(x, 0.1),
        ops.leaky_relu_backward(g, x, 0.1, False),
        result,
        mask,
        ops.leaky_relu_backward_masked(g, mask, 0.1, x.stride()),
        ops.elu(x, 0.5),
        ops.selu(x),
        ops.elu_backward(g, x, 1.0, 1.0, False),
        ops.celu(x, 0.5),
        ops.elu_backward(g, x, 0.5, 1.0, False, 2.0),
        ops.prelu(x, w),
        *ops.prelu_backward(g, x, w),
        ops.leaky_relu_counted(x, 0.1, counts, 1, thr),
        ops.prelu_counted(x, w, counts, 1, thr),
        ops.elu_counted(x, 1.0, 1.0, counts, 1, thr),
        ops.elu_counted(x, 0.5, 1.0, counts, 1, thr, False, 2.0),
        ops.count_active_(x, counts, 1, thr) or counts,
    ]


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "rows"])
def test_ops_capture_in_a_cuda_graph(layout: str):
    """Capture fails if a kernel leaves the capturing (current) stream or syncs the host."""
    x = torch.randn(4, 8, 5, 7, device="cuda")
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "rows":
        x = torch.randn(33, 8, device="cuda")
    g, w = torch.randn_like(x), torch.linspace(-0.5, 0.5, 8, device="cuda")
    thr = torch.full((8,), -0.5, device="cuda")
    eager_counts = torch.zeros(2, 8, dtype=torch.int64, device="cuda")
    eager = every_op(x, g, w, eager_counts, thr)
    counts = torch.zeros(2, 8, dtype=torch.int64, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
        every_op(x, g, w, torch.zeros_like(counts), thr)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = every_op(x, g, w, counts, thr)
    graph.replay()
    torch.cuda.synchronize()
    for got, want in zip(captured[:-1], eager[:-1]):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert torch.equal(counts, eager_counts)


def test_past_2_to_the_31_elements():
    """64-bit offsets: the last elements of a > 2^31-element tensor are computed and counted."""
    n = 2**31 + 77
    x = torch.empty(n, dtype=torch.float16, device="cuda").uniform_(-1, 1)
    for ours, native in [
        (ops.leaky_relu(x, 0.1), lambda t: F.leaky_relu(t, 0.1)),
        (ops.elu(x, 1.0), lambda t: F.elu(t, 1.0)),
    ]:
        for part in (slice(0, 4096), slice(n // 2, n // 2 + 4096), slice(n - 4096, n)):
            torch.testing.assert_close(ours[part], native(x[part]))
        del ours
    z = x.view(1, n)
    counts = torch.zeros(2, 1, dtype=torch.int64, device="cuda")
    ops.count_active_(z, counts, 0, torch.full((1,), -0.5, device="cuda"))
    assert counts[0, 0].item() == (x > 0).sum().item()
    assert counts[1, 0].item() == (x > -0.5).sum().item()


def test_prelu_weight_gradient_is_deterministic():
    x = torch.randn(16, 32, 28, 28, device="cuda")
    g, w = torch.randn_like(x), torch.rand(32, device="cuda")
    first = ops.prelu_backward(g, x, w)[1]
    for _ in range(3):
        assert torch.equal(ops.prelu_backward(g, x, w)[1], first)
    expected = (torch.where(x > 0, 0, x) * g).double().sum((0, 2, 3))
    torch.testing.assert_close(first.double(), expected, rtol=1e-5, atol=1e-3)
