"""Which raw files a report year reads, and their content hashes (for provenance)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from pipeline.config import weeks_for_year
from pipeline.fingerprint import file_sha256


def days_for_year(year: int) -> list[dt.date]:
    """Every local day of the year's weeks, in date order."""
    return sorted({day for week in weeks_for_year(year) for day in week.days})


def flow_days_for_year(year: int) -> list[dt.date]:
    """Days whose flow files the year reads: its local days, and the day before each week.

    A collector names files by UTC date; with a positive UTC offset the first local morning of a
    week sits in the previous UTC day's folder. Queries filter by flow time, so a margin day
    contributes only the flows that fall inside the week."""
    days = days_for_year(year)
    return sorted(set(days) | {w.start - dt.timedelta(days=1) for w in weeks_for_year(year)})


def raw_files_for_year(raw_dir: Path, year: int) -> list[Path]:
    """Raw files the report year reads: registry, counters, flow files and per-day files."""
    from pipeline.ingest.flows import load_registry

    days = days_for_year(year)
    radius_days = sorted(set(days) | {d - dt.timedelta(days=1) for d in days})
    files = [raw_dir / "exporters.yaml", raw_dir / "counters" / "monthly_traffic.csv"]
    exporters, sources = load_registry(raw_dir)
    for day in flow_days_for_year(year):
        for source in sources:
            targets = [e["name"] for e in exporters] if source.per_exporter else [None]
            for target in targets:
                files += source.files(raw_dir, day, target)
    for day in days:
        files += [
            raw_dir / "ipoe_leases" / f"leases-{day.isoformat()}.csv",
            raw_dir / "mobile_billing" / f"billing-{day.isoformat()}.csv",
        ]
    files += [raw_dir / "radius" / f"detail-{d.strftime('%Y%m%d')}" for d in radius_days]
    return [f for f in files if f.is_file()]


def sha256_of_files(files: list[Path], root: Path) -> tuple[str, dict[str, str]]:
    """Combined digest over (relative path, file digest) pairs, plus each file's digest."""
    per_file: dict[str, str] = {}
    for f in files:
        per_file[f.relative_to(root).as_posix()] = file_sha256(f)
    combined = hashlib.sha256()
    for name in sorted(per_file):
        combined.update(f"{name}\0{per_file[name]}\n".encode())
    return combined.hexdigest(), per_file
