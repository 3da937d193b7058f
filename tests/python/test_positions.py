"""An element's result does not depend on where it sits: the same input gives the same bits
whether it is computed alone, in a whole vector, in the last partial vector of a row, at any
offset, through a strided or broadcast view, by the counted forward or the plain one, and
batched by torch.func.vmap or not. Sizes step across each vector width (8 float32 lanes on
AVX2, 16 on AVX-512, 4 and 8 float64 lanes, 16 and 32 bfloat16/float16 lanes) and units
come in odd counts. A scalar tail computed with std::exp while the vector body used the
vector library's exp gave 1-ulp differences here (CELU, alpha 3, float64).

test_build.py reruns this file with the lower ISAs forced; test_isa_results there compares
the ISAs' results with each other."""

from __future__ import annotations

import pytest
import torch

ops = torch.ops.torch_ext
SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65]
UNITS = [1, 7, 9, 17, 33, 65]

# Elementwise ops of one tensor (the others are held fixed per element: g = x's index-based
# partner, so an element and its grad_output move together).
UNARY = {
    "leaky_relu": lambda x: ops.leaky_relu(x, 0.1),
    "prelu_shared": lambda x: ops.prelu(x, torch.tensor([0.3], dtype=x.dtype)),
    "elu": lambda x: ops.elu(x, 1.3),
    "elu_negative": lambda x: ops.elu(x, -0.5),
    "selu": lambda x: ops.selu(x),
    "celu_3": lambda x: ops.celu(x, 3.0),
    "celu_0.5": lambda x: ops.celu(x, 0.5),
    "elu_": lambda x: ops.elu_(x.clone(), 1.3),
    "celu_": lambda x: ops.celu_(x.clone(), 3.0),
}
BINARY = {  # (grad_output, x)
    "leaky_relu_backward": lambda g, x: ops.leaky_relu_backward(g, x, 0.1, False),
    "elu_backward": lambda g, x: ops.elu_backward(g, x, 1.3, 1.0, False),
    "selu_backward": lambda g, x: ops.elu_backward(g, x, *SELU, False),
    "celu_backward": lambda g, x: ops.elu_backward(g, x, 3.0, 1.0, False, 1 / 3.0),
    "elu_backward_from_result": lambda g, y: ops.elu_backward(g, y, 1.3, 1.0, True),
    "prelu_backward_input": lambda g, x: ops.prelu_backward(
        g, x, torch.tensor([0.3], dtype=x.dtype)
    )[0],
}


def values(n: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """n values over the ELU family's interesting range, zeros and a NaN among them."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 4
    x[:: max(n // 3, 1)] = 0.0
    if n > 5:
        x[5] = float("nan")
    return x.to(dtype)


def placements(x: torch.Tensor):
    """x itself, and x's elements elsewhere: shifted by every offset below a vector of 64,
    every other element of a larger buffer, transposed in a 2-D layout, and one of three
    rows that are each dense but lie apart."""
    yield "contiguous", x, lambda out: out
    for shift in (1, 3, 5, 13, 40):
        buffer = torch.cat([torch.zeros(shift, dtype=x.dtype), x, torch.zeros(7, dtype=x.dtype)])
        yield f"offset {shift}", buffer, lambda out, s=shift: out[s : s + x.numel()]
    strided = torch.zeros(2 * x.numel(), dtype=x.dtype)
    strided[::2] = x
    yield "strided", strided[::2], lambda out: out
    yield "column", x.reshape(-1, 1).expand(-1, 3).t().contiguous().t()[:, 1], lambda out: out
    rows = torch.zeros(3, x.numel() + 9, dtype=x.dtype)  # dense rows, apart: a 2-D loop
    rows[1, : x.numel()] = x
    yield "row of three", rows[:, : x.numel()], lambda out: out[1]


def alone(fn, *tensors: torch.Tensor) -> torch.Tensor:
    """fn of each element on its own (a tensor of one element)."""
    return torch.cat([fn(*(t[i : i + 1] for t in tensors)) for i in range(tensors[0].numel())])


def assert_bitwise(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    same = (got == expected) | (got.isnan() & expected.isnan())
    same &= (got.signbit() == expected.signbit()) | got.isnan()
    assert same.all(), f"{what}: {int((~same).sum())} elements differ, first at " + str(
        (~same).nonzero()[0].tolist()
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", UNARY)
def test_unary_ops_give_an_element_the_same_bits_anywhere(name: str, dtype: torch.dtype):
    fn = UNARY[name]
    for n in SIZES:
        x = values(n, dtype, seed=n)
        reference = alone(fn, x)
        for where, placed, pick in placements(x):
            assert_bitwise(pick(fn(placed)), reference, f"{name}, {n} elements, {where}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", BINARY)
def test_backward_ops_give_an_element_the_same_bits_anywhere(name: str, dtype: torch.dtype):
    fn = BINARY[name]
    for n in SIZES:
        x, g = values(n, dtype, seed=n), values(n, dtype, seed=100 + n)
        if name.endswith("from_result"):
            x = ops.elu(x, 1.3)
        reference = alone(fn, g, x)
        assert_bitwise(fn(g, x), reference, f"{name}, {n} elements")
        assert_bitwise(fn(g[::1].flip(0), x.flip(0)).flip(0), reference, f"{name}, flipped")
        g_broadcast = g[:1].expand(n)  # a stride-0 operand
        assert_bitwise(
            fn(g_broadcast, x), alone(fn, g_broadcast.contiguous(), x), f"{name}, broadcast"
        )


COUNTED = {  # counted forward, plain forward; weight: one slope per unit
    "leaky_relu": (
        lambda z, w, c, t: ops.leaky_relu_counted(z, 0.1, c, 1, t),
        lambda z, w: ops.leaky_relu(z, 0.1),
    ),
    "prelu": (
        lambda z, w, c, t: ops.prelu_counted(z, w, c, 1, t),
        lambda z, w: ops.prelu(z, w),
    ),
    "elu": (
        lambda z, w, c, t: ops.elu_counted(z, 1.3, 1.0, c, 1, t),
        lambda z, w: ops.elu(z, 1.3),
    ),
    "selu": (lambda z, w, c, t: ops.elu_counted(z, *SELU, c, 1, t), lambda z, w: ops.selu(z)),
    "celu": (
        lambda z, w, c, t: ops.elu_counted(z, 3.0, 1.0, c, 1, t, input_scale=1 / 3.0),
        lambda z, w: ops.celu(z, 3.0),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", COUNTED)
def test_counted_forward_has_the_plain_forwards_bits(name: str, dtype: torch.dtype):
    """Units innermost ([rows, units]) and per-unit planes ([N, units, L]), odd unit counts
    and plane lengths around each vector width."""
    counted, plain = COUNTED[name]
    for units in UNITS:
        w = torch.linspace(-0.5, 0.5, units, dtype=torch.float64).to(dtype)
        threshold = torch.zeros(units)
        shapes = [(5, units), *((2, units, n) for n in (7, 16, 17, 33, 65))]
        for shape in shapes:
            z = values(int(torch.Size(shape).numel()), dtype, seed=units).reshape(shape)
            counts = torch.zeros(2, units, dtype=torch.int64)
            assert_bitwise(counted(z, w, counts, threshold), plain(z, w), f"{name} {shape}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", ["leaky_relu", "elu", "selu", "celu_3"])
def test_vmap_gives_the_unbatched_bits(name: str, dtype: torch.dtype):
    fn = UNARY[name]
    x = values(7 * 33, dtype, seed=1).reshape(7, 33)
    assert_bitwise(torch.func.vmap(fn)(x), fn(x), f"vmap({name})")
    assert_bitwise(torch.func.vmap(fn, in_dims=1)(x), fn(x.t()), f"vmap({name}, in_dims=1)")
