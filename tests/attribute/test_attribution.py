"""Attribution of flows to subscribers: hand-made sessions, leases and flows with worked answers."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import polars as pl
import pytest

from pipeline.atomic import write_parquet_atomic
from pipeline.attribute.attribute import attribute_day
from pipeline.config import local_day_bounds_ms
from pipeline.ingest.radius import PPPOE_SESSION_SCHEMA, ingest_radius
from pipeline.ingest.reference import LEASE_SCHEMA

DAY = dt.date(2024, 6, 3)
T0, _ = local_day_bounds_ms(DAY)  # local midnight 2024-06-03 = 2024-06-02T15:00Z
H = 3_600_000
MIN = 60_000
SALT = "test-salt"
PPPOE = {"name": "bras01", "service": "pppoe"}
IPOE = {"name": "gw-ipoe01", "service": "ipoe"}
MOBILE = {"name": "mob01", "service": "mobile"}

FLOW_SCHEMA = {
    "exporter": pl.String,
    "observation_domain_id": pl.UInt32,
    "flow_start_ms": pl.Int64,
    "flow_end_ms": pl.Int64,
    "ip_version": pl.UInt8,
    "src_v4": pl.UInt32,
    "dst_v4": pl.UInt32,
    "src_v6_hi": pl.UInt64,
    "src_v6_lo": pl.UInt64,
    "dst_v6_hi": pl.UInt64,
    "dst_v6_lo": pl.UInt64,
    "protocol": pl.UInt8,
    "src_port": pl.UInt16,
    "dst_port": pl.UInt16,
    "flow_direction": pl.UInt8,
    "octets": pl.UInt64,
    "packets": pl.UInt64,
    "sampling_interval": pl.UInt32,
}
ADDRESS_COLUMNS = {"src_v4", "dst_v4", "src_v6_hi", "src_v6_lo", "dst_v6_hi", "dst_v6_lo"}


def v4(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def key(subscription_id: str, protocol: str) -> str:
    return hashlib.sha256(f"{SALT}{subscription_id}/{protocol}".encode()).hexdigest()[:16]


def flow(t_ms: int, *, src=None, dst=None, fdir=0, octets=1000, v6=False) -> dict:
    """One flow record; v6 addresses are given as their upper 64 bits."""
    row = dict.fromkeys(FLOW_SCHEMA)
    row.update(
        exporter="x",
        observation_domain_id=1,
        flow_start_ms=t_ms,
        flow_end_ms=t_ms + 1000,
        ip_version=6 if v6 else 4,
        protocol=6,
        src_port=443,
        dst_port=50000,
        flow_direction=fdir,
        octets=octets,
        packets=10,
        sampling_interval=1024,
    )
    if v6:
        row.update(src_v6_hi=src or 0x2001_0DB8_FFFF_0000, src_v6_lo=1)
        row.update(dst_v6_hi=dst or 0x2001_0DB8_FFFF_0001, dst_v6_lo=2)
    else:
        row.update(src_v4=src or v4("203.0.113.9"), dst_v4=dst or v4("198.51.100.7"))
    return row


def write_flows(wh: Path, exporter: dict, rows: list[dict]) -> None:
    path = wh / "flows" / f"date={DAY}" / f"exporter={exporter['name']}" / "flows.parquet"
    write_parquet_atomic(pl.DataFrame(rows, schema=FLOW_SCHEMA), path)


def read_out(wh: Path, exporter: dict) -> pl.DataFrame:
    path = wh / "attributed" / f"date={DAY}" / f"exporter={exporter['name']}" / "flows.parquet"
    return pl.read_parquet(path)


@pytest.fixture
def pppoe_warehouse(tmp_path: Path) -> Path:
    """Address 100.64.0.1 passes from s0000001 to s0000002 at T0+2h; 100.64.0.2 has a gap."""
    sessions = pl.DataFrame(
        [
            (
                "s0000001",
                "personal",
                "a1",
                v4("100.64.0.1"),
                0x2001_0DB8_0001_0100,
                56,
                T0 + H,
                T0 + 2 * H,
            ),
            ("s0000002", "enterprise", "b1", v4("100.64.0.1"), None, None, T0 + 2 * H, T0 + 5 * H),
            ("s0000003", "personal", "c1", v4("100.64.0.2"), None, None, T0, T0 + H),
            ("s0000003", "personal", "c2", v4("100.64.0.2"), None, None, T0 + 2 * H, T0 + 3 * H),
            ("s0000004", "personal", "d1", v4("100.64.0.3"), None, None, T0, T0 + 24 * H),
        ],
        schema=PPPOE_SESSION_SCHEMA,
        orient="row",
    )
    write_parquet_atomic(
        sessions, tmp_path / "reference" / "pppoe_sessions" / "week=2024-06-03.parquet"
    )
    return tmp_path


def test_ipv4_handover_gap_and_sides(pppoe_warehouse: Path) -> None:
    wh = pppoe_warehouse
    a1, a2, a3 = v4("100.64.0.1"), v4("100.64.0.2"), v4("100.64.0.3")
    write_flows(
        wh,
        PPPOE,
        [
            flow(T0 + 2 * H - 1, src=a1),  # 0: last ms of s0000001's session → s1, IN
            flow(T0 + 2 * H, src=a1),  # 1: exactly at the hand-over → next holder s2, IN
            flow(T0 + 2 * H + MIN, dst=a1, fdir=0),  # 2: after, user is the destination → s2, OUT
            flow(T0 + 90 * MIN, src=a2, fdir=0, octets=3000),  # 3: in s3's gap → unattributed IN
            flow(T0 + 90 * MIN, dst=a2, fdir=1, octets=1000),  # 4: in the gap → unattributed OUT
            flow(T0 + 90 * MIN, dst=0x2001_0DB8_0001_01AB, v6=True),  # 5: inside s1's /56 → OUT
            flow(T0 + 90 * MIN, src=a1, dst=a3),  # 6: both sides match: source wins → s1, IN
            flow(T0 + 5 * H, dst=a1, fdir=1),  # 7: s2 ended at T0+5h (exclusive) → unattributed
        ],
    )
    counts = attribute_day(wh, DAY, PPPOE, SALT)
    out = read_out(wh, PPPOE)

    assert out.get_column("user_key").to_list() == [
        key("s0000001", "pppoe"),
        key("s0000002", "pppoe"),
        key("s0000002", "pppoe"),
        None,
        None,
        key("s0000001", "pppoe"),
        key("s0000001", "pppoe"),
        None,
    ]
    assert out.get_column("direction").to_list() == [
        "IN",
        "IN",
        "OUT",
        "IN",
        "OUT",
        "OUT",
        "IN",
        "OUT",
    ]
    assert out.get_column("service_class").to_list()[:3] == ["personal", "enterprise", "enterprise"]
    assert out.get_column("user_protocol").to_list()[:3] == ["pppoe"] * 3
    assert set(out.get_column("service").to_list()) == {"pppoe"}
    assert not ADDRESS_COLUMNS & set(out.columns)
    # bytes_est = octets × 1024 as DOUBLE; unattributed: flows 3, 4, 7 = (3000 + 1000 + 1000) × 1024
    assert out.schema["bytes_est"] == pl.Float64
    assert out.get_column("bytes_est").to_list()[3] == 3000 * 1024.0
    assert out.get_column("packets_est").to_list()[0] == 10 * 1024.0
    assert counts["flows"] == 8 and counts["attributed"] == 5 and counts["unattributed"] == 3
    total = (1000 * 6 + 3000 + 1000) * 1024.0
    assert counts["unattributed_bytes_est"] == 5000 * 1024.0
    assert counts["unattributed_bytes_share"] == pytest.approx(5000 * 1024.0 / total)


def test_user_key_never_the_raw_id(pppoe_warehouse: Path) -> None:
    wh = pppoe_warehouse
    write_flows(wh, PPPOE, [flow(T0 + 3 * H, src=v4("100.64.0.1"))])
    attribute_day(wh, DAY, PPPOE, SALT)
    user_key = read_out(wh, PPPOE).item(0, "user_key")
    assert len(user_key) == 16 and "s0000002" not in user_key
    table_text = read_out(wh, PPPOE).write_csv()
    assert "s000000" not in table_text and "100.64" not in table_text


def test_ipv6_longest_prefix_and_expired_lease(tmp_path: Path) -> None:
    leases = pl.DataFrame(
        [
            ("i1", "personal", 0x2001_0DB8_AA00_0000, 48, T0, T0 + 24 * H),
            ("i2", "enterprise", 0x2001_0DB8_AA00_1200, 56, T0, T0 + 24 * H),
            ("i3", "personal", 0x2001_0DB8_AA00_3400, 56, T0 - 24 * H, T0 + H),  # expires T0+1h
        ],
        schema=LEASE_SCHEMA,
        orient="row",
    )
    write_parquet_atomic(leases, tmp_path / "reference" / "ipoe_leases" / "week=2024-06-03.parquet")
    write_flows(
        tmp_path,
        IPOE,
        [
            flow(T0 + 2 * H, src=0x2001_0DB8_AA00_1234, v6=True),  # /56 of i2 beats /48 → IN
            flow(T0 + 2 * H, dst=0x2001_0DB8_AA00_3456, v6=True),  # i3 expired → /48 i1, OUT
            flow(T0 + 30 * MIN, dst=0x2001_0DB8_AA00_3456, v6=True),  # i3 still valid → OUT
            flow(T0 + 2 * H, src=0x2001_0DB8_BB00_0000, v6=True, fdir=0),  # no lease → None, IN
            flow(T0 + 2 * H, src=v4("100.64.0.1"), fdir=1),  # IPv4 on IPoE: no lease → None, OUT
        ],
    )
    counts = attribute_day(tmp_path, DAY, IPOE, SALT)
    out = read_out(tmp_path, IPOE)
    assert out.get_column("user_key").to_list() == [
        key("i2", "ipoe"),
        key("i1", "ipoe"),
        key("i3", "ipoe"),
        None,
        None,
    ]
    assert out.get_column("direction").to_list() == ["IN", "OUT", "OUT", "IN", "OUT"]
    assert out.get_column("service_class").to_list() == [
        "enterprise",
        "personal",
        "personal",
        None,
        None,
    ]
    assert out.get_column("user_protocol").to_list() == ["ipoe"] * 3 + [None, None]
    assert counts["attributed"] == 3


def test_mobile_passes_through(pppoe_warehouse: Path) -> None:
    wh = pppoe_warehouse
    write_flows(
        wh,
        MOBILE,
        [
            flow(T0 + 3 * H, src=v4("100.64.0.1"), fdir=0),
            flow(T0 + 3 * H, dst=v4("100.64.0.1"), fdir=1),
        ],
    )
    counts = attribute_day(wh, DAY, MOBILE, SALT)
    out = read_out(wh, MOBILE)
    assert out.get_column("user_key").to_list() == [None, None]
    assert out.get_column("direction").to_list() == ["IN", "OUT"]
    assert out.get_column("service").to_list() == ["mobile", "mobile"]
    assert counts["unattributed"] == 2 and counts["unattributed_bytes_share"] == 1.0


def test_radius_to_attribution_end_to_end(tmp_path: Path) -> None:
    """Detail files → sessions → attribution; a session started the day before is found."""
    raw = tmp_path / "raw"
    (raw / "radius").mkdir(parents=True)
    start_s = (T0 - 3 * H) // 1000  # Start on the previous local day
    (raw / "radius" / "detail-20240602").write_text(
        "Sun Jun  2 21:00:00 2024\n"
        "\tAcct-Status-Type = Start\n"
        '\tAcct-Session-Id = "e2e1"\n'
        '\tUser-Name = "s0000042@bb.example.jp"\n'
        '\tClass = "personal"\n'
        "\tFramed-IP-Address = 100.64.9.9\n"
        f"\tEvent-Timestamp = {start_s}\n"
        "\tAcct-Session-Time = 0\n"
        "\tNAS-IP-Address = 192.0.2.1\n\n"
    )
    (raw / "radius" / "detail-20240603").write_text(
        "Mon Jun  3 03:00:00 2024\n"
        "\tAcct-Status-Type = Interim-Update\n"
        '\tAcct-Session-Id = "e2e1"\n'
        '\tUser-Name = "s0000042@bb.example.jp"\n'
        '\tClass = "personal"\n'
        "\tFramed-IP-Address = 100.64.9.9\n"
        f"\tEvent-Timestamp = {start_s + 21600}\n"
        "\tAcct-Session-Time = 21600\n"
        "\tNAS-IP-Address = 192.0.2.1\n\n"
    )
    wh = tmp_path / "warehouse"
    summary = ingest_radius(raw, wh, [DAY])
    assert summary["sessions"] == 1 and summary["records_quarantined"] == 0
    # open session: last interim (T0+3h) + 6 h → T0+9h
    write_flows(
        wh,
        PPPOE,
        [
            flow(T0 + 9 * H - 1, dst=v4("100.64.9.9"), fdir=1),
            flow(T0 + 9 * H, dst=v4("100.64.9.9")),
        ],
    )
    attribute_day(wh, DAY, PPPOE, SALT)
    assert read_out(wh, PPPOE).get_column("user_key").to_list() == [key("s0000042", "pppoe"), None]


def test_missing_flows_partition_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="exporter=bras01"):
        attribute_day(tmp_path, DAY, PPPOE, SALT)


def test_largest_counter_times_largest_interval_does_not_overflow(pppoe_warehouse: Path) -> None:
    """octets = 2^64 − 1 sampled 1 in 16,384: the estimate is (2^64 − 1) × 16384 ≈ 3.02e23 bytes
    (beyond any integer column), carried as DOUBLE, with the raw counter and interval kept apart."""
    wh = pppoe_warehouse
    row = flow(T0 + 3 * H, src=v4("100.64.0.1"), octets=2**64 - 1)
    row["sampling_interval"] = 16_384
    write_flows(wh, PPPOE, [row])
    attribute_day(wh, DAY, PPPOE, SALT)
    out = read_out(wh, PPPOE)
    assert out.get_column("octets").to_list() == [2**64 - 1]
    assert out.get_column("sampling_interval").to_list() == [16_384]
    assert out.get_column("bytes_est").to_list() == [pytest.approx(3.022314549036573e23)]


def test_on_net_flow_names_both_subscribers(pppoe_warehouse: Path) -> None:
    """Issue 8 cat. 8: a flow between two subscribers is IN for the sender (the row's user) and
    OUT for the receiver (the peer columns); one row per flow, so the totals count it once."""
    wh = pppoe_warehouse
    a1, a2, a3 = v4("100.64.0.1"), v4("100.64.0.2"), v4("100.64.0.3")
    write_flows(
        wh,
        PPPOE,
        [
            flow(T0 + 90 * MIN, src=a1, dst=a3, octets=2000),  # 0: s1 → s4, both ours
            flow(T0 + 30 * MIN, src=a3, dst=a2, octets=500),  # 1: s4 → s3 (c1 session)
            flow(T0 + 90 * MIN, src=a3, dst=a2),  # 2: s4 → a2 in s3's gap: off-net, no peer
            flow(T0 + 90 * MIN, dst=a3),  # 3: only the destination is ours → s4, OUT, no peer
            flow(T0 + 20 * H, src=a3, dst=a1),  # 4: a1 unheld at T0+20h: off-net, no peer
        ],
    )
    counts = attribute_day(wh, DAY, PPPOE, SALT)
    out = read_out(wh, PPPOE)
    s1, s3, s4 = (key(s, "pppoe") for s in ("s0000001", "s0000003", "s0000004"))
    assert out["user_key"].to_list() == [s1, s4, s4, s4, s4]
    assert out["direction"].to_list() == ["IN", "IN", "IN", "OUT", "IN"]
    assert out["peer_user_key"].to_list() == [s4, s3, None, None, None]
    assert out["peer_user_protocol"].to_list() == ["pppoe", "pppoe", None, None, None]
    assert out["peer_service_class"].to_list() == ["personal", "personal", None, None, None]
    # one row per flow: the grand total is each flow's bytes once
    assert out.height == 5 and counts["flows"] == 5
    assert counts["bytes_est"] == (2000 + 500 + 1000 * 3) * 1024.0
