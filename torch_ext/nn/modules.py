"""Activation modules that run torch_ext's ops.

Each one subclasses its :mod:`torch.nn` counterpart and replaces only ``forward``: the
constructor, attributes, ``extra_repr`` and state dict (PReLU's ``weight``) are PyTorch's,
so models and checkpoints move between the two freely, and ``isinstance(m, torch.nn.ELU)``
stays true.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

import torch
from torch import Tensor

from .. import functional as F

__all__ = ["CELU", "CountedActivation", "ELU", "LeakyReLU", "PReLU", "SELU", "UnitCounter"]


class UnitCounter(Protocol):
    """What counts a :class:`CountedActivation`'s input (a dead-neuron monitor's counter)."""

    def counting_args(
        self, module: torch.nn.Module, input: Tensor
    ) -> Optional[tuple[Tensor, int, Tensor, Optional[Tensor]]]:
        """``(counts, unit_dim, alive_threshold, abs_sum)`` for the module's counted op on
        this call (see ``torch.ops.torch_ext.count_active_``; ``abs_sum``: float64 per-unit
        sums of ``|output|`` to add to, as ``torch.ops.torch_ext.abs_sum_`` does, or None),
        or None when the call is not counted. A 3-tuple (no ``abs_sum``) is accepted too."""
        ...


class CountedActivation:
    """A torch_ext.nn activation that counts its own input (dead-neuron statistics) inside
    its forward kernel: the protocol between these modules and a monitor.

    A counter (:class:`UnitCounter`) set as :attr:`counter` is asked, at each forward, for
    the arguments of the module's counted op; its answer runs the activation and the
    counting in one pass. ``None`` (the default) runs the plain activation. One counter at a
    time: a second monitor watching the module counts it by a forward pre-hook. Eager mode
    only: TorchScript sees the plain activation.
    """

    counter: Any = None  # a UnitCounter, or None (Any: TorchScript compiles the annotation)

    def forward(self, input: Tensor) -> Tensor:
        if not torch.jit.is_scripting():
            counted = self._counted_forward(input)
            if counted is not None:
                return counted
        return self._activation(input)

    @torch.jit.unused
    def _counted_forward(self, input: Tensor) -> Optional[Tensor]:
        counter = self.counter
        args = None if counter is None else counter.counting_args(self, input)
        if args is None:
            return None
        counts, unit_dim, threshold = args[:3]
        abs_sum = args[3] if len(args) > 3 else None  # a 3-tuple sums nothing
        return self._run_counted(input, counts, unit_dim, threshold, abs_sum)


class LeakyReLU(CountedActivation, torch.nn.LeakyReLU):
    r"""Leaky ReLU, :math:`x` if :math:`x > 0` else :math:`\text{negative\_slope} \cdot x`,
    run by ``torch.ops.torch_ext.leaky_relu``.

    Args:
        negative_slope: slope for :math:`x \le 0`. Default: ``0.01``.
        inplace: overwrite the input. Default: ``False``.
    """

    def _activation(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    @torch.jit.unused
    def _run_counted(
        self,
        input: Tensor,
        counts: Tensor,
        unit_dim: int,
        threshold: Tensor,
        abs_sum: Optional[Tensor],
    ) -> Tensor:
        return torch.ops.torch_ext.leaky_relu_counted(
            input, self.negative_slope, counts, unit_dim, threshold, abs_sum
        )


class PReLU(CountedActivation, torch.nn.PReLU):
    r"""PReLU, :math:`x` if :math:`x > 0` else :math:`a \cdot x` with a learned slope
    :math:`a` per channel (dim 1) or shared, run by ``torch.ops.torch_ext.prelu``.

    Args:
        num_parameters: 1 (one shared slope) or the number of channels. Default: ``1``.
        init: the slopes' initial value. Default: ``0.25`` (He et al., 2015).

    Attributes:
        weight: the slopes, of shape ``(num_parameters,)``.
    """

    def _activation(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    @torch.jit.unused
    def _run_counted(
        self,
        input: Tensor,
        counts: Tensor,
        unit_dim: int,
        threshold: Tensor,
        abs_sum: Optional[Tensor],
    ) -> Tensor:
        return torch.ops.torch_ext.prelu_counted(
            input, self.weight, counts, unit_dim, threshold, abs_sum
        )


class _SavesOutput:
    """The opt-in ``save_output`` of ELU, CELU and SELU (see :func:`torch_ext.functional.elu`):
    not part of the state dict, shown in the repr when set."""

    save_output: bool = False

    def extra_repr(self) -> str:
        base = super().extra_repr()  # type: ignore[misc]
        if not self.save_output:
            return base
        return f"{base}, save_output=True" if base else "save_output=True"  # SELU: no base


class ELU(CountedActivation, _SavesOutput, torch.nn.ELU):
    r"""ELU, :math:`x` if :math:`x > 0` else :math:`\alpha (e^x - 1)`, run by
    ``torch.ops.torch_ext.elu``.

    Args:
        alpha: the negative saturation value. Default: ``1.0``.
        inplace: overwrite the input. Default: ``False``.
        save_output: keep the output for backward instead of the input (less memory; the
            output must then not be modified in place before backward, and the float32
            gradient loses precision below about -10). Default: ``False``, as PyTorch.
    """

    __constants__ = ["alpha", "inplace", "save_output"]

    def __init__(
        self, alpha: float = 1.0, inplace: bool = False, save_output: bool = False
    ) -> None:
        super().__init__(alpha, inplace)
        self.save_output = save_output

    def _activation(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace, self.save_output)

    @torch.jit.unused
    def _run_counted(
        self,
        input: Tensor,
        counts: Tensor,
        unit_dim: int,
        threshold: Tensor,
        abs_sum: Optional[Tensor],
    ) -> Tensor:
        return torch.ops.torch_ext.elu_counted(
            input, self.alpha, 1.0, counts, unit_dim, threshold, self.save_output, abs_sum=abs_sum
        )


class CELU(CountedActivation, _SavesOutput, torch.nn.CELU):
    r"""CELU, :math:`x` if :math:`x > 0` else :math:`\alpha (e^{x / \alpha} - 1)`, run by
    ``torch.ops.torch_ext.celu``.

    Args:
        alpha: the negative saturation value; must not be 0. Default: ``1.0``.
        inplace: overwrite the input. Default: ``False``.
        save_output: keep the output for backward instead of the input; see :class:`ELU`.
            Default: ``False``.
    """

    __constants__ = ["alpha", "inplace", "save_output"]

    def __init__(
        self, alpha: float = 1.0, inplace: bool = False, save_output: bool = False
    ) -> None:
        super().__init__(alpha, inplace)
        self.save_output = save_output

    def _activation(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace, self.save_output)

    @torch.jit.unused
    def _run_counted(
        self,
        input: Tensor,
        counts: Tensor,
        unit_dim: int,
        threshold: Tensor,
        abs_sum: Optional[Tensor],
    ) -> Tensor:
        if self.alpha == 0:  # the op's error ("alpha cannot be 0"), not Python's
            return self._activation(input)
        # alpha * expm1(z / alpha): ELU with scale 1 and input_scale 1 / alpha, as in ATen.
        return torch.ops.torch_ext.elu_counted(
            input,
            self.alpha,
            1.0,
            counts,
            unit_dim,
            threshold,
            self.save_output,
            input_scale=1.0 / self.alpha,
            abs_sum=abs_sum,
        )


class SELU(CountedActivation, _SavesOutput, torch.nn.SELU):
    r"""SELU, :math:`\lambda x` if :math:`x > 0` else :math:`\lambda\alpha (e^x - 1)`, run
    by ``torch.ops.torch_ext.selu``. Use with LeCun-normal init for self-normalization.

    Args:
        inplace: overwrite the input. Default: ``False``.
        save_output: keep the output for backward instead of the input; see :class:`ELU`.
            Default: ``False``.
    """

    __constants__ = ["inplace", "save_output"]

    def __init__(self, inplace: bool = False, save_output: bool = False) -> None:
        super().__init__(inplace)
        self.save_output = save_output

    def _activation(self, input: Tensor) -> Tensor:
        return F.selu(input, self.inplace, self.save_output)

    @torch.jit.unused
    def _run_counted(
        self,
        input: Tensor,
        counts: Tensor,
        unit_dim: int,
        threshold: Tensor,
        abs_sum: Optional[Tensor],
    ) -> Tensor:
        return torch.ops.torch_ext.elu_counted(
            input,
            F.SELU_ALPHA,
            F.SELU_SCALE,
            counts,
            unit_dim,
            threshold,
            self.save_output,
            abs_sum=abs_sum,
        )
