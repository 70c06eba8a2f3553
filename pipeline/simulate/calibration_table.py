"""Calibration table: published statistics next to what the pipeline measured on the simulated ISP.

    python -m pipeline.simulate.calibration_table [--year 2024] [--csv out.csv]

Reads the history store of a finished build and ../shared/spec/published; prints one row per
statistic with the bar it must meet (port shares ±1.5 points, modes within one 0.05-decade step,
top-10 % shares ±3 points) and exits 1 when a barred row misses.
"""

from __future__ import annotations

import argparse
import math
import sys

import polars as pl

from pipeline.aggregate.history import published_history, read_history
from pipeline.config import PUBLISHED_DIR, Paths

PORT_BAR_PTS = 1.5
MODE_STEP_DECADES = 0.05
TOP10_BAR_PTS = 3.0


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


def _rows_usage(measured: pl.DataFrame, published: pl.DataFrame, year: int) -> list[dict]:
    rows = []
    for service in ("broadband", "mobile"):
        for direction in ("IN", "OUT"):
            key = {"service": service, "direction": direction, "year": year}
            m, p = measured.filter(**key), published.filter(**key)
            for stat in ("mean_mb", "median_mb", "mode_mb"):
                pv, mv = _first(p, stat), _first(m, stat)
                row = _row(f"{service} {direction} {stat[:-3]} (MB/day)", pv, mv)
                if stat == "mode_mb" and pv and mv:
                    # Published modes are 10^(k/20) MB printed rounded (spec §2.4): compare steps
                    # on that grid, not the rounded MB (3162 MB is 10^3.49996, one step is 0.05).
                    steps = abs(math.log10(mv) - math.log10(pv)) / MODE_STEP_DECADES
                    grid_steps = round(math.log10(mv) / MODE_STEP_DECADES) - round(
                        math.log10(pv) / MODE_STEP_DECADES
                    )
                    row["bar"] = "±1 step (0.05 decade)"
                    row["within_bar"] = abs(grid_steps) <= 1 and steps < 1.5
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
        if top == 10 and mv is not None:
            row["bar"], row["within_bar"] = "±3 pts", abs(mv - pv) <= TOP10_BAR_PTS
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


def calibration_table(paths: Paths, year: int) -> pl.DataFrame:
    """One row per published statistic of `year`: published, measured, bar, within_bar."""
    rows: list[dict] = []
    for table, make in (
        ("daily_usage_summary", _rows_usage),
        ("top_user_share", _rows_top),
        ("usage_by_port", _rows_ports),
        ("growth_statistics", _rows_growth),
    ):
        rows += make(read_history(paths.history, table, [year]), published_history(table), year)
    return pl.DataFrame(
        rows,
        schema={
            "statistic": pl.String,
            "published": pl.Float64,
            "measured": pl.Float64,
            "bar": pl.String,
            "within_bar": pl.Boolean,
        },
        orient="row",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--csv", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    if not PUBLISHED_DIR.is_dir():
        print(f"calibration_table: {PUBLISHED_DIR} is absent; nothing to compare", file=sys.stderr)
        return 2
    table = calibration_table(Paths.from_env(), args.year)
    with pl.Config(
        tbl_rows=-1,
        tbl_width_chars=140,
        fmt_str_lengths=60,
        tbl_hide_dataframe_shape=True,
        float_precision=2,
    ):
        print(table)
    barred = table.filter(pl.col("within_bar").is_not_null())
    missed = barred.filter(~pl.col("within_bar"))
    print(f"{barred.height - missed.height} of {barred.height} barred statistics within their bar")
    if args.csv:
        table.write_csv(args.csv)
    return 1 if missed.height else 0


if __name__ == "__main__":
    sys.exit(main())
