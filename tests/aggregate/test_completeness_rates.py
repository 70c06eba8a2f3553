"""Rates over the inputs actually present (issue 8, completeness): a weekday whose exporter-day is
missing leaves the Mon–Fri mean and becomes a gap in the week series; a counter month missing is a
NULL month in Fig 1, never a partial sum, and no growth is computed across it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.aggregate import metrics
from pipeline.ingest import completeness as inputs
from tests.aggregate.test_metrics import (  # noqa: F401  (params is a fixture)
    MON,
    _month_rates,
    _monthly,
    flow,
    growth_values,
    params,
    write_flows,
)

WEDNESDAY = dt.date(2024, 6, 5)


def completeness_without(day: dt.date, services: tuple[str, ...] = ("pppoe",)) -> pl.DataFrame:
    """A completeness table of the 2024-06-03 week: one exporter per service, `day` missing."""
    week = [dt.date(2024, 6, 3) + dt.timedelta(days=i) for i in range(7)]
    rows = [
        ("flows", svc, f"{svc}-1", d.isoformat(), not (d == day and svc in services), 1)
        for svc in ("pppoe", "ipoe", "mobile")
        for d in week
    ]
    return pl.DataFrame(rows, schema=inputs.SCHEMA, orient="row")


def weekday_flows() -> list[dict[str, Any]]:
    """2250 B of OUT at 20:00 local on every weekday (5 bit/s in that hour), pppoe."""
    return [flow(MON + dt.timedelta(days=i, hours=20), "pppoe", 2250) for i in range(5)]


def test_weekday_mean_divides_by_the_weekdays_present(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    rows = [f for i, f in enumerate(weekday_flows()) if i != 2]  # Wednesday's exporter-day lost
    glob = write_flows(tmp_path, rows)
    prof = metrics.weekday_hourly_profile(glob, 2024, params, completeness_without(WEDNESDAY))
    at20 = prof.filter((pl.col("hour") == 20) & (pl.col("direction") == "OUT"))
    # 4 days of 2250 B over the 4 days present: 5 bit/s, as on a complete week (over 5: 4 bit/s)
    assert at20["mean_bps"].to_list() == [pytest.approx(5.0)]
    assert set(prof["weekdays"]) == {4}


def test_traffic_of_an_incomplete_day_is_left_out(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    """Wednesday has half its exporters: its (partial) traffic is not averaged in either."""
    rows = weekday_flows()
    rows[2] = flow(MON + dt.timedelta(days=2, hours=20), "pppoe", 1125)  # half a day's bytes
    glob = write_flows(tmp_path, rows)
    prof = metrics.weekday_hourly_profile(glob, 2024, params, completeness_without(WEDNESDAY))
    at20 = prof.filter((pl.col("hour") == 20) & (pl.col("direction") == "OUT"))
    assert at20["mean_bps"].to_list() == [pytest.approx(5.0)]


def test_no_weekday_present_gives_null_not_zero(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    glob = write_flows(tmp_path, weekday_flows())
    week = [dt.date(2024, 6, 3) + dt.timedelta(days=i) for i in range(7)]
    rows = [("flows", "pppoe", "p", d.isoformat(), d.weekday() >= 5, 1) for d in week]
    gone = pl.DataFrame(rows, schema=inputs.SCHEMA, orient="row")
    prof = metrics.weekday_hourly_profile(glob, 2024, params, gone)
    assert prof["mean_bps"].null_count() == 48 and set(prof["weekdays"]) == {0}


def test_week_series_is_null_in_the_missing_day(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    glob = write_flows(tmp_path, weekday_flows())
    s = metrics.port_class_week_series(glob, 2024, params, completeness_without(WEDNESDAY))
    bb = s.filter(pl.col("service") == "broadband")
    wed = bb.filter((pl.col("hour_of_week") >= 48) & (pl.col("hour_of_week") < 72))
    assert wed.height == 24 * 5
    assert wed["bytes"].null_count() == wed.height and wed["normalised"].null_count() == wed.height
    other = bb.filter((pl.col("hour_of_week") < 48) | (pl.col("hour_of_week") >= 72))
    assert other["bytes"].null_count() == 0  # a quiet hour of a present day is still 0
    assert bb.filter(pl.col("port_class") == "total")["normalised"].max() == 1.0
    # mobile's exporters delivered on Wednesday: no gap there
    mob = s.filter(pl.col("service") == "mobile")
    assert mob["bytes"].null_count() == 0


def _rates_without(gone: tuple[str, str, str]) -> dict[str, dict[tuple[str, str], float]]:
    months = [f"{2022 + (5 + i) // 12}-{(5 + i) % 12 + 1:02d}" for i in range(25)]
    rates = {m: _month_rates(60, 40, 600, 400, 10, 100) for m in ["2020-01", *months]}
    rates["2024-06"] = _month_rates(66, 44, 660, 440, 11, 110)  # +10 % everywhere
    month, svc, d = gone
    del rates[month][(svc, d)]
    return rates


def test_missing_counter_month_is_a_gap_not_a_fall(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    path = _monthly(tmp_path, _rates_without(("2023-11", "broadband_ipoe", "OUT")))
    fig1 = metrics.monthly_traffic_normalised(path, 2024, params)
    nov = fig1.filter(pl.col("month") == "2023-11")
    by = {(s, d): v for s, d, v in nov.select("series", "direction", "normalised").rows()}
    assert by[("broadband", "OUT")] is None  # not 600/1000 of the month before: a gap
    assert by[("broadband_ipoe", "OUT")] is None
    assert by[("broadband_pppoe", "OUT")] == pytest.approx(0.6)
    assert by[("broadband", "IN")] == pytest.approx(0.1)
    # a month missing from the file altogether still has its rows (NULL), so the line breaks
    assert fig1.filter(pl.col("month") == "2021-03")["normalised"].null_count() == 8


def test_no_growth_across_a_missing_month(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    path = _monthly(tmp_path, _rates_without(("2023-06", "broadband_ipoe", "OUT")))
    val = growth_values(path, params)
    assert ("yoy_pct", "broadband", "OUT") not in val  # was +83 % from PPPoE alone
    assert ("ipoe_share_pct", "broadband", "OUT") in val  # June 2024 is complete
    assert ("ipoe_share_change_pts", "broadband", "OUT") not in val
    assert val[("yoy_pct", "broadband", "IN")] == pytest.approx(10.0)
    assert val[("yoy_pct", "broadband_pppoe", "OUT")] == pytest.approx(10.0)
