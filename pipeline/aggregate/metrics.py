"""One plain function per aggregate table of ARCHITECTURE §5; each runs `sql/<table>.sql`.

Every function takes explicit inputs (paths/globs, report year, params from load_params()),
passes the parameters its query needs, and returns a polars DataFrame that starts with `year` and
has a deterministic row order. The metric logic is in the SQL; Python picks the weeks and inputs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.aggregate import mode as mode_rules
from pipeline.aggregate import uncertainty
from pipeline.aggregate.run import run_sql
from pipeline.config import (
    Week,
    analysis_week,
    local_day_bounds_ms,
    local_hour_starts_ms,
    utc_offset_changes,
    week_bounds_ms,
    weeks_for_year,
)
from pipeline.ingest import completeness as inputs
from pipeline.ingest.flows import TRUST_COUNTERS as WIRE_COUNTERS  # 0 in reports before them
from pipeline.ingest.quality import DEFAULT_MAX_SHARE_PCT
from pipeline.ingest.sources import UNREGISTERED

IPOE_PER_USER_FROM_YEAR = 2021  # spec §0: per-user stats are PPPoE-only up to 2020
WEEK_CLASSES = {
    "broadband": ["total", "tcp80", "tcp443", "tcp_dynamic", "udp443"],
    "mobile": ["total", "tcp80", "tcp443", "udp443"],
}
EXPORTER_SERVICE = {"broadband": "pppoe", "mobile": "mobile"}  # port analyses: PPPoE only (spec §0)
INGEST_COUNTERS = (
    "files",
    "messages",
    "records_in",
    "records_decoded",
    "records_quarantined",
    "sequence_gaps",
    "duplicate_files",  # files whose bytes were read already (ingest/duplicates.py)
    *WIRE_COUNTERS,
)
# The registered view ingest_reports of data_quality.sql: one row per ingest report (§3.2).
INGEST_REPORTS_SCHEMA: dict[str, pl.DataType] = {
    "exporter": pl.String(),
    "date": pl.String(),
    **{item: pl.Int64() for item in INGEST_COUNTERS},
    "wire_counters": pl.Boolean(),  # the report carries the wire-level counters
    "quarantine_by_reason": pl.List(pl.Struct({"reason": pl.String, "records": pl.Int64})),
    "sampling_intervals": pl.List(pl.Struct({"sampling_interval": pl.Int64, "records": pl.Int64})),
}


def _with_year(df: pl.DataFrame, year: int) -> pl.DataFrame:
    """The frame with `year` (Int64) as its first column."""
    return df.select(pl.lit(year, dtype=pl.Int64).alias("year"), pl.all())


def _year_table(
    name: str,
    year: int,
    sql_params: Mapping[str, Any],
    tables: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """`sql/<name>.sql` run with `sql_params` (`tables` as views), `year` first."""
    return _with_year(run_sql(name, sql_params, tables=tables), year)


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
        **_zone_params(week, params),
    }


def _weekday_hours(week: Week, params: dict[str, Any], weekdays: list[int]) -> list[float]:
    """Hours each local hour of day lasted over the given weekdays (0 = Monday): one per day
    without DST, 2 for a repeated fall-back hour on its day, 0 for a skipped one."""
    starts = local_hour_starts_ms(week, params)
    return [
        sum(starts[24 * d + h + 1] - starts[24 * d + h] for d in weekdays) / 3_600_000
        for h in range(24)
    ]


def _zone_params(week: Week, params: dict[str, Any]) -> dict[str, Any]:
    """SQL parameters of local time in one week: the zone's offset changes and offsets
    (utc_offset_changes), local Saturday 00:00, the hours each local hour of day lasted over
    Monday–Friday, and local Monday 00:00 on the local clock (ms)."""
    start_ms, end_ms = week_bounds_ms(week, params)
    changes, offsets = utc_offset_changes(start_ms, end_ms, params)
    return {
        "tz_change_ms": changes,
        "tz_offset_ms": offsets,
        "weekday_end_ms": local_day_bounds_ms(week.days[5], params)[0],
        "weekday_hours": _weekday_hours(week, params, list(range(5))),
        "week_start_local_ms": start_ms + offsets[0],
    }


def _month(year: int, month: int | str) -> str:
    return f"{year:04d}-{int(month):02d}"


def _monthly_rates(
    monthly_traffic_path: str | Path, first_month: str, last_month: str, params: dict[str, Any]
) -> pl.DataFrame:
    """Rows of monthly_traffic_normalised for the months first_month..last_month (YYYY-MM)."""
    return run_sql(
        "monthly_traffic_normalised",
        {
            "monthly_path": str(monthly_traffic_path),
            "normalise_month": params["report"]["normalise_month"],
            "first_month": first_month,
            "last_month": last_month,
        },
    )


def monthly_traffic_normalised(
    monthly_traffic_path: str | Path, year: int, params: dict[str, Any]
) -> pl.DataFrame:
    """Fig 1: month, series, direction, bytes, rate_bps, normalised (÷ norm-month OUT), from
    `report.fig1_start_month` to the report month of `year`."""
    report = params["report"]
    end_month = _month(year, report["report_month"])
    rates = _monthly_rates(monthly_traffic_path, report["fig1_start_month"], end_month, params)
    return _with_year(rates, year)


def growth_statistics(
    monthly_traffic_path: str | Path, year: int, params: dict[str, Any]
) -> pl.DataFrame:
    """Spec §2.2: metric, service, direction, value, unit (yoy, IPoE share, 5-year factors…)."""
    report_month = int(params["report"]["report_month"])
    first, last = _month(year - 5, report_month), _month(year, report_month)
    return _year_table(
        "growth_statistics",
        year,
        {"year": year, "report_month": report_month},
        tables={
            "monthly_traffic_normalised": _monthly_rates(monthly_traffic_path, first, last, params)
        },
    )


def _day_indices(
    week: Week, completeness: pl.DataFrame | None, flow_services: tuple[str, ...]
) -> list[int]:
    """Indices (0 = Monday) of the week's days whose flows of `flow_services` are complete; every
    day when no completeness table is given."""
    if completeness is None:
        return list(range(7))
    present = inputs.days_present(completeness, week, flow_services)
    return [(d - week.start).days for d in present]


def _interval_params(params: dict[str, Any]) -> dict[str, float]:
    """$z and $record_spread_sq of the analytic intervals in the per-hour series' SQL."""
    ip = uncertainty.IntervalParams.from_params(params)
    return {"z": ip.z, "record_spread_sq": ip.record_spread**2}


def weekday_hourly_profile(
    flows_glob: str,
    year: int,
    params: dict[str, Any],
    completeness: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Figs 2, 9, 10: week_start, role, hour, direction, mean_bps (mean over the weekdays whose
    broadband flows are complete), weekdays (how many), mean_bps_lo/hi (sampling error), all
    weeks."""
    frames = []
    for week in weeks_for_year(year, params):
        weekdays = [i for i in _day_indices(week, completeness, ("pppoe", "ipoe")) if i < 5]
        df = run_sql(
            "weekday_hourly_profile",
            {
                "flows_glob": flows_glob,
                **_week_params(week, params),
                "weekdays_present": weekdays,
                "weekday_hours": _weekday_hours(week, params, weekdays),
                **_interval_params(params),
            },
        )
        frames.append(
            df.select(
                pl.lit(week.start.isoformat()).alias("week_start"),
                pl.lit(week.role).alias("role"),
                "hour",
                "direction",
                "mean_bps",
                pl.lit(len(weekdays), dtype=pl.Int64).alias("weekdays"),
                "mean_bps_lo",
                "mean_bps_hi",
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
    completeness: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Internal, never published: per personal user of the analysis week, service, user_key (hash),
    in_bytes, out_bytes, daily_in_bytes, daily_out_bytes (NULL: direction not observed),
    in_packets_sampled, out_packets_sampled (NULL for mobile billing). Only the days whose
    per-user inputs are complete count; daily = week total / their number."""
    usage = params["daily_usage"]
    ipoe_from = int(usage.get("ipoe_per_user_from_year", IPOE_PER_USER_FROM_YEAR))
    week = analysis_week(year, params)
    if completeness is None:
        bb_days, mobile_days = week.days, week.days
    else:
        bb_days = inputs.days_present(
            completeness, week, ("pppoe", "ipoe"), ("radius", "ipoe_leases")
        )
        mobile_days = inputs.days_present(completeness, week, (), ("mobile_billing",))
    if not bb_days or not mobile_days:
        raise ValueError(f"{year}: no day of the analysis week has complete per-user inputs")
    sql_params = {
        "flows_glob": flows_glob,
        "mobile_path": str(mobile_usage_path),
        "bb_protocols": ["pppoe", "ipoe"] if year >= ipoe_from else ["pppoe"],
        "bb_day_indices": [(d - week.start).days for d in bb_days],
        "mobile_dates": [d.isoformat() for d in mobile_days],
        "bb_divisor": float(usage["days_per_week"]) * len(bb_days) / 7,
        "mobile_divisor": float(usage["days_per_week"]) * len(mobile_days) / 7,
        "salt": salt,
        "record_spread_sq": uncertainty.IntervalParams.from_params(params).record_spread ** 2,
        **_week_params(week, params),
    }
    return _year_table("user_week_usage", year, sql_params)


def min_sampled_packets(params: dict[str, Any]) -> int:
    """The reliability rule: sampled packets a user-direction's estimate needs (at least 1)."""
    return max(1, int(params["daily_usage"].get("min_sampled_packets", 1)))


def reliability_rule(params: dict[str, Any]) -> uncertainty.Rule:
    """The reliability rule: sampled packets and the largest relative standard error a value may
    have (daily_usage.min_sampled_packets, max_relative_error)."""
    return uncertainty.Rule(min_sampled_packets(params), uncertainty.max_relative_error(params))


def _rule_params(params: dict[str, Any]) -> dict[str, Any]:
    """SQL parameters of the reliability rule."""
    rule = reliability_rule(params)
    return {"min_sampled_packets": int(rule.min_packets), "max_relative_error": rule.max_rel_error}


def _user_week_table(
    name: str, user_week: pl.DataFrame, year: int, sql_params: Mapping[str, Any]
) -> pl.DataFrame:
    """`sql/<name>.sql` over the registered view user_week_usage, `year` first."""
    return _year_table(name, year, sql_params, tables={"user_week_usage": user_week})


def _density_histogram(user_week: pl.DataFrame, params: dict[str, Any]) -> pl.DataFrame:
    """daily_usage_density.sql: service, direction, bin_center_log10, users, density."""
    usage = params["daily_usage"]
    sql_params = {
        "bin_width": float(usage["bin_width_decades"]),
        "min_log10": float(usage["density_min_log10"]),
        "max_log10": float(usage["density_max_log10"]),
        **_rule_params(params),
    }
    return run_sql("daily_usage_density", sql_params, tables={"user_week_usage": user_week})


def _density_band(
    user_week: pl.DataFrame, hist: pl.DataFrame, params: dict[str, Any]
) -> pl.DataFrame:
    """Pointwise sampling-error band of each density curve: density_lo, density_hi per bin."""
    ip = uncertainty.IntervalParams.from_params(params)
    rule = reliability_rule(params)
    width = float(params["daily_usage"]["bin_width_decades"])
    centres = uncertainty.bin_centres_log10(width)
    frames = []
    for (service, direction), curve in hist.group_by("service", "direction", maintain_order=True):
        density = curve["density"].to_numpy()
        users = uncertainty.users_of(user_week, service, direction)
        if users.exact:
            lo, hi = density, density
        else:
            counts = uncertainty.replicate_stats(user_week, service, direction, params, rule).counts
            draws = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) / width
            cols = np.searchsorted(centres, curve["bin_center_log10"].to_numpy().round(6))
            lo, hi = uncertainty.intervals(
                density, draws[:, np.minimum(cols, len(centres) - 1)], ip
            )
            lo = np.maximum(lo, 0.0)
        frames.append(
            curve.select("service", "direction", "bin_center_log10").with_columns(
                pl.Series("density_lo", lo, dtype=pl.Float64),
                pl.Series("density_hi", hi, dtype=pl.Float64),
            )
        )
    return pl.concat(frames)


def daily_usage_density(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Figs 3, 4, 11: service, direction, bin_center_log10, users, density (area 1 per curve),
    density_lo, density_hi (pointwise sampling-error band, uncertainty.py)."""
    hist = _density_histogram(user_week, params)
    if hist.is_empty():
        out = hist.with_columns(
            pl.lit(None, pl.Float64).alias("density_lo"),
            pl.lit(None, pl.Float64).alias("density_hi"),
        )
    else:
        band = _density_band(user_week, hist, params)
        out = hist.join(
            band, on=["service", "direction", "bin_center_log10"], how="left", maintain_order="left"
        )
    return _with_year(out, year)


def _summary_intervals(
    user_week: pl.DataFrame, summary: pl.DataFrame, params: dict[str, Any]
) -> pl.DataFrame:
    """median_mb_lo/hi, mode_log10_lo/hi and interval_method per service and direction: the
    Poisson bootstrap (uncertainty.py) re-running the median and the mode rule on each replicate;
    'exact' (lo = hi = value) for a service that is not sampled."""
    usage = params["daily_usage"]
    ip = uncertainty.IntervalParams.from_params(params)
    rule = reliability_rule(params)
    rows = []
    for service, direction, median_mb, mode_log10 in summary.select(
        "service", "direction", "median_mb", "mode_log10"
    ).rows():
        users = uncertainty.users_of(user_week, service, direction)
        if users.exact:
            rows.append((service, direction, median_mb, median_mb, mode_log10, mode_log10, "exact"))
            continue
        reps = uncertainty.replicate_stats(user_week, service, direction, params, rule)
        modes = uncertainty.modes_log10(reps.counts, reps.median_mb, usage)
        est = np.array([np.nan if v is None else v for v in (median_mb, mode_log10)], dtype=float)
        (med_lo, mode_lo), (med_hi, mode_hi) = uncertainty.intervals(
            est, np.column_stack([reps.median_mb, modes]), ip
        )
        rows.append(
            (service, direction, max(med_lo, 0.0), med_hi, mode_lo, mode_hi, "poisson_bootstrap")
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "service": pl.String,
            "direction": pl.String,
            "median_mb_lo": pl.Float64,
            "median_mb_hi": pl.Float64,
            "mode_log10_lo": pl.Float64,
            "mode_log10_hi": pl.Float64,
            "interval_method": pl.String,
        },
        orient="row",
    )
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


def daily_usage_summary(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Tables 1, 2: service, direction, users, mean_mb, median_mb, mode_mb, mode_log10 (§2.4),
    users_not_observed, users_below_rule (user-directions left out, by the reliability rule), and
    the sampling-error intervals (_lo/_hi) of mean, median and mode with their interval_method."""
    usage = params["daily_usage"]
    width = float(usage["bin_width_decades"])
    ip = uncertainty.IntervalParams.from_params(params)
    summary = run_sql(
        "daily_usage_summary",
        {**_rule_params(params), "z": ip.z},
        tables={"user_week_usage": user_week},
    )
    # The mode reads the same 0.1-decade histogram the density figures draw (occupied bins only).
    hist = _density_histogram(user_week, params).filter(pl.col("users") > 0)
    hist = hist.with_columns(
        (pl.col("bin_center_log10") / width).round().cast(pl.Int64).alias("bin_index")
    )
    modes = []
    for service, direction, median_mb in summary.select("service", "direction", "median_mb").rows():
        h = hist.filter((pl.col("service") == service) & (pl.col("direction") == direction))
        median_log10 = math.log10(median_mb) + 6 if median_mb and median_mb > 0 else None
        modes.append(
            mode_rules.mode_log10(
                h["bin_index"].to_numpy(), h["users"].to_numpy(), usage, median_log10
            )
        )
    mode_log10 = pl.Series("mode_log10", modes, dtype=pl.Float64)
    out = summary.with_columns(mode_log10).with_columns(
        (10.0 ** (pl.col("mode_log10") - 6)).alias("mode_mb")
    )
    out = out.join(
        _summary_intervals(user_week, out, params),
        on=["service", "direction"],
        how="left",
        maintain_order="left",
    ).with_columns(
        (10.0 ** (pl.col("mode_log10_lo") - 6)).alias("mode_mb_lo"),
        (10.0 ** (pl.col("mode_log10_hi") - 6)).alias("mode_mb_hi"),
    )
    out = out.select(
        "service",
        "direction",
        "users",
        "mean_mb",
        "median_mb",
        "mode_mb",
        "mode_log10",
        "users_not_observed",
        "users_below_rule",
        "mean_mb_lo",
        "mean_mb_hi",
        "median_mb_lo",
        "median_mb_hi",
        "mode_mb_lo",
        "mode_mb_hi",
        "mode_log10_lo",
        "mode_log10_hi",
        "interval_method",
    )
    return _with_year(out, year)


def scatter_sample(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Figs 5, 6: service, daily_in_bytes, daily_out_bytes for a sample of users drawn anew each
    year (hash of year, seed and salted user key), rounded to the chart's resolution, by value."""
    usage = params["daily_usage"]
    sql_params = {
        "seed": str(usage["scatter_sample_seed"]),
        "n": int(usage["scatter_sample_size"]),
        "year": str(year),
        "log10_digits": int(usage.get("scatter_log10_digits", 2)),
        **_rule_params(params),
    }
    return _user_week_table("scatter_sample", user_week, year, sql_params)


def top_user_share(user_week: pl.DataFrame, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Spec §2.5: service, direction, top_pct, share_pct (bytes share of the top ceil(p·N)),
    share_pct_lo, share_pct_hi (Poisson bootstrap, uncertainty.py; exact for mobile)."""
    pcts = [float(p) for p in params["daily_usage"]["top_shares_pct"]]
    shares = _user_week_table(
        "top_user_share", user_week, year, {"top_pcts": pcts, **_rule_params(params)}
    )
    ip = uncertainty.IntervalParams.from_params(params)
    rule = reliability_rule(params)
    frames = []
    for (service, direction), rows in shares.group_by("service", "direction", maintain_order=True):
        est = rows["share_pct"].to_numpy().astype(np.float64)
        users = uncertainty.users_of(user_week, service, direction)
        if users.exact:
            lo, hi = est, est
        else:
            reps = uncertainty.replicate_stats(user_week, service, direction, params, rule)
            column = {p: j for j, p in enumerate(float(p) for p in pcts)}
            draws = reps.top_shares_pct[:, [column[p] for p in rows["top_pct"].to_list()]]
            lo, hi = np.clip(uncertainty.intervals(est, draws, ip), 0.0, 100.0)
        frames.append(
            rows.with_columns(
                pl.Series("share_pct_lo", lo, dtype=pl.Float64).fill_nan(None),
                pl.Series("share_pct_hi", hi, dtype=pl.Float64).fill_nan(None),
            )
        )
    if not frames:
        return shares.with_columns(
            pl.lit(None, pl.Float64).alias("share_pct_lo"),
            pl.lit(None, pl.Float64).alias("share_pct_hi"),
        )
    return pl.concat(frames)


def usage_by_port(flows_glob: str, year: int, params: dict[str, Any]) -> pl.DataFrame:
    """Tables 3, 4: service, row_id, protocol, port_label, row_kind, parent, share_pct, sort_key,
    share_pct_lo, share_pct_hi (delta-method interval of the sampled share, usage_by_port.sql)."""
    ports = params["ports"]
    intervals = uncertainty.IntervalParams.from_params(params)
    week = _week_params(analysis_week(year, params), params)
    frames = [
        run_sql(
            "usage_by_port",
            {
                "flows_glob": flows_glob,
                "service": service,
                "exporter_service": exporter_service,
                "carried_rows": list(ports["carried_rows"].get(service, [])),
                "top_ports_per_protocol": int(ports["top_ports_per_protocol"]),
                "min_share_pct_for_new_row": float(ports["min_share_pct_for_new_row"]),
                "tcp_subtotals": bool(ports["lt1024_subtotals"].get(service, False)),
                "z": intervals.z,
                "record_spread_sq": intervals.record_spread**2,
                **week,
            },
        )
        for service, exporter_service in EXPORTER_SERVICE.items()
    ]
    return _with_year(pl.concat(frames), year)


def port_class_week_series(
    flows_glob: str,
    year: int,
    params: dict[str, Any],
    completeness: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Figs 7, 8: service, bin_start_ms, hour_of_week, port_class, bytes, normalised (peak = 1),
    bytes_lo/hi and normalised_lo/hi (sampling error); NULL in the days whose exporters of the
    service did not all deliver (a gap)."""
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
                "days_present": _day_indices(
                    analysis_week(year, params), completeness, (exporter_service,)
                ),
                **week,
                **_interval_params(params),
            },
        )
        frames.append(df.select(pl.lit(service).alias("service"), pl.all()))
    return _with_year(pl.concat(frames), year)


def ingest_reports_table(ingest_reports: list[dict[str, Any]]) -> pl.DataFrame:
    """Ingest reports (ARCHITECTURE §3.2, `exporter` added) one row each, in INGEST_REPORTS_SCHEMA;
    a missing counter is 0."""
    rows = [
        {
            "exporter": str(report.get("exporter", "unknown")),
            "date": str(report.get("date", "")),
            **{item: int(report.get(item) or 0) for item in INGEST_COUNTERS},
            "wire_counters": any(k in report for k in WIRE_COUNTERS),
            "quarantine_by_reason": [
                {"reason": str(reason), "records": int(n)}
                for reason, n in report.get("quarantine_by_reason", {}).items()
            ],
            "sampling_intervals": [
                {"sampling_interval": int(interval), "records": int(n)}
                for interval, n in report.get("sampling_intervals", {}).items()
            ],
        }
        for report in ingest_reports
    ]
    return pl.DataFrame(rows, schema=INGEST_REPORTS_SCHEMA)


def data_quality(
    ingest_reports: list[dict[str, Any]], flows_glob: str, year: int, params: dict[str, Any]
) -> pl.DataFrame:
    """Data-quality rows item, scope, value: ingest counters (scope "all" and "exporter:<name>"),
    quarantine reasons, sampling intervals, invariant violations, unattributed byte % by service,
    the set-aside threshold and worst exporter-day share, records of the days read that lie
    outside the year's weeks."""
    week = _week_params(analysis_week(year, params), params)
    weeks = weeks_for_year(year, params)
    bounds = [week_bounds_ms(w, params) for w in weeks]
    report_weeks = pl.DataFrame(
        {"week_start_ms": [b[0] for b in bounds], "week_end_ms": [b[1] for b in bounds]},
        schema={"week_start_ms": pl.Int64, "week_end_ms": pl.Int64},
    )
    read_days = sorted(
        {w.start + dt.timedelta(days=k) for w in weeks for k in range(-1, 7)}
    )  # the days ingest reads (pipeline.ingest.catalogue.flow_days_for_year)
    quality = params.get("quality", {})
    return _year_table(
        "data_quality",
        year,
        {
            "flows_glob": flows_glob,
            **week,
            "read_days": [d.isoformat() for d in read_days],
            "unregistered_exporter": UNREGISTERED,
            "max_quarantined_share_pct": float(
                quality.get("max_quarantined_share_pct", DEFAULT_MAX_SHARE_PCT)
            ),
        },
        tables={
            "ingest_reports": ingest_reports_table(ingest_reports),
            "report_weeks": report_weeks,
        },
    )
