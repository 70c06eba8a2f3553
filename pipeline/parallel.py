"""Run independent partition tasks in worker processes: a local pool (spawned: forking a process
that holds DuckDB or Dagster threads can deadlock) or the workers of a Dask cluster."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

# On a Dask cluster a task that raises is run again up to this many times (a transient I/O error);
# a task whose worker dies mid-run is rescheduled by the scheduler itself (its
# `distributed.scheduler.allowed-failures`, 3 by default). Tasks are idempotent: atomic writes.
DASK_RETRIES = 2
# Seconds to wait for the scheduler to answer before giving up with SchedulerUnreachable.
DASK_CONNECT_TIMEOUT_S = 5


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the configured address (BBTR_DASK_SCHEDULER)."""


def run_parallel(
    fn: Callable[[Any], Any],
    tasks: Iterable[Any],
    workers: int,
    on_result: Callable[[Any], None] | None = None,
    scheduler: str | None = None,
) -> list[Any]:
    """fn over tasks, results in task order; `on_result` sees each as it arrives (in task order),
    e.g. to report progress. With `scheduler` (a Dask scheduler address, tcp://HOST:PORT) on that
    cluster's workers; else in-process when workers <= 1 or there is a single task, or in a pool
    of `workers` spawned processes. A task's exception is re-raised with a note naming the task."""
    tasks = list(tasks)
    if scheduler and tasks:
        return _run_on_dask(fn, tasks, scheduler, on_result)
    if workers <= 1 or len(tasks) <= 1:
        return _in_order(fn, tasks, lambda i: fn(tasks[i]), on_result)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx) as pool:
        futures = [pool.submit(fn, t) for t in tasks]
        try:
            return _in_order(fn, tasks, lambda i: futures[i].result(), on_result)
        finally:
            for f in futures:
                f.cancel()


def _run_on_dask(
    fn: Callable[[Any], Any],
    tasks: list[Any],
    address: str,
    on_result: Callable[[Any], None] | None,
) -> list[Any]:
    client = connect_dask(address)
    try:
        futures = client.map(fn, tasks, pure=False, retries=DASK_RETRIES)
        try:
            return _in_order(fn, tasks, lambda i: futures[i].result(), on_result)
        except BaseException:
            client.cancel(futures)  # the tasks not yet run leave the cluster's queue
            raise
    finally:
        client.close()


def connect_dask(address: str) -> Any:
    """A `distributed.Client` of the scheduler at `address` (never a local cluster; tls:// takes
    its certificates from Dask's config, DASK_DISTRIBUTED__COMM__TLS__*); a one-line
    SchedulerUnreachable after DASK_CONNECT_TIMEOUT_S when nothing answers there."""
    from distributed import Client

    try:
        return Client(address, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise SchedulerUnreachable(
            f"BBTR_DASK_SCHEDULER={address}: no Dask scheduler answered within "
            f"{DASK_CONNECT_TIMEOUT_S} s ({type(err).__name__}); start one there (`dask scheduler`"
            " and `dask worker`) or unset BBTR_DASK_SCHEDULER to run on local processes"
        ) from None


def _in_order(
    fn: Callable[[Any], Any],
    tasks: list[Any],
    get: Callable[[int], Any],
    on_result: Callable[[Any], None] | None,
) -> list[Any]:
    """get(i) for each task in order, seen by `on_result`; an exception gets a note naming the
    task (function, index, short arguments)."""
    out = []
    for i, task in enumerate(tasks):
        try:
            result = get(i)
        except Exception as err:
            err.add_note(f"in task {i + 1} of {len(tasks)}: {describe_task(fn, task)}")
            raise
        out.append(_seen(result, on_result))
    return out


def describe_task(fn: Callable[[Any], Any], task: Any) -> str:
    """`fn(arg, …)` with the task's short arguments (paths, dates, names, numbers), ≤ 200 chars."""
    args = task if isinstance(task, tuple | list) else (task,)
    short = [_short(a) for a in args]
    text = f"{getattr(fn, '__name__', repr(fn))}({', '.join(s for s in short if s is not None)})"
    return text if len(text) <= 200 else text[:197] + "..."


def _short(arg: Any) -> str | None:
    if isinstance(arg, str | Path | dt.date):
        return str(arg)
    if isinstance(arg, int | float):
        return repr(arg)
    return None


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
