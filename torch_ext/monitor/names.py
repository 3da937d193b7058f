"""The one grammar of layer names in the monitor's reports, built and parsed here only.

- a module's call sites: its first call keeps the module's name (``act``), later calls add
  their index (``act#1``), so a model calling each module once reads as if sites did not
  exist;
- a functional call (``functional=True``): the module whose forward made it, the function
  and its index in that forward, ``block.0:relu#0`` (the model's own forward is the empty
  module name: ``:relu#0``).

So "#" separates a call index and ":" a function; a monitored module whose own name holds
"#" would clash with a call site's name (the monitor refuses it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LayerName", "functional_name", "parse", "site_name"]

CALL = "#"
FUNCTION = ":"


def site_name(module_name: str, index: int) -> str:
    """``act`` for call 0 of module ``act``, ``act#1`` for call 1."""
    return module_name if index == 0 else f"{module_name}{CALL}{index}"


def functional_name(module_name: str, function: str, index: int) -> str:
    """``block.0:relu#0``: call `index` of `function` in module `module_name`'s forward."""
    return f"{module_name}{FUNCTION}{function}{CALL}{index}"


@dataclass(frozen=True)
class LayerName:
    """A layer name's parts: the module, the function (functional calls only) and the
    call index."""

    module: str
    function: str | None
    index: int


def parse(name: str) -> LayerName:
    """The parts of a layer name built by :func:`site_name` or :func:`functional_name`."""
    head, call, index = name.rpartition(CALL)
    if not call or not index.isdigit():
        head, index = name, "0"
    module, colon, function = head.rpartition(FUNCTION)
    if not colon:
        return LayerName(head, None, int(index))
    return LayerName(module, function, int(index))
