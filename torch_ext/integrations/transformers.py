"""A Hugging Face ``transformers.Trainer`` callback that runs a
:class:`~torch_ext.monitor.DeadNeuronMonitor`. Needs ``transformers`` (and its Trainer's
``accelerate``)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from . import RevivePolicy, Session, SessionView

__all__ = ["DeadNeuronCallback", "STATE_FILE"]

logger = logging.getLogger("torch_ext.monitor")

#: The file the callback writes into each checkpoint folder.
STATE_FILE = "dead_neuron_monitor.pt"


class DeadNeuronCallback(SessionView, TrainerCallback):
    r"""Watches the model's activation layers with a :class:`~torch_ext.monitor.DeadNeuronMonitor`
    during ``Trainer.train`` and logs, every window, each layer's dead and dormant fractions.

    The monitor attaches to the trainer's model at ``on_train_begin`` and detaches at
    ``on_train_end``; a monitor step is closed at each ``on_step_end`` (one optimizer step,
    gradient accumulation included). When a window closes the callback asks the trainer to
    log at that step and adds ``<prefix>/<layer>/dead_fraction`` and
    ``<prefix>/<layer>/dormant_fraction`` (and ``<prefix>/dead_fraction``,
    ``<prefix>/dormant_fraction`` over all units) to those logs: ``state.log_history`` and
    the callbacks after this one (the progress printer) see them. The reporting callbacks of
    ``report_to`` (TensorBoard, W&B, ...) run before the callbacks passed to ``Trainer``; to
    have them log the fractions too, put this callback first:
    ``trainer.callback_handler.callbacks.insert(0, callback)``.

    Under ``torch.distributed`` the counts are summed over ranks; the Trainer calls these
    hooks on every rank, so every rank runs the same collectives in the same order.

    Checkpoints: ``on_save`` writes the monitor's state as ``dead_neuron_monitor.pt`` into
    the checkpoint folder (``<output_dir>/checkpoint-<step>``; the open window's counts are
    summed over ranks, the file written by the main process). Resuming
    (``trainer.train(resume_from_checkpoint=...)``) reads it back at ``on_train_begin``
    from ``<output_dir>/checkpoint-<global step>``, the folder ``resume_from_checkpoint=True``
    takes, or from ``resume_from`` when the checkpoint lies elsewhere.

    Args:
        window: optimizer steps per window. Default: ``100``.
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
            Default: ``1e-3``.
        warn_dead_fraction: warn (on the logger ``torch_ext.monitor``, main process only, once
            per layer) when a layer's dead fraction in a window exceeds this; ``None`` never
            warns. Default: ``0.10``.
        revive: after each closed window: ``True`` calls :func:`torch_ext.revive` on the model
            if any unit is dead (with the trainer's optimizer, so its state for the revived
            units restarts); a callable ``policy(model, monitor, optimizer)`` is called
            instead (on every rank: keep it collective-safe, as ``torch_ext.revive`` is); its
            result is :attr:`last_revive`. Default: ``None`` (never).
        resume_from: the checkpoint folder to restore the monitor from when training resumes
            (``global_step > 0`` at ``on_train_begin``). Default: ``None``, i.e.
            ``<output_dir>/checkpoint-<global step>``.
        prefix: the metric names' first part. Default: ``"dead_neurons"``.
        **monitor_options: passed to :class:`~torch_ext.monitor.DeadNeuronMonitor`
            (``modules``, ``unit_dim``, ``call_sites``, ``functional``, ``keep_windows``,
            ``count_eval``).

    Example::

        from torch_ext.integrations.transformers import DeadNeuronCallback

        callback = DeadNeuronCallback(window=50)
        trainer = Trainer(model, args, train_dataset=dataset, callbacks=[callback])
        trainer.train()
        print(callback.monitor.summary())
    """

    def __init__(
        self,
        window: int = 100,
        grad_eps: float = 1e-3,
        warn_dead_fraction: float | None = 0.10,
        revive: bool | RevivePolicy | None = None,
        resume_from: str | os.PathLike[str] | None = None,
        prefix: str = "dead_neurons",
        **monitor_options: Any,
    ) -> None:
        self._session = Session(
            window, grad_eps, warn_dead_fraction, revive, prefix, monitor_options
        )
        self.resume_from = resume_from
        self._unlogged: dict[str, float] = {}  # the last closed window's, until on_log

    # --- hooks -----------------------------------------------------------------------------
    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            raise RuntimeError("DeadNeuronCallback: the Trainer passed no model to on_train_begin")
        _go_first(self, sys._getframe(1))
        self._session.attach(model)
        if state.global_step > 0:  # resumed: the TrainerState was read from the checkpoint
            self._restore(args, state)

    def _restore(self, args: TrainingArguments, state: TrainerState) -> None:
        folder = self.resume_from or os.path.join(
            args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        )
        path = os.path.join(folder, STATE_FILE)
        if not os.path.isfile(path):
            logger.warning(
                "DeadNeuronCallback: resumed at step %d but found no %s (pass resume_from= "
                "the checkpoint folder); the monitor starts afresh",
                state.global_step,
                path,
            )
            return
        self._session.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        optimizer: torch.optim.Optimizer | None = None,
        **kwargs: Any,
    ) -> TrainerControl:
        report = self._session.close_step(optimizer)
        if report is not None:
            self._unlogged = self._session.metrics(report)
            control.should_log = True  # log the window at its own step
            for layer in self._session.warnings.newly_over(report):
                if state.is_world_process_zero:
                    logger.warning(self._session.warnings.message(layer, report))
        return control

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self._unlogged or logs is None:
            return
        logs.update(self._unlogged)
        # Trainer.log appended a copy of `logs` to the history before calling us.
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(self._unlogged)
        self._unlogged = {}

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        saved = self._session.state_dict()  # collective: every rank calls on_save
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            os.makedirs(folder, exist_ok=True)
            torch.save(saved, os.path.join(folder, STATE_FILE))

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._session.detach()


def _go_first(callback: TrainerCallback, caller: Any) -> None:
    """Move `callback` to the front of the Trainer's callbacks (its CallbackHandler, the
    caller of on_train_begin): the reporting callbacks (TensorBoard, W&B, ...), which the
    Trainer puts before the user's, then see the metrics it adds to each log, whatever
    order ``callbacks=`` and ``report_to=`` gave. Moving it while the handler iterates over
    the list at its position neither skips nor repeats a callback. Left in place where the
    caller is not a handler holding it (a Trainer of another shape)."""
    handler = caller.f_locals.get("self")
    callbacks = getattr(handler, "callbacks", None)
    if isinstance(callbacks, list) and any(c is callback for c in callbacks):
        callbacks.remove(callback)
        callbacks.insert(0, callback)
