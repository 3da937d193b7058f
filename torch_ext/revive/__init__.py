"""Revive dead units: the lecture notes' remedy (bias +0.01) applied the way ReDo
(Sokar et al., 2023) does it, without changing what the network computes.

:func:`revive` is the entry point; ``plan`` decides what a layer's revival touches and
whether it can be done exactly, ``write`` writes it, ``optimizer_state`` resets the
optimizer's state of the revived slices. It reads the monitor through its public
interface only (reports, ``links``, ``link_problem``, ``module``, ``model``) and logs on
``torch_ext.revive``."""

from __future__ import annotations

import weakref

import torch

from ..monitor import DeadNeuronMonitor, MonitorReport
from .plan import (
    SELECTIONS,
    logger,
    parameter_owners,
    plan_layer,
    revivable_on_every_rank,
    skip_layer,
    units_to_revive,
)
from .write import fresh_rows, revive_layer, unit_index

__all__ = ["revive", "ReviveReport"]


class ReviveReport(dict):
    """What :func:`revive` did: ``{layer name: revived units}``, as a dict, plus

    Attributes:
        skipped: ``{layer name: why}`` for every layer with dead units that was left as it
            was (also logged as a warning).
        inexact: ``{layer name: [why, ...]}`` for the revived layers whose function changed
            (only with ``exact=False``): what their revived units now reach.
        change_bounds: ``{layer name: bound}`` for the revived layers whose units did not
            output a constant (GELU, Tanh, tau-dormant units, ...): the most one output of a
            reading layer changes (see ``inexact`` for whether on any sample or on average).
    """

    def __init__(
        self,
        revived: dict[str, list[int]],
        skipped: dict[str, str],
        inexact: dict[str, list[str]],
        change_bounds: dict[str, float] | None = None,
    ) -> None:
        super().__init__(revived)
        self.skipped = skipped
        self.inexact = inexact
        self.change_bounds = change_bounds or {}

    def __repr__(self) -> str:
        return (
            f"ReviveReport({dict.__repr__(self)}, skipped={self.skipped!r}, "
            f"inexact={self.inexact!r})"
        )


@torch.no_grad()
def revive(
    model: torch.nn.Module,
    monitor: DeadNeuronMonitor,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    exact: bool = True,
    window: MonitorReport | None = None,
    select: str = "dead",
) -> ReviveReport:
    """Re-initialise the dead units that ``monitor`` reports, keeping the network's function.

    For each dead unit of a monitored layer (call site): the incoming weights (its row of the
    Linear, column of Hugging Face's Conv1D or output channel of the convolution feeding the
    activation) are drawn afresh from
    that layer's own initialisation and its bias set to +0.01 (the lecture notes' remedy); if
    a BatchNorm, LayerNorm or GroupNorm stands between them, the producer's bias entry is set
    to 0 and the norm's parameters for the unit to weight 1, bias +0.01, its running
    statistics to mean 0, variance 1, so the unit starts from a small positive
    pre-activation. Its outgoing weights (its columns in the Linear/Conv layers reading the
    activation, through pooling, dropout, flatten and views; in a grouped convolution, its
    group's outputs only) are zeroed, as ReDo (Sokar et
    al., 2023) does. A dead unit's constant output (0 for ReLU; -alpha for a saturated ELU,
    times scale for SELU) is folded into the reading layers' bias, so outputs are unchanged
    at the moment of revival (exactly for ReLU; for ELU-family units up to their residual
    ``alpha * e^z <= grad_eps``) while the unit can learn again.

    The layers around each call site are the ones the monitor traced in the model's first
    training forward after it attached, checked against every eager forward it watched since
    (see :meth:`DeadNeuronMonitor.links`). Some structures cannot keep the function exactly:
    the unit's output also flows into a residual addition, is read by a norm layer or
    returned by the model, or a LayerNorm/GroupNorm normalizes the unit together with
    others. Such a layer is skipped by default; with ``exact=False`` it is revived and the
    report's :attr:`~ReviveReport.inexact` says what changed. A layer is skipped, with a
    warning on the logger ``torch_ext.revive`` naming it and why, and nothing of it written
    (its modules' parameters and the optimizer's state stay as they were), when revive
    cannot do it right:

    * it is not a plain Linear/Conv [-> norm] -> activation -> Linear/Conv chain in the
      traced forward (another operation between them, a second use of a tensor, a shape
      that does not match), or the monitor has no links for it (its calls
      merged into one layer, a call site the traced forward did not reach);
    * another forward fed or read it through other modules (a multi-task head), or one of
      its modules was replaced in the model since (``model[2] = nn.Linear(...)``);
    * its activation's dead output is not a known constant (a Leaky ReLU or PReLU unit
      still outputs ``slope * z``), or is a nonzero constant (ELU, SELU, CELU) that a
      reader cannot take: it has no bias, it is a convolution padding with zeros, or the
      path to it does not keep constants (dropout in training, average pooling over padding,
      a gate);
    * the units still output something (a dead GELU unit, a tau-dormant unit) and no bound on
      what zeroing their outgoing weights changes is known: their output passes a gate (a
      product with another branch, as in Llama's MLP) and is not exactly 0, or their mean
      passes a max pool;
    * the weight or bias of its feeding, norm or reading layers is computed rather than a
      parameter revive can write (:mod:`torch.nn.utils.parametrize` such as
      ``parametrizations.weight_norm``/``spectral_norm``/``orthogonal``, the older
      ``torch.nn.utils.weight_norm``/``spectral_norm``, ``torch.nn.utils.prune``), or the
      layer's class overrides ``forward``;
    * a parameter of those layers is shared with another module, or one of them is
      registered at several places in ``model`` (tied weights would change elsewhere).

    Skipping rather than raising lets the other layers be revived, as a training loop that
    calls ``revive`` periodically wants; every check runs before the first write.

    Args:
        model: the model the monitor watches (or one containing it, e.g. its DDP wrapper).
        monitor: the monitor whose :meth:`~DeadNeuronMonitor.report` names the dead units.
        optimizer: if given, its per-parameter state of the revived slices (every state
            tensor shaped like its parameter: the producer's weight rows and bias entries,
            the norm's entries and the readers' weight columns) is reset: first moments and
            momentum buffers (Adam's ``exp_avg``, SGD's ``momentum_buffer``) to zero, as for
            a fresh parameter; the states that scale the step by the gradient's history
            (Adam's ``exp_avg_sq``, Adagrad's ``sum``, RMSprop's ``square_avg``, ...) to the
            mean of the parameter's other slices, since the per-parameter step count (and so
            Adam's bias correction) goes on: zeroed, a revived entry would step several times
            further than its peers. Default: ``None``.
        exact: revive only layers whose function revive keeps unchanged. ``False`` also
            revives the layers named in the report's ``inexact``. Default: ``True``.
        window: the window whose dead units to revive: a report of ``monitor``, e.g.
            ``monitor.report()`` for the open window. Default: the last closed window
            (``monitor.history[-1]``): a unit is dead only over a whole window, and the open
            one may have seen a single batch. Its units that the open window no longer
            selects (seen gradient-alive since, or with a score above tau) are not revived,
            and a warning names them. A window that covers no completed step or holds no
            sample is refused: a warning names it and nothing is revived.

    Under ``torch.distributed`` every rank must call it (the report is collective): the
    re-drawn weights are broadcast from rank 0, so replicas stay identical, and a layer is
    revived only if every rank can revive it.

    Returns:
        :class:`ReviveReport`: ``{layer name: revived units}``, with the skipped layers and
        why in ``skipped``, and with ``exact=False`` the changes in ``inexact``.
    """
    _check_model(model, monitor)
    if select not in SELECTIONS:
        raise ValueError(f"revive: select= must be one of {SELECTIONS}, got {select!r}")
    if select != "dead" and monitor.tau is None:
        raise ValueError(
            f"revive: select={select!r} needs the monitor's tau= (DeadNeuronMonitor(..., "
            "tau=0.1)): without it no unit has a tau-dormant score"
        )
    report = _window_to_revive(monitor, window)
    if report is None:
        return ReviveReport({}, {}, {})
    owners = parameter_owners(model, monitor.model)
    since = _open_window_since(monitor, report)
    plans, skipped = [], {}
    for name, layer in report.layers.items():
        if layer.dead_units is None:
            if layer.dead:
                skip_layer(name, "the report has no per-unit detail", skipped)
            continue
        units = units_to_revive(layer, select)
        if isinstance(units, str):
            if layer.dead or select != "dead":
                skip_layer(name, units, skipped)
            continue
        units = _still_selected(name, units, select, report, since)
        if not units:
            continue
        plan = plan_layer(monitor, owners, name, layer, exact, units)
        if isinstance(plan, str):
            skip_layer(name, plan, skipped)
        else:
            plans.append(plan)
    plans = revivable_on_every_rank(plans, skipped)
    for plan in plans:  # drawn (and broadcast) before any write
        plan.rows = fresh_rows(plan.producer, unit_index(plan))
    for plan in plans:
        revive_layer(plan, optimizer)
    if plans and monitor.history and report is monitor.history[-1]:
        _last_revived[monitor] = report.window
    return ReviveReport(
        {plan.name: plan.units for plan in plans},
        skipped,
        {plan.name: plan.inexact for plan in plans if plan.inexact},
        {plan.name: plan.change_bound for plan in plans if plan.change_bound is not None},
    )


def _open_window_since(monitor: DeadNeuronMonitor, report: MonitorReport) -> MonitorReport | None:
    """The open window, when revive acts on the window closed before it (the default): what
    it has seen since may already contradict that window's verdicts."""
    if not monitor.history or report is not monitor.history[-1]:
        return None
    return monitor.report()


def _still_selected(
    name: str, units: list[int], select: str, report: MonitorReport, since: MonitorReport | None
) -> list[int]:
    """`units` less those the open window `since` no longer selects (with a warning): a unit
    it saw gradient-alive is dead no more, and one whose score there exceeds tau is no
    longer dormant; reviving them would change what they compute."""
    now = since.layers.get(name) if since is not None else None
    if not units or now is None or now.dead_units is None or now.units != report.layers[name].units:
        return units
    selected = units_to_revive(now, select)
    if isinstance(selected, str):  # no tau verdict in the open window yet: the dead part only
        closed = report.layers[name]
        dormant = set(closed.tau_dormant_units or ())
        selected = [
            u for u in units if u in now.dead_units or u in dormant or u not in closed.dead_units
        ]
    kept = set(selected)
    revived = [unit for unit in units if unit in kept]
    if len(revived) < len(units):
        logger.warning(
            "revive: layer '%s': units %s were %s over window %d but are not since (the open "
            "window %d): not revived",
            name,
            [unit for unit in units if unit not in kept],
            "dead" if select == "dead" else f"selected by select={select!r}",
            report.window,
            since.window,
        )
    return revived


def _check_model(model: torch.nn.Module, monitor: DeadNeuronMonitor) -> None:
    watched = monitor.model
    if watched is None or not any(m is watched for m in model.modules()):
        raise ValueError(
            "revive: the monitor does not watch this model (nor one of its submodules)"
        )


# The last closed window whose units revive re-drew, per monitor: a second call before the
# next window closes would re-draw the same units (and drop what they learnt since).
_last_revived: weakref.WeakKeyDictionary[DeadNeuronMonitor, int] = weakref.WeakKeyDictionary()


def _window_to_revive(
    monitor: DeadNeuronMonitor, window: MonitorReport | None
) -> MonitorReport | None:
    """The window revive acts on, or None (with a warning naming it) when it cannot say
    which units are dead: none closed yet, one already acted on, or one without a completed
    step or a sample."""
    if window is None:
        history = monitor.history
        if not history:
            open_window = monitor.report(collective=False)  # one host read of the counts
            logger.warning(
                "revive: no window of the monitor has closed yet (the open window %d has "
                "%d steps): nothing revived; call it after monitor.step() closes one, or pass "
                "window=monitor.report()",
                open_window.window,
                open_window.steps,
            )
            return None
        window = history[-1]
        if _last_revived.get(monitor) == window.window:
            logger.warning(
                "revive: window %d's dead units were revived by an earlier revive(): nothing "
                "revived until the next window closes",
                window.window,
            )
            return None
    elif not isinstance(window, MonitorReport):
        raise TypeError(
            f"revive: window= expects a MonitorReport of the monitor (monitor.report(), "
            f"monitor.history[i]), got {type(window).__name__}"
        )
    else:
        unknown = sorted(set(window.layers) - set(monitor.layer_names))
        if unknown:
            raise ValueError(
                f"revive: window= holds layers {unknown} the monitor does not count: it is "
                "another monitor's report"
            )
    samples = sum(layer.samples for layer in window.layers.values())
    if window.steps < 1 or samples == 0:
        logger.warning(
            "revive: window %d covers %d completed steps and %d samples: too few to call a "
            "unit dead; nothing revived",
            window.window,
            window.steps,
            samples,
        )
        return None
    return window
