"""Headless build: for each report year up to --year, in order, materialise what changed.

Each year's aggregates go to the history store, so the report of year Y can compare it with the
years before. An asset runs when it was never materialised, its code version (code, params,
settings it reads: `pipeline.defs.versions`) changed, an upstream has a new data version, or its
files are gone (`pipeline.defs.stale`); otherwise it is skipped. A stale asset runs
together with everything downstream of it, in one run in graph order, so that no asset reads its
inputs' old data. `--force` (or BBTR_FORCE_REBUILD=1) materialises everything and makes the
simulator write every file again. At start a build locks the data folder (warehouse/.build.lock)
and removes the temporary files and folders an interrupted run left (`atomic.remove_debris`).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import IO

from pipeline.atomic import remove_debris
from pipeline.config import (
    FLOW_FORMATS,
    RAW_SOURCES,
    SCALES,
    Paths,
    Settings,
    listed_years,
    report_years,
)
from pipeline.parallel import Background

AHEAD_NICE = 5  # the simulator's workers yield the CPU to the Dagster run of the year before


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    years, defaults = report_years(), Settings.from_env()
    if defaults.source == "simulator":  # the simulated ISP has the listed (calibrated) years only
        years = [y for y in years if y <= listed_years()[-1]]
    p = argparse.ArgumentParser(prog="python -m pipeline.build", description=__doc__)
    p.add_argument(
        "--year", type=int, default=years[-1], help="report year to build (default: latest)"
    )
    p.add_argument("--from-year", type=int, default=years[0], help="first year to (re)build")
    p.add_argument("--only", action="store_true", help="build --year alone (history must exist)")
    p.add_argument("--scale", default=defaults.scale, choices=SCALES, help="simulator size")
    p.add_argument(
        "--source",
        default=defaults.source,
        choices=RAW_SOURCES,
        help="simulate raw inputs, or read BBTR_RAW_DIR",
    )
    p.add_argument(
        "--flow-format",
        default=defaults.flow_format,
        choices=FLOW_FORMATS,
        help="form of the simulated ISP's flow exports (the pipeline reads any of them)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        default=os.environ.get("BBTR_FORCE_REBUILD") == "1",
        help="rebuild every asset and re-simulate, changed or not (also BBTR_FORCE_REBUILD=1)",
    )
    return p.parse_args(argv)


def build(
    year: int,
    from_year: int,
    only: bool = False,
    settings: Settings | None = None,
    force: bool | None = None,
) -> bool:
    """Materialise what changed (everything with `force`) for each partition from_year..year;
    False if any step failed."""
    from dagster import DagsterInstance

    from pipeline.definitions import defs
    from pipeline.defs.resources import resource_from_settings
    from pipeline.defs.versions import with_code_versions

    definitions = defs()
    settings = settings or Settings.from_env()
    if force is None:
        force = os.environ.get("BBTR_FORCE_REBUILD") == "1"
    assets = with_code_versions(list(definitions.assets or []), settings)
    resources = dict(definitions.resources or {}) | {"settings": resource_from_settings(settings)}
    instance = (
        DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    )
    years = [year] if only else [y for y in report_years() if from_year <= y <= year]
    lock = _hold_build_lock(Paths.from_env())
    removed = remove_debris(_debris_roots(Paths.from_env(), settings))
    if removed:
        print(f"build: removed {len(removed)} temporary files and folders left by an "
              "interrupted run", flush=True)  # fmt: skip
    saved = os.environ.get("BBTR_FORCE_REBUILD")
    if force:
        os.environ["BBTR_FORCE_REBUILD"] = "1"  # the simulator rewrites its files too
    stages: dict[str, float] = {}
    ahead = _simulate_ahead(years, settings, force)
    try:
        for y in years:
            started = time.monotonic()
            if ahead is not None:
                _wait_for_simulator(ahead, y)
            ran = _build_year(instance, assets, resources, y, settings, force, stages)
            took = time.monotonic() - started
            if ran is None:
                return False
            what = f"{len(ran)} assets" if ran else "nothing changed"
            print(f"build: report year {y}: {what} in {took:.0f}s", flush=True)
    finally:
        if ahead is not None:
            ahead.close()
        lock.close()
        if saved is None:
            os.environ.pop("BBTR_FORCE_REBUILD", None)
        else:
            os.environ["BBTR_FORCE_REBUILD"] = saved
    if ahead is not None:
        _merge_truth_manifest(settings)
    print_stages(stages)
    return True


def _simulate_ahead(years: list[int], settings: Settings, force: bool) -> Background | None:
    """The simulated ISP's years, written by worker processes ahead of the Dagster runs: each
    year's `raw_inputs` step then finds its files (the simulator's cache) instead of writing them
    while the rest of the graph waits. None when raw inputs are an ISP's own, or under --force
    (the steps write every file again themselves)."""
    if settings.source != "simulator" or force:
        return None
    from pipeline.defs.simulator import simulate_ahead

    return simulate_ahead(years, Paths.from_env(), settings, AHEAD_NICE)


def _wait_for_simulator(ahead: Background, year: int) -> None:
    """Wait for the year's files; a failure is left to the `raw_inputs` step, which simulates the
    year again and reports the error where the run shows it."""
    try:
        sim = ahead.result(year)
    except Exception as err:  # noqa: BLE001 - reported by the step that retries it
        print(f"build: simulating {year} ahead failed ({err}); raw_inputs will retry", flush=True)
        return
    if not sim["reused"]:
        print(f"build: simulated {year} in {sim['seconds']:.0f}s (worker process)", flush=True)


def _merge_truth_manifest(settings: Settings) -> None:
    """`truth/manifest.json` again once every year is written (workers merged it concurrently)."""
    from pipeline.defs.simulator import merge_truth_manifest

    merge_truth_manifest(Paths.from_env(), settings)


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def print_stages(stages: dict[str, float]) -> None:
    """Seconds per asset step summed over the years, slowest first, and the build's CPU."""
    if not stages:
        return
    print("build: stage breakdown (step seconds, all years):", flush=True)
    for name, seconds in sorted(stages.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"build:   {name:<28} {seconds:7.1f}s", flush=True)
    print(f"build:   {'(CPU, incl. workers)':<28} {cpu_seconds():7.1f}s", flush=True)


def _debris_roots(paths: Paths, settings: Settings) -> list[Path]:
    """Where our runs write (an ISP's own raw folder only when the simulator writes it)."""
    roots = [paths.warehouse, paths.history, paths.reports, paths.truth]
    return roots + ([paths.raw] if settings.source == "simulator" else [])


def _hold_build_lock(paths: Paths) -> IO:
    """An exclusive lock on warehouse/.build.lock for this build (released when the file is
    closed, or the process dies): the start-of-run cleanup never removes a running build's
    temporary files, and two builds never write one data folder at once."""
    paths.warehouse.mkdir(parents=True, exist_ok=True)
    handle = open(paths.warehouse / ".build.lock", "a")  # noqa: SIM115 - held for the build
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(
            f"another build is running on {paths.warehouse} (it holds .build.lock)"
        ) from None
    return handle


def descendants(assets, keys) -> set:
    """Every asset key downstream of `keys` in the graph of `assets` (`keys` not included)."""
    from dagster import AssetSelection

    if not keys:
        return set()
    return set(AssetSelection.assets(*keys).downstream(include_self=False).resolve(assets))


def _build_year(
    instance, assets, resources, year: int, settings: Settings, force: bool,
    stages: dict[str, float] | None = None,
):  # fmt: skip
    """Run the year's stale assets and all downstream of them; the names run, or None on failure.
    Adds each step's seconds to `stages`."""
    from dagster import materialize

    from pipeline.defs.stale import stale_assets

    paths, partition = Paths.from_env(), str(year)
    always = ["raw_inputs"] if settings.source == "files" else []
    ran: list[str] = []
    previous: list[str] | None = None
    for _ in range(len(assets) + 1):
        if force:
            todo = {a.key: "--force" for a in assets}
        else:
            stale = stale_assets(instance, assets, partition, paths, always)
            if not stale:
                break
            names = sorted(k.to_user_string() for k in stale)
            if names == previous:  # e.g. files another step rewrote: do not loop
                print(f"build: {year} still stale after a run: {names}", file=sys.stderr)
                break
            previous = names
            todo = {k: "downstream of a stale asset" for k in descendants(assets, stale)}
            todo.update(stale)
        for key, why in sorted(todo.items()):
            print(f"build: {year} {key.to_user_string()}: {why}", flush=True)
        result = materialize(
            assets,
            selection=sorted(todo),
            instance=instance,
            resources=resources,
            partition_key=partition,
            raise_on_error=False,
            tags={"bbtr/year": partition},
        )
        if stages is not None:
            add_step_seconds(stages, result.all_events)
        if not result.success:
            failures = [e for e in result.all_events if e.is_step_failure]
            for event in failures:  # why, in one line per step (e.g. a threshold's message)
                print(f"build: {year} {event.step_key}: {failure_line(event)}", file=sys.stderr)
            failed = [e.step_key for e in failures]
            print(f"build: report year {year} FAILED in steps {failed}", file=sys.stderr)
            return None
        ran += [k.to_user_string() for k in todo]
        if force:
            break
    return ran


def add_step_seconds(stages: dict[str, float], events) -> None:
    """Each successful step's duration (Dagster's own measure) added to `stages[step]`."""
    for event in events:
        if event.is_step_success and event.step_key and event.event_specific_data is not None:
            seconds = event.event_specific_data.duration_ms / 1000
            stages[event.step_key] = stages.get(event.step_key, 0.0) + seconds


def failure_line(event) -> str:
    """The last line of the error a failed step raised, without the exception's module path."""
    error = event.step_failure_data.error if event.step_failure_data else None
    while error is not None and error.cause is not None:
        error = error.cause
    line = ((error.message if error else "").strip().splitlines() or ["(no message)"])[-1]
    head, _, rest = line.partition(": ")
    return rest if rest and " " not in head else line


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = replace(
        Settings.from_env(), scale=args.scale, source=args.source, flow_format=args.flow_format
    )
    os.environ.update(settings.as_env())  # worker processes and a later `make ui` see the same
    started = time.monotonic()
    ok = build(args.year, args.from_year, args.only, settings, args.force)
    if ok:
        print(
            f"build: done in {time.monotonic() - started:.0f}s"
            f" → {Paths.from_env().reports / str(args.year)}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
