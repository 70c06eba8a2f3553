"""A report year's attribution: every exporter-day partition, run in parallel, with totals."""

from __future__ import annotations

import logging
import time
from typing import Any

from pipeline.attribute.attribute import attribute_day
from pipeline.config import Paths
from pipeline.ingest.catalogue import flow_days_for_year
from pipeline.ingest.flows import load_exporters
from pipeline.parallel import run_parallel
from pipeline.progress import Progress, count

log = logging.getLogger(__name__)


def _attribute_task(args: tuple) -> dict:
    warehouse, day, exporter, salt = args
    return attribute_day(warehouse, day, exporter, salt)


def attribute_flows(
    paths: Paths, year: int, salt: str, workers: int, scheduler: str | None = None
) -> dict[str, Any]:
    """Attribute the year's flows; unattributed byte share per service in percent."""
    started = time.monotonic()
    exporters = load_exporters(paths.raw)
    tasks = [(paths.warehouse, d, e, salt) for d in flow_days_for_year(year) for e in exporters]
    progress = Progress(log, f"attribute {year}: attributed", len(tasks), "exporter-days")
    reports = run_parallel(
        _attribute_task, tasks, workers, lambda r: progress.step(r["flows"]), scheduler
    )
    flows_in = sum(_normalised_rows(paths, r) for r in reports)
    bytes_by_service: dict[str, list[float]] = {}
    for r in reports:
        acc = bytes_by_service.setdefault(r["service"], [0.0, 0.0])
        acc[0] += r["bytes_est"]
        acc[1] += r["unattributed_bytes_est"]
    share = {
        s: round(100 * u / b, 3) if b else 0.0
        for s, (b, u) in sorted(bytes_by_service.items())
        if s != "mobile"
    }
    summary = {
        "flows_in": flows_in,
        "flows_out": sum(r["flows"] for r in reports),
        "attributed": sum(r["attributed"] for r in reports),
        "unattributed_bytes_pct": share,
        "seconds": round(time.monotonic() - started, 1),
    }
    log.info(
        "attribute %d: %s of %s flows attributed to users in %.1f s (%s); unattributed bytes %s",
        year, count(summary["attributed"]), count(summary["flows_out"]), progress.seconds,
        progress.rate(), ", ".join(f"{s} {v:.2f} %" for s, v in share.items()) or "none",
    )  # fmt: skip
    return summary


def _normalised_rows(paths: Paths, report: dict) -> int:
    import pyarrow.parquet as pq

    path = (
        paths.warehouse
        / "flows"
        / f"date={report['date']}"
        / f"exporter={report['exporter']}"
        / "flows.parquet"
    )
    return pq.ParquetFile(path).metadata.num_rows
