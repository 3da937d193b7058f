"""Call sites under torch.distributed (gloo, 2 processes): ranks that loop over different
numbers of time steps see different call sites (``cell.act#3`` on one rank only); the
collective report still agrees on every rank and sums each site's counts, compared with the
pre-activations of both ranks computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from test_monitor_distributed import init_group, spawn

STEPS = [4, 2]  # time steps of rank 0's and rank 1's sequence
SITES = ["cell.act", "cell.act#1", "cell.act#2", "cell.act#3"]


def sequence(rank: int) -> torch.Tensor:
    return torch.randn(STEPS[rank], 6, 3, generator=torch.Generator().manual_seed(rank))


def counts_of(report) -> dict:
    return {name: [r.samples, r.active_counts, r.alive_counts] for name, r in report.layers.items()}


def loop_worker(rank: int, world_size: int, port: int, out: str) -> None:
    from test_monitor_call_sites import Loop

    from torch_ext import DeadNeuronMonitor

    init_group(rank, world_size, port)
    try:
        model = Loop(torch.nn.ReLU())
        with DeadNeuronMonitor(model, window=1) as monitor:
            model(sequence(rank)).sum().backward()
            local = counts_of(monitor.report(collective=False))
            summed = counts_of(monitor.report())
            monitor.step()
            closed = counts_of(monitor.history[-1])
            names = monitor.layer_names
        Path(out, f"rank{rank}.json").write_text(json.dumps([local, summed, closed, names]))
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def test_ranks_with_different_call_sites_agree_on_the_report(tmp_path):
    from test_monitor_call_sites import Loop

    spawn(loop_worker, str(tmp_path))
    (local0, summed0, closed0, names0), (local1, summed1, closed1, names1) = (
        json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)
    )
    assert list(local0) == SITES and list(local1) == SITES[:2]
    assert summed0 == summed1 == closed0 == closed1 and list(summed0) == SITES
    assert names0 == names1 == SITES  # rank 1 holds the sites only rank 0 ran, for later reports
    model = Loop(torch.nn.ReLU())
    zs = [model.pre_activations(sequence(rank)) for rank in range(2)]
    for k, site in enumerate(SITES):
        z = torch.cat([steps[k] for steps in zs if len(steps) > k])
        assert summed0[site] == [z.shape[0], (z > 0).sum(0).tolist(), (z > 0).sum(0).tolist()], site
