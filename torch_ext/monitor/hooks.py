"""The hooks a monitor puts on a model's activation modules: a forward pre-hook that counts a
module's input, or, on a torch_ext.nn module, a counter its own kernel counts with (one
pass). Both hold the monitor's CallSiteTable weakly: a monitor dropped without remove()
leaves hooks that count nothing."""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch import Tensor

from .counting import Hook
from .sites import CallSites, CallSiteTable

__all__ = ["CountingHook", "FusedCounter", "counter_owner"]


def no_counter() -> None:
    return None


class CountingHook(Hook):
    """Forward pre-hook counting a monitored module's input (before an in-place activation
    overwrites it) into the layer of its call site. Once its monitor is gone (dropped
    without remove()), it removes itself at the module's next call."""

    def __init__(self, table: CallSiteTable, sites: CallSites) -> None:
        self._table = weakref.ref(table)
        self._sites = sites
        self.handle: torch.utils.hooks.RemovableHandle | None = None  # set by the monitor

    def __call__(self, module: torch.nn.Module, args: tuple) -> None:
        table = self._table()
        if table is None and self.handle is not None:
            self.handle.remove()  # _call_impl iterates over a copy of the hooks: safe here
            self.handle = None
        if table is None or module is not self._sites.module:
            return
        layer = table.call_site(self._sites)  # every call takes a site, counted or not
        prepared = table.counting_args(layer, module, args[0]) if args else None
        if prepared is not None:
            torch.ops.torch_ext.count_active_(args[0].detach(), *prepared)


class FusedCounter:
    """Set on a torch_ext.nn module as ``counter``: its forward then runs the counted op,
    the activation and the counting in one pass (see torch_ext.nn.modules.CountedActivation),
    into the counts of its call site. A copy or pickle of the module gets ``None`` instead
    (see :class:`~torch_ext.monitor.counting.Hook`)."""

    def __init__(self, table: CallSiteTable, sites: CallSites) -> None:
        self._table = weakref.ref(table)
        self._sites = sites

    def __reduce__(self) -> tuple[Callable[[], None], tuple]:
        return no_counter, ()

    def owner(self) -> CallSiteTable | None:
        """The call-site table this counter counts into, while its monitor lives."""
        return self._table()

    def counting_args(
        self, module: torch.nn.Module, z: Tensor
    ) -> tuple[Tensor, int, Tensor] | None:
        table = self._table()
        if table is None or module is not self._sites.module:
            return None
        return table.counting_args(table.call_site(self._sites), module, z)


def counter_owner(module: torch.nn.Module) -> CallSiteTable | None:
    """The live call-site table (of a monitor) counting inside `module`'s kernel, or None
    when its slot is free (never set, a copy's None, or left by a monitor dropped without
    remove())."""
    counter = vars(module).get("counter")
    return counter.owner() if isinstance(counter, FusedCounter) else None
