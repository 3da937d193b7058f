"""torch_ext.revive through the structure of real networks: a BatchNorm/LayerNorm/GroupNorm
between the producer and the activation, readers behind pooling, dropout, flatten and views,
and residual additions (revived only with exact=False, and reported). torchvision's
ResNet-18: units made dead by construction come back, outputs unchanged at revival."""

from __future__ import annotations

import copy
import logging

import pytest
import torch

import torch_ext
from torch_ext import DeadNeuronMonitor

DEAD = [0, 3, 5]
C = 6  # units (features or channels) of every layer revived here


def seq(*modules: torch.nn.Module) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(*modules)


def linear_bn():
    return seq(
        torch.nn.Linear(4, C), torch.nn.BatchNorm1d(C), torch.nn.ReLU(), torch.nn.Linear(C, 3)
    )


def conv_bn():
    return seq(
        torch.nn.Conv2d(2, C, 3, padding=1, bias=False),
        torch.nn.BatchNorm2d(C),
        torch.nn.ReLU(inplace=True),
        torch.nn.Conv2d(C, 3, 3, padding=1),
    )


def conv_instance_groups():
    return seq(
        torch.nn.Conv2d(2, C, 3),
        torch.nn.GroupNorm(C, C),
        torch.nn.ReLU(),
        torch.nn.Conv2d(C, 3, 1),
    )


def conv_bn_pool_flatten():  # VGG's head: pool, flatten (blocks of H*W per channel), dropout
    return seq(
        torch.nn.Conv2d(2, C, 3, padding=1),
        torch.nn.BatchNorm2d(C),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(C * 2 * 2, 3),
    )


def conv_gap_flatten():  # ResNet's head: global average pool, flatten, Linear
    return seq(
        torch.nn.Conv2d(2, C, 3),
        torch.nn.BatchNorm2d(C),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(C, 3),
    )


class Viewed(torch.nn.Module):
    """Old-style flatten: ``x.view(x.size(0), -1)``; the activation an ELU, whose dead units'
    constant output -1 is folded into the reader's bias through the max pool and the view."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn, self.act = (
            torch.nn.Conv2d(2, C, 3, padding=1),
            torch.nn.BatchNorm2d(C),
            torch.nn.ELU(),
        )
        self.fc = torch.nn.Linear(C * 2 * 2, 3)

    def forward(self, x):
        h = torch.nn.functional.max_pool2d(self.act(self.bn(self.conv(x))), 2)
        return self.fc(h.view(h.size(0), -1))


# model, the norm layer to kill units in (index or attribute), input, the reader.
EXACT = {
    "Linear-BatchNorm1d-ReLU": (linear_bn, lambda: torch.randn(32, 4)),
    "Conv-BatchNorm2d-ReLU(inplace)": (conv_bn, lambda: torch.randn(8, 2, 5, 5)),
    "Conv-GroupNorm(per channel)-ReLU": (conv_instance_groups, lambda: torch.randn(8, 2, 5, 5)),
    "BatchNorm-ReLU-MaxPool-Flatten-Dropout-Linear": (
        conv_bn_pool_flatten,
        lambda: torch.randn(8, 2, 4, 4),
    ),
    "BatchNorm-ReLU-AdaptiveAvgPool-Flatten-Linear": (
        conv_gap_flatten,
        lambda: torch.randn(8, 2, 5, 5),
    ),
    "BatchNorm-ELU-max_pool2d-view-Linear": (Viewed, lambda: torch.randn(8, 2, 4, 4)),
}


def parts(model: torch.nn.Module):
    """(producer, norm, activation name, reader) of the test models."""
    if isinstance(model, Viewed):
        return model.conv, model.bn, "act", model.fc
    return model[0], model[1], "2", model[len(model) - 1]


def kill(norm: torch.nn.Module) -> None:
    with torch.no_grad():
        norm.bias[DEAD] = -100.0


def trained_window(model, monitor, x, steps=2):
    """One window of training steps (SGD on the sum of squares); returns its report."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()
        monitor.step()
    return monitor.history[-1]


def eval_output(model: torch.nn.Module, x: torch.Tensor, eval_mode: bool = True) -> torch.Tensor:
    """The model's output in train mode (on a copy: a training forward updates the BatchNorm
    running statistics) and, if `eval_mode`, in eval mode, with dropout off."""
    copied = copy.deepcopy(model)
    for module in copied.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    with torch.no_grad():
        train = copied.train()(x).flatten()
        return torch.cat([copied.eval()(x).flatten(), train]) if eval_mode else train


def reader_columns(model, reader) -> torch.Tensor:
    """The reader's input columns that hold units DEAD: channel c of [C, H, W] flattened is
    the block c * H * W ... (c + 1) * H * W - 1."""
    block = reader.in_features // C if isinstance(reader, torch.nn.Linear) else 1
    return torch.arange(C * block).view(C, block)[DEAD].flatten()


@pytest.mark.parametrize("name", list(EXACT))
def test_revive_through_norm_and_pooling_is_exact_and_units_come_back(name):
    make, data = EXACT[name]
    model, x = make(), data()
    producer, norm, act, reader = parts(model)
    kill(norm)
    with DeadNeuronMonitor(model, window=2) as monitor:
        assert trained_window(model, monitor, x).layers[act].dead_units == DEAD
        assert monitor.links(act) == (producer, [reader])
        before = eval_output(model, x)
        revived = torch_ext.revive(model, monitor)
        after = eval_output(model, x)
        assert revived == {act: DEAD} and revived.skipped == {} and revived.inexact == {}
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
        # The notes' remedy, in the norm layer: a small positive pre-activation.
        assert torch.all(norm.weight[DEAD] == 1) and torch.all(norm.bias[DEAD] == 0.01)
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            assert torch.all(norm.running_mean[DEAD] == 0) and torch.all(
                norm.running_var[DEAD] == 1
            )
        if producer.bias is not None:
            assert torch.all(producer.bias[DEAD] == 0)
        columns = reader_columns(model, reader)
        assert torch.all(reader.weight[:, columns] == 0)
        kept = torch.ones(reader.weight.shape[1], dtype=torch.bool)
        kept[columns] = False
        assert torch.all(reader.weight[:, kept] != 0)  # only the dead units' columns
        # Active again in the next window.
        assert not set(DEAD) & set(trained_window(model, monitor, x).layers[act].dead_units or [])


def test_revive_resets_the_norm_entries_of_the_optimizer_state():
    model, x = conv_bn(), torch.randn(8, 2, 5, 5)
    kill(model[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).pow(2).sum().backward()
        optimizer.step()
        monitor.step()
        revived = torch_ext.revive(model, monitor, optimizer)
    assert revived == {"2": DEAD}
    live = [c for c in range(C) if c not in DEAD]
    for param in (model[1].weight, model[1].bias, model[0].weight):
        state = optimizer.state[param]
        assert torch.all(state["exp_avg"][DEAD] == 0)  # first moments: as a fresh parameter's
        assert torch.all(state["exp_avg"][live].abs().reshape(len(live), -1).sum(1) > 0)
        # Second moments: the live entries' mean (the step count goes on, see revive.py).
        peers = state["exp_avg_sq"][live].mean(0, keepdim=True)
        torch.testing.assert_close(
            state["exp_avg_sq"][DEAD], peers.expand_as(state["exp_avg_sq"][DEAD])
        )
    columns = optimizer.state[model[3].weight]["exp_avg"][:, DEAD]
    assert torch.all(columns == 0)


# --- what cannot stay exact: skipped by default, revived and reported with exact=False -----
class Chain(torch.nn.Module):
    """fc1 (`features` -> C) -> act -> fc2 (`reads` -> `out`), seeded; each subclass's
    forward says how the three are joined."""

    def __init__(self, act=None, features=4, reads=C, out=C):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = torch.nn.Linear(features, C)
        self.act = act if act is not None else torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(reads, out)


class Residual(Chain):
    def __init__(self):
        super().__init__(features=C)

    def forward(self, x):
        h = self.act(self.fc1(x))
        return self.fc2(h) + h


def linear_ln():
    return seq(torch.nn.Linear(4, C), torch.nn.LayerNorm(C), torch.nn.ReLU(), torch.nn.Linear(C, 3))


def conv_gn():
    return seq(
        torch.nn.Conv2d(2, C, 3),
        torch.nn.GroupNorm(2, C),
        torch.nn.ReLU(),
        torch.nn.Conv2d(C, 3, 1),
    )


def bn_reads():
    return seq(
        torch.nn.Linear(4, C), torch.nn.ReLU(), torch.nn.BatchNorm1d(C), torch.nn.Linear(C, 3)
    )


INEXACT = {  # model, input, layer, the layer whose bias kills DEAD, why
    "residual": (
        Residual,
        lambda: torch.randn(32, C),
        "act",
        "fc1",
        "its output flows into a residual addition (add)",
    ),
    "LayerNorm": (
        linear_ln,
        lambda: torch.randn(32, 4),
        "2",
        "1",
        "'1' (LayerNorm) normalizes the units together",
    ),
    "GroupNorm": (
        conv_gn,
        lambda: torch.randn(8, 2, 5, 5),
        "2",
        "1",
        "'1' (GroupNorm) normalizes each unit with the others of its group",
    ),
    "norm reads it": (
        bn_reads,
        lambda: torch.randn(32, 4),
        "1",
        "0",
        "its output is read by the norm layer '2'",
    ),
}


@pytest.mark.parametrize("name", list(INEXACT))
def test_revive_skips_what_it_cannot_keep_exact_unless_asked_and_says_so(name, caplog):
    make, data, act, killed, why = INEXACT[name]
    model, x = make(), data()
    kill(model.get_submodule(killed))
    with DeadNeuronMonitor(model, window=2) as monitor:
        assert trained_window(model, monitor, x).layers[act].dead_units == DEAD
        weights = copy.deepcopy(model.state_dict())
        with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
            skipped = torch_ext.revive(model, monitor)
        assert (
            skipped == {} and why in skipped.skipped[act] and "exact=False" in skipped.skipped[act]
        )
        assert any(
            f"skipped layer '{act}'" in r.getMessage() and why in r.getMessage()
            for r in caplog.records
        )
        assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())

        revived = torch_ext.revive(model, monitor, exact=False)
        assert revived == {act: DEAD} and revived.skipped == {}
        assert any(why in change for change in revived.inexact[act])
        loss = model(x).pow(2).sum()
        assert torch.isfinite(loss)
        assert not set(DEAD) & set(trained_window(model, monitor, x).layers[act].dead_units or [])


def test_revived_residual_changes_the_output_by_the_revived_units_alone():
    """With exact=False the only change is what the residual addition now adds: the revived
    units' new outputs (their columns of fc2 are zero)."""
    model, x = Residual(), torch.randn(32, C)
    kill(model.fc1)
    with DeadNeuronMonitor(model, window=1) as monitor:
        trained_window(model, monitor, x, steps=1)
        with torch.no_grad():
            before = model(x)
            torch_ext.revive(model, monitor, exact=False)
            after = model(x)
            revived = torch.relu(model.fc1(x))
    expected = torch.zeros_like(before)
    expected[:, DEAD] = revived[:, DEAD]
    torch.testing.assert_close(after - before, expected, rtol=1e-5, atol=1e-5)


class DropoutToElu(Chain):
    def __init__(self):
        super().__init__(act=torch.nn.ELU(), out=3)

    def forward(self, x):
        return self.fc2(torch.nn.functional.dropout(self.act(self.fc1(x)), 0.5, self.training))


def test_revive_refuses_a_constant_output_through_training_dropout():
    """A saturated ELU unit outputs -1; dropout in training scales it by 0 or 2, so no bias
    can take it: refused, nothing written."""
    model, x = DropoutToElu(), torch.randn(32, 4)
    kill(model.fc1)
    with DeadNeuronMonitor(model, window=1) as monitor:
        trained_window(model, monitor, x, steps=1)
        weights = copy.deepcopy(model.state_dict())
        revived = torch_ext.revive(model, monitor, exact=False)
    assert revived == {} and "does not keep a constant" in revived.skipped["act"]
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


class PermutedAfter(Chain):
    """The activation's output is pooled over its unit dim: units mix, refused."""

    def __init__(self):
        super().__init__(reads=C // 2, out=3)

    def forward(self, x):  # x: [batch, 4]
        return self.fc2(torch.nn.functional.max_pool1d(self.act(self.fc1(x)), 2))


def test_revive_refuses_pooling_over_the_units():
    model, x = PermutedAfter(), torch.randn(32, 4)
    kill(model.fc1)
    with DeadNeuronMonitor(model, window=1) as monitor:
        trained_window(model, monitor, x, steps=1)
        revived = torch_ext.revive(model, monitor, exact=False)
    assert (
        revived == {}
        and "max_pool1d pools over the dim its units lie along" in revived.skipped["act"]
    )


# --- torchvision's ResNet-18 -----------------------------------------------------------------
def test_revive_on_resnet18_brings_units_back_and_keeps_the_output():
    """Units dead by construction (a BatchNorm bias of -100) at three kinds of call site: after
    bn1 (read by conv2), after the residual addition of the last block (read by the head
    through the average pool and flatten) - both exact - and after the residual addition of
    an inner block, whose output flows on in the residual stream (revived with exact=False
    only). Revived units are active in the next window; the loss stays finite."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    with torch.no_grad():
        for norm in (model.layer1[0].bn1, model.layer4[1].bn2, model.layer2[0].bn2):
            norm.bias[DEAD] = -100.0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def window() -> dict:
        for _ in range(2):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            monitor.step()
        assert torch.isfinite(loss)
        return {
            n: layer.dead_units for n, layer in monitor.history[-1].layers.items() if layer.dead
        }

    exact, inner = ["layer1.0.relu", "layer4.1.relu#1"], "layer2.0.relu#1"
    with DeadNeuronMonitor(model, window=2) as monitor:
        assert window() == {name: DEAD for name in (*exact, inner)}
        model.eval()
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor, optimizer)
        after = model(x).detach()
        model.train()
        assert revived == {name: DEAD for name in exact}
        assert "residual addition" in revived.skipped[inner]
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
        assert window() == {inner: DEAD}

        revived = torch_ext.revive(model, monitor, optimizer, exact=False)
        assert revived == {inner: DEAD} and "residual addition" in revived.inexact[inner][0]
        assert window() == {}


def test_revive_on_vgg11_bn_through_pools_flatten_and_dropout():
    """The last conv ReLU of vgg11_bn is read by the classifier through a max pool, the
    adaptive average pool to 7x7 and flatten: 49 columns per channel; the classifier's ReLUs
    are read through dropout (p=0, so the window's dead units are dead in the comparison).
    Every dead unit - those killed and the classifier's dead by chance - is revived, the
    training-mode output unchanged (its BatchNorms use the batch's statistics, as in the
    window: in eval mode other units could be alive)."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.vgg11_bn(num_classes=10)
    width = 48  # the 25088 -> 4096 classifier, narrower for speed
    model.classifier = torch.nn.Sequential(
        torch.nn.Linear(512 * 7 * 7, width),
        torch.nn.ReLU(True),
        torch.nn.Dropout(0.0),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(True),
        torch.nn.Dropout(0.0),
        torch.nn.Linear(width, 10),
    )
    with torch.no_grad():
        model.features[26].bias[DEAD] = -100.0  # the BatchNorm before ReLU features.27
        model.classifier[0].bias[DEAD] = -100.0
    x = torch.randn(8, 3, 32, 32)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        dead = {
            n: layer.dead_units for n, layer in monitor.history[-1].layers.items() if layer.dead
        }
        assert dead["features.27"] == DEAD and set(DEAD) <= set(dead["classifier.1"])
        before = eval_output(model, x, eval_mode=False)
        revived = torch_ext.revive(model, monitor)
        after = eval_output(model, x, eval_mode=False)
    assert revived == dead and revived.skipped == {}
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    columns = torch.arange(512 * 49).view(512, 49)[dead["features.27"]].flatten()
    # classifier.0 is also the producer of classifier.1: its revived rows are fresh.
    kept_rows = [r for r in range(width) if r not in dead["classifier.1"]]
    zero = model.classifier[0].weight[kept_rows].abs().sum(0) == 0
    assert torch.equal(zero.nonzero().flatten(), columns)
    kept_rows = [r for r in range(width) if r not in dead.get("classifier.4", [])]
    assert torch.all(model.classifier[3].weight[kept_rows][:, dead["classifier.1"]] == 0)


# --- uses the trace must not miss (review findings) ------------------------------------------
class SideUse(Chain):
    """fc1 -> act -> fc2, plus a second use of act's output that `side` makes."""

    def __init__(self, side):
        super().__init__()
        self.side = side

    def forward(self, x):
        h = self.act(self.fc1(x))
        return self.fc2(h) + self.side(h)


SIDE_USES = {  # a use of the activation's output outside the traced chain, and why refused
    ".T (a property)": (lambda: lambda h: (torch.ones(C, C) @ h.T).T, "used by T"),
    ".data": (lambda: lambda h: h.data * 2, "used by data"),
    "TorchScript module": (
        lambda: torch.jit.script(torch.nn.Linear(C, C)),
        "used where operations cannot be traced",
    ),
    "traced module": (
        lambda: torch.jit.trace(torch.nn.Linear(C, C), torch.randn(2, C)),
        "used where operations cannot be traced",
    ),
}


@pytest.mark.parametrize("name", list(SIDE_USES))
def test_a_use_of_the_output_the_chain_does_not_show_is_refused(name):
    make, why = SIDE_USES[name]
    model, x = SideUse(make()), torch.randn(16, 4)
    kill(model.fc1)
    with DeadNeuronMonitor(model, window=1) as monitor:
        trained_window(model, monitor, x, steps=1)
        weights = copy.deepcopy(model.state_dict())
        revived = torch_ext.revive(model, monitor, exact=False)
    assert revived == {} and why in revived.skipped["act"]
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


class Features:
    def __init__(self, logits, features):
        self.logits, self.features = logits, features


@pytest.mark.parametrize("wrap", ["dataclass", "object"])
def test_an_output_returned_inside_a_dataclass_or_object_is_not_exact(wrap):
    import dataclasses

    @dataclasses.dataclass
    class Output:
        logits: torch.Tensor
        features: torch.Tensor

    class Model(Chain):
        def __init__(self):
            super().__init__(out=2)

        def forward(self, x):
            h = self.act(self.fc1(x))
            return (Output if wrap == "dataclass" else Features)(self.fc2(h), h)

    model, x = Model(), torch.randn(16, 4)
    kill(model.fc1)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).logits.sum().backward()
        monitor.step()
        revived = torch_ext.revive(model, monitor)
    assert revived == {} and "part of the model's output" in revived.skipped["act"]


def test_an_eval_forward_through_dropout_does_not_make_the_reader_look_different():
    """F.dropout in eval returns its input: the reader then reads the layer's output itself,
    which a watched forward sees as a direct read. Still the same reader: revived."""
    model = seq(
        torch.nn.Linear(4, C), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(C, 2)
    )
    kill(model[0])
    x = torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        trained_window(model, monitor, x, steps=1)
        model.eval()
        before = model(x).detach()  # a validation pass
        revived = torch_ext.revive(model, monitor)
        after = model(x).detach()
    assert revived == {"1": DEAD}
    torch.testing.assert_close(after, before, rtol=1e-6, atol=1e-6)


def test_revive_draws_rows_without_copying_the_layer_or_its_hooks():
    """A forward hook holding what cannot be copied (a lock) on the producer: revive draws
    the fresh rows from the layer's init without deep-copying it."""
    import threading

    class Recorder:
        def __init__(self):
            self.lock = threading.Lock()

        def hook(self, module, args, output):
            with self.lock:
                pass

    model = seq(torch.nn.Linear(4, C), torch.nn.ReLU(), torch.nn.Linear(C, 2))
    model[0].register_forward_hook(Recorder().hook)
    kill(model[0])
    x = torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        trained_window(model, monitor, x, steps=1)
        revived = torch_ext.revive(model, monitor)
    assert revived == {"1": DEAD}
    bound = 1 / 4**0.5  # Linear's init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    rows = model[0].weight[DEAD]
    assert rows.abs().max() <= bound and rows.std() > 0.1 * bound


def test_revive_through_hugging_face_conv1d_writes_its_transposed_weights_exactly():
    """GPT-2's Conv1D stores its weight [in, out]: a unit's incoming weights are a column of
    the producer, its outgoing ones a row of the reader; the Adam state follows. Exact for
    ReLU (the model's output unchanged), and the units come back."""
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        pytorch_utils.Conv1D(C, 4), torch.nn.ReLU(), pytorch_utils.Conv1D(3, C)
    )
    producer, reader = model[0], model[2]
    with torch.no_grad():
        producer.weight[:, DEAD] = 0.0
        producer.bias[DEAD] = -1.0
    x = torch.randn(2, 8, 4)  # (batch, tokens, features), as in GPT-2
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with DeadNeuronMonitor(model, window=1) as monitor:
        optimizer.zero_grad()
        model(x).pow(2).sum().backward()
        optimizer.step()
        monitor.step()
        assert monitor.history[-1].layers["1"].dead_units == DEAD
        for param in (producer.weight, reader.weight):  # so a reset slice shows
            optimizer.state[param]["exp_avg"].fill_(1.0)
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor, optimizer)
        assert revived == {"1": DEAD} and revived.inexact == {}
        torch.testing.assert_close(model(x).detach(), before)
        assert torch.all(reader.weight[DEAD] == 0) and torch.all(reader.weight[1] != 0)
        assert torch.all(producer.weight[:, DEAD].abs().sum(0) > 0)
        assert torch.all(producer.bias[DEAD] == 0.01)
        moments = optimizer.state[reader.weight]["exp_avg"]
        assert torch.all(moments[DEAD] == 0) and torch.all(moments[1] == 1)
        moments = optimizer.state[producer.weight]["exp_avg"]
        assert torch.all(moments[:, DEAD] == 0) and torch.all(moments[:, 1] == 1)
        assert trained_window(model, monitor, x, steps=1).layers["1"].dead_units == []


class Gated(torch.nn.Module):
    """A gated MLP, as Llama's (act(gate(x)) * up(x)) with the product's operands either way."""

    def __init__(self, act: torch.nn.Module, act_first: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gate, self.up, self.down = (
            torch.nn.Linear(4, C),
            torch.nn.Linear(4, C),
            torch.nn.Linear(C, 3),
        )
        self.act, self.act_first = act, act_first

    def forward(self, x):
        h, g = self.act(self.gate(x)), self.up(x)
        return self.down(h * g if self.act_first else g * h)


def gated_step(model: Gated, x: torch.Tensor, monitor: DeadNeuronMonitor, bias=-100.0) -> None:
    with torch.no_grad():
        model.gate.weight[DEAD] = 0.0
        model.gate.bias[DEAD] = bias
    model(x).pow(2).sum().backward()
    monitor.step()


@pytest.mark.parametrize("act_first", [True, False])
def test_revive_through_a_gate_is_exact_for_units_that_output_zero(act_first):
    """Dead ReLU units output exactly 0, and 0 times the other branch is 0: revived exactly,
    whichever side of the product they are on."""
    model, x = Gated(torch.nn.ReLU(), act_first), torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        gated_step(model, x, monitor)
        assert monitor.links("act") == (model.gate, [model.down])
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor)
    assert revived == {"act": DEAD} and revived.inexact == {}
    torch.testing.assert_close(model(x).detach(), before)
    assert torch.all(model.down.weight[:, DEAD] == 0)


@pytest.mark.parametrize(
    ("act", "bias", "why"),
    [
        # GELU(-5) is -1.4e-6 (in float32 it is 0 below about -5.3, and exactly revivable):
        # times the other branch, unbounded
        (torch.nn.GELU(), -5.0, "does not carry to the reader (through a max or Lp pool, a gate"),
        (torch.nn.ELU(), -100.0, "does not keep a constant"),  # -1 times the other branch
    ],
)
def test_revive_through_a_gate_refuses_units_with_an_output(act, bias, why):
    model, x = Gated(act), torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=1, tau=0.1) as monitor:
        gated_step(model, x, monitor, bias)
        assert monitor.history[-1].layers["act"].dead_units == DEAD
        weights = [p.detach().clone() for p in model.parameters()]
        revived = torch_ext.revive(model, monitor, exact=False)
    assert revived == {} and why in revived.skipped["act"]
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))


@pytest.mark.parametrize("groups", [2, C])  # C: depthwise, as after MobileNet's expansion
def test_revive_through_a_grouped_reader_zeroes_only_its_groups_entries(groups):
    """A grouped convolution reads unit c only in its group's outputs, at c's place in the
    group: those entries (and their Adam state) are reset, the other groups' kept; the
    output is unchanged (ReLU) and the units come back."""
    torch.manual_seed(0)
    producer, reader = torch.nn.Conv1d(2, C, 1), torch.nn.Conv1d(C, 2 * C, 3, groups=groups)
    model = seq(producer, torch.nn.ReLU(), reader)
    with torch.no_grad():
        producer.weight[DEAD] = 0.0
        producer.bias[DEAD] = -1.0
    x, per_group = torch.randn(8, 2, 7), C // groups
    expected = torch.zeros(2 * C, per_group, dtype=torch.bool)  # the reader's [out, in]
    for c in DEAD:
        group = c // per_group
        expected[group * 2 * per_group : (group + 1) * 2 * per_group, c % per_group] = True
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).pow(2).sum().backward()
        optimizer.step()
        monitor.step()
        for key in ("exp_avg", "exp_avg_sq"):  # so that a reset entry shows
            optimizer.state[reader.weight][key].fill_(1.0)
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor, optimizer)
        assert revived == {"1": DEAD} and revived.skipped == {}
        torch.testing.assert_close(model(x).detach(), before)
        zeroed = (reader.weight == 0).all(-1)
        assert torch.equal(zeroed, expected)
        state = optimizer.state[reader.weight]
        assert torch.equal((state["exp_avg"] == 0).all(-1), expected)
        assert torch.all(state["exp_avg_sq"] == 1)  # step scale: the peers' (all 1)
        assert trained_window(model, monitor, x, steps=1).layers["1"].dead_units == []


def test_a_saturated_elu_constant_folds_into_a_conv1d_readers_bias():
    """Hugging Face's Conv1D reads the units of a Linear-like layer: the dead ELU units'
    constant -1 goes into its bias (it pads nothing)."""
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        pytorch_utils.Conv1D(C, 4), torch.nn.ELU(), pytorch_utils.Conv1D(3, C)
    )
    with torch.no_grad():
        model[0].weight[:, DEAD] = 0.0
        model[0].bias[DEAD] = -100.0
    x = torch.randn(2, 8, 4)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor)
        assert revived == {"1": DEAD} and revived.skipped == {}
        torch.testing.assert_close(model(x).detach(), before)


class Dormant(torch.nn.Module):
    """ReLU units barely active (tau-dormant, not dead), read by `reader`."""

    def __init__(self, reader: torch.nn.Module, flatten: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.act, self.reader, self.flatten = (
            torch.nn.Conv2d(2, C, 3, padding=1),
            torch.nn.ReLU(),
            reader,
            flatten,
        )
        with torch.no_grad():
            self.conv.weight[DEAD] *= 1e-3
            self.conv.bias[DEAD] = 0.0

    def forward(self, x):
        h = self.act(self.conv(x))
        return self.reader(h.flatten(1) if self.flatten else h)


@pytest.mark.parametrize(
    ("reader", "flatten", "bounded"),
    [
        (torch.nn.Conv2d(C, 3, 3, padding=1), False, True),  # every place, once per output
        (torch.nn.Conv2d(C, C, 3, padding=1, groups=C), False, True),
        (torch.nn.Conv2d(C, C, 3, stride=2, padding=1, groups=C), False, False),  # MobileNet's
        (torch.nn.Conv2d(C, 3, 3), False, False),  # no padding: reads fewer places
        (torch.nn.Linear(C * 25, 3), True, False),  # each output reads 25 places of a unit
    ],
)
def test_the_mean_bound_is_stated_only_where_it_holds(reader, flatten, bounded):
    """tau-dormant units: their window mean |h| bounds the reader's mean change only where
    each output reads each unit at one place, over every place; measured here on the
    window's own input (no optimizer step between)."""
    model, x = Dormant(reader, flatten), torch.randn(16, 2, 5, 5)
    with DeadNeuronMonitor(model, window=1, tau=0.1) as monitor:
        model(x).sum().backward()
        monitor.step()
        assert set(DEAD) <= set(monitor.history[-1].layers["act"].tau_dormant_units)
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor, select="tau_dormant", exact=False)
        change = (model(x).detach() - before).abs()
    if not bounded:
        assert revived == {} and "does not carry to the reader" in revived.skipped["act"]
        return
    assert set(DEAD) <= set(revived["act"])
    mean_change = change.transpose(0, 1).flatten(1).mean(1).max().item()  # per output channel
    assert 0 < mean_change <= revived.change_bounds["act"] * (1 + 1e-5)


def test_the_peak_bound_counts_dropouts_scaling_in_training():
    """Saturated Tanh units (output about +1) through Dropout(0.5) in training reach the
    reader doubled: the bound says so, and holds on the same dropout mask."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, C), torch.nn.Tanh(), torch.nn.Dropout(0.5), torch.nn.Linear(C, 3)
    )
    with torch.no_grad():
        model[0].bias[DEAD] = 100.0
        model[3].weight[:, DEAD] = model[3].weight[:, DEAD].abs()  # their terms add up
    x = torch.randn(64, 4)  # some sample keeps all three units (each kept with p = 1/2)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        torch.manual_seed(1)
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor, exact=False)
        torch.manual_seed(1)
        change = (model(x).detach() - before).abs().max().item()
    assert revived["1"] == DEAD
    bound = revived.change_bounds["1"]
    assert bound / 2 < change <= bound * (1 + 1e-6)  # more than the bound without 1/(1-p)


def test_a_conv1d_subclass_is_a_linear_to_the_monitor_too():
    """A subclass of Hugging Face's Conv1D (another name) feeds units along the last dim,
    counted and revived as Conv1D's."""
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")

    class MyConv1D(pytorch_utils.Conv1D):
        pass

    torch.manual_seed(0)
    model = torch.nn.Sequential(MyConv1D(C, 4), torch.nn.ReLU(), MyConv1D(3, C))
    with torch.no_grad():
        model[0].weight[:, DEAD] = 0.0
        model[0].bias[DEAD] = -1.0
    x = torch.randn(2, 5, 4)  # 5 tokens: not the unit count
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        layer = monitor.history[-1].layers["1"]
        assert layer.units == C and layer.dead_units == DEAD
        assert torch_ext.revive(model, monitor) == {"1": DEAD}
