"""Compute one aggregate table of a report year from the warehouse and store it in the history."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.aggregate import metrics
from pipeline.aggregate.history import read_history, write_history
from pipeline.atomic import write_parquet_atomic
from pipeline.config import Paths, load_params, weeks_for_year
from pipeline.ingest import completeness as inputs
from pipeline.ingest.catalogue import flow_days_for_year
from pipeline.ingest.flows import load_exporters
from pipeline.ingest.sources import UNREGISTERED
from pipeline.storage.stage import fetch, is_staged, store_of, working_copy

log = logging.getLogger(__name__)


def attributed_glob(paths: Paths) -> str:
    return str(paths.warehouse / "attributed" / "date=*" / "exporter=*" / "flows.parquet")


def user_week_path(paths: Paths, year: int) -> Path:
    """Per-user weekly usage (hashed keys): warehouse only, never published."""
    return paths.warehouse / "user_week" / f"year={year}.parquet"


def compute_user_week(paths: Paths, year: int, salt: str) -> pl.DataFrame:
    """Per personal user, analysis week: daily IN/OUT bytes (broadband: flows; mobile: billing)."""
    reads = store_reads(paths, year, ("attributed", "completeness", "mobile"))
    writes = {"warehouse": [_key(paths.warehouse, user_week_path(paths, year))]}
    with working_copy(paths, reads=reads, writes=writes):
        return _compute_user_week(paths, year, salt)


def _compute_user_week(paths: Paths, year: int, salt: str) -> pl.DataFrame:
    df = metrics.user_week_usage(
        attributed_glob(paths),
        paths.warehouse / "reference" / "mobile_usage.parquet",
        year,
        load_params(),
        salt,
        completeness_of(paths, year),
    )
    write_parquet_atomic(df, user_week_path(paths, year))
    users = df.group_by("service").len().sort("service").rows() if "service" in df.columns else []
    log.info("aggregate %d: weekly usage of %s users (%s)", year, f"{df.height:,}",
             ", ".join(f"{s} {n:,}" for s, n in users))  # fmt: skip
    return df


def ingest_reports_for_year(paths: Paths, year: int) -> list[dict]:
    """The ingest accounting of every exporter-day the year reads, in (date, exporter) order."""
    reports = []
    for day in flow_days_for_year(year):
        for f in sorted(
            (paths.warehouse / "ingest_report" / f"date={day.isoformat()}").glob("*.json")
        ):
            report = json.loads(f.read_text())
            name = f.stem.removeprefix("exporter=")
            reports.append(report | {"exporter": name, "date": day.isoformat()})
    return reports


# A table's computation: (warehouse paths, report year, params) -> the table of that year.
TableFunction = Callable[[Paths, int, dict[str, Any]], pl.DataFrame]


def from_monthly_counters(
    metric: Callable[[Path, int, dict[str, Any]], pl.DataFrame],
) -> TableFunction:
    """`metric` of the monthly interface counters (reference/monthly_traffic.parquet)."""

    def compute(paths: Paths, year: int, params: dict[str, Any]) -> pl.DataFrame:
        return metric(paths.warehouse / "reference" / "monthly_traffic.parquet", year, params)

    compute.__doc__ = metric.__doc__  # the table's description (describe)
    return compute


def from_attributed_flows(
    metric: Callable[[str, int, dict[str, Any]], pl.DataFrame],
) -> TableFunction:
    """`metric` of the attributed flows."""

    def compute(paths: Paths, year: int, params: dict[str, Any]) -> pl.DataFrame:
        return metric(attributed_glob(paths), year, params)

    compute.__doc__ = metric.__doc__  # the table's description (describe)
    return compute


def completeness_of(paths: Paths, year: int) -> pl.DataFrame | None:
    """The year's input_completeness table from the history store (None before it is built)."""
    df = read_history(paths.history, "input_completeness", [year])
    return None if df.is_empty() else df


def from_attributed_flows_over_days_present(
    metric: Callable[..., pl.DataFrame],
) -> TableFunction:
    """`metric` of the attributed flows, over the days whose inputs are complete."""

    def compute(paths: Paths, year: int, params: dict[str, Any]) -> pl.DataFrame:
        return metric(attributed_glob(paths), year, params, completeness_of(paths, year))

    compute.__doc__ = metric.__doc__  # the table's description (describe)
    return compute


def input_completeness(paths: Paths, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Expected vs present inputs: kind, service, scope, period, present, records."""
    return inputs.input_completeness(paths.raw, paths.warehouse, year, params)


def from_user_week(
    metric: Callable[[pl.DataFrame, int, dict[str, Any]], pl.DataFrame],
) -> TableFunction:
    """`metric` of the year's per-user table (written by compute_user_week)."""

    def compute(paths: Paths, year: int, params: dict[str, Any]) -> pl.DataFrame:
        return metric(pl.read_parquet(user_week_path(paths, year)), year, params)

    compute.__doc__ = metric.__doc__  # the table's description (describe)
    return compute


def data_quality(paths: Paths, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Data-quality rows item, scope, value: ingest accounting of the year's exporter-days and the
    unattributed byte share of its analysis week."""
    return metrics.data_quality(
        ingest_reports_for_year(paths, year), attributed_glob(paths), year, params
    )


# Every aggregate table of ARCHITECTURE §5 (user_week_usage aside): its name -> its computation.
TABLES: dict[str, TableFunction] = {
    "input_completeness": input_completeness,
    "monthly_traffic_normalised": from_monthly_counters(metrics.monthly_traffic_normalised),
    "growth_statistics": from_monthly_counters(metrics.growth_statistics),
    "weekday_hourly_profile": from_attributed_flows_over_days_present(
        metrics.weekday_hourly_profile
    ),
    "daily_usage_density": from_user_week(metrics.daily_usage_density),
    "daily_usage_summary": from_user_week(metrics.daily_usage_summary),
    "scatter_sample": from_user_week(metrics.scatter_sample),
    "top_user_share": from_user_week(metrics.top_user_share),
    "usage_by_port": from_attributed_flows(metrics.usage_by_port),
    "port_class_week_series": from_attributed_flows_over_days_present(
        metrics.port_class_week_series
    ),
    "data_quality": data_quality,
}


def compute_table(paths: Paths, year: int, table: str, salt: str) -> pl.DataFrame:
    """Compute `table` for `year`, write it to the history store, and return it. (`salt` is unused:
    user keys are made once, by compute_user_week.)"""
    params = load_params()
    writes = {"history": [f"{table}/year={year}.parquet"]}
    with working_copy(paths, reads=store_reads(paths, year, READS[table]), writes=writes):
        df = TABLES[table](paths, year, params)
        write_history(paths.history, table, year, df)
    log.debug("aggregate %d: %s, %d rows → history store", year, table, df.height)
    if table == "input_completeness":  # stored first, so that what is missing can be looked at
        inputs.stop_if_incomplete(year, df, params)
    return df


# What each table reads besides params (the keys a staged step fetches: `store_reads`).
READS: dict[str, tuple[str, ...]] = {
    "input_completeness": ("flows", "raw_days"),
    "monthly_traffic_normalised": ("monthly",),
    "growth_statistics": ("monthly",),
    "weekday_hourly_profile": ("attributed", "completeness"),
    "daily_usage_density": ("user_week",),
    "daily_usage_summary": ("user_week",),
    "scatter_sample": ("user_week",),
    "top_user_share": ("user_week",),
    "usage_by_port": ("attributed",),
    "port_class_week_series": ("attributed", "completeness"),
    "data_quality": ("ingest_reports", "attributed"),
}


def _key(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix()


def store_reads(paths: Paths, year: int, kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """Store keys by area of what a table of `year` reads (none without remote stores)."""
    if not paths.remote:
        return {}
    reads: dict[str, list[str]] = {"raw": ["exporters.yaml"], "warehouse": [], "history": []}
    if is_staged(paths, "raw"):  # the registry names the exporters whose partitions are read
        fetch(store_of(paths, "raw"), paths.raw, ["exporters.yaml"])
    names = [e["name"] for e in load_exporters(paths.raw)]
    days = [d.isoformat() for d in flow_days_for_year(year)]
    wh = reads["warehouse"]
    for kind in kinds:
        if kind in ("attributed", "flows"):
            wh += [f"{kind}/date={d}/exporter={n}/flows.parquet" for d in days for n in names]
        elif kind == "ingest_reports":
            wh += [f"ingest_report/date={d}/exporter={n}.json" for d in days
                   for n in [*names, UNREGISTERED]]  # fmt: skip
        elif kind == "completeness":
            reads["history"].append(f"input_completeness/year={year}.parquet")
        elif kind == "mobile":
            wh.append("reference/mobile_usage.parquet")
        elif kind == "monthly":
            wh.append("reference/monthly_traffic.parquet")
        elif kind == "user_week":
            wh.append(_key(paths.warehouse, user_week_path(paths, year)))
        elif kind == "raw_days":
            week = weeks_for_year(year)[0]
            reads["raw"] += ["counters/monthly_traffic.csv"]
            reads["raw"] += [f"radius/detail-{d:%Y%m%d}" for d in week.days]
            reads["raw"] += [f"ipoe_leases/leases-{d.isoformat()}.csv" for d in week.days]
            reads["raw"] += [f"mobile_billing/billing-{d.isoformat()}.csv" for d in week.days]
    return reads


def describe(table: str) -> str:
    """The first paragraph of the docstring of the metric function behind `table`, on one line."""
    paragraph = (TABLES[table].__doc__ or table).strip().split("\n\n")[0]
    return " ".join(line.strip() for line in paragraph.splitlines())
