"""Invariants of spec §2.8 as plain functions returning (passed, details) for a table."""

from __future__ import annotations

import math

import polars as pl

CheckOutcome = tuple[bool, dict]


def protocol_totals_sum_to_100(
    usage_by_port: pl.DataFrame, tolerance_pct: float = 0.1
) -> CheckOutcome:
    """Per service, protocol-total shares add up to 100 % within the tolerance."""
    sums = (
        usage_by_port.filter(pl.col("row_kind") == "protocol_total")
        .group_by("service")
        .agg(pl.col("share_pct").sum().alias("total_pct"))
        .sort("service")
    )
    bad = sums.filter((pl.col("total_pct") - 100).abs() > tolerance_pct)
    return bad.height == 0 and sums.height > 0, {
        "totals": dict(zip(sums["service"], sums["total_pct"], strict=True))
    }


def tcp_subtotals_equal_tcp(
    usage_by_port: pl.DataFrame, tolerance_pct: float = 1e-9
) -> CheckOutcome:
    """(< 1024) + (>= 1024) equals the TCP total wherever the subtotal rows exist."""
    details = {}
    passed = True
    for service in sorted(usage_by_port["service"].unique().to_list()):
        rows = usage_by_port.filter(pl.col("service") == service)
        sub = rows.filter(pl.col("row_id").is_in(["tcp_lt1024", "tcp_ge1024"]))["share_pct"]
        if sub.len() == 0:
            continue
        tcp = rows.filter(pl.col("row_id") == "tcp_total")["share_pct"]
        diff = float(sub.sum() - (tcp[0] if tcp.len() else 0.0))
        details[service] = diff
        passed &= abs(diff) <= tolerance_pct
    return passed, {"subtotal_minus_tcp_pct": details}


def mean_exceeds_mode(summary: pl.DataFrame) -> CheckOutcome:
    """Mean daily usage is above the mode in every service and direction (heavy users)."""
    bad = summary.filter(pl.col("mean_mb") <= pl.col("mode_mb"))
    return bad.height == 0, {"violations": bad.select("service", "direction").rows()}


def mode_on_grid(summary: pl.DataFrame, step_decades: float = 0.05) -> CheckOutcome:
    """Every mode is 10^(k·step) bytes: the quantisation the published tables show."""
    off = [
        (s, d, m)
        for s, d, m in summary.select("service", "direction", "mode_log10").rows()
        if abs(m / step_decades - round(m / step_decades)) > 1e-6
    ]
    return not off, {"off_grid": off}


def mode_exceeds_median(summary: pl.DataFrame) -> CheckOutcome:
    """Mode above median: the left-skewed log distribution seen every year since 2012 (warning)."""
    bad = summary.filter(pl.col("mode_mb") <= pl.col("median_mb"))
    return bad.height == 0, {"violations": bad.select("service", "direction").rows()}


def density_area_is_one(
    density: pl.DataFrame, bin_width: float, tolerance: float = 1e-6
) -> CheckOutcome:
    """Each density curve integrates to 1 over its bins (all users with bytes > 0 are placed)."""
    areas = (
        density.group_by("service", "direction")
        .agg((pl.col("density").sum() * bin_width).alias("area"))
        .sort("service", "direction")
    )
    bad = areas.filter((pl.col("area") - 1).abs() > tolerance)
    return bad.height == 0 and areas.height > 0, {"areas": areas.rows()}


def annualised_matches_factor(
    growth: pl.DataFrame, years: int = 5, tolerance: float = 1e-9
) -> CheckOutcome:
    """annualised_5y = factor_5y^(1/years) for every service and direction."""
    factor = growth.filter(pl.col("metric") == "factor_5y").select("service", "direction", "value")
    annual = growth.filter(pl.col("metric") == "annualised_5y").select(
        "service", "direction", pl.col("value").alias("annual")
    )
    joined = factor.join(annual, on=["service", "direction"])
    bad = [r for r in joined.rows() if abs(r[2] ** (1 / years) - r[3]) > tolerance]
    # No pair at all means the counters do not reach back five years: nothing to check.
    ok = not bad and all(math.isfinite(r[2]) for r in joined.rows())
    return ok, {"pairs": joined.height, "violations": bad}
