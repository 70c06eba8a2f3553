"""Expected vs present inputs (pipeline/ingest/completeness.py) on a hand-made year: one
exporter-day, one counter month and one RADIUS day deleted; the stop line names each of them."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.config import Week, load_params, local_day_bounds_ms
from pipeline.ingest import completeness as inputs

YEAR = 2024
WEEK = Week(dt.date(2024, 6, 3), "analysis")
EXPORTERS = {"bras01": "pppoe", "bras02": "pppoe", "ipoegw01": "ipoe", "mobile01": "mobile"}
GONE_EXPORTER_DAY = ("bras02", dt.date(2024, 6, 5))  # a Wednesday
GONE_COUNTER = ("2023-06", "broadband_ipoe", "OUT")  # June of Y-1: the year-on-year anchor
GONE_RADIUS_DAY = dt.date(2024, 6, 7)


@pytest.fixture()
def params() -> dict[str, Any]:
    p = copy.deepcopy(load_params())
    p["weeks"] = {YEAR: {"analysis": WEEK.start.isoformat(), "extra": []}}
    return p


def write_year(root: Path, params: dict[str, Any], *, gone: bool = True) -> tuple[Path, Path]:
    """raw/ (registry, counters, RADIUS/lease/billing files) and warehouse/flows of one week."""
    raw, warehouse = root / "raw", root / "warehouse"
    (raw / "counters").mkdir(parents=True)
    registry = "exporters:\n" + "".join(
        f"- {{name: {n}, service: {s}, address: 192.0.2.{i + 1}, observation_domain_id: {i}}}\n"
        for i, (n, s) in enumerate(EXPORTERS.items())
    )
    (raw / "exporters.yaml").write_text(registry)
    lines = ["month,service,direction,bytes"]
    for month in inputs.expected_months(YEAR, params):
        for svc in ("broadband_ipoe", "broadband_pppoe", "mobile"):
            for d in ("IN", "OUT"):
                if not (gone and (month, svc, d) == GONE_COUNTER):
                    lines.append(f"{month},{svc},{d},1000")
    (raw / "counters" / "monthly_traffic.csv").write_text("\n".join(lines) + "\n")
    for folder in ("radius", "ipoe_leases", "mobile_billing"):
        (raw / folder).mkdir()
    for day in WEEK.days:
        if not (gone and day == GONE_RADIUS_DAY):
            (raw / "radius" / f"detail-{day:%Y%m%d}").write_text(
                "Mon Jun  3 00:12:01 2024\n\tAcct-Status-Type = Start\n\n"
            )
        (raw / "ipoe_leases" / f"leases-{day}.csv").write_text(
            "subscription_id,service_class,delegated_prefix,valid_from,valid_to\n"
            "s1,personal,2001:db8::/56,2024-06-01T00:00:00Z,2024-07-01T00:00:00Z\n"
        )
        (raw / "mobile_billing" / f"billing-{day}.csv").write_text(
            f"date,msisdn,service_class,uplink_bytes,downlink_bytes\n{day},n1,personal,1,2\n"
        )
        for name in EXPORTERS:
            if gone and (name, day) == GONE_EXPORTER_DAY:
                continue
            start, _ = local_day_bounds_ms(day, params)
            part = warehouse / "flows" / f"date={day}" / f"exporter={name}"
            part.mkdir(parents=True)
            pl.DataFrame(
                {"exporter": [name] * 3, "flow_start_ms": [start, start + 3_600_000, start + 1]}
            ).write_parquet(part / "flows.parquet")
    return raw, warehouse


def test_every_missing_input_is_named(tmp_path: Path, params: dict[str, Any]) -> None:
    raw, warehouse = write_year(tmp_path, params)
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    missing = df.filter(~pl.col("present")).select("kind", "service", "scope", "period").rows()
    assert missing == [
        ("flows", "pppoe", "bras02", "2024-06-05"),
        ("counters", "broadband_ipoe", "OUT", "2023-06"),
        ("radius", "pppoe", "radius", "2024-06-07"),
    ]
    assert df.filter(pl.col("kind") == "flows").height == 4 * 7
    present = df.filter((pl.col("kind") == "flows") & pl.col("present"))
    assert present["records"].to_list() == [3] * 27
    months = df.filter(pl.col("kind") == "counters").height
    assert months == len(inputs.expected_months(YEAR, params)) * 6
    assert inputs.missing_line(YEAR, df) == (
        "2024: flow data missing for exporter bras02 on 2024-06-05 (1 of 28 exporter-days); "
        f"counters missing 2023-06 broadband_ipoe OUT (1 of {months} counter months); "
        "RADIUS accounting missing 2024-06-07 (1 of 7 days)"
    )


def test_complete_year_has_nothing_missing(tmp_path: Path, params: dict[str, Any]) -> None:
    raw, warehouse = write_year(tmp_path, params, gone=False)
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    assert df["present"].all()
    assert inputs.below_threshold(df, params) == []
    inputs.stop_if_incomplete(YEAR, df, params)  # does not raise
    assert inputs.days_present(df, WEEK) == WEEK.days


def test_a_file_with_zero_records_is_missing(tmp_path: Path, params: dict[str, Any]) -> None:
    raw, warehouse = write_year(tmp_path, params, gone=False)
    (raw / "radius" / "detail-20240604").write_text("")
    part = warehouse / "flows" / "date=2024-06-04" / "exporter=ipoegw01" / "flows.parquet"
    pl.DataFrame(schema={"exporter": pl.String, "flow_start_ms": pl.Int64}).write_parquet(part)
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    gone = df.filter(~pl.col("present")).select("kind", "scope", "period").rows()
    assert gone == [("flows", "ipoegw01", "2024-06-04"), ("radius", "radius", "2024-06-04")]


def test_flows_of_a_utc_folder_count_for_their_local_day(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    """A collector files Monday 00:00-09:00 local (UTC+9) under Sunday's UTC date: still Monday."""
    raw, warehouse = write_year(tmp_path, params, gone=False)
    monday = warehouse / "flows" / "date=2024-06-03" / "exporter=bras01"
    (monday / "flows.parquet").unlink()
    sunday = warehouse / "flows" / "date=2024-06-02" / "exporter=bras01"
    sunday.mkdir(parents=True)
    start, _ = local_day_bounds_ms(WEEK.start, params)
    pl.DataFrame({"exporter": ["bras01"], "flow_start_ms": [start + 60_000]}).write_parquet(
        sunday / "flows.parquet"
    )
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    assert df["present"].all()


def test_days_present_leave_out_incomplete_days(tmp_path: Path, params: dict[str, Any]) -> None:
    raw, warehouse = write_year(tmp_path, params)
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    wed, fri = dt.date(2024, 6, 5), dt.date(2024, 6, 7)
    assert inputs.days_present(df, WEEK) == [d for d in WEEK.days if d != wed]
    assert inputs.days_present(df, WEEK, ("mobile",)) == WEEK.days
    broadband_users = inputs.days_present(df, WEEK, ("pppoe", "ipoe"), ("radius", "ipoe_leases"))
    assert broadband_users == [d for d in WEEK.days if d not in (wed, fri)]
    assert inputs.days_present(df, WEEK, (), ("mobile_billing",)) == WEEK.days


def test_build_stops_below_the_threshold_with_one_line(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    raw, warehouse = write_year(tmp_path, params)
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    params["completeness"]["per_user_days_complete"] = True
    with pytest.raises(inputs.IncompleteInputsError) as err:
        inputs.stop_if_incomplete(YEAR, df, params)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("2024: flow data missing for exporter bras02 on 2024-06-05")
    assert "flow data 96.4% < 95%" not in message  # 27 of 28 passes the flow share
    assert "RADIUS accounting 85.7% < 100%" in message
    assert "per-user inputs of the analysis week incomplete" in message


def test_above_the_thresholds_the_build_goes_on(tmp_path: Path, params: dict[str, Any]) -> None:
    raw, warehouse = write_year(tmp_path, params)
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    params["completeness"] = {
        "min_share_pct": {"flows": 95, "counters": 95, "radius": 80},
        "per_user_days_complete": False,
    }
    assert inputs.below_threshold(df, params) == []
    params["completeness"]["min_share_pct"]["flows"] = 97  # 27 of 28 = 96.4 %
    assert inputs.below_threshold(df, params) == ["flow data 96.4% < 97%"]


def test_missing_normalisation_month_stops(tmp_path: Path, params: dict[str, Any]) -> None:
    raw, warehouse = write_year(tmp_path, params, gone=False)
    path = raw / "counters" / "monthly_traffic.csv"
    kept = [line for line in path.read_text().splitlines() if not line.startswith("2020-01,mobile")]
    path.write_text("\n".join(kept) + "\n")
    df = inputs.input_completeness(raw, warehouse, YEAR, params)
    assert any("2020-01" in r and "Figure 1" in r for r in inputs.below_threshold(df, params))
