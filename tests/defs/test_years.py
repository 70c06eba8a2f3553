"""Report years as time: the week rule, the partition set growing with a frozen clock, the mapping
to earlier years, and the simulator refusing a year it has no calibration for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey

from pipeline.config import (
    PARAMS_FILE,
    analysis_week,
    listed_years,
    load_params,
    report_years,
    rule_analysis_week,
    weeks_for_year,
    year_available_on,
)
from pipeline.defs.partitions import (
    EARLIER_YEARS,
    partition_time_zone,
    report_year_partitions,
    year_partitions,
)
from pipeline.simulate.run import UncalibratedYear, simulate_year

TOKYO = dt.timezone(dt.timedelta(hours=9))


def test_the_rule_gives_every_listed_analysis_week() -> None:
    """'First Monday on or after 29 May' is the Monday of each configured year's week."""
    assert listed_years() == [2019, 2020, 2021, 2022, 2023, 2024]
    for year in listed_years():
        assert rule_analysis_week(year).start == analysis_week(year).start, year
        assert analysis_week(year).start.weekday() == 0


def test_a_year_not_listed_gets_the_rule_week_and_no_extra_week() -> None:
    assert weeks_for_year(2025) == [rule_analysis_week(2025)]
    assert weeks_for_year(2025)[0].start == dt.date(2025, 6, 2)  # 29 May 2025 is a Thursday
    assert weeks_for_year(2026)[0].start == dt.date(2026, 6, 1)
    assert weeks_for_year(2029)[0].start == dt.date(2029, 6, 4)  # a Tuesday: latest possible
    assert len(weeks_for_year(2024)) == 3  # listed years keep their extra weeks


def test_a_year_appears_only_after_its_weeks_and_report_month() -> None:
    """The completion date follows every week the year reads and the end of its report month."""
    lag = dt.timedelta(days=load_params()["week_rule"]["lag_days"])
    for year in [*listed_years(), 2025, 2026, 2029]:
        done = year_available_on(year)
        assert all(w.end_exclusive + lag <= done for w in weeks_for_year(year)), year
        assert dt.date(year, 7, 1) + lag <= done  # June's counters (report.report_month 6)
    assert year_available_on(2025) == dt.date(2025, 7, 15)


def test_the_year_after_the_last_listed_appears_when_the_clock_passes_its_window() -> None:
    """Frozen clock: 2025 is no report year (no partition) a minute before 15 July 2025, local
    time, and is one from then on; report_years and the Dagster partition set agree."""
    before = dt.datetime(2025, 7, 14, 23, 59, tzinfo=TOKYO)
    after = dt.datetime(2025, 7, 15, 0, 0, tzinfo=TOKYO)
    assert report_years(now=before) == listed_years()
    assert report_years(now=after) == [*listed_years(), 2025]
    for now, years in ((before, listed_years()), (after, [*listed_years(), 2025])):
        keys = report_year_partitions.get_partition_keys(current_time=now)
        assert keys == [str(y) for y in years]
    late = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    assert report_years(now=late)[-1] == 2030
    assert report_year_partitions.get_partition_keys(current_time=late)[-1] == "2030"


def test_the_partition_set_follows_params() -> None:
    """Another rule, lag, first year and zone move the completion date and the keys with them."""
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params["report"]["time_zone"] = "America/New_York"
    params["report"]["first_simulated_year"] = 2021
    params["week_rule"] = {"first_monday_on_or_after": "08-01", "lag_days": 3}
    params["report"]["report_month"] = 6
    # latest rule week ends 13 August: the week, not the report month, sets the date
    assert year_available_on(2025, params) == dt.date(2025, 8, 17)
    partitions = year_partitions(params)
    assert partitions.timezone == "America/New_York"
    new_york = dt.timezone(dt.timedelta(hours=-4))
    at = dt.datetime(2025, 8, 17, 0, 0, tzinfo=new_york)
    assert partitions.get_partition_keys(current_time=at - dt.timedelta(minutes=1))[-1] == "2024"
    assert partitions.get_partition_keys(current_time=at)[0] == "2021"
    assert partitions.get_partition_keys(current_time=at)[-1] == "2025"
    assert report_years(params, now=at)[-1] == 2025


def test_a_year_maps_to_itself_and_every_earlier_year() -> None:
    p = report_year_partitions
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    keys = p.get_partition_keys(current_time=now)

    def upstream(year: str) -> list[str]:
        result = EARLIER_YEARS.get_upstream_mapped_partitions_result_for_partitions(
            p.subset_with_partition_keys([year]), p, p, current_time=now
        )
        assert result.required_but_nonexistent_subset.is_empty
        return sorted(result.partitions_subset.get_partition_keys())

    assert upstream("2019") == ["2019"]
    assert upstream("2025") == keys[: keys.index("2025") + 1]
    downstream = EARLIER_YEARS.get_downstream_partitions_for_partitions(
        p.subset_with_partition_keys(["2023"]), p, p, current_time=now
    )
    assert sorted(downstream.get_partition_keys()) == ["2023", "2024", "2025", "2026"]


def test_the_report_reads_earlier_years_through_the_time_window_mapping() -> None:
    from pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    for asset in ("report_figures", "annual_report"):
        mapping = graph.get(AssetKey(asset)).partition_mappings[AssetKey("usage_by_port")]
        assert mapping == EARLIER_YEARS


def test_the_simulator_refuses_an_uncalibrated_year_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UncalibratedYear) as err:
        simulate_year(2025, tmp_path / "raw", tmp_path / "truth", "small")
    message = str(err.value)
    assert "\n" not in message
    assert "2025" in message and "2019-2024" in message and "BBTR_RAW_DIR" in message
    assert not (tmp_path / "raw").exists(), "nothing is written for a refused year"


@pytest.mark.parametrize(
    ("zone", "expected"), [("+09:00", "Etc/GMT-9"), ("-05:00", "Etc/GMT+5"), ("+00:00", "UTC")]
)
def test_a_whole_hour_offset_is_a_zone_dagster_takes(zone: str, expected: str) -> None:
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params["report"]["time_zone"] = zone
    assert partition_time_zone(params) == expected
    keys = year_partitions(params).get_partition_keys(
        current_time=dt.datetime(2025, 7, 16, tzinfo=dt.UTC)
    )
    assert keys[-1] == "2025"


def test_a_half_hour_offset_is_refused_naming_the_key() -> None:
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params["report"]["time_zone"] = "+05:30"
    with pytest.raises(ValueError, match="report.time_zone"):
        partition_time_zone(params)


def test_dagster_sees_a_missing_earlier_year_as_missing() -> None:
    """With only 2020's history materialised, Dagster's `any_deps_missing` holds for 2020's
    report through the mapping (2019 is missing), not for a same-year-only dependant; once 2019
    is materialised it no longer holds for 2020."""
    from dagster import (
        AssetDep,
        AutomationCondition,
        DagsterInstance,
        asset,
        evaluate_automation_conditions,
        materialize,
    )

    missing = AutomationCondition.any_deps_missing()

    @asset(partitions_def=report_year_partitions)
    def history() -> None: ...

    @asset(partitions_def=report_year_partitions, automation_condition=missing,
           deps=[AssetDep(history, partition_mapping=EARLIER_YEARS)])  # fmt: skip
    def report() -> None: ...

    @asset(partitions_def=report_year_partitions, automation_condition=missing, deps=[history])
    def same_year() -> None: ...

    def missing_deps(instance: DagsterInstance) -> dict[str, set[str]]:
        assets = [history, report, same_year]
        result = evaluate_automation_conditions(defs=assets, instance=instance)
        return {
            r.key.to_user_string(): {
                p.partition_key for p in r.true_subset.expensively_compute_asset_partitions()
            }
            for r in result.results
        }

    instance = DagsterInstance.ephemeral()
    materialize([history], partition_key="2020", instance=instance)
    before = missing_deps(instance)
    assert "2020" in before["report"] and "2020" not in before["same_year"]
    materialize([history], partition_key="2019", instance=instance)
    after = missing_deps(instance)
    assert {"2019", "2020"}.isdisjoint(after["report"]) and "2021" in after["report"]
