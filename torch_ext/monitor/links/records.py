"""What a traced or watched forward records (tensor values, operations, module calls), what
the tracer learns from it (a Link per call site, a Use per forward, the Reader layers), the
LinkBook the monitor keeps, and the autograd-graph checks that find uses the trace did not
see."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import Tensor

from .layout import PassThrough, UnitLayout


# --- what a traced forward records ---------------------------------------------------------
class Value:
    """A tensor made by a traced module call (or by an operation keeping its units apart from
    one): who made it and who used it. Held by weak reference: CPython reuses the id() of a
    freed tensor, so an id alone can name another."""

    __slots__ = ("ref", "producer", "consumers", "returned", "via", "mutations", "grad_fn")

    def __init__(self, tensor: Tensor, producer: Call, via: PassThrough | None = None) -> None:
        self.ref = weakref.ref(tensor)
        self.grad_fn = tensor.grad_fn  # its node when made: in-place uses later replace it
        self.producer = producer
        self.via = via  # the operation that made it from its producer's output, if any
        self.consumers: list[Call | Value | Op] = []
        self.mutations: list[Op] = []  # in-place operations on it outside traced modules
        self.returned = False  # among the model's outputs


@dataclass(frozen=True)
class Op:
    """An operation outside the traced modules that used a value."""

    name: str
    residual: bool = False  # an addition: the value flows into a sum
    keeps: PassThrough | None = None  # for an in-place one: what it does to the units
    grad_fn: Any = field(default=None, compare=False)  # the autograd node of its result

    def __str__(self) -> str:
        return self.name


class Call:
    """One call of a Linear/Conv, norm or monitored module in a traced or watched forward."""

    __slots__ = (
        "name",
        "module",
        "index",
        "traced",
        "input",
        "input_ndim",
        "output",
        "units",
        "unit_dim",
    )

    def __init__(self, name: str, module: torch.nn.Module, index: int, traced: bool) -> None:
        self.name = name
        self.module = module
        self.index = index  # among the module's calls in this forward: its call site
        self.traced = traced  # False inside regions the tracer cannot see (see _LinkTracer)
        self.input: Value | None = None  # the traced value it received as its input
        self.input_ndim = 0
        self.output: Value | None = None
        self.units = -1  # of a monitored module: its unit count and (non-negative) unit dim
        self.unit_dim = -1


@dataclass(frozen=True)
class Reader:
    """A layer reading a monitored layer's units, and where they lie in its input."""

    name: str
    module: weakref.ref
    layout: UnitLayout
    keeps_constant: bool  # a dead unit's constant output reaches it as that constant
    # A max pool on the way: what reaches it is no longer the units' mean (a mean bound on
    # their output does not carry over).
    max_pooled: bool = False
    # A gate on the way (``act(gate(x)) * up(x)``, Llama's MLP): what reaches it is the units'
    # output times another branch's, bounded by neither their peak nor their mean.
    gated: bool = False
    # The most the way scales the units' values (dropout in training: 1/(1-p)).
    scale: float = 1.0
    # An Lp pool on the way sums its window: no bound from the units' own values carries.
    unbounded: bool = False


@dataclass
class Link:
    """The producer [-> norm] -> activation -> readers chain around one monitored call site,
    or why there is none. Modules are held by weak reference with the name each had in the
    model, so a module replaced since (``model[2] = nn.Linear(...)``) is told from the one
    seen. `inexact` says what would change the network's function if the units were
    revived (a residual addition reading them, a norm mixing them with other units)."""

    producer: tuple[str, weakref.ref] | None = None
    norm: tuple[str, weakref.ref] | None = None
    readers: list[Reader] = field(default_factory=list)
    activation: weakref.ref | None = None
    units: int = 0
    unit_dim: int = -1
    input_ndim: int = 0
    inexact: list[str] = field(default_factory=list)
    returned: bool = False  # the model returns its output (or a view of it)
    norm_readers: list[str] = field(default_factory=list)  # norm layers reading it (inexact)
    problem: str | None = None

    def modules(self) -> list[tuple[str, weakref.ref]]:
        chain = [self.producer, self.norm]
        return [m for m in chain if m is not None] + [(r.name, r.module) for r in self.readers]


@dataclass(frozen=True)
class Use:
    """How one forward used a monitored layer, seen from module calls alone: which module fed
    it, which read its output, how often it ran, whether its output was returned. Links are
    traced in one forward; another forward using the layer differently (another head of a
    multi-task model) makes them incomplete."""

    calls: int
    producer: str | None
    readers: tuple[str, ...]
    returned: bool
    outside: bool = False  # called on its own, where no forward of the model is watched

    def __str__(self) -> str:
        if self.outside:
            return "called outside a forward of the whole model, where its readers go unseen"
        parts = [
            f"fed by '{self.producer}'" if self.producer else "fed by no traced module",
            f"read by {list(self.readers)}",
        ]
        if self.calls > 1:
            parts.append(f"called {self.calls} times")
        if self.returned:
            parts.append("returned")
        return ", ".join(parts)


OUTSIDE = Use(calls=1, producer=None, readers=(), returned=False, outside=True)


def distinct(uses: list[Any]) -> list[Any]:
    """`uses` without repeats (a reader is noted by its call and by the operation inside it),
    in order."""
    seen: set[int] = set()
    return [u for u in uses if id(u) not in seen and not seen.add(id(u))]


_IN_PLACE_OPERATORS = {
    f"__i{op}__"
    for op in (
        "add",
        "sub",
        "mul",
        "truediv",
        "floordiv",
        "mod",
        "pow",
        "and",
        "or",
        "xor",
        "lshift",
        "rshift",
        "matmul",
    )
}


def in_place(name: str) -> bool:
    return (name.endswith("_") and not name.endswith("__")) or name in _IN_PLACE_OPERATORS


def tensors_in(output: Any, depth: int = 3) -> Iterator[Tensor]:
    """The tensors a forward returned: in containers pytree knows, and in the fields of
    dataclasses and plain objects (a model output class), a few levels deep."""
    for leaf in pytree.tree_leaves(output):
        if isinstance(leaf, Tensor):
            yield leaf
        elif depth > 0 and dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
            yield from tensors_in(
                [getattr(leaf, f.name) for f in dataclasses.fields(leaf)], depth - 1
            )
        elif (
            depth > 0
            and hasattr(leaf, "__dict__")
            and not isinstance(leaf, (type, torch.nn.Module))
        ):
            yield from tensors_in(list(vars(leaf).values()), depth - 1)


def graph_users(outputs: list[Tensor]) -> dict[Any, list[Any]] | None:
    """For every autograd node the forward's outputs depend on, the nodes that take its
    result as an input; None when there is no graph (a forward without grad)."""
    stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
    if not stack:
        return None
    users: dict[Any, list[Any]] = {}
    seen: set[Any] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for below, _ in node.next_functions:
            if below is not None:
                users.setdefault(below, []).append(node)
                stack.append(below)
    return users


def _recorded_nodes(value: Value) -> Iterator[Any]:
    """The autograd nodes of what the trace saw use `value`: its consumers' results, its
    in-place changes, recursively through operations that keep units apart."""
    for use in value.consumers:
        if isinstance(use, Value):
            yield use.grad_fn
            yield from _recorded_nodes(use)
        elif isinstance(use, Op):
            yield use.grad_fn
        elif use.output is not None:
            yield use.output.grad_fn
    for op in value.mutations:
        yield op.grad_fn


def unseen_users(value: Value | None, users: dict[Any, list[Any]] | None) -> list[Any]:
    """The autograd nodes using `value` that no recorded use explains: a recorded use's
    result depends on them without going through `value` (a reader's padding, views and
    copies are several nodes below its output)."""
    if value is None or users is None or value.grad_fn is None:
        return []
    explained: set[Any] = set()
    stack = [node for node in _recorded_nodes(value) if node is not None]
    while stack:
        node = stack.pop()
        if node is value.grad_fn or node in explained:
            continue
        explained.add(node)
        stack += [below for below, _ in node.next_functions if below is not None]
    return [node for node in users.get(value.grad_fn, []) if node not in explained]


# --- what the forwards showed --------------------------------------------------------------
class LinkBook:
    """What the watched forwards showed, kept by the monitor across attach and remove: the
    links traced in the first training forward (by layer name), whether one was traced, and
    the distinct ways each forward since used each layer (a few: one that the links do not
    cover is enough for revive to refuse the layer)."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self.traced = False
        self.uses: dict[str, list[Use]] = {}

    def note_forward(self, uses: dict[str, Use], links: dict[str, Link] | None) -> None:
        """How a forward used each module it called, and, if it was traced, its links."""
        for name, use in uses.items():
            seen = self.uses.setdefault(name, [])
            if use not in seen and len(seen) < 8:
                seen.append(use)
        if links is not None:
            self.links, self.traced = links, True

    def note_outside_call(self, module_name: str) -> None:
        """A call of a monitored module outside a forward of the model (a submodule called
        on its own): its readers there go unseen."""
        self.note_forward({module_name: OUTSIDE}, None)
