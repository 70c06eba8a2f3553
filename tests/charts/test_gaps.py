"""Missing inputs are drawn as gaps (issue 8, completeness): Fig 1 does not bridge a missing
counter month, Figs 7/8 do not bridge a missing day, and the chart data say NULL there."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.aggregate import metrics
from pipeline.charts.monthly import fig01_data, fig01_monthly_traffic
from pipeline.charts.port_week import fig07_broadband_port_week, fig07_data
from pipeline.charts.render import chart_to_svg
from pipeline.ingest import completeness as inputs
from tests.aggregate.test_metrics import (  # noqa: F401  (params is a fixture)
    MON,
    _month_rates,
    _monthly,
    flow,
    params,
    write_flows,
)


def subpaths(svg: str) -> list[int]:
    return [d.count("M") for d in re.findall(r'\sd="(M[^"]+)"', svg)]


def test_fig1_leaves_a_missing_month_open(tmp_path: Path, params: dict[str, Any]) -> None:  # noqa: F811
    months = [f"{2023 + (i // 12)}-{i % 12 + 1:02d}" for i in range(18)]  # 2023-01..2024-06
    rates = {m: _month_rates(60, 40, 600 + i, 400, 10, 100) for i, m in enumerate(months)}
    rates["2020-01"] = _month_rates(60, 40, 600, 400, 10, 100)
    params["report"]["fig1_start_month"] = "2023-01"
    complete = metrics.monthly_traffic_normalised(_monthly(tmp_path, rates), 2024, params)
    del rates["2023-11"][("broadband_ipoe", "OUT")]
    gap = metrics.monthly_traffic_normalised(_monthly(tmp_path, rates), 2024, params)
    data = fig01_data({"monthly_traffic_normalised": gap}, 2024)
    bb_out = data.filter(pl.col("line") == "Broadband OUT").sort("month")
    assert bb_out.height == 18  # 2023-01..2024-06 (2020-01 is outside the drawn range)
    nov = bb_out.filter(pl.col("month") == "2023-11")
    assert nov["relative_traffic"].to_list() == [None]
    assert bb_out["relative_traffic"].null_count() == 1
    svg_gap = chart_to_svg(fig01_monthly_traffic({"monthly_traffic_normalised": gap}, 2024))
    svg_full = chart_to_svg(fig01_monthly_traffic({"monthly_traffic_normalised": complete}, 2024))
    # one line (Broadband OUT) is drawn in two pieces; the complete chart has none broken
    assert max(subpaths(svg_full)) == 1 and subpaths(svg_gap).count(2) == 1


def test_fig7_leaves_a_missing_day_open(tmp_path: Path, params: dict[str, Any]) -> None:  # noqa: F811
    rows = [
        flow(MON + dt.timedelta(days=i, hours=h), "pppoe", 1000 + h)
        for i in range(7)
        for h in range(24)
        if i != 2
    ]
    glob = write_flows(tmp_path, rows)
    week = [dt.date(2024, 6, 3) + dt.timedelta(days=i) for i in range(7)]
    completeness = pl.DataFrame(
        [("flows", "pppoe", "p", d.isoformat(), d != week[2], 1) for d in week],
        schema=inputs.SCHEMA,
        orient="row",
    )
    this_year = metrics.port_class_week_series(glob, 2024, params, completeness)
    # the previous year's panel: the same week with every day present (no completeness table)
    prev = metrics.port_class_week_series(glob, 2024, params).with_columns(
        pl.lit(2023, dtype=pl.Int64).alias("year")
    )
    tables = {"port_class_week_series": pl.concat([prev, this_year])}
    data = fig07_data(tables, 2024).filter(pl.col("year") == 2024)
    wed = data.filter((pl.col("hour_of_week") >= 48) & (pl.col("hour_of_week") < 72))
    assert wed["normalised"].null_count() == wed.height > 0
    svg = chart_to_svg(fig07_broadband_port_week(tables, 2024))
    # the 2024 panel's lines break at Wednesday; the 2023 panel (every day present) does not
    assert subpaths(svg).count(2) >= 1
