"""What runs now in a watched model, one small service per monitor, in the spirit of
PyTorch's ``torch/utils/module_tracker.py``: the model's outer eager forwards (their
index, nesting, whether one is running now, whether it failed), told to subscribers (the
link tracer, the functional watch, and each module call's end to those that want it), read
by counting to number call sites; the module of the model whose code runs now (the
functional watch names its calls by it); and which layer made a tensor in the forward
running now, directly or through the autograd graph's elementwise steps (counting reads an
activation's units along a Linear's last dim, a convolution's dim 1).

A forward of the model called inside its own forward is part of the outer one; a forward
under ``torch.compile`` or recomputed by activation checkpointing during backward is not
watched (compiled ones are counted); one cut short (KeyboardInterrupt skips the
always-called hook that would end it) is ended as failed when the next one begins."""

from __future__ import annotations

import sys
import weakref
from typing import Any, Protocol

import torch

from .counting import Hook, inside_forward_of, recomputing, unfollowed
from .graph_units import unit_dim_in_graph
from .layer_kinds import NORM_LAYERS, WEIGHTED_LAYERS, features_last

__all__ = ["ForwardSubscriber", "ForwardTracker"]


class ForwardSubscriber(Protocol):
    def forward_began(self, model: torch.nn.Module) -> None: ...

    def forward_ended(self, output: Any, failed: bool) -> None: ...

    # Each module call of the forward, at its end (also when it raised).
    def module_exited(self, module: torch.nn.Module, args: tuple, output: Any) -> None: ...


class _Begin(Hook):
    def __init__(self, tracker: ForwardTracker) -> None:
        self._tracker = tracker

    def __call__(self, module: torch.nn.Module, args: tuple) -> None:
        self._tracker.begin(module)


class _End(Hook):
    def __init__(self, tracker: ForwardTracker) -> None:
        self._tracker = tracker

    def __call__(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        self._tracker.end(output)


class ForwardTracker:
    """The outer eager forwards of `model`, from a forward pre-hook (run before the model's
    other pre-hooks) and an always-called forward hook, while `owner` (the monitor) lives.

    Attributes:
        forward_index: how many outer eager forwards have begun (call sites are numbered
            afresh in each).
        in_forward: whether one is running now.
        compiled_forwards: forwards that began under ``torch.compile`` (not watched).
    """

    def __init__(self, model: torch.nn.Module, owner: object) -> None:
        # The monitor, weakly: one dropped without remove() leaves no hooks working for it.
        self._owner = weakref.ref(owner)
        self._model = weakref.ref(model)
        self._names: dict[int, tuple[torch.nn.Module, str]] | None = None  # by id(), lazily
        self.forward_index = 0
        self.in_forward = False
        self.compiled_forwards = 0
        self._depth = 0  # calls of the model inside its own forward
        # The layer that made each weighted or norm layer's output of the forward running
        # now, with its input, by id(): (the output, weakly; the layer; its input, weakly).
        self._outputs: dict[int, tuple[weakref.ref, torch.nn.Module, weakref.ref | None]] = {}
        # The unit dim of each of those outputs (unit_dim), with its shape, by its autograd
        # node: read when the tensor itself may be gone (a dropout kept no copy).
        self._output_nodes: dict[Any, tuple[int | None, torch.Size]] = {}
        self._module_hook: torch.utils.hooks.RemovableHandle | None = None
        self._outer_exception: BaseException | None = None
        self._subscribers: list[ForwardSubscriber] = []
        self._handles = [
            model.register_forward_pre_hook(_Begin(self), prepend=True),
            model.register_forward_hook(_End(self), always_call=True),
        ]

    def running_module(self) -> tuple[str, torch.nn.Module] | None:
        """The module of the model whose method is running innermost (its forward, or a
        method it calls), with its name; None outside the model's modules. Found from the
        Python frames when asked (at an activation call), not by a hook on every module
        call. Call it from the function that wants to know (its caller's frames are
        searched)."""
        names = self._module_names()
        frame = sys._getframe(2)
        while frame is not None:
            owner = frame.f_locals.get("self")
            known = names.get(id(owner)) if isinstance(owner, torch.nn.Module) else None
            if known is not None and known[0] is owner:
                return known[1], owner
            frame = frame.f_back
        return None

    def _module_names(self) -> dict[int, tuple[torch.nn.Module, str]]:
        if self._names is None:
            model = self._model()
            modules = model.named_modules() if model is not None else ()
            self._names = {id(module): (module, name) for name, module in modules}
        return self._names

    def subscribe(self, subscriber: ForwardSubscriber, *, outermost: bool = False) -> None:
        """Tell `subscriber` each forward's beginning (in subscription order; `outermost`:
        first) and end (in the reverse order), as nested contexts are entered and left."""
        if outermost:
            self._subscribers.insert(0, subscriber)
        else:
            self._subscribers.append(subscriber)

    def close(self) -> None:
        self._finish(None, failed=True)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._subscribers.clear()

    def begin(self, model: torch.nn.Module) -> None:
        if self._owner() is None:
            self.close()
            return
        if self.in_forward and inside_forward_of(model):
            self._depth += 1  # the model called inside its own forward: part of this one
            return
        self._finish(None, failed=True)  # a forward cut short
        if torch.compiler.is_compiling():
            self.compiled_forwards += 1  # replayed by Dynamo on every compiled call
            return
        if unfollowed() or recomputing():
            return
        self.in_forward = True
        self.forward_index += 1
        # Every module's calls, by one global hook while the forward runs (a hook on each
        # module would be copied with the model).
        self._module_hook = torch.nn.modules.module.register_module_forward_hook(
            self._module_exit, always_call=True
        )
        # A forward run inside an `except` block sees that exception throughout; its own
        # failure would be another one.
        self._outer_exception = sys.exc_info()[1]
        for subscriber in list(self._subscribers):
            subscriber.forward_began(model)

    def end(self, output: Any) -> None:
        if not self.in_forward:
            return
        if self._depth:
            self._depth -= 1
            return
        self._finish(output, failed=sys.exc_info()[1] is not self._outer_exception)

    def _finish(self, output: Any, failed: bool) -> None:
        if not self.in_forward:
            return
        self.in_forward, self._depth, self._outer_exception = False, 0, None
        if self._module_hook is not None:
            self._module_hook.remove()
            self._module_hook = None
        for subscriber in reversed(list(self._subscribers)):
            subscriber.forward_ended(output, failed)
        self._outputs, self._output_nodes = {}, {}

    def _module_exit(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if torch.compiler.is_compiling():
            return
        if isinstance(output, torch.Tensor) and _makes_features(module):
            source = args[0] if args and isinstance(args[0], torch.Tensor) else None
            self._outputs[id(output)] = (
                weakref.ref(output),
                module,
                weakref.ref(source) if source is not None else None,
            )
            if output.grad_fn is not None:
                self._output_nodes[output.grad_fn] = (self._feeder_unit_dim(output), output.shape)
        for subscriber in list(self._subscribers):
            exited = getattr(subscriber, "module_exited", None)
            if exited is not None:
                exited(module, args, output)

    def feeder(self, z: torch.Tensor) -> torch.nn.Module | None:
        """The module whose output `z` is in the forward running now, looking through a norm
        layer to the module that made its input (a Linear -> LayerNorm -> activation is fed
        by the Linear); None outside a forward, or for a tensor no module returned (a
        functional op's result)."""
        made = self._made(z)
        if made is not None and isinstance(made[0], NORM_LAYERS):
            made = self._made(made[1]) if made[1] is not None else None
        return made[0] if made is not None else None

    def unit_dim(self, z: torch.Tensor) -> int | None:
        """The dim of an activation's input `z`, in the forward running now, that holds its
        units, as its makers tell: -1 (the last) after a Linear or a matrix product with a
        weight, 1 after a convolution, moved by a permute or transpose between; None when
        nothing tells (a model's input, an op that mixes dims) or two makers disagree.
        Besides the module that returned `z` (:meth:`feeder`), the autograd graph is
        followed back (:mod:`.graph_units`: elementwise steps, norms, slices, pools,
        permutes) to the layers that made their inputs."""
        dim = self._feeder_unit_dim(z)
        if dim is not None or not self.in_forward:
            return dim
        dim = unit_dim_in_graph(z, self._output_nodes.get)
        return -1 if dim is not None and dim == z.dim() - 1 else dim

    def _feeder_unit_dim(self, z: torch.Tensor) -> int | None:
        made = self.feeder(z)
        if made is None:
            return None
        return -1 if features_last(made) else 1

    def _made(self, tensor: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor | None] | None:
        entry = self._outputs.get(id(tensor)) if self.in_forward else None
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1], entry[2]() if entry[2] is not None else None


def _makes_features(module: torch.nn.Module) -> bool:
    """A layer whose output an activation may count units of (a weighted layer, a Linear
    under another name, a norm layer): a container returning it again does not make it."""
    return isinstance(module, WEIGHTED_LAYERS + NORM_LAYERS) or features_last(module)
