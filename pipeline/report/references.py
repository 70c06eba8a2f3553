"""The published reference tables a report merges (../shared/spec/published/*.csv), pinned in
provenance.json by name, size and sha256; an absent one is a warning, not a silent gap."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.fingerprint import file_sha256

log = logging.getLogger(__name__)

# The CSVs pipeline/aggregate/history.py merges into the report's tables (published rows).
MERGED = (
    "table1_broadband_daily_usage_2007_2024.csv",
    "table2_mobile_daily_usage_2015_2024.csv",
    "table3_broadband_port_share_2020_2024.csv",
    "table4_mobile_port_share_2020_2024.csv",
    "yoy_growth_by_edition.csv",
    "ipoe_share_of_broadband.csv",
    "top_user_shares.csv",
)


def reference_tables(published_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(name, bytes and sha256 of every CSV in `published_dir`, by name; warnings, logged: the
    folder absent, or a CSV the report merges missing — its published rows are left out)."""
    files = sorted(published_dir.glob("*.csv")) if published_dir.is_dir() else []
    tables = [{"name": f.name, "bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files]
    if not published_dir.is_dir():
        warnings = [
            f"published reference tables absent ({published_dir}): the report has no "
            "published rows (earlier years, growth by edition, top-user shares)"
        ]
    else:
        present = {t["name"] for t in tables}
        warnings = [f"published reference table {name} absent from {published_dir}: its "
                    "published rows are left out of the report"
                    for name in MERGED if name not in present]  # fmt: skip
    for text in warnings:
        log.warning(text)
    return tables, warnings
