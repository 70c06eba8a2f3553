"""Which raw files a report year reads, and their content hashes (for provenance)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from pathlib import Path

from pipeline.config import weeks_for_year
from pipeline.fingerprint import file_sha256
from pipeline.ingest.sources import FlowSource


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


def raw_keys_for_year(
    keys: Iterable[str], year: int, exporters: list[dict], sources: list[FlowSource]
) -> list[str]:
    """`raw_files_for_year` over store keys (a listing of the raw store), in the same order."""
    present = set(keys)
    days = days_for_year(year)
    radius_days = sorted(set(days) | {d - dt.timedelta(days=1) for d in days})
    out = ["exporters.yaml", "counters/monthly_traffic.csv"]
    out += flow_keys_for_year(present, year, exporters, sources)
    for day in days:
        out += [f"ipoe_leases/leases-{day.isoformat()}.csv",
                f"mobile_billing/billing-{day.isoformat()}.csv"]  # fmt: skip
    out += [f"radius/detail-{d.strftime('%Y%m%d')}" for d in radius_days]
    return [k for k in out if k in present]


def flow_keys_for_day(
    keys: Iterable[str], exporters: list[dict], sources: list[FlowSource], day: dt.date
) -> list[str]:
    """Flow file keys of one day in the order the ingest reads them (`duplicates.listed_files`)."""
    keys = list(keys)
    out = []
    for source in sources:
        targets = [e["name"] for e in exporters] if source.per_exporter else [None]
        for target in targets:
            out += source.keys(keys, day, target)
    return out


def flow_keys_for_year(
    keys: Iterable[str], year: int, exporters: list[dict], sources: list[FlowSource]
) -> list[str]:
    """Flow file keys of every day the year reads, day by day."""
    keys = list(keys)
    return [
        k for d in flow_days_for_year(year) for k in flow_keys_for_day(keys, exporters, sources, d)
    ]


def raw_listing_prefixes(sources: list[FlowSource]) -> list[str]:
    """The raw store's folders a year's files sit under (each listed once per step)."""
    prefixes = {s.static_prefix() for s in sources} | {"counters", *(d.rstrip("/") for d in DAILY)}
    if "" in prefixes:
        return [""]
    return sorted(p for p in prefixes if not any(p.startswith(f"{q}/") for q in prefixes))


RAW_LAYOUT = ("exporters.yaml, flow files (ipfix/<exporter>/<date>/ or as exporters.yaml's sources "
              "say), radius/detail-YYYYMMDD, ipoe_leases/leases-<date>.csv, "
              "mobile_billing/billing-<date>.csv, counters/monthly_traffic.csv")  # fmt: skip


class MissingRawInputsError(FileNotFoundError):
    """The raw folder lacks a whole kind of input of the year; the message names them."""


def check_raw_folder(raw_dir: Path, year: int, min_share_pct: dict[str, float]) -> None:
    """Stop with one line when the raw folder is absent or empty, or holds no file at all of a
    kind of input the year needs (a kind whose completeness threshold is 0 may be absent)."""
    where = f"raw folder {raw_dir}"
    if not raw_dir.is_dir():
        raise MissingRawInputsError(f"{where} does not exist (BBTR_RAW_DIR?)")
    if not any(raw_dir.iterdir()):
        raise MissingRawInputsError(f"{where} is empty: expected {RAW_LAYOUT}")
    if not (raw_dir / "exporters.yaml").is_file():
        raise MissingRawInputsError(f"{where} has no exporters.yaml (the exporter registry)")
    files = {p.relative_to(raw_dir).as_posix() for p in raw_files_for_year(raw_dir, year)}
    _check_kinds(where, files, year, min_share_pct)


def _check_kinds(where: str, files: set[str], year: int, min_share_pct: dict[str, float]) -> None:
    days = days_for_year(year)
    span = f"{days[0]}…{days[-1]}"
    kinds = {
        "flows": ("flow files", lambda f: f not in FIXED and not f.startswith(DAILY)),
        "radius": ("radius/detail-YYYYMMDD", lambda f: f.startswith("radius/")),
        "ipoe_leases": ("ipoe_leases/leases-<date>.csv", lambda f: f.startswith("ipoe_leases/")),
        "mobile_billing": ("mobile_billing/billing-<date>.csv",
                           lambda f: f.startswith("mobile_billing/")),
        "counters": ("counters/monthly_traffic.csv", lambda f: f.startswith("counters/")),
    }  # fmt: skip
    missing = [
        name
        for kind, (name, of_kind) in kinds.items()
        if min_share_pct.get(kind, 100) > 0 and not any(of_kind(f) for f in files)
    ]
    if missing:
        raise MissingRawInputsError(f"{where} has no {', no '.join(missing)} for {year} ({span})")


def check_raw_keys(where: str, keys: list[str], year: int, min_share_pct: dict[str, float]) -> None:
    """`check_raw_folder` over the year's keys (`raw_keys_for_year`) of the store `where`."""
    where = f"raw store {where}"
    if not keys:
        raise MissingRawInputsError(f"{where} holds no file of {year}: expected {RAW_LAYOUT}")
    if "exporters.yaml" not in keys:
        raise MissingRawInputsError(f"{where} has no exporters.yaml (the exporter registry)")
    _check_kinds(where, set(keys), year, min_share_pct)


FIXED = ("exporters.yaml", "counters/monthly_traffic.csv")
DAILY = ("radius/", "ipoe_leases/", "mobile_billing/")


def sha256_of_files(files: list[Path], root: Path) -> tuple[str, dict[str, str]]:
    """Combined digest over (relative path, file digest) pairs, plus each file's digest."""
    per_file: dict[str, str] = {}
    for f in files:
        per_file[f.relative_to(root).as_posix()] = file_sha256(f)
    return combined_sha256(per_file), per_file


def combined_sha256(per_file: dict[str, str]) -> str:
    """The digest over (relative path, file digest) pairs, in name order."""
    combined = hashlib.sha256()
    for name in sorted(per_file):
        combined.update(f"{name}\0{per_file[name]}\n".encode())
    return combined.hexdigest()
