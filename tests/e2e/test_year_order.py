"""Two small report years in a fresh Dagster instance, asked for in the wrong order: the later
year alone (the schedule's run request) fails on the missing earlier year, naming it; then an
asset backfill of both years, later year first, is ordered by the graph's partition mapping
(Dagster's backfill daemon, run here one iteration at a time, runs launched synchronously)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.aggregate.history import read_history
from pipeline.config import REPO_ROOT

pytestmark = pytest.mark.slow  # simulates and builds two small years (minutes)

EARLIER, LATER = 2019, 2020


def _messages(error) -> str:
    """An error's message and its causes' (Dagster wraps a step's exception)."""
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return " | ".join(parts)


def run_in_order(out: str) -> None:
    """In a fresh process (resources read the BBTR_* environment once): the later year's
    scheduled run, then a backfill of both years; writes what happened to `out` as JSON."""
    import datetime as dt
    import logging
    import time

    from dagster import AssetKey, build_schedule_context
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import (
        InProcessTestWorkspaceLoadTarget,
        create_test_daemon_workspace_context,
        instance_for_test,
    )
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.utils import make_new_backfill_id
    from dagster._daemon.backfill import execute_backfill_iteration

    from pipeline.definitions import defs

    loaded = defs()
    result: dict = {}
    with instance_for_test(synchronous_run_launcher=True, synchronous_run_coordinator=True) as inst:
        # 1. the schedule's request for the later year, run alone: the earlier year is missing
        tick = dt.datetime(LATER, 7, 15, 6, tzinfo=dt.timezone(dt.timedelta(hours=9)))
        context = build_schedule_context(
            instance=inst, scheduled_execution_time=tick, repository_def=loaded.get_repository_def()
        )
        schedule = loaded.resolve_schedule_def("annual_report_schedule")
        [request] = schedule.evaluate_tick(context).run_requests
        alone = loaded.resolve_job_def("annual_report_job").execute_in_process(
            partition_key=request.partition_key, instance=inst, raise_on_error=False
        )
        result["alone"] = {
            "partition": request.partition_key,
            "success": alone.success,
            "failures": {
                e.step_key: _messages(e.step_failure_data.error)
                for e in alone.get_step_failure_events()
            },
        }
        # 2. a backfill of every asset of both years, later year first
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(
                module_name="pipeline.definitions",
                attribute="defs",
                working_directory=str(REPO_ROOT),
            )  # fmt: skip
        )
        target = InProcessTestWorkspaceLoadTarget(origin)
        with create_test_daemon_workspace_context(target, inst) as workspace:
            graph = workspace.create_request_context().asset_graph
            keys = graph.materializable_asset_keys
            wanted = {AssetKeyPartitionKey(k, str(y)) for y in (LATER, EARLIER) for k in keys}
            backfill = PartitionBackfill.from_asset_graph_subset(
                backfill_id=make_new_backfill_id(),
                backfill_timestamp=time.time(),
                tags={},
                dynamic_partitions_store=inst,
                asset_graph_subset=AssetGraphSubset.from_asset_partition_set(wanted, graph),
                title="two years, later first",
                description=None,
                run_config={"execution": {"config": {"in_process": {}}}},
            )
            inst.add_backfill(backfill)
            for _ in range(60):
                list(execute_backfill_iteration(workspace, logging.getLogger("backfill")))
                status = inst.get_backfill(backfill.backfill_id).status
                if status != BulkActionStatus.REQUESTED:
                    break
        result["backfill_status"] = status.value
        runs = [r for r in reversed(inst.get_runs()) if r.tags.get("dagster/backfill")]
        result["runs"] = [
            {"partition": r.tags.get("dagster/partition"), "status": r.status.value,
             "assets": sorted(k.to_user_string() for k in r.asset_selection or [])}
            for r in runs
        ]  # fmt: skip
        stamps = {}
        for name in ("usage_by_port", "report_figures", "annual_report"):
            records = inst.fetch_materializations(AssetKey(name), limit=100).records
            for year in (EARLIER, LATER):
                stamps[f"{name}/{year}"] = max(
                    r.timestamp for r in records if r.partition_key == str(year)
                )
        result["materialized_at"] = stamps
    Path(out).write_text(json.dumps(result, indent=1))


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("order")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BBTR_", "DAGSTER_"))}
    env |= {"BBTR_DATA_DIR": str(root / "data"), "BBTR_REPORTS_DIR": str(root / "reports"),
            "BBTR_SCALE": "small", "BBTR_SOURCE": "simulator",
            "SOURCE_DATE_EPOCH": "1717372800", "BBTR_CODE_VERSION": "e2e-year-order"}  # fmt: skip
    out = root / "result.json"
    code = f"from tests.e2e.test_year_order import run_in_order; run_in_order({str(out)!r})"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=3600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text()), root


def test_the_later_year_alone_names_the_missing_earlier_year(ordered) -> None:
    result, _ = ordered
    alone = result["alone"]
    assert alone["partition"] == str(LATER) and not alone["success"]
    messages = " ".join(alone["failures"].values())
    assert f"lacks years [{EARLIER}]" in messages, alone["failures"]


def test_the_backfill_orders_the_years_by_the_graph(ordered) -> None:
    result, root = ordered
    assert result["backfill_status"] == "COMPLETED_SUCCESS", result["runs"]
    assert all(r["status"] == "SUCCESS" for r in result["runs"])
    at = result["materialized_at"]
    # the later year's figures and report came after the earlier year's history
    assert at[f"usage_by_port/{EARLIER}"] < at[f"report_figures/{LATER}"]
    assert at[f"report_figures/{LATER}"] < at[f"annual_report/{LATER}"]
    # and the later year's report prints the earlier year's measured history (Table 1)
    data = root / "reports" / str(LATER) / "data"
    table1 = pl.read_csv(data / "table_1_broadband_daily_usage.csv")
    summary = read_history(root / "data" / "history", "daily_usage_summary", [EARLIER])
    measured = summary.filter((pl.col("service") == "broadband") & (pl.col("direction") == "IN"))
    row = table1.filter(pl.col("year") == EARLIER)
    assert int(row["in_mean_mb"][0]) == round(measured["mean_mb"][0])
