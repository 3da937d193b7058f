"""Inductor's decompositions of torch_ext's ops (torch_ext/transforms/decompositions.py).

Decomposed (forced on, as the table does on CUDA), a compiled training step of
Linear -> act -> + residual generates native's code: no torch_ext op, as many fused
kernels as native, the residual add fused with the activation. With the table as it is,
each family is decomposed or kept as an extern call by device, and either way the loss and
gradients are eager's. Compiles run with the caches off: the on-disk cache keys do not see
the decomposition table, nor the switch the tests flip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch._inductor.decomposition import decompositions as inductor_table
from torch._inductor.utils import run_and_get_code

import torch_ext.functional as X
from torch_ext.transforms import decompositions as D

pytestmark = [
    pytest.mark.usefixtures("device"),  # every test, on every device
    pytest.mark.filterwarnings("ignore:dynamo_pgo force disabled"),  # the caches are off
]

ops = torch.ops.torch_ext

#: name: (native, ours, the family in KEEP_OURS_ON, torch_ext ops a compiled step runs)
ACTS: dict[str, tuple[Callable[..., Tensor], Callable[..., Tensor], str, tuple[str, ...]]] = {
    "leaky_relu": (
        partial(F.leaky_relu, negative_slope=0.1),
        partial(X.leaky_relu, negative_slope=0.1),
        "leaky_relu",
        ("leaky_relu_masked", "leaky_relu_backward_masked"),
    ),
    "elu": (partial(F.elu, alpha=0.5), partial(X.elu, alpha=0.5), "elu", ("elu", "elu_backward")),
    "selu": (F.selu, X.selu, "elu", ("selu", "elu_backward")),
    "celu": (
        partial(F.celu, alpha=2.0),
        partial(X.celu, alpha=2.0),
        "elu",
        ("celu", "elu_backward"),
    ),
    "prelu": (F.prelu, X.prelu, "prelu", ("prelu", "prelu_backward")),
}


class Residual(torch.nn.Module):
    """Linear -> act -> + residual, for each act given in turn."""

    def __init__(self, acts: list[Callable[..., Tensor]], width: int = 16) -> None:
        super().__init__()
        self.linears = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in acts)
        self.acts = acts
        self.slopes = torch.nn.ParameterList(  # PReLU's, one per channel
            torch.nn.Parameter(torch.full((width,), 0.25)) for _ in acts
        )

    def forward(self, x: Tensor) -> Tensor:
        for linear, act, slopes in zip(self.linears, self.acts, self.slopes):
            h = linear(x)
            x = (act(h, slopes) if act in (F.prelu, X.prelu) else act(h)) + x
        return x


def model_of(names: list[str], side: int) -> Residual:
    """The model with each act's native (side 0) or torch_ext (side 1) function."""
    torch.manual_seed(0)
    return Residual([ACTS[name][side] for name in names])


@pytest.fixture(autouse=True)
def _fresh_compiles() -> Iterator[None]:
    torch._dynamo.reset()
    with torch._inductor.config.patch(force_disable_caches=True):
        yield
    torch._dynamo.reset()


def training_step(model: torch.nn.Module, x: Tensor, compiled: bool) -> tuple[list[Tensor], str]:
    """The loss and every gradient of one step, and the compiled step's code (fwd + bwd)."""
    model.zero_grad(set_to_none=True)
    forward = torch.compile(model, fullgraph=True) if compiled else model

    def step() -> list[Tensor]:
        loss = forward(x).square().sum()
        loss.backward()
        # A parameter the step does not use (a slope beside a non-PReLU act) keeps None.
        return [loss.detach()] + [p.grad for p in model.parameters() if p.grad is not None]

    if not compiled:
        return step(), ""
    values, code = run_and_get_code(step)
    return values, "\n".join(code)


def kernels(code: str) -> list[str]:
    """The names of the fused kernels Inductor generated (C++ or Triton)."""
    return re.findall(r"^(\w+) = async_compile\.\w+\(", code, flags=re.MULTILINE)


@pytest.mark.parametrize("name", ACTS)
def test_decomposed_step_fuses_as_native(name: str, device: str, monkeypatch):
    monkeypatch.setattr(D, "force", True)
    x = torch.randn(8, 16)
    _, native_code = training_step(model_of([name], 0), x, compiled=True)
    ours = model_of([name], 1)
    compiled, code = training_step(ours, x, compiled=True)

    assert "torch.ops.torch_ext" not in code
    assert len(kernels(code)) == len(kernels(native_code)), (kernels(code), kernels(native_code))
    assert any("add" in k and name in k for k in kernels(code)), kernels(code)
    torch.testing.assert_close(compiled, training_step(ours, x, compiled=False)[0])
    # torch.export keeps the op: only Inductor's table decomposes it.
    exported = torch.export.export(ours, (x,))
    targets = {str(n.target) for n in exported.graph.nodes}
    assert f"torch_ext.{name}.default" in targets


def test_step_follows_the_table(device: str):
    """Every activation in one model: a family's ops are extern calls exactly where the
    table keeps our kernels on this device; the loss and gradients are eager's."""
    names = list(ACTS)
    model = model_of(names, 1)
    x = torch.randn(8, 16)
    compiled, code = training_step(model, x, compiled=True)
    torch.testing.assert_close(compiled, training_step(model, x, compiled=False)[0])
    for name in names:
        family, emitted = ACTS[name][2], ACTS[name][3]
        extern = any(f"torch.ops.torch_ext.{op}.default" in code for op in emitted)
        assert extern == (not D.decomposes(family, torch.device(device))), name


def test_inference_decomposed(device: str, monkeypatch):
    """Without autograd the plain forward ops reach Inductor: decomposed, no torch_ext op."""
    monkeypatch.setattr(D, "force", True)
    model = model_of(list(ACTS), 1)
    x = torch.randn(8, 16)
    with torch.no_grad():
        compiled, code = run_and_get_code(torch.compile(model, fullgraph=True), x)
        torch.testing.assert_close(compiled, model(x))
    assert "torch.ops.torch_ext" not in "\n".join(code)


# --- The table itself, on real tensors (no compile) -------------------------------------


def decomposed(op: torch._ops.OpOverload, *args, **kwargs):
    return inductor_table[op](*args, **kwargs)


def test_every_twin_is_registered():
    assert {t.op for t in D.TWINS} <= set(inductor_table)
    emitted = {f"{op}" for *_, names in ACTS.values() for op in names}
    assert emitted <= {t.op._opname for t in D.TWINS}


@pytest.mark.parametrize(
    ("op", "args"),
    [
        (ops.leaky_relu.default, (0.1,)),
        (ops.elu.default, (0.5,)),
        (ops.selu.default, ()),
        (ops.celu.default, (2.0,)),
    ],
    ids=["leaky_relu", "elu", "selu", "celu"],
)
def test_twins_compute_our_ops(op, args, device: str, monkeypatch):
    """Forward and backward twins give our ops' values (float64: the formulas, not the
    roundings), from the input and from the result."""
    monkeypatch.setattr(D, "force", True)
    x = torch.tensor([-3.0, -1.0, -0.0, 0.0, 0.5, 2.0, float("nan")], dtype=torch.float64)
    g = torch.linspace(-1, 1, x.numel(), dtype=torch.float64)
    torch.testing.assert_close(decomposed(op, x, *args), op(x, *args), equal_nan=True)
    if op is ops.leaky_relu.default:
        for is_result in (False, True):
            backward = (g, op(x, *args) if is_result else x, 0.1, is_result)
            expected = ops.leaky_relu_backward(*backward)
            got = decomposed(ops.leaky_relu_backward.default, *backward)
            torch.testing.assert_close(got, expected, equal_nan=True)
        result, mask = decomposed(ops.leaky_relu_masked.default, x, 0.1)
        torch.testing.assert_close(result, op(x, *args), equal_nan=True)
        got = decomposed(ops.leaky_relu_backward_masked.default, g, mask, 0.1, list(x.stride()))
        torch.testing.assert_close(got, ops.leaky_relu_backward(g, x, 0.1, False))
        return
    alpha, scale, input_scale = {
        "elu": (0.5, 1.0, 1.0),
        "selu": (X.SELU_ALPHA, X.SELU_SCALE, 1.0),
        "celu": (2.0, 1.0, 0.5),
    }[op._opname]
    # At a NaN input ATen's elu_backward (so the twin) gives grad * scale, ours NaN.
    x, g = x[:-1], g[:-1]
    for is_result in (False, True):
        s = op(x, *args) if is_result else x
        backward = (g, s, alpha, scale, is_result, input_scale)
        expected = ops.elu_backward(*backward)
        torch.testing.assert_close(decomposed(ops.elu_backward.default, *backward), expected)


@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [((), ()), ((5,), ()), ((5,), (1,)), ((4, 3), (3,)), ((4, 3), (1,)), ((2, 3, 4, 5), (3,))],
)
def test_prelu_twins_compute_our_ops(x_shape, w_shape, device: str, monkeypatch):
    """Including the weight gradient, reduced to the weight's shape as our op returns it."""
    monkeypatch.setattr(D, "force", True)
    x = torch.randn(x_shape, dtype=torch.float64)
    w = torch.rand(w_shape, dtype=torch.float64)
    g = torch.randn(x_shape, dtype=torch.float64)
    torch.testing.assert_close(decomposed(ops.prelu.default, x, w), ops.prelu(x, w))
    got = decomposed(ops.prelu_backward.default, g, x, w)
    torch.testing.assert_close(got, ops.prelu_backward(g, x, w))


def test_decompositions_decline(device: str, monkeypatch):
    """NotImplemented (the op stays an extern call, with its own errors and formats): where
    the table keeps our kernels, and for arguments only our op handles."""
    x = torch.randn(6)
    g = torch.randn(6)
    keep = {f: not D.decomposes(f, x.device) for f in D.KEEP_OURS_ON}
    assert (decomposed(ops.leaky_relu.default, x, 0.1) is NotImplemented) == keep["leaky_relu"]
    assert (decomposed(ops.selu.default, x) is NotImplemented) == keep["elu"]
    assert (decomposed(ops.prelu.default, x, torch.ones(1)) is NotImplemented) == keep["prelu"]
    monkeypatch.setattr(D, "force", True)
    bits = ops.leaky_relu_masked(x, 0.1)[1]  # what our kernel saves: only it reads them
    cases = [
        (ops.leaky_relu_backward_masked.default, (g, bits, 0.1, [1])),
        (ops.leaky_relu_backward.default, (g, x, -0.1, True)),  # our error
        (ops.elu_backward.default, (g, x, -1.0, 1.0, True)),  # our error
        (ops.celu.default, (x, 0.0)),  # our error
        (ops.elu.default, (torch.ones(6, dtype=torch.int32),)),  # our error
        (ops.prelu.default, (x, torch.ones(2))),  # our error
        (ops.prelu.default, (x, torch.ones(1, dtype=torch.float64))),  # our error
        (ops.elu_backward.default, (g[:1], x, 1.0, 1.0, False)),  # broadcasting: ours
    ]
    for op, args in cases:
        assert decomposed(op, *args) is NotImplemented, op
    monkeypatch.setattr(D, "force", False)
    assert decomposed(ops.prelu.default, x, torch.ones(1)) is NotImplemented
