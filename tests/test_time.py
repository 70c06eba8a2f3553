"""The report's local time: IANA zones with their DST rules, exact fixed offsets, clear errors;
hour-of-day and hour-of-week tables that follow the zone (hand-made flows over DST weeks)."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from pipeline.aggregate.metrics import _zone_params, port_class_week_series, weekday_hourly_profile
from pipeline.config import (
    Week,
    load_params,
    local_day_bounds_ms,
    local_hour_starts_ms,
    time_zone,
    utc_offset_changes,
    utc_offsets_ms,
    week_bounds_ms,
)

H = 3_600_000


def _zone(name: str) -> dict:
    return {"report": {"time_zone": name}}


def _utc_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("zone", "monday", "change_day", "day_hours", "week_hours"),
    [
        ("America/New_York", "2024-03-04", "2024-03-10", 23, 167),  # spring forward (Sunday)
        ("America/New_York", "2024-10-28", "2024-11-03", 25, 169),  # fall back (Sunday)
        ("Europe/Berlin", "2024-03-25", "2024-03-31", 23, 167),
        ("Europe/Berlin", "2024-10-21", "2024-10-27", 25, 169),
        ("Asia/Jerusalem", "2024-03-25", "2024-03-29", 23, 167),  # a Friday
        ("Africa/Cairo", "2024-04-22", "2024-04-26", 23, 167),  # at midnight: the day starts 01:00
        ("Asia/Tokyo", "2024-06-03", None, 24, 168),
    ],
)
def test_dst_days_and_weeks(zone, monday, change_day, day_hours, week_hours) -> None:
    params = _zone(zone)
    week = Week(dt.date.fromisoformat(monday), "analysis")
    bounds = [local_day_bounds_ms(d, params) for d in week.days]
    for (_, end), (start, _) in zip(bounds, bounds[1:], strict=False):
        assert end == start, "local days are not contiguous"
    lengths = {d.isoformat(): (b[1] - b[0]) / H for d, b in zip(week.days, bounds, strict=True)}
    for day, hours in lengths.items():
        assert hours == (day_hours if day == change_day else 24), (day, hours)
    w0, w1 = week_bounds_ms(week, params)
    assert (w0, w1) == (bounds[0][0], bounds[-1][1])
    assert (w1 - w0) / H == week_hours
    starts = local_hour_starts_ms(week, params)
    assert len(starts) == 169 and starts[0] == w0 and starts[-1] == w1
    assert all(b >= a for a, b in zip(starts, starts[1:], strict=False))
    # the local clock at each hour start reads that hour (where the hour exists)
    tz = time_zone(params)
    for i in range(168):
        if starts[i + 1] > starts[i]:
            local = dt.datetime.fromtimestamp(starts[i] / 1000, tz)
            assert (local.date(), local.hour) == (week.days[i // 24], i % 24)


def test_offset_changes_are_exact() -> None:
    ny = _zone("America/New_York")
    changes, offsets = utc_offset_changes(_utc_ms("2024-03-09T00:00+00:00"),
                                          _utc_ms("2024-03-12T00:00+00:00"), ny)  # fmt: skip
    assert changes == [_utc_ms("2024-03-10T07:00+00:00")]  # 02:00 EST
    assert offsets == [-5 * H, -4 * H]
    t = np.array(changes * 2) + np.array([-1, 0])
    assert utc_offsets_ms(t, ny).tolist() == [-5 * H, -4 * H]


@pytest.mark.parametrize("zone", ["+05:30", "Asia/Kolkata", "UTC+0530"])
def test_fractional_offsets_are_exact(zone: str) -> None:
    start, end = local_day_bounds_ms(dt.date(2024, 6, 3), _zone(zone))
    assert start == _utc_ms("2024-06-02T18:30+00:00")
    assert end - start == 24 * H


def test_nepal_offset_and_negative_offset() -> None:
    assert local_day_bounds_ms(dt.date(2024, 6, 3), _zone("Asia/Kathmandu"))[0] == _utc_ms(
        "2024-06-02T18:15+00:00"
    )
    assert local_day_bounds_ms(dt.date(2024, 6, 3), _zone("-03:30"))[0] == _utc_ms(
        "2024-06-03T03:30+00:00"
    )


def test_default_is_tokyo_and_unchanged() -> None:
    params = load_params()
    assert params["report"]["time_zone"] == "Asia/Tokyo"
    assert local_day_bounds_ms(dt.date(2024, 6, 3), params) == (
        _utc_ms("2024-06-02T15:00+00:00"),
        _utc_ms("2024-06-03T15:00+00:00"),
    )


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"time_zone": "Asia/Tokio"}, r"params\.yaml: report\.time_zone='Asia/Tokio' is neither"),
        ({"time_zone": "+25:00"}, r"params\.yaml: report\.time_zone='\+25:00' is neither"),
        ({"time_zone": "../../etc/passwd"}, r"params\.yaml: report\.time_zone=.* is neither"),
        ({"time_zone": 9}, r"params\.yaml: report\.time_zone=9 is not text"),
        ({"time_zone": "Asia/Tokyo", "utc_offset_hours": 9}, r"params\.yaml: set report\.time_z"),
        ({}, r"params\.yaml: report\.time_zone is missing"),
    ],
)
def test_bad_zone_names_the_file_and_key(report: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        time_zone({"report": report})


def test_offset_written_in_yaml() -> None:
    """`time_zone: +05:30` as written in params.yaml is read exactly; a bare number is an error."""
    params = yaml.safe_load("report:\n  time_zone: +05:30\n")
    assert time_zone(params).utcoffset(None) == dt.timedelta(hours=5, minutes=30)
    with pytest.raises(ValueError, match=r"time_zone=9 is not text: write .* in quotes"):
        time_zone(yaml.safe_load("report:\n  time_zone: 9\n"))


def test_utc_offset_hours_is_a_deprecated_exact_alias() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, _ = local_day_bounds_ms(dt.date(2024, 6, 3), {"report": {"utc_offset_hours": 5.5}})
    assert start == _utc_ms("2024-06-02T18:30+00:00")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


# --- hour of day and hour of week in SQL, over hand-made flows --------------------------------


def _flows_every(root: Path, w0: int, w1: int, step_ms: int, params: dict) -> str:
    """One 600-byte broadband flow every `step_ms` of elapsed time over [w0, w1), in partitions
    by local date; returns the glob."""
    t = np.arange(w0, w1, step_ms, dtype=np.int64)
    local_day = (t + utc_offsets_ms(t, params)) // 86_400_000
    df = pl.DataFrame(
        {
            "flow_start_ms": t,
            "service": "pppoe",
            "direction": "IN",
            "bytes_est": np.full(len(t), 600.0),
            "packets": np.full(len(t), 1, np.uint64),
            "sampling_interval": np.full(len(t), 1, np.uint32),
            "protocol": np.full(len(t), 6, np.uint8),
            "src_port": np.full(len(t), 443, np.uint16),
            "dst_port": np.full(len(t), 50000, np.uint16),
            "day": local_day,
        }
    )
    for (day,), part in df.group_by(["day"]):
        date = (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()
        out = root / f"date={date}"
        out.mkdir(parents=True)
        part.drop("day").write_parquet(out / "part.parquet")
    return str(root / "*" / "*.parquet")


def _params_for(zone: str, analysis: str) -> dict:
    params = yaml.safe_load(yaml.safe_dump(load_params()))
    params["report"]["time_zone"] = zone
    params["weeks"] = {2024: {"analysis": analysis, "extra": []}}
    params["ports"]["week_series_bin_minutes"] = 60
    return params


@pytest.mark.parametrize(
    ("zone", "monday", "odd_hour", "odd_hours"),
    [
        ("Asia/Jerusalem", "2024-03-25", 2, 4.0),  # Friday 02:00 → 03:00: hour 2 on 4 weekdays
        ("Africa/Cairo", "2024-10-28", 23, 6.0),  # Thursday 24:00 → 23:00: hour 23 lasts 2 h
        ("Asia/Tokyo", "2024-06-03", None, 5.0),
        ("+05:30", "2024-06-03", None, 5.0),
    ],
)
def test_weekday_hourly_profile_follows_the_zone(tmp_path, zone, monday, odd_hour, odd_hours):
    """Traffic at a constant 600 B per 10 min (8 bit/s): every local hour's mean is 8 bit/s,
    the hour DST repeats or skips included (the mean is over the time that hour lasted)."""
    params = _params_for(zone, monday)
    w0, w1 = week_bounds_ms(Week(dt.date.fromisoformat(monday), "analysis"), params)
    glob = _flows_every(tmp_path, w0, w1, 600_000, params)
    out = weekday_hourly_profile(glob, 2024, params).filter(pl.col("direction") == "IN")
    assert out["hour"].to_list() == list(range(24))
    assert out["mean_bps"].to_list() == pytest.approx([8.0] * 24, rel=1e-12)
    hours = _zone_params(Week(dt.date.fromisoformat(monday), "analysis"), params)["weekday_hours"]
    expected = [5.0] * 24
    if odd_hour is not None:
        expected[odd_hour] = odd_hours
    assert hours == expected


@pytest.mark.parametrize(
    ("zone", "monday", "bins", "missing", "doubled"),
    [
        ("America/New_York", "2024-03-04", 167, {146.0}, set()),  # Sunday 02:00 skipped
        ("America/New_York", "2024-10-28", 169, set(), {145.0}),  # Sunday 01:00 twice
        ("Asia/Tokyo", "2024-06-03", 168, set(), set()),
        ("+05:30", "2024-06-03", 168, set(), set()),
    ],
)
def test_port_class_week_series_follows_the_zone(tmp_path, zone, monday, bins, missing, doubled):
    """Equal elapsed bins (167/169 in a DST week); hour_of_week reads the local clock."""
    params = _params_for(zone, monday)
    w0, w1 = week_bounds_ms(Week(dt.date.fromisoformat(monday), "analysis"), params)
    glob = _flows_every(tmp_path, w0, w1, 600_000, params)
    out = port_class_week_series(glob, 2024, params)
    total = out.filter((pl.col("service") == "broadband") & (pl.col("port_class") == "total"))
    assert total.height == bins
    assert total["bytes"].to_list() == [3600.0] * bins
    hours = total["hour_of_week"].to_list()
    assert set(range(168)) - set(hours) == missing
    assert {h for h in hours if hours.count(h) > 1} == doubled
    assert total["bin_start_ms"].to_list() == [w0 + i * H for i in range(bins)]
