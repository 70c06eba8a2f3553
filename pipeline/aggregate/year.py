"""Compute one aggregate table of a report year from the warehouse and store it in the history."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.aggregate import metrics
from pipeline.aggregate.history import write_history
from pipeline.atomic import write_parquet_atomic
from pipeline.config import Paths, load_params
from pipeline.ingest.catalogue import flow_days_for_year

USER_TABLES = {
    "daily_usage_density": metrics.daily_usage_density,
    "daily_usage_summary": metrics.daily_usage_summary,
    "scatter_sample": metrics.scatter_sample,
    "top_user_share": metrics.top_user_share,
}


def attributed_glob(paths: Paths) -> str:
    return str(paths.warehouse / "attributed" / "date=*" / "exporter=*" / "flows.parquet")


def user_week_path(paths: Paths, year: int) -> Path:
    """Per-user weekly usage (hashed keys): warehouse only, never published."""
    return paths.warehouse / "user_week" / f"year={year}.parquet"


def compute_user_week(paths: Paths, year: int, salt: str) -> pl.DataFrame:
    """Per personal user, analysis week: daily IN/OUT bytes (broadband: flows; mobile: billing)."""
    df = metrics.user_week_usage(
        attributed_glob(paths),
        paths.warehouse / "reference" / "mobile_usage.parquet",
        year,
        load_params(),
        salt,
    )
    write_parquet_atomic(df, user_week_path(paths, year))
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


def compute_table(paths: Paths, year: int, table: str, salt: str) -> pl.DataFrame:
    """Compute `table` for `year`, write it to the history store, and return it."""
    params = load_params()
    flows = attributed_glob(paths)
    monthly = paths.warehouse / "reference" / "monthly_traffic.parquet"
    if table in USER_TABLES:
        df = USER_TABLES[table](pl.read_parquet(user_week_path(paths, year)), year, params)
    elif table in ("monthly_traffic_normalised", "growth_statistics"):
        df = getattr(metrics, table)(monthly, year, params)
    elif table in ("weekday_hourly_profile", "usage_by_port", "port_class_week_series"):
        df = getattr(metrics, table)(flows, year, params)
    elif table == "data_quality":
        df = metrics.data_quality(ingest_reports_for_year(paths, year), flows, year, params)
    else:
        raise KeyError(f"unknown aggregate table {table!r}")
    write_history(paths.history, table, year, df)
    return df


def describe(table: str) -> str:
    """The first docstring line of the metric function behind `table`."""
    fn = USER_TABLES.get(table) or getattr(metrics, table, None)
    return (fn.__doc__ or table).strip().splitlines()[0] if fn else table
