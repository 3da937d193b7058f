"""PyTorch's own OpInfo samples for the five ops, run through torch_ext and compared with
torch.nn.functional (issue 25, item 7: a peer's suite inside ours).

The OpInfos `nn.functional.{leaky_relu,prelu,elu,selu,celu}` of
torch.testing._internal.common_methods_invocations.op_db give `sample_inputs` and
`reference_inputs` (large, empty, noncontiguous, transposed, expanded and arbitrarily
strided tensors, small, large and extremal values: NaN, +-inf) and, for PReLU,
`error_inputs`. Each sample's (input, args, kwargs) goes to F.<name> and to
torch_ext.functional.<name> with the same arguments; one test per (op, dtype, in place or
not, kind of samples) loops over all of that kind's samples, for float32, float64,
bfloat16 and float16, each failure naming the sample.

Per sample:

- Out of place: the value, and for the inputs that require grad (the input, and PReLU's
  weight where the sample makes it require grad) the gradient of a random grad_output.
  The output's strides equal native's where the input is dense.
- In place (leaky_relu, elu, selu, celu; PReLU has none): on a copy of the sample's storage
  viewed with the sample's sizes, strides and offset, so expanded and overlapping views are
  refused as natively; the call returns the tensor it was given, and the whole storage
  equals native's afterwards (nothing outside the view written). Then on `x.clone()` of a
  leaf that requires grad: the value, and the leaf's gradient of a random grad_output.
- Errors: where the native call (forward or backward) raises, ours raises the same
  exception type, and where it does not, neither does ours. An in-place call refused by
  both leaves our data unchanged.

Bounds are test_properties.py's, stated there in ulps of the dtype and reused here
(assert_values, forward_ulps, input_grad_ulps, assert_weight_grad): leaky_relu and PReLU
values and input gradients bitwise (signed zeros and NaN positions included), ELU, SELU,
CELU within 1-2 ulps; PReLU's weight gradient (a sum in an implementation-defined order)
within the forward-error bound of recursive summation. As there, the ELU-family input
gradient is not compared at NaN inputs (native's is position dependent; ours must be
NaN), CELU's gradient for an alpha float32 does not hold (the reference inputs' 0.8) is
compared with ATen's elu_backward at input_scale = 1 / alpha, and an in-place ELU-family
gradient (computed from the result) also allows the forward's ulps times |grad_output|.
Each comparison runs assert_values on just the elements whose bits differ (check_values:
the same verdict, as a bit-identical element passes all its checks, at a fraction of the
cost on the million-element reference inputs).

A sample whose input is not a plain strided tensor would be counted and the test skipped
after all other samples ran, with the reason; op_db has none for these ops today.
op_db is imported once, lazily (a module fixture), and the global state its import
changes (torch.backends' frozen flags, TorchScript's call wrappers) is put back, so other
tests in the same worker do not see it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from helpers import DTYPES
from ulps import (
    ELU_FAMILY,
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

# One worker runs them all (scripts/test.sh's --dist loadgroup): op_db, 5 s to import, once.
pytestmark = pytest.mark.xdist_group("opinfo")

NAMES = ["leaky_relu", "prelu", "elu", "selu", "celu"]
IN_PLACE_NAMES = ["leaky_relu", "elu", "selu", "celu"]  # PReLU has no in-place form
ERROR_INPUT_NAMES = ["prelu"]  # the OpInfos with an error_inputs_func
KINDS = ["sample_inputs", "reference_inputs", "error_inputs"]

# Defaults of the scalar parameter, where a sample leaves it out.
DEFAULT_PARAM = {
    "leaky_relu": ("negative_slope", 0.01),
    "elu": ("alpha", 1.0),
    "celu": ("alpha", 1.0),
}


def _table() -> list:
    rows = []
    for name in NAMES:
        for dtype in DTYPES:
            for inplace in [False] + ([True] if name in IN_PLACE_NAMES else []):
                for kind in KINDS:
                    if kind == "error_inputs" and name not in ERROR_INPUT_NAMES:
                        continue
                    mode = "inplace" if inplace else "out_of_place"
                    rows.append(
                        pytest.param(name, dtype, inplace, kind, id=f"{name}-{dtype}-{mode}-{kind}")
                    )
    return rows


TABLE = _table()


@pytest.fixture(scope="module")
def opinfos() -> dict:
    """The five OpInfos by short name. Importing op_db (once per process) freezes
    torch.backends' global flags (a later `torch.backends.cudnn.benchmark = ...` in the same
    worker would raise) and wraps TorchScript's __call__: both are put back (torch.backends'
    own context manager restores the flags as they were)."""
    script_calls = (torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__)
    with torch.backends.__allow_nonbracketed_mutation():
        from torch.testing._internal.common_methods_invocations import op_db
    torch._C.ScriptFunction.__call__, torch._C.ScriptMethod.__call__ = script_calls
    found = {}
    for op in op_db:
        short = op.name.removeprefix("nn.functional.")
        if op.name.startswith("nn.functional.") and short in NAMES:
            assert short not in found, f"two OpInfos named {op.name}"
            found[short] = op
    return found


# ---------------------------------------------------------------------------------------
# Samples and calls


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        text = (
            f"Tensor(shape={tuple(value.shape)}, stride={value.stride()}, "
            f"offset={value.storage_offset()}, {value.dtype}"
            + (", requires_grad" if value.requires_grad else "")
        )
        if value.numel() <= 8:
            text += f", values={value.detach().tolist()}"
        return text + ")"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_describe(v)}" for k, v in value.items()) + "}"
    return repr(value)


def describe(sample) -> str:
    """A sample's repr that names the layout and keeps big tensors to their shape."""
    return (
        f"SampleInput(input={_describe(sample.input)}, args={_describe(sample.args)}, "
        f"kwargs={_describe(sample.kwargs)})"
    )


def unsupported_reason(sample) -> str | None:
    x = sample.input
    if type(x) is not torch.Tensor:
        return f"input is {type(x).__name__}, not a plain torch.Tensor"
    if x.layout != torch.strided:
        return f"input layout {x.layout}"
    return None


def load_samples(opinfo, kind: str, dtype: torch.dtype) -> list:
    """(sample, error type the OpInfo expects or None) for one kind of samples; the error
    inputs (float32 in op_db) are cast to `dtype`."""
    if kind != "error_inputs":
        return [(s, None) for s in getattr(opinfo, kind)("cpu", dtype, requires_grad=True)]

    def cast(t):
        return t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t

    return [(e.sample_input.transform(cast), e.error_type) for e in opinfo.error_inputs("cpu")]


def param_of(name: str, args: tuple, kwargs: dict):
    """The op's parameter as the sample passes it: slope, alpha, PReLU's weight, or None."""
    if name == "selu":
        return None
    if name == "prelu":
        return args[0] if args else kwargs["weight"]
    key, default = DEFAULT_PARAM[name]
    return args[0] if args else kwargs.get(key, default)


def leaf_like(v, requires_grad: bool | None = None):
    """A new leaf sharing v's memory (v's requires_grad unless told); non-tensors as they are."""
    if not isinstance(v, torch.Tensor):
        return v
    grad = v.requires_grad if requires_grad is None else requires_grad
    return v.detach().requires_grad_(grad)


def leaves(args: tuple, kwargs: dict, requires_grad: bool | None = None):
    return (
        tuple(leaf_like(a, requires_grad) for a in args),
        {k: leaf_like(v, requires_grad) for k, v in kwargs.items()},
    )


def storage_copy(x: torch.Tensor) -> torch.Tensor:
    """A copy of x's whole storage, as a 1-D tensor of x's dtype."""
    x = x.detach()
    numel = x.untyped_storage().nbytes() // x.element_size()
    return x.as_strided((numel,), (1,), 0).clone()


def view_like(storage: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return storage.as_strided(x.shape, x.stride(), x.storage_offset())


def attempt(fn: Callable[[], object]):
    try:
        return fn(), None
    except Exception as error:  # any type: ours must raise the type native raises
        return None, error


def _error_text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:400]


def same_errors(ours, native, where: str) -> bool:
    """Whether either call raised: then both did, with the same exception type."""
    if ours is None and native is None:
        return False
    assert ours is not None, f"{where}: native raised {_error_text(native)}; ours did not"
    assert native is not None, f"{where}: ours raised {_error_text(ours)}; native did not"
    assert type(ours) is type(native), (
        f"{where}: ours raised {_error_text(ours)}; native raised {_error_text(native)}"
    )
    return True


def native_error(name: str, sample) -> Exception | None:
    args, kwargs = leaves(sample.args, sample.kwargs)
    return attempt(lambda: getattr(F, name)(leaf_like(sample.input), *args, **kwargs))[1]


def grads(outputs: torch.Tensor, inputs: list[torch.Tensor], grad_output: torch.Tensor):
    return attempt(lambda: torch.autograd.grad(outputs, inputs, grad_output))


_BITS = {8: torch.int64, 4: torch.int32, 2: torch.int16}


def check_values(
    ours: torch.Tensor,
    native: torch.Tensor,
    ulps: int,
    *,
    what: str,
    inputs: tuple = (),
    skip: torch.Tensor | None = None,
    atol: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """test_properties' assert_values, run on the elements whose bits differ: the same
    verdict as on the whole tensors (a bit-identical element passes all its checks), in a
    fraction of the time on the million-element samples. `atol` gives assert_values' atol
    for the flat indices compared; the elements a failure lists are named by their index
    in `ours`."""
    assert ours.shape == native.shape, (
        f"{what}: shape {tuple(ours.shape)} != native {tuple(native.shape)}"
    )
    assert ours.dtype == native.dtype, f"{what}: dtype {ours.dtype} != native {native.dtype}"
    bits = _BITS[ours.element_size()]
    ours, native = ours.detach(), native.detach()
    differ = ours.contiguous().view(bits) != native.contiguous().view(bits)
    if skip is not None:
        differ &= ~skip
    index = differ.reshape(-1).nonzero().squeeze(1)
    if index.numel() == 0:
        return

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.detach().reshape(-1)[index]

    try:
        assert_values(
            pick(ours),
            pick(native),
            ulps,
            inputs=tuple(pick(t) for t in inputs),
            what=what,
            atol=None if atol is None else atol(index),
        )
    except AssertionError as error:
        shape = ours.shape

        def position(match: re.Match) -> str:
            flat = int(index[int(match.group(1))])
            where = torch.unravel_index(torch.tensor(flat), shape) if shape else ()
            return f"at {tuple(int(i) for i in where)}:"

        raise AssertionError(re.sub(r"at \((\d+),\):", position, str(error))) from None


# ---------------------------------------------------------------------------------------
# Checks of one sample


def check_out_of_place(name: str, sample, where: str) -> None:
    native_fn, ours_fn = getattr(F, name), getattr(X, name)
    x = sample.input
    x_n, x_o = leaf_like(x), leaf_like(x)
    args_n, kwargs_n = leaves(sample.args, sample.kwargs)
    args_o, kwargs_o = leaves(sample.args, sample.kwargs)
    y_n, error_n = attempt(lambda: native_fn(x_n, *args_n, **kwargs_n))
    y_o, error_o = attempt(lambda: ours_fn(x_o, *args_o, **kwargs_o))
    if same_errors(error_o, error_n, f"{where}: forward"):
        return
    param = param_of(name, args_n, kwargs_n)
    check_values(
        y_o, y_n, forward_ulps(name, x.dtype, param), inputs=(x,), what=f"{where}: forward"
    )
    if is_dense(x):
        for size, a, b in zip(x.shape, y_o.stride(), y_n.stride()):
            assert size <= 1 or a == b, f"{where}: strides {y_o.stride()} != native {y_n.stride()}"

    assert y_o.requires_grad == y_n.requires_grad, (
        f"{where}: output requires_grad {y_o.requires_grad}, native {y_n.requires_grad}"
    )
    if not y_n.requires_grad:
        return
    # The input, and PReLU's weight, where they require grad.
    weight_n = param if name == "prelu" else None
    weight_o = param_of(name, args_o, kwargs_o) if name == "prelu" else None
    wrt = [
        (what, ours, native)
        for what, ours, native in (("input", x_o, x_n), ("weight", weight_o, weight_n))
        if isinstance(native, torch.Tensor) and native.requires_grad
    ]
    g = torch.randn_like(y_n)
    g_n, error_n = grads(y_n, [native for _, _, native in wrt], g)
    g_o, error_o = grads(y_o, [ours for _, ours, _ in wrt], g)
    if same_errors(error_o, error_n, f"{where}: backward"):
        return
    for (what, _, _), got, expected in zip(wrt, g_o, g_n):
        if what == "weight":
            try:
                assert_weight_grad(got, expected, x, weight_n, g)
            except AssertionError as error:
                raise AssertionError(f"{where}: grad of the weight: {error}") from None
            continue
        if name == "celu":
            reference = celu_reference_backward(g, x, param, False)
            expected = expected if reference is None else reference
        assert_input_grad(
            name, got, expected, x, g, what=f"{where}: grad of the input", compare=check_values
        )


def check_in_place(name: str, sample, where: str) -> None:
    native_fn, ours_fn = getattr(F, name), getattr(X, name)
    x = sample.input
    args, kwargs = leaves(sample.args, sample.kwargs, requires_grad=False)
    param = param_of(name, args, kwargs)
    ulps = forward_ulps(name, x.dtype, param)

    # The sample's own layout, without autograd: expanded or overlapping views are refused.
    storage_n, storage_o = storage_copy(x), storage_copy(x)
    before = storage_o.clone()
    t_n, t_o = view_like(storage_n, x), view_like(storage_o, x)
    version = t_o._version
    out_n, error_n = attempt(lambda: native_fn(t_n, *args, **kwargs, inplace=True))
    out_o, error_o = attempt(lambda: ours_fn(t_o, *args, **kwargs, inplace=True))
    if same_errors(error_o, error_n, f"{where}: in place on the sample's layout"):
        check_values(storage_o, before, 0, what=f"{where}: data after a refused call")
        assert t_o._version == version, f"{where}: version moved in a refused call"
    else:
        assert out_o is t_o, f"{where}: the in-place call did not return its input"
        check_values(
            storage_o, storage_n, ulps, inputs=(before,), what=f"{where}: storage after in place"
        )

    if not x.requires_grad:
        return
    # Autograd: in place on a clone (a non-leaf) of a leaf that requires grad.
    leaf_n, leaf_o = leaf_like(x), leaf_like(x)
    base_n, base_o = leaf_n.clone(), leaf_o.clone()
    out_n, error_n = attempt(lambda: native_fn(base_n, *args, **kwargs, inplace=True))
    out_o, error_o = attempt(lambda: ours_fn(base_o, *args, **kwargs, inplace=True))
    if same_errors(error_o, error_n, f"{where}: in place on x.clone()"):
        return
    assert out_o is base_o, f"{where}: the in-place call did not return its input"
    check_values(out_o, out_n, ulps, inputs=(x,), what=f"{where}: in place on x.clone()")
    g = torch.randn_like(out_n)
    g_n, error_n = grads(out_n, [leaf_n], g)
    g_o, error_o = grads(out_o, [leaf_o], g)
    if same_errors(error_o, error_n, f"{where}: backward of in place"):
        return
    result = out_n.detach()
    if name == "celu":
        reference = celu_reference_backward(g, result, param, True)
        if reference is not None:
            g_n = (reference,)

    # From the result y the gradient is g * (y + alpha * scale): the forwards' allowed
    # difference in y passes into it unscaled (test_properties' in-place backward bound).
    def atol(index: torch.Tensor) -> torch.Tensor:
        scale = ulps / abs(param) if name == "celu" else ulps  # celu: g / alpha * (y + alpha)
        picked = g.detach().reshape(-1)[index].double().abs()
        return picked * spacing(result.reshape(-1)[index]) * scale

    skip = nan_skip(name, x)
    check_values(
        g_o[0],
        g_n[0],
        input_grad_ulps(name, x.dtype),
        inputs=(x, result, g),
        what=f"{where}: grad of the input through in place",
        skip=skip,
        atol=atol if name in ELU_FAMILY else None,
    )
    if skip is not None and skip.any():
        assert g_o[0][skip].isnan().all(), f"{where}: grad at NaN inputs {g_o[0][skip].tolist()}"


# ---------------------------------------------------------------------------------------
# Tests


def test_table_covers_the_opinfos(opinfos: dict):
    """Every op has its OpInfo; the table's in-place ops, error inputs and dtypes are the
    OpInfos' own, so no sample PyTorch ships for them is left out."""
    assert sorted(opinfos) == sorted(NAMES)
    for name, op in opinfos.items():
        assert (op.inplace_variant is not None) == (name in IN_PLACE_NAMES), name
        assert (op.error_inputs_func is not None) == (name in ERROR_INPUT_NAMES), name
        assert set(DTYPES) <= set(op.supported_dtypes("cpu")), name


@pytest.mark.parametrize("name,dtype,inplace,kind", TABLE)
def test_opinfo_samples_match_native(opinfos: dict, name, dtype, inplace: bool, kind: str):
    """Every sample of one kind, through ours and F.<name>: values, gradients, errors."""
    samples = load_samples(opinfos[name], kind, dtype)
    assert samples, f"OpInfo nn.functional.{name} gave no {kind}"
    check = check_in_place if inplace else check_out_of_place
    unsupported = []
    for i, (sample, expected_error) in enumerate(samples):
        where = (
            f"{name} {dtype} {'in place' if inplace else 'out of place'} {kind}[{i}] "
            f"{describe(sample)}"
        )
        reason = unsupported_reason(sample)
        if reason is not None:
            unsupported.append(f"{kind}[{i}]: {reason}")
            continue
        if expected_error is not None:  # the OpInfo's error inputs must raise natively
            error = native_error(name, sample)
            assert isinstance(error, expected_error), f"{where}: native raised {error!r}"
        check(name, sample, where)
    if unsupported:
        pytest.skip(
            f"{len(unsupported)} of {len(samples)} samples not run (the others passed): "
            + "; ".join(unsupported)
        )
