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


def test_prelu_keeps_its_parameter_so_optimizers_and_ties_still_hold():
    """The slopes' Parameter itself moves to the new module (as SyncBatchNorm's converter
    keeps its weights): an optimizer made before the swap still trains them, tied slopes
    stay one Parameter, and the way back keeps it too."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 3), torch.nn.PReLU(3), torch.nn.Linear(3, 3), torch.nn.PReLU(3)
    )
    model[3].weight = model[1].weight  # tied
    slopes = model[1].weight
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    count = len(list(model.parameters()))
    xnn.replace_activations(model)
    assert model[1].weight is slopes and model[3].weight is slopes
    assert len(list(model.parameters())) == count
    before = slopes.detach().clone()
    model(torch.randn(8, 3)).square().sum().backward()
    optimizer.step()
    assert not torch.equal(slopes.detach(), before)  # trained through the new modules
    xnn.restore_activations(model)
    assert type(model[1]) is torch.nn.PReLU and model[1].weight is slopes is model[3].weight


@pytest.mark.parametrize(
    "register",
    [
        lambda m: m.register_forward_hook(lambda *a: None),
        lambda m: m.register_forward_pre_hook(lambda *a: None),
        lambda m: m.register_full_backward_hook(lambda *a: None),
        lambda m: m.register_state_dict_post_hook(lambda *a: None),
    ],
    ids=["forward", "forward pre", "backward", "state_dict"],
)
def test_hooked_modules_are_refused_and_nothing_is_replaced(register):
    """A replacement would run without the hooks: an error names the module and the hooks,
    and the model is left as it was (its other modules too)."""
    model = torch.nn.Sequential(torch.nn.ELU(), torch.nn.Linear(3, 3), torch.nn.PReLU(3))
    register(model[2])
    with pytest.raises(ValueError, match=r"replace_activations: .*'2': .*hooks.*nothing was"):
        xnn.replace_activations(model)
    assert type(model[0]) is torch.nn.ELU and type(model[2]) is torch.nn.PReLU
    native = torch.nn.Sequential(xnn.ELU(), xnn.PReLU())
    register(native[0])
    with pytest.raises(ValueError, match=r"restore_activations: .*'0'"):
        xnn.restore_activations(native)
    assert type(native[0]) is xnn.ELU and type(native[1]) is xnn.PReLU


def test_a_monitored_model_is_refused_until_the_monitor_is_detached():
    """DeadNeuronMonitor's hooks sit on the activations: converting under it would leave
    them unwatched, so it is refused; removed, the conversion goes through."""
    from torch_ext import DeadNeuronMonitor

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ELU())
    monitor = DeadNeuronMonitor(model).attach()
    with pytest.raises(ValueError, match="remove a DeadNeuronMonitor"):
        xnn.replace_activations(model)
    monitor.remove()
    assert xnn.replace_activations(model) == {"1": ("ELU", "ELU")}


def test_modules_a_monitor_counts_or_weight_norm_wraps_are_refused():
    """torch_ext's modules are counted through their `counter` (no hook): restoring them
    under a monitor would stop its counting, so it is refused; torch.nn.utils.weight_norm
    computes a PReLU's weight in a pre-hook: refused by its hook, before anything is built."""
    from torch_ext import DeadNeuronMonitor

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), xnn.ELU())
    with DeadNeuronMonitor(model):
        model(torch.randn(2, 3))  # counted through the module's counter
        with pytest.raises(ValueError, match=r"'1': a DeadNeuronMonitor's counter"):
            xnn.restore_activations(model)
        assert type(model[1]) is xnn.ELU
    assert xnn.restore_activations(model) == {"1": ("ELU", "ELU")}
    with pytest.warns(FutureWarning):  # deprecated for parametrizations, still used
        normed = torch.nn.Sequential(torch.nn.utils.weight_norm(torch.nn.PReLU(3), dim=0))
    with pytest.raises(ValueError, match=r"'0': forward pre-hooks"):
        xnn.replace_activations(normed)
    assert type(normed[0]) is torch.nn.PReLU


class _Positive(torch.nn.Module):
    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w.abs()


@pytest.mark.parametrize("convert", ["replace", "restore"])
def test_parametrized_modules_are_refused_and_nothing_is_replaced(convert: str):
    """A parametrized PReLU (torch.nn.utils.parametrize, whose class is a subclass made for
    it) computes its weight from the parametrization: a replacement holding the plain
    slopes would compute otherwise, so it is an error naming the module and the tensor,
    and the model is left as it was; without the parametrization it converts."""
    from torch.nn.utils import parametrize

    cls = torch.nn.PReLU if convert == "replace" else xnn.PReLU
    run = xnn.replace_activations if convert == "replace" else xnn.restore_activations
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), cls(3), cls(3))
    with torch.no_grad():
        model[2].weight.fill_(-0.5)
    parametrize.register_parametrization(model[2], "weight", _Positive())
    x = torch.randn(4, 3)
    before = model(x)
    with pytest.raises(ValueError, match=r"'2': parametrizations of 'weight'.*nothing was"):
        run(model)
    assert type(model[1]) is cls and parametrize.is_parametrized(model[2])
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    parametrize.remove_parametrizations(model[2], "weight")  # the weight becomes 0.5
    assert set(run(model)) == {"1", "2"}
    torch.testing.assert_close(model(x), before)
