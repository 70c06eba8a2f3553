"""A synthetic PPPoE exporter-day for the attribution benchmark, generated in bounded memory.

A pool of IPv4 addresses, each held by a chain of PPPoE sessions through the day (hand-overs: when
one session stops, the next holder gets the address at that instant), each session with its own
IPv6 /56. About 70 % of flows have one side in a session at the flow's start (user side source or
destination at random), the rest are between outside addresses; 75 % IPv4, 25 % IPv6. Flows are
written time slice by time slice, each slice in the partition row order of
pipeline.ingest.flow_store (NORMALISED_SCHEMA). Everything is a function of (flows, seed).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.cache import cached_dir
from pipeline.config import local_day_bounds_ms
from pipeline.ingest.flow_store import sorted_flows
from pipeline.ingest.flows import NORMALISED_SCHEMA
from pipeline.ingest.radius import PPPOE_SESSION_SCHEMA

DAY = dt.date(2024, 6, 5)  # a Wednesday of the 2024 analysis week
EXPORTER = {"name": "bench-bras01", "service": "pppoe"}
SALT = "bench-salt"
CHUNK_FLOWS = 1_000_000
FLOWS_PER_ADDRESS = 400  # users grow with flows: one pool address per 400 flows of the day
SESSION_CUTS = 4  # up to this many hand-overs per address in the day
POOL_V4 = 0x64400000  # 100.64.0.0/10, the access pool
POOL_V6_HI = 0x2001_0DB8_0000_0000
OUTSIDE_V6_HI = 0x2A00_0000_0000_0000
SAMPLING = 1024
GEN_VERSION = 2  # 2: slices in flow_store row order


def sessions_table(addresses: int, lo_ms: int, hi_ms: int, rng: np.random.Generator) -> pa.Table:
    """Sessions of every pool address over [lo_ms, hi_ms), sorted by (framed_v4, start_ms)."""
    cuts = np.sort(rng.integers(lo_ms, hi_ms, (addresses, SESSION_CUTS)), axis=1)
    keep = rng.random((addresses, SESSION_CUTS)) < 0.5
    cuts = np.where(keep, cuts, -1)  # a dropped cut: no hand-over there
    first = lo_ms - rng.integers(0, 86_400_000, (addresses, 1))
    last = hi_ms + rng.integers(1, 86_400_000, (addresses, 1))
    bounds = np.concatenate([first, cuts, last], axis=1)
    addr = np.repeat(np.arange(addresses, dtype=np.int64), SESSION_CUTS + 2).reshape(bounds.shape)
    valid = bounds >= 0
    b, a = bounds[valid], addr[valid]
    order = np.lexsort((b, a))
    b, a = b[order], a[order]
    nxt_same = np.append(a[1:] == a[:-1], False)
    starts = np.flatnonzero(nxt_same)  # every bound but an address's last opens a session
    n = len(starts)
    subscribers = int(addresses * 1.3)
    sub = rng.integers(0, subscribers, n)
    session = np.arange(n, dtype=np.int64)
    klass = np.where(sub % 7 == 0, "enterprise", "personal")
    return pa.table(
        {
            "subscription_id": pa.array(np.char.add("s", sub.astype(str))),
            "service_class": pa.array(klass),
            "session_id": pa.array(np.char.add("bench", session.astype(str))),
            "framed_v4": pa.array((POOL_V4 + a[starts]).astype(np.uint32)),
            "v6_prefix_hi": pa.array((POOL_V6_HI + (session << 8)).astype(np.uint64)),
            "v6_prefix_len": pa.array(np.full(n, 56, np.uint8)),
            "start_ms": pa.array(b[starts].astype(np.int64)),
            "stop_ms": pa.array(b[starts + 1].astype(np.int64)),
        }
    ).select(list(PPPOE_SESSION_SCHEMA))


def _ports(proto: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(service port, ephemeral port) per flow; 0 for ICMP."""
    n = len(proto)
    well_known = np.array([443, 80, 53, 993, 8080], np.uint16)
    server = np.where(
        rng.random(n) < 0.8,
        well_known[rng.integers(0, len(well_known), n)],
        rng.integers(1, 65536, n).astype(np.uint16),
    ).astype(np.uint16)
    ephemeral = rng.integers(1024, 65536, n).astype(np.uint16)
    icmp = proto == 1
    return np.where(icmp, 0, server).astype(np.uint16), np.where(icmp, 0, ephemeral).astype(
        np.uint16
    )


def flow_chunk(
    sessions: pa.Table, t_lo: int, t_hi: int, n: int, rng: np.random.Generator
) -> pa.Table:
    """n flows starting in [t_lo, t_hi), in the partition row order, in NORMALISED_SCHEMA."""
    start = rng.integers(t_lo, t_hi, n).astype(np.int64)
    v6 = rng.random(n) < 0.25
    user = rng.random(n) < 0.72  # ~70 % end up with a holder (a few land in no session)
    user_is_src = rng.random(n) < 0.5
    s_addr = sessions["framed_v4"].to_numpy().astype(np.int64) - POOL_V4
    s_start = sessions["start_ms"].to_numpy()
    s_prefix = sessions["v6_prefix_hi"].to_numpy()
    addresses = int(s_addr.max()) + 1
    addr = rng.integers(0, addresses, n)
    span = 4 * 86_400_000  # key = address × span + time; sessions of one address stay together
    base = int(s_start.min())
    key_s = s_addr * span + (s_start - base)
    idx = np.searchsorted(key_s, addr * span + (start - base), side="right") - 1
    idx = np.clip(idx, 0, len(key_s) - 1)
    user_v4 = (POOL_V4 + addr).astype(np.uint32)
    user_v6_hi = (s_prefix[idx] | rng.integers(0, 256, n).astype(np.uint64)).astype(np.uint64)
    out_v4 = rng.integers(0x5D000000, 0xC0000000, (2, n)).astype(np.uint32)
    out_v6 = (OUTSIDE_V6_HI | rng.integers(0, 2**60, (2, n)).astype(np.uint64)).astype(np.uint64)
    lo6 = rng.integers(0, 2**63, (2, n), dtype=np.int64).astype(np.uint64)
    src4 = np.where(user & user_is_src, user_v4, out_v4[0])
    dst4 = np.where(user & ~user_is_src, user_v4, out_v4[1])
    src6 = np.where(user & user_is_src, user_v6_hi, out_v6[0])
    dst6 = np.where(user & ~user_is_src, user_v6_hi, out_v6[1])
    proto = rng.choice(np.array([6, 17, 1], np.uint8), n, p=[0.7, 0.27, 0.03])
    server, ephemeral = _ports(proto, rng)
    src_port = np.where(user_is_src, ephemeral, server)
    dst_port = np.where(user_is_src, server, ephemeral)
    packets = rng.geometric(0.3, n).astype(np.uint64)
    octets = packets * rng.integers(40, 1500, n).astype(np.uint64)
    cols = {
        "exporter": pa.array(np.full(n, EXPORTER["name"]), pa.string()),
        "observation_domain_id": pa.array(np.full(n, 1, np.uint32)),
        "flow_start_ms": pa.array(start),
        "flow_end_ms": pa.array(start + rng.exponential(8_000, n).astype(np.int64)),
        "ip_version": pa.array(np.where(v6, 6, 4).astype(np.uint8)),
        "src_v4": pa.array(src4, mask=v6),
        "dst_v4": pa.array(dst4, mask=v6),
        "src_v6_hi": pa.array(src6, mask=~v6),
        "src_v6_lo": pa.array(lo6[0], mask=~v6),
        "dst_v6_hi": pa.array(dst6, mask=~v6),
        "dst_v6_lo": pa.array(lo6[1], mask=~v6),
        "protocol": pa.array(proto),
        "src_port": pa.array(src_port.astype(np.uint16)),
        "dst_port": pa.array(dst_port.astype(np.uint16)),
        "flow_direction": pa.array(np.where(user_is_src, 0, 1).astype(np.uint8)),
        "octets": pa.array(octets),
        "packets": pa.array(packets),
        "sampling_interval": pa.array(np.full(n, SAMPLING, np.uint32)),
    }
    table = pa.table(cols).select(NORMALISED_SCHEMA.names).cast(NORMALISED_SCHEMA)
    return sorted_flows(table)


def write_exporter_day(root: Path, flows: int, seed: int) -> None:
    """warehouse/flows/date=D/exporter=E/flows.parquet and reference/pppoe_sessions/ under root."""
    rng = np.random.default_rng(seed)
    lo_ms, hi_ms = local_day_bounds_ms(DAY)
    addresses = max(16, flows // FLOWS_PER_ADDRESS)
    sessions = sessions_table(addresses, lo_ms, hi_ms, rng)
    monday = DAY - dt.timedelta(days=DAY.weekday())
    ref = root / "warehouse" / "reference" / "pppoe_sessions"
    ref.mkdir(parents=True)
    pq.write_table(sessions, ref / f"week={monday.isoformat()}.parquet", compression="zstd")
    flows_dir = root / "warehouse" / "flows" / f"date={DAY.isoformat()}"
    path = flows_dir / f"exporter={EXPORTER['name']}" / "flows.parquet"
    path.parent.mkdir(parents=True)
    chunks = -(-flows // CHUNK_FLOWS)
    edges = np.linspace(lo_ms, hi_ms, chunks + 1).astype(np.int64)
    with pq.ParquetWriter(path, NORMALISED_SCHEMA, compression="zstd") as writer:
        for k in range(chunks):
            n = min(CHUNK_FLOWS, flows - k * CHUNK_FLOWS)
            writer.write_table(flow_chunk(sessions, int(edges[k]), int(edges[k + 1]), n, rng))


def exporter_day(data_dir: Path, flows: int, seed: int) -> Path:
    """The cached exporter-day tree for (flows, seed): its warehouse directory."""
    root = cached_dir(
        data_dir, f"exporter-day-v{GEN_VERSION}-{flows}-seed{seed}", write_exporter_day, flows, seed
    )
    return root / "warehouse"


def flows_file(warehouse: Path) -> Path:
    """The flows partition of the benchmark's exporter-day."""
    return (
        warehouse / "flows" / f"date={DAY.isoformat()}" / f"exporter={EXPORTER['name']}"
        / "flows.parquet"
    )  # fmt: skip
