"""DeadNeuronMonitor under torch.distributed (DDP, gloo, 2 processes): the report sums the
counts of all ranks and equals the single-process report of the same data, also when the
ranks ran different layers; revive leaves every rank with the same weights."""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import torch_ext  # noqa: F401

# Under pytest-xdist, one worker runs this file: its module fixture (the two ranks, which run
# every scenario) then runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("distributed")


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
    return {
        name: [r.samples, r.active_counts, r.alive_counts, r.dead_units]
        for name, r in layer.items()
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_group(rank: int, world_size: int, port: int) -> None:
    """gloo with a timeout, so that a mismatched collective fails the test, not hangs it."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group(
        "gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=60)
    )


def spawn(worker, *args) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    mp.start_processes(
        worker, args=(2, free_port(), *args), nprocs=2, join=True, start_method="spawn"
    )


def worker(rank: int, world_size: int, port: int, out: str) -> None:
    """Every scenario of this file, one after the other, in one process group: a start of
    two processes (each loading torch) costs seconds, so the tests share one."""
    init_group(rank, world_size, port)
    try:
        for scenario in (ddp_counts, branch_counts, revived_weights, fsdp2_links):
            scenario(rank, world_size, Path(out))
        # Both ranks leave together: gloo aborts a rank whose peer tears down mid-exchange.
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ranks_ran(tmp_path_factory) -> Path:
    """The folder where the two ranks wrote what each scenario gave them. A scenario that
    failed fails the tests whose files are missing, with the ranks' error; the others stand."""
    out = tmp_path_factory.mktemp("ranks")
    try:
        spawn(worker, str(out))
    except Exception as error:  # noqa: BLE001 - re-raised by the tests it concerns
        (out / "error.txt").write_text(f"the ranks failed:\n{error}")
    return out


def read_rank_file(folder: Path, name: str) -> Path:
    """`folder / name`, or the ranks' error if they did not write it."""
    path = folder / name
    if not path.exists():
        error = folder / "error.txt"
        pytest.fail(error.read_text() if error.exists() else f"no {name}", pytrace=False)
    return path


def ddp_counts(rank: int, world_size: int, out: Path) -> None:
    model = torch.nn.parallel.DistributedDataParallel(make_model())
    shard = data().chunk(world_size)[rank]
    counts = monitored_counts(model.module, shard)
    if rank == 0:
        (out / "ddp.json").write_text(json.dumps(counts))


def test_ddp_report_equals_single_process(ranks_ran):
    distributed = json.loads(read_rank_file(ranks_ran, "ddp.json").read_text())
    single = monitored_counts(make_model(), data())
    assert distributed == json.loads(json.dumps(single))
    assert distributed["1"][3] == [2, 5]


class Branchy(torch.nn.Module):
    """A trunk every rank runs and a branch only some ranks run."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(5, 8)
        self.act = torch.nn.ReLU()
        self.branch = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())

    def forward(self, x, take_branch: bool):
        h = self.act(self.fc(x))
        return self.branch(h) if take_branch else h


def counts_of(report) -> dict:
    return {name: [r.samples, r.active_counts, r.alive_counts] for name, r in report.layers.items()}


def branch_counts(rank: int, world_size: int, out: Path) -> None:
    from torch_ext import DeadNeuronMonitor

    model = Branchy()
    x = data().chunk(world_size)[rank]
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x, take_branch=rank == 0).sum().backward()
        local = counts_of(monitor.report(collective=False))
        summed = counts_of(monitor.report())
        monitor.step()
        closed = counts_of(monitor.history[-1])
    (out / f"branch{rank}.json").write_text(json.dumps([local, summed, closed]))


def test_ranks_that_skip_a_branch_agree_on_the_report(ranks_ran):
    (local0, summed0, closed0), (local1, summed1, closed1) = (
        json.loads(read_rank_file(ranks_ran, f"branch{r}.json").read_text()) for r in range(2)
    )
    assert summed0 == summed1 == closed0 == closed1
    assert "branch.1" in local0 and "branch.1" not in local1
    assert summed0["branch.1"] == local0["branch.1"]  # rank 1 contributed nothing to it
    trunk = [
        local0["act"][0] + local1["act"][0],
        [a + b for a, b in zip(local0["act"][1], local1["act"][1])],
        [a + b for a, b in zip(local0["act"][2], local1["act"][2])],
    ]
    assert summed0["act"] == trunk and trunk[0] == 64


def revived_weights(rank: int, world_size: int, out: Path) -> None:
    from torch_ext import DeadNeuronMonitor, revive

    model = make_model()  # the same weights on both ranks; units 2 and 5 dead
    x = data().chunk(world_size)[rank]
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        torch.manual_seed(100 + rank)  # each rank's own draw would differ
        revived = revive(model, monitor)
    torch.save({"revived": dict(revived), "state": model.state_dict()}, out / f"revive{rank}.pt")


def test_revive_gives_every_rank_the_same_weights(ranks_ran):
    rank0, rank1 = (torch.load(read_rank_file(ranks_ran, f"revive{r}.pt")) for r in range(2))
    assert rank0["revived"] == rank1["revived"] == {"1": [2, 5]}
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key
    initial = make_model()[0].weight.detach()
    assert not torch.equal(rank0["state"]["0.weight"][[2, 5]], initial[[2, 5]])  # re-drawn
    assert torch.equal(rank0["state"]["0.weight"][[0, 1, 3, 4, 6, 7]], initial[[0, 1, 3, 4, 6, 7]])


def fsdp2_links(rank: int, world_size: int, out: Path) -> None:
    """fully_shard on each Linear and on the model: its hooks on the feeder's output and
    its identity wrap of the reader's input are not other uses of the layer; revive then
    refuses only what it cannot do (sharded weights), saying so."""
    import logging

    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from torch_ext import DeadNeuronMonitor, revive

    model = make_model()
    mesh = init_device_mesh("cpu", (world_size,))
    for layer in (model[0], model[2]):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    x = data().chunk(world_size)[rank]
    logging.getLogger("torch_ext.revive").setLevel(logging.ERROR)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        links = [type(m).__name__ for m in [monitor.links("1")[0], *monitor.links("1")[1]]]
        revived = revive(model, monitor)
    result = {"dead": monitor.history[-1].layers["1"].dead_units, "links": links}
    result |= {"revived": dict(revived), "skipped": revived.skipped}
    (out / f"fsdp2_{rank}.json").write_text(json.dumps(result))


def test_fsdp2_sharded_layers_are_linked_and_refused_for_what_they_are(ranks_ran):
    for rank in range(2):
        result = json.loads(read_rank_file(ranks_ran, f"fsdp2_{rank}.json").read_text())
        assert result["dead"] == [2, 5] and result["links"] == ["FSDPLinear", "FSDPLinear"]
        assert result["revived"] == {}
        assert "weight of '0' is sharded across ranks" in result["skipped"]["1"]
