"""Attribution against a brute-force reading of its rules, on random adversarial exporter-days:
overlapping sessions, hand-overs at the exact instant, nested IPv6 prefixes of several lengths,
IPv4 and IPv6 on one side, on-net flows, null addresses, holders without an id, flows outside
every session. The oracle below checks each flow against every holder, one at a time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.atomic import write_parquet_atomic
from pipeline.attribute.attribute import attribute_day
from pipeline.ingest.radius import PPPOE_SESSION_SCHEMA
from pipeline.ingest.reference import LEASE_SCHEMA
from tests.attribute.test_attribution import DAY, FLOW_SCHEMA, SALT, T0, read_out, write_flows

MIN = 60_000
V4_POOL = [0x6440_0000 + i for i in range(6)]  # 100.64.0.0 … 100.64.0.5
V6_BASE = 0x2001_0DB8_0000_0000
LENGTHS = [32, 48, 56, 64]
OUTPUT = [
    "user_key",
    "user_protocol",
    "service_class",
    "direction",
    "peer_user_key",
    "peer_user_protocol",
    "peer_service_class",
]


def mask(length: int) -> int:
    return ((1 << 64) - 1) >> (64 - length) << (64 - length)


def v6_address(rng: np.random.Generator) -> int:
    """An address in one of a few /56s of two /48s (so prefixes of every length nest)."""
    return (
        V6_BASE
        | int(rng.integers(0, 2)) << 16
        | int(rng.integers(0, 3)) << 8
        | int(rng.integers(0, 3))
    )


def random_holders(rng: np.random.Generator, n: int) -> list[dict]:
    """Holders on a 10-minute grid so edges coincide; a few without id or with empty validity."""
    holders = []
    for _ in range(n):
        start = T0 + int(rng.integers(-12, 36)) * 10 * MIN
        stop = start + int(rng.integers(-1, 12)) * 10 * MIN  # sometimes empty or reversed
        sub = int(rng.integers(0, 8))
        length = int(rng.choice(LENGTHS))
        holders.append(
            {
                "subscription_id": None if rng.random() < 0.05 else f"s{sub:07d}",
                "service_class": "enterprise" if sub % 3 == 0 else "personal",  # one per id
                "v4": V4_POOL[int(rng.integers(0, len(V4_POOL)))] if rng.random() < 0.7 else None,
                "v6_hi": v6_address(rng) & mask(length) if rng.random() < 0.7 else None,
                "v6_len": length,
                "start": start,
                "stop": stop,
            }
        )
    return holders


def random_flows(rng: np.random.Generator, n: int) -> list[dict]:
    """Flows starting on a 5-minute grid (± 1 ms now and then) around the holders' edges."""
    rows = []
    for _ in range(n):
        t = T0 + int(rng.integers(-30, 90)) * 5 * MIN + int(rng.choice([0, 0, 0, -1, 1]))
        row = dict.fromkeys(FLOW_SCHEMA)
        row.update(
            exporter="x",
            observation_domain_id=1,
            flow_start_ms=t,
            flow_end_ms=t + 1000,
            ip_version=4,
            protocol=6,
            src_port=443,
            dst_port=50000,
            flow_direction=int(rng.choice([0, 1, 2])),
            octets=int(rng.integers(1, 10_000)),
            packets=int(rng.integers(1, 100)),
            sampling_interval=int(rng.choice([1, 1024])),
        )
        for side in ("src", "dst"):
            kind = rng.random()
            if kind < 0.4:
                row[f"{side}_v4"] = V4_POOL[int(rng.integers(0, len(V4_POOL)))]
            elif kind < 0.45:
                row[f"{side}_v4"] = 0x0808_0808  # off-net
            if 0.35 < kind < 0.85:  # some sides carry both families
                row[f"{side}_v6_hi"], row[f"{side}_v6_lo"] = v6_address(rng), 7
        rows.append(row)
    return rows


def key(subscription_id: str, protocol: str) -> str:
    return hashlib.sha256(f"{SALT}{subscription_id}/{protocol}".encode()).hexdigest()[:16]


def best_holder(holders: list[dict], v4: int | None, v6_hi: int | None, t: int) -> dict | None:
    """The rule itself: every holder valid at t whose IPv4 address equals, or whose IPv6 prefix
    contains the address; the longest prefix (IPv4 = 32), then the smallest id (nulls last)."""
    candidates = []
    for h in holders:
        if not h["start"] <= t < h["stop"]:
            continue
        if v4 is not None and h["v4"] == v4:
            candidates.append((32, h))
        if v6_hi is not None and h["v6_hi"] is not None and v6_hi & mask(h["v6_len"]) == h["v6_hi"]:
            candidates.append((h["v6_len"], h))
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda c: (-c[0], c[1]["subscription_id"] is None, c[1]["subscription_id"] or ""),
    )[1]


def expected(flows: list[dict], holders: list[dict], protocol: str) -> pl.DataFrame:
    """The attributed columns of every flow, computed from the rules one flow at a time."""
    out = []
    for f in flows:
        src = best_holder(holders, f["src_v4"], f["src_v6_hi"], f["flow_start_ms"])
        dst = best_holder(holders, f["dst_v4"], f["dst_v6_hi"], f["flow_start_ms"])
        src_id = src["subscription_id"] if src else None
        dst_id = dst["subscription_id"] if dst else None
        user = src if src_id else dst if dst_id else None
        direction = {0: "IN", 1: "OUT"}.get(f["flow_direction"])
        out.append(
            {
                "user_key": key(user["subscription_id"], protocol) if user else None,
                "user_protocol": protocol if src or dst else None,
                "service_class": (src if src_id else dst or {}).get("service_class"),
                "direction": "IN" if src_id else "OUT" if dst_id else direction,
                "peer_user_key": key(dst_id, protocol) if src_id and dst_id else None,
                "peer_user_protocol": protocol if src_id and dst else None,
                "peer_service_class": dst["service_class"] if src_id and dst else None,
            }
        )
    return pl.DataFrame(out, schema=dict.fromkeys(OUTPUT, pl.String))


def write_sessions(wh: Path, holders: list[dict]) -> None:
    rows = [
        (
            h["subscription_id"],
            h["service_class"],
            f"x{i}",
            h["v4"],
            h["v6_hi"],
            h["v6_len"] if h["v6_hi"] is not None else None,
            h["start"],
            h["stop"],
        )
        for i, h in enumerate(holders)
    ]
    sessions = pl.DataFrame(rows, schema=PPPOE_SESSION_SCHEMA, orient="row")
    write_parquet_atomic(sessions, wh / "reference" / "pppoe_sessions" / "week=2024-06-03.parquet")


def write_leases(wh: Path, holders: list[dict]) -> None:
    rows = [
        (h["subscription_id"], h["service_class"], h["v6_hi"], h["v6_len"], h["start"], h["stop"])
        for h in holders
    ]
    leases = pl.DataFrame(rows, schema=LEASE_SCHEMA, orient="row")
    write_parquet_atomic(leases, wh / "reference" / "ipoe_leases" / "week=2024-06-03.parquet")


@pytest.mark.parametrize("seed", range(6))
def test_pppoe_matches_the_rules(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    holders = random_holders(rng, 60)
    flows = random_flows(rng, 400)
    write_sessions(tmp_path, holders)
    exporter = {"name": "bras01", "service": "pppoe"}
    write_flows(tmp_path, exporter, flows)
    counts = attribute_day(tmp_path, DAY, exporter, SALT)
    out = read_out(tmp_path, exporter)
    want = expected(flows, holders, "pppoe")
    assert out.select(OUTPUT).to_dicts() == want.to_dicts()
    assert out["flow_start_ms"].to_list() == [f["flow_start_ms"] for f in flows]  # input order
    bytes_est = [f["octets"] * float(f["sampling_interval"]) for f in flows]
    assert out["bytes_est"].to_list() == bytes_est
    assert counts["attributed"] == want["user_key"].count() > 0
    assert want["peer_user_key"].count() > 0  # the seeds do exercise on-net flows


@pytest.mark.parametrize("seed", range(3))
def test_ipoe_matches_the_rules(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    holders = [h | {"v4": None} for h in random_holders(rng, 60) if h["v6_hi"] is not None]
    flows = random_flows(rng, 300)
    write_leases(tmp_path, holders)
    exporter = {"name": "gw01", "service": "ipoe"}
    write_flows(tmp_path, exporter, flows)
    attribute_day(tmp_path, DAY, exporter, SALT)
    out = read_out(tmp_path, exporter)
    assert out.select(OUTPUT).to_dicts() == expected(flows, holders, "ipoe").to_dicts()


def test_output_bytes_do_not_change_between_runs(tmp_path: Path, monkeypatch) -> None:
    """Several batches (row groups) per file, written twice: the same bytes."""
    monkeypatch.setattr("pipeline.attribute.stream.BATCH_ROWS", 64)
    rng = np.random.default_rng(7)
    holders = random_holders(rng, 40)
    flows = random_flows(rng, 300)
    write_sessions(tmp_path, holders)
    exporter = {"name": "bras01", "service": "pppoe"}
    write_flows(tmp_path, exporter, flows)
    path = Path(attribute_day(tmp_path, DAY, exporter, SALT)["output"])
    first = path.read_bytes()
    attribute_day(tmp_path, DAY, exporter, SALT)
    assert path.read_bytes() == first
    out = read_out(tmp_path, exporter)
    assert out.select(OUTPUT).to_dicts() == expected(flows, holders, "pppoe").to_dicts()


def test_empty_partition_gives_an_empty_table_with_every_column(tmp_path: Path) -> None:
    write_sessions(tmp_path, random_holders(np.random.default_rng(3), 5))
    exporter = {"name": "bras01", "service": "pppoe"}
    write_flows(tmp_path, exporter, [])
    counts = attribute_day(tmp_path, DAY, exporter, SALT)
    out = read_out(tmp_path, exporter)
    assert out.height == 0 and counts["flows"] == 0 and counts["unattributed_bytes_share"] == 0.0
    assert out.columns[-10:] == ["service", *OUTPUT[:4], "bytes_est", "packets_est", *OUTPUT[4:]]
