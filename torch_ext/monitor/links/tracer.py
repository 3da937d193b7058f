"""The link tracer: a torch-function mode and module hooks that learn, from the model's own
forward, which layers feed and read each monitored call site (see the package's doc)."""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from ..names import site_name
from ..sites import CallSiteTable
from .layers import (
    NORM_LAYERS,
    feature_dim,
    features_last,
    in_features,
    is_weighted,
    out_features,
)
from .layout import (
    GATE_OPS,
    METADATA_OPS,
    RESIDUAL_OPS,
    PassThrough,
    UnitLayout,
    gate_pass_through,
    pass_through,
)
from .records import (
    Call,
    Link,
    LinkBook,
    Op,
    Reader,
    Use,
    Value,
    distinct,
    graph_users,
    in_place,
    tensors_in,
    unseen_users,
)

__all__ = ["LinkTracer"]


# --- the tracer ----------------------------------------------------------------------------
class LinkTracer(TorchFunctionMode):
    """Learns which Linear/Conv (and norm) feeds each monitored call site and which layers
    read its output, and whether that is all, by watching the model's eager forwards while
    the monitor is attached.

    The first training forward is *traced*: module hooks record each call's input and output
    tensors, and this torch-function mode, active for that one forward, records every
    operation that uses them. Operations that keep units apart (pooling, dropout, flatten,
    views) are followed to the layers behind them; an addition is a residual use; any other
    operation (a permute, a concatenation, a second use) refuses the link rather than get it
    wrong. Every later eager forward (training or eval) is *watched* with the module hooks
    alone, which is cheap: it notes how each monitored call site was used (:class:`Use`),
    so a forward that feeds or reads it through other modules than the traced one did (a
    multi-task head) is seen, and revive refuses that layer.

    It reads the monitor's call sites and unit dims from its :class:`CallSiteTable` and
    writes what each forward showed into its :class:`LinkBook`; it holds both weakly.
    """

    def __init__(self, book: LinkBook, table: CallSiteTable, model: torch.nn.Module) -> None:
        super().__init__()
        self._book = weakref.ref(book)  # the monitor's, as the table
        self._table = weakref.ref(table)  # the monitor's: the model's hooks keep this tracer
        # By id(): a module may define __eq__ and so not be hashable.
        self._names = {
            id(module): (module, name)
            for name, module in model.named_modules()
            if is_weighted(module)
            or isinstance(module, NORM_LAYERS)
            or features_last(module)
            or name in table.sites
        }
        self._module_handles: list[torch.utils.hooks.RemovableHandle] = []
        self.active = False
        self._full = False  # this forward is traced (operations too), not only watched
        self._values: dict[int, Value] = {}
        # tensors standing for a traced value under another tensor (see _same_values)
        self._aliases: dict[int, tuple[weakref.ref, Value]] = {}
        self._stack: list[Call] = []
        self._calls: dict[str, list[Call]] = {}
        self._graph_users: dict[Any, list[Any]] | None = None  # of the traced forward

    def close(self) -> None:
        """Drop what was recorded (the forward tracker it subscribes to removes the hooks)."""
        self._finish_trace()

    # The forward being traced or watched (a subscriber of the monitor's ForwardTracker).
    def forward_began(self, model: torch.nn.Module) -> None:
        book = self._book()
        if book is None:  # the monitor was dropped without remove()
            return
        self._finish_trace()
        self.active = True
        self._full = model.training and not book.traced
        self._values, self._aliases, self._stack, self._calls = {}, {}, [], {}
        # Every module call's end comes from the forward tracker (module_exited); a traced
        # forward also needs their starts, by a global pre-hook (a hook on each module would
        # be copied with the model).
        if self._full:
            self._module_handles = [
                torch.nn.modules.module.register_module_forward_pre_hook(self._enter)
            ]
            self.__enter__()

    def forward_ended(self, output: Any, failed: bool) -> None:
        if not self.active:
            return
        book = self._book()
        uses: dict[str, Use] = {}
        links: dict[str, Link] | None = None
        if not failed and book is not None:  # a forward that raised used nothing
            with self._untraced():
                returned = list(tensors_in(output))
                for value in self._values_in(returned):
                    value.returned = True
                uses = self._uses_of()
                if self._full:
                    self._graph_users = graph_users(returned)
                    links = self._links_of()
        self._finish_trace()
        if book is not None and not failed:
            book.note_forward(uses, links)

    def _finish_trace(self) -> None:
        if self.active:
            self.active = False
            if self._full:
                self.__exit__(None, None, None)
        self._full = False
        for handle in self._module_handles:
            handle.remove()
        self._module_handles.clear()
        self._values, self._aliases, self._stack, self._calls = {}, {}, [], {}
        self._graph_users = None

    @staticmethod
    def _untraced() -> AbstractContextManager[Any]:
        """The tracer's own reads of shapes are not uses of the tensors, for this tracer nor
        for another monitor's tracing the same forward."""
        return torch._C.DisableTorchFunction()

    def _tracing_here(self) -> bool:
        # Inside a handler of a torch function (a custom autograd Function, reentrant
        # checkpointing) this mode is switched off: operations there go unseen.
        return self in torch.overrides._get_current_function_mode_stack()

    def _name_of(self, module: torch.nn.Module) -> str | None:
        known = self._names.get(id(module))
        return known[1] if known is not None and known[0] is module else None

    def _enter(self, module: torch.nn.Module, args: tuple) -> None:
        """Start of a module call in the traced forward: the stack tells which call an
        operation runs in. (Inside a compiled submodule Dynamo traces the global hooks: they
        record nothing there, so what it computes is an unknown tensor to the links.)"""
        if torch.compiler.is_compiling():
            return
        name = self._name_of(module)
        if name is None:
            return
        calls = self._calls.setdefault(name, [])
        call = Call(name, module, len(calls), traced=self._tracing_here())
        calls.append(call)
        self._stack.append(call)

    def module_exited(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if not self.active or torch.compiler.is_compiling():
            return
        name = self._name_of(module)
        if name is None:
            return
        call = self._traced_call(module) if self._full else self._watched_call(name, module)
        if call is None:
            return
        source = self._value_of(args[0]) if args else None
        if source is not None:
            source.consumers.append(call)
            call.input = source
        if self._full and args and isinstance(args[0], Tensor):
            with self._untraced():  # shapes, for the links; a watched forward needs none
                self._note_units(call, args[0])
        if isinstance(output, Tensor):
            call.output = Value(output, call)
            self._values[id(output)] = call.output

    def _traced_call(self, module: torch.nn.Module) -> Call | None:
        call = next((c for c in reversed(self._stack) if c.module is module), None)
        if call is not None:
            self._stack.remove(call)
        return call

    def _watched_call(self, name: str, module: torch.nn.Module) -> Call:
        calls = self._calls.setdefault(name, [])
        calls.append(Call(name, module, len(calls), traced=False))
        return calls[-1]

    def _note_units(self, call: Call, z: Tensor) -> None:
        if z.dim() == 0:
            return
        call.input_ndim = z.dim()
        table = self._table()
        if table is not None and call.name in table.sites:
            dim = table.unit_dim_of(table.layer_of_call(call.name, call.index), z)
            if dim is not None and -z.dim() <= dim < z.dim():
                call.unit_dim = dim % z.dim()
                call.units = z.shape[call.unit_dim]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if torch.compiler.is_compiling():  # a compiled submodule: Dynamo traces this mode
            return func(*args, **kwargs)
        values = list(self._values_in((args, kwargs)))
        user = self._stack[-1] if self._stack else None
        result = func(*args, **kwargs)
        if values:
            with self._untraced():
                self._note_uses(func, args, kwargs, result, values, user)
        return result

    def _note_uses(
        self,
        func: Any,
        args: tuple,
        kwargs: dict,
        result: Any,
        values: list[Value],
        user: Call | None,
    ) -> None:
        """Record how `func` used the traced `values`: inside a traced module call, as that
        call's; outside, as a step that keeps units apart, an in-place change, or an
        operation of its own."""
        if self._same_values(values, result):
            return
        if user is not None:
            for value in values:
                value.consumers.append(user)
            return
        name = getattr(func, "__name__", str(func))
        if name == "__get__":  # a property: .shape reads metadata, .T or .data the values
            name = getattr(getattr(func, "__self__", None), "__name__", name)
            if not isinstance(result, Tensor):
                return
        elif name in METADATA_OPS:
            return
        first = self._value_of(args[0]) if args else None
        through = pass_through(func, args, kwargs, result) if first is not None else None
        gated = self._gated_site(name, args, result)
        if gated is not None:  # followed from the monitored side; the other side is used
            first, through = gated, gate_pass_through(name, args, result)
        node = result.grad_fn if isinstance(result, Tensor) else None
        for value in values:
            if value is first and through is not None and result is not args[0]:
                made = Value(result, value.producer, via=through)
                value.consumers.append(made)
                self._values[id(result)] = made
            elif value is first and (in_place(name) or result is args[0]):
                value.mutations.append(
                    Op(name, residual=name in RESIDUAL_OPS, keeps=through, grad_fn=node)
                )
            else:
                value.consumers.append(Op(name, residual=name in RESIDUAL_OPS, grad_fn=node))

    def _gated_site(self, name: str, args: tuple, result: Any) -> Value | None:
        """The operand of a gate (see gate_pass_through) made by a monitored call site, when
        exactly one is."""
        table = self._table()
        if table is None or gate_pass_through(name, args, result) is None:
            return None
        sides = [self._value_of(a) for a in args[:2]]
        monitored = [v for v in sides if v is not None and v.producer.name in table.sites]
        return monitored[0] if len(monitored) == 1 else None

    def _same_values(self, values: list[Value], result: Any) -> bool:
        """Whether `result` is `values` again under other tensors, each exactly aliasing one
        (same memory, shape, strides, dtype): an identity (FSDP2's pre-forward wraps a
        module's inputs in an autograd Function that returns them). Those tensors then stand
        for the same values; nothing used them."""
        outputs = [result] if isinstance(result, Tensor) else result
        if not values or not isinstance(outputs, (tuple, list)) or not outputs:
            return False
        matches = []
        for out in outputs:
            value = next((v for v in values if _aliases(out, v.ref())), None)
            if value is None or out is value.ref():
                return False
            matches.append((out, value))
        if {id(v) for _, v in matches} != {id(v) for v in values}:
            return False
        for out, value in matches:
            self._aliases[id(out)] = (weakref.ref(out), value)
        return True

    def _value_of(self, obj: Any) -> Value | None:
        if not isinstance(obj, Tensor):
            return None
        value = self._values.get(id(obj))
        if value is not None and value.ref() is obj:
            return value
        alias = self._aliases.get(id(obj))
        return alias[1] if alias is not None and alias[0]() is obj else None

    def _values_in(self, tree: Any) -> Iterator[Value]:
        if isinstance(tree, Tensor):
            value = self._value_of(tree)
            if value is not None:
                yield value
        elif isinstance(tree, (tuple, list)):
            for item in tree:
                yield from self._values_in(item)
        elif isinstance(tree, dict):
            for item in tree.values():
                yield from self._values_in(item)

    # Resolution, once the forward is over.
    def _uses_of(self) -> dict[str, Use]:
        """How this forward used each monitored call site it ran, from module calls alone."""
        uses: dict[str, Use] = {}
        table = self._table()
        for name, sites in table.sites.items() if table is not None else ():
            calls = self._calls.get(name, [])
            if sites.merged and calls:
                uses[name] = self._use_of(calls[0], len(calls))
            else:
                uses.update({site_name(name, c.index): self._use_of(c, 1) for c in calls})
        return uses

    @staticmethod
    def _use_of(call: Call, calls: int) -> Use:
        source, output = call.input, call.output
        readers = (
            ()
            if output is None
            else tuple(
                sorted(
                    {c.name for c in output.consumers if isinstance(c, Call) and c.input is output}
                )
            )
        )
        producer = None if source is None or source.via is not None else source.producer.name
        return Use(
            calls=calls,
            producer=producer,
            readers=readers,
            returned=output is not None and output.returned,
        )

    def _links_of(self) -> dict[str, Link]:
        """The link of every monitored call site this forward ran, by layer name."""
        links: dict[str, Link] = {}
        table = self._table()
        for name, sites in table.sites.items() if table is not None else ():
            calls = self._calls.get(name, [])
            if sites.merged and len(calls) > 1:
                links[name] = Link(
                    problem=f"it is called {len(calls)} times in one forward, "
                    "its calls merged into one layer"
                )
                continue
            links.update({site_name(name, c.index): self._link_of(c) for c in calls})
        return links

    def _link_of(self, activation: Call) -> Link:
        units, unit_dim = activation.units, activation.unit_dim
        if unit_dim < 0:
            return Link(problem="its unit dim is out of range for its input")
        link = Link(
            activation=weakref.ref(activation.module),
            units=units,
            unit_dim=unit_dim,
            input_ndim=activation.input_ndim,
        )
        problem = (
            self._producer_chain(activation, link)
            or self._readers_of(activation, link)
            or self._untraced_problem(activation, link)
            or self._unseen_use_problem(activation)
        )
        return Link(problem=problem) if problem is not None else link

    def _producer_chain(self, activation: Call, link: Link) -> str | None:
        """Fill in the producer (and norm) of `link`, or say why they are not plain."""
        source = activation.input
        if source is None or source.via is not None:
            between = (
                f"{source.via.op}"
                if source is not None
                else ("an operation such as a reshape, permute or addition")
            )
            return f"its input is not the output of a Linear/Conv layer ({between} comes between)"
        other = next((op for op in source.mutations if not op.residual), None)
        if other is not None:
            return f"its input is modified in place ({other}) before it is read"
        first = source.producer
        if isinstance(first.module, NORM_LAYERS):
            problem = self._sole_use_problem(first, source, activation) or self._norm_problem(
                first, link
            )
            if problem is not None:
                return problem
            link.norm = (first.name, weakref.ref(first.module))
            source = first.input
            if (
                source is None
                or source.via is not None
                or source.mutations
                or not is_weighted(source.producer.module)
            ):
                return f"its norm layer '{first.name}' is not fed by a Linear/Conv layer alone"
            return self._producer_problem(source.producer, source, first, link)
        if not is_weighted(first.module):
            return (
                f"its input is made by '{first.name}' ({type(first.module).__name__}), not "
                "by a Linear/Conv layer or a norm layer after one"
            )
        return self._producer_problem(first, source, activation, link)

    def _sole_use_problem(self, call: Call, output: Value, user: Call) -> str | None:
        if self._calls_of(call) > 1:
            return f"its feeder '{call.name}' is called {self._calls_of(call)} times in one forward"
        if output.returned or any(c is not user for c in output.consumers):
            return f"the output of its feeder '{call.name}' is also used elsewhere"
        return None

    def _producer_problem(
        self, producer: Call, output: Value, user: Call, link: Link
    ) -> str | None:
        problem = self._sole_use_problem(producer, output, user)
        if problem is not None:
            return problem
        features = out_features(producer.module)
        if features != link.units:
            return (
                f"its feeder '{producer.name}' has {features} output features but the layer "
                f"has {link.units} units"
            )
        dim = feature_dim(producer.module, link.input_ndim)
        if dim != link.unit_dim:
            return (
                f"its units lie along dim {link.unit_dim}, but its feeder '{producer.name}' "
                f"writes features along dim {dim}"
            )
        link.producer = (producer.name, weakref.ref(producer.module))
        return None

    @staticmethod
    def _norm_problem(norm: Call, link: Link) -> str | None:
        """Whether norm layer `norm` has a parameter slice per unit; notes in `link` when it
        normalizes a unit together with others (revived, their outputs change)."""
        module, units, dim, ndim = norm.module, link.units, link.unit_dim, link.input_ndim
        kind = type(module).__name__
        if isinstance(module, torch.nn.LayerNorm):
            first = ndim - len(module.normalized_shape)
            if dim < first:
                return (
                    f"its norm layer '{norm.name}' ({kind}) normalizes the last "
                    f"{len(module.normalized_shape)} dims, not along its units' dim {dim}"
                )
            if math.prod(module.normalized_shape) > 1:
                link.inexact.append(
                    f"'{norm.name}' ({kind}) normalizes the units together: a "
                    "revived unit changes the others' outputs"
                )
            return None
        channels = (
            module.num_channels if isinstance(module, torch.nn.GroupNorm) else (module.num_features)
        )
        if channels != units or dim != (1 if ndim > 1 else 0):
            return (
                f"its norm layer '{norm.name}' ({kind}) normalizes {channels} channels along "
                f"dim 1, not its {units} units along dim {dim}"
            )
        if isinstance(module, torch.nn.GroupNorm) and module.num_groups != channels:
            link.inexact.append(
                f"'{norm.name}' ({kind}) normalizes each unit with the others of "
                "its group: a revived unit changes their outputs"
            )
        return None

    def _readers_of(self, activation: Call, link: Link) -> str | None:
        output = activation.output
        if output is None:
            return "its output is not a tensor"
        problem = self._walk(output, UnitLayout(link.unit_dim), True, link, _Path())
        if problem is None and not link.readers and not link.inexact:
            return "no Linear/Conv layer reads its output"
        return problem

    def _walk(
        self, value: Value, layout: UnitLayout, keeps: bool, link: Link, path: _Path
    ) -> str | None:
        """Follow the units in `value` (at `layout`) to the layers that read them."""
        if value.returned:
            link.returned = True
            link.inexact.append("its output is part of the model's output: revived units change it")
        for op in value.mutations:
            if op.keeps is None:
                return f"its output is modified in place ({op}) before it is read"
            keeps = keeps and op.keeps.keeps_constant
            path = path.after(op.keeps)
        for use in distinct(value.consumers):
            if isinstance(use, Value):
                after = use.via.step(layout)
                problem = (
                    f"its output reaches an operation that mixes units ({after})"
                    if isinstance(after, str)
                    else self._walk(
                        use,
                        after,
                        keeps and use.via.keeps_constant,
                        link,
                        path.after(use.via),
                    )
                )
            elif isinstance(use, Op) and use.residual:
                link.inexact.append(
                    f"its output flows into a residual addition ({use}): "
                    "revived units change that sum"
                )
                problem = None
            elif isinstance(use, Op):
                problem = f"its output is used by {use} outside a Linear/Conv layer"
            else:
                problem = self._reader_problem(use, value, layout, keeps, link, path)
            if problem is not None:
                return problem
        return None

    def _reader_problem(
        self,
        reader: Call,
        value: Value,
        layout: UnitLayout,
        keeps: bool,
        link: Link,
        path: _Path,
    ) -> str | None:
        module, units = reader.module, link.units
        if reader.input is not value:
            return f"'{reader.name}' uses its output but not as its input"
        if isinstance(module, NORM_LAYERS):
            link.norm_readers.append(reader.name)
            link.inexact.append(
                f"its output is read by the norm layer '{reader.name}': revived "
                "units change what it normalizes"
            )
            return None
        if not is_weighted(module):
            return (
                f"its output is read by '{reader.name}' ({type(module).__name__}), not a "
                "Linear/Conv layer"
            )
        if self._calls_of(reader) > 1:
            return (
                f"its reader '{reader.name}' is called {self._calls_of(reader)} times in "
                "one forward"
            )
        if in_features(module) != layout.width(units):
            values = (
                ""
                if layout.width(units) == units
                else (f" ({layout.width(units)} values where it reads them)")
            )
            return (
                f"its reader '{reader.name}' has {in_features(module)} input features but "
                f"the layer has {units} units{values}"
            )
        dim = feature_dim(module, reader.input_ndim)
        if dim != layout.dim:
            return (
                f"its units lie along dim {layout.dim}, but its reader '{reader.name}' reads "
                f"features along dim {dim}"
            )
        if all(r.module() is not module for r in link.readers):
            link.readers.append(
                Reader(
                    reader.name,
                    weakref.ref(module),
                    layout,
                    keeps,
                    path.max_pooled,
                    path.gated,
                    path.scale,
                    path.unbounded,
                )
            )
        return None

    def _unseen_use_problem(self, activation: Call) -> str | None:
        """Whether the autograd graph of the forward shows a use of the chain's tensors that
        the trace did not record: one inside code a torch-function mode cannot see (a
        TorchScript module or function, a C++ extension called directly)."""
        chain = [activation.output, activation.input]
        if (
            activation.input is not None
            and activation.input.producer.input is not None
            and isinstance(activation.input.producer.module, NORM_LAYERS)
        ):
            chain.append(activation.input.producer.input)
        for value in chain:
            unseen = unseen_users(value, self._graph_users)
            if unseen:
                whose = (
                    "its output"
                    if value is activation.output
                    else (f"the output of '{value.producer.name}'")
                )
                return (
                    f"{whose} is also used where operations cannot be traced (the autograd "
                    f"node {unseen[0]}: a TorchScript module or function, or another "
                    "extension)"
                )
        return None

    def _calls_of(self, call: Call) -> int:
        return len(self._calls.get(call.name, []))

    def _untraced_problem(self, activation: Call, link: Link) -> str | None:
        names = {name for name, _ in link.modules()}
        calls = [activation] + [c for name in names for c in self._calls.get(name, [])]
        if all(call.traced for call in calls):
            return None
        return (
            "it runs where operations cannot be traced (inside the handler of a tensor "
            "subclass or another torch-function mode)"
        )


class _Path(NamedTuple):
    """What the way from an activation to a reader went through, so far: a max pool (the
    units' mean no longer bounds what passes), a gate (nor does their peak), an Lp pool
    (nothing of theirs does), and how much it scales their values."""

    max_pooled: bool = False
    gated: bool = False
    unbounded: bool = False
    scale: float = 1.0

    def after(self, via: PassThrough) -> _Path:
        return _Path(
            self.max_pooled or via.op.startswith(("max", "adaptive_max")),
            self.gated or via.op in GATE_OPS,
            self.unbounded or via.op.startswith("lp"),
            self.scale * via.scale,
        )


def _aliases(out: Any, tensor: Tensor | None) -> bool:
    """Whether `out` is a tensor over exactly `tensor`'s elements, as differentiable as it
    (``.data`` and ``detach()`` leave the graph: uses through them are operations of their
    own)."""
    with torch._C.DisableTorchFunction():
        return (
            tensor is not None
            and isinstance(out, Tensor)
            and out.requires_grad == tensor.requires_grad
            and out.dtype == tensor.dtype
            and out.shape == tensor.shape
            and out.stride() == tensor.stride()
            and out.data_ptr() == tensor.data_ptr()
        )
