"""TorchScript: models scripted and traced in Python, saved, and loaded in a fresh process
that registers the ops with torch.ops.load_library alone (no `import torch_ext`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import graph_node_kinds

import torch_ext
import torch_ext.functional as XF
import torch_ext.nn as xnn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "torchscript"))
from save_models import Model, fixed_input, save_models  # noqa: E402

# Under pytest-xdist, one worker runs this file: its module fixtures (the saved models, one
# fresh process that loads them all) then run once, not once per worker.
pytestmark = pytest.mark.xdist_group("torchscript")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    with torch.device("cpu"):  # whichever device's test asks first
        return save_models(tmp_path_factory.mktemp("torchscript"))


def fresh_process_input() -> torch.Tensor:
    """The input the fresh-process tests feed the saved models (on the test's device)."""
    return fixed_input() * 0.7


def reference(x: torch.Tensor, model_class: type[torch.nn.Module] = Model):
    """Output and input gradient of the eager model the files were saved from."""
    torch.manual_seed(0)
    with torch.device("cpu"):  # initialised as the file's model was (CPU generator), then moved
        model = model_class().eval().to(x.device)
    leaf = x.clone().requires_grad_(True)
    y = model(leaf)
    (grad,) = torch.autograd.grad(y.pow(2).sum(), leaf)
    return y.detach(), grad


def run_in_fresh_process(paths: list[Path], x: torch.Tensor, device: str, tmp_path: Path):
    """Output and input gradient of each saved model of `paths` (by path), loaded on `device`
    in a fresh process that registers the ops with torch.ops.load_library alone; for a model
    that failed there, the traceback."""
    input_path, result_path = tmp_path / "x.pt", tmp_path / "result.pt"
    torch.save(x, input_path)
    code = f"""
        import sys, traceback, warnings, torch
        warnings.simplefilter("ignore", FutureWarning)
        torch.ops.load_library({torch_ext.library_path()!r})
        assert "torch_ext" not in sys.modules
        results = {{}}
        for path in {[str(path) for path in paths]!r}:
            try:  # one model's failure is its test's, not the others'
                model = torch.jit.load(path, map_location={device!r})
                x = torch.load({str(input_path)!r}, map_location={device!r}).requires_grad_(True)
                y = model(x)
                (grad,) = torch.autograd.grad(y.pow(2).sum(), x)
                results[path] = (y.detach(), grad)
            except Exception:
                results[path] = traceback.format_exc()
        torch.save(results, {str(result_path)!r})
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return torch.load(result_path)


@pytest.fixture(scope="module")
def loaded_in_a_fresh_process(saved, saved_celu, tmp_path_factory):
    """`(path, device) -> (output, input gradient)` of the saved models, each loaded in a
    fresh process: one process per device for all of them (each start loads torch, ~3 s)."""
    results: dict[str, dict | Exception] = {}  # a failed process fails every test once

    def loaded(path: Path, device: str):
        if device not in results:
            paths = [*saved.values(), *saved_celu.values()]
            folder = tmp_path_factory.mktemp("fresh_process")
            try:
                results[device] = run_in_fresh_process(paths, fresh_process_input(), device, folder)
            except Exception as error:  # noqa: BLE001 - kept, raised by each test
                results[device] = error
        if isinstance(results[device], Exception):
            raise results[device]
        result = results[device][str(path)]
        if isinstance(result, str):
            pytest.fail(f"in the fresh process:\n{result}", pytrace=False)
        return result

    return loaded


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_loads_in_a_fresh_process_with_load_library_only(
    saved, kind, device, loaded_in_a_fresh_process
):
    x = fresh_process_input()
    y, grad = loaded_in_a_fresh_process(saved[kind], device)
    expected_y, expected_grad = reference(x)  # the eager model on `device`
    assert y.device == expected_y.device
    torch.testing.assert_close(y, expected_y)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_saved_graph_calls_the_registered_ops(saved, kind):
    module = torch.jit.load(str(saved[kind]))
    kinds = graph_node_kinds(module.inlined_graph)
    assert {
        "torch_ext::leaky_relu",
        "torch_ext::prelu",
        "torch_ext::elu",
        "torch_ext::selu",
    } <= kinds


class CeluModel(torch.nn.Module):
    """CELU as a module (out of place and in place) and as a function."""

    def __init__(self) -> None:
        super().__init__()
        self.lin1 = torch.nn.Linear(16, 12)
        self.act1 = xnn.CELU(alpha=0.5)
        self.lin2 = torch.nn.Linear(12, 8)
        self.act2 = xnn.CELU(alpha=2.0, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.lin2(self.act1(self.lin1(x))))
        return XF.celu(h, 1.5)


@pytest.fixture(scope="module")
def saved_celu(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("torchscript_celu")
    with torch.device("cpu"):
        torch.manual_seed(0)
        model = CeluModel().eval()
        paths = {}
        for kind, module in (
            ("scripted", torch.jit.script(model)),
            ("traced", torch.jit.trace(model, (fixed_input(),))),
        ):
            paths[kind] = out / f"{kind}.pt"
            module.save(str(paths[kind]))
    return paths


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_celu_model_calls_the_celu_ops(saved_celu, kind):
    kinds = graph_node_kinds(torch.jit.load(str(saved_celu[kind])).inlined_graph)
    assert {"torch_ext::celu", "torch_ext::celu_"} <= kinds, kinds


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_celu_model_loads_in_a_fresh_process_with_load_library_only(
    saved_celu, kind, device, loaded_in_a_fresh_process
):
    x = fresh_process_input()
    y, grad = loaded_in_a_fresh_process(saved_celu[kind], device)
    expected_y, expected_grad = reference(x, CeluModel)
    assert y.device == expected_y.device
    torch.testing.assert_close(y, expected_y)
    torch.testing.assert_close(grad, expected_grad)
