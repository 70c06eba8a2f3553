"""What each asset writes for a report year: its data version (a content digest) and a cheap
check that the files are still there, so a rebuild skips an asset only while its output exists.

Files a later year rewrites (the all-days reference tables; raw inputs shared by every year) are
checked for presence only; the others also by size. Contents are hashed when an asset runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pipeline.aggregate.year import user_week_path
from pipeline.config import Paths, weeks_for_year
from pipeline.fingerprint import digest, file_sha256
from pipeline.ingest.catalogue import flow_days_for_year
from pipeline.report.year import figures_dir
from pipeline.storage.stage import is_staged, remote_sizes, store_of, working_copy

SHARED = {"mobile_usage", "monthly_counters"}  # one file for all years, rewritten by each


def _under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _days(paths: Paths, year: int, *kinds: str) -> list[Path]:
    return [f for d in flow_days_for_year(year) for kind in kinds
            for f in _under(paths.warehouse / kind / f"date={d.isoformat()}")]  # fmt: skip


def _weekly(paths: Paths, year: int) -> list[Path]:
    ref = paths.warehouse / "reference"
    folders = (ref / "pppoe_sessions", ref / "ipoe_leases", paths.warehouse / "quarantine/radius")
    names = [f"week={w.start.isoformat()}.parquet" for w in weeks_for_year(year)]
    return [folder / n for folder in folders for n in names if (folder / n).is_file()]


def _existing(*files: Path) -> list[Path]:
    return [f for f in files if f.is_file()]


def _table(table: str) -> Callable[[Paths, int], list[Path]]:
    return lambda paths, year: _existing(paths.history / table / f"year={year}.parquet")


OUTPUTS: dict[str, Callable[[Paths, int], list[Path]]] = {
    "raw_inputs": lambda p, y: _existing(p.warehouse / "provenance" / f"year={y}.json"),
    "normalised_flows": lambda p, y: _days(p, y, "flows", "ingest_report", "quarantine"),
    "subscriber_sessions": _weekly,
    "mobile_usage": lambda p, y: _existing(p.warehouse / "reference/mobile_usage.parquet"),
    "monthly_counters": lambda p, y: _existing(p.warehouse / "reference/monthly_traffic.parquet"),
    "attributed_flows": lambda p, y: _days(p, y, "attributed"),
    "user_week_usage": lambda p, y: _existing(user_week_path(p, y)),
    "report_figures": lambda p, y: _under(figures_dir(p, y)),
    "annual_report": lambda p, y: _under(p.reports / str(y)),
}


def output_files(asset: str, paths: Paths, year: int) -> list[Path]:
    """The files `asset` wrote for `year` (aggregate tables: their history file)."""
    return OUTPUTS.get(asset, _table(asset))(paths, year)


def _stored_keys(asset: str, paths: Paths, year: int) -> tuple[str, list[str]]:
    """The area and the keys or folders of what `asset` writes for `year` (for a store)."""
    days = [d.isoformat() for d in flow_days_for_year(year)]
    weeks = [w.start.isoformat() for w in weeks_for_year(year)]
    warehouse = {
        "raw_inputs": [f"provenance/year={year}.json"],
        "normalised_flows": [f"{k}/date={d}" for d in days
                             for k in ("flows", "ingest_report", "quarantine")],
        "subscriber_sessions": [f"{f}/week={w}.parquet" for f in
                                ("reference/pppoe_sessions", "reference/ipoe_leases",
                                 "quarantine/radius") for w in weeks],
        "mobile_usage": ["reference/mobile_usage.parquet"],
        "monthly_counters": ["reference/monthly_traffic.parquet"],
        "attributed_flows": [f"attributed/date={d}" for d in days],
        "user_week_usage": [f"user_week/year={year}.parquet"],
        "report_figures": [f"figures/year={year}"],
    }  # fmt: skip
    if asset in warehouse:
        return "warehouse", warehouse[asset]
    return "history", [f"{asset}/year={year}.parquet"]


def _stored(asset: str, paths: Paths, year: int) -> dict[str, int] | None:
    """{"<area>/<key>": size} of the asset's objects in a staged store (a listing per folder),
    or None when its area is a local folder (or it is the local report)."""
    if asset == "annual_report" or not paths.remote:
        return None
    area, keys = _stored_keys(asset, paths, year)
    if not is_staged(paths, area):
        return None
    store, out = store_of(paths, area), {}
    for key in keys:
        found = {key: store.size(key)} if store.exists(key) else remote_sizes(store, key)
        out |= {f"{area}/{k}": n for k, n in found.items()}
    return dict(sorted(out.items()))


def _name(path: Path, paths: Paths) -> str:
    """A file's name relative to its area ("warehouse/…", "history/…", "reports/…")."""
    for area in ("warehouse", "history", "reports"):
        root = getattr(paths, area)
        if path.is_relative_to(root):
            return f"{area}/{path.relative_to(root).as_posix()}"
    return path.as_posix()


def data_version(asset: str, paths: Paths, year: int) -> str:
    """Content digest of the asset's files for `year` (names and sha256; in a staged store,
    names and sizes: hashing would download every object)."""
    if (stored := _stored(asset, paths, year)) is not None:
        return digest(sorted((name, f"bytes:{n}") for name, n in stored.items()))
    files = output_files(asset, paths, year)
    return digest(sorted((_name(f, paths), file_sha256(f)) for f in files))


def _raw_listing(paths: Paths, year: int) -> dict[str, int]:
    """Raw files of the year as the ingest provenance listed them, with their sizes."""
    provenance = paths.warehouse / "provenance" / f"year={year}.json"
    files = json.loads(provenance.read_text()).get("files", {}) if provenance.is_file() else {}
    return {name: info["bytes"] for name, info in sorted(files.items())}


def intact_token(asset: str, paths: Paths, year: int) -> str:
    """Digest of what must still hold for the output to count as present: file names (and sizes,
    for files only this year writes; for raw inputs, the sizes the provenance lists)."""
    if (stored := _stored(asset, paths, year)) is not None:
        sized = {n: None if asset in SHARED else size for n, size in stored.items()}
        if asset == "raw_inputs" and stored and is_staged(paths, "raw"):
            sized |= _raw_store_listing(paths, year)
        return digest(sized) if stored else ""
    files = output_files(asset, paths, year)
    listing: dict = {_name(f, paths): None for f in files}
    if asset == "raw_inputs":
        listing |= {
            name: size if (paths.raw / name).is_file() and (paths.raw / name).stat().st_size == size
            else "missing" for name, size in _raw_listing(paths, year).items()
        }  # fmt: skip
    elif asset not in SHARED:
        listing = {_name(f, paths): f.stat().st_size for f in files}
    return digest(listing) if files else ""


def _raw_store_listing(paths: Paths, year: int) -> dict[str, int | str]:
    """The raw files the year's provenance lists, with their size if the raw store still holds
    them at that size, else "missing" (one listing per top folder)."""
    with working_copy(paths, reads={"warehouse": [f"provenance/year={year}.json"]}):
        listed = _raw_listing(paths, year)
    store = store_of(paths, "raw")
    present: dict[str, int] = {}
    for top in sorted({name.split("/", 1)[0] for name in listed if "/" in name}):
        present |= remote_sizes(store, top)
    for name in (n for n in listed if "/" not in n):
        present |= {name: store.size(name)} if store.exists(name) else {}
    return {
        f"raw/{name}": size if present.get(name) == size else "missing"
        for name, size in listed.items()
    }


INTACT_KEY = "bbtr/intact"


def versioned_result(asset: str, paths: Paths, year: int, metadata: dict, **kwargs):
    """A MaterializeResult of `asset` with its data version (content digest of its files) and,
    in the metadata, the intactness token that the next build compares."""
    from dagster import DataVersion, MaterializeResult

    return MaterializeResult(
        data_version=DataVersion(data_version(asset, paths, year)),
        metadata=metadata | {INTACT_KEY: intact_token(asset, paths, year)},
        **kwargs,
    )
