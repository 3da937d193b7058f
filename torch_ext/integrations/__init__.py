"""Callbacks that run a :class:`~torch_ext.monitor.DeadNeuronMonitor` inside training
frameworks.

- :mod:`torch_ext.integrations.lightning`: ``DeadNeuronCallback`` for PyTorch Lightning
  (``lightning.pytorch``, or the older ``pytorch_lightning``).
- :mod:`torch_ext.integrations.transformers`: ``DeadNeuronCallback`` for the Hugging Face
  ``Trainer``.

Import the submodule you need: this package imports neither framework (nor do ``torch_ext``
and its other modules), so neither is a dependency of torch_ext.

Both callbacks share the bookkeeping below: one monitor per watched model, a step closed per
optimizer step, the closed window's fractions as metrics, an optional revive after each
window, and a checkpoint state that stays right under ``torch.distributed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..monitor import DeadNeuronMonitor, MonitorReport
from ..monitor.distributed import rank, world_size
from ..monitor.reports import DeadFractionWarnings

__all__ = ["RevivePolicy"]

#: ``policy(model, monitor, optimizer)``, called on every rank after each closed window.
RevivePolicy = Callable[[torch.nn.Module, DeadNeuronMonitor, torch.optim.Optimizer | None], Any]


def _revive_dead(
    model: torch.nn.Module, monitor: DeadNeuronMonitor, optimizer: torch.optim.Optimizer | None
) -> Any:
    """``revive=True``: :func:`torch_ext.revive` after a window with dead units. The closed
    window's report is summed over ranks, so every rank takes the same branch."""
    from ..revive import revive  # torch_ext.revive, imported late as torch_ext imports us never

    if any(layer.dead for layer in monitor.history[-1].layers.values()):
        return revive(model, monitor, optimizer)
    return None


class Session:
    """What both callbacks do, framework aside: they translate their hooks into calls here."""

    def __init__(
        self,
        window: int,
        grad_eps: float,
        warn_dead_fraction: float | None,
        revive: bool | RevivePolicy | None,
        prefix: str,
        monitor_options: dict[str, Any],
    ) -> None:
        if warn_dead_fraction is not None and not 0 <= warn_dead_fraction <= 1:
            raise ValueError(f"warn_dead_fraction must be in [0, 1], got {warn_dead_fraction}")
        if revive is not None and not isinstance(revive, bool) and not callable(revive):
            raise TypeError(f"revive must be a bool or a callable, got {type(revive).__name__}")
        self.window = window
        self.grad_eps = grad_eps
        self.warnings = DeadFractionWarnings(warn_dead_fraction)  # said by the callbacks
        self.revive_policy: RevivePolicy | None = _revive_dead if revive is True else revive or None
        self.prefix = prefix
        self.monitor_options = monitor_options
        self.monitor: DeadNeuronMonitor | None = None
        self.last_revive: Any = None
        self._pending: dict[str, Any] | None = None  # a state loaded before attach()

    def attach(self, model: torch.nn.Module) -> DeadNeuronMonitor:
        """Watch `model`: the same monitor again for the same model (a second ``fit`` goes on
        counting), a new one for another."""
        if self.monitor is None or self.monitor.model is not model:
            # The monitor's own warnings would come from every rank: the callbacks warn on rank
            # zero instead, so it never warns (a fraction is never above 1).
            self.monitor = DeadNeuronMonitor(
                model,
                window=self.window,
                grad_eps=self.grad_eps,
                warn_dead_fraction=1.0,
                **self.monitor_options,
            )
        self.monitor.attach()
        if self._pending is not None:
            state, self._pending = self._pending, None
            self.load_state_dict(state)
        return self.monitor

    def detach(self) -> None:
        """Remove the hooks; :attr:`monitor` keeps its history for reading after training."""
        if self.monitor is not None:
            self.monitor.remove()

    def close_step(self, optimizer: torch.optim.Optimizer | None) -> MonitorReport | None:
        """Close a training step (collective under torch.distributed); the window's report when
        this step closed one, after the revive policy ran on it."""
        monitor = self.monitor
        if monitor is None:
            return None
        windows = len(monitor.history)
        monitor.step()
        if len(monitor.history) == windows:
            return None
        if self.revive_policy is not None:
            model = monitor.model
            self.last_revive = self.revive_policy(model, monitor, optimizer)
        return monitor.history[-1]

    def metrics(self, report: MonitorReport) -> dict[str, float]:
        """The report's :meth:`~torch_ext.monitor.MonitorReport.metrics` under this
        callback's prefix."""
        return report.metrics(self.prefix)

    def state_dict(self) -> dict[str, Any]:
        """The monitor's state, with the open window's counts summed over ranks under
        torch.distributed (so collective: every rank must call it). Only rank 0's checkpoint
        is usually written, and its own counts alone would lose the other ranks' part of the
        window."""
        if self.monitor is None:
            return dict(self._pending or {})
        summed = self.monitor.report() if world_size() > 1 else None
        state = self.monitor.state_dict()  # after report(): it names layers only peers ran
        if summed is not None and summed.window == len(self.monitor.history):
            for name, layer in summed.layers.items():
                counts = [layer.active_counts, layer.alive_counts]
                entry = state["layers"][name]
                entry["counts"] = torch.tensor(counts, dtype=torch.int64).reshape(2, -1)
                entry["samples"] = layer.samples
        return {"monitor": state, "warned": sorted(self.warnings.warned)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (now, or at :meth:`attach` if not attached yet). Rank 0
        takes the open window's counts, which hold every rank's, the other ranks start it
        from zero, so the next collective sum counts them once."""
        if not state:
            return
        if self.monitor is None:
            self._pending = state
            return
        monitor_state = state["monitor"]
        if rank() != 0:
            layers = monitor_state["layers"]
            monitor_state = dict(
                monitor_state,
                layers={
                    name: dict(entry, counts=None, samples=0) for name, entry in layers.items()
                },
            )
        self.monitor.load_state_dict(monitor_state)
        self.warnings.warned = set(state.get("warned", []))


class SessionView:
    """What both callbacks show of their :class:`Session` (set as ``self._session``)."""

    _session: Session

    @property
    def monitor(self) -> DeadNeuronMonitor | None:
        """The monitor (``None`` before training starts); its hooks are removed when training
        ends (Lightning's ``teardown``, the Trainer's ``on_train_end``), its reports stay
        readable."""
        return self._session.monitor

    @property
    def last_revive(self) -> Any:
        """What the revive policy returned after the last closed window (a
        :class:`~torch_ext.ReviveReport` for ``revive=True``, ``None`` when nothing was dead)."""
        return self._session.last_revive
