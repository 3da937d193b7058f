"""The monitor under torch.distributed: ranks agree on the layers, then sum their counts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from .names import site_name


# --- torch.distributed -----------------------------------------------------------------------
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
