"""The analytic sampling-error intervals of the per-hour series (Figs 2, 7-10) equal the formula
worked out by hand on a small flow table sampled 1 in N (docs/UNCERTAINTY.md §1)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.aggregate import metrics, uncertainty
from tests.aggregate.test_metrics import MON, flow, params, write_flows  # noqa: F401

N = 8192


def sampled(start: dt.datetime, service: str, octets: int, packets: int, **kw: Any) -> dict:
    """A flow sampled 1 in N: `packets` sampled packets of `octets` bytes; bytes_est = N octets."""
    row = flow(start, service, N * octets, packets=packets, **kw)
    return {**row, "octets": octets, "sampling_interval": N, "packets_est": float(N * packets)}


def var(octets: int, packets: int, spread: float) -> float:
    """V_flow = bytes_est² (1 − 1/N) (1/packets + d²)."""
    return (N * octets) ** 2 * (1 - 1 / N) * (1 / packets + spread**2)


def test_weekday_profile_interval_is_the_analytic_formula(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    # Mon 10:xx and Tue 10:xx local (OUT), Mon 10:xx (IN); MON is local Monday 00:00
    flows = [(10, 0, 3000, 2, "OUT"), (10, 1, 150_000, 100, "OUT"), (10, 0, 50_000, 7, "IN")]
    rows = [
        sampled(MON + dt.timedelta(days=d, hours=h, minutes=20), "pppoe", o, k, direction=di)
        for h, d, o, k, di in flows
    ]
    prof = metrics.weekday_hourly_profile(write_flows(tmp_path, rows), 2024, params)
    ip = uncertainty.IntervalParams.from_params(params)
    assert ip.record_spread > 0
    for direction in ("OUT", "IN"):
        mine = [f for f in flows if f[4] == direction]
        bytes_ = sum(N * o for _, _, o, _, _ in mine)
        se = math.sqrt(sum(var(o, k, ip.record_spread) for _, _, o, k, _ in mine))
        to_bps = 8 / 3600 / 5  # mean over the 5 weekdays
        row = prof.filter(pl.col("direction") == direction, pl.col("hour") == 10).row(0, named=True)
        assert row["mean_bps"] == pytest.approx(bytes_ * to_bps)
        assert row["mean_bps_lo"] == pytest.approx((bytes_ - ip.z * se) * to_bps, rel=1e-6)
        assert row["mean_bps_hi"] == pytest.approx((bytes_ + ip.z * se) * to_bps, rel=1e-6)
    quiet = prof.filter(pl.col("hour") == 3)
    assert quiet["mean_bps_lo"].to_list() == quiet["mean_bps_hi"].to_list() == [0.0, 0.0]


def test_port_class_series_interval_is_the_analytic_formula(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    rows = [  # hour 0 of the week: tcp443 and tcp_dynamic; hour 5: one flow of 2 packets
        sampled(MON + dt.timedelta(minutes=30), "pppoe", 90_000, 60, src_port=443),
        sampled(MON + dt.timedelta(minutes=40), "pppoe", 20_000, 9, src_port=50000, dst_port=50001),
        sampled(MON + dt.timedelta(hours=5), "pppoe", 1_500, 2, src_port=443),
    ]
    s = metrics.port_class_week_series(write_flows(tmp_path, rows), 2024, params)
    bb = s.filter(pl.col("service") == "broadband")
    d = uncertainty.IntervalParams.from_params(params).record_spread
    z = uncertainty.IntervalParams.from_params(params).z
    peak = N * 110_000.0
    expected = {  # (hour_of_week, class): (bytes, variance)
        (0.0, "total"): (peak, var(90_000, 60, d) + var(20_000, 9, d)),
        (0.0, "tcp443"): (N * 90_000.0, var(90_000, 60, d)),
        (0.0, "tcp_dynamic"): (N * 20_000.0, var(20_000, 9, d)),
        (0.0, "udp443"): (0.0, 0.0),
        (5.0, "tcp443"): (N * 1_500.0, var(1_500, 2, d)),
    }
    for (hour, port_class), (b, v) in expected.items():
        row = bb.filter(pl.col("hour_of_week") == hour, pl.col("port_class") == port_class)
        r = row.row(0, named=True)
        lo, hi = max(b - z * math.sqrt(v), 0.0), b + z * math.sqrt(v)
        assert r["bytes"] == pytest.approx(b)
        assert (r["bytes_lo"], r["bytes_hi"]) == pytest.approx((lo, hi), rel=1e-6, abs=1e-9)
        assert (r["normalised_lo"], r["normalised_hi"]) == pytest.approx(
            (lo / peak, hi / peak), rel=1e-6, abs=1e-12
        )
    # one flow of 2 sampled packets: relative half-width z · sqrt(1/2 + d²) > 1, lo floored at 0
    assert bb.filter(pl.col("hour_of_week") == 5.0, pl.col("port_class") == "total")[
        "bytes_lo"
    ].to_list() == [0.0]
