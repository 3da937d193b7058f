"""Functional activations for the monitor (``DeadNeuronMonitor(model, functional=True)``): a
torch-function mode, entered around each eager forward of the watched model, that counts the
supported activation functions a module's forward calls (``F.relu``, ``torch.relu``,
``x.relu()``, ``F.leaky_relu``, ``F.elu``, ``F.selu``, ``F.celu``, ``F.prelu``,
``torch.ops.torch_ext.*`` and their in-place forms). A call is named by the module whose
forward made it plus the function and an index: ``block.0:relu#0``."""

from __future__ import annotations

import logging
import weakref
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from .counting import FUNCTIONS, function_kind
from .hooks import add_abs_sums, count
from .names import functional_name
from .rules import ActivationRule, NoRule, rule_for_function
from .selection import counted_by_default, ruleless_activation
from .sites import CallSiteTable, Counting
from .tracker import ForwardTracker

logger = logging.getLogger("torch_ext.monitor")


class FunctionalWatch(TorchFunctionMode):
    """Counts functional activation calls in the watched model's eager forwards.

    Entered when a forward of the model begins and left when it ends (the monitor's
    :class:`~torch_ext.monitor.tracker.ForwardTracker` tells it). The module
    whose forward made a call is found only when a supported function is called, from the
    Python frames running (the innermost method of one of the model's modules): no hook on
    every module call. Calls made inside an activation module's own forward (``nn.ReLU``
    calls ``F.relu``) or a monitored module's are left to the module's counting.
    """

    def __init__(self, table: CallSiteTable, tracker: ForwardTracker, monitored: set[int]) -> None:
        super().__init__()
        self._table = weakref.ref(table)
        self.monitored = monitored  # id() of the monitored modules, which count themselves
        self._tracker = tracker
        self._active = False
        self._indices: dict[tuple[str, str], int] = {}
        self._kinds: dict[Any, str | None] = {}  # function -> the activation it computes
        self.skipped_calls: set[str] = set()  # call sites with calls of another width

    def close(self) -> None:
        self._leave()

    # Each forward (a subscriber of the monitor's ForwardTracker).
    def forward_began(self, model: torch.nn.Module) -> None:
        table = self._table()
        if table is None or not (model.training or table.count_eval):
            return
        self._active, self._indices = True, {}
        self.__enter__()

    def forward_ended(self, output: Any, failed: bool) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._active:
            self._active = False
            self.__exit__(None, None, None)

    def _counts_in(self, module: torch.nn.Module) -> bool:
        """Whether a functional activation called in `module`'s forward is counted as its own
        layer: not inside an activation module (``nn.ReLU`` calls ``F.relu``) nor inside a
        monitored module, which count themselves."""
        if counted_by_default(module) or ruleless_activation(module):
            return False
        return id(module) not in self.monitored

    def _kind_of(self, func: Any) -> str | None:
        try:
            return self._kinds[func]
        except KeyError:
            kind = self._kinds[func] = function_kind(func)
            return kind
        except TypeError:  # not hashable
            return function_kind(func)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if torch.compiler.is_compiling():  # a compiled submodule, Dynamo tracing: not counted
            return func(*args, **kwargs)
        kind = self._kind_of(func)
        counted = None
        if kind is not None and args and isinstance(args[0], Tensor):
            counted = self._count(kind, args, kwargs)
        output = func(*args, **kwargs)
        if counted is not None:  # tau=: the output's |h| per unit (after an in-place one)
            name, counting, z_shape = counted
            with torch._C.DisableTorchFunction():
                if not add_abs_sums(output, z_shape, counting):
                    self._table().unsummed(name)
        return output

    def _count(
        self, kind: str, args: tuple, kwargs: dict
    ) -> tuple[str, Counting, torch.Size] | None:
        """Counts a call's input; returns what its output's |h| is summed into (tau=)."""
        table = self._table()
        caller = self._tracker.running_module()
        if table is None or caller is None or not self._counts_in(caller[1]):
            return None
        module_name, module = caller
        key = (module_name, kind)
        index = self._indices.get(key, 0)
        self._indices[key] = index + 1
        name = functional_name(module_name, kind, index)
        try:
            param = (
                FUNCTIONS[kind][0](args, kwargs)
                if kind in FUNCTIONS
                else _checked(rule_for_function(kind, args, kwargs), table.grad_eps)
            )
        except NoRule as error:
            self._skip_once(name, error)
            return None
        layer = table.functional_layer(name, kind, param)
        z = args[0]
        with torch._C.DisableTorchFunction():  # the counting's own ops are not the model's
            try:
                prepared = table.counting_args(layer, module, z)
            except ValueError as error:  # another width: no unit_dim= can name this site
                self._skip_once(layer.name, error)
                return None
            if prepared is None:
                return None
            count(z, prepared)
        return None if prepared.abs_sums is None else (name, prepared, z.shape)

    def _skip_once(self, name: str, error: Exception) -> None:
        """A functional call site whose width changed (a forward taking another path shifts
        the indices): its calls that do not fit are left uncounted, said once, rather than
        failing the model's forward."""
        if name not in self.skipped_calls:
            self.skipped_calls.add(name)
            logger.warning("%s; calls that do not fit are not counted", error)


def _checked(rule: ActivationRule, grad_eps: float) -> ActivationRule:
    """`rule` once its alive set is known to be countable for `grad_eps` (else NoRule)."""
    rule.interval(grad_eps)
    return rule
