"""torch_ext's ops under torch.func: ``grad``, ``vjp``, ``jacrev``, ``jacfwd``, ``jvp``,
``hessian``, ``vmap``, ``functionalize`` and their compositions (``vmap(grad(...))`` for
per-sample gradients), in place and out of place, as for :mod:`torch.nn.functional`.

The ops' autograd is C++ (a ``torch::autograd::Function`` at the Autograd key), which eager
mode, LibTorch and TorchScript use and functorch refuses ("cannot use C++
torch::autograd::Function with functorch transforms": C++ Functions cannot tell which
transform level a tensor belongs to). ``torch.library.register_autograd`` would replace that
C++ autograd and its forward AD everywhere, and in torch 2.14.1 still fails under
``torch.func.grad`` (pytorch issues 168393, 170834). So each op gets a Python kernel at the
dispatch key ``FuncTorchDynamicLayerFrontMode``, which functorch puts in the dispatch path
only while a transform runs: eager calls never reach it. The kernel applies a new-style
:class:`torch.autograd.Function` (``setup_context``, ``backward``, ``jvp``, ``vmap``) that
functorch runs level by level; below the last level its ``forward`` calls the same op, which
runs its C++ kernel. ``backward`` and ``jvp`` call the ``*_backward`` ops, which have
Functions of their own, so derivatives of any order work (``hessian``). With ``vmap`` on
top, the kernel runs the op's batching rule itself (one call on the whole batch), and with
``functionalize`` on top, which has no rule for Functions, the op on the unwrapped values.

One table, ``RULES`` of :mod:`torch_ext.transforms.func_rules`, holds each op's derivatives
and batching rule; one factory, ``_function``, makes its Function. In-place ops run as their out-of-place op and
``copy_``. The counted ops (``*_counted``) differentiate as their plain ops and count below
the last level; ``vmap`` and ``functionalize`` refuse them (an unbatched counter cannot take
one count per sample). The sign-mask pair (``leaky_relu_masked``,
``leaky_relu_backward_masked``) is internal state of the eager autograd, which no rule here
calls; it keeps functorch's defaults (vmap's per-sample loop; grad refuses it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch._C._functorch import (
    _add_batch_dim,
    _unwrap_batched,
    _unwrap_functional_tensor,
    _wrap_functional_tensor,
    maybe_get_level,
    unwrap_if_dead,
)
from torch._functorch.pyfunctorch import (
    FunctionalizeInterpreter,
    VmapInterpreter,
    retrieve_current_functorch_interpreter,
)
from torch.utils import _pytree as pytree

from .func_rules import COUNTED, IN_PLACE, RULES, Args, InDims, Rule, counted_refusal

__all__: list[str] = []

ops = torch.ops.torch_ext


# The key functorch's transforms dispatch through (torch 2.14.1 registers aten::to_dense
# there the same way, torch/_subclasses/fake_impls.py). Kept alive with the module: a
# Library's registrations end when it is collected.
_KEY = "FuncTorchDynamicLayerFrontMode"
_LIBRARY = torch.library.Library("torch_ext", "IMPL")


def _op(name: str) -> torch._ops.OpOverload:
    return getattr(ops, name).default


# --- the Functions and kernels -------------------------------------------------------------


def _function(name: str, rule: Rule) -> type[torch.autograd.Function]:
    """The autograd.Function of op `name` under functorch, driven by `rule`."""
    op = _op(name)

    def forward(*args: Any) -> Any:
        return op(*args)  # below the last level: the C++ kernel

    def setup_context(ctx: Any, inputs: Args, output: Any) -> None:
        saved = [inputs[i] for i in rule.inputs]
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)
        ctx.args = [None if i in rule.inputs else a for i, a in enumerate(inputs)]

    def saved_args(ctx: Any) -> list[Any]:
        args = list(ctx.args)
        for i, t in zip(rule.inputs, ctx.saved_tensors):
            args[i] = t
        return args

    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        needs = [ctx.needs_input_grad[i] for i in rule.inputs]
        out: list[Tensor | None] = [None] * len(ctx.args)
        for i, need, grad in zip(rule.inputs, needs, rule.vjp(saved_args(ctx), grads, needs)):
            out[i] = grad if need else None
        return tuple(out)

    def jvp(ctx: Any, *tangents: Tensor | None) -> Any:
        return rule.jvp(saved_args(ctx), [tangents[i] for i in rule.inputs])

    def vmap(info: Any, in_dims: InDims, *args: Any) -> tuple[Any, Any]:
        return rule.vmap(op, args, in_dims, info.batch_size)

    methods = {"forward": forward, "setup_context": setup_context, "backward": backward}
    methods |= {"jvp": jvp, "vmap": vmap}
    class_name = "".join(part.title() for part in name.split("_"))
    return type(
        class_name, (torch.autograd.Function,), {k: staticmethod(v) for k, v in methods.items()}
    )


def _positional(op: torch._ops.OpOverload, args: Args, kwargs: dict[str, Any]) -> list[Any]:
    """A call's positional arguments in schema order, defaults filled in (a Python kernel
    gets only those the caller gave). Keyword-only ones (save_output, a memory choice of the
    eager autograd) are dropped: under a transform the Function keeps what it needs."""
    values = list(args)
    for arg in op._schema.arguments[len(args) :]:
        if arg.kwarg_only:
            break
        values.append(kwargs[arg.name] if arg.name in kwargs else arg.default_value)
    return values


def _functionalized(
    op: torch._ops.OpOverload, interpreter: FunctionalizeInterpreter, args: Args
) -> Any:
    """The op with functionalize on top, which has no rule for autograd.Functions (it
    raises NYI): on the values of this level's functional tensors, the outputs wrapped back,
    as functorch treats an op that mutates nothing."""
    level = interpreter.level()

    def unwrap(a: Any) -> Any:
        if not (isinstance(a, Tensor) and torch._is_functional_tensor(a)):
            return a
        if maybe_get_level(a) != level:
            return a
        torch._sync(a)
        return _unwrap_functional_tensor(a, interpreter.functionalize_add_back_views())

    unwrapped = [unwrap(a) for a in args]
    with interpreter.lower():
        out = op(*unwrapped)
    return pytree.tree_map_only(Tensor, lambda t: _wrap_functional_tensor(t, level), out)


def _batched(
    op: torch._ops.OpOverload, rule: Rule, interpreter: VmapInterpreter, args: Args
) -> Any:
    """The op with a vmap level on top: its batching rule, straight away. The same as
    functorch makes of the Function's vmap staticmethod (custom_function_call_vmap_helper),
    without that path's pytree passes, which cost several times the op on small inputs."""
    level = interpreter.level()
    unwrapped, in_dims = zip(
        *(_unwrap_batched(a, level) if isinstance(a, Tensor) else (a, None) for a in args)
    )
    with interpreter.lower():
        if all(d is None for d in in_dims):  # nothing batched at this level
            return op(*unwrapped)
        out, out_dims = rule.vmap(op, unwrapped, in_dims, interpreter.batch_size())
    if isinstance(out, Tensor):
        return _add_batch_dim(out, out_dims, level)
    return tuple(_add_batch_dim(t, d, level) for t, d in zip(out, out_dims))


def _kernel(name: str, rule: Rule) -> Callable[..., Any]:
    """Op `name`'s kernel at the transforms' key: the top transform decides the route."""
    op, function = _op(name), _function(name, rule)

    def kernel(*args: Any, **kwargs: Any) -> Any:
        # Tensors of exited grad levels (vjp_fn runs after vjp's level ends) unwrapped, as
        # functorch's own dispatch does before any rule (pyfunctorch.dispatch_functorch).
        full = [
            unwrap_if_dead(a) if isinstance(a, Tensor) else a for a in _positional(op, args, kwargs)
        ]
        interpreter = retrieve_current_functorch_interpreter()
        if isinstance(interpreter, VmapInterpreter):
            return _batched(op, rule, interpreter, full)
        if isinstance(interpreter, FunctionalizeInterpreter):
            if name in COUNTED:
                raise counted_refusal(name, "functionalize")
            return _functionalized(op, interpreter, full)
        return function.apply(*full)  # grad, jvp: functorch runs the Function level by level

    return kernel


def _in_place_kernel(name: str, out_of_place: str) -> Callable[..., Any]:
    """An in-place op under a transform: its out-of-place op on a copy (which the
    Function may keep for backward), copied back with copy_, which every transform
    knows how to run on its tensors."""
    op, base = _op(name), _op(out_of_place)

    def kernel(*args: Any, **kwargs: Any) -> Tensor:
        self, *params = _positional(op, args, kwargs)
        return self.copy_(base(self.clone(), *params))

    return kernel


def _register() -> None:
    for name, rule in RULES.items():
        _LIBRARY.impl(name, _kernel(name, rule), _KEY)
    for name, out_of_place in IN_PLACE.items():
        _LIBRARY.impl(name, _in_place_kernel(name, out_of_place), _KEY)


_register()
