"""Sensors: a capture file closed by the live collector (pipeline.collect) → a run of its year;
the raw inputs of the newest report changed since it was built → a run of that year.

`new_collector_files` and `report_input_changes` do the work without Dagster. A collector
file's year is the year of its date folder (`<collector dir>/<YYYY-MM-DD>/*.pcap`, UTC dates as
the collector names them). The report whose inputs the rebuild changes is kept beside the new
one with the reason (`pipeline.report.supersede`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from pipeline.collect.collector import default_collector_dir
from pipeline.config import Paths, load_params, report_years
from pipeline.defs.partitions import report_year_partitions
from pipeline.fingerprint import digest, file_sha256
from pipeline.ingest.catalogue import raw_files_for_year


def _closed_captures(collector_dir: Path) -> list[tuple[int, str, Path]]:
    """(ctime ns, 'YYYY-MM-DD/name', path) of every closed .pcap in a date folder."""
    found = []
    for day_dir in collector_dir.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"):
        for path in day_dir.glob("*.pcap"):  # temp files are dotfiles ending .tmp: never matched
            if path.name.startswith("."):
                continue
            try:
                stamp = path.stat().st_ctime_ns
            except FileNotFoundError:
                continue
            found.append((stamp, f"{day_dir.name}/{path.name}", path))
    return sorted(found)


def new_collector_files(collector_dir: Path, cursor: str | None) -> tuple[list[Path], str]:
    """Closed capture files that appeared since `cursor`, sorted, and the cursor to store next.

    The cursor is JSON `{"ctime_ns": T, "names": [files with that ctime]}`. ctime, not mtime:
    the rename that closes a file (or a copy with preserved mtimes) sets ctime to "now".
    """
    state = json.loads(cursor) if cursor else {"ctime_ns": -1, "names": []}
    last, seen_at_last = int(state["ctime_ns"]), set(state["names"])
    new = [
        (stamp, rel, path)
        for stamp, rel, path in _closed_captures(Path(collector_dir))
        if stamp > last or (stamp == last and rel not in seen_at_last)
    ]
    if new:
        top = max(stamp for stamp, _, _ in new)
        names = sorted({rel for stamp, rel, _ in new if stamp == top})
        if top == last:
            names = sorted(seen_at_last | set(names))
        last, seen_at_last = top, set(names)
    next_cursor = json.dumps({"ctime_ns": last, "names": sorted(seen_at_last)})
    return [path for _, _, path in new], next_cursor


def file_year(path: Path) -> int:
    """Report year of a collector file: the year of its date folder."""
    return dt.date.fromisoformat(path.parent.name).year


def build_collector_sensor(
    job,
    collector_dir: Path | None = None,
    minimum_interval_seconds: int = 60,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
) -> SensorDefinition:
    """`collector_files_sensor` requesting `job` once per year partition with new closed files.

    The folder is `collector_dir`, else BBTR_COLLECTOR_DIR, else `<raw>/collector` (read at each
    evaluation). Years that are not partitions of `job` (of the report years when the job does not
    say) are skipped (and logged).
    """

    @sensor(
        name="collector_files_sensor",
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Runs the year of each capture file the live collector closes.",
    )
    def collector_files_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        directory = Path(collector_dir) if collector_dir else default_collector_dir()
        files, cursor = new_collector_files(directory, context.cursor)
        if not files:
            return SkipReason(f"no new closed capture files in {directory}")
        by_year: dict[str, list[Path]] = {}
        for path in files:
            by_year.setdefault(str(file_year(path)), []).append(path)
        partitions = getattr(job, "partitions_def", None) or report_year_partitions
        known = set(partitions.get_partition_keys())
        unknown = sorted(set(by_year) - known)
        if unknown:
            context.log.warning(f"collector files of years {unknown} are not report partitions")
        requests = [
            RunRequest(
                run_key=f"collector:{year}:{paths[-1].parent.name}/{paths[-1].name}",
                partition_key=year,
                tags={"collector_files": str(len(paths))},
            )
            for year, paths in sorted(by_year.items())
            if year in known
        ]
        if not requests:
            skip = SkipReason(f"{len(files)} new files, none in a report year ({unknown})")
            return SensorResult(skip_reason=skip, cursor=cursor)
        return SensorResult(run_requests=requests, cursor=cursor)

    return collector_files_sensor


def report_input_changes(
    paths: Paths, year: int, verified: dict[str, list[int]]
) -> tuple[list[str], dict[str, list[int]]]:
    """How the year's raw files differ from those its report was built from (`added`, `removed`,
    `changed` lines; [] when none or no report), and the files found equal, as name → [size,
    mtime ns]. A file with the size recorded is hashed only when its size and mtime are not in
    `verified` (the previous evaluation's answer), so an unchanged folder costs one stat a file."""
    provenance = paths.reports / str(year) / "provenance.json"
    if not provenance.is_file():
        return [], {}
    recorded = json.loads(provenance.read_text()).get("input_files_detail", {})
    current = {p.relative_to(paths.raw).as_posix(): p for p in raw_files_for_year(paths.raw, year)}
    changes = [f"added {n}" for n in sorted(current.keys() - recorded.keys())]
    changes += [f"removed {n}" for n in sorted(recorded.keys() - current.keys())]
    same: dict[str, list[int]] = {}
    for name in sorted(current.keys() & recorded.keys()):
        stat = current[name].stat()
        signature = [stat.st_size, stat.st_mtime_ns]
        if stat.st_size != recorded[name]["bytes"]:
            changes.append(f"changed {name}")
        elif (
            verified.get(name) == signature
            or file_sha256(current[name]) == recorded[name]["sha256"]
        ):
            same[name] = signature
        else:
            changes.append(f"changed {name}")
    return changes, same


def _signature(path: Path) -> list[int] | None:
    """[size, mtime ns] of a file, None if it is gone."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _recorded_inputs(paths: Paths, year: int) -> str | None:
    """The inputs digest the year's report records (its provenance.json)."""
    provenance = json.loads((paths.reports / str(year) / "provenance.json").read_text())
    return provenance.get("inputs_sha256")


def newest_reported_year(paths: Paths) -> int | None:
    """The latest report year that has a built report (reports/<year>/provenance.json)."""
    built = [y for y in report_years() if (paths.reports / str(y) / "provenance.json").is_file()]
    return built[-1] if built else None


def build_inputs_sensor(
    job,
    minimum_interval_seconds: int | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
) -> SensorDefinition:
    """`report_inputs_sensor`: a run of `job` for the newest report year whose raw inputs differ
    from its report's provenance (interval: params.yaml schedule.inputs_check_minutes)."""
    if minimum_interval_seconds is None:
        minimum_interval_seconds = 60 * int(load_params()["schedule"]["inputs_check_minutes"])

    @sensor(
        name="report_inputs_sensor",
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Re-runs the newest report year when its raw inputs changed since its report "
        "was built (the old report is kept under reports/superseded/ with the reason).",
    )
    def report_inputs_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        paths = Paths.from_env()
        year = newest_reported_year(paths)
        if year is None:
            return SkipReason(f"no built report under {paths.reports}")
        built_from = _recorded_inputs(paths, year)  # files verified against this report only
        state = json.loads(context.cursor) if context.cursor else {}
        verified = state.get("verified", {}) if state.get("inputs") == built_from else {}
        changes, same = report_input_changes(paths, year, verified)
        cursor = json.dumps({"inputs": built_from, "verified": same}, sort_keys=True)
        if not changes:
            skip = SkipReason(f"inputs of {year} unchanged")
            return SensorResult(skip_reason=skip, cursor=cursor)
        context.log.info(f"report year {year}: {len(changes)} raw files changed: {changes[:5]}")
        now = {c.split(" ", 1)[1]: _signature(paths.raw / c.split(" ", 1)[1]) for c in changes}
        request = RunRequest(
            run_key=f"inputs-changed:{year}:{digest(now)[:16]}",
            partition_key=str(year),
            tags={"trigger": "report_inputs_sensor", "changed_files": str(len(changes))},
        )
        return SensorResult(run_requests=[request], cursor=cursor)

    return report_inputs_sensor
