"""torch_ext.activations, the one table of supported activations: SELU's constants are the
C++ library's and equal PyTorch's; each entry's dead output is the native module's output far
in the negative tail; the make() modules are the torch.nn class; the monitor and revive read
the table."""

from __future__ import annotations

import pytest
import torch

import torch_ext
from torch_ext.activations import ACTIVATIONS, SELU_ALPHA, SELU_SCALE, activation_of


def test_selu_constants_come_from_the_library_and_match_pytorch():
    assert (SELU_ALPHA, SELU_SCALE) == torch.ops.torch_ext.selu_constants()
    tail = torch.nn.functional.selu(torch.tensor(-1e4, dtype=torch.float64))  # -scale * alpha
    one = torch.nn.functional.selu(torch.tensor(1.0, dtype=torch.float64))  # scale
    assert SELU_SCALE == one.item() and SELU_SCALE * SELU_ALPHA == pytest.approx(
        -tail.item(), rel=1e-15
    )
    assert torch_ext.functional.SELU_ALPHA == SELU_ALPHA  # one definition, re-exported


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_each_entry_describes_its_native_module(name):
    spec = ACTIVATIONS[name]
    module = spec.make(4)
    assert isinstance(module, spec.native) and activation_of(module) is spec
    assert spec.native in torch_ext.monitor.KNOWN_ACTIVATIONS
    dead = spec.dead_output(module)
    tail = module.double()(torch.full((1, 4), -1e4, dtype=torch.float64))
    if dead is None:  # Leaky ReLU (slope 0.01), PReLU: the tail is slope * z, not a constant
        assert torch.all(tail < -1)
    else:
        torch.testing.assert_close(tail, torch.full_like(tail, dead), rtol=0, atol=1e-12)


def test_the_monitor_counts_by_the_tables_rule():
    """The alive threshold the monitor uses for each entry is the op's for the entry's rule
    and parameter."""
    for spec in ACTIVATIONS.values():
        module = spec.make(3)
        got = torch_ext.monitor.alive_threshold(module, 3, 1e-3, "cpu")
        if spec.rule == "prelu":
            expected = torch.ops.torch_ext.slopes_alive_threshold(module.weight, 3, 1e-3)
        else:
            expected = torch.full(
                (3,), torch.ops.torch_ext.alive_threshold(spec.rule, spec.param(module), 1e-3)
            )
        torch.testing.assert_close(got, expected.float(), rtol=0, atol=0)
    assert activation_of(torch.nn.GELU()) is None


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n != "ReLU"])
def test_make_gives_the_torch_ext_module(name):
    """The study and the benchmarks run torch_ext's module of every entry (torch_ext has no
    ReLU), which counts inside its own kernel under the monitor."""
    module = ACTIVATIONS[name].make(4)
    assert type(module) is getattr(torch_ext.nn, name)
    assert isinstance(module, torch_ext.nn.CountedActivation)
    x = torch.randn(3, 4, dtype=torch.float64)
    native = ACTIVATIONS[name].native
    reference = native(4) if native is torch.nn.PReLU else native()
    torch.testing.assert_close(module.double()(x), reference.double()(x))
