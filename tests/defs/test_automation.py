"""The annual schedule, the sensor of a report's changed raw inputs, and the old report kept
with its reason when a rebuild replaces it."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
)
from dagster._utils.schedules import cron_string_iterator

from pipeline.config import Paths
from pipeline.definitions import defs
from pipeline.defs.jobs import annual_report_job, annual_report_schedule
from pipeline.defs.sensors import build_inputs_sensor, report_input_changes
from pipeline.ingest.catalogue import raw_files_for_year, sha256_of_files
from pipeline.report.supersede import REASON_FILE, SUPERSEDED_DIR, replace_report

TOKYO = dt.timezone(dt.timedelta(hours=9))
YEAR = 2024


def _evaluate(at: dt.datetime):
    context = build_schedule_context(
        instance=DagsterInstance.ephemeral(),
        scheduled_execution_time=at,
        repository_def=defs().get_repository_def(),
    )
    data = annual_report_schedule.evaluate_tick(context)
    return data.run_requests or [], data.skip_message


def test_the_schedule_ticks_once_a_year_on_its_date() -> None:
    """params.yaml schedule: 15 July 06:00, report time zone; one tick a year."""
    assert annual_report_schedule.cron_schedule == "0 6 15 7 *"
    assert annual_report_schedule.execution_timezone == "Asia/Tokyo"
    start = dt.datetime(2025, 1, 1, tzinfo=TOKYO).timestamp()
    ticks = list(itertools.islice(cron_string_iterator(start, "0 6 15 7 *", "Asia/Tokyo"), 3))
    assert [t.isoformat() for t in ticks] == [
        "2025-07-15T06:00:00+09:00",
        "2026-07-15T06:00:00+09:00",
        "2027-07-15T06:00:00+09:00",
    ]


def test_the_schedule_requests_the_year_just_completed_at_its_date() -> None:
    requests, _ = _evaluate(dt.datetime(2025, 7, 15, 6, 0, tzinfo=TOKYO))
    assert len(requests) == 1
    assert requests[0].partition_key == "2025"
    assert requests[0].run_key == "annual-report:2025"  # once per year, however often evaluated
    assert annual_report_schedule.job_name == annual_report_job.name


def test_the_schedule_skips_outside_its_window_saying_why() -> None:
    """Evaluated before the year is complete (a manual tick, or a date set too early), it runs
    nothing and names the date the year becomes one."""
    requests, skip = _evaluate(dt.datetime(2025, 7, 1, 6, 0, tzinfo=TOKYO))
    assert requests == []
    assert "2025" in skip and "2025-07-15" in skip


# ---- the inputs sensor and the kept report -------------------------------------------------


def _world(root: Path, monkeypatch) -> Paths:
    """A raw folder of the year's files (registry, counters, RADIUS) and a report built from it."""
    monkeypatch.setenv("BBTR_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("BBTR_REPORTS_DIR", str(root / "reports"))
    for key in ("BBTR_RAW_DIR", "BBTR_HISTORY_DIR", "BBTR_WAREHOUSE_DIR", "BBTR_TRUTH_DIR"):
        monkeypatch.delenv(key, raising=False)
    paths = Paths.from_env()
    raw = paths.raw
    (raw / "counters").mkdir(parents=True)
    (raw / "radius").mkdir()
    (raw / "exporters.yaml").write_text(
        "- {name: bras1, address: 192.0.2.1, observation_domain_id: 1, service: pppoe,"
        " default_sampling_interval: null}\n"
    )
    (raw / "counters" / "monthly_traffic.csv").write_text("month,service,direction,bytes\n")
    (raw / "radius" / "detail-20240603").write_text("Mon Jun  3 00:00:00 2024\n")
    _report(paths, "old")
    return paths


def _report(paths: Paths, text: str, folder: Path | None = None) -> Path:
    """A report folder (one PDF stand-in) whose provenance records the raw files as they are."""
    folder = folder or paths.reports / str(YEAR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.pdf").write_text(text)
    files = raw_files_for_year(paths.raw, YEAR)
    digest, per_file = sha256_of_files(files, paths.raw)
    detail = {
        n: {"bytes": (paths.raw / n).stat().st_size, "sha256": h} for n, h in per_file.items()
    }
    provenance = {
        "year": YEAR,
        "inputs_sha256": digest,
        "input_files_detail": detail,
        "params_sha256": "p",
        "code_version": "c",
        "outputs_sha256": {"report.pdf": hashlib.sha256(text.encode()).hexdigest()},
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=1, sort_keys=True))
    return folder


def test_unchanged_inputs_hash_once_then_cost_a_stat(tmp_path: Path, monkeypatch) -> None:
    paths = _world(tmp_path, monkeypatch)
    changes, same = report_input_changes(paths, YEAR, {})
    assert changes == [] and len(same) == 3
    monkeypatch.setattr("pipeline.defs.sensors.file_sha256", lambda p: pytest.fail("hashed"))
    assert report_input_changes(paths, YEAR, same) == ([], same)


def test_a_same_size_edit_is_found_by_its_hash(tmp_path: Path, monkeypatch) -> None:
    paths = _world(tmp_path, monkeypatch)
    detail = paths.raw / "radius" / "detail-20240603"
    detail.write_text(detail.read_text().replace("Mon", "Tue"))
    changes, _ = report_input_changes(paths, YEAR, {})
    assert changes == ["changed radius/detail-20240603"]


def test_the_sensor_reruns_the_year_whose_inputs_changed(tmp_path: Path, monkeypatch) -> None:
    paths = _world(tmp_path, monkeypatch)
    sensor = build_inputs_sensor(annual_report_job, minimum_interval_seconds=30)
    instance = DagsterInstance.ephemeral()
    first = sensor.evaluate_tick(build_sensor_context(instance=instance, definitions=defs()))
    assert not first.run_requests and f"inputs of {YEAR} unchanged" in first.skip_message
    (paths.raw / "radius" / "detail-20240604").write_text("Tue Jun  4 00:00:00 2024\n")
    second = sensor.evaluate_tick(
        build_sensor_context(instance=instance, definitions=defs(), cursor=first.cursor)
    )
    [request] = second.run_requests
    assert isinstance(request, RunRequest) and request.partition_key == str(YEAR)
    assert request.tags["changed_files"] == "1"
    again = sensor.evaluate_tick(
        build_sensor_context(instance=instance, definitions=defs(), cursor=second.cursor)
    )
    assert again.run_requests[0].run_key == request.run_key  # same change: one run, not two


def test_a_rebuild_from_changed_inputs_keeps_the_old_report_with_its_reason(
    tmp_path: Path, monkeypatch
) -> None:
    paths = _world(tmp_path, monkeypatch)
    out = paths.reports / str(YEAR)
    old_provenance = (out / "provenance.json").read_bytes()
    (paths.raw / "radius" / "detail-20240604").write_text("Tue Jun  4 00:00:00 2024\n")
    staging = _report(paths, "new", paths.reports / f".{YEAR}.build.tmp")
    kept = replace_report(staging, out, paths.reports)
    assert (out / "report.pdf").read_text() == "new"
    short = hashlib.sha256(old_provenance).hexdigest()[:12]
    assert kept == paths.reports / SUPERSEDED_DIR / f"{YEAR}-{short}"
    assert (kept / "report.pdf").read_text() == "old"
    assert (kept / "provenance.json").read_bytes() == old_provenance
    reason = (kept / REASON_FILE).read_text()
    assert "raw inputs changed" in reason and "added radius/detail-20240604" in reason
    assert "changed report.pdf" in reason
    assert not staging.exists()


def test_a_rebuild_with_the_same_bytes_keeps_nothing(tmp_path: Path, monkeypatch) -> None:
    paths = _world(tmp_path, monkeypatch)
    out = paths.reports / str(YEAR)
    staging = _report(paths, "old", paths.reports / f".{YEAR}.build.tmp")
    assert replace_report(staging, out, paths.reports) is None
    assert sorted(p.name for p in paths.reports.iterdir()) == [str(YEAR)]


def test_a_changed_parameter_is_named(tmp_path: Path, monkeypatch) -> None:
    from pipeline.report.supersede import change_reason

    old = {"year": YEAR, "params_sha256": "a", "params": {"weeks": 1, "ports": 2}}
    new = {"year": YEAR, "params_sha256": "b", "params": {"weeks": 1, "ports": 3}}
    reason = change_reason(old, new)
    assert "parameters (params.yaml) changed" in reason and "key ports" in reason
    assert "key weeks" not in reason
