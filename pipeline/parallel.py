"""Run independent partition tasks in worker processes (spawned: forking a process that holds
DuckDB or Dagster threads can deadlock)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def run_parallel(fn: Callable[[Any], Any], tasks: Iterable[Any], workers: int) -> list[Any]:
    """fn over tasks, in order; in-process when workers <= 1 or there is a single task."""
    tasks = list(tasks)
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
        return list(pool.map(fn, tasks))
