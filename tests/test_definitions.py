"""The Dagster graph loads; its shape (keys, groups, partitions, blocking checks) is deliberate."""

from __future__ import annotations

from dagster import AssetKey

from pipeline.config import report_years
from pipeline.definitions import defs

EXPECTED_GROUPS = {
    "ingest": {"raw_inputs", "normalised_flows", "subscriber_sessions", "mobile_usage",
               "monthly_counters"},
    "attribute": {"attributed_flows"},
    "aggregate": {"user_week_usage", "monthly_traffic_normalised", "growth_statistics",
                  "weekday_hourly_profile", "daily_usage_density", "daily_usage_summary",
                  "scatter_sample", "top_user_share", "usage_by_port", "port_class_week_series",
                  "data_quality"},
    "charts": {"report_figures"},
    "report": {"annual_report"},
}  # fmt: skip
BLOCKING_CHECKS = {
    ("normalised_flows", "records_conserved"), ("attributed_flows", "flows_conserved"),
    ("growth_statistics", "annualised_matches_factor"),
    ("daily_usage_density", "density_area_is_one"), ("daily_usage_summary", "mode_on_grid"),
    ("usage_by_port", "protocol_totals_sum_to_100"), ("usage_by_port", "tcp_subtotals_equal_tcp"),
}  # fmt: skip


def test_asset_graph_snapshot() -> None:
    graph = defs().resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        groups.setdefault(node.group_name, set()).add(key.path[-1])
        assert node.partitions_def is not None, f"{key} is not partitioned by report year"
        assert node.partitions_def.get_partition_keys() == [str(y) for y in report_years()]
    assert groups == EXPECTED_GROUPS


def test_blocking_checks_and_lineage() -> None:
    graph = defs().resolve_asset_graph()
    blocking = {(c.asset_key.path[-1], c.name) for c in graph.asset_check_keys
                if graph.get_check_spec(c).blocking}  # fmt: skip
    assert blocking == BLOCKING_CHECKS
    report_parents = graph.get(AssetKey("annual_report")).parent_keys
    assert report_parents == {AssetKey("report_figures")}
    figure_parents = {k.path[-1] for k in graph.get(AssetKey("report_figures")).parent_keys}
    assert figure_parents == EXPECTED_GROUPS["aggregate"] - {"user_week_usage"}


def test_collector_sensor_runs_the_annual_report_job() -> None:
    loaded = defs()
    job = loaded.resolve_job_def("annual_report_job")
    assert job.partitions_def.get_partition_keys() == [str(y) for y in report_years()]
    sensor = loaded.resolve_sensor_def("collector_files_sensor")
    assert [t.job_name for t in sensor.targets] == ["annual_report_job"]
