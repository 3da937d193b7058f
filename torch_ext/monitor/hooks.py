"""The hooks a monitor puts on a model's activation modules: a forward pre-hook that counts a
module's input (and, with ``tau=``, a forward hook that sums its output's ``|h|`` per unit),
or, on a torch_ext.nn module, a counter its own kernel counts with (one pass). They hold the
monitor's CallSiteTable weakly: a monitor dropped without remove() leaves hooks that count
nothing."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .counting import Hook
from .sites import CallSites, CallSiteTable, Counting

__all__ = ["AbsSumHook", "CountingHook", "FusedCounter", "count", "counter_owner"]


def count(z: Tensor, counting: Counting) -> None:
    """count_active_ of a call's input into its layer."""
    torch.ops.torch_ext.count_active_(
        z.detach(), counting.counts, counting.unit_dim, counting.threshold
    )


def add_abs_sums(h: Any, z_shape: torch.Size, counting: Counting) -> bool:
    """abs_sum_ of a call's output into its layer's sums (ReDo's score); False when the
    output is not shaped as the input (not an elementwise activation: nothing is summed)."""
    if not isinstance(h, Tensor) or h.shape != z_shape:
        return False
    # After the module's call has ended (a forward hook): unseen by torch-function modes,
    # such as the link tracer's, to which h.detach() would be a use of the layer's output.
    with torch._C.DisableTorchFunction():
        torch.ops.torch_ext.abs_sum_(h.detach(), counting.abs_sums, counting.unit_dim)
    return True


def no_counter() -> None:
    return None


class CountingHook(Hook):
    """Forward pre-hook counting a monitored module's input (before an in-place activation
    overwrites it) into the layer of its call site. Once its monitor is gone (dropped
    without remove()), it removes itself at the module's next call."""

    def __init__(self, table: CallSiteTable, sites: CallSites) -> None:
        self._table = weakref.ref(table)
        self.sites = sites
        self.handle: torch.utils.hooks.RemovableHandle | None = None  # set by the monitor
        # This call's layer and input shape, for the AbsSumHook that runs after the forward.
        self.pending: tuple[Counting, torch.Size] | None = None

    def __call__(self, module: torch.nn.Module, args: tuple) -> None:
        table = self._table()
        if table is None and self.handle is not None:
            self.handle.remove()  # _call_impl iterates over a copy of the hooks: safe here
            self.handle = None
        if table is None or module is not self.sites.module:
            return
        layer = table.call_site(self.sites)  # every call takes a site, counted or not
        prepared = table.counting_args(layer, module, args[0]) if args else None
        if prepared is not None:
            count(args[0], prepared)
        sums = prepared is not None and prepared.abs_sums is not None
        self.pending = (prepared, args[0].shape) if sums else None


class AbsSumHook(Hook):
    """Forward hook (with ``tau=``) adding the output's ``|h|`` per unit to the layer its
    :class:`CountingHook` counted this call into: a pass over h, as the counting was one
    over z (an in-place activation has overwritten z with h by now)."""

    def __init__(self, counting_hook: CountingHook, table: CallSiteTable) -> None:
        self._counting_hook = counting_hook
        self._table = weakref.ref(table)
        self.handle: torch.utils.hooks.RemovableHandle | None = None

    def __call__(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        pending, self._counting_hook.pending = self._counting_hook.pending, None
        table = self._table()
        if pending is None or table is None:
            return
        counting, z_shape = pending
        if not add_abs_sums(output, z_shape, counting):
            table.unsummed(self._counting_hook.sites.name)


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

    def counting_args(self, module: torch.nn.Module, z: Tensor) -> Counting | None:
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
