"""torch.compile(fullgraph=True) and torch.export trace the ops (Meta kernels,
functionalization of the in-place forms) and give eager's values and gradients."""

from __future__ import annotations

import copy

import pytest
import torch

import torch_ext.functional as X
import torch_ext.nn as xnn

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


class EveryOp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin1 = torch.nn.Linear(6, 8)
        self.lin2 = torch.nn.Linear(8, 8)
        self.prelu = xnn.PReLU(8)
        self.lin3 = torch.nn.Linear(8, 4)
        self.celu = xnn.CELU(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = X.leaky_relu(self.lin1(x), 0.1)
        h = self.prelu(self.lin2(h))
        h = X.elu(h, 0.5, inplace=True)
        h = X.selu(self.lin3(h))
        h = X.celu(self.celu(h) * 1.0, 0.5, inplace=True)
        return X.leaky_relu(h * 1.0, 0.2, inplace=True)


def outputs_and_grads(model: torch.nn.Module, fn, x: torch.Tensor):
    model.zero_grad()
    y = fn(x)
    y.pow(2).sum().backward()
    return y.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph_matches_eager(dynamic: bool):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = EveryOp()
    x = torch.randn(5, 6)
    eager = outputs_and_grads(model, model, x)
    compiled = outputs_and_grads(model, torch.compile(model, fullgraph=True, dynamic=dynamic), x)
    torch.testing.assert_close(compiled, eager)


def call_targets(exported: torch.export.ExportedProgram) -> set[str]:
    return {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}


def test_export_traces_every_op():
    torch.manual_seed(0)
    model = EveryOp().eval()
    x = torch.randn(5, 6)
    exported = torch.export.export(model, (x,))
    assert {
        "torch_ext.leaky_relu.default",
        "torch_ext.prelu.default",
        "torch_ext.elu_.default",
        "torch_ext.selu.default",
        "torch_ext.celu.default",
        "torch_ext.celu_.default",
        "torch_ext.leaky_relu_.default",
    } <= call_targets(exported)
    torch.testing.assert_close(exported.module()(x), model(x))

    # Lowered to the functional IR (as AOTInductor does), the in-place forms become the
    # out-of-place ops.
    functional = exported.run_decompositions({})
    targets = call_targets(functional)
    assert {
        "torch_ext.elu.default",
        "torch_ext.celu.default",
        "torch_ext.leaky_relu.default",
    } <= targets, targets
    assert not {t for t in targets if t.startswith("torch_ext.") and t.endswith("_.default")}
    torch.testing.assert_close(functional.module()(x), model(x))


def test_aot_inductor_package_runs(tmp_path):
    """An AOTInductor package of the exported model loads and runs from Python."""
    torch.manual_seed(0)
    model = EveryOp().eval()
    x = torch.randn(5, 6)
    exported = torch.export.export(model, (x,))
    path = torch._inductor.aoti_compile_and_package(
        exported, package_path=str(tmp_path / "model.pt2")
    )
    loaded = torch._inductor.aoti_load_package(path)
    torch.testing.assert_close(loaded(x), model(x))


def modules_model(inplace: bool = True) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Every activation as a torch_ext.nn module (ELU in place, or not), and the native twin."""
    torch.manual_seed(0)
    ours = torch.nn.Sequential(
        torch.nn.Linear(6, 8),
        xnn.LeakyReLU(0.1),
        torch.nn.Linear(8, 8),
        xnn.PReLU(8),
        xnn.ELU(0.5, inplace=inplace),
        torch.nn.Linear(8, 4),
        xnn.SELU(),
        xnn.CELU(2.0),
    )
    native = copy.deepcopy(ours)
    xnn.restore_activations(native)
    return ours, native


def compiled_autograd_step(model: torch.nn.Module, x: torch.Tensor, forward: str) -> torch.Tensor:
    """One step whose backward compiled autograd traces and compiles; the forward compiled
    with it, or run eagerly before."""
    from torch._dynamo.utils import counters

    def step() -> torch.Tensor:
        y = model(x)
        y.pow(2).sum().backward()
        return y.detach()

    torch._dynamo.reset()
    counters.clear()
    model.zero_grad()
    with torch._inductor.config.patch(force_disable_caches=True):
        with torch._dynamo.config.patch(compiled_autograd=True):
            if forward == "compiled":
                y = torch.compile(step)()
            else:
                y = model(x)
                loss = y.pow(2).sum()
                torch.compile(lambda: loss.backward())()
                y = y.detach()
    torch._dynamo.reset()
    assert counters["compiled_autograd"]["captures"] >= 1
    return y


@pytest.mark.filterwarnings("ignore:dynamo_pgo force disabled")  # the caches are off
@pytest.mark.parametrize(
    "forward,inplace", [("compiled", True), ("eager", False), ("eager", True)], ids=str
)
def test_compiled_autograd_matches_native(forward: str, inplace: bool, monkeypatch):
    """Compiled autograd (torch._dynamo.config.compiled_autograd) traces the backward through
    our C++ autograd nodes and compiles it. With an eager forward, the sign mask our kernel
    saved reaches the compiled backward: its decomposition (forced on here) declines the
    bits, and our kernel reads them. An eager in-place forward's node (ELU's, inplace=True)
    is compiled too: it keeps no dirty set, which compiled autograd refuses."""
    from torch_ext.transforms import decompositions

    if forward == "eager":
        monkeypatch.setattr(decompositions, "force", True)
    ours, native = modules_model(inplace=inplace)
    x = torch.randn(5, 6)
    y = compiled_autograd_step(ours, x, forward)
    expected = outputs_and_grads(native, native, x)
    torch.testing.assert_close((y, [p.grad for p in ours.parameters()]), expected)
