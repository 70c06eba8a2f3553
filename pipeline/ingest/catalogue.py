"""Which raw files a report year reads, and their content hashes (for provenance)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from pipeline.config import weeks_for_year


def days_for_year(year: int) -> list[dt.date]:
    """Every local day of the year's weeks, in date order."""
    return sorted({day for week in weeks_for_year(year) for day in week.days})


def raw_files_for_year(raw_dir: Path, year: int) -> list[Path]:
    """Raw files the report year reads: registry, counters, and every per-day file of its weeks."""
    days = days_for_year(year)
    radius_days = sorted(set(days) | {d - dt.timedelta(days=1) for d in days})
    files = [raw_dir / "exporters.yaml", raw_dir / "counters" / "monthly_traffic.csv"]
    for day in days:
        files += sorted((raw_dir / "ipfix").glob(f"*/{day.isoformat()}/*"))
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
        h = hashlib.sha256()
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        per_file[f.relative_to(root).as_posix()] = h.hexdigest()
    combined = hashlib.sha256()
    for name in sorted(per_file):
        combined.update(f"{name}\0{per_file[name]}\n".encode())
    return combined.hexdigest(), per_file
