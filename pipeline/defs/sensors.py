"""Sensor: a capture file closed by the live collector (pipeline.collect) → a run of its year.

`new_collector_files` does the work without Dagster. A file's year is the year of its date
folder (`<collector dir>/<YYYY-MM-DD>/*.pcap`, UTC dates as the collector names them).
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
    evaluation). Years that are not partitions of `job` are skipped (and logged).
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
        partitions = getattr(job, "partitions_def", None)
        known = set(partitions.get_partition_keys()) if partitions is not None else set(by_year)
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
