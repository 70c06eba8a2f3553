"""Sampling-error intervals (docs/UNCERTAINTY.md): variance columns, the bootstrap's statistics
against the tables' own, the delta method of port shares, the reliability floor."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from pipeline.aggregate import history, metrics, uncertainty
from tests.aggregate.test_metrics import (
    MON,
    TEN_IN,
    TEN_OUT,
    _billing,
    flow,
    params,  # noqa: F401 - the fixture
    user_flow,
    user_week,
    write_flows,
)


def test_user_week_variance_is_the_sum_of_squared_estimates_over_packets(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    rows = [
        user_flow(MON, "pppoe", 8192 * 3000, "u1", packets=2) | {"sampling_interval": 8192},
        user_flow(MON, "pppoe", 8192 * 500, "u1", packets=1) | {"sampling_interval": 8192},
        user_flow(MON, "pppoe", 1000, "u1", direction="IN", packets=1),  # unsampled: N = 1
    ]
    glob = write_flows(tmp_path, rows)
    uw = metrics.user_week_usage(glob, _billing(tmp_path), 2024, params, salt="s")
    u1 = uw.filter(pl.col("user_key") == "u1").row(0, named=True)
    keep = 1 - 1 / 8192
    s2 = params["daily_usage"]["intervals"]["record_size_spread"] ** 2
    var = ((8192 * 3000) ** 2 * (1 / 2 + s2) + (8192 * 500) ** 2 * (1 + s2)) * keep
    assert u1["out_bytes_var"] == pytest.approx(var, rel=1e-12)
    assert u1["out_rel_error"] == pytest.approx(math.sqrt(var) / (8192 * 3500), rel=1e-12)
    assert u1["in_bytes_var"] == 0.0 and u1["in_rel_error"] == 0.0  # N = 1: no sampling error
    mob = uw.filter(pl.col("service") == "mobile")
    assert (mob["out_rel_error"] == 0.0).all()  # billing is exact


def _users(daily: list[float], packets: list[int]) -> uncertainty.Users:
    d = np.asarray(daily, dtype=float)
    k = np.asarray(packets, dtype=float)
    return uncertainty.Users(d, np.where(k > 0, d**2 / np.maximum(k, 1), 0.0), k)


def test_replicate_statistics_reproduce_the_tables_on_the_data(
    params: dict[str, Any],  # noqa: F811
) -> None:
    uw = user_week("broadband", TEN_IN, TEN_OUT)
    rule = metrics.reliability_rule(params)
    summary = metrics.daily_usage_summary(uw, 2024, params)
    top = metrics.top_user_share(uw, 2024, params)
    dens = metrics.daily_usage_density(uw, 2024, params)
    for direction in ("IN", "OUT"):
        daily, det = uncertainty.original(uncertainty.users_of(uw, "broadband", direction), rule)
        row = summary.filter(pl.col("direction") == direction).row(0, named=True)
        med = uncertainty.median_mb(daily, det)
        assert med[0] == pytest.approx(row["median_mb"], rel=1e-12)
        counts = uncertainty.histogram(daily, det, 0.1)
        mode = uncertainty.modes_log10(counts, med, params["daily_usage"])
        assert mode[0] == row["mode_log10"]
        t = top.filter(pl.col("direction") == direction).sort("top_pct", descending=True)
        shares = uncertainty.top_shares_pct(daily, det, t["top_pct"].to_list())
        assert shares[0].tolist() == pytest.approx(t["share_pct"].to_list(), rel=1e-12)
        d = dens.filter(pl.col("direction") == direction, pl.col("users") > 0)
        centres = uncertainty.bin_centres_log10(0.1)
        got = {c: n for c, n in zip(centres, counts[0], strict=True) if n}
        assert got == dict(d.select("bin_center_log10", "users").rows())


def test_intervals_hold_the_estimate_and_are_deterministic(
    params: dict[str, Any],  # noqa: F811
) -> None:
    uw = user_week("broadband", TEN_IN, TEN_OUT)
    a = metrics.daily_usage_summary(uw, 2024, params)
    b = metrics.daily_usage_summary(uw, 2024, params)
    assert a.equals(b)
    for r in a.iter_rows(named=True):
        assert r["interval_method"] == "poisson_bootstrap"
        for stat in ("mean_mb", "median_mb", "mode_log10"):
            assert r[f"{stat}_lo"] <= r[stat] <= r[f"{stat}_hi"]
    top = metrics.top_user_share(uw, 2024, params)
    assert (top["share_pct_lo"] <= top["share_pct"]).all()
    assert (top["share_pct"] <= top["share_pct_hi"]).all()
    dens = metrics.daily_usage_density(uw, 2024, params)
    assert (dens["density_lo"] >= 0).all() and (dens["density_lo"] <= dens["density_hi"]).all()


def test_mean_interval_is_analytic(params: dict[str, Any]) -> None:  # noqa: F811
    # every user-direction rests on 100 packets of one size: var = x^2 / 100 per user
    uw = user_week("broadband", TEN_IN, TEN_OUT)
    s = metrics.daily_usage_summary(uw, 2024, params).filter(pl.col("direction") == "IN")
    row = s.row(0, named=True)
    se = math.sqrt(sum(x * x / 100 for x in TEN_IN)) / 10 / 1e6
    z = uncertainty.IntervalParams.from_params(params).z
    assert z == pytest.approx(1.959964, rel=1e-6)
    assert row["mean_mb_hi"] - row["mean_mb"] == pytest.approx(z * se, rel=1e-9)
    assert row["mean_mb"] - row["mean_mb_lo"] == pytest.approx(z * se, rel=1e-9)


def test_mobile_is_exact(params: dict[str, Any]) -> None:  # noqa: F811
    s = metrics.daily_usage_summary(user_week("mobile", TEN_IN, TEN_OUT), 2024, params)
    for r in s.iter_rows(named=True):
        assert r["interval_method"] == "exact"
        assert r["mean_mb_lo"] == r["mean_mb"] == r["mean_mb_hi"]
        assert r["median_mb_lo"] == r["median_mb"] == r["median_mb_hi"]
        assert r["mode_mb_lo"] == pytest.approx(r["mode_mb"]) == r["mode_mb_hi"]


def test_censored_median_has_no_interval(params: dict[str, Any]) -> None:  # noqa: F811
    # 6 of 10 users not observed in OUT: the median user is below the limit
    out = [0.0] * 6 + [1e6] * 4
    s = metrics.daily_usage_summary(user_week("broadband", TEN_IN, out), 2024, params)
    row = s.filter(pl.col("direction") == "OUT").row(0, named=True)
    assert row["median_mb"] is None and row["median_mb_lo"] is None and row["median_mb_hi"] is None


def test_port_share_interval_is_the_delta_method(
    tmp_path: Path,
    params: dict[str, Any],  # noqa: F811
) -> None:
    n = 1024
    rows = [  # bytes_est = octets * N; variance (N octets)^2 / packets * (1 - 1/N)
        flow(MON, "pppoe", 600 * n, packets=1, dst_port=50000) | {"sampling_interval": n},
        flow(MON, "pppoe", 300 * n, packets=3, protocol=17, dst_port=50001)
        | {"sampling_interval": n},
        flow(MON, "pppoe", 100 * n, packets=2, protocol=1, src_port=0, dst_port=0)
        | {"sampling_interval": n},
        flow(MON, "mobile", 1000, packets=1),
    ]
    params["daily_usage"]["intervals"]["record_size_spread"] = 0.1
    table = metrics.usage_by_port(write_flows(tmp_path, rows), 2024, params)
    keep = 1 - 1 / n
    s2 = 0.1**2
    v = {"tcp": (600 * n) ** 2 * (1 + s2) * keep, "udp": (300 * n) ** 2 * (1 / 3 + s2) * keep}
    v["icmp"] = (100 * n) ** 2 * (1 / 2 + s2) * keep
    total, var = 1000.0 * n, sum(v.values())
    z = uncertainty.IntervalParams.from_params(params).z
    bb = table.filter(pl.col("service") == "broadband")
    for row_id, proto, part in (("tcp_total", "tcp", 600), ("udp_total", "udp", 300)):
        s = part * n / total
        se = 100 * math.sqrt(v[proto] * (1 - 2 * s) + s * s * var) / total
        r = bb.filter(pl.col("row_id") == row_id).row(0, named=True)
        assert r["share_pct_hi"] == pytest.approx(min(100.0, 100 * s + z * se), rel=1e-9)
        assert r["share_pct_lo"] == pytest.approx(max(0.0, 100 * s - z * se), rel=1e-9)
    esp = bb.filter(pl.col("row_id") == "esp").row(0, named=True)
    assert esp["share_pct_lo"] == esp["share_pct_hi"] == 0.0  # no bytes, no error
    mob = table.filter(pl.col("service") == "mobile")  # N = 1: exact
    assert (mob["share_pct_lo"] == mob["share_pct"]).all()
    assert (mob["share_pct_hi"] == mob["share_pct"]).all()


def test_reliability_floor_censors_like_the_packet_rule(
    params: dict[str, Any],  # noqa: F811
) -> None:
    # relative error 1/sqrt(k): 3 packets -> 0.577 > 0.5 -> below the rule; 4 -> 0.5 kept
    packets_in = [3, 3] + [4] * 8
    uw = user_week("broadband", TEN_IN, TEN_OUT, packets_in=packets_in)
    strict = copy.deepcopy(params)
    strict["daily_usage"]["max_relative_error"] = 0.5
    s = metrics.daily_usage_summary(uw, 2024, strict).filter(pl.col("direction") == "IN")
    assert s["users_below_rule"].to_list() == [2]
    dens = metrics.daily_usage_density(uw, 2024, strict).filter(pl.col("direction") == "IN")
    assert dens["users"].sum() == 8
    off = copy.deepcopy(params)
    off["daily_usage"]["max_relative_error"] = None
    loose = metrics.daily_usage_summary(uw, 2024, off).filter(pl.col("direction") == "IN")
    assert loose["users_below_rule"].to_list() == [0]


def test_published_rows_have_no_interval() -> None:
    for table, column in (
        ("daily_usage_summary", "median_mb_lo"),
        ("top_user_share", "share_pct_hi"),
        ("usage_by_port", "share_pct_lo"),
    ):
        pub = history.published_history(table)
        if pub.height == 0:
            pytest.skip("no published tables (../shared/spec/published)")
        assert pub[column].null_count() == pub.height


def test_interval_kinds() -> None:
    draws = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    basic = uncertainty.IntervalParams(level=0.5, kind="basic")
    pct = uncertainty.IntervalParams(level=0.5, kind="percentile")
    lo, hi = uncertainty.intervals(np.array([2.0]), draws, pct)
    assert (lo[0], hi[0]) == (2.0, 4.0)
    lo, hi = uncertainty.intervals(np.array([2.0]), draws, basic)  # 2*2 - (4, 2)
    assert (lo[0], hi[0]) == (0.0, 2.0)
    lo, _ = uncertainty.intervals(np.array([2.0]), np.array([[1.0], [np.nan]]), basic)
    assert np.isnan(lo[0])
    with pytest.raises(ValueError, match="bootstrap_interval"):
        uncertainty.IntervalParams.from_params(
            {"daily_usage": {"intervals": {"bootstrap_interval": "bca"}}}
        )
