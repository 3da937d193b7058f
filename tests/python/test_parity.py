"""Values and gradients of the elementwise ops against torch.nn.functional."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from helpers import (
    ACTIVATIONS,
    DTYPES,
    LAYOUTS,
    Activation,
    ids,
    make_input,
    run_checked,
    special_values,
)
from ulps import assert_values, forward_ulps

import torch_ext
import torch_ext.functional as X

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


def value_and_grad(act: Activation, x: torch.Tensor, grad: torch.Tensor, native: bool):
    leaf = x.detach().clone().requires_grad_(True)
    y = act.run(leaf, native=native)
    y.backward(grad)
    return y.detach(), leaf.grad


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_value_and_grad_match_native(act: Activation, layout: str, dtype: torch.dtype):
    x = make_input(layout, dtype)
    grad = torch.randn_like(x, dtype=torch.float64).to(dtype)
    ours_y, ours_g = value_and_grad(act, x, grad, native=False)
    native_y, native_g = value_and_grad(act, x, grad, native=True)
    torch.testing.assert_close(ours_y, native_y)
    torch.testing.assert_close(ours_g, native_g)
    assert ours_y.shape == x.shape and ours_y.dtype == dtype
    assert ours_y.stride() == native_y.stride() or not x.is_non_overlapping_and_dense()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "act",
    [a for a in ACTIVATIONS if a.param in (None, 0.01, 1.0) or str(a) == "celu(2.0)"],
    ids=str,
)
def test_large_tensor_matches_native(act: Activation, dtype: torch.dtype):
    """More than 2**20 elements: several parallel chunks and vector bodies."""
    x = torch.randn(2**20 + 77, dtype=dtype)
    grad = torch.randn_like(x)
    ours_y, ours_g = value_and_grad(act, x, grad, native=False)
    native_y, native_g = value_and_grad(act, x, grad, native=True)
    torch.testing.assert_close(ours_y, native_y)
    torch.testing.assert_close(ours_g, native_g)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int16)


def test_every_bfloat16_rounds_as_native(device: str):
    """Every bfloat16 (subnormals, infinities, NaNs with any payload) through the ops whose
    float results are rounded back to bfloat16, against native, bit for bit (the NaNs'
    too, where native rounds in vector code): the loops round with ATen's integer rounding, or on AVX512-BF16 CPUs with
    vcvtne2ps2bf16 except where that differs (subnormals, NaNs: reduced_float.h)."""
    every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    x, g = every.reshape(256, 256), every.flip(0).reshape(256, 256)
    ops, F = torch.ops.torch_ext, torch.nn.functional
    weight = torch.linspace(-2, 2, 256, dtype=torch.float64).to(torch.bfloat16)
    for slope in (0.01, -3.0):
        y, mask = ops.leaky_relu_masked(x, slope)
        cases = {
            "leaky_relu": (ops.leaky_relu(x, slope), F.leaky_relu(x, slope)),
            "leaky_relu_masked": (y, F.leaky_relu(x, slope)),
            "leaky_relu_backward": (
                ops.leaky_relu_backward(g, x, slope, False),
                torch.ops.aten.leaky_relu_backward(g, x, slope, False),
            ),
            "leaky_relu_backward_masked": (
                ops.leaky_relu_backward_masked(g, mask, slope, x.stride()),
                torch.ops.aten.leaky_relu_backward(g, x, slope, False),
            ),
        }
        for name, (ours, native) in cases.items():
            assert torch.equal(_bits(ours), _bits(native)), f"{name}, slope {slope}"
    ours = ops.prelu(x, weight)
    assert torch.equal(_bits(ours), _bits(torch.ops.aten._prelu_kernel(x, weight.reshape(1, -1))))
    # Native's PReLU backward rounds in scalar code, whose NaN is 0x7fc0 (its vector code's,
    # as ours, 0xffff): NaN positions there, every other value bit for bit.
    ours_gi = ops.prelu_backward(g, x, weight)[0]
    native_gi = torch.ops.aten._prelu_kernel_backward(g, x, weight.reshape(1, -1))[0]
    assert torch.equal(ours_gi.isnan(), native_gi.isnan())
    assert torch.equal(_bits(ours_gi)[~ours_gi.isnan()], _bits(native_gi)[~native_gi.isnan()])


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_special_values_forward(act: Activation, dtype: torch.dtype):
    """NaN, +-inf, +-0.0 and denormals give the native op's values, signed zeros included."""
    x = special_values(dtype)
    ours = act.run(x)
    native = act.run(x, native=True)
    torch.testing.assert_close(ours, native, equal_nan=True)
    zeros = native == 0
    assert torch.equal(ours[zeros].signbit(), native[zeros].signbit())


@pytest.mark.parametrize("numel", [2, 2 * 67], ids=["scalar_tail", "vector_body"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("alpha", [-1.0, -0.5, 0.0, 2.0])
def test_elu_keeps_the_sign_of_zero_for_any_alpha(alpha: float, dtype: torch.dtype, numel: int):
    """elu(+-0.0) is +-0.0 as natively on the CPU, also where alpha < 0 would flip
    alpha * expm1(-0.0). ATen's CUDA kernel does flip it (-+0.0 for alpha < 0); ours keeps
    the CPU's answer on every device (README, "Where torch_ext differs from PyTorch")."""
    x = torch.tensor([0.0, -0.0] * (numel // 2), dtype=dtype)
    native = torch.nn.functional.elu(x.cpu(), alpha)
    for ours in (torch.ops.torch_ext.elu(x, alpha), torch.ops.torch_ext.elu_(x.clone(), alpha)):
        assert torch.equal(ours.signbit().cpu(), native.signbit()) and not ours.any()


@pytest.mark.parametrize("numel", [2, 2 * 67], ids=["scalar_tail", "vector_body"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("alpha", [-1.0, -0.5, 0.5, 2.0])
def test_celu_keeps_the_sign_of_zero_for_any_alpha(alpha: float, dtype: torch.dtype, numel: int):
    """celu(+-0.0) is +-0.0 as natively, for alpha < 0 too (where alpha * expm1(-0.0 / alpha)
    is alpha * expm1(+0.0), of alpha's sign)."""
    x = torch.tensor([0.0, -0.0] * (numel // 2), dtype=dtype)
    native = torch.nn.functional.celu(x, alpha)
    for ours in (torch.ops.torch_ext.celu(x, alpha), torch.ops.torch_ext.celu_(x.clone(), alpha)):
        assert torch.equal(ours.signbit(), native.signbit()) and not ours.any()


@pytest.mark.parametrize("numel", [8, 8 * 67], ids=["scalar_tail", "vector_body"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("alpha", [1e10, 1e30, 3.4e38, -1e10, -1e30])
def test_celu_keeps_the_sign_where_x_over_alpha_underflows(alpha, dtype, numel: int):
    """x < 0 tiny and |alpha| huge: x / alpha underflows to a signed zero, expm1 keeps its
    sign, and so does the result, as natively (the float series of AVX2/AVX-512 lost it,
    DEFAULT's did not: the bits depended on the ISA)."""
    finfo = torch.finfo(dtype)
    tiny = [-finfo.tiny, -finfo.tiny / 2, -finfo.smallest_normal * finfo.eps, -1e-38, -0.0]
    x = torch.tensor((tiny + [0.0, 1.0, -1.0]) * (numel // 8), dtype=torch.float64).to(dtype)
    native = torch.nn.functional.celu(x, alpha)
    ours = torch.ops.torch_ext.celu(x, alpha)
    assert torch.equal(ours.signbit(), native.signbit())
    torch.testing.assert_close(ours, native)


@pytest.mark.parametrize(
    "alpha, dtype",
    [
        (alpha, dtype)
        for alpha in (1e38, 1e-38, 0.1, 0.3, 3.0, 49.0, 1e20, 1e-20)
        for dtype in DTYPES
        if dtype != torch.float16 or 1e-4 < alpha < 6e4  # float16's range
    ],
    ids=str,
)
def test_celu_gradient_at_zero_is_one_for_any_alpha(alpha: float, dtype: torch.dtype):
    """CELU's slope at 0 is alpha * (1 / alpha) = 1, exactly, whatever 1 / alpha rounds to
    (a product with it missed 1 by an ulp in float64, and in float32 where 1 / alpha is
    subnormal); the analytic value."""
    x = torch.tensor([0.0, -0.0] * 40, dtype=dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(torch.ops.torch_ext.celu(x, alpha).sum(), x)
    assert torch.equal(grad, torch.ones_like(grad))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(  # in place (from the result) needs alpha >= 0: test_inplace.py
    "alpha,inplace",
    [(a, False) for a in (0.1, 1e-3, 0.3, 1.9, -0.7)] + [(a, True) for a in (0.1, 1e-3, 1.9)],
)
def test_celu_gradient_takes_the_exact_input_scale(alpha: float, inplace: bool, dtype):
    """CELU's gradient is exp(x / alpha) below 0, x / alpha as the forward rounds it. For an
    alpha float32 does not hold, F.celu's derivative takes 1 / float32(alpha) instead
    (PyTorch's derivatives.yaml), which moves it off by up to |x / alpha| * 6e-8 relative;
    ours equals ATen's own elu_backward at input_scale = 1 / alpha, and out of place float64
    math within the rounding of x / alpha (|x / alpha| ulps through exp) and a few more."""
    x = (torch.linspace(-12, 2, 301, dtype=torch.float64) * abs(alpha)).to(dtype)
    g = torch.linspace(0.5, 2.0, x.numel(), dtype=torch.float64).to(dtype)
    leaf = x.clone().requires_grad_(True)
    y = X.celu(leaf * 1.0, alpha, inplace=True) if inplace else X.celu(leaf, alpha)
    (ours,) = torch.autograd.grad(y, leaf, g)
    s = y.detach() if inplace else x
    aten = torch.ops.aten.elu_backward(g, alpha, 1.0, 1 / alpha, inplace, s)
    torch.testing.assert_close(ours, aten)
    if not inplace:  # from the result, y + alpha cancels in the tail (as natively)
        x64 = x.double()
        exact = torch.where(x64 > 0, 1.0, torch.exp(x64 / alpha)) * g.double()
        bound = ((x64 / alpha).abs() + 4) * torch.finfo(dtype).eps * exact.abs()
        assert ((ours.double() - exact).abs() <= bound).all()


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_special_values_backward(act: Activation):
    """Gradients at +-inf, +-0.0 and denormals equal the native op's; at NaN the negative
    branch applies (x > 0 is false), as in ATen's vectorized kernels."""
    x = special_values(torch.float32)
    grad = torch.full_like(x, 0.5)
    _, ours = value_and_grad(act, x, grad, native=False)
    _, native = value_and_grad(act, x, grad, native=True)
    finite = ~x.isnan()
    torch.testing.assert_close(ours[finite], native[finite])
    at_nan = ours[x.isnan()]
    if act.name == "leaky_relu":
        torch.testing.assert_close(at_nan, torch.tensor([0.5 * act.param]))
    else:
        assert at_nan.isnan().all()


def test_float32_gradient_exp_is_the_vector_librarys(device: str):
    """The ELU family's float32 gradient takes exp from an inlined copy of the vector
    library's (primitives.h): bit for bit what ATen's vectorized elu_backward computes with
    Vectorized<float>::exp() (torch.exp is MKL's), on every ISA, over the floats of either
    sign (every 257th bit pattern: subnormals, underflow, overflow; inf, NaN). With alpha =
    scale = 1 and g = 1 both compute input_scale * exp(input_scale * x): exp(x) for input
    scale 1, -exp(-x) for -1 (CELU with a negative alpha). ATen's scalar tail has the C
    library's exp: the size is a multiple of every vector width and chunk."""
    if device != "cpu":
        pytest.skip("CUDA's exp is its own")
    bits = torch.arange(0, 0x7FC00001, 257, dtype=torch.int64)[: 2**15 * 254]
    x = -bits.to(torch.int32).view(torch.float32)  # -0.0 to -3.4e38: x > 0 is false
    x[-2:] = torch.tensor([-float("inf"), float("nan")])
    ones = torch.ones_like(x)
    for input_scale in (1.0, -1.0):
        got = torch.ops.torch_ext.elu_backward(ones, x, 1.0, 1.0, False, input_scale)
        expected = torch.ops.aten.elu_backward(ones, 1.0, 1.0, input_scale, False, x)
        same = (got.view(torch.int32) == expected.view(torch.int32)) | (
            got.isnan() & expected.isnan()
        )
        assert same.all(), f"input scale {input_scale}: differs at x = {x[~same][0].item()!r}"


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_gradient_at_zero_is_the_negative_branch(act: Activation):
    """SEMANTICS.md: at x == 0 the gradient is slope / alpha / scale*alpha, not 1 (CELU's is
    1 from both sides: alpha * (1 / alpha) * e^0)."""
    for zero in (0.0, -0.0):
        x = torch.tensor([zero], dtype=torch.float64, requires_grad=True)
        act.run(x).backward(torch.ones_like(x))
        torch.testing.assert_close(x.grad, torch.tensor([act.grad_at_zero()], dtype=torch.float64))


def test_selu_is_self_normalizing():
    """E[selu(z)] = 0 and E[selu(z)^2] = 1 for z ~ N(0, 1), by quadrature in float64."""
    z = torch.linspace(-12, 12, 200_001, dtype=torch.float64)
    density = torch.exp(-(z**2) / 2) / (2 * torch.pi) ** 0.5
    y = torch.ops.torch_ext.selu(z)
    mean = torch.trapezoid(y * density, z)
    second_moment = torch.trapezoid(y**2 * density, z)
    assert abs(mean.item()) < 1e-9
    assert abs(second_moment.item() - 1) < 1e-9


def _negative_floats(dtype: torch.dtype, count: int) -> torch.Tensor:
    """About `count` values of `dtype` spread evenly over the bit patterns of [-88, -0.0]."""
    bits = {torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    first = int(torch.tensor(-0.0, dtype=dtype).view(bits))
    last = int(torch.tensor(-88.0, dtype=dtype).view(bits))
    step = max((last - first) // count, 1)
    return torch.arange(first, last + 1, step, dtype=torch.int64).to(bits).view(dtype)


# The README's table: the largest error of elu(x, alpha=1) (expm1 as the op computes it)
# against the exact value, in ulps of the dtype at the exact value, on the vector ISAs.
# (DEFAULT computes the float32 exp with the C library's: within 1 ulp there.)
ELU_MAX_ULPS = {torch.float32: 0.756, torch.float64: 0.997, torch.bfloat16: 0.5, torch.float16: 0.5}


@pytest.mark.parametrize("dtype", list(ELU_MAX_ULPS), ids=str)
def test_elu_error_is_within_the_readme_table(dtype: torch.dtype):
    import numpy as np

    if dtype in (torch.bfloat16, torch.float16):  # every value of the dtype in [-88, 0]
        every = torch.arange(-(2**15), 0, dtype=torch.int32).to(torch.int16).view(dtype)
        x = every[(every <= 0) & (every >= -88)]
    else:
        x = torch.cat(
            [_negative_floats(dtype, 200_000), torch.linspace(-1, 0, 20_001, dtype=dtype)]
        )
    exact = np.expm1(x.double().numpy().astype(np.longdouble))
    got = X.elu(x, 1.0).double().numpy().astype(np.longdouble)
    digits = {torch.float32: 23, torch.float64: 52, torch.bfloat16: 7, torch.float16: 10}[dtype]
    tiny = np.longdouble(torch.finfo(dtype).tiny)
    spacing = np.exp2(np.floor(np.log2(np.maximum(np.abs(exact), tiny))) - digits)
    worst = float(np.max(np.abs(got - exact) / spacing))
    bound = ELU_MAX_ULPS[dtype]
    if torch_ext.build_info()["cpu_isa"] == "DEFAULT" and dtype == torch.float32:
        bound = 1.0
    assert worst <= bound, f"{dtype}: {worst:.4f} ulp"


@pytest.mark.parametrize("alpha", [-1.0, -0.5, -3.0])
def test_celu_with_a_negative_alpha_is_within_its_ulps_of_native(alpha: float):
    """CELU with alpha < 0 takes expm1 of positive arguments, x / alpha: every float whose
    argument is in [ln 2, ln 3), where exp(x) - 1 was up to 2 ulp off (expm1's series covers
    it now), and a spread of others, within ulps.py's bound of native."""
    lo, hi = (torch.tensor(v, dtype=torch.float32).view(torch.int32).item() for v in (0.69, 1.1))
    arguments = torch.arange(lo, hi + 1, 3, dtype=torch.int64).to(torch.int32).view(torch.float32)
    x = torch.cat([arguments * alpha, torch.randn(1 << 16) * 8])
    assert_values(
        X.celu(x, alpha), torch.nn.functional.celu(x, alpha), forward_ulps("celu", x.dtype, alpha)
    )


# float32 bit patterns: denormals of both signs (the smallest and largest), zeros, and
# normal values on both sides, enough for whole vectors and a partial last one.
_DENORMALS_AND_NEIGHBOURS = [0x1, 0x80000001, 0x7FFFFF, 0x807FFFFF, 0, 0x80000000, 0x3F000000]
_DENORMALS_AND_NEIGHBOURS += [0xBF000000, 0x40400000]


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_kept_denormals_come_out_as_native(act: Activation, device: str):
    """With denormals kept (the default), an element whose input or gradient is a denormal
    or a zero comes out bitwise as native's: passed through where the slope is 1, also where
    ours leaves out a multiply by a unit scale or alpha (ELU and CELU with alpha 1; every
    CELU's gradient), and scaled elsewhere. CELU's gradient with alpha != 1 is the exact
    value rounded once (native multiplies by 1 / alpha and then by alpha: a denormal
    gradient can underflow to 0 between them). The flushing mode is read per call: a call
    after it is switched off keeps them again."""
    bits = torch.tensor(_DENORMALS_AND_NEIGHBOURS * 5, dtype=torch.int64).to(torch.int32)
    x = bits.view(torch.float32).to(device)
    grad = bits.roll(3).view(torch.float32).to(device)
    if device == "cpu":
        assert torch.set_flush_denormal(True), "this CPU cannot flush denormals"
        torch.set_flush_denormal(False)
    ours_y, ours_g = value_and_grad(act, x, grad, native=False)
    native_y, native_g = value_and_grad(act, x, grad, native=True)
    if act.name == "celu" and act.param != 1.0:
        x64 = x.double()
        native_g = (grad.double() * torch.where(x64 > 0, 1.0, torch.exp(x64 / act.param))).float()
    tiny = torch.finfo(torch.float32).tiny
    exact = (x.abs() < tiny) | (grad.abs() < tiny)
    for what, ours, native in (("value", ours_y, native_y), ("input grad", ours_g, native_g)):
        assert torch.equal(ours[exact].view(torch.int32), native[exact].view(torch.int32)), (
            what,
            x[exact].view(torch.int32).tolist(),
            ours[exact].view(torch.int32).tolist(),
            native[exact].view(torch.int32).tolist(),
        )
        torch.testing.assert_close(ours, native)


# Run in a process of its own: at::parallel_for's worker, created by the first parallel op,
# keeps the denormal mode the calling thread had then (WORKER_FLUSHES), which then switches.
_MIXED_MODES = """
import torch, torch_ext
torch.set_num_threads(2)
torch.set_flush_denormal(WORKER_FLUSHES)
torch.ones(1 << 21).mul_(2.0)  # creates the worker
torch.set_flush_denormal(not WORKER_FLUSHES)
x = torch.full((1 << 21,), 0x123, dtype=torch.int32).view(torch.float32)  # a denormal
g = x.clone()  # made from bits: a fill converts its value, and so flushes it
ones = torch.ones_like(x)
pairs = {
    "elu": (torch_ext.functional.elu(x), torch.nn.functional.elu(x)),
    "celu": (torch_ext.functional.celu(x), torch.nn.functional.celu(x)),
    "elu_backward": (
        torch.ops.torch_ext.elu_backward(g, ones, 1.0, 1.0, False, input_scale=1.0),
        torch.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, ones),
    ),
    "celu_backward": (
        torch.ops.torch_ext.elu_backward(g, ones, 2.0, 1.0, False, input_scale=0.5),
        torch.ops.aten.elu_backward(g, 2.0, 1.0, 0.5, False, ones),
    ),
}
for name, (ours, native) in pairs.items():
    zeros = int(((native.view(torch.int32) & 0x7FFFFFFF) == 0).sum())  # +-0, compared as integers
    assert 0 < zeros < x.numel(), (name, "the worker and the caller flush alike", zeros)
    assert torch.equal(ours.view(torch.int32), native.view(torch.int32)), name
print("ok")
"""


@pytest.mark.parametrize("worker_flushes", [True, False], ids=["worker_flushes", "caller_flushes"])
def test_each_thread_keeps_or_flushes_denormals_as_native_does(worker_flushes: bool):
    """torch.set_flush_denormal sets its own thread's mode, and a worker thread keeps the
    mode it was created with: with one of the calling thread and the worker flushing, native
    flushes the denormals of that thread's half only. Ours, which leaves out multiplies by
    1 where the running thread keeps denormals, does the same, element for element."""
    script = _MIXED_MODES.replace("WORKER_FLUSHES", str(worker_flushes))
    run_checked(sys.executable, "-c", textwrap.dedent(script), timeout=300)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_flushed_denormals_come_out_as_native(act: Activation, device: str):
    """With torch.set_flush_denormal(True) the CPU treats denormal operands as zeros and
    flushes denormal results. ATen's vector loops multiply even the side that passes
    through (by one), so a denormal input or gradient comes out as a zero of its sign; its
    scalar tail (the elements after the last whole vector) passes a gradient through.
    Ours flushes wherever an element sits: native's result with denormals made signed
    zeros, bitwise where that is a zero. A multiply by 1 left out would pass them through."""
    if device != "cpu":
        pytest.skip("flushing denormals is a CPU mode")
    bits = torch.tensor(_DENORMALS_AND_NEIGHBOURS * 5, dtype=torch.int64).to(torch.int32)
    x = bits.view(torch.float32)
    grad = bits.roll(3).view(torch.float32)
    assert torch.set_flush_denormal(True), "this CPU cannot flush denormals"
    try:
        ours_y, ours_g = value_and_grad(act, x, grad, native=False)
        native_y, native_g = value_and_grad(act, x, grad, native=True)
    finally:
        torch.set_flush_denormal(False)
    for what, ours, native in (("value", ours_y, native_y), ("input grad", ours_g, native_g)):
        denormal = (native != 0) & (native.abs() < torch.finfo(native.dtype).tiny)
        expected = torch.where(denormal, native * 0, native)
        zero = expected == 0
        assert torch.equal(ours[zero].view(torch.int32), expected[zero].view(torch.int32)), (
            what,
            x[zero].view(torch.int32).tolist(),
            ours[zero].view(torch.int32).tolist(),
        )
        torch.testing.assert_close(ours, expected, rtol=2 * torch.finfo().eps, atol=0)
