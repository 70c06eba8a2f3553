"""A report year's ingest: raw inputs (simulated or catalogued) → warehouse Parquet, with counts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

from pipeline.atomic import write_text_atomic
from pipeline.config import Paths, load_params, weeks_for_year
from pipeline.fingerprint import file_sha256
from pipeline.ingest.catalogue import (
    check_raw_folder,
    check_raw_keys,
    combined_sha256,
    flow_days_for_year,
    flow_keys_for_day,
    raw_files_for_year,
    raw_keys_for_year,
    raw_listing_prefixes,
    sha256_of_files,
)
from pipeline.ingest.clocks import clock_tolerance_ms
from pipeline.ingest.duplicates import day_digests, first_copies_before
from pipeline.ingest.flows import load_registry, normalise_day
from pipeline.ingest.quality import enforce_threshold, max_quarantined_share_pct
from pipeline.ingest.radius import ingest_radius, radius_file_days
from pipeline.ingest.reference import (
    ingest_ipoe_leases,
    ingest_mobile_billing,
    ingest_monthly_counters,
)
from pipeline.parallel import run_parallel
from pipeline.progress import Progress, count
from pipeline.storage.stage import (
    StagedTask,
    is_current,
    is_staged,
    mirror,
    remote_sizes,
    run_staged,
    store_of,
    working_copy,
)

log = logging.getLogger(__name__)


def catalogue_raw_inputs(
    paths: Paths,
    year: int,
    source: str,
    simulator: dict | None = None,
    workers: int = 1,
    scheduler: str | None = None,
) -> dict:
    """Check and hash the year's raw files (an ISP's own, or what the simulator just wrote, whose
    parameters `simulator` names in the provenance). From a raw store that is not a local folder,
    the flow files are hashed by per-day tasks (`workers`, `scheduler`) where they are staged."""
    shares = (load_params().get("completeness") or {}).get("min_share_pct") or {}
    if is_staged(paths, "raw"):
        return _catalogue_staged(paths, year, source, simulator, shares, workers, scheduler)
    check_raw_folder(paths.raw, year, shares)
    files = raw_files_for_year(paths.raw, year)
    digest, per_file = sha256_of_files(files, paths.raw)
    files_detail = {
        name: {"bytes": (paths.raw / name).stat().st_size, "sha256": sha}
        for name, sha in sorted(per_file.items())
    }
    log.debug("ingest %d: %d raw files catalogued", year, len(files))
    with working_copy(paths, writes={"warehouse": [provenance_key(year)]}):  # a warehouse store
        _write_provenance(paths, year, source, simulator, digest, files_detail)
    return {
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "inputs_sha256": digest,
    }


def _write_provenance(
    paths: Paths, year: int, source: str, simulator: dict | None, digest: str, files: dict
) -> None:
    provenance = {"year": year, "source": source, "inputs_sha256": digest, "files": files}
    if simulator is not None:
        provenance["simulator"] = simulator
    _write_json(paths.warehouse / provenance_key(year), provenance)


def provenance_key(year: int) -> str:
    """The warehouse key of the year's raw-input provenance (names, sizes, sha256)."""
    return f"provenance/year={year}.json"


def _catalogue_staged(
    paths: Paths, year: int, source: str, simulator: dict | None, shares: dict,
    workers: int, scheduler: str | None,
) -> dict:  # fmt: skip
    """The catalogue of a raw store: one listing of its folders, small files hashed on the host
    (whose steps read them), flow files by per-day tasks that stage them."""
    raw = store_of(paths, "raw")
    with working_copy(paths, reads={"raw": ["exporters.yaml"]}):
        if not (paths.raw / "exporters.yaml").is_file():
            check_raw_keys(raw.url, raw.list()[:1], year, shares)
        exporters, sources = load_registry(paths.raw)
    infos: dict[str, tuple[int, int | None]] = {}
    for prefix in raw_listing_prefixes(sources):
        infos |= raw.infos(prefix)
    infos["exporters.yaml"] = (raw.size("exporters.yaml"), None)
    sizes = {k: size for k, (size, _) in infos.items()}
    keys = raw_keys_for_year(sizes, year, exporters, sources)
    check_raw_keys(raw.url, keys, year, shares)
    by_day = {d: flow_keys_for_day(keys, exporters, sources, d) for d in flow_days_for_year(year)}
    flow_keys = {k for day_keys in by_day.values() for k in day_keys}
    small = [k for k in keys if k not in flow_keys]
    # Flow files this host holds as the store does (e.g. just uploaded by it) are hashed here;
    # the others by a task per day where they are staged, never all downloaded to the host.
    here = {k for k in flow_keys if is_current(paths.raw, k, infos[k])}
    elsewhere = {d: [k for k in day_keys if k not in here] for d, day_keys in by_day.items()}
    with working_copy(paths, reads={"raw": small}, writes={"warehouse": [provenance_key(year)]}):
        per_file = {k: file_sha256(paths.raw / k) for k in [*small, *sorted(here)]}
        for hashed in _staged_digests(paths, elsewhere, workers, scheduler).values():
            per_file |= hashed
        digest = combined_sha256(per_file)
        files_detail = {k: {"bytes": sizes[k], "sha256": per_file[k]} for k in sorted(per_file)}
        _write_provenance(paths, year, source, simulator, digest, files_detail)
    log.debug("ingest %d: %d raw files catalogued in %s", year, len(keys), raw.url)
    return {
        "files": len(keys),
        "bytes": sum(sizes[k] for k in keys),
        "inputs_sha256": digest,
    }


def _staged_digests(
    paths: Paths, by_day: dict[dt.date, list[str]], workers: int, scheduler: str | None
) -> dict[dt.date, dict[str, str]]:
    """{day: {key: sha256}} of each day's flow keys, hashed by a task per day that fetches them."""
    days = [d for d in sorted(by_day) if by_day[d]]  # a day with nothing to hash has no task
    tasks = [(StagedTask.of(paths, reads={"raw": by_day[d]}), by_day[d]) for d in days]
    hashed = run_parallel(_digest_staged_task, tasks, workers, scheduler=scheduler)
    hashed = dict(zip(days, hashed, strict=True))
    return {d: hashed.get(d, {}) for d in sorted(by_day)}


def _digest_staged_task(args: tuple) -> dict[str, str]:
    task, keys = args
    return run_staged(task, lambda folders: {k: file_sha256(folders["raw"] / k) for k in keys})


def _digest_task(args: tuple) -> dict[str, str]:
    raw, exporters, sources, day = args
    return day_digests(raw, exporters, sources, day)


def _normalise_task(args: tuple) -> list[dict]:
    raw, warehouse, exporters, sources, day, read_before, digests, tolerance_ms = args
    if isinstance(raw, StagedTask):  # raw and warehouse in stores: staged in a scratch folder
        return run_staged(
            raw,
            lambda f: normalise_day(
                f["raw"], f["warehouse"], exporters, sources, day, read_before, digests,
                tolerance_ms,
            ),
        )  # fmt: skip
    return normalise_day(
        raw, warehouse, exporters, sources, day, read_before, digests, tolerance_ms
    )


def day_outputs(day: dt.date) -> list[str]:
    """Warehouse prefixes the ingest of one day writes (flows, quarantine, ingest reports)."""
    return [f"{kind}/date={day.isoformat()}" for kind in ("flows", "quarantine", "ingest_report")]


def ingest_flows(
    paths: Paths, year: int, workers: int, scheduler: str | None = None
) -> dict[str, Any]:
    """Decode every exporter-day of the year's weeks (independent partitions, run in parallel;
    on the Dask cluster at `scheduler` when given).

    A file under two day folders is read once (the earlier day; duplicates are counted). Stops
    with QuarantineThresholdError when an exporter-day sets aside more than
    `quality.max_quarantined_share_pct` of its records, or its files give no record."""
    started = time.monotonic()
    params = load_params()
    days = flow_days_for_year(year)
    tolerance_ms = clock_tolerance_ms(params)
    if is_staged(paths, "raw") or is_staged(paths, "warehouse"):
        exporters, sources, digests = _staged_flow_digests(paths, year, workers, scheduler)
        before = first_copies_before(digests)
        tasks = [
            (StagedTask.of(paths, {"raw": list(digests[d])}, {"warehouse": day_outputs(d)}),
             None, exporters, sources, d, before[d], digests[d], tolerance_ms)
            for d in days
        ]  # fmt: skip
    else:
        exporters, sources = load_registry(paths.raw)
        hashed = run_parallel(
            _digest_task,
            [(paths.raw, exporters, sources, d) for d in days],
            workers,
            scheduler=scheduler,
        )
        digests = dict(zip(days, hashed, strict=True))
        before = first_copies_before(digests)
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
        scheduler=scheduler,
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


def _staged_flow_digests(
    paths: Paths, year: int, workers: int, scheduler: str | None
) -> tuple[list[dict], list, dict[dt.date, dict[str, str]]]:
    """Registry, and each day's flow keys with their sha256 in reading order: from the year's
    provenance (the catalogue listed and hashed them), else listed and hashed now."""
    with working_copy(
        paths, reads={"raw": ["exporters.yaml"], "warehouse": [provenance_key(year)]}
    ):
        exporters, sources = load_registry(paths.raw)
        provenance = paths.warehouse / provenance_key(year)
        files = json.loads(provenance.read_text())["files"] if provenance.is_file() else None
    days = flow_days_for_year(year)
    if files is None:
        raw = store_of(paths, "raw")
        listed: dict[str, int] = {}
        for prefix in raw_listing_prefixes(sources):
            listed |= remote_sizes(raw, prefix)
        by_day = {d: flow_keys_for_day(listed, exporters, sources, d) for d in days}
        return exporters, sources, _staged_digests(paths, by_day, workers, scheduler)
    digests = {
        d: {k: files[k]["sha256"] for k in flow_keys_for_day(files, exporters, sources, d)}
        for d in days
    }
    return exporters, sources, digests


def ingest_subscriber_sessions(paths: Paths, year: int) -> dict[str, Any]:
    """RADIUS accounting → PPPoE sessions, and IPoE leases, for each week of the year."""
    weeks = weeks_for_year(year)
    reads = [f"radius/detail-{d:%Y%m%d}" for w in weeks for d in radius_file_days(w.days)]
    reads += [f"ipoe_leases/leases-{d.isoformat()}.csv" for w in weeks for d in w.days]
    writes = [
        f"{folder}/week={w.start.isoformat()}.parquet"
        for w in weeks
        for folder in ("reference/pppoe_sessions", "quarantine/radius", "reference/ipoe_leases")
    ]
    with working_copy(paths, reads={"raw": reads}, writes={"warehouse": writes}):
        return _ingest_subscriber_sessions(paths, year)


def _ingest_subscriber_sessions(paths: Paths, year: int) -> dict[str, Any]:
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
    if is_staged(paths, "raw"):  # every billing file the store holds, and only those
        mirror(store_of(paths, "raw"), paths.raw, "mobile_billing")
    with working_copy(paths, writes={"warehouse": ["reference/mobile_usage.parquet"]}):
        summary = ingest_mobile_billing(paths.raw, paths.warehouse, None)
    log.debug("ingest %d: mobile billing %s", year, summary)
    return summary


def ingest_counters(paths: Paths, year: int) -> dict[str, Any]:
    """Monthly interface counters → Parquet."""
    with working_copy(
        paths,
        reads={"raw": ["counters/monthly_traffic.csv"]},
        writes={"warehouse": ["reference/monthly_traffic.parquet"]},
    ):
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
