"""Expected vs present inputs of a report year: flow exporter-days, counter months, RADIUS, lease
and billing days (one row per expected item), the days a rate may use, and the stop rule.

Expected (params.yaml `completeness`):
- flows: every local day of the analysis week × every registered exporter, and of the other weeks
  (Figs 2 and 9–10 draw broadband only) × every PPPoE and IPoE exporter. Presence is
  judged by flow time (at least one decoded record starting in the local day), so files in
  local-date or UTC-date folders count the same; the day before each week is read when present
  (collector folders are UTC dates) but is not expected in itself.
- counters: every month of Fig 1's range (`report.fig1_start_month` to the report month), the
  growth anchors (report month of Y−1 and Y−5) and the normalisation month, × service × direction.
- radius / ipoe_leases / mobile_billing: each day of the analysis week (a file with ≥ 1 record).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.config import Week, local_day_bounds_ms, weeks_for_year
from pipeline.ingest.flows import load_exporters
from pipeline.ingest.reference import COUNTER_SERVICES, DIRECTIONS

KINDS = ("flows", "counters", "radius", "ipoe_leases", "mobile_billing")
KIND_NAMES = {  # how a line of text names an input kind
    "flows": "flow data",
    "counters": "counters",
    "radius": "RADIUS accounting",
    "ipoe_leases": "IPoE leases",
    "mobile_billing": "mobile billing",
}
UNITS = {"flows": "exporter-days", "counters": "counter months", "radius": "days",
         "ipoe_leases": "days", "mobile_billing": "days"}  # fmt: skip
BROADBAND_FLOW_SERVICES = ("pppoe", "ipoe")
SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),  # one of KINDS
    "service": pl.String(),  # exporter service, counter service, or the reference's service
    "scope": pl.String(),  # exporter name, counter direction, or the kind again
    "period": pl.String(),  # YYYY-MM-DD (days) or YYYY-MM (counter months)
    "present": pl.Boolean(),
    "records": pl.Int64(),
}


class IncompleteInputsError(RuntimeError):
    """The year's inputs fall below a completeness threshold; the message names what is missing."""


def _month_add(month: str, n: int) -> str:
    y, m = int(month[:4]), int(month[5:7]) - 1 + n
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


def expected_months(year: int, params: dict[str, Any]) -> list[str]:
    """Counter months the year's Fig 1, growth statistics and normalisation need (YYYY-MM)."""
    report = params["report"]
    last = f"{year:04d}-{int(report['report_month']):02d}"
    months, m = set(), str(report["fig1_start_month"])
    while m <= last:
        months.add(m)
        m = _month_add(m, 1)
    months |= {_month_add(last, -12), _month_add(last, -60), str(report["normalise_month"])}
    return sorted(months)


def _flow_rows(warehouse: Path, exporters: list[dict], year: int, params: dict) -> pl.DataFrame:
    """One row per (exporter, local day of the year's weeks): records starting in that day."""
    weeks = weeks_for_year(year, params)
    days = sorted({d for w in weeks for d in w.days})
    folders = set(days) | {w.start - dt.timedelta(days=1) for w in weeks}  # + UTC-date margin
    files = [
        p
        for day in sorted(folders)
        for p in sorted((warehouse / "flows" / f"date={day.isoformat()}").glob("*/flows.parquet"))
    ]
    starts = pl.DataFrame(
        {"period": [d.isoformat() for d in days],
         "day_start_ms": [local_day_bounds_ms(d, params)[0] for d in days],
         "day_end_ms": [local_day_bounds_ms(d, params)[1] for d in days]},
        schema={"period": pl.String, "day_start_ms": pl.Int64, "day_end_ms": pl.Int64},
    ).sort("day_start_ms")  # fmt: skip
    counts = pl.DataFrame(schema={"exporter": pl.String, "period": pl.String, "records": pl.Int64})
    if files:
        minutes = (
            pl.scan_parquet(files)
            .select("exporter", (pl.col("flow_start_ms") // 60_000 * 60_000).alias("minute_ms"))
            .group_by("exporter", "minute_ms")
            .agg(pl.len().cast(pl.Int64).alias("records"))
            .collect()
            .sort("minute_ms")
        )
        counts = (
            minutes.join_asof(starts, left_on="minute_ms", right_on="day_start_ms")
            .filter(pl.col("minute_ms") < pl.col("day_end_ms"))
            .group_by("exporter", "period")
            .agg(pl.col("records").sum())
        )
    grid = pl.DataFrame(
        [
            (e["name"], e["service"], d.isoformat())
            for w in weeks
            for e in exporters
            for d in w.days
            if w.role == "analysis" or e["service"] in BROADBAND_FLOW_SERVICES
        ],  # fmt: skip
        schema={"scope": pl.String, "service": pl.String, "period": pl.String},
        orient="row",
    )
    return grid.join(
        counts.rename({"exporter": "scope"}), on=["scope", "period"], how="left"
    ).select(
        pl.lit("flows").alias("kind"),
        "service",
        "scope",
        "period",
        (pl.col("records").fill_null(0) > 0).alias("present"),
        pl.col("records").fill_null(0),
    )


def _counter_rows(raw: Path, year: int, params: dict) -> pl.DataFrame:
    """One row per expected (month, counter service, direction) of counters/monthly_traffic.csv."""
    path = raw / "counters" / "monthly_traffic.csv"
    seen: set[tuple[str, str, str]] = set()
    if path.is_file():
        df = pl.read_csv(path, infer_schema=False)
        if {"month", "service", "direction", "bytes"} <= set(df.columns):
            df = df.filter(pl.col("bytes").cast(pl.Float64, strict=False).is_not_null())
            seen = set(df.select("month", "service", "direction").iter_rows())
    rows = [
        ("counters", svc, d, m, (m, svc, d) in seen, int((m, svc, d) in seen))
        for m in expected_months(year, params)
        for svc in COUNTER_SERVICES
        for d in DIRECTIONS
    ]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def _count_records(path: Path, kind: str) -> int:
    """Records of a day file: RADIUS blocks, or CSV data lines (0 if the file is absent)."""
    if not path.is_file():
        return 0
    data = path.read_bytes()
    if kind == "radius":
        return data.count(b"Acct-Status-Type")
    lines = [line for line in data.splitlines()[1:] if line.strip()]
    return len(lines)


def _day_file_rows(raw: Path, year: int, params: dict) -> pl.DataFrame:
    """RADIUS detail, IPoE lease and billing files of the analysis week's days."""
    week = weeks_for_year(year, params)[0]
    layout = {
        "radius": ("pppoe", lambda d: raw / "radius" / f"detail-{d:%Y%m%d}"),
        "ipoe_leases": ("ipoe", lambda d: raw / "ipoe_leases" / f"leases-{d.isoformat()}.csv"),
        "mobile_billing": (
            "mobile",
            lambda d: raw / "mobile_billing" / f"billing-{d.isoformat()}.csv",
        ),
    }
    rows = []
    for kind, (service, path_of) in layout.items():
        for day in week.days:
            n = _count_records(path_of(day), kind)
            rows.append((kind, service, kind, day.isoformat(), n > 0, n))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def input_completeness(raw: Path, warehouse: Path, year: int, params: dict) -> pl.DataFrame:
    """Every expected input item of `year`: kind, service, scope, period, present, records."""
    exporters = load_exporters(raw)
    frames = [
        _flow_rows(Path(warehouse), exporters, year, params),
        _counter_rows(Path(raw), year, params),
        _day_file_rows(Path(raw), year, params),
    ]
    out = pl.concat([f.select(list(SCHEMA)).cast(SCHEMA) for f in frames])
    order = {k: i for i, k in enumerate(KINDS)}
    return out.sort(pl.col("kind").replace_strict(order), "service", "scope", "period")


def summary(completeness: pl.DataFrame) -> list[dict[str, Any]]:
    """Per kind: expected, present, share_pct and the missing items as text (in KINDS order)."""
    out = []
    for kind in KINDS:
        rows = completeness.filter(pl.col("kind") == kind)
        if rows.is_empty():
            continue
        missing = rows.filter(~pl.col("present"))
        out.append(
            {
                "kind": kind,
                "name": KIND_NAMES[kind],
                "unit": UNITS[kind],
                "expected": rows.height,
                "present": rows.height - missing.height,
                "share_pct": 100.0 * (rows.height - missing.height) / rows.height,
                "missing": [_item_text(r) for r in missing.iter_rows(named=True)],
            }
        )
    return out


def _item_text(row: dict[str, Any]) -> str:
    if row["kind"] == "flows":
        return f"exporter {row['scope']} on {row['period']}"
    if row["kind"] == "counters":
        return f"{row['period']} {row['service']} {row['scope']}"
    return row["period"]


def missing_line(year: int, completeness: pl.DataFrame, limit: int = 4) -> str:
    """One line naming what is missing, e.g. `2024: flow data missing for exporter bras03 on
    2024-06-05 (1 of 56 exporter-days); counters missing 2023-11 broadband_ipoe OUT (1 of …)`."""
    parts = []
    for s in summary(completeness):
        if not s["missing"]:
            continue
        shown = ", ".join(s["missing"][:limit])
        more = f" and {len(s['missing']) - limit} more" if len(s["missing"]) > limit else ""
        parts.append(
            f"{s['name']} missing {'for ' if s['kind'] == 'flows' else ''}{shown}{more} "
            f"({len(s['missing'])} of {s['expected']} {s['unit']})"
        )
    return f"{year}: " + ("; ".join(parts) if parts else "every expected input present")


def days_present(
    completeness: pl.DataFrame,
    week: Week,
    flow_services: Iterable[str] = BROADBAND_FLOW_SERVICES,
    references: Iterable[str] = (),
) -> list[dt.date]:
    """Days of `week` on which every exporter of `flow_services` delivered flows and every kind
    in `references` (radius, ipoe_leases, mobile_billing) is present: the days a rate may use.

    Per-user daily usage of broadband: flow_services=("pppoe", "ipoe"), references=("radius",
    "ipoe_leases"); of mobile: flow_services=(), references=("mobile_billing",).
    A day with no expected row of a kind (a kind not checked that week) is not held against it."""
    wanted = [d.isoformat() for d in week.days]
    rows = completeness.filter(
        pl.col("period").is_in(wanted)
        & (
            ((pl.col("kind") == "flows") & pl.col("service").is_in(list(flow_services)))
            | pl.col("kind").is_in(list(references))
        )
    )
    absent = set(rows.filter(~pl.col("present"))["period"].to_list())
    return [d for d in week.days if d.isoformat() not in absent]


def below_threshold(completeness: pl.DataFrame, params: dict[str, Any]) -> list[str]:
    """Reasons the build must stop (empty: it may go on), from params.yaml `completeness`."""
    rules = params.get("completeness", {})
    mins = rules.get("min_share_pct", {})
    reasons = []
    for s in summary(completeness):
        need = float(mins.get(s["kind"], 100.0))
        if s["share_pct"] < need:
            reasons.append(f"{s['name']} {s['share_pct']:.1f}% < {need:g}%")
    if rules.get("require_normalise_month", True):
        norm = params["report"]["normalise_month"]
        gone = completeness.filter(
            (pl.col("kind") == "counters") & (pl.col("period") == norm) & ~pl.col("present")
        )
        if gone.height:
            reasons.append(f"normalisation month {norm} missing (Figure 1 cannot be drawn)")
    if rules.get("per_user_days_complete", True):
        year_weeks = completeness.filter(pl.col("kind") != "counters")
        analysis = _analysis_week_of(year_weeks)
        if analysis is not None:
            for refs, flows in ((("radius", "ipoe_leases"), BROADBAND_FLOW_SERVICES),
                                (("mobile_billing",), ())):  # fmt: skip
                if len(days_present(completeness, analysis, flows, refs)) < 7:
                    reasons.append("per-user inputs of the analysis week incomplete")
                    break
    return reasons


def _analysis_week_of(completeness: pl.DataFrame) -> Week | None:
    """The analysis week: the week of the per-day reference files (only it has them)."""
    days = completeness.filter(pl.col("kind") == "radius")["period"]
    if days.is_empty():
        return None
    return Week(dt.date.fromisoformat(days.min()), "analysis")


def stop_if_incomplete(year: int, completeness: pl.DataFrame, params: dict[str, Any]) -> None:
    """Raise IncompleteInputsError with one line naming what is missing if a threshold fails."""
    reasons = below_threshold(completeness, params)
    if reasons:
        raise IncompleteInputsError(
            f"{missing_line(year, completeness)} — build stopped: {'; '.join(reasons)} "
            "(params.yaml completeness)"
        )
