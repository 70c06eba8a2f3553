"""Reference CSVs → Parquet in `reference/`: IPoE leases, mobile billing, monthly counters."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipeline.atomic import write_parquet_atomic
from pipeline.wire.address_text import ipv6_prefix_text_to_hi_len

SERVICE_CLASSES = ("personal", "enterprise")
COUNTER_SERVICES = ("broadband_pppoe", "broadband_ipoe", "mobile")
DIRECTIONS = ("IN", "OUT")
LEASE_COLUMNS = ["subscription_id", "service_class", "delegated_prefix", "valid_from", "valid_to"]
BILLING_COLUMNS = ["date", "msisdn", "service_class", "uplink_bytes", "downlink_bytes"]
COUNTER_COLUMNS = ["month", "service", "direction", "bytes"]
ISO_UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
LEASE_SCHEMA = {
    "subscription_id": pl.String,
    "service_class": pl.String,
    "v6_prefix_hi": pl.UInt64,
    "v6_prefix_len": pl.UInt8,
    "valid_from_ms": pl.Int64,
    "valid_to_ms": pl.Int64,
}
MOBILE_USAGE_SCHEMA = {
    "date": pl.Date,
    "msisdn": pl.String,
    "service_class": pl.String,
    "uplink_bytes": pl.Int64,
    "downlink_bytes": pl.Int64,
}


class ReferenceFormatError(ValueError):
    """A reference CSV does not have the expected columns or values (names file and line)."""


def _read_text_csv(path: Path, columns: list[str]) -> pl.DataFrame:
    """All columns as stripped strings, plus `line` (1-based line number in the file)."""
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().lstrip("\ufeff")
    if header.split(",") != columns:
        raise ReferenceFormatError(
            f"{path}: line 1: header is {header!r}, expected {','.join(columns)!r}"
        )
    try:
        df = pl.read_csv(path, infer_schema=False, has_header=True, quote_char='"')
    except pl.exceptions.PolarsError as err:
        raise ReferenceFormatError(f"{path}: not a well-formed CSV: {err}") from err
    return df.with_columns(pl.col(c).str.strip_chars() for c in columns).with_row_index(
        "line", offset=2
    )


def _check(df: pl.DataFrame, bad: pl.Expr, path: Path, message: str, column: str = "") -> None:
    """Raise naming the file, first bad line and raw `column` value if any row is bad."""
    rows = df.filter(bad.fill_null(True))
    if rows.height:
        first = rows.row(0, named=True)
        shown = f": {first[column]!r}" if column else ""
        raise ReferenceFormatError(
            f"{path}: line {first['line']}: {message}{shown} ({rows.height} bad row(s) in the file)"
        )


def _check_service_class(df: pl.DataFrame, path: Path) -> None:
    _check(
        df,
        ~pl.col("service_class").is_in(SERVICE_CLASSES),
        path,
        "unknown service_class",
        "service_class",
    )


def _iso_utc_ms(name: str) -> pl.Expr:
    """ISO-8601 UTC text (…Z) as epoch ms; null if it is not."""
    return (
        pl.col(name)
        .str.strptime(pl.Datetime("ms", "UTC"), ISO_UTC_FORMAT, strict=False)
        .dt.epoch("ms")
    )


def _non_negative_int(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Int64, strict=False)


def parse_ipoe_leases(path: Path) -> pl.DataFrame:
    """One `leases-YYYY-MM-DD.csv` → subscription_id, service_class, v6_prefix_hi, v6_prefix_len,
    valid_from_ms, valid_to_ms (valid_to exclusive)."""
    raw = _read_text_csv(path, LEASE_COLUMNS)
    prefixes = ipv6_prefix_text_to_hi_len(raw.get_column("delegated_prefix"))
    df = raw.with_columns(
        *prefixes.get_columns(),
        valid_from_ms=_iso_utc_ms("valid_from"),
        valid_to_ms=_iso_utc_ms("valid_to"),
    )
    _check(df, pl.col("subscription_id") == "", path, "empty subscription_id")
    _check_service_class(df, path)
    _check(
        df,
        pl.col("v6_prefix_hi").is_null(),
        path,
        "delegated_prefix is not an IPv6 /1../64",
        "delegated_prefix",
    )
    _check(
        df,
        pl.col("valid_from_ms").is_null(),
        path,
        "valid_from is not ISO-8601 UTC (…Z)",
        "valid_from",
    )
    _check(
        df, pl.col("valid_to_ms").is_null(), path, "valid_to is not ISO-8601 UTC (…Z)", "valid_to"
    )
    _check(df, pl.col("valid_to_ms") < pl.col("valid_from_ms"), path, "valid_to before valid_from")
    return df.select(
        "subscription_id",
        "service_class",
        "v6_prefix_hi",
        "v6_prefix_len",
        "valid_from_ms",
        "valid_to_ms",
    )


def merge_ipoe_leases(daily: list[pl.DataFrame]) -> pl.DataFrame:
    """Deduplicate a lease repeated across daily files: one row per (subscription, prefix,
    valid_from); the latest file's valid_to wins (a renumbering shortens a lease)."""
    key = ["subscription_id", "service_class", "v6_prefix_hi", "v6_prefix_len", "valid_from_ms"]
    if not daily:
        return pl.DataFrame(schema=LEASE_SCHEMA)
    stacked = pl.concat(
        [d.with_columns(file_order=pl.lit(i)) for i, d in enumerate(daily)], how="vertical"
    )
    return (
        stacked.sort("file_order")
        .unique(subset=key, keep="last", maintain_order=True)
        .select(list(LEASE_SCHEMA))
        .cast(LEASE_SCHEMA)
        .sort("valid_from_ms", "subscription_id", "v6_prefix_hi", "valid_to_ms")
    )


def ingest_ipoe_leases(raw_dir: Path, warehouse_dir: Path, days: list[dt.date]) -> dict:
    """Read `ipoe_leases/leases-<day>.csv` of `days`, write the deduplicated leases to
    `reference/ipoe_leases/week=<first day>.parquet`; return counts."""
    if not days:
        raise ValueError("ingest_ipoe_leases: no days given")
    paths = [Path(raw_dir) / "ipoe_leases" / f"leases-{d.isoformat()}.csv" for d in sorted(days)]
    present = [p for p in paths if p.is_file()]
    daily = [parse_ipoe_leases(p) for p in present]
    leases = merge_ipoe_leases(daily)
    out = (
        Path(warehouse_dir) / "reference" / "ipoe_leases" / f"week={min(days).isoformat()}.parquet"
    )
    write_parquet_atomic(leases, out)
    return {
        "files": len(present),
        "files_missing": [p.name for p in paths if not p.is_file()],
        "rows_read": sum(d.height for d in daily),
        "leases": leases.height,
        "output": str(out),
    }


def parse_mobile_billing(path: Path) -> pl.DataFrame:
    """One `billing-YYYY-MM-DD.csv` → date, msisdn, service_class, uplink_bytes, downlink_bytes."""
    raw = _read_text_csv(path, BILLING_COLUMNS)
    df = raw.with_columns(
        date_parsed=pl.col("date").str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        uplink=_non_negative_int("uplink_bytes"),
        downlink=_non_negative_int("downlink_bytes"),
    )
    _check(df, pl.col("date_parsed").is_null(), path, "date is not YYYY-MM-DD", "date")
    _check(df, pl.col("msisdn") == "", path, "empty msisdn")
    _check_service_class(df, path)
    for raw_col, parsed in (("uplink_bytes", "uplink"), ("downlink_bytes", "downlink")):
        _check(df, pl.col(parsed) < 0, path, f"{raw_col} is not a non-negative integer", raw_col)
    return df.select(
        date=pl.col("date_parsed"),
        msisdn=pl.col("msisdn"),
        service_class=pl.col("service_class"),
        uplink_bytes=pl.col("uplink"),
        downlink_bytes=pl.col("downlink"),
    )


def ingest_mobile_billing(
    raw_dir: Path, warehouse_dir: Path, days: list[dt.date] | None = None
) -> dict:
    """Read `mobile_billing/billing-*.csv` (all, or those of `days`) into
    `reference/mobile_usage.parquet`; a (date, msisdn) seen twice is an error."""
    folder = Path(raw_dir) / "mobile_billing"
    if days is None:
        paths = sorted(folder.glob("billing-*.csv"))
    else:
        paths = [folder / f"billing-{d.isoformat()}.csv" for d in sorted(days)]
    present = [p for p in paths if p.is_file()]
    frames = [parse_mobile_billing(p) for p in present]
    usage = (
        pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=MOBILE_USAGE_SCHEMA)
    ).unique(maintain_order=True)
    dupes = usage.filter(pl.struct("date", "msisdn").is_duplicated())
    if dupes.height:
        d = dupes.row(0, named=True)
        raise ReferenceFormatError(
            f"{folder}: date {d['date']} has conflicting billing rows for one msisdn "
            f"({dupes.height} rows)"
        )
    usage = usage.sort("date", "msisdn")
    out = Path(warehouse_dir) / "reference" / "mobile_usage.parquet"
    write_parquet_atomic(usage, out)
    return {
        "files": len(present),
        "files_missing": [p.name for p in paths if not p.is_file()],
        "rows": usage.height,
        "numbers": usage.get_column("msisdn").n_unique(),
        "output": str(out),
    }


def parse_monthly_counters(path: Path) -> pl.DataFrame:
    """`counters/monthly_traffic.csv` → month (YYYY-MM), service, direction, bytes (DOUBLE)."""
    raw = _read_text_csv(path, COUNTER_COLUMNS)
    df = raw.with_columns(bytes_value=pl.col("bytes").cast(pl.Float64, strict=False))
    _check(
        df,
        ~pl.col("month").str.contains(r"^\d{4}-(0[1-9]|1[0-2])$"),
        path,
        "month not YYYY-MM",
        "month",
    )
    _check(df, ~pl.col("service").is_in(COUNTER_SERVICES), path, "unknown service", "service")
    _check(df, ~pl.col("direction").is_in(DIRECTIONS), path, "direction is not IN/OUT", "direction")
    _check(
        df,
        ~pl.col("bytes_value").is_finite() | (pl.col("bytes_value") < 0),
        path,
        "bytes is not a non-negative number",
        "bytes",
    )
    _check(
        df,
        pl.struct("month", "service", "direction").is_duplicated(),
        path,
        "(month, service, direction) appears twice",
    )
    return df.select("month", "service", "direction", bytes=pl.col("bytes_value")).sort(
        "month", "service", "direction"
    )


def ingest_monthly_counters(raw_dir: Path, warehouse_dir: Path) -> dict:
    """`counters/monthly_traffic.csv` → `reference/monthly_traffic.parquet`; return counts."""
    path = Path(raw_dir) / "counters" / "monthly_traffic.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: monthly counters file is missing")
    counters = parse_monthly_counters(path)
    out = Path(warehouse_dir) / "reference" / "monthly_traffic.parquet"
    write_parquet_atomic(counters, out)
    months = counters.get_column("month")
    return {
        "rows": counters.height,
        "first_month": months.min(),
        "last_month": months.max(),
        "output": str(out),
    }
