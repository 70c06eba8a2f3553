"""Seeded export streams the decoder benchmarks read: IPFIX (fixed and variable-length template),
NetFlow v9 and v5 datagrams, an nfcapd file, and bare records for the numpy.frombuffer floors.
Written once per (kind, records, seed) under the bench data directory."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from bench.cache import cached_dir
from pipeline.wire.ipfix.writer import RECORD_DTYPE_V4, encode_ipfix_stream
from pipeline.wire.netflow_v5 import V5_RECORD_DTYPE, encode_v5_datagrams
from pipeline.wire.netflow_v9 import V9_RECORD_DTYPE_V4, encode_v9_datagrams
from pipeline.wire.nfcapd.writer import NfcapdExporterInput, write_nfcapd

VAR_PER_SET = 20
SEED = 20240603
EXPORT_S = 1_717_600_000
UPTIME_MS = 86_400_000


def fixed_stream(n: int) -> bytes:
    """The simulator's format: IPv4 template, 1400-byte messages."""
    rng = np.random.default_rng(SEED)
    start = rng.integers(1_717_000_000_000, 1_717_600_000_000, n, dtype=np.int64)
    u = lambda hi, dt: rng.integers(0, hi, n, dtype=dt)  # noqa: E731
    flows = {
        "flow_start_ms": start,
        "flow_end_ms": start + 1000,
        "ip_version": np.full(n, 4, np.uint8),
        "src_v4": u(2**32, np.uint32),
        "dst_v4": u(2**32, np.uint32),
        "src_v6_hi": np.zeros(n, np.uint64),
        "src_v6_lo": np.zeros(n, np.uint64),
        "dst_v6_hi": np.zeros(n, np.uint64),
        "dst_v6_lo": np.zeros(n, np.uint64),
        "src_port": u(2**16, np.uint16),
        "dst_port": u(2**16, np.uint16),
        "protocol": u(256, np.uint8),
        "flow_direction": u(2, np.uint8),
        "octets": u(2**40, np.uint64),
        "packets": u(2**20, np.uint64),
    }
    buf, _ = encode_ipfix_stream(
        flows, observation_domain_id=1, sampling_interval=4096, export_time_s=1_717_600_000
    )
    return buf


# var-length template: src, dst v4, interfaceName (variable, 0..30 bytes), octets, packets, protocol
VAR_FIELDS = [(8, 4), (12, 4), (82, 65535), (1, 8), (2, 8), (4, 1)]


def var_stream(n: int) -> bytes:
    """Template message, then messages of one data set of VAR_PER_SET records (built with numpy)."""
    rng = np.random.default_rng(SEED)
    name_len = rng.integers(0, 31, n)
    rec_len = 4 + 4 + 1 + name_len + 8 + 8 + 1
    msgs = -(-n // VAR_PER_SET)
    msg_of = np.arange(n) // VAR_PER_SET
    msg_body = np.bincount(msg_of, weights=rec_len, minlength=msgs).astype(np.int64)
    msg_len = 20 + msg_body
    msg_start = np.concatenate(([0], np.cumsum(msg_len)[:-1]))
    within = np.cumsum(rec_len) - rec_len - (np.cumsum(msg_body) - msg_body)[msg_of]
    rec_start = msg_start[msg_of] + 20 + within
    out = np.zeros(int(msg_len.sum()), dtype=np.uint8)

    def put(offsets: np.ndarray, values: np.ndarray, width: int) -> None:
        raw = values.astype(f">u{width}").view(np.uint8).reshape(-1, width)
        out[offsets[:, None] + np.arange(width)] = raw

    put(msg_start, np.full(msgs, 10), 2)
    put(msg_start + 2, msg_len, 2)
    put(msg_start + 4, np.full(msgs, 1_717_600_000), 4)
    put(msg_start + 8, np.concatenate(([0], np.cumsum(np.bincount(msg_of))[:-1])), 4)
    put(msg_start + 12, np.ones(msgs), 4)
    put(msg_start + 16, np.full(msgs, 256), 2)
    put(msg_start + 18, msg_body + 4, 2)
    put(rec_start, rng.integers(0, 2**32, n), 4)
    put(rec_start + 4, rng.integers(0, 2**32, n), 4)
    put(rec_start + 8, name_len, 1)
    after = rec_start + 9 + name_len
    put(after, rng.integers(0, 2**40, n), 8)
    put(after + 8, rng.integers(0, 2**20, n), 8)
    put(after + 16, rng.integers(0, 256, n), 1)
    tset = struct.pack(">HH", 256, len(VAR_FIELDS)) + b"".join(
        struct.pack(">HH", *f) for f in VAR_FIELDS
    )
    body = struct.pack(">HH", 2, 4 + len(tset)) + tset
    return struct.pack(">HHIII", 10, 16 + len(body), 1_717_600_000, 0, 1) + body + out.tobytes()


def v4_flows(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """IPv4 flows of the last hour before the export, 32-bit counters (v5 carries those)."""
    rng = np.random.default_rng(seed)
    start = rng.integers(EXPORT_S * 1000 - 3_600_000, EXPORT_S * 1000 - 60_000, n)
    zeros = np.zeros(n, np.uint64)
    return {
        "flow_start_ms": start,
        "flow_end_ms": start + 1000,
        "ip_version": np.full(n, 4, np.uint8),
        "src_v4": rng.integers(0, 2**32, n, dtype=np.uint32),
        "dst_v4": rng.integers(0, 2**32, n, dtype=np.uint32),
        "src_v6_hi": zeros,
        "src_v6_lo": zeros,
        "dst_v6_hi": zeros,
        "dst_v6_lo": zeros,
        "src_port": rng.integers(0, 2**16, n, dtype=np.uint16),
        "dst_port": rng.integers(0, 2**16, n, dtype=np.uint16),
        "protocol": rng.integers(0, 256, n, dtype=np.uint8),
        "flow_direction": rng.integers(0, 2, n, dtype=np.uint8),
        "octets": rng.integers(40, 2**32, n, dtype=np.uint64),
        "packets": rng.integers(1, 2**20, n, dtype=np.uint64),
    }


def mixed_flows(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """n random flows, IPv4 (70 %) and IPv6 interleaved (variable-size nfcapd records)."""
    rng = np.random.default_rng(seed)
    start = rng.integers(1_717_000_000_000, 1_717_003_600_000, n, dtype=np.int64)
    u = lambda hi, dt: rng.integers(0, hi, n, dtype=dt)  # noqa: E731
    return {
        "flow_start_ms": start,
        "flow_end_ms": start + u(60_000, np.int64),
        "ip_version": np.where(rng.random(n) < 0.7, 4, 6).astype(np.uint8),
        "src_v4": u(2**32, np.uint32),
        "dst_v4": u(2**32, np.uint32),
        "src_v6_hi": u(2**63, np.uint64),
        "src_v6_lo": u(2**63, np.uint64),
        "dst_v6_hi": u(2**63, np.uint64),
        "dst_v6_lo": u(2**63, np.uint64),
        "src_port": u(2**16, np.uint16),
        "dst_port": u(2**16, np.uint16),
        "protocol": rng.choice(np.array([6, 17, 1, 58, 47], np.uint8), n),
        "flow_direction": u(2, np.uint8),
        "octets": u(2**40, np.uint64),
        "packets": u(2**20, np.uint64),
    }


def write_datagrams(path: Path, grams: list[bytes]) -> None:
    """Datagrams back to back in `path`, their (starts, lengths) in `path`.index.npy."""
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    path.write_bytes(b"".join(grams))
    np.save(f"{path}.index.npy", np.stack([starts, lengths]))


def bare_records(path: Path, dtype: np.dtype, n: int) -> None:
    """n records of `dtype` back to back (random bytes): the input of a frombuffer floor."""
    rng = np.random.default_rng(SEED)
    path.write_bytes(rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8).tobytes())


def _write_streams(root: Path, records: int) -> None:
    (root / "ipfix-fixed.bin").write_bytes(fixed_stream(records))
    (root / "ipfix-var.bin").write_bytes(var_stream(max(1, records // 4)))
    v9, _ = encode_v9_datagrams(
        v4_flows(records), source_id=1, sampling_interval=4096, export_time_s=EXPORT_S,
        sys_uptime_ms=UPTIME_MS,
    )  # fmt: skip
    write_datagrams(root / "v9.bin", v9)
    v5, _ = encode_v5_datagrams(
        v4_flows(records), engine_type=0, engine_id=1, sampling_interval=4096,
        export_time_s=EXPORT_S, sys_uptime_ms=UPTIME_MS,
    )  # fmt: skip
    write_datagrams(root / "v5.bin", v5)
    for name, dtype in FLOOR_DTYPES.items():
        bare_records(root / f"floor-{name}.bin", dtype, records)


FLOOR_DTYPES = {"ipfix": RECORD_DTYPE_V4, "v9": V9_RECORD_DTYPE_V4, "v5": V5_RECORD_DTYPE}


def decoder_streams(data_dir: Path, records: int) -> Path:
    """The cached folder of decoder inputs for `records` flows."""
    return cached_dir(data_dir, f"streams-v1-{records}", _write_streams, records)


def _write_nfcapd(root: Path, records: int) -> None:
    exporters = [NfcapdExporterInput("192.0.2.1", 1, 1024, mixed_flows(records))]
    write_nfcapd(root / "nfcapd.bench", exporters, created_ms=1_717_003_600_000)


def nfcapd_file(data_dir: Path, records: int) -> Path:
    """The cached nfcapd file of `records` mixed flows (written by write_nfcapd)."""
    return cached_dir(data_dir, f"nfcapd-v1-{records}", _write_nfcapd, records) / "nfcapd.bench"
