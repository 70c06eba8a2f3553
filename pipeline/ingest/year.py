"""A report year's ingest: raw inputs (simulated or catalogued) → warehouse Parquet, with counts."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from pipeline.atomic import write_text_atomic
from pipeline.config import Paths, load_params, weeks_for_year
from pipeline.ingest.catalogue import (
    check_raw_folder,
    flow_days_for_year,
    raw_files_for_year,
    sha256_of_files,
)
from pipeline.ingest.clocks import clock_tolerance_ms
from pipeline.ingest.duplicates import day_digests, first_copies_before
from pipeline.ingest.flows import load_registry, normalise_day
from pipeline.ingest.quality import enforce_threshold, max_quarantined_share_pct
from pipeline.ingest.radius import ingest_radius
from pipeline.ingest.reference import (
    ingest_ipoe_leases,
    ingest_mobile_billing,
    ingest_monthly_counters,
)
from pipeline.parallel import run_parallel
from pipeline.progress import Progress, count

log = logging.getLogger(__name__)


def catalogue_raw_inputs(
    paths: Paths, year: int, source: str, simulator: dict | None = None
) -> dict:
    """Check and hash the year's raw files (an ISP's own, or what the simulator just wrote, whose
    parameters `simulator` names in the provenance)."""
    shares = (load_params().get("completeness") or {}).get("min_share_pct") or {}
    check_raw_folder(paths.raw, year, shares)
    files = raw_files_for_year(paths.raw, year)
    digest, per_file = sha256_of_files(files, paths.raw)
    files_detail = {
        name: {"bytes": (paths.raw / name).stat().st_size, "sha256": sha}
        for name, sha in sorted(per_file.items())
    }
    log.debug("ingest %d: %d raw files catalogued", year, len(files))
    provenance = {"year": year, "source": source, "inputs_sha256": digest, "files": files_detail}
    if simulator is not None:
        provenance["simulator"] = simulator
    _write_json(paths.warehouse / "provenance" / f"year={year}.json", provenance)
    return {
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "inputs_sha256": digest,
    }


def _digest_task(args: tuple) -> dict[str, str]:
    raw, exporters, sources, day = args
    return day_digests(raw, exporters, sources, day)


def _normalise_task(args: tuple) -> list[dict]:
    raw, warehouse, exporters, sources, day, read_before, digests, tolerance_ms = args
    return normalise_day(
        raw, warehouse, exporters, sources, day, read_before, digests, tolerance_ms
    )


def ingest_flows(
    paths: Paths, year: int, workers: int, scheduler: str | None = None
) -> dict[str, Any]:
    """Decode every exporter-day of the year's weeks (independent partitions, run in parallel).

    A file under two day folders is read once (the earlier day; duplicates are counted). Stops
    with QuarantineThresholdError when an exporter-day sets aside more than
    `quality.max_quarantined_share_pct` of its records, or its files give no record."""
    started = time.monotonic()
    params = load_params()
    exporters, sources = load_registry(paths.raw)
    days = flow_days_for_year(year)
    hashed = run_parallel(
        _digest_task, [(paths.raw, exporters, sources, d) for d in days], workers, None, scheduler
    )
    digests = dict(zip(days, hashed, strict=True))
    before = first_copies_before(digests)
    tolerance_ms = clock_tolerance_ms(params)
    tasks = [
        (paths.raw, paths.warehouse, exporters, sources, d, before[d], digests[d], tolerance_ms)
        for d in days
    ]
    progress = Progress(log, f"ingest {year}: decoded", len(tasks), "days")
    done = run_parallel(
        _normalise_task,
        tasks,
        workers,
        lambda d: progress.step(sum(r["records_decoded"] for r in d)),
        scheduler,
    )
    reports = [r for day in done for r in day]
    totals: dict[str, Any] = {
        "partitions": len(reports),
        "records_in": 0,
        "records_decoded": 0,
        "records_quarantined": 0,
        "quarantine_by_reason": {},
        "sampling_intervals": {},
        "unbalanced": [],
    }
    for r in reports:
        for key in ("records_in", "records_decoded", "records_quarantined"):
            totals[key] += r[key]
        for field in ("quarantine_by_reason", "sampling_intervals"):
            for k, n in r[field].items():
                totals[field][k] = totals[field].get(k, 0) + n
        if r["records_in"] != r["records_decoded"] + r["records_quarantined"]:
            totals["unbalanced"].append(f"{r['date']}/{r['exporter']}")
    totals["duplicate_files"] = sum(int(r.get("duplicate_files", 0)) for r in reports)
    totals["seconds"] = round(time.monotonic() - started, 1)
    log.info(
        "ingest %d: decoded %d exporter-days: %s flows in %.1f s (%s), %.2f %% set aside",
        year, len(reports), count(totals["records_decoded"]), progress.seconds, progress.rate(),
        100 * totals["records_quarantined"] / max(totals["records_in"], 1),
    )  # fmt: skip
    enforce_threshold(reports, max_quarantined_share_pct(params))
    return totals


def ingest_subscriber_sessions(paths: Paths, year: int) -> dict[str, Any]:
    """RADIUS accounting → PPPoE sessions, and IPoE leases, for each week of the year."""
    out: dict[str, Any] = {
        "sessions": 0,
        "radius_records": 0,
        "radius_quarantined": 0,
        "ipoe_leases": 0,
    }
    for week in weeks_for_year(year):
        radius = ingest_radius(paths.raw, paths.warehouse, week.days)
        leases = ingest_ipoe_leases(paths.raw, paths.warehouse, week.days)
        out["sessions"] += radius["sessions"]
        out["radius_records"] += radius["records"]
        out["radius_quarantined"] += radius["records_quarantined"]
        out["ipoe_leases"] += _first_count(leases)
    log.info(
        "ingest %d: %s PPPoE sessions from %s RADIUS records, %s IPoE leases", year,
        count(out["sessions"]), count(out["radius_records"]), count(out["ipoe_leases"]),
    )  # fmt: skip
    return out


def ingest_mobile_usage(paths: Paths, year: int) -> dict[str, Any]:
    """All billing files → one per-number-and-day table (weeks are filtered downstream)."""
    summary = ingest_mobile_billing(paths.raw, paths.warehouse, None)
    log.debug("ingest %d: mobile billing %s", year, summary)
    return summary


def ingest_counters(paths: Paths, year: int) -> dict[str, Any]:
    """Monthly interface counters → Parquet."""
    summary = ingest_monthly_counters(paths.raw, paths.warehouse)
    log.debug("ingest %d: monthly counters %s", year, summary)
    return summary


def _first_count(summary: dict) -> int:
    for key in ("leases", "rows", "records"):
        if key in summary:
            return int(summary[key])
    return 0


def _write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
