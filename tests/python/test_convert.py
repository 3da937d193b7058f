"""torch_ext.nn.replace_activations / restore_activations on models of every shape: the
converted model computes what the original did (outputs and gradients against the native
model), keeps its state_dict, in-place flags and shared modules; the ReLU remedies give
what the native Leaky ReLU / PReLU give."""

from __future__ import annotations

import copy

import pytest
import torch

import torch_ext.nn as xnn


class Mixed(torch.nn.Module):
    """Every kind, nested in Sequential, ModuleList and ModuleDict, with in-place flags and a
    module registered twice."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = torch.nn.ELU(0.7)
        self.seq = torch.nn.Sequential(
            torch.nn.Linear(6, 8), torch.nn.LeakyReLU(0.2, inplace=True), torch.nn.Linear(8, 8)
        )
        self.blocks = torch.nn.ModuleList([torch.nn.SELU(), torch.nn.CELU(1.5, inplace=True)])
        self.heads = torch.nn.ModuleDict(
            {"a": torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.PReLU(8, init=0.1))}
        )
        self.again = self.shared

    def forward(self, x):
        h = self.shared(self.seq(x))
        for block in self.blocks:
            h = block(h * 1.0)
        return self.again(self.heads["a"](h))


def _grads(model, x):
    model.zero_grad()
    y = model(x)
    y.square().sum().backward()
    return y.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_replace_keeps_outputs_gradients_state_and_flags():
    torch.manual_seed(0)
    model = Mixed()
    with torch.no_grad():
        model.heads["a"][1].weight.uniform_(-0.5, 0.5)  # learned slopes, copied over
    native = copy.deepcopy(model)
    replaced = xnn.replace_activations(model)
    assert replaced == {
        "shared": ("ELU", "ELU"),
        "seq.1": ("LeakyReLU", "LeakyReLU"),
        "blocks.0": ("SELU", "SELU"),
        "blocks.1": ("CELU", "CELU"),
        "heads.a.1": ("PReLU", "PReLU"),
        "again": ("ELU", "ELU"),
    }
    assert model.shared is model.again and isinstance(model.shared, xnn.ELU)
    assert model.seq[1].inplace and model.blocks[1].inplace and model.blocks[1].alpha == 1.5
    assert isinstance(model.heads["a"][1], xnn.PReLU)
    assert model.state_dict().keys() == native.state_dict().keys()
    x = torch.randn(5, 6)
    (y, grads), (y_native, grads_native) = _grads(model, x), _grads(native, x)
    torch.testing.assert_close(y, y_native)
    for name, grad in grads_native.items():
        torch.testing.assert_close(grads[name], grad, msg=name)
    restored = xnn.restore_activations(model)
    assert set(restored) == set(replaced)
    assert all(type(m).__module__.startswith("torch.nn") for m in list(model.modules())[1:])
    torch.testing.assert_close(model(x), y_native)


def test_replace_is_idempotent_and_leaves_subclasses_alone():
    class MyELU(torch.nn.ELU):  # may compute otherwise: not ours to swap
        pass

    model = torch.nn.Sequential(torch.nn.ELU(), MyELU())
    assert list(xnn.replace_activations(model)) == ["0"]
    assert xnn.replace_activations(model) == {}
    assert type(model[1]) is MyELU


def test_bad_remedy_is_refused():
    with pytest.raises(ValueError, match="relu must be one of"):
        xnn.replace_activations(torch.nn.ReLU(), relu="gelu")


def _native_remedy(model, relu):
    """The reference: the same swap done with torch.nn's own modules."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.ReLU:
                new = (
                    torch.nn.LeakyReLU(0.01, child.inplace)
                    if relu == "leaky_relu"
                    else torch.nn.PReLU()
                )
                setattr(parent, name, new)
    return model


@pytest.mark.parametrize("relu", ["leaky_relu", "prelu"])
def test_resnet18_and_mobilenet_v3_relus_become_the_remedy(relu):
    models = pytest.importorskip("torchvision.models")
    for build in (models.resnet18, models.mobilenet_v3_small):
        torch.manual_seed(0)
        model = build(num_classes=10).eval()
        native = _native_remedy(copy.deepcopy(model), relu)
        relus = [n for n, m in model.named_modules() if type(m) is torch.nn.ReLU]
        replaced = xnn.replace_activations(model, relu=relu)
        assert set(replaced) >= set(relus) and relus
        assert not any(type(m) is torch.nn.ReLU for m in model.modules())
        assert any(type(m) is torch.nn.Hardswish for m in model.modules()) == (
            build is models.mobilenet_v3_small
        )
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(model(x), native(x), rtol=1e-4, atol=1e-5)


def test_hugging_face_opt_relus_become_leaky():
    transformers = pytest.importorskip("transformers")
    from helpers import tiny_opt

    model = tiny_opt(transformers, ffn_dim=32, layers=2).eval()
    native = _native_remedy(copy.deepcopy(model), "leaky_relu")
    replaced = xnn.replace_activations(model, relu="leaky_relu")
    assert {n.rsplit(".", 1)[-1] for n in replaced} == {"activation_fn"}
    ids = torch.randint(2, 50, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, native(input_ids=ids).logits)
