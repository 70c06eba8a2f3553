"""Synthetic attributed flows of a report year's weeks (as pipeline.attribute writes them), made
partition by partition in bounded memory; users grow with flows (one per FLOWS_PER_USER).

Exporters: two PPPoE BRAS, one IPoE gateway, one mobile gateway; every day of every week of the
year (params.yaml `weeks`) plus the day before each week (what ingest reads). Per flow: a user of
the exporter's service (a few unattributed), on-net peers for 1 %, TCP/UDP/ICMP with realistic
server ports, time sorted. Also the mobile billing table user_week_usage reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.cache import cached_dir
from pipeline.config import local_day_bounds_ms, weeks_for_year

YEAR = 2024
SALT = "bench-salt"
FLOWS_PER_USER = 1000
EXPORTERS = (  # name, service, share of the flows
    ("bras01", "pppoe", 0.32),
    ("bras02", "pppoe", 0.32),
    ("ipoegw01", "ipoe", 0.24),
    ("mobile01", "mobile", 0.12),
)
SAMPLING = {"pppoe": 1024, "ipoe": 1024, "mobile": 512}
GEN_VERSION = 1
STR = pa.string()


def year_days(year: int) -> list[dt.date]:
    """Every day ingest reads for the year: each week's seven days and the day before."""
    days = {w.start + dt.timedelta(days=k) for w in weeks_for_year(year) for k in range(-1, 7)}
    return sorted(days)


def user_keys(count: int, service: str) -> pa.Array:
    """`count` 16-hex-digit keys of one service (deterministic; per user, not per flow)."""
    return pa.array(
        [hashlib.sha256(f"{service}/{i}".encode()).hexdigest()[:16] for i in range(count)], STR
    )


def _dict(indices: np.ndarray, values: pa.Array, null: np.ndarray | None = None) -> pa.Array:
    """A dictionary-encoded string column (cheap to build, read back as VARCHAR)."""
    idx = pa.array(indices.astype(np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(idx, values)


def partition(
    exporter: str, service: str, day: dt.date, n: int, users: int, keys: pa.Array, rng
) -> pa.Table:
    """n attributed flows of one exporter-day, sorted by flow_start_ms."""
    lo, hi = local_day_bounds_ms(day)
    start = np.sort(rng.integers(lo, hi, n)).astype(np.int64)
    v6 = rng.random(n) < 0.3
    proto = rng.choice(np.array([6, 17, 1], np.uint8), n, p=[0.7, 0.27, 0.03])
    server = np.array([443, 80, 443, 53, 8080, 993], np.uint16)[rng.integers(0, 6, n)]
    server = np.where(rng.random(n) < 0.85, server, rng.integers(1, 65536, n)).astype(np.uint16)
    ephemeral = rng.integers(1024, 65536, n).astype(np.uint16)
    user_sends = rng.random(n) < 0.35
    icmp = proto == 1
    src_port = np.where(icmp, 0, np.where(user_sends, ephemeral, server)).astype(np.uint16)
    dst_port = np.where(icmp, 0, np.where(user_sends, server, ephemeral)).astype(np.uint16)
    packets = rng.geometric(0.2, n).astype(np.uint64)
    octets = packets * rng.integers(40, 1500, n).astype(np.uint64)
    interval = SAMPLING[service]
    # heavy-tailed users: a few busy ones, most light (Zipf-like over the user index)
    user = np.minimum((rng.pareto(1.2, n) * users / 20).astype(np.int64), users - 1)
    attributed = service != "mobile"
    unattributed = (rng.random(n) < 0.04) | (not attributed)
    on_net = attributed & (rng.random(n) < 0.01) & ~unattributed
    peer = rng.integers(0, users, n)
    personal = (user % 9) != 0
    proto_name = pa.array(["pppoe", "ipoe"], STR)
    classes = pa.array(["personal", "enterprise"], STR)
    p_index = np.zeros(n) if service != "ipoe" else np.ones(n)
    directions = pa.array(["IN", "OUT"], STR)
    cols = {
        "exporter": _dict(np.zeros(n), pa.array([exporter], STR)),
        "observation_domain_id": pa.array(np.full(n, 1, np.uint32)),
        "flow_start_ms": pa.array(start),
        "flow_end_ms": pa.array(start + rng.exponential(8_000, n).astype(np.int64)),
        "ip_version": pa.array(np.where(v6, 6, 4).astype(np.uint8)),
        "protocol": pa.array(proto),
        "src_port": pa.array(src_port),
        "dst_port": pa.array(dst_port),
        "flow_direction": pa.array(np.where(user_sends, 0, 1).astype(np.uint8)),
        "octets": pa.array(octets),
        "packets": pa.array(packets),
        "sampling_interval": pa.array(np.full(n, interval, np.uint32)),
        "service": _dict(np.zeros(n), pa.array([service], STR)),
        "user_key": _dict(user, keys, unattributed),
        "user_protocol": _dict(p_index, proto_name, unattributed),
        "service_class": _dict(np.where(personal, 0, 1), classes, unattributed),
        "direction": _dict(np.where(user_sends, 0, 1), directions),
        "bytes_est": pa.array(octets.astype(np.float64) * interval),
        "packets_est": pa.array(packets.astype(np.float64) * interval),
        "peer_user_key": _dict(peer, keys, ~on_net),
        "peer_user_protocol": _dict(p_index, proto_name, ~on_net),
        "peer_service_class": _dict(np.where(peer % 9 != 0, 0, 1), classes, ~on_net),
    }
    return pa.table(cols)


def write_year(root: Path, flows: int, seed: int) -> None:
    """warehouse/attributed/date=*/exporter=*/flows.parquet and reference/mobile_usage.parquet."""
    rng = np.random.default_rng(seed)
    days = year_days(YEAR)
    users = max(100, flows // FLOWS_PER_USER)
    for name, service, share in EXPORTERS:
        keys = user_keys(users, f"{name}/{service}")
        per_day = int(flows * share) // len(days)
        for day in days:
            out = root / "warehouse" / "attributed" / f"date={day.isoformat()}" / f"exporter={name}"
            out.mkdir(parents=True)
            table = partition(name, service, day, per_day, users, keys, rng)
            pq.write_table(table, out / "flows.parquet", compression="zstd")
    mobile = max(10, users // 4)
    week = weeks_for_year(YEAR)[0]
    dates = np.repeat(np.array(week.days, dtype="datetime64[D]"), mobile)
    msisdn = np.tile(np.char.add("0807", np.arange(mobile).astype(str)), len(week.days))
    usage = pa.table(
        {
            "date": pa.array(dates),
            "msisdn": pa.array(msisdn, STR),
            "service_class": pa.array(
                np.where(np.arange(len(dates)) % 9, "personal", "enterprise")
            ),
            "uplink_bytes": pa.array(rng.integers(10**5, 10**8, len(dates))),
            "downlink_bytes": pa.array(rng.integers(10**6, 10**9, len(dates))),
        }
    )
    ref = root / "warehouse" / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    pq.write_table(usage, ref / "mobile_usage.parquet", compression="zstd")


def attributed_year(data_dir: Path, flows: int, seed: int) -> Path:
    """The cached data root (holds warehouse/) of (flows, seed)."""
    return cached_dir(
        data_dir, f"attributed-year-v{GEN_VERSION}-{flows}-seed{seed}", write_year, flows, seed
    )


def flow_count(root: Path) -> int:
    """Flows in the attributed partitions under `root` (from the Parquet footers)."""
    files = (root / "warehouse" / "attributed").glob("date=*/exporter=*/flows.parquet")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
