"""One plain function per aggregate table of ARCHITECTURE §5 (SQL in sql/, shaping in polars).

Every function takes explicit inputs (paths/globs, report year, params from load_params())
and returns a polars DataFrame that starts with `year` and has a deterministic row order.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.aggregate.mode import mode_log10_from_histogram
from pipeline.aggregate.run import run_sql
from pipeline.config import Week, analysis_week, utc_offset_ms, week_bounds_ms, weeks_for_year

IPOE_PER_USER_FROM_YEAR = 2021  # spec §0: per-user stats are PPPoE-only up to 2020
WEEK_CLASSES = {
    "broadband": ["total", "tcp80", "tcp443", "tcp_dynamic", "udp443"],
    "mobile": ["total", "tcp80", "tcp443", "udp443"],
}
EXPORTER_SERVICE = {"broadband": "pppoe", "mobile": "mobile"}  # port analyses: PPPoE only (spec §0)
PORT_NAMES = {
    22: "ssh",
    53: "dns",
    80: "http",
    443: "https",
    993: "imaps",
    1935: "rtmp",
    4500: "nat-t",
}
# protocol number -> (row id, label); ICMPv6 (58) counts as ICMP (spec §2.6)
PROTOCOL_ROWS = {
    6: ("tcp", "TCP"),
    17: ("udp", "UDP"),
    50: ("esp", "ESP"),
    47: ("gre", "GRE"),
    4: ("ipencap", "IP-ENCAP"),
    1: ("icmp", "ICMP"),
    58: ("icmp", "ICMP"),
}
PROTOCOL_ORDER = ["tcp", "udp", "esp", "gre", "ipencap", "icmp", "other"]
PROTOCOL_LABELS = {
    "tcp": "TCP",
    "udp": "UDP",
    "esp": "ESP",
    "gre": "GRE",
    "ipencap": "IP-ENCAP",
    "icmp": "ICMP",
    "other": "other",
}
ALWAYS_SHOWN_PROTOCOLS = {"tcp", "udp", "esp", "gre", "icmp"}  # IP-ENCAP and other only if non-zero


def _with_year(df: pl.DataFrame, year: int) -> pl.DataFrame:
    """The frame with `year` (Int64) as its first column."""
    return df.select(pl.lit(year, dtype=pl.Int64).alias("year"), pl.all())


def _week_params(week: Week, params: dict[str, Any]) -> dict[str, Any]:
    """SQL parameters bounding one local week (epoch ms) and its date partitions (± 1 day)."""
    start_ms, end_ms = week_bounds_ms(week, params)
    return {
        "week_start_ms": start_ms,
        "week_end_ms": end_ms,
        "date_lo": (week.start - dt.timedelta(days=1)).isoformat(),
        "date_hi": week.end_exclusive.isoformat(),
        "first_day": week.start.isoformat(),
        "last_day": (week.end_exclusive - dt.timedelta(days=1)).isoformat(),
        "utc_offset_ms": utc_offset_ms(params),
    }


def monthly_traffic_rates(monthly_traffic_path: str | Path, params: dict[str, Any]) -> pl.DataFrame:
    """Every month: month, series, direction, bytes, rate_bps, normalised (÷ norm-month OUT)."""
    return run_sql(
        "monthly_traffic_rates",
        {
            "monthly_path": str(monthly_traffic_path),
            "normalise_month": params["report"]["normalise_month"],
        },
    )


def monthly_traffic_normalised(
    monthly_traffic_path: str | Path, year: int, params: dict[str, Any]
) -> pl.DataFrame:
    """Fig 1: the monthly rates from `report.fig1_start_month` to the report month of `year`."""
    report = params["report"]
    end_month = f"{year:04d}-{int(report['report_month']):02d}"
    df = monthly_traffic_rates(monthly_traffic_path, params).filter(
        pl.col("month").is_between(pl.lit(report["fig1_start_month"]), pl.lit(end_month))
    )
    return _with_year(df, year)


def growth_statistics(
    monthly_traffic_path: str | Path, year: int, params: dict[str, Any]
) -> pl.DataFrame:
    """Spec §2.2: metric, service, direction, value, unit (yoy, IPoE share, 5-year factors…)."""
    df = run_sql(
        "growth_statistics",
        {"year": year, "report_month": int(params["report"]["report_month"])},
        tables={"monthly_rates": monthly_traffic_rates(monthly_traffic_path, params)},
    )
    return _with_year(df, year)


def weekday_hourly_profile(flows_glob: str, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Figs 2, 9, 10: week_start, role, hour, direction, mean_bps (Mon–Fri mean), all weeks."""
    frames = []
    for week in weeks_for_year(year, params):
        df = run_sql(
            "weekday_hourly_profile", {"flows_glob": flows_glob, **_week_params(week, params)}
        )
        frames.append(
            df.select(
                pl.lit(week.start.isoformat()).alias("week_start"),
                pl.lit(week.role).alias("role"),
                pl.all(),
            )
        )
    out = pl.concat(frames).sort("week_start", "role", "direction", "hour")
    return _with_year(out, year)


def user_week_usage(
    flows_glob: str,
    mobile_usage_path: str | Path,
    year: int,
    params: dict[str, Any],
    salt: str,
) -> pl.DataFrame:
    """Internal, never published: per personal user of the analysis week, service, user_key (hash),
    in_bytes, out_bytes, daily_in_bytes, daily_out_bytes."""
    usage = params["daily_usage"]
    ipoe_from = int(usage.get("ipoe_per_user_from_year", IPOE_PER_USER_FROM_YEAR))
    df = run_sql(
        "user_week_usage",
        {
            "flows_glob": flows_glob,
            "mobile_path": str(mobile_usage_path),
            "bb_protocols": ["pppoe", "ipoe"] if year >= ipoe_from else ["pppoe"],
            "days_per_week": float(usage["days_per_week"]),
            "salt": salt,
            **_week_params(analysis_week(year, params), params),
        },
    )
    return _with_year(df, year)


def daily_usage_density(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Figs 3, 4, 11: service, direction, bin_center_log10, users, density (area 1 per curve)."""
    usage = params["daily_usage"]
    df = run_sql(
        "daily_usage_density",
        {
            "bin_width": float(usage["bin_width_decades"]),
            "min_log10": float(usage["density_min_log10"]),
            "max_log10": float(usage["density_max_log10"]),
        },
        tables={"user_week_usage": user_week},
    )
    return _with_year(df, year)


def daily_usage_summary(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Tables 1, 2: service, direction, users, mean_mb, median_mb, mode_mb, mode_log10 (§2.4)."""
    usage = params["daily_usage"]
    width = float(usage["bin_width_decades"])
    summary = run_sql("daily_usage_summary", {}, tables={"user_week_usage": user_week})
    # The mode reads the same 0.1-decade histogram the density figures draw (occupied bins only).
    hist = daily_usage_density(user_week, year, params).filter(pl.col("users") > 0)
    hist = hist.with_columns(
        (pl.col("bin_center_log10") / width).round().cast(pl.Int64).alias("bin_index")
    )
    modes = []
    for service, direction, median_mb in summary.select("service", "direction", "median_mb").rows():
        h = hist.filter((pl.col("service") == service) & (pl.col("direction") == direction))
        median_log10 = math.log10(median_mb) + 6 if median_mb and median_mb > 0 else None
        modes.append(
            mode_log10_from_histogram(
                h["bin_index"].to_numpy(),
                h["users"].to_numpy(),
                width,
                float(usage["mode_tilt_ratio"]),
                float(usage["mode_shift_decades"]),
                median_log10,
            )
        )
    mode_log10 = pl.Series("mode_log10", modes, dtype=pl.Float64)
    out = summary.with_columns(mode_log10).with_columns(
        (10.0 ** (pl.col("mode_log10") - 6)).alias("mode_mb")
    )
    out = out.select(
        "service", "direction", "users", "mean_mb", "median_mb", "mode_mb", "mode_log10"
    )
    return _with_year(out, year)


def scatter_sample(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Figs 5, 6: service, daily_in_bytes, daily_out_bytes for a deterministic sample of users."""
    usage = params["daily_usage"]
    df = run_sql(
        "scatter_sample",
        {
            "seed": str(usage["scatter_sample_seed"]),
            "n": int(usage["scatter_sample_size"]),
        },
        tables={"user_week_usage": user_week},
    )
    return _with_year(df, year)


def top_user_share(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Spec §2.5: service, direction, top_pct, share_pct (bytes share of the top ceil(p·N))."""
    pcts = [float(p) for p in params["daily_usage"]["top_shares_pct"]]
    df = run_sql("top_user_share", {"top_pcts": pcts}, tables={"user_week_usage": user_week})
    return _with_year(df, year)


def _port_label(port: int) -> str:
    name = PORT_NAMES.get(port)
    return f"{port} ({name})" if name else str(port)


def port_share_rows(port_bytes: pl.DataFrame, service: str, params: dict[str, Any]) -> pl.DataFrame:
    """Rows of Table 3/4 from bytes by (protocol_number, port): protocol totals, TCP subtotals
    (broadband), carried + top ports. share_pct is unrounded, so (<1024) + (>=1024) = TCP up to
    float error; a display rounding each row should show TCP as the sum of the rounded subtotals."""
    ports_cfg = params["ports"]
    with_subtotals = bool(ports_cfg["lt1024_subtotals"].get(service, False))
    # math.fsum is exactly rounded, so shares do not depend on row order (deterministic output)
    total_bytes = math.fsum(port_bytes["bytes"].to_list())
    if total_bytes <= 0:
        raise ValueError(f"usage_by_port: no {service} traffic in the analysis week")
    ids = {k: v[0] for k, v in PROTOCOL_ROWS.items()}
    df = port_bytes.with_columns(
        pl.col("protocol_number").replace_strict(ids, default="other").alias("proto_id"),
        (pl.col("bytes") / total_bytes * 100.0).alias("share_pct"),
    )
    proto_share = {
        proto: math.fsum(df.filter(pl.col("proto_id") == proto)["bytes"].to_list())
        / total_bytes
        * 100.0
        for proto in PROTOCOL_ORDER
    }
    # TCP is protocol 6 only and UDP 17 only, so (proto_id, port) rows are already unique
    by_port = df.filter(pl.col("proto_id").is_in(["tcp", "udp"])).select(
        "proto_id", "port", "share_pct"
    )
    share_of = {(p, int(port)): s for p, port, s in by_port.iter_rows()}
    chosen = set()
    for item in ports_cfg["carried_rows"].get(service, []):
        proto, port = item.split("/")
        chosen.add((proto, int(port)))
    for proto in ("tcp", "udp"):
        top = (
            by_port.filter(pl.col("proto_id") == proto)
            .sort(["share_pct", "port"], descending=[True, False])
            .head(int(ports_cfg["top_ports_per_protocol"]))
        )
        for port, share in top.select("port", "share_pct").iter_rows():
            if share >= float(ports_cfg["min_share_pct_for_new_row"]):
                chosen.add((proto, int(port)))

    rows: list[dict[str, Any]] = []

    def add(
        row_id: str, protocol: str, label: str, kind: str, parent: str | None, share: float
    ) -> None:
        rows.append(
            {
                "service": service,
                "row_id": row_id,
                "protocol": protocol,
                "port_label": label,
                "row_kind": kind,
                "parent": parent,
                "share_pct": share,
                "sort_key": len(rows),
            }
        )

    def add_ports(proto: str, parent: str, keep: Any) -> None:
        ports = [
            (share_of.get((p, port), 0.0), port) for p, port in chosen if p == proto and keep(port)
        ]
        for share, port in sorted(ports, key=lambda sp: (-sp[0], sp[1])):
            add(f"{proto}_{port}", PROTOCOL_LABELS[proto], _port_label(port), "port", parent, share)

    tcp_shares = [(port, s) for (p, port), s in sorted(share_of.items()) if p == "tcp"]
    subtotals = {
        "tcp_lt1024": math.fsum(s for port, s in tcp_shares if port < 1024),
        "tcp_ge1024": math.fsum(s for port, s in tcp_shares if port >= 1024),
    }
    for proto in PROTOCOL_ORDER:
        share = float(proto_share.get(proto, 0.0))
        if proto not in ALWAYS_SHOWN_PROTOCOLS and share == 0.0:
            continue
        if proto == "tcp" and with_subtotals:
            share = subtotals["tcp_lt1024"] + subtotals["tcp_ge1024"]  # exactly the two rows' sum
        row_id = f"{proto}_total" if proto in ("tcp", "udp") else proto
        add(row_id, PROTOCOL_LABELS[proto], PROTOCOL_LABELS[proto], "protocol_total", None, share)
        if proto == "tcp" and with_subtotals:
            add("tcp_lt1024", "TCP", "(< 1024)", "subtotal", "tcp_total", subtotals["tcp_lt1024"])
            add_ports("tcp", "tcp_lt1024", lambda port: port < 1024)
            add("tcp_ge1024", "TCP", "(>= 1024)", "subtotal", "tcp_total", subtotals["tcp_ge1024"])
            add_ports("tcp", "tcp_ge1024", lambda port: port >= 1024)
        elif proto in ("tcp", "udp"):
            add_ports(proto, row_id, lambda port: True)
    schema = {
        "service": pl.String,
        "row_id": pl.String,
        "protocol": pl.String,
        "port_label": pl.String,
        "row_kind": pl.String,
        "parent": pl.String,
        "share_pct": pl.Float64,
        "sort_key": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def usage_by_port(flows_glob: str, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Tables 3, 4: service, row_id, protocol, port_label, row_kind, parent, share_pct, sort_key."""
    week = _week_params(analysis_week(year, params), params)
    frames = []
    for service, exporter_service in EXPORTER_SERVICE.items():
        port_bytes = run_sql(
            "usage_by_port", {"flows_glob": flows_glob, "service": exporter_service, **week}
        )
        frames.append(port_share_rows(port_bytes, service, params))
    return _with_year(pl.concat(frames), year)


def port_class_week_series(flows_glob: str, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Figs 7, 8: service, bin_start_ms, hour_of_week, port_class, bytes, normalised (peak = 1)."""
    week = _week_params(analysis_week(year, params), params)
    bin_ms = int(params["ports"]["week_series_bin_minutes"]) * 60_000
    frames = []
    for service, exporter_service in EXPORTER_SERVICE.items():
        df = run_sql(
            "port_class_week_series",
            {
                "flows_glob": flows_glob,
                "service": exporter_service,
                "bin_ms": bin_ms,
                "classes": WEEK_CLASSES[service],
                **week,
            },
        )
        frames.append(df.select(pl.lit(service).alias("service"), pl.all()))
    return _with_year(pl.concat(frames), year)


def load_ingest_reports(report_glob: str) -> list[dict[str, Any]]:
    """Ingest-report JSON files (…/date=D/exporter=E.json) as dicts, `date` and `exporter` added."""
    reports = []
    for path in map(Path, sorted(glob.glob(report_glob))):
        report = json.loads(path.read_text())
        date = re.search(r"date=([^/]+)", str(path))
        report.setdefault("exporter", path.stem.removeprefix("exporter="))
        report.setdefault("date", date.group(1) if date else None)
        reports.append(report)
    return reports


COUNTER_ITEMS = (
    "files",
    "messages",
    "records_in",
    "records_decoded",
    "records_quarantined",
    "sequence_gaps",
)


def data_quality(
    ingest_reports: list[dict[str, Any]],
    flows_glob: str | None,
    year: int,
    params: dict[str, Any],
) -> pl.DataFrame:
    """Data-quality rows item, scope, value: ingest counters (scope "all" and "exporter:<name>"),
    quarantine reasons, sampling intervals, invariant violations, unattributed byte % by service."""
    rows: list[tuple[str, str, float]] = []
    totals: Counter[str] = Counter()
    per_exporter: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    intervals: Counter[int] = Counter()
    violations = 0
    for report in ingest_reports:
        exporter = str(report.get("exporter", "unknown"))
        counts = per_exporter.setdefault(exporter, Counter())
        for item in COUNTER_ITEMS:
            counts[item] += int(report.get(item, 0))
            totals[item] += int(report.get(item, 0))
        reasons.update({str(k): int(v) for k, v in report.get("quarantine_by_reason", {}).items()})
        intervals.update({int(k): int(v) for k, v in report.get("sampling_intervals", {}).items()})
        if int(report.get("records_in", 0)) != (
            int(report.get("records_decoded", 0)) + int(report.get("records_quarantined", 0))
        ):
            violations += 1
    rows += [(item, "all", float(totals[item])) for item in COUNTER_ITEMS]
    rows.append(("ingest_reports", "all", float(len(ingest_reports))))
    rows.append(("reports_violating_records_invariant", "all", float(violations)))
    rows += [(f"quarantined:{reason}", "all", float(n)) for reason, n in sorted(reasons.items())]
    rows += [(f"sampling_interval:{n}", "all", float(c)) for n, c in sorted(intervals.items())]
    for exporter in sorted(per_exporter):
        rows += [
            (item, f"exporter:{exporter}", float(per_exporter[exporter][item]))
            for item in COUNTER_ITEMS
        ]
    if flows_glob is not None:
        week = _week_params(analysis_week(year, params), params)
        unattributed = run_sql("data_quality_unattributed", {"flows_glob": flows_glob, **week})
        for service, total, unattr in unattributed.iter_rows():
            pct = 100.0 * unattr / total if total else float("nan")
            rows.append(("unattributed_bytes_pct", f"service:{service}", pct))
    df = pl.DataFrame(
        rows, schema={"item": pl.String, "scope": pl.String, "value": pl.Float64}, orient="row"
    )
    return _with_year(df, year)
