"""Calibration table: published statistics next to what the pipeline measured on the simulated ISP.

    python -m pipeline.simulate.calibration_table [--year 2024 ...] [--csv out.csv]

Reads the history store of a finished build and ../shared/spec/published; prints one row per
statistic and year (every simulated year in the history unless --year is given) with the bar it
must meet: modes on the published 0.05-decade grid value (0 steps), means and published medians
within 2 %, top-10 %/top-1 % shares within 1 point, port shares within 1.5 points. Exits 1 when a
barred row misses.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Iterable

import polars as pl

from pipeline.aggregate.history import published_history, read_history
from pipeline.config import PUBLISHED_DIR, Paths
from pipeline.progress import cli_logging

log = logging.getLogger(__name__)

PORT_BAR_PTS = 1.5
MODE_STEP_DECADES = 0.05
MEAN_MEDIAN_BAR_PCT = 2.0
TOP_SHARE_BAR_PTS = 1.0


def _row(statistic: str, published, measured, bar: str | None = None, within_bar=None) -> dict:
    return {
        "statistic": statistic,
        "published": published,
        "measured": measured,
        "bar": bar,
        "within_bar": within_bar,
    }


def _first(frame: pl.DataFrame, column: str, default=None):
    """The column's first value, or `default` when no row matched."""
    return frame[column][0] if frame.height else default


def mode_grid_steps(measured_mb: float, published_mb: float) -> int:
    """Signed distance in 0.05-decade grid steps between two modes.

    Published modes are 10^(k/20) MB printed rounded (spec §2.4), so steps are counted on that
    grid, not on the rounded MB (3162 MB is 10^3.49996)."""
    return round(math.log10(measured_mb) / MODE_STEP_DECADES) - round(
        math.log10(published_mb) / MODE_STEP_DECADES
    )


def _rows_usage(measured: pl.DataFrame, published: pl.DataFrame, year: int) -> list[dict]:
    rows = []
    for service in ("broadband", "mobile"):
        for direction in ("IN", "OUT"):
            key = {"service": service, "direction": direction, "year": year}
            m, p = measured.filter(**key), published.filter(**key)
            for stat in ("mean_mb", "median_mb", "mode_mb"):
                pv, mv = _first(p, stat), _first(m, stat)
                row = _row(f"{service} {direction} {stat[:-3]} (MB/day)", pv, mv)
                if pv and mv:
                    if stat == "mode_mb":
                        row["bar"] = "0 steps (0.05 decade)"
                        row["within_bar"] = mode_grid_steps(mv, pv) == 0
                    else:
                        row["bar"] = f"±{MEAN_MEDIAN_BAR_PCT:g} %"
                        row["within_bar"] = abs(100 * (mv / pv - 1)) <= MEAN_MEDIAN_BAR_PCT
                rows.append(row)
    return rows


def _rows_top(measured: pl.DataFrame, published: pl.DataFrame, year: int) -> list[dict]:
    rows = []
    for (service, direction, top), p in published.filter(year=year).group_by(
        ["service", "direction", "top_pct"], maintain_order=True
    ):
        m = measured.filter(service=service, direction=direction, top_pct=top)
        mv, pv = _first(m, "share_pct"), p["share_pct"][0]
        row = _row(f"{service} {direction} top {top:g} % share (%)", pv, mv)
        if mv is not None:
            row["bar"] = f"±{TOP_SHARE_BAR_PTS:g} pt"
            row["within_bar"] = abs(mv - pv) <= TOP_SHARE_BAR_PTS
        rows.append(row)
    return rows


def _rows_ports(measured: pl.DataFrame, published: pl.DataFrame, year: int) -> list[dict]:
    rows = []
    cols = ("service", "row_id", "port_label", "share_pct")
    for service, row_id, label, pv in published.filter(year=year).select(cols).rows():
        mv = _first(measured.filter(service=service, row_id=row_id), "share_pct", 0.0)
        rows.append(
            _row(f"{service} port {label} (%)", pv, mv, "±1.5 pts", abs(mv - pv) <= PORT_BAR_PTS)
        )
    return rows


def _rows_growth(measured: pl.DataFrame, published: pl.DataFrame, year: int) -> list[dict]:
    cols = ("metric", "service", "direction", "value")
    return [
        _row(
            f"{service} {direction} {metric}",
            pv,
            _first(measured.filter(metric=metric, service=service, direction=direction), "value"),
        )
        for metric, service, direction, pv in published.filter(year=year).select(cols).rows()
    ]


def calibration_table(paths: Paths, years: Iterable[int]) -> pl.DataFrame:
    """One row per published statistic and year: year, statistic, published, measured, bar,
    within_bar."""
    rows: list[dict] = []
    for year in years:
        for table, make in (
            ("daily_usage_summary", _rows_usage),
            ("top_user_share", _rows_top),
            ("usage_by_port", _rows_ports),
            ("growth_statistics", _rows_growth),
        ):
            made = make(read_history(paths.history, table, [year]), published_history(table), year)
            rows += [{"year": year, **r} for r in made]
    return pl.DataFrame(
        rows,
        schema={
            "year": pl.Int64,
            "statistic": pl.String,
            "published": pl.Float64,
            "measured": pl.Float64,
            "bar": pl.String,
            "within_bar": pl.Boolean,
        },
        orient="row",
    )


def simulated_years(paths: Paths) -> list[int]:
    """Years whose daily-usage statistics the history holds (the measured years)."""
    summary = read_history(paths.history, "daily_usage_summary", None)
    return sorted(set(summary["year"].to_list())) if summary.height else []


def main(argv: list[str] | None = None) -> int:
    cli_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--year", type=int, action="append", help="a year (repeatable); default all"
    )
    parser.add_argument("--csv", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    if not PUBLISHED_DIR.is_dir():
        log.error("calibration_table: %s is absent; nothing to compare", PUBLISHED_DIR)
        return 2
    paths = Paths.from_env()
    years = args.year or simulated_years(paths)
    if not years:
        log.error("calibration_table: no measured years in %s", paths.history)
        return 2
    table = calibration_table(paths, years)
    with pl.Config(
        tbl_rows=-1,
        tbl_width_chars=150,
        fmt_str_lengths=60,
        tbl_hide_dataframe_shape=True,
        float_precision=2,
    ):
        log.info("%s", table)
    barred = table.filter(pl.col("within_bar").is_not_null())
    missed = barred.filter(~pl.col("within_bar"))
    log.info("%d of %d barred statistics within their bar", barred.height - missed.height,
             barred.height)  # fmt: skip
    for year, statistic in missed.select("year", "statistic").rows():
        log.info("  missed: %s %s", year, statistic)
    if args.csv:
        table.write_csv(args.csv)
    return 1 if missed.height else 0


if __name__ == "__main__":
    sys.exit(main())
