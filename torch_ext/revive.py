"""Revive dead units: the lecture notes' remedy (bias +0.01) applied the way ReDo
(Sokar et al., 2023) does it, without changing what the network computes."""

from __future__ import annotations

import copy
import logging

import torch

from .monitor import DeadNeuronMonitor

__all__ = ["revive"]

logger = logging.getLogger("torch_ext.monitor")

# Output of a dead (saturated) unit: f(z) for z -> -inf.
_SATURATED_OUTPUT = {
    torch.nn.ELU: lambda m: -m.alpha,
    torch.nn.CELU: lambda m: -m.alpha,
    torch.nn.SELU: lambda m: -1.0507009873554805 * 1.6732632423543772,
}


def _saturated_output(activation: torch.nn.Module) -> float:
    for kind, value in _SATURATED_OUTPUT.items():
        if isinstance(activation, kind):
            return value(activation)
    return 0.0  # ReLU, and Leaky ReLU / PReLU units that can only be dead with slope ~0


@torch.no_grad()
def revive(model: torch.nn.Module, monitor: DeadNeuronMonitor) -> dict[str, list[int]]:
    """Re-initialise the dead units that ``monitor`` reports, keeping the network's function.

    For each dead unit of a monitored layer: the incoming weights (its row of the Linear or
    output channel of the convolution feeding the activation) are drawn afresh from that
    layer's own initialisation, its bias is set to +0.01 (the lecture notes' remedy), and
    its outgoing weights (its column in the layers reading the activation) are zeroed, as
    ReDo does. A dead unit's constant output (0 for ReLU; -alpha for a saturated ELU) is
    folded into the reading layers' bias, so outputs are unchanged at the moment of
    revival (exactly for Linear readers; convolutions with zero padding differ at borders
    for ELU-family units) while the unit can learn again.

    The layers around each activation are the ones the monitor saw feeding and reading it in
    the first training forward after it attached. Returns ``{layer name: revived units}``.
    """
    revived: dict[str, list[int]] = {}
    report = monitor.report()
    for name, layer in report.layers.items():
        if not layer.dead_units:
            continue
        producer, readers = monitor.links(name)
        activation = monitor.module(name)
        if producer is None:
            logger.warning("revive: no Linear/Conv layer was seen feeding '%s'; skipped", name)
            continue
        dead = torch.tensor(layer.dead_units, device=producer.weight.device)
        fresh = copy.deepcopy(producer)
        fresh.reset_parameters()
        producer.weight[dead] = fresh.weight[dead]
        if producer.bias is not None:
            producer.bias[dead] = 0.01
        constant = _saturated_output(activation)
        for reader in readers:
            if constant != 0.0 and reader.bias is not None:
                dims = [d for d in range(reader.weight.dim()) if d != 0 and d != 1]
                incoming = reader.weight[:, dead].sum(dim=[1, *dims]) if dims else reader.weight[:, dead].sum(1)
                reader.bias += constant * incoming
            reader.weight[:, dead] = 0.0
        revived[name] = layer.dead_units
    return revived
