"""The monitor under torch.distributed: ranks agree on the layers, then sum their counts; the
one helper that says a warning every rank would say, once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

from .names import site_name

if TYPE_CHECKING:
    from .sites import CallSites, CallSiteTable


# --- torch.distributed -----------------------------------------------------------------------
def rank() -> int:
    """This process's rank under torch.distributed, 0 without it."""
    return torch.distributed.get_rank() if world_size() > 1 else 0


def warn_on_rank_zero(logger: logging.Logger, message: str) -> None:
    """Log `message` (the same on every rank: it comes from a report summed over ranks)
    once, on rank 0, rather than once per rank."""
    if rank() == 0:
        logger.warning(message)


def world_size() -> int:
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return torch.distributed.get_world_size() if distributed else 1


def collective_device(tensors: Iterable[Tensor]) -> torch.device:
    """Where the default process group reduces: the CPU for gloo and MPI, the current CUDA
    device for NCCL, else the device the counts are on."""
    backend = str(torch.distributed.get_backend())
    if "gloo" in backend or "mpi" in backend:
        return torch.device("cpu")
    if "nccl" in backend:
        return torch.device("cuda", torch.cuda.current_device())
    return next((t.device for t in tensors), torch.device("cpu"))


def agreed_widths(
    modules: list[str], widths: dict[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Every rank's counted layers, as ``(module name, call site)``, and their unit counts,
    the same on every rank (one all_gather_object): a layer one rank has not run yet (a
    branch, or a call site only a longer loop reaches) still takes part in the reduction, so
    no rank issues a collective the others do not. Ordered by module, then call site."""
    gathered: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(gathered, (modules, widths))
    agreed: dict[tuple[str, int], int] = {}
    for rank, (rank_modules, rank_widths) in enumerate(gathered):
        if rank_modules != gathered[0][0]:
            raise RuntimeError(
                f"DeadNeuronMonitor: ranks monitor different layers (rank 0: {gathered[0][0]}, "
                f"rank {rank}: {rank_modules}); give every rank's monitor the same model"
            )
        for site, units in rank_widths.items():
            if agreed.setdefault(site, units) != units:
                raise RuntimeError(
                    f"DeadNeuronMonitor: layer '{site_name(*site)}' has {units} units on rank "
                    f"{rank} but {agreed[site]} on an earlier rank; pass unit_dim for it"
                )
    # Functional call sites (named by a module and function, found as they run) follow the
    # modules, by name.
    order = {name: index for index, name in enumerate(modules)}

    def key(site: tuple[str, int]) -> tuple[int, str, int]:
        known = site[0] in order
        return (order[site[0]] if known else len(order), "" if known else site[0], site[1])

    return {site: agreed[site] for site in sorted(agreed, key=key)}


class LayerCounts(NamedTuple):
    """One layer's counts on the host: per unit, active and alive samples; samples per unit;
    with ``tau=``, per unit, the sum of |h| (else None)."""

    active: list[int]
    alive: list[int]
    samples: int
    abs_sums: list[float] | None = None


def summed_over_ranks(
    table: CallSiteTable, placeholder_site: Callable[[str], CallSites | None]
) -> dict[str, LayerCounts]:
    """Each layer's counts summed over ranks: one all_gather_object agrees on the layers and
    their widths, then one all_reduce sums every layer's counts and samples (and one more
    its |h| sums, with tau=), zeros where a rank has not counted it yet. A layer only other
    ranks ran is made here too (`placeholder_site` makes a functional call site's)."""
    local = {
        (layer.sites.name, layer.index): layer
        for layer in table.layers.values()
        if layer.counts is not None
    }
    modules = [name for name, sites in table.sites.items() if not sites.functional]
    widths = agreed_widths(modules, {site: layer.counts.shape[1] for site, layer in local.items()})
    device = collective_device(layer.counts for layer in local.values())
    pieces = []
    for site, units in widths.items():
        layer = local.get(site)
        if layer is None:  # not run on this rank yet
            pieces.append(torch.zeros(2 * units, dtype=torch.int64, device=device))
        else:
            pieces.append(layer.counts.reshape(-1).to(device))
    samples = [local[site].samples if site in local else 0 for site in widths]
    pieces.append(torch.tensor(samples, dtype=torch.int64, device=device))
    flat = torch.cat(pieces)
    torch.distributed.all_reduce(flat)
    flat = flat.cpu()
    sums = _summed_abs_sums(table, local, widths, device)
    result, offset, sum_offset = {}, 0, 0
    for index, ((module, call), units) in enumerate(widths.items()):
        sites = table.sites.get(module) or placeholder_site(module)
        name = table.site(sites, call).name  # a site only others ran, too
        counts = flat[offset : offset + 2 * units].view(2, units)
        layer_sums = None if sums is None else sums[sum_offset : sum_offset + units].tolist()
        result[name] = LayerCounts(
            counts[0].tolist(), counts[1].tolist(), int(flat[-len(widths) + index]), layer_sums
        )
        offset += 2 * units
        sum_offset += units
    return result


def _summed_abs_sums(
    table: CallSiteTable, local: dict, widths: dict, device: torch.device
) -> Tensor | None:
    """With tau=, every layer's |h| sums summed over ranks (float64), in `widths`' order."""
    if table.tau is None:
        return None
    pieces = []
    for site, units in widths.items():
        layer = local.get(site)
        if layer is None or layer.abs_sums is None:
            pieces.append(torch.zeros(units, dtype=torch.float64, device=device))
        else:
            pieces.append(layer.abs_sums.to(device))
    flat = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(flat)
    return flat.cpu()
