"""What "equal to the native op" means, per op: distances in ulps of the dtype and the
bounds the tests allow (the reasons are in test_properties.py's docstring, which states
each bound), and one comparison that checks them, NaN positions, infinities and the signs
of zeros included. Shared by every test that compares a value or a gradient with
torch.nn.functional's."""

from __future__ import annotations

import math

import torch
from helpers import SELU_ALPHA, SELU_SCALE

GRAD_ULPS = 2  # ELU/SELU/CELU gradient of the input in float32/float64
ELU_FAMILY = ("elu", "selu", "celu")


def _int_view(t: torch.Tensor) -> torch.Tensor:
    bits = {8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()]
    return t.contiguous().view(bits).to(torch.int64)


def ulp_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise distance in ulps of the dtype, for finite or equal-infinite values:
    the number of representable values between a and b (+0.0 and -0.0 coincide)."""
    assert a.dtype == b.dtype
    ia, ib = _int_view(a), _int_view(b)
    magnitude = (1 << (8 * a.element_size() - 1)) - 1
    ma, mb = ia & magnitude, ib & magnitude
    same_sign = (ia < 0) == (ib < 0)
    far = torch.full_like(ma, 1 << 62)
    opposite = torch.where((ma < 1 << 61) & (mb < 1 << 61), ma + mb, far)
    return torch.where(same_sign, (ma - mb).abs(), opposite)


def _where(mask: torch.Tensor, *tensors: torch.Tensor, limit: int = 6) -> str:
    idx = mask.nonzero()[:limit]
    rows = []
    for i in idx.tolist():
        rows.append(f"  at {tuple(i)}: " + ", ".join(f"{t[tuple(i)].item()!r}" for t in tensors))
    return "\n".join(rows)


def spacing(t: torch.Tensor) -> torch.Tensor:
    """The ulp of each element of t in t's dtype (subnormal spacing near 0), as float64."""
    fi = torch.finfo(t.dtype)
    digits = round(-math.log2(fi.eps)) + 1  # significand bits: 24, 53, 8, 11
    _, exponent = torch.frexp(t.detach().double().cpu().abs())
    return torch.exp2(exponent.double() - digits).clamp(min=fi.tiny * fi.eps)


def assert_values(
    ours: torch.Tensor,
    native: torch.Tensor,
    ulps: int,
    *,
    inputs=None,
    what: str = "value",
    skip: torch.Tensor | None = None,
    atol: torch.Tensor | None = None,
    zeros_keep_input_sign: bool = False,
) -> None:
    """ours == native within `ulps` (0: bitwise), NaN positions equal, infinities equal,
    and where both are zero, the same sign. `skip` masks elements not compared; `atol`
    (float64, per element) also accepts |ours - native| <= atol + ulps * ulp(native).
    `zeros_keep_input_sign`: where inputs[0] is a zero, ours must be that same zero,
    whatever native's sign (see native_flips_zeros)."""
    assert ours.shape == native.shape, (
        f"{what}: shape {tuple(ours.shape)} != native {tuple(native.shape)}"
    )
    assert ours.dtype == native.dtype, f"{what}: dtype {ours.dtype} != native {native.dtype}"
    ours, native = ours.detach().cpu(), native.detach().cpu()
    keep = torch.ones_like(ours, dtype=torch.bool) if skip is None else ~skip.cpu()
    shown = (
        (ours, native) if inputs is None else (*(t.detach().cpu() for t in inputs), ours, native)
    )
    legend = "(" + ", ".join(["input"] * (len(shown) - 2) + ["ours", "native"]) + ")"

    nan_differs = (ours.isnan() != native.isnan()) & keep
    assert not nan_differs.any(), f"{what}: NaN positions differ {legend}\n" + _where(
        nan_differs, *shown
    )
    finite = keep & ~native.isnan()
    inf_differs = finite & (ours.isinf() | native.isinf()) & (ours != native)
    assert not inf_differs.any(), f"{what}: infinities differ {legend}\n" + _where(
        inf_differs, *shown
    )
    distance = ulp_distance(ours, native)
    too_far = finite & (distance > ulps)
    if atol is not None:
        allowed = atol.cpu() + ulps * spacing(native)
        too_far &= ~((ours.double() - native.double()).abs() <= allowed)
    assert not too_far.any(), (
        f"{what}: more than {ulps} ulp from native ({int(too_far.sum())} of {ours.numel()}, "
        f"worst {int(distance[too_far].max())} ulp) {legend}\n" + _where(too_far, *shown)
    )
    both_zero = finite & (ours == 0) & (native == 0)
    sign_differs = both_zero & (ours.signbit() != native.signbit())
    if zeros_keep_input_sign:
        x = inputs[0].detach().cpu()
        at_zero = both_zero & (x == 0)
        sign_differs = (sign_differs & ~at_zero) | (at_zero & (ours.signbit() != x.signbit()))
    assert not sign_differs.any(), f"{what}: sign of zero differs {legend}\n" + _where(
        sign_differs, *shown
    )


def forward_ulps(name: str, dtype: torch.dtype, param=None) -> int:
    """Allowed distance of a forward value from native's (the module docstring)."""
    if name in ("leaky_relu", "prelu"):
        return 0
    if dtype in (torch.bfloat16, torch.float16):
        return 1
    coefficient = SELU_ALPHA * SELU_SCALE if name == "selu" else abs(param)
    power_of_two = coefficient == 0 or math.frexp(coefficient)[0] == 0.5
    return 1 if power_of_two else 2


def input_grad_ulps(name: str, dtype: torch.dtype) -> int:
    """Allowed distance of an input gradient from native's (the module docstring)."""
    if name in ("leaky_relu", "prelu"):
        return 0
    return 1 if dtype in (torch.bfloat16, torch.float16) else GRAD_ULPS


def nan_skip(name: str, x: torch.Tensor) -> torch.Tensor | None:
    """Elements whose native ELU/SELU/CELU gradient depends on their position (NaN inputs)."""
    return x.detach().isnan() if name in ELU_FAMILY else None


def float32_exact(alpha: float) -> bool:
    return float(torch.tensor(alpha, dtype=torch.float32, device="cpu")) == alpha


def celu_reference_backward(g, s, alpha: float, is_result: bool) -> torch.Tensor | None:
    """Native CELU's gradient at the exact input scale 1 / alpha, for an alpha float32 does
    not hold (the module docstring); None where F.celu's autograd is the reference."""
    if float32_exact(alpha):
        return None
    # Contiguous copies: ATen's strided loop rounds differently from its vector body, which
    # is what every layout of ours matches (within the gradient's ulps).
    g, s = g.detach().contiguous(), s.detach().contiguous()
    return torch.ops.aten.elu_backward(g, alpha, 1.0, 1 / alpha, is_result, s)


def assert_weight_grad(
    ours: torch.Tensor, native: torch.Tensor, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor
) -> None:
    """PReLU's weight gradient, sum over a channel of (x > 0 ? 0 : x * g): see the module
    docstring for the bound. A channel with infinite or NaN terms (from infinite or NaN
    inputs) must give what the float64 sum gives (NaN, or the infinity, whatever the
    order); a channel whose finite terms could overflow the dtype is not compared."""
    assert ours.shape == native.shape == w.shape, (ours.shape, native.shape, w.shape)
    xd, gd = x.detach().double().cpu(), g.detach().double().cpu()
    terms = torch.where(xd > 0, 0.0, xd * gd)
    finite_terms = torch.where(terms.isfinite(), terms, 0.0)

    def per_weight(t: torch.Tensor) -> torch.Tensor:
        if w.numel() != 1:  # per channel (dim 1), of which there may be none
            dims = [d for d in range(x.dim()) if d != 1]
            return t.sum(dims) if dims else t
        return t.sum().reshape(w.shape)

    exact, size = per_weight(terms), per_weight(finite_terms.abs())
    n = x.numel() // max(x.shape[1], 1) if w.numel() != 1 else x.numel()
    fi = torch.finfo(x.dtype)
    u = fi.eps / 2
    ours_d, native_d = ours.detach().double().cpu(), native.detach().double().cpu()
    safe = size * 4 < fi.max  # no partial sum or product of finite terms overflows
    nonfinite = safe & ~exact.isfinite()
    for label, got in (("ours", ours_d), ("native", native_d)):
        assert torch.equal(got[nonfinite].isnan(), exact[nonfinite].isnan()), (label, got, exact)
        infinite = nonfinite & ~exact.isnan()
        assert torch.equal(got[infinite], exact[infinite]), (label, got, exact)
    compared = safe & exact.isfinite()
    bound = 2 * (n + 2) * u * size + n * fi.tiny * fi.eps
    diff = (ours_d - native_d).abs()
    bad = compared & ~(diff <= bound)
    assert not bad.any(), (
        f"prelu weight grad: ours {ours_d[bad].tolist()} native {native_d[bad].tolist()} "
        f"exact {exact[bad].tolist()} bound {bound[bad].tolist()}"
    )


def is_dense(t: torch.Tensor) -> bool:
    """Whether t's elements fill a block of memory, each once (in some dim order)."""
    if t.numel() == 0:
        return False  # no memory: strides are arbitrary
    expected = 1
    dims = sorted(((st, s) for s, st in zip(t.shape, t.stride()) if s != 1))
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def assert_input_grad(
    name: str,
    ours: torch.Tensor,
    native: torch.Tensor,
    x: torch.Tensor,
    g: torch.Tensor,
    what: str,
    compare=assert_values,
) -> None:
    """An input gradient against native's, within input_grad_ulps; the ELU family's at NaN
    inputs (where native's depends on the element's position) must be NaN. `compare` is
    assert_values or a checker with its signature."""
    skip = nan_skip(name, x)
    compare(ours, native, input_grad_ulps(name, x.dtype), inputs=(x, g), what=what, skip=skip)
    if skip is not None and skip.any():
        assert ours[skip].isnan().all(), f"{what}: at NaN inputs {ours[skip].tolist()}"
