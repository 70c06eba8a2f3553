"""Assemble a report year: history tables (measured + earlier published), figures, context, PDF."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.aggregate.history import published_history, read_history
from pipeline.atomic import staging_dir, write_text_atomic
from pipeline.charts.render import build_charts
from pipeline.config import (
    PUBLISHED_DIR,
    REPO_ROOT,
    Paths,
    analysis_week,
    load_params,
    params_path,
    report_years,
)
from pipeline.report.references import reference_tables
from pipeline.report.render import build_report, file_sha256
from pipeline.report.supersede import replace_report
from pipeline.storage.stage import is_staged, mirror, store_of, working_copy

REPORT_TABLES = (
    "monthly_traffic_normalised", "growth_statistics", "weekday_hourly_profile",
    "daily_usage_density", "daily_usage_summary", "scatter_sample", "top_user_share",
    "usage_by_port", "port_class_week_series", "data_quality", "input_completeness",
)  # fmt: skip
CURRENT_YEAR_ONLY = {"monthly_traffic_normalised", "scatter_sample", "data_quality",
                     "input_completeness"}  # fmt: skip
PROVENANCE_FILE = "provenance.json"

log = logging.getLogger(__name__)


def collect_tables(paths: Paths, year: int) -> dict[str, pl.DataFrame]:
    """Each table over report years ≤ `year`, plus published rows for years we did not measure."""
    measured_years = [y for y in report_years() if y <= year]
    tables = {}
    for table in REPORT_TABLES:
        years = [year] if table in CURRENT_YEAR_ONLY else measured_years
        measured = read_history(paths.history, table, years)
        missing = set(years) - set(measured["year"].unique().to_list())
        if missing:
            raise FileNotFoundError(
                f"history store {paths.history / table} lacks years {sorted(missing)}: "
                f"build them first (python -m pipeline.build --year {year})"
            )
        published = published_history(table).filter(
            ~pl.col("year").is_in(measured_years) & (pl.col("year") <= year)
        )
        tables[table] = (
            pl.concat([published, measured], how="vertical_relaxed")
            if published.height
            else measured
        )
    return tables


def figures_dir(paths: Paths, year: int) -> Path:
    return paths.warehouse / "figures" / f"year={year}"


def history_keys(year: int) -> list[str]:
    """History store keys the figures and report of `year` read."""
    measured_years = [y for y in report_years() if y <= year]
    return [
        f"{table}/year={y}.parquet"
        for table in REPORT_TABLES
        for y in ([year] if table in CURRENT_YEAR_ONLY else measured_years)
    ]


def build_figures(paths: Paths, year: int) -> dict[str, Path]:
    """Figures 1–11 of `year` as SVG in the warehouse (the report copies them)."""
    folder = figures_dir(paths, year).relative_to(paths.warehouse).as_posix()
    reads, writes = {"history": history_keys(year)}, {"warehouse": [folder]}
    with working_copy(paths, reads=reads, writes=writes):
        return _build_figures(paths, year)


def _build_figures(paths: Paths, year: int) -> dict[str, Path]:
    figures = build_charts(collect_tables(paths, year), year, figures_dir(paths, year))
    log.debug("report %d: %d figures drawn", year, len(figures))
    return figures


def code_version() -> str:
    """BBTR_CODE_VERSION if set (a build from a source tarball, or comparing two commits' output),
    else the git commit of the code (with '+dirty' when the work tree differs), or 'unknown'."""
    if os.environ.get("BBTR_CODE_VERSION"):
        return os.environ["BBTR_CODE_VERSION"]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "pipeline", "assets"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set, else the commit time of HEAD, else 0 — never the wall clock."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return int(out or 0)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 0


def _exporter_rows(ingest_reports: list[dict]) -> list[dict[str, Any]]:
    """Per exporter: counts, sampling intervals, export versions, source formats, set-aside
    records by reason and sequence streams, summed over the year's ingest reports."""
    exporters: dict[str, dict[str, Any]] = {}
    for r in ingest_reports:
        e = exporters.setdefault(
            r["exporter"],
            {
                "name": r["exporter"],
                "sampling_intervals": {},
                "records_by_version": {},
                "formats": {},
                "quarantine_by_reason": {},
                "sequence": {},
                "records_decoded": 0,
                "records_quarantined": 0,
                "sequence_gaps": 0,
                "restarts": 0,
            },
        )
        e["records_decoded"] += r["records_decoded"]
        e["records_quarantined"] += r["records_quarantined"]
        e["sequence_gaps"] += r.get("sequence_gaps", 0)
        for key in ("sampling_intervals", "records_by_version", "formats", "quarantine_by_reason"):
            for n, c in r.get(key, {}).items():
                e[key][n] = e[key].get(n, 0) + c
        for s in r.get("sequence", []):
            k = f"v{s['version']}/{s['domain']}"
            acc = e["sequence"].setdefault(
                k, {"version": s["version"], "gaps": 0, "missing": 0, "unit": s.get("unit", "")}
            )
            acc["gaps"] += s.get("gaps", 0)
            acc["missing"] += s.get("missing", 0)
            e["restarts"] += s.get("restarts", 0)
    return [exporters[k] for k in sorted(exporters)]


def _warehouse_provenance(paths: Paths, year: int) -> dict[str, Any]:
    """What ingest recorded of the year's raw inputs (hashes, simulator parameters), or {}."""
    provenance_file = paths.warehouse / "provenance" / f"year={year}.json"
    return json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}


def build_context(paths: Paths, year: int, source: str, tables: dict[str, pl.DataFrame]) -> dict:
    """What the report prints besides aggregate tables: weeks, data quality, provenance."""
    from pipeline.aggregate.year import ingest_reports_for_year
    from pipeline.ingest.flows import load_exporters
    from pipeline.ingest.sources import UNREGISTERED

    params = load_params()
    inputs = _warehouse_provenance(paths, year)
    reports = ingest_reports_for_year(paths, year)
    services = {e["name"]: e.get("service") for e in load_exporters(paths.raw)}
    services[UNREGISTERED] = "not in registry"
    exporters = [e | {"service": services.get(e["name"])} for e in _exporter_rows(reports)]
    totals = {
        k: sum(r[k] for r in reports)
        for k in ("records_in", "records_decoded", "records_quarantined")
    }
    reasons: dict[str, int] = {}
    for r in reports:
        for k, n in r["quarantine_by_reason"].items():
            reasons[k] = reasons.get(k, 0) + n
    dq = tables["data_quality"]
    unattributed = {
        scope.split(":", 1)[1]: value
        for item, scope, value in dq.select("item", "scope", "value").rows()
        if item == "unattributed_bytes_pct" and scope.startswith("service:")
    }
    report_params = params["report"]
    edition = report_params.get("editions", {}).get(year, {})
    return {
        "year": year,
        "subtitle": edition.get("subtitle", report_params.get("default_subtitle", "")),
        "edition": edition.get("edition", f"{year} edition"),
        "simulated": source == "simulator",
        "analysis_weeks": {
            y: analysis_week(y).start.isoformat() for y in report_years() if y <= year
        },
        "params": params,
        "provenance": {
            "code_version": code_version(),
            "inputs_sha256": inputs.get("inputs_sha256", "unknown"),
            "input_files": len(inputs.get("files", {})),
            "params_sha256": hashlib.sha256(params_path().read_bytes()).hexdigest(),
            "source_date_epoch": source_date_epoch(),
            "simulator": inputs.get("simulator"),
        }
        | build_environment(),
        "data_quality": totals | {"quarantine_by_reason": dict(sorted(reasons.items()))},
        "exporters": exporters,
        "unattributed_share_pct": dict(sorted(unattributed.items())),
    }


LIBRARIES = ("dagster", "duckdb", "polars", "pyarrow", "numpy", "scipy", "altair",
             "vl-convert-python", "jinja2", "weasyprint")  # fmt: skip


def build_environment() -> dict[str, Any]:
    """What built the report: the lockfile's hash, Python's and the key libraries' versions."""
    lock = REPO_ROOT / "requirements.lock"
    return {
        "lockfile_sha256": file_sha256(lock) if lock.is_file() else "unknown",
        "python": platform.python_version(),
        "libraries": {name: importlib.metadata.version(name) for name in LIBRARIES},
    }


def build_annual_report(paths: Paths, year: int, source: str) -> dict[str, Any]:
    """reports/<year>/ from the history store and the year's figures; returns paths and counts.

    The folder is built whole beside its target (`.<year>.build.tmp`) and swapped in at once
    (atomic.replace_dir): a reader, or a run killed at any point, sees the previous complete
    report or the new one, never a mix. provenance.json lists the sha256 of every other file. A
    previous report built otherwise is kept under reports/superseded/ (report.supersede)."""
    from pipeline.aggregate.year import READS, store_reads

    if is_staged(paths, "warehouse"):  # the year's figures, as the store holds them
        folder = figures_dir(paths, year).relative_to(paths.warehouse).as_posix()
        mirror(store_of(paths, "warehouse"), paths.warehouse, folder)
    reads = store_reads(paths, year, READS["data_quality"][:1])  # exporters.yaml, ingest reports
    reads["history"] = history_keys(year)
    reads.setdefault("warehouse", []).append(f"provenance/year={year}.json")
    with working_copy(paths, reads=reads):
        return _build_annual_report(paths, year, source)


def _build_annual_report(paths: Paths, year: int, source: str) -> dict[str, Any]:
    tables = collect_tables(paths, year)
    figures = {p.stem: p for p in sorted(figures_dir(paths, year).glob("fig*.svg"))}
    context = build_context(paths, year, source, tables)
    out_dir = paths.reports / str(year)
    staging = staging_dir(out_dir)
    written = build_report(year, tables, figures, context, staging)
    inputs = _warehouse_provenance(paths, year)
    references, warnings = reference_tables(PUBLISHED_DIR)
    provenance = context["provenance"] | {
        "year": year,
        "params": context["params"],
        "input_files_detail": inputs.get("files", {}),  # raw file names, sizes, sha256
        "reference_tables": references,  # published CSVs merged into the tables
        "warnings": warnings,
        "outputs_sha256": output_hashes(staging),
    }
    write_text_atomic(
        staging / PROVENANCE_FILE,
        json.dumps(provenance, indent=1, sort_keys=True, default=str) + "\n",
    )
    pages = _pdf_pages(written["pdf"])
    superseded = replace_report(staging, out_dir, paths.reports)
    pdf = out_dir / written["pdf"].relative_to(staging)
    log.info("report %d: %s, %d pages", year, pdf, pages)
    return {
        "pdf": pdf,
        "pdf_sha256": file_sha256(pdf),
        "pages": pages,
        "csv_files": sum(1 for k in written if k.endswith(".csv")),
        "superseded": superseded,
        "reference_tables": len(references),
        "warnings": warnings,
    }


def output_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under a report folder but provenance.json, by relative path."""
    return {
        p.relative_to(folder).as_posix(): file_sha256(p)
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() != PROVENANCE_FILE
    }


def _pdf_pages(pdf: Path) -> int:
    """Page count from poppler's pdfinfo (installed by scripts/setup.sh); 0 if it cannot tell."""
    try:
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return 0
    match = re.search(r"^Pages:\s+(\d+)", info.stdout, re.MULTILINE)
    return int(match.group(1)) if match else 0
