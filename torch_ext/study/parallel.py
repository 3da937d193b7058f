"""Runs the study's independent jobs (one trained network each) on several processes.

The networks are tiny: one core trains one network about as fast as two cores do, so the
study gains its speed from training several networks at once, one per core, each process
with one intra-op thread. Each job seeds its own generators (see ``training.train_one``),
so the results do not depend on the number of workers or on the order jobs finish in.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def usable_cores() -> int:
    """The cores this process may run on: its affinity, not the machine's count, and no more
    than a cgroup (v2) CPU quota allows, as a container limited to 2 CPUs of a 64-core host
    has."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _one_thread_worker() -> None:
    torch.set_num_threads(1)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread inside the block, as in the worker processes: the results of a
    convolution's reductions depend on how many threads split them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Workers:
    """Up to `count` worker processes, started by the first `map` that has several jobs and
    kept for the next (starting one costs an import of torch: seconds). A context manager.

    The processes are spawned, not forked: a fork of a process whose OpenMP threads have run
    can hang in the child.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.stop()

    def close(self) -> None:
        """Lets the workers finish their jobs, then stops them."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def stop(self) -> None:
        """Stops the workers now: their running jobs are killed and queued jobs cancelled
        (an error or Ctrl-C should not wait for the rest of the study)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
        if terminate is not None:
            terminate()
        else:
            for process in list((pool._processes or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def map(
        self,
        function: Callable[..., T],
        jobs: Sequence[tuple[Any, ...]],
        progress: Callable | None = None,
        cost: Callable[[tuple[Any, ...]], float] | None = None,
        **progress_kwargs: Any,
    ) -> list[T]:
        """``[function(*job) for job in jobs]``, on the worker processes.

        `cost` estimates a job's run time: the longest start first, so that no long job is
        left running alone at the end. `progress` (a tqdm-like wrapper) sees the jobs as
        they finish.
        """
        if self.count <= 1 or len(jobs) <= 1:
            items = progress(jobs, **progress_kwargs) if progress else jobs
            with one_thread():
                return [function(*job) for job in items]
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.count, context, initializer=_one_thread_worker)
        order = sorted(range(len(jobs)), key=lambda i: -cost(jobs[i]) if cost else 0)
        futures = {self._pool.submit(function, *jobs[index]): index for index in order}
        done = as_completed(futures)
        results: list[Any] = [None] * len(jobs)
        try:
            for future in progress(done, total=len(jobs), **progress_kwargs) if progress else done:
                results[futures[future]] = future.result()
        except BrokenProcessPool as error:
            self.stop()
            raise RuntimeError(
                "torch_ext.study: a worker process died. Called from a script? Spawned "
                "workers re-import the main module: guard the call with `if __name__ == "
                "'__main__':`, or run on one process (--workers 1). Otherwise the worker "
                "ran out of memory or crashed: its error is printed above."
            ) from error
        except BaseException:  # a job's error, Ctrl-C: the other jobs' results are moot
            self.stop()
            raise
        return results


@contextlib.contextmanager
def workers_of(workers: Workers | int) -> Iterator[Workers]:
    """`workers` itself, or a Workers of that many processes closed after the block."""
    if isinstance(workers, Workers):
        yield workers
        return
    with Workers(workers) as started:
        yield started
