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
import logging
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import IO

from pipeline.atomic import remove_debris
from pipeline.buildlog import BuildLog, ensure_instance_settings, log_path
from pipeline.config import (
    FLOW_FORMATS,
    RAW_SOURCES,
    SCALES,
    Paths,
    Settings,
    listed_years,
    report_years,
)
from pipeline.config_schema import ConfigError
from pipeline.parallel import Background
from pipeline.storage.store import Store

log = logging.getLogger("pipeline.build")  # also when run as __main__

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


class BuildFailed(RuntimeError):
    """A step of a report year failed; the message is its root cause in one line."""


def build(
    year: int,
    from_year: int,
    only: bool = False,
    settings: Settings | None = None,
    force: bool | None = None,
) -> bool:
    """Materialise what changed (everything with `force`) for each partition from_year..year;
    False if any step failed. Progress goes to the terminal, everything to data/logs/."""
    paths = Paths.from_env()
    with BuildLog(log_path(paths.data_root)) as blog:
        started, cause = time.monotonic(), None
        try:
            _build(year, from_year, only, settings or Settings.from_env(), force, blog)
        except BuildFailed as failed:
            cause = str(failed)
        except Exception as err:  # the cause in one line; the traceback in the log file
            log.debug("the build stopped", exc_info=True)
            cause = one_line(err)
        _summary(blog, paths, year, time.monotonic() - started, cause)
    return cause is None


def _build(
    year: int, from_year: int, only: bool, settings: Settings, force: bool | None, blog: BuildLog
) -> None:
    from dagster import DagsterInstance, Definitions

    from pipeline.definitions import defs
    from pipeline.defs.jobs import annual_report_job
    from pipeline.defs.resources import resource_from_settings
    from pipeline.defs.versions import with_code_versions

    if force is None:
        force = os.environ.get("BBTR_FORCE_REBUILD") == "1"
    years = [year] if only else [y for y in report_years() if from_year <= y <= year]
    source = "an ISP's raw files" if settings.source == "files" else "the simulated ISP"
    log.info(
        "build: report years %s, %s (%s scale, %s)%s; full log %s", _span(years), source,
        settings.scale, settings.flow_format, " --force" if force else "", _shown(blog.path),
    )  # fmt: skip
    began = time.monotonic()
    definitions = defs()
    assets = with_code_versions(list(definitions.assets or []), settings)
    resources = dict(definitions.resources or {}) | {"settings": resource_from_settings(settings)}
    job = Definitions(assets=assets, resources=resources, jobs=[annual_report_job]).resolve_job_def(
        annual_report_job.name
    )
    home = os.environ.get("DAGSTER_HOME")
    if home:
        ensure_instance_settings(Path(home))
    instance = DagsterInstance.get() if home else DagsterInstance.ephemeral()
    lock = _hold_build_lock(Paths.from_env())
    removed = remove_debris(_debris_roots(Paths.from_env(), settings))
    removed += _remove_store_debris(Paths.from_env(), settings)
    if removed:
        log.info("build: removed %d temporary files and folders left by an interrupted run",
                 len(removed))  # fmt: skip
    saved = os.environ.get("BBTR_FORCE_REBUILD")
    if force:
        os.environ["BBTR_FORCE_REBUILD"] = "1"  # the simulator rewrites its files too
    stages: dict[str, float] = {}
    ahead = _simulate_ahead(years, settings, force)
    log.info(
        "build: graph of %d assets loaded in %.0f s%s", len(assets), time.monotonic() - began,
        f"; the simulated ISP writes {len(years)} years ahead in {settings.workers} worker "
        "processes" if ahead is not None else "",
    )  # fmt: skip
    groups = {s.key: s.group_name or "default" for a in assets for s in a.specs}
    try:
        for y in years:
            started = time.monotonic()
            if ahead is not None:
                _wait_for_simulator(ahead, y)
            year_stages: dict[str, float] = {}
            ran = _build_year(instance, job, assets, y, settings, force, year_stages, blog)
            for step, seconds in year_stages.items():
                stages[step] = stages.get(step, 0.0) + seconds
            took = time.monotonic() - started
            if ran:
                log.info("%d: done, %d assets in %.0f s (%s)", y, len(ran), took,
                         _by_group(year_stages, groups))  # fmt: skip
            else:
                log.info("%d: nothing changed (%.0f s)", y, took)
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
    log_stages(stages, groups)


def _span(years: list[int]) -> str:
    return f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0]) if years else "none"


def _shown(path: Path) -> str:
    """`path` relative to the working directory when under it (shorter lines)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _by_group(step_seconds: dict[str, float], groups: dict) -> str:
    """'ingest 9 s, attribute 3 s, …': step seconds summed per asset group, in graph order."""
    from dagster import AssetKey

    totals: dict[str, float] = {}
    for step, seconds in step_seconds.items():
        group = groups.get(AssetKey(step), "other")
        totals[group] = totals.get(group, 0.0) + seconds
    return ", ".join(f"{g} {s:.0f} s" for g, s in totals.items())


def _summary(blog: BuildLog, paths: Paths, year: int, seconds: float, cause: str | None) -> None:
    """The closing lines: time, PDF and pages, warnings, the log file; on failure the root cause
    last."""
    minutes, secs = divmod(int(round(seconds)), 60)
    took = f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
    pdf = paths.reports / str(year) / "report.pdf"
    if cause is None:
        log.info("build: done in %s (CPU %.0f s)", took, cpu_seconds())
        log.info("build: PDF %s (%s pages)", _shown(pdf), _pdf_pages(pdf))
    warnings = blog.warnings.messages
    if warnings:
        shown = "; ".join(warnings[:3]) + (
            f"; … {len(warnings) - 3} more" if len(warnings) > 3 else ""
        )
        log.info("build: %d warning%s: %s", len(warnings), "s" if len(warnings) > 1 else "", shown)
    elif cause is None:
        log.info("build: no warnings")
    log.info("build: full log %s", _shown(blog.path))
    if cause is not None:
        log.error("build: FAILED after %s: %s", took, cause)


def _pdf_pages(pdf: Path) -> str:
    """The PDF's page count (poppler's pdfinfo), or '?'."""
    import re
    import subprocess

    try:
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "?"
    found = re.search(r"^Pages:\s+(\d+)", info.stdout, re.MULTILINE)
    return found.group(1) if found else "?"


def one_line(err: BaseException) -> str:
    """The message of an exception in one line, without a module path ('ValueError: x' → 'x'
    only for builtins whose name says nothing more)."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[-1]
    return text if isinstance(err, BUILTIN_PLAIN) else f"{type(err).__name__}: {text}"


BUILTIN_PLAIN = (ValueError, FileNotFoundError, RuntimeError)  # their messages say what is wrong


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
    if not ahead.done(year):
        log.info("%d: waiting for the simulated ISP to write the year's raw files (worker process)",
                 year)  # fmt: skip
    try:
        sim = ahead.result(year)
    except Exception as err:  # noqa: BLE001 - reported by the step that retries it
        log.warning("%d: simulating ahead failed (%s); raw_inputs will retry", year, one_line(err))
        return
    if sim["reused"]:
        log.debug("%d: the simulated ISP's files are up to date", year)
    else:
        log.info("%d: the simulated ISP wrote %d raw files in %.0f s (worker process)", year,
                 sim["files"], sim["seconds"])  # fmt: skip


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


def log_stages(stages: dict[str, float], groups: dict) -> None:
    """Seconds per asset step summed over the years: per group on the terminal, per step (slowest
    first) in the log file; and the build's CPU."""
    if not stages:
        return
    log.info("build: step seconds, all years: %s", _by_group(stages, groups))
    log.debug("build: stage breakdown (step seconds, all years):")
    for name, seconds in sorted(stages.items(), key=lambda kv: (-kv[1], kv[0])):
        log.debug("build:   %-28s %7.1fs", name, seconds)
    log.debug("build:   %-28s %7.1fs", "(CPU, incl. workers)", cpu_seconds())


def _debris_roots(paths: Paths, settings: Settings) -> list[Path]:
    """Where our runs write (an ISP's own raw folder only when the simulator writes it)."""
    roots = [paths.warehouse, paths.history, paths.reports, paths.truth]
    return roots + ([paths.raw] if settings.source == "simulator" else [])


def _remove_store_debris(paths: Paths, settings: Settings) -> list[str]:
    """Temporary objects that killed uploads left in remote stores (older than an hour: a younger
    one may be a running task's upload); the raw store only when the simulator writes it."""
    names = ["warehouse", "history"] + (["raw"] if settings.source == "simulator" else [])
    urls = [getattr(paths, f"{name}_url") for name in names]
    return [p for url in urls if url for p in Store.from_url(url).remove_debris()]


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
    instance, job, assets, year: int, settings: Settings, force: bool,
    stages: dict[str, float] | None = None, blog: BuildLog | None = None,
) -> list[str]:  # fmt: skip
    """Run the year's stale assets and all downstream of them, as runs of the annual report job;
    the names run. Adds each step's seconds to `stages`; raises BuildFailed with the root cause."""
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
                log.warning("%d: still stale after a run: %s", year, names)
                break
            previous = names
            todo = {k: "downstream of a stale asset" for k in descendants(assets, stale)}
            todo.update(stale)
        for key, why in sorted(todo.items()):
            log.debug("build: %d %s: %s", year, key.to_user_string(), why)
        reasons = Counter(todo.values())
        log.info("%d: %d assets to run (%s)", year, len(todo),
                 ", ".join(f"{why}: {n}" for why, n in reasons.most_common()))  # fmt: skip
        result = job.execute_in_process(
            run_config=quiet_run_config(job, partition),
            instance=instance,
            partition_key=partition,
            asset_selection=sorted(todo),
            raise_on_error=False,
            tags={"bbtr/year": partition},
        )
        if blog is not None:
            blog.dagster_events(instance, result.run_id)
        if stages is not None:
            add_step_seconds(stages, result.all_events)
        for line in check_warnings(result.all_events):
            log.warning("%d %s", year, line)
        if not result.success:
            failures = [e for e in result.all_events if e.is_step_failure]
            for event in failures:  # why, in one line per step (e.g. a threshold's message)
                log.error("build: %d %s: %s", year, event.step_key, failure_line(event))
            skipped = len(todo) - len(failures) - sum(1 for e in result.all_events
                                                      if e.is_step_success)  # fmt: skip
            log.info("%d: %d steps not run after the failure (details in the log)", year, skipped)
            first = failures[0] if failures else None
            raise BuildFailed(
                f"{year} {first.step_key}: {failure_line(first)}" if first
                else f"{year}: the run of {job.name} failed (see the log)"
            )  # fmt: skip
        ran += [k.to_user_string() for k in todo]
        if force:
            break
    return ran


def quiet_run_config(job, partition: str) -> dict:
    """The partition's run config with Dagster's console logger silenced (its events go to the
    build's log file instead: `BuildLog.dagster_events`)."""
    config = job.partitioned_config
    base = dict(config.get_run_config_for_partition_key(partition)) if config else {}
    return base | {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def check_warnings(events) -> list[str]:
    """'asset: check name failed (description)' for each failed non-blocking asset check."""
    lines = []
    for event in events:
        data = event.event_specific_data
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not data.passed:
            lines.append(f"{data.asset_key.to_user_string()}: check {data.check_name} failed")
    return lines


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
    try:
        args = parse_args(argv)
        settings = replace(
            Settings.from_env(), scale=args.scale, source=args.source, flow_format=args.flow_format
        )
    except (ConfigError, ValueError) as err:  # a bad params.yaml or BBTR_* value: one line
        print(f"build: {err}", file=sys.stderr)
        return 2
    os.environ.update(settings.as_env())  # worker processes and a later `make ui` see the same
    return 0 if build(args.year, args.from_year, args.only, settings, args.force) else 1


if __name__ == "__main__":
    sys.exit(main())
