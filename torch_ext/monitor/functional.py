"""Functional activations for the monitor (``DeadNeuronMonitor(model, functional=True)``): a
torch-function mode, entered around each eager forward of the watched model, that counts the
supported activation functions a module's forward calls (``F.relu``, ``torch.relu``,
``x.relu()``, ``F.leaky_relu``, ``F.elu``, ``F.selu``, ``F.celu``, ``F.prelu``,
``torch.ops.torch_ext.*`` and their in-place forms). A call is named by the module whose
forward made it plus the function and an index: ``block.0:relu#0``."""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from .names import functional_name

logger = logging.getLogger("torch_ext.monitor")


# Function name (in-place forms without their "_") -> (kind, its parameter from the call,
# the activation's class name in reports).
def _positional(index: int, name: str, default: Any) -> Callable[[tuple, dict], Any]:
    return lambda args, kwargs: kwargs.get(name, args[index] if len(args) > index else default)


def _none(args: tuple, kwargs: dict) -> float:
    return 0.0


FUNCTIONS: dict[str, tuple[Callable[[tuple, dict], Any], str]] = {
    "relu": (_none, "ReLU"),
    "leaky_relu": (_positional(1, "negative_slope", 0.01), "LeakyReLU"),
    "elu": (_positional(1, "alpha", 1.0), "ELU"),
    "celu": (_positional(1, "alpha", 1.0), "CELU"),
    "selu": (_none, "SELU"),
    "prelu": (_positional(1, "weight", None), "PReLU"),
}


def function_kind(func: Any) -> str | None:
    """The supported activation `func` computes (``"relu"``, ...), or None. Torch functions,
    Tensor methods and registered ops (``torch.ops.torch_ext.elu``, ``...elu.default``)
    reach a torch-function mode under their own names."""
    name = getattr(func, "__name__", "")
    name = name.split(".")[0]  # an OpOverload: "elu.default"
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name if name in FUNCTIONS else None


class FunctionalWatch(TorchFunctionMode):
    """Counts functional activation calls in the watched model's eager forwards.

    Entered when a forward of the model begins and left when it ends (the monitor's
    :class:`~torch_ext.monitor.tracker.ForwardTracker` tells it). The module
    whose forward made a call is found only when a supported function is called, from the
    Python frames running (the innermost method of one of the model's modules): no hook on
    every module call. Calls made inside an activation module's own forward (``nn.ReLU``
    calls ``F.relu``) or a monitored module's are left to the module's counting.
    """

    def __init__(self, monitor: Any, model: torch.nn.Module, monitored: set[int]) -> None:
        super().__init__()
        self._monitor = weakref.ref(monitor)
        self.monitored = monitored  # id() of the monitored modules, which count themselves
        self._names = {id(module): (module, name) for name, module in model.named_modules()}
        self._active = False
        self._indices: dict[tuple[str, str], int] = {}
        self._kinds: dict[Any, str | None] = {}  # function -> the activation it computes
        self.skipped_calls: set[str] = set()  # call sites with calls of another width

    def close(self) -> None:
        self._leave()

    # Each forward (a subscriber of the monitor's ForwardTracker).
    def forward_began(self, model: torch.nn.Module) -> None:
        monitor = self._monitor()
        if monitor is None or not (model.training or monitor.count_eval):
            return
        self._active, self._indices = True, {}
        self.__enter__()

    def forward_ended(self, output: Any, failed: bool) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._active:
            self._active = False
            self.__exit__(None, None, None)

    def _caller(self) -> tuple[str, torch.nn.Module] | None:
        """The module of the model whose method is running innermost (its forward, or a
        method it calls), with its name; None outside the model's modules."""
        frame = sys._getframe(2)
        while frame is not None:
            owner = frame.f_locals.get("self")
            known = self._names.get(id(owner)) if isinstance(owner, torch.nn.Module) else None
            if known is not None and known[0] is owner:
                return known[1], owner
            frame = frame.f_back
        return None

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
        if kind is not None and args and isinstance(args[0], Tensor):
            self._count(kind, args, kwargs)
        return func(*args, **kwargs)

    def _count(self, kind: str, args: tuple, kwargs: dict) -> None:
        monitor = self._monitor()
        caller = self._caller()
        if monitor is None or caller is None or not monitor._counts_functional_in(caller[1]):
            return
        module_name, module = caller
        key = (module_name, kind)
        index = self._indices.get(key, 0)
        self._indices[key] = index + 1
        param = FUNCTIONS[kind][0](args, kwargs)
        layer = monitor._functional_layer(functional_name(module_name, kind, index), kind, param)
        z = args[0]
        with torch._C.DisableTorchFunction():  # the counting's own ops are not the model's
            try:
                prepared = monitor._counting_args(layer, module, z)
            except ValueError as error:  # another width: no unit_dim= can name this site
                self._skip_once(layer.name, error)
                return
            if prepared is not None:
                torch.ops.torch_ext.count_active_(z.detach(), *prepared)

    def _skip_once(self, name: str, error: ValueError) -> None:
        """A functional call site whose width changed (a forward taking another path shifts
        the indices): its calls that do not fit are left uncounted, said once, rather than
        failing the model's forward."""
        if name not in self.skipped_calls:
            self.skipped_calls.add(name)
            logger.warning("%s; calls that do not fit are not counted", error)
