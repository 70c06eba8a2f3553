"""Attribution of one exporter-day vs its floor: read the same flows file and rewrite it (zstd)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path


def warm_up() -> None:
    import duckdb  # noqa: F401
    import polars  # noqa: F401

    import pipeline.attribute.attribute  # noqa: F401


def attribute(warehouse: str, day: str, exporter: dict, salt: str) -> int:
    """pipeline.attribute.attribute.attribute_day on the exporter-day: flows attributed."""
    from pipeline.attribute.attribute import attribute_day

    counts = attribute_day(Path(warehouse), dt.date.fromisoformat(day), exporter, salt)
    return int(counts["flows"])


def rewrite_floor(flows_path: str, out_path: str) -> None:
    """DuckDB read_parquet → write_parquet (zstd) of the same flows file."""
    import duckdb

    conn = duckdb.connect()
    try:
        conn.sql("SELECT * FROM read_parquet($p)", params={"p": flows_path}).write_parquet(
            out_path, compression="zstd"
        )
    finally:
        conn.close()
