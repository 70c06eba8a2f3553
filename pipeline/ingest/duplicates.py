"""Duplicate flow files: the same bytes under two names, two day folders or two source patterns.

A file is known by the sha256 of its bytes. The first copy in (day, source, exporter, name) order
is read; every later copy is skipped and counted (`duplicate_files` in the ingest report, with
its path and the path of the copy that was read), so totals do not change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from pipeline.fingerprint import file_sha256
from pipeline.ingest.sources import FlowSource


def listed_files(
    raw_dir: Path, exporters: list[dict], sources: list[FlowSource], day: dt.date
) -> Iterator[tuple[FlowSource, str | None, Path]]:
    """(source, exporter target or None, path) of one day, in the order the ingest reads them."""
    for source in sources:
        targets = [e["name"] for e in exporters] if source.per_exporter else [None]
        for target in targets:
            for path in source.files(raw_dir, day, target):  # name order = time order
                yield source, target, path


def day_digests(
    raw_dir: Path, exporters: list[dict], sources: list[FlowSource], day: dt.date
) -> dict[str, str]:
    """{relative path: sha256} of every flow file one day lists."""
    raw_dir = Path(raw_dir)
    return {
        path.relative_to(raw_dir).as_posix(): file_sha256(path)
        for _, _, path in listed_files(raw_dir, exporters, sources, day)
    }


def first_copies_before(
    digests_by_day: dict[dt.date, dict[str, str]],
) -> dict[dt.date, dict[str, str]]:
    """Per day: {sha256: relative path of its first copy} for contents first read on an EARLIER day
    (a file under two day folders is read once, in the earlier one)."""
    seen: dict[str, str] = {}
    out: dict[dt.date, dict[str, str]] = {}
    for day in sorted(digests_by_day):
        out[day] = dict(seen)
        for rel, digest in digests_by_day[day].items():
            seen.setdefault(digest, rel)
    return out
