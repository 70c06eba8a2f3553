"""The year's aggregate tables from attributed flows vs a DuckDB scan of the columns they read."""

from __future__ import annotations

import re
from pathlib import Path

YEAR_FLOW_TABLES = (  # the tables of pipeline.aggregate.year.TABLES that read attributed flows
    "weekday_hourly_profile",
    "usage_by_port",
    "port_class_week_series",
    "data_quality",
)
USER_WEEK_TABLES = (
    "daily_usage_density",
    "daily_usage_summary",
    "scatter_sample",
    "top_user_share",
)


def warm_up() -> None:
    import duckdb  # noqa: F401
    import polars  # noqa: F401

    import pipeline.aggregate.year  # noqa: F401


def _paths(root: str):
    from pipeline.config import Paths

    r = Path(root)
    return Paths(
        data_root=r,
        raw=r / "raw",
        truth=r / "truth",
        warehouse=r / "warehouse",
        history=r / "history",
        reports=r / "reports",
    )


def year_tables(root: str, year: int, salt: str) -> None:
    """compute_user_week then compute_table of every table that reads flows or the user week."""
    from pipeline.aggregate import year as agg

    paths = _paths(root)
    agg.compute_user_week(paths, year, salt)
    for table in (*YEAR_FLOW_TABLES, *USER_WEEK_TABLES):
        agg.compute_table(paths, year, table, salt)


def columns_read(sql_dir: Path, names: list[str]) -> list[str]:
    """The attributed columns named in any of the aggregate .sql files (comments ignored)."""
    text = " ".join(
        re.sub(r"--[^\n]*", "", p.read_text()) for p in sorted(Path(sql_dir).glob("*.sql"))
    )
    return [n for n in names if re.search(rf"\b{n}\b", text)]


def scan_floor(root: str) -> int:
    """One DuckDB scan of every attributed partition, each column the aggregates read aggregated."""
    import duckdb

    from pipeline.aggregate import year as agg
    from pipeline.aggregate.run import SQL_DIR

    glob = agg.attributed_glob(_paths(root))
    conn = duckdb.connect()
    names = [
        r[0]
        for r in conn.sql("DESCRIBE SELECT * FROM read_parquet($g)", params={"g": glob}).fetchall()
    ]
    cols = columns_read(SQL_DIR, names)
    select = ", ".join(f'max("{c}")' for c in cols)
    query = f"SELECT count(*), {select} FROM read_parquet($g, hive_partitioning = true)"  # noqa: S608 - names from the file's schema
    return int(conn.sql(query, params={"g": glob}).fetchall()[0][0])
