"""Property-based tests (hypothesis): every op against torch.nn.functional over random
shapes (0-D to 4-D, empty and size-1 dims), layouts (contiguous, permuted, channels_last,
sliced with steps, expanded), dtypes, values (special values mixed into normal ones) and
arguments, forward and backward, out of place and in place.

Bounds, per comparison (ulps of the tensor's dtype, counted on the ordered integer line,
so denormals and signed zeros are measured like any other value; +0.0 and -0.0 are 0 ulp
apart and their sign is checked separately):

- Leaky ReLU, PReLU (forward, in place, gradient of the input): bitwise, NaN positions and
  signed zeros included. Both sides compute `x > 0 ? x : w * x` with one rounding.
- ELU, SELU, CELU forward and in place: forward_ulps(). float32 and float64: 1 ulp when
  alpha * scale is a power of two, else 2 (CELU: ELU of x * (1 / alpha), that product
  rounded as ATen rounds it, so the same bound). torch_ext's float32 expm1 is not ATen's (see
  csrc/activations/primitives.h), and ATen's own vector and scalar paths use different
  ones; two results of expm1 each within an ulp may be 1 ulp apart, and multiplying by a
  coefficient that is not a power of two can stretch that to 2 ulps of the product.
  Measured (AVX2): ours vs native at most 1 ulp (alpha 1, 0.5, -0.5) and 2 ulps (alpha
  1.9, 0.3, 3, SELU) over every 97th float32 in [-88, 0]; ATen's vector body against its
  own scalar path differs by exactly as much, in float32 and in float64 (float64 ours vs
  native on the same layout: bitwise in 2e6 samples). bfloat16 and float16 compute in
  float32 and round once: 1 ulp (every finite float16, 200 alphas: at most 1; bfloat16: 0).
- ELU, SELU, CELU gradient of the input: GRAD_ULPS (2) in float32/float64, 1 in
  bfloat16/float16 (computed in float32, rounded once). g * alpha * scale * exp(x), three roundings
  and an exp each side; exactly g * scale for x > 0.
- PReLU gradient of the weight: a sum over the channel's elements in an order that differs
  between implementations; allowed 2 * (n + 2) * u * sum|x * g| + n * (smallest
  subnormal), the forward-error bound of recursive summation (n terms, unit roundoff u of
  the dtype) for each side, plus underflow of the products. Channels where the sum could
  overflow the dtype are not compared (the order decides whether a partial sum overflows).

Native ELU/SELU backward at a NaN input is not one value: ATen's vector body takes the
negative branch (NaN), its scalar tail (`x <= 0` is false) gives g * scale, so the result
depends on the element's position. torch_ext always gives NaN (the negative branch, as
test_parity documents); these tests check that and compare every other element.

Native CELU's derivative (PyTorch's derivatives.yaml) takes its input scale as
1 / float32(alpha), while its forward takes 1 / alpha: for an alpha float32 does not hold
exactly (0.1, 1e-3, ...) its gradient is off by that rounding (relative 1e-8 to 6e-8, times
|x / alpha| through exp: 11 float32 ulps at alpha = 1e-3). torch_ext's backward uses
1 / alpha, as its forward. For those alphas the CELU gradients are compared with ATen's own
elu_backward at input_scale = 1 / alpha (the kernel F.celu's autograd calls); for the others
with F.celu's autograd itself (test_parity.py shows ours matches float64 math for both).

The example count is bounded by the hypothesis profile in conftest.py (`ci`: fixed
examples, so CI is reproducible; HYPOTHESIS_PROFILE=dev for a longer, random search).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from helpers import SELU_ALPHA, SELU_SCALE
from hypothesis import example, given
from hypothesis import strategies as st
from ulps import (
    ELU_FAMILY,
    GRAD_ULPS,
    _where,
    assert_input_grad,
    assert_values,
    assert_weight_grad,
    celu_reference_backward,
    forward_ulps,
    input_grad_ulps,
    is_dense,
    nan_skip,
    spacing,
)

import torch_ext.functional as X

ops = torch.ops.torch_ext

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
NAMES = ["leaky_relu", "prelu", "elu", "selu", "celu"]
IN_PLACE_NAMES = ["leaky_relu", "elu", "selu", "celu"]  # PReLU has no in-place form

MAX_NUMEL = 2048  # elements of the tensor an op sees
MAX_STORAGE = 8192  # elements of the storage it is a view of

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------------------------------
# Comparisons


# ---------------------------------------------------------------------------------------
# Strategies: shapes, layouts, values


# Shrinks towards the first entries; sizes past 16 reach the vector bodies (and their tails).
SIZES = st.sampled_from([1, 2, 3, 0, 1, 4, 5, 6, 7, 8, 9, 13, 17, 31, 33, 40])
STEPS = st.sampled_from([1, 2, 3])


def special_values(dtype: torch.dtype) -> list[float]:
    fi = torch.finfo(dtype)
    denormal = fi.tiny / 4
    smallest = fi.tiny * fi.eps  # the smallest positive subnormal
    return [
        0.0,
        -0.0,
        NAN,
        INF,
        -INF,
        denormal,
        -denormal,
        smallest,
        -smallest,
        fi.tiny,
        -fi.tiny,
        fi.max,
        -fi.max,
        -20.0,
        -100.0,
        -17.0,
        -88.0,
        -104.0,
        -1e-3,
        1e-3,
        -1e-7,
        1e-7,
        -0.6931471805599453,
        -0.6931472,
        -1.0,
        1.0,
        0.5,
        -0.5,
        2.0,
        -5.0,
    ]


def pool_values(dtype: torch.dtype) -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from(special_values(dtype)),
        st.floats(-120.0, 20.0),
        st.floats(-1.0, 1.0),
        st.floats(allow_nan=True, allow_infinity=True),
    )


@st.composite
def value_lists(draw, dtype: torch.dtype, n: int, *, finite: bool = False) -> list[float]:
    """n values of `dtype` (as exact float64): normal noise of a drawn scale with a drawn
    fraction of the elements taken from a drawn pool of special and arbitrary values."""
    if n == 0:
        return []
    values = pool_values(dtype)
    if finite:
        values = values.filter(math.isfinite)
    pool = draw(st.lists(values, min_size=1, max_size=12))
    seed = draw(st.integers(0, 2**32 - 1))
    fraction = draw(st.sampled_from([0.25, 1.0, 0.0, 0.05, 0.6]))
    scale = draw(st.sampled_from([1.0, 3.0, 0.01, 30.0]))
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, generator=g, dtype=torch.float64, device="cpu") * scale
    pick = torch.rand(n, generator=g, dtype=torch.float64, device="cpu") < fraction
    index = torch.randint(len(pool), (n,), generator=g, device="cpu")
    v = torch.where(pick, torch.tensor(pool, dtype=torch.float64, device="cpu")[index], noise)
    v = v.to(dtype).to(torch.float64)  # exactly the values the tensor will hold
    if finite:
        v = torch.nan_to_num(v, nan=0.0, posinf=1.0, neginf=-1.0)
    return v.tolist()


LAYOUTS = ["contiguous", "permuted", "channels_last", "sliced", "sliced_permuted", "expanded"]
NON_OVERLAPPING = [name for name in LAYOUTS if name != "expanded"]


@dataclass
class Input:
    """A tensor as a view of a storage tensor, with the recipe to rebuild both."""

    dtype: torch.dtype
    shape: tuple[int, ...]
    layout: str
    storage_shape: tuple[int, ...]
    values: list[float]  # the storage's, row-major, exact
    perm: tuple[int, ...] | None = None  # storage dims -> view dims (permute(inverse))
    slices: tuple[tuple[int, int], ...] | None = None  # (offset, step) per dim
    expand: bool = False

    def storage(self, device="cpu") -> torch.Tensor:
        data = torch.tensor(self.values, dtype=torch.float64, device="cpu").reshape(
            self.storage_shape
        )
        return data.to(self.dtype).to(device)

    def view(self, storage: torch.Tensor) -> torch.Tensor:
        t = storage
        if self.slices is not None:
            t = t[
                tuple(
                    slice(off, off + n * step, step)
                    for (off, step), n in zip(self.slices, self._sliced_shape())
                )
            ]
        if self.perm is not None:
            inverse = [self.perm.index(d) for d in range(len(self.perm))]
            t = t.permute(inverse)
        if self.expand:
            t = t.expand(self.shape)
        assert tuple(t.shape) == self.shape, (t.shape, self)
        return t

    def _sliced_shape(self) -> tuple[int, ...]:
        if self.perm is None:
            return self.shape
        return tuple(self.shape[p] for p in self.perm)

    def make(self, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
        storage = self.storage(device)
        return storage, self.view(storage)

    def tensor(self, device="cpu") -> torch.Tensor:
        return self.make(device)[1]

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints examples with it
        printer.text(repr(self))

    def __repr__(self) -> str:
        # A reproducer: paste into Python (torch imported, nan/inf defined).
        text = (
            f"torch.tensor({self.values!r}, dtype=torch.float64).reshape({self.storage_shape})"
            f".to({self.dtype})"
        )
        if self.slices is not None:
            sl = ", ".join(
                f"{o}:{o + n * s}:{s}" for (o, s), n in zip(self.slices, self._sliced_shape())
            )
            text += f"[{sl}]"
        if self.perm is not None:
            text += f".permute({[self.perm.index(d) for d in range(len(self.perm))]})"
        if self.expand:
            text += f".expand({self.shape})"
        return f"<{self.layout} {self.dtype} {self.shape}: {text}>"


def _shrink_to(shape: list[int], limit: int) -> list[int]:
    while math.prod(shape) > limit:
        i = max(range(len(shape)), key=lambda d: shape[d])
        shape[i] = max(1, shape[i] // 2)
    return shape


@st.composite
def shapes(draw, min_dims: int = 0, max_dims: int = 4) -> tuple[int, ...]:
    ndim = draw(st.integers(min_dims, max_dims))
    return tuple(_shrink_to(draw(st.lists(SIZES, min_size=ndim, max_size=ndim)), MAX_NUMEL))


@st.composite
def inputs(
    draw, *, dtype=None, shape=None, layouts=LAYOUTS, min_dims: int = 0, finite: bool = False
) -> Input:
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    shape = draw(shapes(min_dims)) if shape is None else tuple(shape)
    ndim = len(shape)
    usable = [
        name
        for name in layouts
        if (name not in ("permuted", "sliced_permuted") or ndim >= 2)
        and (name != "channels_last" or ndim == 4)
        and (name not in ("sliced", "sliced_permuted") or ndim >= 1)
        and (name != "expanded" or ndim >= 1)
    ]
    layout = draw(st.sampled_from(usable or ["contiguous"]))
    perm = slices = None
    expand = False
    storage_shape = shape
    if layout in ("permuted", "sliced_permuted"):
        perm = tuple(draw(st.permutations(range(ndim))))
    elif layout == "channels_last":
        perm = (0, 2, 3, 1)
    if perm is not None:
        storage_shape = tuple(shape[p] for p in perm)
    if layout in ("sliced", "sliced_permuted"):
        steps = draw(st.lists(STEPS, min_size=ndim, max_size=ndim))
        offsets = draw(st.lists(st.integers(0, 2), min_size=ndim, max_size=ndim))
        sizes = list(storage_shape)
        while math.prod(o + n * s for o, n, s in zip(offsets, sizes, steps)) > MAX_STORAGE:
            spaced = [d for d in range(ndim) if steps[d] > 1 or offsets[d] > 0]
            i = max(spaced, key=lambda d: steps[d] * sizes[d])
            steps[i], offsets[i] = 1, 0
        slices = tuple(zip(offsets, steps))
        storage_shape = tuple(o + n * s for o, n, s in zip(offsets, sizes, steps))
    if layout == "expanded":
        broadcast = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
        broadcast[draw(st.integers(0, ndim - 1))] = True  # at least one stride-0 dim
        base = [1 if b else n for b, n in zip(broadcast, shape)]
        dropped = draw(st.integers(0, ndim))
        while dropped and base[0] == 1:  # leading broadcast dims may be absent
            base.pop(0)
            dropped -= 1
        storage_shape, expand = tuple(base), True
    n = math.prod(storage_shape)
    values = draw(value_lists(dtype, n, finite=finite))
    return Input(dtype, shape, layout, storage_shape, values, perm, slices, expand)


SLOPES = st.one_of(
    st.sampled_from([0.01, 0.0, -0.0, 0.2, 1.0, 1.5, 3.0, -0.01, -0.2, -1.0, -2.5]),
    st.floats(-4.0, 4.0),
)
ALPHAS = st.one_of(st.sampled_from([1.0, 0.0, 1e-3, 0.1, 1.5, 10.0, 100.0]), st.floats(0.0, 100.0))
NEGATIVE_ALPHAS = st.one_of(st.sampled_from([-0.5, -1.0, -3.0]), st.floats(-5.0, -1e-3))
# CELU: alpha = 0 is an error (test_errors.py); the input is scaled by 1 / alpha.
CELU_ALPHAS = st.one_of(
    st.sampled_from([1.0, 0.5, 2.0, 1e-3, 0.1, 0.3, 1.9, 10.0, 100.0]),
    st.floats(1e-3, 100.0),
    NEGATIVE_ALPHAS,
)


def params(name: str):
    """The scalar parameter of an op (None for SELU; PReLU's weight is drawn separately).
    Negative slopes and alphas too: out of place they are valid; in place the forward is,
    and the backward raises (natively too)."""
    if name == "leaky_relu":
        return SLOPES
    if name == "elu":
        return st.one_of(ALPHAS, NEGATIVE_ALPHAS)
    if name == "celu":
        return CELU_ALPHAS
    return st.none()


WEIGHT_VALUES = st.one_of(
    st.sampled_from([0.25, 0.0, -0.0, 1.0, 1.5, -0.5, -2.0, 0.01, NAN, INF, -INF]),
    st.floats(-3.0, 3.0),
)


@st.composite
def prelu_weights(draw, x: Input) -> tuple[torch.Tensor, str]:
    """PReLU's weight for x: 1 element (0-D or 1-D) or one per channel (dim 1), of x's
    dtype, sometimes a strided view; negative, zero and > 1 slopes included."""
    channels = x.shape[1] if len(x.shape) >= 2 else 1
    count = draw(st.sampled_from([channels, 1])) if channels != 1 else 1
    values = draw(st.lists(WEIGHT_VALUES, min_size=count, max_size=count))
    form = (
        draw(st.sampled_from(["1-D", "0-D", "strided"]))
        if count == 1
        else draw(st.sampled_from(["1-D", "strided"]))
    )
    w = torch.tensor(values, dtype=torch.float64, device="cpu").to(x.dtype)
    if form == "0-D":
        w = w.reshape(())
    elif form == "strided":
        w = torch.stack([w, torch.full_like(w, 7.0)], 1).reshape(-1)[::2]
    return w, f"weight = torch.tensor({w.double().tolist()!r}, dtype={x.dtype}) ({form})"


# ---------------------------------------------------------------------------------------
# The ops, ours and native


def native_flips_zeros(name: str, x: torch.Tensor, param) -> bool:
    """ATen's CUDA ELU computes alpha * expm1(x) at x = +-0.0, which is -+0.0 for alpha < 0;
    its CPU kernel keeps the input's zero, and ours does on every device (README, "Where
    torch_ext differs from PyTorch")."""
    return name == "elu" and x.is_cuda and param < 0


def run(name: str, x: torch.Tensor, param, *, native: bool, inplace: bool = False) -> torch.Tensor:
    if name == "prelu":
        assert not inplace
        return (F.prelu if native else X.prelu)(x, param)
    module = F if native else X
    fn = getattr(module, name)
    if name == "selu":
        return fn(x, inplace=inplace)
    return fn(x, param, inplace=inplace)


def run_counted(name: str, x: torch.Tensor, param, counts, unit_dim, threshold) -> torch.Tensor:
    if name == "leaky_relu":
        return ops.leaky_relu_counted(x, param, counts, unit_dim, threshold)
    if name == "prelu":
        return ops.prelu_counted(x, param, counts, unit_dim, threshold)
    if name == "elu":
        return ops.elu_counted(x, param, 1.0, counts, unit_dim, threshold)
    if name == "celu":
        return ops.elu_counted(x, param, 1.0, counts, unit_dim, threshold, input_scale=1 / param)
    return ops.elu_counted(x, SELU_ALPHA, SELU_SCALE, counts, unit_dim, threshold)


@dataclass
class Case:
    """One drawn call: the op, its input, its parameter, and a readable reproducer."""

    name: str
    x: Input
    param: object = None
    text: str = ""

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        param = self.text or f"param = {self.param!r}"
        return f"Case({self.name}, x = {self.x!r}, {param})"


@st.composite
def cases(
    draw, name: str, *, layouts=LAYOUTS, min_dims: int = 0, dtype=None, x: Input | None = None
) -> Case:
    x = draw(inputs(layouts=layouts, min_dims=min_dims, dtype=dtype)) if x is None else x
    if name == "prelu":
        weight, text = draw(prelu_weights(x))
        return Case(name, x, weight, text)
    return Case(name, x, draw(params(name)))


def param_on(case: Case, device):
    return case.param.to(device) if isinstance(case.param, torch.Tensor) else case.param


# ---------------------------------------------------------------------------------------
# Forward


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_forward_matches_native(device, name, data):
    """Out of place: values, NaN positions and signed zeros equal F's (ELU/SELU within
    forward_ulps()); the output has the input's shape and dtype, and its strides where the
    input is dense. The counted forward gives the same values and adds exactly the counts
    of z > 0 and z > threshold per unit (as count_active_ alone does)."""
    case = data.draw(cases(name), label="case")
    x = case.x.tensor(device)
    param = param_on(case, device)
    ours = run(name, x, param, native=False)
    native = run(name, x, param, native=True)

    def assert_forward(values: torch.Tensor, what: str) -> None:
        assert_values(
            values,
            native,
            forward_ulps(name, x.dtype, param),
            inputs=(x,),
            what=what,
            zeros_keep_input_sign=native_flips_zeros(name, x, param),
        )

    assert_forward(ours, f"{name} forward")
    if is_dense(x):
        for size, a, b in zip(x.shape, ours.stride(), native.stride()):
            assert size <= 1 or a == b, f"strides {ours.stride()} != native {native.stride()}"

    if x.dim() >= 1 and data.draw(st.booleans(), label="also counted"):
        unit_dim = data.draw(st.integers(-x.dim(), x.dim() - 1), label="unit_dim")
        units = x.shape[unit_dim]
        threshold = torch.tensor(
            data.draw(
                st.lists(
                    st.sampled_from([0.0, -INF, -1.0, -5.0, 0.5, -0.0, -20.0]),
                    min_size=units,
                    max_size=units,
                ),
                label="alive_threshold",
            ),
            dtype=torch.float32,
            device=device,
        )
        start = torch.randint(0, 5, (2, units), dtype=torch.int64, device=device)
        counts = start.clone()
        counted = run_counted(name, x, param, counts, unit_dim, threshold)
        assert_forward(counted, f"{name}_counted forward")
        dim = unit_dim % x.dim()
        others = [d for d in range(x.dim()) if d != dim]
        z = x.detach().double()
        expected = start.clone()
        if x.numel():
            expected[0] += (
                (z > 0).sum(others).to(torch.int64) if others else (z > 0).to(torch.int64)
            )
            above = z > threshold.double().reshape([-1 if d == dim else 1 for d in range(x.dim())])
            expected[1] += above.sum(others).to(torch.int64) if others else above.to(torch.int64)
        assert torch.equal(counts, expected), f"counts {counts.tolist()} != {expected.tolist()}"
        alone = start.clone()
        ops.count_active_(x, alone, unit_dim, threshold)
        assert torch.equal(alone, expected), (
            f"count_active_ {alone.tolist()} != {expected.tolist()}"
        )


# ---------------------------------------------------------------------------------------
# Backward


def grads(name: str, x: torch.Tensor, param, grad_output: torch.Tensor, *, native: bool):
    """Gradients of the input (and of PReLU's weight) through autograd, x's strides kept."""
    if native and name == "celu":
        reference = celu_reference_backward(grad_output, x, param, False)
        if reference is not None:
            return reference, None
    leaf = x.detach().requires_grad_(True)
    weight = param.detach().clone().requires_grad_(True) if name == "prelu" else param
    y = run(name, leaf, weight, native=native)
    y.backward(grad_output)
    return leaf.grad, (weight.grad if name == "prelu" else None)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_backward_matches_native(device, name, data):
    """Gradient of the input (and PReLU's weight) for a random grad_output of any layout
    equals the gradient through F's autograd in the same dtype: leaky_relu/prelu bitwise,
    ELU/SELU within GRAD_ULPS (NaN inputs: NaN, see the module docstring)."""
    case = data.draw(cases(name), label="case")
    x = case.x.tensor(device)
    g_input = data.draw(
        inputs(dtype=case.x.dtype, shape=case.x.shape, layouts=NON_OVERLAPPING + ["expanded"]),
        label="grad_output",
    )
    g = g_input.tensor(device)
    param = param_on(case, device)
    ours, ours_w = grads(name, x, param, g, native=False)
    native, native_w = grads(name, x, param, g, native=True)
    assert_input_grad(name, ours, native, x, g, what=f"{name} grad input")
    if name == "prelu":
        assert_weight_grad(ours_w, native_w, x, param, g)


@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
@given(data=st.data())
@example(data=None)  # the reported case: float32 x = -20
def test_far_negative_tail_gradient(name, data):
    """float32, x far in the negative tail (-10 to -104): the gradient is
    g * alpha * scale * exp(x) (CELU: g * exp(x / alpha)), tiny but not 0, as natively (~1e-7 relative; a gradient
    computed from the output, y + alpha, cancels to 0 below x ~ -17)."""
    if data is None:
        values, alpha = [-20.0, -20.0, -30.0, -17.5, -12.0, -50.0, -87.0, -100.0, -10.0], 1.0
    else:
        values = data.draw(
            st.lists(
                st.one_of(
                    st.floats(-104.0, -10.0, width=32), st.sampled_from([-20.0, -17.0, -87.0])
                ),
                min_size=1,
                max_size=40,
            ),
            label="x",
        )
        alpha = data.draw(st.sampled_from([1.0, 0.5, 2.0, 1e-3]), label="alpha")
    x = torch.tensor(values, dtype=torch.float32)
    g = torch.linspace(0.5, 2.0, x.numel(), dtype=torch.float32)
    param = None if name == "selu" else alpha
    ours, _ = grads(name, x, param, g, native=False)
    native, _ = grads(name, x, param, g, native=True)
    normal = native.abs() >= torch.finfo(torch.float32).tiny
    lost = normal & (ours == 0)
    assert not lost.any(), f"{name}: gradient 0 where native is not\n" + _where(
        lost, x, g, ours, native
    )
    torch.testing.assert_close(ours[normal], native[normal], rtol=1e-6, atol=0)
    assert_values(ours, native, GRAD_ULPS, inputs=(x, g), what=f"{name} tail grad")


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "celu", "prelu"])
@given(data=st.data())
def test_backward_ops_match_aten(device, name, data):
    """The backward ops called directly, on any layout of grad_output and input:
    leaky_relu_backward and elu_backward against aten's (from the input, and from the
    result, which needs slope/alpha >= 0: both raise otherwise; "celu": elu_backward with
    input_scale 1 / alpha, as F.celu's); prelu_backward against F.prelu's autograd."""
    case = data.draw(cases(name, layouts=NON_OVERLAPPING + ["expanded"]), label="case")
    x = case.x.tensor(device)
    g = data.draw(inputs(dtype=case.x.dtype, shape=case.x.shape), label="grad_output").tensor(
        device
    )
    param = param_on(case, device)
    if name == "prelu":
        ours_x, ours_w = ops.prelu_backward(g, x, param)
        native_x, native_w = grads(name, x, param, g, native=True)
        assert_values(ours_x, native_x, 0, inputs=(x, g), what="prelu_backward grad input")
        assert_weight_grad(ours_w, native_w, x, param, g)
        return
    is_result = data.draw(st.booleans(), label="is_result")
    scale = 1.0
    input_scale = 1 / param if name == "celu" else 1.0
    if name == "elu":
        scale = data.draw(st.sampled_from([1.0, SELU_SCALE, 0.5, 2.0]), label="scale")
    s = x
    if is_result:  # a result the forward can produce
        if name == "leaky_relu":
            s = F.leaky_relu(x, param)
        else:
            s = F.celu(x, param) if name == "celu" else F.elu(x, param) * scale

    def call(native: bool):
        if name == "leaky_relu":
            if native:
                return torch.ops.aten.leaky_relu_backward(g, s, param, is_result)
            return ops.leaky_relu_backward(g, s, param, is_result)
        if native:
            return torch.ops.aten.elu_backward(g, param, scale, input_scale, is_result, s)
        return ops.elu_backward(g, s, param, scale, is_result, input_scale=input_scale)

    outcome = []
    for native in (False, True):
        try:
            outcome.append(call(native))
        except RuntimeError as error:
            outcome.append(error)
    raised = [isinstance(o, Exception) for o in outcome]
    assert raised[0] == raised[1], f"raises: ours {outcome[0]!r}, native {outcome[1]!r}"
    if not raised[0]:
        skip = s.isnan() if name in ELU_FAMILY else None
        assert_values(
            outcome[0],
            outcome[1],
            input_grad_ulps(name, x.dtype),
            inputs=(s, g),
            what=f"{name}_backward(is_result={is_result})",
            skip=skip,
        )


TAIL = [-0.5, -2.0, -5.0, -17.0, -20.0, -38.0, -50.0, -100.0, -INF, -0.0, 0.0, 1.0]


@pytest.mark.parametrize("layout", ["contiguous", "strided", "one"])
@pytest.mark.parametrize(
    "alpha,scale,input_scale",
    [
        (1.0, 1.0, 1.0),
        (1.3, 1.0, 1.0),
        (SELU_ALPHA, SELU_SCALE, 1.0),
        (1e-3, SELU_SCALE, 1.0),
        (0.5, 1.0, 2.0),
        (3.0, 1.0, 1 / 3.0),
        (1.3, 1.0, 1 / 1.3),
    ],
    ids=["elu", "elu(1.3)", "selu", "alpha_1e-3_selu_scale", "celu(0.5)", "celu(3)", "celu(1.3)"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_elu_backward_from_result_matches_aten(device, dtype, alpha, scale, input_scale, layout):
    """elu_backward(is_result=True), the gradient of elu_/selu_/celu_: g * input_scale *
    (y + alpha * scale), with alpha * scale rounded once, as ATen does. Far in the tail
    y + alpha * scale cancels, so any other evaluation (say, one fused multiply-add of
    alpha * scale + y) shows: at x = -inf or -50 the gradient is exactly 0 (g = inf: NaN), on
    every path (vector body, scalar tail of a short or strided tensor)."""
    x = torch.tensor(TAIL * 4, dtype=torch.float64, device=device).to(dtype)
    g = torch.linspace(0.5, 2.0, x.numel(), device=device).to(dtype)
    g[8] = INF  # at x = -inf
    if input_scale != 1.0:
        y = F.celu(x, alpha)
        assert scale == 1.0 and input_scale == 1 / alpha
    else:
        y = F.elu(x, alpha) * scale if scale != 1.0 else F.elu(x, alpha)
    if layout == "strided":
        y, g = (torch.stack([t, torch.zeros_like(t)], 1)[:, 0] for t in (y, g))
    elif layout == "one":
        y, g = y[6:7], g[6:7]  # x = -50
    ours = ops.elu_backward(g, y, alpha, scale, True, input_scale)
    native = torch.ops.aten.elu_backward(g, alpha, scale, input_scale, True, y)
    assert_values(
        ours,
        native,
        0,
        inputs=(y, g),
        what=f"elu_backward(is_result=True, {alpha}, {scale}, input_scale={input_scale})",
    )


# ---------------------------------------------------------------------------------------
# In place


def attempt(fn: Callable[[], torch.Tensor]):
    try:
        return fn(), None
    except RuntimeError as error:
        return None, error


@pytest.mark.parametrize("name", IN_PLACE_NAMES)
@given(data=st.data())
def test_inplace_matches_native(device, name, data):
    """X(t, inplace=True) on any layout vs F(same data, inplace=True): both raise (an
    overlapping expanded view) or neither; if neither, each returns t itself and the whole
    storage is equal afterwards (the values written, and nothing outside the view
    touched), t's version counter moves as natively; if both, data and version unchanged."""
    case = data.draw(cases(name), label="case")
    storage, t = case.x.make(device)
    native_storage, native_t = case.x.make(device)
    before = storage.clone()
    version, native_version = t._version, native_t._version
    out, error = attempt(lambda: run(name, t, case.param, native=False, inplace=True))
    native_out, native_error = attempt(
        lambda: run(name, native_t, case.param, native=True, inplace=True)
    )
    assert (error is None) == (native_error is None), (
        f"raises: ours {error!r}, native {native_error!r}"
    )
    if error is not None:
        assert_values(storage, before, 0, what=f"{name}_ data after a refused call")
        assert t._version == version, f"version {version} -> {t._version} after a refused call"
        return
    assert out is t and native_out is native_t
    assert_values(
        storage,
        native_storage,
        forward_ulps(name, t.dtype, case.param),
        inputs=(before,),
        what=f"{name}_ storage",
        zeros_keep_input_sign=native_flips_zeros(name, t, case.param),
    )
    assert t._version - version == native_t._version - native_version, (
        f"version moved by {t._version - version}, natively by {native_t._version - native_version}"
    )


REFUSALS = [
    "leaf_requires_grad",
    "view_of_leaf",
    "unbind_output",
    "no_grad_view",
    "expanded_nonleaf",
    "expanded",
    "leaf_under_no_grad",
    "nonleaf",
    "detached_leaf",
]


def make_target(kind: str, x: Input, device):
    """A tensor to write in place, built the way `kind` says; returns (storage, target)."""
    storage = x.storage(device)
    if kind == "leaf_requires_grad":
        base = storage.requires_grad_(True)
        return base, base
    if kind == "view_of_leaf":
        base = storage.requires_grad_(True)
        return base, x.view(base)
    if kind == "unbind_output":
        nonleaf = storage.requires_grad_(True) * 1
        return nonleaf, x.view(nonleaf).unbind(0)[0]
    if kind == "no_grad_view":
        nonleaf = storage.requires_grad_(True) * 1
        with torch.no_grad():
            return nonleaf, x.view(nonleaf)
    if kind == "expanded_nonleaf":
        nonleaf = storage.requires_grad_(True) * 1
        return nonleaf, nonleaf.reshape(-1)[:1].expand(2, 3)
    if kind == "expanded":
        return storage, storage.reshape(-1)[:1].expand(2, 3)
    if kind == "leaf_under_no_grad":
        base = storage.requires_grad_(True)
        return base, x.view(base)
    if kind == "detached_leaf":
        base = storage.requires_grad_(True)
        return base, x.view(base).detach()
    nonleaf = storage.requires_grad_(True) * 1
    return nonleaf, x.view(nonleaf)


@pytest.mark.parametrize("name", IN_PLACE_NAMES)
@given(data=st.data())
def test_inplace_refusals_match_native(device, name, data):
    """In place on tensors autograd must refuse (a leaf that requires grad, a view of one,
    an output of unbind, a view made under no_grad, an overlapping view) or may allow (a
    non-leaf view, a leaf under no_grad, a detached view): ours raises exactly when F does,
    and a refused call leaves the data and the version counter unchanged."""
    kind = data.draw(st.sampled_from(REFUSALS), label="kind")
    layouts = ["contiguous"] if kind.startswith("expanded") else NON_OVERLAPPING
    min_dims = 1 if kind in ("unbind_output",) else 0
    shape = (1,) if kind.startswith("expanded") else None
    x = data.draw(inputs(layouts=layouts, min_dims=min_dims, shape=shape), label="x")
    if kind == "unbind_output" and x.shape[0] == 0:
        x = Input(x.dtype, (1,), "contiguous", (1,), [0.5])
    case = data.draw(cases(name, x=x), label="case")
    results = []
    for native in (False, True):
        base, target = make_target(kind, x, device)
        snapshot, version = target.detach().clone(), target._version
        with torch.set_grad_enabled(kind != "leaf_under_no_grad"):
            out, error = attempt(
                lambda target=target, native=native: run(
                    name, target, case.param, native=native, inplace=True
                )
            )
        results.append((error, target, snapshot, version))
    (error, target, snapshot, version), (native_error, native_target, _, _) = results
    assert (error is None) == (native_error is None), (
        f"{kind}: raises: ours {error!r}, native {native_error!r}"
    )
    if error is not None:
        assert type(error) is type(native_error), (error, native_error)
        assert_values(target.detach(), snapshot, 0, what=f"{kind}: data after a refused {name}_")
        assert target._version == version, (
            f"{kind}: version {version} -> {target._version} after a refused {name}_ ({error})"
        )
    else:
        assert_values(
            target.detach(),
            native_target.detach(),
            forward_ulps(name, x.dtype, case.param),
            inputs=(snapshot,),
            what=f"{kind}: {name}_",
            zeros_keep_input_sign=native_flips_zeros(name, target, case.param),
        )


@pytest.mark.parametrize("name", IN_PLACE_NAMES)
@given(data=st.data())
def test_inplace_backward_matches_native(device, name, data):
    """In place on a non-leaf (or a view of one, any layout), then backward with a random
    grad: the leaf's gradient equals F's, or both raise at backward (a negative slope or
    alpha: the input cannot be recovered from the result)."""
    case = data.draw(cases(name, layouts=NON_OVERLAPPING), label="case")
    g_input = data.draw(
        inputs(dtype=case.x.dtype, shape=case.x.storage_shape, layouts=["contiguous"]),
        label="grad of the storage",
    )
    g = g_input.tensor(device)
    results = []
    for native in (False, True):
        leaf = case.x.storage(device).requires_grad_(True)
        base = leaf * 1
        run(name, case.x.view(base), case.param, native=native, inplace=True)
        results.append(
            (leaf, base.detach().clone(), attempt(lambda base=base: base.backward(g))[1])
        )
    (leaf, _, error), (native_leaf, native_result, native_error) = results
    assert (error is None) == (native_error is None), (
        f"backward raises: ours {error!r}, native {native_error!r}"
    )
    native_grad = None if native_error is not None else native_leaf.grad
    if name == "celu" and error is None:
        view_grad = celu_reference_backward(
            case.x.view(g), case.x.view(native_result), case.param, True
        )
        if view_grad is not None:  # g outside the view, the gradient of celu_ inside
            native_grad = g.detach().clone()
            case.x.view(native_grad).copy_(view_grad)
    if error is None:
        # NaN inputs: the gradient from the result, like the one from the input, is
        # position-dependent natively (see the module docstring).
        skip = nan_skip(name, case.x.storage())
        # From the result y, the gradient is g * (y + alpha * scale): the forwards' allowed
        # difference in y passes into it unscaled, however much y + alpha * scale cancels.
        atol = None
        if name in ELU_FAMILY:
            atol = (
                g.detach().double().cpu().abs()
                * spacing(native_result)
                * forward_ulps(name, case.x.dtype, case.param)
            )
            if name == "celu":  # g * (1 / alpha) * (y + alpha)
                atol = atol / abs(case.param)
        assert_values(
            leaf.grad,
            native_grad,
            input_grad_ulps(name, case.x.dtype),
            what=f"{name}_ grad",
            inputs=(leaf.detach(), native_result, g),
            skip=skip,
            atol=atol,
        )
