"""Attribution: each flow of a (day, exporter) → subscriber key, access protocol, direction."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import duckdb
import polars as pl

from pipeline.atomic import write_atomic
from pipeline.attribute.intervals import resolve_intervals
from pipeline.attribute.stream import write_attributed
from pipeline.config import local_day_bounds_ms
from pipeline.ingest.radius import PPPOE_SESSION_SCHEMA
from pipeline.ingest.reference import LEASE_SCHEMA as IPOE_LEASE_SCHEMA

SQL_DIR = Path(__file__).with_name("sql")
DAY_MS = 86_400_000
HOLDER_MEMORY = "256MB"  # DuckDB's cap while resolving the holders (well under the 1 GB goal)


def read_sql(name: str) -> str:
    """The text of `sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


def _partition_path(warehouse_dir: Path, table: str, day: dt.date, exporter_name: str) -> Path:
    """`<warehouse>/<table>/date=<day>/exporter=<name>/flows.parquet`."""
    folder = Path(warehouse_dir) / table / f"date={day.isoformat()}" / f"exporter={exporter_name}"
    return folder / "flows.parquet"


def flows_partition_path(warehouse_dir: Path, day: dt.date, exporter_name: str) -> Path:
    """The normalised-flow partition of one local day and exporter (ARCHITECTURE §3.1)."""
    return _partition_path(warehouse_dir, "flows", day, exporter_name)


def attributed_partition_path(warehouse_dir: Path, day: dt.date, exporter_name: str) -> Path:
    """The attributed-flow partition of one local day and exporter (ARCHITECTURE §4)."""
    return _partition_path(warehouse_dir, "attributed", day, exporter_name)


def load_reference_window(
    folder: Path, schema: dict[str, pl.DataType], from_col: str, to_col: str, lo_ms: int, hi_ms: int
) -> pl.DataFrame:
    """Rows of every `folder/*.parquet` whose [from, to) overlaps [lo_ms, hi_ms); empty if none."""
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return pl.DataFrame(schema=schema)
    return (
        pl.scan_parquet(files)
        .select(list(schema))
        .filter((pl.col(to_col) > lo_ms) & (pl.col(from_col) < hi_ms))
        .unique(maintain_order=True)  # a session can sit in two adjacent weeks' files
        .collect()
        .cast(schema)
    )


def _holder_config(spill_dir: str) -> dict:
    """DuckDB settings for the holders: one thread, HOLDER_MEMORY, spilling to `spill_dir`."""
    return {"threads": 1, "memory_limit": HOLDER_MEMORY, "temp_directory": spill_dir}


def attribute_day(warehouse_dir: Path, day: dt.date, exporter: dict, salt: str) -> dict:
    """Attribute `flows/date=<day>/exporter=<name>/flows.parquet` into `attributed/…/flows.parquet`
    (ARCHITECTURE §4, address columns dropped); return flow and byte counts."""
    warehouse_dir = Path(warehouse_dir)
    name, service = exporter["name"], exporter["service"]
    if service not in ("pppoe", "ipoe", "mobile"):
        raise ValueError(f"exporter {name!r}: unknown service {service!r}")
    flows_path = flows_partition_path(warehouse_dir, day, name)
    if not flows_path.is_file():
        raise FileNotFoundError(f"{flows_path}: no normalised flows for {day} / {name}")
    day_start_ms, day_end_ms = local_day_bounds_ms(day)
    # A day's partition can hold flows that started a little outside the day: widen by a day.
    lo_ms, hi_ms = day_start_ms - DAY_MS, day_end_ms + DAY_MS
    reference = Path(warehouse_dir) / "reference"
    sessions = pl.DataFrame(schema=PPPOE_SESSION_SCHEMA)
    leases = pl.DataFrame(schema=IPOE_LEASE_SCHEMA)
    if service == "pppoe":
        sessions = load_reference_window(
            reference / "pppoe_sessions", PPPOE_SESSION_SCHEMA, "start_ms", "stop_ms", lo_ms, hi_ms
        )
    elif service == "ipoe":
        leases = load_reference_window(
            reference / "ipoe_leases",
            IPOE_LEASE_SCHEMA,
            "valid_from_ms",
            "valid_to_ms",
            lo_ms,
            hi_ms,
        )

    out_path = attributed_partition_path(warehouse_dir, day, name)
    # The holder tables are small: one thread, a capped memory (spilling beyond it), all of it
    # returned before the flows are read.
    with (
        tempfile.TemporaryDirectory() as spill,
        duckdb.connect(config=_holder_config(spill)) as conn,
    ):
        conn.register("pppoe_sessions", sessions.to_arrow())
        conn.register("ipoe_leases", leases.to_arrow())
        intervals = resolve_intervals(conn, read_sql, {"service": service, "salt": salt})
    del sessions, leases
    write_atomic(out_path, lambda tmp: write_attributed(flows_path, tmp, intervals, service))
    with duckdb.connect() as conn:
        counts = conn.sql(read_sql("attribution_counts"), params={"attributed_path": str(out_path)})
        flows, attributed, unattributed, bytes_est, unattributed_bytes = counts.fetchall()[0]
    return {
        "date": day.isoformat(),
        "exporter": name,
        "service": service,
        "flows": int(flows),
        "attributed": int(attributed),
        "unattributed": int(unattributed),
        "bytes_est": float(bytes_est),
        "unattributed_bytes_est": float(unattributed_bytes),
        "unattributed_bytes_share": float(unattributed_bytes / bytes_est) if bytes_est else 0.0,
        "output": str(out_path),
    }
