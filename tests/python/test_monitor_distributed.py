"""DeadNeuronMonitor under torch.distributed (DDP, gloo, 2 processes): the report sums the
counts of all ranks and equals the single-process report of the same data."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

import torch_ext  # noqa: F401


def make_model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        model[0].bias[[2, 5]] = -100.0
    return model


def data() -> torch.Tensor:
    return torch.randn(64, 5, generator=torch.Generator().manual_seed(1))


def monitored_counts(model: torch.nn.Module, x: torch.Tensor, steps: int = 2) -> dict:
    from torch_ext import DeadNeuronMonitor

    with DeadNeuronMonitor(model, window=steps) as monitor:
        for _ in range(steps):
            model(x).sum().backward()
            monitor.step()
    layer = monitor.history[-1].layers
    return {name: [r.samples, r.active_counts, r.alive_counts, r.dead_units] for name, r in layer.items()}


def worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model = torch.nn.parallel.DistributedDataParallel(make_model())
        shard = data().chunk(world_size)[rank]
        counts = monitored_counts(model.module, shard)
        if rank == 0:
            Path(out).write_text(json.dumps(counts))
        # Both ranks leave together: gloo aborts a rank whose peer tears down mid-exchange.
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_report_equals_single_process(tmp_path):
    out = tmp_path / "rank0.json"
    sys.path.insert(0, str(Path(__file__).parent))
    mp.start_processes(worker, args=(2, free_port(), str(out)), nprocs=2, join=True,
                       start_method="spawn")
    distributed = json.loads(out.read_text())
    single = monitored_counts(make_model(), data())
    assert distributed == json.loads(json.dumps(single))
    assert distributed["1"][3] == [2, 5]
