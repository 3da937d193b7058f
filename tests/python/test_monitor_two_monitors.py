"""Two DeadNeuronMonitors on one model count independently: torch_ext.nn modules count in their
own kernel for one monitor only (a single ``counter`` slot), the other monitor counts by a
hook; removing either leaves the other counting. Counts are compared with a reference from
plain torch (the pre-activations and autograd's derivative of the native activation)."""

from __future__ import annotations

import gc

import pytest
import torch

import torch_ext.nn as xnn
from torch_ext import DeadNeuronMonitor

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device

NATIVE = {
    "ELU": torch.nn.functional.elu,
    "SELU": torch.nn.functional.selu,
    "CELU": lambda z: torch.nn.functional.celu(z, 0.5),
    "LeakyReLU": lambda z: torch.nn.functional.leaky_relu(z, 0.1),
}


def model_with(activation: torch.nn.Module) -> torch.nn.Sequential:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), activation, torch.nn.Linear(8, 3))
    with torch.no_grad():
        model[0].bias[[1, 4]] = -30.0  # saturated units: dead for a coarse grad_eps only
    return model


def reference(model: torch.nn.Sequential, batches: list[torch.Tensor], grad_eps: float):
    """Per unit: samples with z > 0, and samples with |f'(z)| > grad_eps, f' by autograd."""
    z = torch.cat([model[0](x) for x in batches]).detach().double().requires_grad_()
    native = NATIVE[type(model[1]).__name__]
    (derivative,) = torch.autograd.grad(native(z).sum(), z)
    return (z > 0).sum(0).tolist(), (derivative.abs() > grad_eps).sum(0).tolist()


def counts(monitor: DeadNeuronMonitor) -> tuple[list[int], list[int]]:
    layer = monitor.report().layers["1"]
    return layer.active_counts, layer.alive_counts


@pytest.mark.parametrize(
    "activation", [xnn.ELU(), xnn.SELU(), xnn.LeakyReLU(0.1), xnn.CELU(0.5)], ids=repr
)
@pytest.mark.parametrize("removed_first", ["first", "second"])
def test_two_monitors_both_count_and_survive_each_others_removal(activation, removed_first: str):
    model = model_with(activation)
    batches = [torch.randn(16, 5) * 3 for _ in range(4)]
    first = DeadNeuronMonitor(model, window=100, grad_eps=1e-3).attach()
    second = DeadNeuronMonitor(model, window=100, grad_eps=0.5).attach()
    for x in batches[:2]:
        model(x).sum().backward()
    assert counts(first) == reference(model, batches[:2], 1e-3)
    assert counts(second) == reference(model, batches[:2], 0.5)
    assert first.links("1") == second.links("1") == (model[0], [model[2]])  # both traced

    gone, kept, eps = (first, second, 0.5) if removed_first == "first" else (second, first, 1e-3)
    gone.remove()
    for x in batches[2:]:
        model(x).sum().backward()
    assert counts(kept) == reference(model, batches, eps)
    assert gone.report().layers["1"].samples == 32  # stopped at removal

    # Re-attached, the removed monitor counts again beside the other.
    gone.attach()
    model(batches[0]).sum().backward()
    assert counts(kept) == reference(model, batches + batches[:1], eps)
    assert gone.report().layers["1"].samples == 48
    gone.remove()
    kept.remove()
    assert "counter" not in vars(model[1]) and not model[1]._forward_pre_hooks


def test_the_second_monitor_counts_by_hook_and_the_first_keeps_the_kernel():
    model = model_with(xnn.ELU())
    with DeadNeuronMonitor(model) as first, DeadNeuronMonitor(model) as second:
        assert model[1].counter is not None  # the first counts in the kernel
        assert len(model[1]._forward_pre_hooks) == 1  # the second by hook
        model(torch.randn(4, 5))
        assert first.report().layers["1"].samples == second.report().layers["1"].samples == 4


def test_a_slot_left_by_a_dropped_monitor_is_taken_over():
    """A monitor dropped without remove() counts nothing: the next one counts in the kernel."""
    model = model_with(xnn.SELU())
    DeadNeuronMonitor(model).attach()  # dropped at once
    gc.collect()
    x = torch.randn(6, 5)
    with DeadNeuronMonitor(model, grad_eps=1e-3) as monitor:
        assert model[1].counter.owner() is not None and not model[1]._forward_pre_hooks
        model(x)
        assert counts(monitor) == reference(model, [x], 1e-3)


def test_a_dropped_monitor_leaves_no_hook_working():
    """Monitors dropped without remove(): their hooks remove themselves at the next call,
    so a training loop that makes one per epoch does not pile up hooks."""
    model = model_with(torch.nn.ReLU())
    for _ in range(5):
        DeadNeuronMonitor(model).attach()  # dropped at once
    gc.collect()
    assert len(model[1]._forward_pre_hooks) == 5
    model(torch.randn(2, 5))
    assert len(model[1]._forward_pre_hooks) == 0 and len(model._forward_pre_hooks) == 0
