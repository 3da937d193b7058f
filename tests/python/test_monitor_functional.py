"""DeadNeuronMonitor(functional=True): activation functions called inside a module's forward
(F.relu, torch.relu, x.relu(), F.leaky_relu, F.elu, F.selu, F.celu, F.prelu,
torch.ops.torch_ext.*, torch_ext.functional.*) are layers named ``module:function#k``,
counted as the pre-activations computed by hand say; activation modules are not counted
twice; compiled forwards are reported as unseen; checkpoints, revive and torch.distributed
handle the sites."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import torch_ext
from torch_ext import DeadNeuronMonitor

GRAD_EPS = 1e-3
SLOPES = torch.tensor([0.25, 0.0, 1e-4, -0.5, 0.1, 0.0])  # PReLU's, one per unit

# name -> (function applied to z in the model, native function for the reference derivative)
CALLS = {
    "relu": (F.relu, F.relu),
    "relu_inplace": (lambda z: F.relu(z.clone(), inplace=True), F.relu),
    "torch.relu": (torch.relu, F.relu),
    "method relu": (lambda z: z.relu(), F.relu),
    "leaky_relu": (lambda z: F.leaky_relu(z, 0.2), lambda z: F.leaky_relu(z, 0.2)),
    "leaky_relu slope 0": (lambda z: F.leaky_relu(z, negative_slope=0.0), F.relu),
    "elu": (lambda z: F.elu(z, alpha=1e-4), lambda z: F.elu(z, alpha=1e-4)),
    "celu": (lambda z: F.celu(z, 2.0), lambda z: F.celu(z, 2.0)),
    "selu": (F.selu, F.selu),
    "prelu": (lambda z: F.prelu(z, SLOPES), lambda z: F.prelu(z, SLOPES.to(z.dtype))),
    "torch_ext op": (lambda z: torch.ops.torch_ext.leaky_relu(z, 0.0), F.relu),
    "torch_ext.functional": (lambda z: torch_ext.functional.elu(z, 0.5), lambda z: F.elu(z, 0.5)),
    "celu_inplace": (lambda z: F.celu(z.clone(), 0.5, inplace=True), lambda z: F.celu(z, 0.5)),
    "torch_ext.functional.celu": (
        lambda z: torch_ext.functional.celu(z, 0.5),
        lambda z: F.celu(z, 0.5),
    ),
    "torch_ext.functional.celu inplace": (
        lambda z: torch_ext.functional.celu(z.clone(), alpha=2.0, inplace=True),
        lambda z: F.celu(z, 2.0),
    ),
    "torch_ext celu op": (lambda z: torch.ops.torch_ext.celu(z, 0.5), lambda z: F.celu(z, 0.5)),
    "torch_ext celu_ op": (
        lambda z: torch.ops.torch_ext.celu_.default(z.clone(), 2.0),
        lambda z: F.celu(z, 2.0),
    ),
}
KIND = {
    "relu": "relu",
    "relu_inplace": "relu",
    "torch.relu": "relu",
    "method relu": "relu",
    "leaky_relu": "leaky_relu",
    "leaky_relu slope 0": "leaky_relu",
    "elu": "elu",
    "celu": "celu",
    "selu": "selu",
    "prelu": "prelu",
    "torch_ext op": "leaky_relu",
    "torch_ext.functional": "elu",
    "celu_inplace": "celu",
    "torch_ext.functional.celu": "celu",
    "torch_ext.functional.celu inplace": "celu",
    "torch_ext celu op": "celu",
    "torch_ext celu_ op": "celu",
}


class Block(torch.nn.Module):
    """fc -> f(z) -> head, with f called as a function in this module's forward."""

    def __init__(self, f, features: int = 4, units: int = 6):
        super().__init__()
        self.fc, self.head, self.f = torch.nn.Linear(features, units), torch.nn.Linear(units, 2), f

    def forward(self, x):
        return self.head(self.f(self.fc(x)))


def expected_counts(z: torch.Tensor, native) -> tuple[list[int], list[int], int]:
    z = z.detach().reshape(-1, z.shape[-1]).double().requires_grad_()
    (derivative,) = torch.autograd.grad(native(z).sum(), z)
    return (z > 0).sum(0).tolist(), (derivative.abs() > GRAD_EPS).sum(0).tolist(), z.shape[0]


def counted(layer) -> tuple[list[int], list[int], int]:
    return layer.active_counts, layer.alive_counts, layer.samples


@pytest.mark.parametrize("call", list(CALLS))
def test_each_supported_function_is_counted_as_computed_by_hand(call):
    torch.manual_seed(0)
    f, native = CALLS[call]
    model = torch.nn.Sequential(Block(f))
    x = torch.randn(64, 4) * 3
    with DeadNeuronMonitor(model, window=1, grad_eps=GRAD_EPS, functional=True) as monitor:
        model(x).sum().backward()
        monitor.step()
        layers = monitor.history[-1].layers
    name = f"0:{KIND[call]}#0"
    assert list(layers) == [name]
    assert counted(layers[name]) == expected_counts(model[0].fc(x), native)


class Nested(torch.nn.Module):
    """Functional calls at several depths and in the model's own forward; a block called
    twice; an nn.ReLU module (its own F.relu is not a functional layer)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.blocks = torch.nn.Sequential(Block(F.relu, 4, 6), torch.nn.ReLU(), Twice())
        self.out = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.out(torch.relu(self.blocks(x)) + F.relu(-x[:, :2]))


class Twice(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, h):
        return self.fc(F.elu(self.fc(F.relu(h))))


def test_call_sites_are_named_by_module_function_and_index():
    model = Nested()
    x = torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
        for _ in range(2):  # indices restart with each forward
            model(x).sum().backward()
        monitor.step()
        layers = monitor.history[-1].layers
    assert list(layers) == [
        "blocks.1",
        "blocks.0:relu#0",
        "blocks.2:relu#0",
        "blocks.2:elu#0",
        ":relu#0",
        ":relu#1",
    ]
    assert all(layer.samples == 32 for layer in layers.values())
    h = model.blocks[1](model.blocks[0](x))
    assert counted(layers["blocks.2:relu#0"]) == expected_counts(torch.cat([h, h]), F.relu)
    inner = model.blocks[2].fc(F.relu(h))
    assert counted(layers["blocks.2:elu#0"]) == expected_counts(torch.cat([inner, inner]), F.elu)
    assert counted(layers[":relu#1"]) == expected_counts(torch.cat([-x[:, :2]] * 2), F.relu)


def test_functional_sites_are_numbered_per_forward_whatever_call_sites_says():
    """call_sites= merges modules' calls; a module's functional calls stay one layer each
    (call_sites="merged" would merge calls of different widths: PyTorch's tutorial Net
    calls F.relu on 6 channels, then 16, then 120 features)."""

    class Loop(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = Block(F.relu, 3, 3)

        def forward(self, x):
            return sum(self.cell(x_t) for x_t in x)  # the cell's F.relu once per time step

    model = Loop()
    x = torch.randn(5, 8, 3)
    names = []
    for call_sites in ("separate", "merged"):
        with DeadNeuronMonitor(model, window=1, functional=True, call_sites=call_sites) as monitor:
            model(x).sum().backward()
            monitor.step()
        names.append(list(monitor.history[-1].layers))
    assert names[0] == names[1] == [f"cell:relu#{k}" for k in range(5)]


class Branching(torch.nn.Module):
    """One forward calls F.relu on 6 features then 4; another only on 4: index #0 changes
    width, which no unit_dim= can fix for a functional site."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 6), torch.nn.Linear(4, 4)

    def forward(self, x, both: bool):
        g = F.relu(self.a(x)).sum(1, keepdim=True) if both else 0.0
        return F.relu(self.b(x)) + g


def test_a_functional_site_of_another_width_is_skipped_not_a_failed_forward(caplog):
    model = Branching()
    x = torch.randn(8, 4)
    with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
        with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
            model(x, both=True).sum().backward()
            model(x, both=False).sum().backward()  # :relu#0 now has 4 units: not counted
            model(x, both=False).sum().backward()
        monitor.step()
    layers = monitor.history[-1].layers
    assert layers[":relu#0"].units == 6 and layers[":relu#0"].samples == 8
    assert layers[":relu#1"].units == 4 and layers[":relu#1"].samples == 8
    warnings = [r.getMessage() for r in caplog.records if "not counted" in r.getMessage()]
    assert len(warnings) == 1 and "':relu#0'" in warnings[0]


def test_functional_calls_are_off_by_default_and_modules_not_counted_twice():
    model = Nested()
    x = torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=1) as plain:
        model(x).sum().backward()
        plain.step()
    assert list(plain.history[-1].layers) == ["blocks.1"]

    class Custom(torch.nn.Module):  # a monitored module calling F.relu itself
        def forward(self, z):
            return F.relu(z)

    model = torch.nn.Sequential(
        torch.nn.Linear(4, 6), Custom(), torch_ext.nn.ELU(), torch.nn.Linear(6, 2)
    )
    with DeadNeuronMonitor(
        model, window=1, functional=True, modules=["1", torch.nn.ELU]
    ) as monitor:
        model(x).sum().backward()
        monitor.step()
    layers = monitor.history[-1].layers
    assert list(layers) == ["1", "2"] and layers["1"].samples == 16


def test_eval_forwards_and_recomputation_are_not_counted():
    torch.manual_seed(0)
    block = Block(F.relu)
    model = torch.nn.Sequential(block)
    x = torch.randn(8, 4, requires_grad=True)

    def checkpointed(inputs):
        return torch.utils.checkpoint.checkpoint(block, inputs, use_reentrant=False)

    model.forward = checkpointed  # the instance's forward: the monitor's hooks still run
    with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
        model(x).sum().backward()  # the backward recomputes block's forward: not counted
        model.eval()
        model(x)
        monitor.step()
    (layer,) = monitor.history[-1].layers.values()
    assert layer.samples == 8


def test_compiled_forwards_count_modules_and_say_functional_calls_went_unseen(caplog):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), Block(F.relu, 6, 6))
    x = torch.randn(8, 4)
    compiled = torch.compile(model, backend="eager")
    with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
        with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
            compiled(x).sum().backward()
            monitor.step()
        assert list(monitor.history[-1].layers) == ["1"]
        assert monitor.history[-1].layers["1"].samples == 8
        warnings = [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]
        assert len(warnings) == 1 and "functional activation calls are not counted" in warnings[0]
        model(x).sum().backward()  # eager again: counted
        monitor.step()
        assert list(monitor.history[-1].layers) == ["1", "2:relu#0"]


def test_state_dict_restores_functional_sites_before_they_run():
    model = Nested()
    x = torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=2, functional=True) as monitor:
        model(x).sum().backward()
        saved = copy.deepcopy(monitor.state_dict())
        before = monitor.report().to_dict()
    with DeadNeuronMonitor(model, window=2, functional=True) as resumed:
        resumed.load_state_dict(saved)  # no forward yet: the sites come from the checkpoint
        assert resumed.report().to_dict() == before
        model(x).sum().backward()
        assert all(layer.samples == 32 for layer in resumed.report().layers.values())
    with DeadNeuronMonitor(model, window=2) as without:
        with pytest.raises(KeyError, match="blocks.0:relu#0"):
            without.load_state_dict(saved)


def test_revive_leaves_functional_sites_and_says_why():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), Block(F.relu, 6, 6))
    with torch.no_grad():
        model[0].bias[:3] = -100.0
        model[2].fc.bias[:3] = -100.0
    x = torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
        model(x).sum().backward()
        monitor.step()
        revived = torch_ext.revive(model, monitor)
    assert revived == {"1": [0, 1, 2]}
    assert "functional call" in revived.skipped["2:relu#0"]
    assert monitor.module("2:relu#0") is None


# --- torch.distributed ------------------------------------------------------------------------
def branch_worker(rank: int, world_size: int, port: int, out: str) -> None:
    from test_monitor_distributed import init_group

    init_group(rank, world_size, port)
    try:
        torch.manual_seed(0)
        model = Branches()
        with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
            model(torch.randn(4, 4), branch=rank == 0).sum().backward()
            summed = {n: layer.samples for n, layer in monitor.report().layers.items()}
            monitor.step()
        Path(out, f"rank{rank}.json").write_text(json.dumps(summed))
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


class Branches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x, branch: bool):
        h = F.relu(self.fc(x))
        return F.elu(h) if branch else h  # only rank 0 calls F.elu


def test_ranks_agree_on_functional_sites_only_some_ran(tmp_path):
    from test_monitor_distributed import spawn

    spawn(branch_worker, str(tmp_path))
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert reports[0] == reports[1] == {":relu#0": 8, ":elu#0": 4}


# --- robustness (review findings) -------------------------------------------------------------
class Interrupting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.act = torch.nn.Linear(4, 4), torch.nn.ReLU()
        self.interrupt = False

    def forward(self, x):
        h = self.act(self.fc(x))
        if self.interrupt:
            raise KeyboardInterrupt  # skips the always_call hooks that end a forward
        return F.relu(h)


def test_a_forward_cut_short_by_keyboard_interrupt_leaves_the_monitor_working():
    model, x = Interrupting(), torch.randn(8, 4)
    with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
        model.interrupt = True
        with pytest.raises(KeyboardInterrupt):
            model(x)  # the first, traced forward
        model.interrupt = False
        for _ in range(3):
            model(x).sum().backward()
        assert torch.overrides._get_current_function_mode_stack() == []
        monitor.step()
        layers = monitor.history[-1].layers
        assert list(layers) == ["act", ":relu#0"]  # no call site numbered on from the cut one
        assert layers[":relu#0"].samples == 24 and layers["act"].samples == 32
        # A later forward was traced in its place (its F.relu is an operation revive cannot
        # follow): not "no training forward has run".
        assert (
            monitor.link_problem("act") == "its output is used by relu outside a Linear/Conv layer"
        )


def test_a_compiled_submodule_runs_under_the_monitor():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.Sequential(
                torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16)
            )
            self.act, self.head = torch.nn.ReLU(), torch.nn.Linear(16, 4)

        def forward(self, x):
            return self.head(F.relu(self.act(self.enc(x))))

    torch.manual_seed(0)
    model, x = Model(), torch.randn(6, 8)
    model.enc.compile(backend="inductor")
    with DeadNeuronMonitor(model, window=1, functional=True) as monitor:
        for _ in range(2):
            model(x).sum().backward()
        monitor.step()
        layers = monitor.history[-1].layers
        assert {n: layer.samples for n, layer in layers.items()} == {
            "enc.1": 12,
            "act": 12,
            ":relu#0": 12,
        }
        # The compiled submodule's output is not traced: no link through it, said so.
        assert "its input is not the output" in monitor.link_problem("act")


def test_functional_mode_stays_out_of_forwards_that_do_not_count():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(list(torch.overrides._get_current_function_mode_stack()))
            return F.relu(x)

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), Probe())
    with DeadNeuronMonitor(model, functional=True):
        model.eval()
        model(torch.randn(2, 4))
        model.train()
        model(torch.randn(2, 4))
    assert seen[0] == [] and len(seen[1]) >= 1
