"""Run independent partition tasks in worker processes (spawned: forking a process that holds
DuckDB or Dagster threads can deadlock)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any


def run_parallel(
    fn: Callable[[Any], Any],
    tasks: Iterable[Any],
    workers: int,
    on_result: Callable[[Any], None] | None = None,
) -> list[Any]:
    """fn over tasks, in order; in-process when workers <= 1 or there is a single task.
    `on_result` sees each result as it arrives (in task order), e.g. to report progress."""
    tasks = list(tasks)
    if workers <= 1 or len(tasks) <= 1:
        return [_seen(fn(t), on_result) for t in tasks]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
        return [_seen(r, on_result) for r in pool.map(fn, tasks)]


def _seen(result: Any, on_result: Callable[[Any], None] | None) -> Any:
    if on_result is not None:
        on_result(result)
    return result


def _lower_priority(increment: int) -> None:
    os.nice(increment)


class Background:
    """fn over keyed tasks in spawned worker processes (submitted in key order) while the caller
    goes on; `result(key)` waits for one. Workers run `nice` steps below the caller, so the
    caller's own work comes first when both want the CPU."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        tasks: Mapping[Hashable, Any],
        workers: int,
        nice: int = 0,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(tasks))),
            mp_context=ctx,
            initializer=_lower_priority if nice else None,
            initargs=(nice,) if nice else (),
        )
        self._futures: dict[Hashable, Future] = {
            k: self._pool.submit(fn, t) for k, t in tasks.items()
        }

    def done(self, key: Hashable) -> bool:
        """Whether the task has finished (successfully or not)."""
        return self._futures[key].done()

    def result(self, key: Hashable) -> Any:
        """The task's return value (re-raises its exception)."""
        return self._futures[key].result()

    def close(self) -> None:
        """Cancel tasks not started, wait for running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
