"""A PyTorch Lightning callback that runs a :class:`~torch_ext.monitor.DeadNeuronMonitor`.

Needs ``lightning`` (``lightning.pytorch``) or the older ``pytorch_lightning``; the first
found is used, and the callback works with that package's ``Trainer``.
"""

from __future__ import annotations

from typing import Any

import torch

from . import RevivePolicy, Session, SessionView

try:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities import rank_zero_warn
except ImportError:  # the package's name before Lightning 2.0
    import pytorch_lightning as pl
    from pytorch_lightning.utilities import rank_zero_warn

__all__ = ["DeadNeuronCallback"]


class DeadNeuronCallback(SessionView, pl.Callback):
    r"""Watches the model's activation layers with a :class:`~torch_ext.monitor.DeadNeuronMonitor`
    during ``Trainer.fit`` and logs, every window, each layer's dead and dormant fractions.

    The monitor attaches at ``setup("fit")`` and detaches at ``teardown``. A monitor step is
    closed at each optimizer step (when ``trainer.global_step`` advances: under gradient
    accumulation a step spans its batches). When a window closes, its fractions go to every
    logger of the trainer (``logger.log_metrics``, at ``trainer.global_step``) as
    ``<prefix>/<layer>/dead_fraction`` and ``<prefix>/<layer>/dormant_fraction``, with
    ``<prefix>/dead_fraction`` and ``<prefix>/dormant_fraction`` over all units. Under a DDP
    strategy the counts are summed over ranks; every rank runs the same collectives in the
    same order, since Lightning calls these hooks on every rank.

    The callback's state (the monitor's counts, history and position) is saved in Lightning
    checkpoints and restored by ``fit(ckpt_path=...)``. Saving is collective under
    ``torch.distributed`` (the open window's counts are summed over ranks), as
    ``trainer.save_checkpoint`` is called on every rank.

    Args:
        window: optimizer steps per window. Default: ``100``.
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
            Default: ``1e-3``.
        warn_dead_fraction: warn (on rank zero, once per layer) when a layer's dead fraction in
            a window exceeds this; ``None`` never warns. Default: ``0.10``.
        revive: after each closed window: ``True`` calls :func:`torch_ext.revive` on the
            watched module if any unit is dead (with the trainer's optimizer when it has
            exactly one, so its state for the revived units restarts); a callable
            ``policy(model, monitor, optimizer)`` is called instead (on every rank: keep it
            collective-safe, as ``torch_ext.revive`` is); its result is :attr:`last_revive`.
            Default: ``None`` (never).
        submodule: the name of the ``pl_module`` submodule to watch, e.g. ``"model"`` when
            ``training_step`` calls ``self.model(x)`` rather than ``self(x)`` (the monitor
            numbers call sites and learns links per forward of the watched module).
            Default: the LightningModule itself.
        prefix: the metric names' first part. Default: ``"dead_neurons"``.
        **monitor_options: passed to :class:`~torch_ext.monitor.DeadNeuronMonitor`
            (``modules``, ``unit_dim``, ``call_sites``, ``functional``, ``keep_windows``,
            ``count_eval``).

    Example::

        from torch_ext.integrations.lightning import DeadNeuronCallback

        callback = DeadNeuronCallback(window=50, warn_dead_fraction=0.2)
        trainer = lightning.pytorch.Trainer(max_steps=1000, callbacks=[callback])
        trainer.fit(module, train_loader)
        print(callback.monitor.summary())
    """

    def __init__(
        self,
        window: int = 100,
        grad_eps: float = 1e-3,
        warn_dead_fraction: float | None = 0.10,
        revive: bool | RevivePolicy | None = None,
        submodule: str | None = None,
        prefix: str = "dead_neurons",
        **monitor_options: Any,
    ) -> None:
        super().__init__()
        self._session = Session(
            window, grad_eps, warn_dead_fraction, revive, prefix, monitor_options
        )
        self.submodule = submodule
        self._global_step: int | None = None  # the trainer's step at the last closed step

    @property
    def state_key(self) -> str:
        # Two such callbacks (two windows, say) each keep their own state in a checkpoint.
        return self._generate_state_key(
            window=self._session.window, submodule=self.submodule, prefix=self._session.prefix
        )

    def _watched(self, pl_module: pl.LightningModule) -> torch.nn.Module:
        if self.submodule is None:
            return pl_module
        return pl_module.get_submodule(self.submodule)

    # --- hooks -----------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Before Lightning restores callback states from a checkpoint: the monitor must be
        # attached to match its saved layers.
        if stage == "fit":
            self._session.attach(self._watched(pl_module))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After a resume restored trainer.global_step.
        self._global_step = trainer.global_step

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # global_step is the same on every rank, so all ranks close (collectively) together.
        if self._global_step is None or trainer.global_step == self._global_step:
            return
        self._global_step = trainer.global_step
        optimizers = trainer.optimizers
        report = self._session.close_step(optimizers[0] if len(optimizers) == 1 else None)
        if report is None:
            return
        metrics = self._session.metrics(report)
        for logger in trainer.loggers:  # log_metrics itself runs on rank zero only
            logger.log_metrics(metrics, step=trainer.global_step)
        for layer in self._session.warnings.newly_over(report):
            rank_zero_warn(self._session.warnings.message(layer, report))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._session.detach()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._session.detach()

    # --- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The monitor's state (collective under ``torch.distributed``: every rank calls it,
        as Lightning does when saving)."""
        return self._session.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._session.load_state_dict(state_dict)
