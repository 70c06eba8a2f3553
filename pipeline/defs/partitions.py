"""Report-year partitions: a yearly time window per report year, from the first year with data
up to the last one whose inputs are complete (`pipeline.config.report_years`), growing by itself.

Year Y's window starts on the local date its inputs are complete (`config.year_available_on`,
the same month-day every year) and is keyed `Y`; `end_offset=1` lists the window under way, so Y
exists from that date on. `EARLIER_YEARS` maps a year to itself and every earlier year (the
history that its figures and report read)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from dagster import TimeWindowPartitionMapping, TimeWindowPartitionsDefinition

from pipeline.config import available_month_day, first_report_year, params_path, time_zone

# How far back the figures and report of a year read: every report year up to 2068 from 2019 (a
# longer offset costs ~0.8 ms a year per mapping; the mapping clamps it at the first partition).
HISTORY_YEARS = 50


def partition_time_zone(params: dict[str, Any] | None = None) -> str:
    """The report's zone as Dagster takes it: an IANA name (a whole-hour offset as Etc/GMT±h)."""
    tz = time_zone(params)
    if isinstance(tz, zoneinfo.ZoneInfo):
        return tz.key
    hours, rest = divmod(tz.utcoffset(None), dt.timedelta(hours=1))
    if rest:
        raise ValueError(
            f"{params_path()}: report.time_zone: the report-year partitions need an IANA zone "
            "name or a whole-hour offset (Dagster has no fixed zone at a fraction of an hour)"
        )
    return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"


def year_partitions(params: dict[str, Any] | None = None) -> TimeWindowPartitionsDefinition:
    """The report years as a yearly time-window partition set (keys `YYYY`)."""
    month, day = available_month_day(params)
    return TimeWindowPartitionsDefinition(
        start=dt.datetime(first_report_year(params), month, day),
        fmt="%Y",
        cron_schedule=f"0 0 {day} {month} *",
        timezone=partition_time_zone(params),
        end_offset=1,
    )


report_year_partitions = year_partitions()

EARLIER_YEARS = TimeWindowPartitionMapping(start_offset=-HISTORY_YEARS, end_offset=0)
