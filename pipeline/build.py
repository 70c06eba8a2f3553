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
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import IO

from pipeline.atomic import remove_debris
from pipeline.config import FLOW_FORMATS, RAW_SOURCES, SCALES, Paths, Settings, report_years


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    years, defaults = report_years(), Settings.from_env()
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
    try:
        for y in years:
            started = time.monotonic()
            ran = _build_year(instance, assets, resources, y, settings, force)
            took = time.monotonic() - started
            if ran is None:
                return False
            what = f"{len(ran)} assets" if ran else "nothing changed"
            print(f"build: report year {y}: {what} in {took:.0f}s", flush=True)
    finally:
        lock.close()
        if saved is None:
            os.environ.pop("BBTR_FORCE_REBUILD", None)
        else:
            os.environ["BBTR_FORCE_REBUILD"] = saved
    return True


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


def _build_year(instance, assets, resources, year: int, settings: Settings, force: bool):
    """Run the year's stale assets and all downstream of them; the names run, or None on failure."""
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
