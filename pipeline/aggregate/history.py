"""History store: one Parquet per aggregate table and report year, plus the published IIJ values."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import polars as pl

from pipeline.atomic import write_atomic
from pipeline.config import PUBLISHED_DIR, load_params

_F, _I, _S = pl.Float64, pl.Int64, pl.String
# Column schemas of ARCHITECTURE §5, with `year` first and `source` (measured|published) last.
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "monthly_traffic_normalised": {
        "month": _S,
        "series": _S,
        "direction": _S,
        "bytes": _F,
        "rate_bps": _F,
        "normalised": _F,
    },
    "growth_statistics": {"metric": _S, "service": _S, "direction": _S, "value": _F, "unit": _S},
    "weekday_hourly_profile": {
        "week_start": _S,
        "role": _S,
        "hour": pl.Int32,
        "direction": _S,
        "mean_bps": _F,
        "weekdays": _I,
        "mean_bps_lo": _F,  # analytic sampling-error interval (UNCERTAINTY.md); NULL if published
        "mean_bps_hi": _F,
    },
    "daily_usage_density": {
        "service": _S,
        "direction": _S,
        "bin_center_log10": _F,
        "users": _I,
        "density": _F,
        "density_lo": _F,  # pointwise sampling-error band (uncertainty.py); NULL if published
        "density_hi": _F,
    },
    "daily_usage_summary": {
        "service": _S,
        "direction": _S,
        "users": _I,
        "mean_mb": _F,
        "median_mb": _F,
        "mode_mb": _F,
        "mode_log10": _F,
        "users_not_observed": _I,
        "users_below_rule": _I,
        # sampling-error intervals (docs/UNCERTAINTY.md); NULL in published rows
        "mean_mb_lo": _F,
        "mean_mb_hi": _F,
        "median_mb_lo": _F,
        "median_mb_hi": _F,
        "mode_mb_lo": _F,
        "mode_mb_hi": _F,
        "mode_log10_lo": _F,
        "mode_log10_hi": _F,
        "interval_method": _S,
    },
    "scatter_sample": {"service": _S, "daily_in_bytes": _F, "daily_out_bytes": _F},
    "top_user_share": {
        "service": _S,
        "direction": _S,
        "top_pct": _F,
        "share_pct": _F,
        "share_pct_lo": _F,
        "share_pct_hi": _F,
    },
    "usage_by_port": {
        "service": _S,
        "row_id": _S,
        "protocol": _S,
        "port_label": _S,
        "row_kind": _S,
        "parent": _S,
        "share_pct": _F,
        "sort_key": _I,
        "share_pct_lo": _F,
        "share_pct_hi": _F,
    },
    "port_class_week_series": {
        "service": _S,
        "bin_start_ms": _I,
        "hour_of_week": _F,
        "port_class": _S,
        "bytes": _F,
        "normalised": _F,
        "bytes_lo": _F,  # analytic sampling-error interval (docs/UNCERTAINTY.md); NULL if published
        "bytes_hi": _F,
        "normalised_lo": _F,
        "normalised_hi": _F,
    },
    "data_quality": {"item": _S, "scope": _S, "value": _F},
    # expected vs present inputs (pipeline/ingest/completeness.py), one row per expected item
    "input_completeness": {
        "kind": _S,
        "service": _S,
        "scope": _S,
        "period": _S,
        "present": pl.Boolean,
        "records": _I,
    },
}
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def table_schema(table: str) -> dict[str, pl.DataType]:
    """Full column schema of a history table: year, the §5 columns, source."""
    return {"year": _I, **SCHEMAS[table], "source": _S}


def empty_table(table: str) -> pl.DataFrame:
    """An empty frame with the table's schema (no columns if the table is unknown)."""
    return pl.DataFrame(schema=table_schema(table)) if table in SCHEMAS else pl.DataFrame()


def history_path(history_dir: str | Path, table: str, year: int) -> Path:
    """history/<table>/year=<Y>.parquet"""
    if not _TABLE_NAME.match(table):
        raise ValueError(f"invalid history table name {table!r}")
    return Path(history_dir) / table / f"year={int(year)}.parquet"


def write_history(history_dir: str | Path, table: str, year: int, df: pl.DataFrame) -> Path:
    """Atomically (temp file + os.replace) write one year of a table; adds year/source if absent."""
    if "year" in df.columns:
        other = df.filter(pl.col("year") != year)["year"].unique().to_list()
        if other:
            raise ValueError(f"write_history({table}, {year}): frame holds rows of years {other}")
    else:
        df = df.select(pl.lit(year, dtype=pl.Int64).alias("year"), pl.all())
    if "source" not in df.columns:
        df = df.with_columns(pl.lit("measured").alias("source"))
    path = history_path(history_dir, table, year)
    return write_atomic(path, lambda tmp: df.write_parquet(tmp, statistics=False))


def read_history(
    history_dir: str | Path, table: str, years: list[int] | None = None
) -> pl.DataFrame:
    """All stored years of a table (or the given ones), oldest first; empty with schema if none."""
    folder = history_path(history_dir, table, 0).parent
    files = []
    for path in folder.glob("year=*.parquet"):
        match = re.fullmatch(r"year=(\d+)\.parquet", path.name)
        if match and (years is None or int(match.group(1)) in years):
            files.append((int(match.group(1)), path))
    if not files:
        return empty_table(table)
    frames = [pl.read_parquet(path) for _, path in sorted(files)]
    df = pl.concat(frames, how="diagonal_relaxed")
    if "source" not in df.columns:
        df = df.with_columns(pl.lit("measured").alias("source"))
    return df


def _published_csv(name: str) -> pl.DataFrame | None:
    path = PUBLISHED_DIR / name
    return pl.read_csv(path, infer_schema_length=None) if path.is_file() else None


def _published_by_service(
    broadband: str, mobile: str, rows: Callable[[str, pl.DataFrame], pl.DataFrame]
) -> pl.DataFrame | None:
    """`rows(service, wide CSV)` of a published broadband and mobile table, broadband first;
    None if a CSV is missing."""
    bb, mob = _published_csv(broadband), _published_csv(mobile)
    if bb is None or mob is None:
        return None
    return pl.concat([rows("broadband", bb), rows("mobile", mob)])


def _daily_usage_summary_rows(service: str, wide: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(
        [
            wide.select(
                pl.col("year").cast(pl.Int64),
                pl.lit(service).alias("service"),
                pl.lit(direction).alias("direction"),
                pl.lit(None, dtype=pl.Int64).alias("users"),
                pl.col(f"{d}_mean_mb_per_day").cast(pl.Float64).alias("mean_mb"),
                pl.col(f"{d}_median_mb_per_day").cast(pl.Float64).alias("median_mb"),
                pl.col(f"{d}_mode_mb_per_day").cast(pl.Float64).alias("mode_mb"),
                pl.lit(None, dtype=pl.Int64).alias("users_not_observed"),
                pl.lit(None, dtype=pl.Int64).alias("users_below_rule"),
            )
            for direction, d in (("IN", "in"), ("OUT", "out"))
        ]
    )


def _published_daily_usage_summary() -> pl.DataFrame | None:
    """Tables 1 (broadband 2007–2024) and 2 (mobile 2015–2024); reports keep unmeasured years."""
    df = _published_by_service(
        "table1_broadband_daily_usage_2007_2024.csv",
        "table2_mobile_daily_usage_2015_2024.csv",
        _daily_usage_summary_rows,
    )
    return (
        None if df is None else df.with_columns((pl.col("mode_mb").log10() + 6).alias("mode_log10"))
    )


def _published_growth_statistics() -> pl.DataFrame | None:
    """yoy_pct of every edition (by data year) and the June IPoE shares (stated or derived)."""
    yoy = _published_csv("yoy_growth_by_edition.csv")
    ipoe = _published_csv("ipoe_share_of_broadband.csv")
    if yoy is None or ipoe is None:
        return None
    frames = []
    for service in ("broadband", "mobile"):
        for direction in ("IN", "OUT"):
            col = f"{service}_{direction.lower()}_yoy_pct"
            frames.append(
                yoy.select(
                    pl.col("data_year").cast(pl.Int64).alias("year"),
                    pl.lit("yoy_pct").alias("metric"),
                    pl.lit(service).alias("service"),
                    pl.lit(direction).alias("direction"),
                    pl.col(col).cast(pl.Float64).alias("value"),
                    pl.lit("pct").alias("unit"),
                )
            )
    report_month = int(load_params()["report"]["report_month"])
    june = ipoe.filter(pl.col("month").str.ends_with(f"-{report_month:02d}"))
    for direction in ("IN", "OUT"):
        frames.append(
            june.select(
                pl.col("month").str.slice(0, 4).cast(pl.Int64).alias("year"),
                pl.lit("ipoe_share_pct").alias("metric"),
                pl.lit("broadband").alias("service"),
                pl.lit(direction).alias("direction"),
                pl.col(f"ipoe_share_{direction.lower()}_pct").cast(pl.Float64).alias("value"),
                pl.lit("pct").alias("unit"),
            )
        )
    return pl.concat(frames).filter(pl.col("value").is_not_null())


def _published_top_user_share() -> pl.DataFrame | None:
    shares = _published_csv("top_user_shares.csv")
    if shares is None:
        return None
    return pl.concat(
        [
            shares.select(
                pl.col("year").cast(pl.Int64),
                pl.col("service"),
                pl.lit(direction).alias("direction"),
                pl.col("top_pct_of_users").cast(pl.Float64).alias("top_pct"),
                pl.col(f"share_of_total_{direction.lower()}_pct")
                .cast(pl.Float64)
                .alias("share_pct"),
            )
            for direction in ("IN", "OUT")
        ]
    )


def _usage_by_port_rows(service: str, wide: pl.DataFrame) -> pl.DataFrame:
    wide = wide.with_row_index("sort_key")
    long = wide.unpivot(
        index=["sort_key", "row_id", "protocol", "label", "row_kind", "parent"],
        on=[c for c in wide.columns if c.startswith("pct_")],
        variable_name="pct_col",
        value_name="share_pct",
    )
    return long.select(
        pl.col("pct_col").str.slice(4).cast(pl.Int64).alias("year"),
        pl.lit(service).alias("service"),
        "row_id",
        "protocol",
        pl.col("label").alias("port_label"),
        "row_kind",
        pl.col("parent").cast(pl.String),
        pl.col("share_pct").cast(pl.Float64),
        pl.col("sort_key").cast(pl.Int64),
    )


def _published_usage_by_port() -> pl.DataFrame | None:
    """Tables 3 (broadband) and 4 (mobile), 2020–2024, in the published row order."""
    return _published_by_service(
        "table3_broadband_port_share_2020_2024.csv",
        "table4_mobile_port_share_2020_2024.csv",
        _usage_by_port_rows,
    )


_PUBLISHED = {
    "daily_usage_summary": _published_daily_usage_summary,
    "growth_statistics": _published_growth_statistics,
    "top_user_share": _published_top_user_share,
    "usage_by_port": _published_usage_by_port,
}


def published_history(table: str) -> pl.DataFrame:
    """Published IIJ values in the table's schema with source = "published": Table 1 rows
    2007–2024, Table 2 rows 2015–2024 (reports show the years they did not measure), yoy growth
    and June IPoE shares of every edition, top-user shares, Tables 3/4. Empty if none/no dir."""
    build = _PUBLISHED.get(table)
    df = build() if build is not None and PUBLISHED_DIR.is_dir() else None
    if df is None or df.height == 0:
        return empty_table(table)
    schema = table_schema(table)
    df = df.with_columns(pl.lit("published").alias("source"))
    df = df.select(  # columns the editions did not publish (sampling-error intervals): NULL
        [
            pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c)
            for c, t in schema.items()
        ]
    )
    keys = [
        c for c in ("year", "service", "metric", "direction", "top_pct", "sort_key") if c in schema
    ]
    return df.sort(keys, maintain_order=True)
