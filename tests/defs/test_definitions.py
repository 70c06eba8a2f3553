"""The Dagster graph loads, and its whole shape is a reviewed snapshot (graph_snapshot.json).

Any change to asset keys, groups, dependencies, partition mappings, checks, kinds, tags, owners,
code versions, automation, jobs, sensors, schedules or resources fails here until the snapshot is
regenerated on purpose: `BBTR_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/defs` — then the diff of
graph_snapshot.json is what a reviewer reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dagster import AssetKey, TimeWindowPartitionMapping, TimeWindowPartitionsDefinition

from pipeline.config import report_years
from pipeline.definitions import defs

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")


def _name(key: AssetKey) -> str:
    return "/".join(key.path)


def _partitions(partitions_def: Any) -> dict | None:
    """The partition set's rule, not its keys (time-window keys grow with the clock)."""
    if partitions_def is None:
        return None
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return {
            "type": type(partitions_def).__name__,
            "cron_schedule": partitions_def.cron_schedule,
            "start": partitions_def.start.isoformat(),
            "fmt": partitions_def.fmt,
            "timezone": partitions_def.timezone,
            "end_offset": partitions_def.end_offset,
        }
    return {"type": type(partitions_def).__name__, "keys": partitions_def.get_partition_keys()}


def _mapping(mapping: Any) -> str:
    if isinstance(mapping, TimeWindowPartitionMapping):
        return f"TimeWindowPartitionMapping({mapping.start_offset}, {mapping.end_offset})"
    return type(mapping).__name__


def graph_snapshot() -> dict[str, Any]:
    """Everything about the graph a change should be deliberate about, as sorted plain data."""
    loaded = defs()
    graph = loaded.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        assets[_name(key)] = {
            "group": node.group_name,
            "deps": sorted(_name(k) for k in node.parent_keys),
            "partition_mappings": {
                _name(k): _mapping(m) for k, m in sorted(node.partition_mappings.items())
            },
            "partitions": _partitions(node.partitions_def),
            "checks": {
                c.name: {
                    "blocking": graph.get_check_spec(c).blocking,
                    "description": graph.get_check_spec(c).description,
                }
                for c in sorted(node.check_keys, key=lambda c: c.name)
            },
            "kinds": sorted(node.kinds),
            "tags": dict(sorted(node.tags.items())),
            "owners": sorted(node.owners),
            "code_version": node.code_version,
            "automation_condition": (
                None if node.automation_condition is None else node.automation_condition.name
            ),
        }
    return json.loads(
        json.dumps(
            {
                "assets": assets,
                "jobs": sorted(j.name for j in loaded.resolve_all_job_defs()),
                "sensors": {
                    s.name: sorted(t.job_name for t in s.targets) for s in loaded.sensors or []
                },
                "schedules": {s.name: s.cron_schedule for s in loaded.schedules or []},
                "resources": sorted(loaded.resources or {}),
            },
            sort_keys=True,
        )
    )


def test_graph_matches_reviewed_snapshot() -> None:
    current = graph_snapshot()
    if os.environ.get("BBTR_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    changed = sorted(
        k for k in set(expected["assets"]) | set(current["assets"])
        if expected["assets"].get(k) != current["assets"].get(k)
    )  # fmt: skip
    assert current == expected, (
        f"the Dagster graph changed (assets: {changed or 'none'}; or jobs/sensors/schedules/"
        "resources); review it and regenerate with BBTR_UPDATE_SNAPSHOT=1"
    )


def test_every_asset_is_partitioned_by_report_year() -> None:
    years = [str(y) for y in report_years()]
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        assert partitions is not None and partitions.get_partition_keys() == years, key


def test_report_depends_on_every_published_aggregate() -> None:
    """The figures and the report read every published table (the report also the raw-input
    provenance and the ingest reports), so a change to any of them re-runs both."""
    graph = defs().resolve_asset_graph()
    aggregates = {k.path[-1] for k in graph.get_all_asset_keys()
                  if graph.get(k).group_name == "aggregate"}  # fmt: skip
    published = aggregates - {"user_week_usage"}  # internal, never published
    figure_parents = {k.path[-1] for k in graph.get(AssetKey("report_figures")).parent_keys}
    assert figure_parents == published
    report_parents = {k.path[-1] for k in graph.get(AssetKey("annual_report")).parent_keys}
    assert report_parents == published | {"report_figures", "raw_inputs", "normalised_flows"}


def test_report_of_a_year_reads_the_history_of_every_year_before() -> None:
    """Year Y's figures depend on the multi-year tables of every year up to Y, and on the
    current-year-only tables of Y alone."""
    graph = defs().resolve_asset_graph()
    years = [str(y) for y in report_years()]
    node = graph.get(AssetKey("report_figures"))

    def upstream_years(table: str) -> list[str]:
        mapping = node.partition_mappings.get(AssetKey(table))
        if mapping is None:
            return [years[-1]]
        subset = mapping.get_upstream_mapped_partitions_result_for_partitions(
            node.partitions_def.subset_with_partition_keys([years[-1]]),
            node.partitions_def,
            graph.get(AssetKey(table)).partitions_def,
        ).partitions_subset
        return sorted(subset.get_partition_keys())

    assert upstream_years("usage_by_port") == years
    assert upstream_years("daily_usage_summary") == years
    assert upstream_years("scatter_sample") == [years[-1]]


def test_collector_sensor_runs_the_annual_report_job() -> None:
    loaded = defs()
    job = loaded.resolve_job_def("annual_report_job")
    assert job.partitions_def.get_partition_keys() == [str(y) for y in report_years()]
    sensor = loaded.resolve_sensor_def("collector_files_sensor")
    assert [t.job_name for t in sensor.targets] == ["annual_report_job"]
