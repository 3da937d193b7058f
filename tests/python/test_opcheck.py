"""torch.library.opcheck for every registered op: schema, autograd registration, fake
(Meta) kernels, and AOT dispatch (what torch.compile relies on)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


ops = torch.ops.torch_ext


def sample(*shape, requires_grad=False, dtype=torch.float32):
    x = torch.randn(*shape, dtype=dtype)
    x.view(-1)[0] = 0.0
    return x.requires_grad_(requires_grad)


def cases():
    for rg in (False, True):
        tag = "grad" if rg else "nograd"
        yield f"leaky_relu-{tag}", ops.leaky_relu.default, (sample(4, 5, requires_grad=rg), 0.2)
        yield f"elu-{tag}", ops.elu.default, (sample(4, 5, requires_grad=rg), 1.5)
        yield f"selu-{tag}", ops.selu.default, (sample(2, 3, 4, requires_grad=rg),)
        yield f"celu-{tag}", ops.celu.default, (sample(4, 5, requires_grad=rg), 0.5)
        yield f"celu-negative-{tag}", ops.celu.default, (sample(4, 5, requires_grad=rg), -1.5)
        yield (
            f"celu-save_output-{tag}",
            ops.celu.default,
            (sample(4, 5, requires_grad=rg), 2.0),
            {"save_output": True},
        )
        yield (
            f"prelu-{tag}",
            ops.prelu.default,
            (
                sample(2, 3, 4, requires_grad=rg),
                torch.full((3,), 0.25, requires_grad=rg),
            ),
        )
        yield (
            f"leaky_relu_backward-{tag}",
            ops.leaky_relu_backward.default,
            (
                sample(6, requires_grad=rg),
                sample(6, requires_grad=rg),
                0.1,
                False,
            ),
        )
        yield (
            f"elu_backward-{tag}",
            ops.elu_backward.default,
            (
                sample(6, requires_grad=rg),
                sample(6, requires_grad=rg),
                1.0,
                1.0,
                False,
            ),
        )
        yield (
            f"elu_backward-celu-{tag}",
            ops.elu_backward.default,
            (
                sample(6, requires_grad=rg),
                sample(6, requires_grad=rg),
                0.5,
                1.0,
                False,
                2.0,
            ),
        )
        yield (
            f"elu_backward-celu-result-{tag}",
            ops.elu_backward.default,
            (
                sample(6, requires_grad=rg),
                sample(6).clamp(min=-1.5).requires_grad_(rg),  # a result of celu(x, 2)
                2.0,
                1.0,
                True,
                0.5,
            ),
        )
        yield (
            f"prelu_backward-{tag}",
            ops.prelu_backward.default,
            (
                sample(2, 3, 4, requires_grad=rg),
                sample(2, 3, 4, requires_grad=rg),
                torch.full((3,), 0.25, requires_grad=rg),
            ),
        )
        # The statistics ops (mutating their statistics, never the input).
        yield (
            f"count_active_-{tag}",
            ops.count_active_.default,
            (
                sample(4, 5, requires_grad=rg),
                torch.zeros(2, 5, dtype=torch.int64),
                1,
                torch.full((5,), -0.5),
            ),
        )
        yield (
            f"count_active_-interval-{tag}",
            ops.count_active_.default,
            (
                sample(2, 5, 3, requires_grad=rg),
                torch.zeros(2, 5, dtype=torch.int64),
                1,
                torch.tensor([[-1.0], [1.0], [-0.1], [0.1]]).expand(4, 5).contiguous(),
            ),
        )
        yield (
            f"abs_sum_-{tag}",
            ops.abs_sum_.default,
            (sample(2, 5, 3, requires_grad=rg), torch.zeros(5, dtype=torch.float64), -2),
        )
    # In-place forms: no autograd-requiring leaf may be mutated, so plain tensors.
    yield "leaky_relu_", ops.leaky_relu_.default, (sample(4, 5), 0.2)
    yield "elu_", ops.elu_.default, (sample(4, 5), 0.5)
    yield "selu_", ops.selu_.default, (sample(4, 5),)
    yield "celu_", ops.celu_.default, (sample(4, 5), 0.5)
    yield "celu_-negative", ops.celu_.default, (sample(4, 5), -2.0)
    yield (
        "channels_last",
        ops.elu.default,
        (
            sample(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
            1.0,
        ),
    )
    yield "bfloat16", ops.leaky_relu.default, (sample(8, 3, dtype=torch.bfloat16), 0.01)


CASES = [(*c, {}) if len(c) == 3 else c for c in cases()]  # (id, op, args, kwargs)


@pytest.mark.parametrize("op,args,kwargs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_opcheck(op, args, kwargs):
    torch.library.opcheck(op, args, kwargs)
