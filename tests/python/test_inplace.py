"""The in-place forms: leaky_relu_, elu_, selu_, celu_ (and inplace=True in functional/nn)."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from helpers import ACTIVATIONS, DTYPES, LAYOUTS, Activation, ids, make_input

import torch_ext.functional as X

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


@pytest.mark.parametrize("dtype", DTYPES, ids=ids(DTYPES))
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_writes_native_values_into_self(act: Activation, layout: str, dtype: torch.dtype):
    x = make_input(layout, dtype)
    expected = act.run(x.clone(), native=True)
    version = x._version
    out = act.run(x, inplace=True)
    assert out is x
    assert x._version > version
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_functional_in_place_names_are_natives(act: Activation):
    """X.elu_(x, alpha) and the others, as F.elu_: same values, written into x, and the same
    gradient (where the in-place backward exists)."""
    ours, native = getattr(X, f"{act.name}_"), getattr(torch.nn.functional, f"{act.name}_")
    args = () if act.param is None else (act.param,)
    base = torch.randn(5, 7, dtype=torch.float64)
    grad = torch.randn(5, 7, dtype=torch.float64)
    results = []
    for fn in (ours, native):
        leaf = base.clone().requires_grad_(act.inplace_backward_ok)
        x = leaf * 1.0
        out = fn(x, *args)
        assert out is x
        if act.inplace_backward_ok:
            out.backward(grad)
        results.append((out.detach(), leaf.grad))
    torch.testing.assert_close(results[0], results[1])


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_gradients_equal_native_in_place(act: Activation):
    torch.manual_seed(3)
    base = torch.randn(6, 9, dtype=torch.float64)
    grad = torch.randn(6, 9, dtype=torch.float64)

    def run(native: bool) -> torch.Tensor:
        leaf = base.clone().requires_grad_(True)
        y = act.run(leaf * 1.0, inplace=True, native=native)
        y.backward(grad)
        return leaf.grad

    if act.inplace_backward_ok:
        torch.testing.assert_close(run(native=False), run(native=True))
    else:
        with pytest.raises(RuntimeError, match=r"torch_ext::(leaky_relu|elu)_backward.*negative"):
            run(native=False)
        with pytest.raises(RuntimeError, match="negative slope"):
            run(native=True)


def _leaf():
    return torch.randn(4, 5, requires_grad=True)


def _no_grad_view():
    leaf = _leaf()
    with torch.no_grad():
        return leaf[1:]


def _inference_tensor():
    with torch.inference_mode():
        return torch.randn(4, 5)


REFUSED = {  # in-place targets PyTorch's own in-place ops refuse, with their message
    "leaf": (_leaf, "a leaf Variable that requires grad"),
    "view_of_leaf": (lambda: _leaf()[1:], "a view of a leaf Variable that requires grad"),
    "unbind_output": (
        lambda: (_leaf() * 2).unbind(0)[1],
        r"Output 1 of Unbind(Backward0)? is a view",
    ),
    "no_grad_view": (_no_grad_view, "A view was created in no_grad mode"),
    "inference_tensor": (
        _inference_tensor,
        "Inplace update to inference tensor outside InferenceMode",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_refuses_before_writing(act: Activation, case: str):
    """Refused as natively, with PyTorch's message, and the tensor's data and version
    counter are left as they were (PyTorch itself writes an inference tensor before it
    refuses: ours does not)."""
    make, message = REFUSED[case]
    for native in (True, False):
        target = make()
        before = target.detach().clone()
        version = None if target.is_inference() else target._version  # inference: none
        with pytest.raises(RuntimeError, match=message):
            act.run(target, inplace=True, native=native)
        if not native:
            assert torch.equal(target.detach(), before)
            assert version is None or target._version == version


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.inplace_backward_ok], ids=str)
def test_view_of_a_leaf_rebases_history(act: Activation):
    """In place on a view of a non-leaf: gradients flow through the base, as natively."""
    leaf = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    grads = []
    for native in (False, True):
        leaf.grad = None
        base = leaf * 2.0
        act.run(base[:, 1:4], inplace=True, native=native)
        base.sum().backward()
        grads.append(leaf.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.inplace_backward_ok], ids=str)
def test_view_of_a_leaf_second_derivative_is_natives(act: Activation):
    """Through an in-place op on a view, the create_graph gradient and its own gradient
    equal native's (Leaky ReLU's is zeros, not "unused")."""
    results = []
    for native in (False, True):
        torch.manual_seed(5)
        leaf = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
        base = leaf * 2.0
        act.run(base[:, 1:4], inplace=True, native=native)
        (g,) = torch.autograd.grad(base, leaf, torch.ones_like(base), create_graph=True)
        results.append((g.detach(), *torch.autograd.grad(g.sum(), leaf)))
    torch.testing.assert_close(results[0], results[1], rtol=1e-14, atol=0)


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.inplace_backward_ok], ids=str)
def test_in_place_on_a_view_frees_its_graph_without_backward(act: Activation):
    """A graph with an in-place op on a view, dropped without a backward (an evaluation
    under grad mode), is freed when its tensors go, as natively: the op's node saves the
    view as ATen's in-place kernels save their result, so no reference cycle keeps it."""
    for native in (False, True):
        base = torch.randn(4, 6, requires_grad=True) * 1.0
        alive = weakref.ref(base)
        act.run(base[1:], inplace=True, native=native)
        del base
        gc.collect()
        assert alive() is None, "native" if native else "ours"


def test_saved_tensor_modified_later_is_detected():
    """The version counter is bumped, so autograd sees the saved result being changed."""
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y = X.elu(x * 1.0, inplace=True)
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_overlapping_view_raises(act: Activation):
    expanded = torch.zeros(1).expand(4)
    with pytest.raises(
        RuntimeError, match=r"torch_ext::\w+_: argument 'self' has elements that share memory"
    ):
        act.run(expanded, inplace=True)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_celu_saved_result_modified_later_is_detected(alpha: float):
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y = X.celu(x * 1.0, alpha, inplace=True)
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_no_grad_in_place_on_a_leaf_is_allowed():
    leaf = torch.randn(5, requires_grad=True)
    expected = torch.nn.functional.selu(leaf.detach())
    with torch.no_grad():
        X.selu(leaf, inplace=True)
    torch.testing.assert_close(leaf.detach(), expected)
