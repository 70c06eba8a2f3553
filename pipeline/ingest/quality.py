"""The blocking threshold on the share an exporter-day may set aside (params.yaml `quality`).

An exporter-day whose files decode to mostly set-aside records, or to no record at all, would
still give a report with a quietly wrong total: the ingest stops instead, with one line naming the
exporter, the day, the share and the threshold.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import load_params
from pipeline.ingest.sources import UNREGISTERED

DEFAULT_MAX_SHARE_PCT = 5.0


class QuarantineThresholdError(RuntimeError):
    """An exporter-day set aside more than the threshold allows (message: one line)."""


def max_quarantined_share_pct(params: dict | None = None) -> float:
    """`quality.max_quarantined_share_pct` of params.yaml."""
    params = params or load_params()
    quality = params.get("quality", {})
    return float(quality.get("max_quarantined_share_pct", DEFAULT_MAX_SHARE_PCT))


def quarantined_share_pct(report: dict[str, Any]) -> float | None:
    """Set-aside records as a % of records in; None when nothing came in."""
    records_in = int(report.get("records_in", 0))
    return 100.0 * int(report.get("records_quarantined", 0)) / records_in if records_in else None


def threshold_violations(reports: list[dict[str, Any]], max_share_pct: float) -> list[str]:
    """One line per exporter-day over the threshold (worst first), or whose files gave no record.

    Registered exporters only: records of the `unregistered` pseudo-exporter are set aside by
    design and shown in Appendix A."""
    found: list[tuple[float, str, str, str]] = []
    for r in reports:
        if r.get("exporter") == UNREGISTERED:
            continue
        where = f"exporter {r.get('exporter')}, day {r.get('date')}"
        share = quarantined_share_pct(r)
        if share is None and int(r.get("files", 0)) > 0:
            line = (f"{where}: {r['files']} file(s) but no record read (share set aside "
                    f"undefined, threshold {max_share_pct:g} %)")  # fmt: skip
            found.append((101.0, str(r.get("date")), str(r.get("exporter")), line))
        elif share is not None and share > max_share_pct:
            line = (f"{where}: {share:.1f} % of {r['records_in']:,} records set aside "
                    f"(threshold {max_share_pct:g} %)")  # fmt: skip
            found.append((share, str(r.get("date")), str(r.get("exporter")), line))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return [f[3] for f in found]


def enforce_threshold(reports: list[dict[str, Any]], max_share_pct: float) -> None:
    """Raise QuarantineThresholdError with one line (the worst exporter-day, and how many more)."""
    lines = threshold_violations(reports, max_share_pct)
    if lines:
        more = f"; {len(lines) - 1} more exporter-day(s) over it" if len(lines) > 1 else ""
        raise QuarantineThresholdError(
            f"set-aside threshold exceeded: {lines[0]}{more} "
            "(quality.max_quarantined_share_pct in params.yaml)"
        )
