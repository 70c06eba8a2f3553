"""Aggregates on tiny hand-built Parquet fixtures whose answers are worked out by hand."""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.aggregate import metrics
from pipeline.config import load_params

UTC = dt.UTC
JST = dt.timedelta(hours=9)
MON = dt.datetime(2024, 6, 3, tzinfo=UTC) - JST  # local Monday 2024-06-03 00:00 (analysis week)
FLOW_SCHEMA = {
    "exporter": pl.String,
    "flow_start_ms": pl.Int64,
    "flow_end_ms": pl.Int64,
    "ip_version": pl.UInt8,
    "protocol": pl.UInt8,
    "src_port": pl.UInt16,
    "dst_port": pl.UInt16,
    "octets": pl.UInt64,
    "packets": pl.UInt64,
    "sampling_interval": pl.UInt32,
    "service": pl.String,
    "user_key": pl.String,
    "user_protocol": pl.String,
    "service_class": pl.String,
    "direction": pl.String,
    "bytes_est": pl.Float64,
    "packets_est": pl.Float64,
    "peer_user_key": pl.String,
    "peer_user_protocol": pl.String,
    "peer_service_class": pl.String,
}


@pytest.fixture
def params() -> dict[str, Any]:
    p = copy.deepcopy(load_params())
    p["report"].update(
        time_zone="Asia/Tokyo",
        report_month=6,
        normalise_month="2020-01",
        fig1_start_month="2017-01",
    )
    p["daily_usage"].update(
        days_per_week=7,
        density_min_log10=4.0,
        density_max_log10=11.0,
        bin_width_decades=0.1,
        mode_rule="tilt",  # the hand-checked modes below follow the spec's suggested rule
        mode_tilt_ratio=0.9,
        mode_shift_decades=0.05,
        scatter_sample_size=3,
        scatter_sample_seed=7,
        top_shares_pct=[10, 1],
    )
    p["ports"].update(
        top_ports_per_protocol=2,
        min_share_pct_for_new_row=0.3,
        week_series_bin_minutes=60,
        carried_rows={"broadband": ["tcp/443", "tcp/183", "udp/4500"], "mobile": ["tcp/443"]},
        lt1024_subtotals={"broadband": True, "mobile": False},
    )
    p["weeks"] = {
        2024: {"analysis": "2024-06-03", "extra": []},
        2020: {"analysis": "2024-06-03", "extra": []},
    }
    return p


def at(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def flow(
    start: dt.datetime,
    service: str,
    bytes_est: float,
    direction: str = "OUT",
    protocol: int = 6,
    src_port: int = 443,
    dst_port: int = 51000,
    user_key: str | None = None,
    user_protocol: str | None = None,
    service_class: str | None = None,
    packets: int = 1,
    peer_user_key: str | None = None,
    peer_service_class: str = "personal",
) -> dict[str, Any]:
    return {
        "exporter": f"{service}-1",
        "flow_start_ms": at(start),
        "flow_end_ms": at(start) + 1000,
        "ip_version": 4,
        "protocol": protocol,
        "src_port": src_port,
        "dst_port": dst_port,
        "octets": int(bytes_est),
        "packets": packets,
        "sampling_interval": 1,
        "service": service,
        "user_key": user_key,
        "user_protocol": user_protocol,
        "service_class": service_class,
        "direction": direction,
        "bytes_est": float(bytes_est),
        "packets_est": float(packets),
        "peer_user_key": peer_user_key,
        "peer_user_protocol": service if peer_user_key else None,
        "peer_service_class": peer_service_class if peer_user_key else None,
    }


def user_flow(
    start: dt.datetime,
    service: str,
    bytes_est: float,
    user_key: str,
    service_class: str = "personal",
    **kwargs: Any,
) -> dict[str, Any]:
    """A flow attributed to `user_key` (its access protocol = the exporter's service)."""
    return flow(
        start,
        service,
        bytes_est,
        user_key=user_key,
        user_protocol=service,
        service_class=service_class,
        **kwargs,
    )


def write_flows(root: Path, rows: list[dict[str, Any]]) -> str:
    """Attributed-flow partitions by local date and exporter; returns the glob."""
    df = pl.DataFrame(rows, schema=FLOW_SCHEMA)
    df = df.with_columns(
        ((pl.col("flow_start_ms") + 9 * 3_600_000) * 1000)
        .cast(pl.Datetime("us"))
        .dt.date()
        .cast(pl.String)
        .alias("d")
    )
    for (day, exporter), part in df.group_by("d", "exporter"):
        folder = root / "attributed" / f"date={day}" / f"exporter={exporter}"
        folder.mkdir(parents=True)
        part.drop("d").write_parquet(folder / "flows.parquet")
    return str(root / "attributed" / "date=*" / "exporter=*" / "flows.parquet")


def user_week(
    service: str,
    daily_in: list[float | None],
    daily_out: list[float | None],
    packets_in: list[int] | None = None,
    packets_out: list[int] | None = None,
) -> pl.DataFrame:
    """A per-user table as user_week_usage returns it: a 0 or None direction is not observed
    (NULL bytes, 0 sampled packets); others rest on 100 sampled packets unless given."""
    n = len(daily_in)

    def observed(daily: list[float | None]) -> list[float | None]:
        return [v if v else None for v in daily]

    def packets(daily: list[float | None], given: list[int] | None) -> list[int | None]:
        if service == "mobile":
            return [None] * n
        return given if given is not None else [100 if v else 0 for v in daily]

    def variance(daily: list[float | None], k: list[int | None]) -> list[float | None]:
        """Weekly variance of k sampled packets of equal size (exact for mobile: 0)."""
        if service == "mobile":
            return [0.0 if v else None for v in daily]
        return [(v * 7) ** 2 / n if v and n else None for v, n in zip(daily, k, strict=True)]

    din, dout = observed(daily_in), observed(daily_out)
    pin, pout = packets(daily_in, packets_in), packets(daily_out, packets_out)
    vin, vout = variance(din, pin), variance(dout, pout)
    return pl.DataFrame(
        {
            "year": [2024] * n,
            "service": [service] * n,
            "user_key": [f"k{i:03d}" for i in range(n)],
            "in_bytes": [v * 7 if v else None for v in din],
            "out_bytes": [v * 7 if v else None for v in dout],
            "daily_in_bytes": din,
            "daily_out_bytes": dout,
            "in_packets_sampled": pin,
            "out_packets_sampled": pout,
            "in_bytes_var": vin,
            "out_bytes_var": vout,
            "in_rel_error": [
                math.sqrt(v) / (d * 7) if v is not None else None
                for v, d in zip(vin, din, strict=True)
            ],
            "out_rel_error": [
                math.sqrt(v) / (d * 7) if v is not None else None
                for v, d in zip(vout, dout, strict=True)
            ],
        },
        schema_overrides={
            "in_bytes": pl.Float64,
            "out_bytes": pl.Float64,
            "daily_in_bytes": pl.Float64,
            "daily_out_bytes": pl.Float64,
            "in_packets_sampled": pl.Int64,
            "out_packets_sampled": pl.Int64,
            "in_bytes_var": pl.Float64,
            "out_bytes_var": pl.Float64,
            "in_rel_error": pl.Float64,
            "out_rel_error": pl.Float64,
        },
    )


# 10 users: OUT has a zero, one user below the plotted range and bins 5.0 (3) and 6.0 (5);
# IN has bins 4.0 (4), 4.1 (4), 4.2 (2).
TEN_OUT = [0.0, 1e3, 1e5, 1e5, 1e5, 1e6, 1e6, 1e6, 10**6.04, 10**6.04]
TEN_IN = [1e4] * 4 + [10**4.1] * 4 + [10**4.2] * 2


def test_density_of_ten_users(params: dict[str, Any]) -> None:
    dens = metrics.daily_usage_density(user_week("broadband", TEN_IN, TEN_OUT), 2024, params)
    out = dens.filter(pl.col("direction") == "OUT")
    # 71 bin centres 4.0..11.0 plus the occupied bin 3.0 outside the range
    assert out.height == 72
    got = {
        round(b, 1): (u, d)
        for b, u, d in out.select("bin_center_log10", "users", "density").rows()
        if u
    }
    assert got.keys() == {3.0, 5.0, 6.0}
    # the user not observed in OUT is not drawn: the curve is that of the 9 users with a value
    assert got[3.0] == (1, pytest.approx(1 / 9 / 0.1))
    assert got[5.0] == (3, pytest.approx(3 / 9 / 0.1))
    assert got[6.0] == (5, pytest.approx(5 / 9 / 0.1))
    in_ = dens.filter(pl.col("direction") == "IN", pl.col("users") > 0)
    assert in_.select("bin_center_log10", "users").rows() == [(4.0, 4), (4.1, 4), (4.2, 2)]
    assert in_["density"].to_list() == pytest.approx([4.0, 4.0, 2.0])
    assert set(dens.columns) == {
        "year",
        "service",
        "direction",
        "bin_center_log10",
        "users",
        "density",
        "density_lo",
        "density_hi",
    }
    assert (dens["year"] == 2024).all()


def test_mean_median_mode(params: dict[str, Any]) -> None:
    s = metrics.daily_usage_summary(user_week("broadband", TEN_IN, TEN_OUT), 2024, params)
    out = s.filter(pl.col("direction") == "OUT").row(0, named=True)
    # the user with no OUT flow is not observed: one of the 10 users, ranked below the others,
    # adding no bytes to the total (as in the density's normalisation), and counted
    assert out["users"] == 10 and out["users_not_observed"] == 1 and out["users_below_rule"] == 0
    # 1.0964782 MB = 10^6.04 bytes
    assert out["mean_mb"] == pytest.approx((0.001 + 0.3 + 3.0 + 2 * 1.0964781961) / 10)
    assert out["median_mb"] == pytest.approx((0.1 + 1.0) / 2)  # 5th and 6th of 10
    assert out["mode_log10"] == 6.0 and out["mode_mb"] == pytest.approx(1.0)
    in_ = s.filter(pl.col("direction") == "IN").row(0, named=True)
    # bins 4.0 and 4.1 tie at 4 users; median 10^4.1 picks 4.1; left neighbour 4 >= 0.9*4 -> 4.05
    assert in_["median_mb"] == pytest.approx(10**4.1 / 1e6)
    assert in_["mode_log10"] == 4.05
    assert in_["mode_mb"] == pytest.approx(0.0112202, rel=1e-5)


def test_top_user_share_with_twenty_users(params: dict[str, Any]) -> None:
    daily_out = [k * 1e6 / 7 for k in range(1, 21)]  # weekly OUT 1..20 MB, total 210 MB
    daily_in = [0.0] * 19 + [5e6]
    top = metrics.top_user_share(user_week("mobile", daily_in, daily_out), 2024, params)
    got = {(d, p): s for _, _, d, p, s, lo, hi in top.rows()}
    # mobile billing is not sampled: exact, lo = hi = the share
    assert (
        top["share_pct_lo"].to_list() == top["share_pct"].to_list() == top["share_pct_hi"].to_list()
    )
    assert got[("OUT", 10.0)] == pytest.approx(100 * 39 / 210)  # top 2 users: 20 + 19
    assert got[("OUT", 1.0)] == pytest.approx(100 * 20 / 210)  # ceil(0.2) = 1 user
    assert got[("IN", 10.0)] == pytest.approx(100.0)
    assert top.columns == [
        "year",
        "service",
        "direction",
        "top_pct",
        "share_pct",
        "share_pct_lo",
        "share_pct_hi",
    ]
    assert top.select("direction", "top_pct").rows() == [
        ("IN", 10.0),
        ("IN", 1.0),
        ("OUT", 10.0),
        ("OUT", 1.0),
    ]


def test_scatter_sample_is_deterministic_and_anonymous(params: dict[str, Any]) -> None:
    uw = user_week("broadband", [float(i) for i in range(20)], [float(i * 10) for i in range(20)])
    a = metrics.scatter_sample(uw, 2024, params)
    b = metrics.scatter_sample(uw.reverse(), 2024, params)
    assert a.equals(b)
    assert a.columns == ["year", "service", "daily_in_bytes", "daily_out_bytes"]
    assert a.height == 3


def test_scatter_points_rounded_ordered_and_unlinkable_across_years(
    params: dict[str, Any],
) -> None:
    """Issue 8 cat. 12: the same 400 users in two years give samples drawn independently (no
    shared draw order, no row-by-row join), points at 0.01 decade, rows by value, no identifier."""
    n = 400
    daily_in = [10 ** (4 + 3 * ((i * 37) % n) / n) for i in range(n)]
    daily_out = [10 ** (6 + 3 * ((i * 91) % n) / n) + 0.123 for i in range(n)]
    params["daily_usage"].update(scatter_sample_size=40)
    uw = user_week("broadband", daily_in, daily_out)
    uw_next = uw.with_columns(pl.lit(2025).alias("year"))  # same users and values, next year
    a = metrics.scatter_sample(uw, 2024, params)
    b = metrics.scatter_sample(uw_next, 2025, params)
    assert a.columns == ["year", "service", "daily_in_bytes", "daily_out_bytes"]
    for df in (a, b):
        for col in ("daily_in_bytes", "daily_out_bytes"):
            logs = [math.log10(v) for v in df[col]]
            assert all(abs(x * 100 - round(x * 100)) < 1e-6 for x in logs)  # 0.01 decade
        assert df["daily_out_bytes"].to_list() == sorted(df["daily_out_bytes"])  # by value
    # Values unchanged between the years: a row link would show as a shared point. The two
    # samples are independent draws of 40 of 400: they share a few users, not the sample.
    pts_a = set(zip(a["daily_in_bytes"], a["daily_out_bytes"], strict=True))
    pts_b = set(zip(b["daily_in_bytes"], b["daily_out_bytes"], strict=True))
    assert len(pts_a & pts_b) < 15
    # the same year drawn again is the same sample (deterministic)
    assert metrics.scatter_sample(uw.reverse(), 2024, params).equals(a)


def test_scatter_leaves_out_directions_below_the_rule(params: dict[str, Any]) -> None:
    params["daily_usage"].update(scatter_sample_size=10, min_sampled_packets=5)
    uw = user_week("broadband", [1e6, 2e6, 0.0], [3e6, 4e6, 5e6], packets_in=[3, 50, 0])
    got = metrics.scatter_sample(uw, 2024, params)
    assert got["daily_in_bytes"].null_count() == 2  # 3 packets < 5, and not observed
    assert got["daily_out_bytes"].null_count() == 0


def _port_flows() -> list[dict[str, Any]]:
    t = MON + dt.timedelta(hours=20)
    return [
        flow(t, "pppoe", 500, src_port=443, dst_port=51000),  # min port 443
        flow(t, "pppoe", 100, src_port=51000, dst_port=80, direction="IN"),  # 80
        flow(t, "pppoe", 150, src_port=50000, dst_port=50001),  # 50000, >= 1024
        user_flow(t, "pppoe", 50, "u1", "enterprise", src_port=40000, dst_port=31000),  # counted
        flow(t, "pppoe", 150, protocol=17, src_port=60000, dst_port=443),  # udp 443
        flow(t, "pppoe", 40, protocol=50, src_port=0, dst_port=0),  # ESP
        flow(t, "pppoe", 5, protocol=1, src_port=0, dst_port=0),  # ICMP
        flow(t, "pppoe", 5, protocol=58, src_port=0, dst_port=0),  # ICMPv6 -> ICMP
        flow(t, "ipoe", 999, src_port=443, dst_port=50000),  # IPoE: not in port tables
        flow(MON - dt.timedelta(hours=1), "pppoe", 999),  # before the week
        flow(t, "mobile", 60, src_port=443, dst_port=40000),
        flow(t, "mobile", 40, protocol=17, src_port=443, dst_port=40000),
    ]


def test_usage_by_port_min_port_rule_and_subtotals(tmp_path: Path, params: dict[str, Any]) -> None:
    glob = write_flows(tmp_path, _port_flows())
    table = metrics.usage_by_port(glob, 2024, params)
    bb = table.filter(pl.col("service") == "broadband").sort("sort_key")
    assert bb.select("row_id", "row_kind", "parent").rows() == [
        ("tcp_total", "protocol_total", None),
        ("tcp_lt1024", "subtotal", "tcp_total"),
        ("tcp_443", "port", "tcp_lt1024"),
        ("tcp_183", "port", "tcp_lt1024"),
        ("tcp_ge1024", "subtotal", "tcp_total"),
        ("tcp_50000", "port", "tcp_ge1024"),
        ("udp_total", "protocol_total", None),
        ("udp_443", "port", "udp_total"),
        ("udp_4500", "port", "udp_total"),
        ("esp", "protocol_total", None),
        ("gre", "protocol_total", None),
        ("icmp", "protocol_total", None),
    ]
    assert bb["share_pct"].to_list() == pytest.approx(
        [80.0, 60.0, 50.0, 0.0, 20.0, 15.0, 15.0, 15.0, 0.0, 4.0, 0.0, 1.0]
    )
    assert bb["port_label"].to_list()[:6] == [
        "TCP",
        "(< 1024)",
        "443 (https)",
        "183",
        "(>= 1024)",
        "50000",
    ]
    shares = dict(bb.select("row_id", "share_pct").rows())
    assert shares["tcp_lt1024"] + shares["tcp_ge1024"] == shares["tcp_total"]
    totals = bb.filter(pl.col("row_kind") == "protocol_total")["share_pct"].sum()
    assert totals == pytest.approx(100.0)
    mob = table.filter(pl.col("service") == "mobile").sort("sort_key")
    assert mob.select("row_id", "parent", "share_pct").rows() == [
        ("tcp_total", None, 60.0),
        ("tcp_443", "tcp_total", 60.0),
        ("udp_total", None, 40.0),
        ("udp_443", "udp_total", 40.0),
        ("esp", None, 0.0),
        ("gre", None, 0.0),
        ("icmp", None, 0.0),
    ]


def test_weekday_profile_local_hours_and_weekdays(tmp_path: Path, params: dict[str, Any]) -> None:
    utc = dt.datetime(2024, 6, 3, tzinfo=UTC)
    rows = [
        flow(utc + dt.timedelta(hours=14, minutes=30), "pppoe", 2250),  # Mon 23:30 local
        flow(utc - dt.timedelta(hours=8), "pppoe", 4500, direction="IN"),  # Mon 01:00 local
        flow(utc + dt.timedelta(days=4, hours=14, minutes=59), "ipoe", 2250),  # Fri 23:59 local
        flow(utc + dt.timedelta(days=4, hours=15), "pppoe", 1e9),  # Sat 00:00 local: weekend
        flow(utc + dt.timedelta(days=5, hours=3), "pppoe", 1e9),  # Sat 12:00 local
        flow(utc + dt.timedelta(hours=3), "mobile", 1e9),  # mobile: not broadband
        flow(utc + dt.timedelta(days=1, hours=3), "pppoe", 2250, direction="IN"),  # Tue 12:00
    ]
    glob = write_flows(tmp_path, rows)
    prof = metrics.weekday_hourly_profile(glob, 2024, params)
    assert prof.height == 48
    assert prof.columns == [
        "year",
        "week_start",
        "role",
        "hour",
        "direction",
        "mean_bps",
        "weekdays",
        "mean_bps_lo",
        "mean_bps_hi",
    ]
    # sampling_interval 1 in this fixture: no sampling error
    assert (
        prof["mean_bps_lo"].to_list() == prof["mean_bps"].to_list() == prof["mean_bps_hi"].to_list()
    )
    nonzero = prof.filter(pl.col("mean_bps") > 0).select("direction", "hour", "mean_bps").rows()
    # mean over 5 weekdays of bytes * 8 / 3600: 2250 B -> 1 bit/s
    assert nonzero == [("IN", 1, 2.0), ("IN", 12, 1.0), ("OUT", 23, 2.0)]
    assert set(prof["week_start"]) == {"2024-06-03"} and set(prof["role"]) == {"analysis"}


def test_port_class_week_series(tmp_path: Path, params: dict[str, Any]) -> None:
    rows = [
        flow(MON + dt.timedelta(minutes=30), "pppoe", 300, src_port=443, dst_port=51000),
        flow(MON + dt.timedelta(minutes=40), "pppoe", 100, src_port=50000, dst_port=50001),
        flow(MON + dt.timedelta(hours=25), "pppoe", 200, protocol=17, src_port=443, dst_port=5000),
        flow(MON + dt.timedelta(hours=25), "pppoe", 200, src_port=80, dst_port=5000),
        flow(MON + dt.timedelta(hours=2), "mobile", 10, src_port=443, dst_port=5000),
    ]
    glob = write_flows(tmp_path, rows)
    s = metrics.port_class_week_series(glob, 2024, params)
    bb = s.filter(pl.col("service") == "broadband")
    assert bb.height == 168 * 5
    first = bb.filter(pl.col("hour_of_week") == 0.0)
    assert first.select("port_class", "bytes", "normalised").rows() == [
        ("total", 400.0, 1.0),
        ("tcp80", 0.0, 0.0),
        ("tcp443", 300.0, 0.75),
        ("tcp_dynamic", 100.0, 0.25),
        ("udp443", 0.0, 0.0),
    ]
    h25 = dict(bb.filter(pl.col("hour_of_week") == 25.0).select("port_class", "bytes").rows())
    assert h25 == {
        "total": 400.0,
        "tcp80": 200.0,
        "tcp443": 0.0,
        "tcp_dynamic": 0.0,
        "udp443": 200.0,
    }
    assert first["bin_start_ms"].to_list() == [at(MON)] * 5
    mob = s.filter(pl.col("service") == "mobile")
    assert mob.height == 168 * 4 and "tcp_dynamic" not in set(mob["port_class"])
    assert mob.filter(pl.col("hour_of_week") == 2.0, pl.col("port_class") == "tcp443")[
        "normalised"
    ].to_list() == [1.0]


def _user_flows() -> list[dict[str, Any]]:
    t = MON + dt.timedelta(days=2)
    return [
        user_flow(t, "pppoe", 700, "u1", direction="IN"),
        user_flow(t, "pppoe", 3000, "u1"),
        user_flow(t + dt.timedelta(days=4), "pppoe", 4000, "u1"),
        user_flow(t, "ipoe", 1400, "u2"),
        user_flow(t, "pppoe", 9e9, "u3", "enterprise"),
        flow(t, "pppoe", 9e9),  # unattributed
        user_flow(MON + dt.timedelta(days=7), "pppoe", 9e9, "u1"),  # next week
    ]


def _billing(root: Path) -> Path:
    df = pl.DataFrame(
        {
            "date": [
                dt.date(2024, 6, 3),
                dt.date(2024, 6, 9),
                dt.date(2024, 6, 10),
                dt.date(2024, 6, 5),
                dt.date(2024, 6, 5),
            ],
            "msisdn": ["09011112222", "09011112222", "09011112222", "08033334444", "07055556666"],
            "service_class": ["personal", "personal", "personal", "enterprise", "personal"],
            "uplink_bytes": [70, 70, 9_000_000, 9_000_000, 0],
            "downlink_bytes": [700, 700, 9_000_000, 9_000_000, 35],
        }
    )
    path = root / "mobile_usage.parquet"
    df.write_parquet(path)
    return path


def test_user_week_usage(tmp_path: Path, params: dict[str, Any]) -> None:
    glob = write_flows(tmp_path, _user_flows())
    uw = metrics.user_week_usage(glob, _billing(tmp_path), 2024, params, salt="s")
    bb = uw.filter(pl.col("service") == "broadband").sort("user_key")
    assert bb.select(
        "user_key", "in_bytes", "out_bytes", "daily_in_bytes", "daily_out_bytes"
    ).rows() == [("u1", 700.0, 7000.0, 100.0, 1000.0), ("u2", None, 1400.0, None, 200.0)]
    assert bb.select("in_packets_sampled", "out_packets_sampled").rows() == [(1, 2), (0, 1)]
    mob = uw.filter(pl.col("service") == "mobile").sort("daily_out_bytes")
    assert mob.select("daily_in_bytes", "daily_out_bytes").rows() == [(None, 5.0), (20.0, 200.0)]
    keys = mob["user_key"].to_list()
    assert all(len(k) == 64 and "0901111" not in k and "0705555" not in k for k in keys)
    # 2020 (same week in this fixture): per-user stats are PPPoE only
    uw2020 = metrics.user_week_usage(glob, _billing(tmp_path), 2020, params, salt="s")
    assert uw2020.filter(pl.col("service") == "broadband")["user_key"].to_list() == ["u1"]


def test_user_week_usage_over_the_days_present(tmp_path: Path, params: dict[str, Any]) -> None:
    """A day whose per-user inputs are missing leaves the week's sums and the divisor alike."""
    glob = write_flows(tmp_path, _user_flows())
    sunday = "2024-06-09"  # local dates of the analysis week 2024-06-03..09
    completeness = pl.DataFrame(
        {
            "kind": ["flows", "mobile_billing", "radius"],
            "service": ["pppoe", "mobile", "pppoe"],
            "scope": ["bras01", "", ""],
            "period": [sunday, sunday, "2024-06-05"],
            "present": [False, False, True],
            "records": [0, 0, 10],
        }
    )
    uw = metrics.user_week_usage(glob, _billing(tmp_path), 2024, params, "s", completeness)
    u1 = uw.filter(pl.col("user_key") == "u1")
    assert u1.select("in_bytes", "out_bytes", "daily_in_bytes", "daily_out_bytes").rows() == [
        (700.0, 3000.0, 700.0 / 6, 500.0)  # Sunday's 4000 B OUT left out, 6 days
    ]
    mob = uw.filter((pl.col("service") == "mobile") & pl.col("daily_in_bytes").is_not_null())
    rows = mob.select("in_bytes", "out_bytes", "daily_out_bytes").rows()
    assert rows == [(70.0, 700.0, 700.0 / 6)]


def _bytes_for_rate(month: str, bps: float) -> float:
    y, m = map(int, month.split("-"))
    return bps * calendar.monthrange(y, m)[1] * 86400 / 8


def _monthly(root: Path, rates: dict[str, dict[tuple[str, str], float]]) -> Path:
    rows = [
        (month, svc, d, _bytes_for_rate(month, bps))
        for month, by in rates.items()
        for (svc, d), bps in by.items()
    ]
    path = root / "monthly_traffic.parquet"
    pl.DataFrame(
        rows, schema=["month", "service", "direction", "bytes"], orient="row"
    ).write_parquet(path)
    return path


def _month_rates(
    pppoe_in: float,
    ipoe_in: float,
    pppoe_out: float,
    ipoe_out: float,
    mob_in: float,
    mob_out: float,
) -> dict[tuple[str, str], float]:
    return {
        ("broadband_pppoe", "IN"): pppoe_in,
        ("broadband_ipoe", "IN"): ipoe_in,
        ("broadband_pppoe", "OUT"): pppoe_out,
        ("broadband_ipoe", "OUT"): ipoe_out,
        ("mobile", "IN"): mob_in,
        ("mobile", "OUT"): mob_out,
    }


def growth_values(monthly_path: Path, params: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    """growth_statistics of 2024 as {(metric, service, direction): value}, in row order."""
    g = metrics.growth_statistics(monthly_path, 2024, params)
    return {(m, s, d): v for _, m, s, d, v, _ in g.rows()}


def test_yoy_and_ipoe_share_from_25_months(tmp_path: Path, params: dict[str, Any]) -> None:
    months = [f"{2022 + (5 + i) // 12}-{(5 + i) % 12 + 1:02d}" for i in range(25)]
    assert months[0] == "2022-06" and months[-1] == "2024-06"
    rates = {m: _month_rates(1, 1, 1, 1, 1, 1) for m in months}
    rates["2023-06"] = _month_rates(580, 420, 560, 440, 100, 1000)  # IPoE 42 % IN, 44 % OUT
    # June 2024: broadband IN 1140 (+14 %) with IPoE 43 %, OUT 1120 (+12 %) with IPoE 48 %
    rates["2024-06"] = _month_rates(1140 * 0.57, 1140 * 0.43, 1120 * 0.52, 1120 * 0.48, 129, 1200)
    val = growth_values(_monthly(tmp_path, rates), params)
    assert val[("yoy_pct", "broadband", "IN")] == pytest.approx(14.0)
    assert val[("yoy_pct", "broadband", "OUT")] == pytest.approx(12.0)
    assert val[("yoy_pct", "mobile", "IN")] == pytest.approx(29.0)
    assert val[("yoy_pct", "mobile", "OUT")] == pytest.approx(20.0)
    assert val[("ipoe_share_pct", "broadband", "IN")] == pytest.approx(43.0)
    assert val[("ipoe_share_pct", "broadband", "OUT")] == pytest.approx(48.0)
    assert val[("ipoe_share_change_pts", "broadband", "IN")] == pytest.approx(1.0)
    assert val[("ipoe_share_change_pts", "broadband", "OUT")] == pytest.approx(4.0)
    # no June 2019 and no Jan 2020 in the series: those rows are left out
    assert not {m for m, _, _ in val} & {"factor_5y", "annualised_5y", "relative_to_norm_month"}
    assert next(iter(val))[0] == "yoy_pct"


def test_normalisation_to_jan_2020(tmp_path: Path, params: dict[str, Any]) -> None:
    rates = {
        "2019-06": _month_rates(10, 0, 100, 0, 5, 50),
        "2020-01": _month_rates(8, 2, 60, 40, 5, 50),  # broadband OUT 100 bit/s, mobile OUT 50
        "2024-06": _month_rates(15, 5, 100, 100, 10, 105),
        "2026-01": _month_rates(1, 1, 1, 1, 1, 1),  # after the report month: not shown
    }
    path = _monthly(tmp_path, rates)
    fig1 = metrics.monthly_traffic_normalised(path, 2024, params)
    measured = fig1.filter(pl.col("bytes").is_not_null())
    assert sorted(set(measured["month"])) == ["2019-06", "2020-01", "2024-06"]
    # every month of Fig 1's range has a row; those without counters are gaps (NULL), not zeros
    assert fig1["month"].min() == params["report"]["fig1_start_month"]
    assert fig1["month"].max() == "2024-06"
    assert fig1.filter(pl.col("month") == "2021-03")["normalised"].null_count() == 8
    norm = {
        (m, s, d): v
        for m, s, d, v in fig1.select("month", "series", "direction", "normalised").rows()
    }
    assert norm[("2020-01", "broadband", "OUT")] == pytest.approx(1.0)
    assert norm[("2020-01", "mobile", "OUT")] == pytest.approx(1.0)
    assert norm[("2024-06", "broadband", "OUT")] == pytest.approx(2.0)  # 30-day June, rates
    assert norm[("2024-06", "broadband_ipoe", "OUT")] == pytest.approx(1.0)  # ÷ broadband OUT
    assert norm[("2024-06", "broadband", "IN")] == pytest.approx(0.2)
    assert norm[("2024-06", "mobile", "OUT")] == pytest.approx(2.1)
    jan = fig1.filter(
        pl.col("month") == "2020-01", pl.col("series") == "broadband", pl.col("direction") == "OUT"
    ).row(0, named=True)
    assert jan["rate_bps"] == pytest.approx(100.0)
    assert jan["bytes"] == pytest.approx(100 * 31 * 86400 / 8)
    val = growth_values(path, params)
    assert val[("factor_5y", "broadband", "OUT")] == pytest.approx(2.0)
    assert val[("annualised_5y", "broadband", "OUT")] == pytest.approx(2**0.2)
    assert val[("factor_5y", "mobile", "OUT")] == pytest.approx(2.1)
    assert val[("relative_to_norm_month", "mobile", "OUT")] == pytest.approx(2.1)
    assert val[("relative_to_norm_month", "broadband", "OUT")] == pytest.approx(2.0)


def test_data_quality(tmp_path: Path, params: dict[str, Any]) -> None:
    t = MON + dt.timedelta(hours=5)
    glob = write_flows(
        tmp_path,
        [
            user_flow(t, "pppoe", 300, "u1"),
            flow(t, "pppoe", 100),
            flow(t, "mobile", 50),
        ],
    )
    reports = [
        {
            "exporter": "pppoe-1",
            "files": 2,
            "messages": 10,
            "records_in": 100,
            "records_decoded": 97,
            "records_quarantined": 3,
            "quarantine_by_reason": {"no_template": 3},
            "sampling_intervals": {"1024": 97},
            "sequence_gaps": 1,
        },
        {
            "exporter": "mobile-1",
            "files": 1,
            "messages": 5,
            "records_in": 50,
            "records_decoded": 48,
            "records_quarantined": 1,
            "quarantine_by_reason": {"no_template": 1},
            "sampling_intervals": {"1024": 40, "64": 8},
            "sequence_gaps": 0,
        },
    ]
    dq = metrics.data_quality(reports, glob, 2024, params)
    v = {(i, s): x for _, i, s, x in dq.rows()}
    assert v[("records_in", "all")] == 150 and v[("records_quarantined", "all")] == 4
    assert v[("quarantined:no_template", "all")] == 4
    assert v[("sampling_interval:1024", "all")] == 137 and v[("sampling_interval:64", "all")] == 8
    assert v[("reports_violating_records_invariant", "all")] == 1  # 48 + 1 != 50
    assert v[("records_decoded", "exporter:mobile-1")] == 48
    assert v[("unattributed_bytes_pct", "service:pppoe")] == pytest.approx(25.0)
    assert v[("unattributed_bytes_pct", "service:mobile")] == pytest.approx(100.0)
    counters = list(metrics.INGEST_COUNTERS)
    assert dq.select("scope", "item").rows() == [
        *[("all", item) for item in counters],
        ("all", "ingest_reports"),
        ("all", "reports_violating_records_invariant"),
        ("all", "quarantined:no_template"),
        ("all", "sampling_interval:64"),  # by N, not by text
        ("all", "sampling_interval:1024"),
        *[("exporter:mobile-1", item) for item in counters],
        *[("exporter:pppoe-1", item) for item in counters],
        ("service:mobile", "unattributed_bytes_pct"),
        ("service:pppoe", "unattributed_bytes_pct"),
        ("all", "max_quarantined_share_pct"),
        ("exporter_day:pppoe-1/", "worst_quarantined_share_pct"),
        ("all", "records_outside_weeks"),
        ("all", "reports_with_wire_counters"),
    ]


def test_data_quality_counts_duplicates_clocks_wire_counters_and_the_worst_share(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    """Counters of newer ingest reports are summed (an older report without them counts 0), the
    worst exporter-day share is named, and the records of a read neighbouring day that no week
    holds are counted, not lost."""
    glob = write_flows(
        tmp_path,
        [
            flow(MON + dt.timedelta(hours=5), "pppoe", 100),
            flow(MON - dt.timedelta(hours=2), "pppoe", 100),  # Sunday before the week (read)
            flow(MON - dt.timedelta(hours=3), "pppoe", 100),
        ],
    )
    base = {"messages": 1, "sequence_gaps": 0, "sampling_intervals": {}}
    reports = [
        base | {"exporter": "bras-a", "date": "2024-06-03", "files": 3, "records_in": 1000,
                "records_decoded": 990, "records_quarantined": 10, "duplicate_files": 1,
                "duplicate_datagrams": 4, "records_default_sampling": 990,
                "template_redefinitions": 2, "trailing_bytes": 7,
                "quarantine_by_reason": {"flow time before window": 6,
                                         "flow end before start": 4}},
        base | {"exporter": "bras-b", "date": "2024-06-04", "files": 2, "records_in": 100,
                "records_decoded": 97, "records_quarantined": 3,
                "quarantine_by_reason": {"flow time after window": 3}},  # an older report
        base | {"exporter": "unregistered", "date": "2024-06-04", "files": 1, "records_in": 5,
                "records_decoded": 0, "records_quarantined": 5,
                "quarantine_by_reason": {"exporter not in registry": 5}},
    ]  # fmt: skip
    dq = metrics.data_quality(reports, glob, 2024, params | {"quality": {
        "max_quarantined_share_pct": 2.5}})  # fmt: skip
    v = {(i, s): x for _, i, s, x in dq.rows()}
    assert v[("duplicate_files", "all")] == 1 and v[("duplicate_datagrams", "all")] == 4
    assert v[("records_default_sampling", "exporter:bras-a")] == 990
    assert v[("records_default_sampling", "exporter:bras-b")] == 0
    assert v[("template_redefinitions", "all")] == 2 and v[("trailing_bytes", "all")] == 7
    assert v[("records_estimated_unsplittable", "all")] == 0
    assert v[("quarantined:flow time before window", "all")] == 6
    assert v[("quarantined:flow time after window", "all")] == 3
    assert v[("quarantined:flow end before start", "all")] == 4
    assert v[("max_quarantined_share_pct", "all")] == 2.5
    assert v[("worst_quarantined_share_pct", "exporter_day:bras-b/2024-06-04")] == 3.0
    assert v[("records_outside_weeks", "all")] == 2
    assert v[("reports_with_wire_counters", "all")] == 1  # bras-b's older report lacks them


def test_data_quality_without_ingest_reports(tmp_path: Path, params: dict[str, Any]) -> None:
    glob = write_flows(tmp_path, [flow(MON + dt.timedelta(hours=5), "pppoe", 100)])
    dq = metrics.data_quality([], glob, 2024, params)
    assert dq.select("item", "scope", "value").rows() == [
        *[(item, "all", 0.0) for item in metrics.INGEST_COUNTERS],
        ("ingest_reports", "all", 0.0),
        ("reports_violating_records_invariant", "all", 0.0),
        ("unattributed_bytes_pct", "service:pppoe", 100.0),
        ("max_quarantined_share_pct", "all", 5.0),
        ("records_outside_weeks", "all", 0.0),
        ("reports_with_wire_counters", "all", 0.0),
    ]


def test_no_identifier_in_published_tables(tmp_path: Path, params: dict[str, Any]) -> None:
    glob = write_flows(tmp_path, _user_flows())
    uw = metrics.user_week_usage(glob, _billing(tmp_path), 2024, params, salt="s")
    keys = set(uw["user_key"])
    for fn in (
        metrics.daily_usage_density,
        metrics.daily_usage_summary,
        metrics.scatter_sample,
        metrics.top_user_share,
    ):
        df = fn(uw, 2024, params)
        assert "user_key" not in df.columns
        text = df.write_csv()
        assert not any(k in text for k in keys) and "0901111" not in text
    assert math.isfinite(metrics.daily_usage_summary(uw, 2024, params)["mode_log10"][0])


def test_on_net_flow_counts_for_both_users_once_in_totals(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    """Issue 8 cat. 8: u1 sends 5000 bytes to u2 (both ours). Per-user: IN 5000 for u1 and
    OUT 5000 for u2; the totals (port shares, weekly profile) count the flow once."""
    t = MON + dt.timedelta(days=1, hours=20)
    rows = [
        user_flow(t, "pppoe", 5000, "u1", direction="IN", peer_user_key="u2"),
        user_flow(t, "pppoe", 3000, "u2", direction="OUT", src_port=80),
        user_flow(
            t,
            "pppoe",
            2000,
            "u3",
            direction="IN",
            peer_user_key="u4",
            peer_service_class="enterprise",
        ),  # fmt: skip
        flow(t, "mobile", 100),  # Table 4 needs some mobile traffic
    ]
    glob = write_flows(tmp_path, rows)
    uw = metrics.user_week_usage(glob, _billing(tmp_path), 2024, params, salt="s")
    bb = uw.filter(pl.col("service") == "broadband").sort("user_key")
    assert bb.select("user_key", "in_bytes", "out_bytes").rows() == [
        ("u1", 5000.0, None),
        ("u2", None, 8000.0),
        ("u3", 2000.0, None),  # its enterprise peer u4 is not a personal user
    ]
    ports = metrics.usage_by_port(glob, 2024, params)
    tcp = ports.filter((pl.col("service") == "broadband") & (pl.col("row_id") == "tcp_443"))
    assert tcp["share_pct"][0] == pytest.approx(100 * 7000 / 10000)  # each flow once
    prof = metrics.weekday_hourly_profile(glob, 2024, params)
    assert prof["mean_bps"].sum() == pytest.approx(10000 / 5 * 8 / 3600)


def test_not_observed_and_below_rule_alike_in_tables_and_density(params: dict[str, Any]) -> None:
    """Issue 8 cat. 9: user 0 has no IN packet (not observed), user 1 three (below a rule of 5),
    user 2 ten packets but a larger estimate than users 3 and 4. Users 0 and 1 are below the
    detection limit alike in Table 1, the density and the top shares: counted among the 6 users,
    ranked last, not drawn, and counted as such."""
    params["daily_usage"]["min_sampled_packets"] = 5
    daily_in = [0.0, 5e6, 2e6, 1e6, 1e6, 1e7]
    uw = user_week("broadband", daily_in, [1e8] * 6, packets_in=[0, 3, 10, 80, 80, 800])
    s = metrics.daily_usage_summary(uw, 2024, params).filter(pl.col("direction") == "IN")
    row = s.row(0, named=True)
    assert (row["users"], row["users_not_observed"], row["users_below_rule"]) == (6, 1, 1)
    assert row["mean_mb"] == pytest.approx((5 + 2 + 1 + 1 + 10) / 6)  # estimated total / users
    # ranked: 0, 0 (below the limit), 1, 1, 2, 10 MB → median between 3rd and 4th = 1 MB;
    # user 1's 5 MB estimate, on 3 packets, does not rank as 5 MB
    assert row["median_mb"] == pytest.approx(1.0)
    dens = metrics.daily_usage_density(uw, 2024, params).filter(pl.col("direction") == "IN")
    drawn = dens.filter(pl.col("users") > 0)
    assert drawn.select("bin_center_log10", "users").rows() == [(6.0, 2), (6.3, 1), (7.0, 1)]
    assert dens["density"].sum() * 0.1 == pytest.approx(1.0)  # over the 4 users drawn
    top = metrics.top_user_share(uw, 2024, params)
    top_in = top.filter((pl.col("direction") == "IN") & (pl.col("top_pct") == 10.0))
    assert top_in["share_pct"][0] == pytest.approx(100 * 10 / 19)  # ceil(0.6) = 1 of 6


def test_flows_spanning_hour_midnight_and_week_end_count_whole_in_their_start_day(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    """Issue 8 cat. 3: a flow counts whole in the local hour, day and week of its start. Flows
    spanning an hour, midnight and the week's end: per-day totals add to the per-user weekly
    total, each flow in exactly one day."""
    sun_late = MON + dt.timedelta(days=6, hours=23, minutes=59)
    rows = [
        user_flow(MON + dt.timedelta(hours=10, minutes=59), "pppoe", 1000, "u1"),  # spans 11:00
        user_flow(MON + dt.timedelta(hours=23, minutes=58), "pppoe", 2000, "u1"),  # spans midnight
        user_flow(sun_late, "pppoe", 4000, "u1"),  # spans the week's end: in this week
        user_flow(MON - dt.timedelta(minutes=1), "pppoe", 8000, "u1"),  # started the week before
        user_flow(MON + dt.timedelta(days=7), "pppoe", 16000, "u1"),  # starts next week
    ]
    for r, minutes in zip(rows, (3, 5, 10, 10, 1), strict=True):
        r["flow_end_ms"] = r["flow_start_ms"] + minutes * 60_000
    glob = write_flows(tmp_path, rows)
    billing = _billing(tmp_path)
    week = metrics.user_week_usage(glob, billing, 2024, params, "s")
    days = [f"2024-06-{d:02d}" for d in range(3, 10)]  # local dates of the analysis week
    by_day = {}
    for day in days:  # the per-user query over one day: the others marked missing
        others = [d for d in days if d != day]
        one_day = pl.DataFrame(
            {
                "kind": "flows",
                "service": "pppoe",
                "scope": "bras01",
                "period": others,
                "present": False,
                "records": 0,
            }  # fmt: skip
        )
        usage = metrics.user_week_usage(glob, billing, 2024, params, "s", one_day)
        by_day[day] = usage.filter(pl.col("user_key") == "u1")["out_bytes"].sum()
    assert {d: b for d, b in by_day.items() if b} == {"2024-06-03": 3000.0, "2024-06-09": 4000.0}
    # 1000 + 2000 + 4000: each flow of the week in exactly one day, none in two or none
    assert sum(by_day.values()) == week.filter(pl.col("user_key") == "u1")["out_bytes"][0] == 7000.0
