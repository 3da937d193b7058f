"""Dead-neuron monitor: per-unit activity statistics of activation layers during training.

A *unit* is a feature of a Linear output (the last dim) or a channel of a convolution
output (dim 1); ``unit_dim`` of :class:`DeadNeuronMonitor` says how a layer's are found.
Over a *window* of training steps (closed with :meth:`DeadNeuronMonitor.step`) the monitor
counts, per unit, the samples seen, the samples with pre-activation ``z > 0``
(*active*) and the samples whose local derivative ``|f'(z)|`` exceeds ``grad_eps``
(*gradient-alive*, by the activation's own derivative: every elementwise activation of
torch.nn and Hugging Face has a rule, see :mod:`torch_ext.monitor.rules`). A unit is
**dead** (or *saturated*, for Tanh, Sigmoid, Hardtanh, ...) when no sample left it
gradient-alive, and **dormant** when none made it active; with ``tau=``, **tau-dormant**
(ReDo) when its mean ``|h|`` over the layer's is at most ``tau``. A module called several
times in one forward of the model is one layer per call site (``act``, ``act#1``, ...)
unless its calls are merged.

Counting runs in the registered op ``torch.ops.torch_ext.count_active_`` (one pass, no
temporary, no host sync); numbers reach the host only when a report is read or a window
closes.
"""

from __future__ import annotations

from .counting import alive_threshold
from .monitor import DeadNeuronMonitor
from .reports import LayerReport, MonitorReport
from .selection import KNOWN_ACTIVATIONS, UNSUPPORTED_ACTIVATIONS

__all__ = [
    "DeadNeuronMonitor",
    "LayerReport",
    "MonitorReport",
    "KNOWN_ACTIVATIONS",
    "UNSUPPORTED_ACTIVATIONS",
    "alive_threshold",
]
