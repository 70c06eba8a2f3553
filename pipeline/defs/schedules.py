"""The annual rebuild: on `schedule.date`/`schedule.time` of params.yaml (report.time_zone), a run
of `annual_report_job` for the year that has just become a report year.

`year_due` does the work without Dagster: the tick's local year, if it is a report year at the
tick (`config.report_years`), else None (the schedule skips, saying when that year is complete).
One run key per year: a year is requested once, however often the schedule is evaluated."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from pipeline.config import (
    clock_now,
    load_params,
    params_path,
    report_years,
    time_zone,
    year_available_on,
)
from pipeline.defs.partitions import partition_time_zone


def annual_cron(params: dict[str, Any] | None = None) -> str:
    """The schedule's cron string from `schedule.date` (MM-DD) and `schedule.time` (HH:MM)."""
    params = params or load_params()
    spec = params["schedule"]
    try:
        at = dt.datetime.fromisoformat(f"2001-{spec['date']}T{spec['time']}")
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{params_path()}: schedule.date/schedule.time={spec.get('date')!r}/"
            f"{spec.get('time')!r}: expected a month-day and a time like 07-15 and 06:00"
        ) from None
    return f"{at.minute} {at.hour} {at.day} {at.month} *"


def year_due(at: dt.datetime, params: dict[str, Any] | None = None) -> int | None:
    """The report year a tick at `at` requests: its local year, if already a report year."""
    year = at.astimezone(time_zone(params)).year
    return year if year in report_years(params, now=at) else None


def build_annual_schedule(
    job, default_status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING
) -> ScheduleDefinition:
    """`annual_report_schedule`: once a year, a run of `job` for the newly completed year."""

    @schedule(
        name="annual_report_schedule",
        job=job,
        cron_schedule=annual_cron(),
        execution_timezone=partition_time_zone(),
        default_status=default_status,
        description="Once a year (params.yaml schedule): the report of the year just completed.",
    )
    def annual_report_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        at = context.scheduled_execution_time or clock_now()
        year = year_due(at)
        if year is None:
            local = at.astimezone(time_zone(None))
            return SkipReason(
                f"report year {local.year} is complete only on "
                f"{year_available_on(local.year)} (params.yaml week_rule): nothing to run yet"
            )
        return RunRequest(
            run_key=f"annual-report:{year}",
            partition_key=str(year),
            tags={"trigger": "annual_report_schedule"},
        )

    return annual_report_schedule
