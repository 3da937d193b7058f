"""ONNX export (torch.onnx.export, dynamo=True) of a model using torch_ext's modules, with
torch_ext.transforms.onnx's translation table: the same ONNX ops as the native modules
export to, and onnxruntime computes the same outputs."""

from __future__ import annotations

import copy

import pytest
import torch

import torch_ext.nn as xnn

onnx = pytest.importorskip("onnx", reason="scripts/test.sh installs onnx")
ort = pytest.importorskip("onnxruntime", reason="scripts/test.sh installs onnxruntime")
pytest.importorskip("onnxscript", reason="scripts/test.sh installs onnxscript")

from torch_ext.transforms.onnx import custom_translation_table  # noqa: E402


def models() -> tuple[torch.nn.Module, torch.nn.Module]:
    """Every activation (ELU in place) as torch_ext.nn modules, and the native twin."""
    torch.manual_seed(0)
    native = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.PReLU(4),
        torch.nn.LeakyReLU(0.1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 8),
        torch.nn.ELU(0.5, inplace=True),
        torch.nn.SELU(),
        torch.nn.CELU(2.0),
        torch.nn.PReLU(),
    ).eval()
    ours = copy.deepcopy(native)
    xnn.replace_activations(ours)
    return ours, native


def nodes(program) -> list[tuple[str, dict]]:
    """Each node's op type and attributes, in order."""
    model = program.model_proto
    return [
        (node.op_type, {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute})
        for node in model.graph.node
    ]


def run(program, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return torch.from_numpy(out)


def test_exports_the_native_onnx_ops():
    ours, native = models()
    assert any(type(m).__module__.startswith("torch_ext") for m in ours.modules())
    x = torch.randn(2, 3, 6, 6)
    table = custom_translation_table()
    native_program = torch.onnx.export(native, (x,), dynamo=True, verbose=False)
    ours_program = torch.onnx.export(
        ours, (x,), dynamo=True, custom_translation_table=table, verbose=False
    )
    ops = [op for op, _ in nodes(ours_program)]
    assert {"PRelu", "LeakyRelu", "Elu", "Selu", "Celu"} <= set(ops), ops
    assert nodes(ours_program) == nodes(native_program)
    expected = native(x.clone())
    torch.testing.assert_close(run(ours_program, x), expected)
    torch.testing.assert_close(run(native_program, x), expected)
