"""A report year's attribution: every exporter-day partition, run in parallel, with totals."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.attribute.attribute import (
    DAY_MS,
    attribute_day,
    attributed_partition_path,
    flows_partition_path,
)
from pipeline.config import Paths, local_day_bounds_ms
from pipeline.ingest.catalogue import flow_days_for_year
from pipeline.ingest.flows import load_exporters
from pipeline.parallel import run_parallel
from pipeline.progress import Progress, count
from pipeline.storage.stage import (
    StagedTask,
    is_staged,
    key_of,
    remote_sizes,
    run_staged,
    store_of,
    without_scratch,
    working_copy,
)

log = logging.getLogger(__name__)


REFERENCE = {"pppoe": "reference/pppoe_sessions", "ipoe": "reference/ipoe_leases"}
WEEK_FILE = re.compile(r"week=(\d{4}-\d{2}-\d{2})\.parquet")


def _attribute_task(args: tuple) -> dict:
    warehouse, day, exporter, salt = args
    if isinstance(warehouse, StagedTask):  # the warehouse in a store: staged in a scratch folder
        return run_staged(
            warehouse,
            lambda f: without_scratch(
                _attribute_counted(f["warehouse"], day, exporter, salt), f, warehouse.urls
            ),
        )
    return _attribute_counted(warehouse, day, exporter, salt)


def _attribute_counted(warehouse: Path, day: dt.date, exporter: dict, salt: str) -> dict:
    """attribute_day's report with the normalised rows it read, counted where the partition is
    (a staged task's host has no copy)."""
    report = attribute_day(warehouse, day, exporter, salt)
    flows = pq.ParquetFile(flows_partition_path(warehouse, day, exporter["name"]))
    return report | {"normalised_rows": flows.metadata.num_rows}


def _staged_tasks(
    paths: Paths, days: list[dt.date], exporters: list[dict], salt: str
) -> list[tuple]:
    """A task per exporter-day: its flow partition and its service's reference files (listed
    once) that may hold holders of the day, fetched by key; its attributed partition published."""
    warehouse = store_of(paths, "warehouse")
    reference = {s: sorted(remote_sizes(warehouse, folder)) for s, folder in REFERENCE.items()}
    tasks = []
    for day in days:
        _, hi_ms = local_day_bounds_ms(day)
        for e in exporters:
            name = e["name"]
            keys = [key_of(paths.warehouse, flows_partition_path(paths.warehouse, day, name))]
            keys += [k for k in reference.get(e["service"], []) if _may_overlap(k, hi_ms + DAY_MS)]
            out = key_of(paths.warehouse, attributed_partition_path(paths.warehouse, day, name))
            task = StagedTask.of(paths, reads={"warehouse": keys}, writes={"warehouse": [out]})
            tasks.append((task, day, e, salt))
    return tasks


def _may_overlap(key: str, hi_ms: int) -> bool:
    """Whether a weekly reference file may matter to a day whose holder window ends at `hi_ms`: a
    week file's rows overlap its own days, so one starting at or after `hi_ms` adds no holder
    valid when the day's flows start (a file of another name is kept)."""
    match = WEEK_FILE.fullmatch(key.rsplit("/", 1)[-1])
    return match is None or local_day_bounds_ms(dt.date.fromisoformat(match[1]))[0] < hi_ms


def attribute_flows(
    paths: Paths, year: int, salt: str, workers: int, scheduler: str | None = None
) -> dict[str, Any]:
    """Attribute the year's flows (on the Dask cluster at `scheduler` when given); unattributed
    byte share per service in percent."""
    started = time.monotonic()
    with working_copy(paths, reads={"raw": ["exporters.yaml"]}):
        exporters = load_exporters(paths.raw)
    days = flow_days_for_year(year)
    if is_staged(paths, "warehouse"):
        tasks = _staged_tasks(paths, days, exporters, salt)
    else:
        tasks = [(paths.warehouse, d, e, salt) for d in days for e in exporters]
    progress = Progress(log, f"attribute {year}: attributed", len(tasks), "exporter-days")
    reports = run_parallel(
        _attribute_task, tasks, workers, lambda r: progress.step(r["flows"]), scheduler=scheduler
    )
    flows_in = sum(r.pop("normalised_rows") for r in reports)
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
