"""NetFlow v5 datagrams → flow columns: one structured dtype over all 48-byte records at once.

Header (24 bytes): version, count, sysUptime ms, unix secs, unix nsecs, flow sequence, engine type,
engine id, sampling (top 2 bits mode, low 14 bits interval; 0 = unknown → exporter default, else
the records are quarantined "sampling rate missing"). Stream domain = engine_type << 8 | engine_id.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.writer import check_flow_columns, framed
from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats, QuarantineEntry
from pipeline.wire.streams import restart_flags, sequence_stats
from pipeline.wire.uptime import epoch_to_uptime_ms, uptime_to_epoch_ms

V5_HEADER_DTYPE = np.dtype(
    [
        ("version", ">u2"),
        ("count", ">u2"),
        ("sys_uptime_ms", ">u4"),
        ("unix_secs", ">u4"),
        ("unix_nsecs", ">u4"),
        ("flow_sequence", ">u4"),
        ("engine_type", "u1"),
        ("engine_id", "u1"),
        ("sampling", ">u2"),
    ]
)
V5_RECORD_DTYPE = np.dtype(
    [
        ("src_v4", ">u4"),
        ("dst_v4", ">u4"),
        ("next_hop", ">u4"),
        ("input_if", ">u2"),
        ("output_if", ">u2"),
        ("packets", ">u4"),
        ("octets", ">u4"),
        ("first_uptime_ms", ">u4"),
        ("last_uptime_ms", ">u4"),
        ("src_port", ">u2"),
        ("dst_port", ">u2"),
        ("pad1", "u1"),
        ("tcp_flags", "u1"),
        ("protocol", "u1"),
        ("tos", "u1"),
        ("src_as", ">u2"),
        ("dst_as", ">u2"),
        ("src_mask", "u1"),
        ("dst_mask", "u1"),
        ("pad2", ">u2"),
    ]
)
assert V5_HEADER_DTYPE.itemsize == C.V5_HEADER_BYTES
assert V5_RECORD_DTYPE.itemsize == C.V5_RECORD_BYTES


def decode_v5(decoder, payload: bytes, frames, source: str) -> DecodeResult | None:
    """Decode the v5 datagrams `frames.v5` (count already checked against length), or None."""
    idx = frames.v5
    if idx.size == 0:
        return None
    stats = DecodeStats(messages=len(idx))
    u8 = np.frombuffer(payload, dtype=np.uint8)
    starts = frames.starts[idx]
    headers = np.ascontiguousarray(u8[starts[:, None] + np.arange(C.V5_HEADER_BYTES)])
    hdr = headers.view(V5_HEADER_DTYPE).ravel()
    count = hdr["count"].astype(np.int64)
    uptime = hdr["sys_uptime_ms"].astype(np.int64)
    export_ms = hdr["unix_secs"].astype(np.int64) * 1000 + hdr["unix_nsecs"] // 1_000_000
    stream = (C.NETFLOW_V5_VERSION << 32) | (
        hdr["engine_type"].astype(np.int64) << 8 | hdr["engine_id"].astype(np.int64)
    )
    seq = hdr["flow_sequence"].astype(np.int64)
    restart = restart_flags(decoder, stream, seq, uptime, export_ms)
    sequence_stats(decoder, stream, seq, count, restart, stats)

    interval = (hdr["sampling"] & C.V5_SAMPLING_INTERVAL_MASK).astype(np.int64)
    default = decoder.default_sampling_interval or 0
    if default:
        stats.records_default_sampling = int(count[interval == 0].sum())
    interval = np.where(interval == 0, default, interval)
    quarantine = []
    for i in np.flatnonzero((interval == 0) & (count > 0)).tolist():  # loop over datagrams
        at = int(starts[i]) + C.V5_HEADER_BYTES
        size = int(count[i]) * C.V5_RECORD_BYTES
        quarantine.append(
            QuarantineEntry(
                source,
                int(frames.file_offsets[idx[i]]) + C.V5_HEADER_BYTES,
                size,
                C.REASON_SAMPLING_MISSING,
                payload[at : at + size],
                int(count[i]),
                int(stream[i] & 0xFFFFFFFF),
            )
        )
    good = np.flatnonzero((interval > 0) & (count > 0))
    mv = memoryview(payload)
    body = starts[good] + C.V5_HEADER_BYTES
    ends = body + count[good] * C.V5_RECORD_BYTES
    joined = b"".join(map(mv.__getitem__, map(slice, body.tolist(), ends.tolist())))
    rec = np.frombuffer(joined, dtype=V5_RECORD_DTYPE)
    of = np.repeat(good, count[good])  # datagram (within idx) of each record
    n = len(rec)
    rec_export, rec_uptime = export_ms[of], uptime[of]
    columns = {
        "observation_domain_id": (stream[of] & 0xFFFFFFFF).astype(np.uint32),
        "flow_start_ms": uptime_to_epoch_ms(rec_export, rec_uptime, rec["first_uptime_ms"]),
        "flow_end_ms": uptime_to_epoch_ms(rec_export, rec_uptime, rec["last_uptime_ms"]),
        "ip_version": np.full(n, 4, np.uint8),
        "src_v4": rec["src_v4"].astype(np.uint32),
        "dst_v4": rec["dst_v4"].astype(np.uint32),
        "protocol": rec["protocol"],
        "src_port": rec["src_port"].astype(np.uint16),
        "dst_port": rec["dst_port"].astype(np.uint16),
        "octets": rec["octets"].astype(np.uint64),
        "packets": rec["packets"].astype(np.uint64),
        "sampling_interval": interval[of].astype(np.uint32),
    }
    arrays = [
        pa.array(columns[f.name], type=f.type) if f.name in columns else pa.nulls(n, f.type)
        for f in FLOW_SCHEMA
    ]
    flows = pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)
    if n:
        stats.records_by_version[C.NETFLOW_V5_VERSION] = n
        ns, counts = np.unique(columns["sampling_interval"], return_counts=True)
        stats.sampling_intervals = {int(k): int(c) for k, c in zip(ns, counts, strict=True)}
    return DecodeResult(flows, quarantine, stats)


# ------------------------------------------------------------------------------ writer
def encode_v5_datagrams(
    flows: dict[str, np.ndarray],
    *,
    engine_type: int = 0,
    engine_id: int = 0,
    sampling_interval: int,
    export_time_s: int,
    sys_uptime_ms: int,
    sequence_start: int = 0,
) -> tuple[list[bytes], int]:
    """IPv4 flows as NetFlow v5 datagrams of up to 30 records; returns (datagrams, next flow
    sequence). The header's sampling field is mode 01 (packet interval) | interval."""
    n = check_flow_columns(flows)
    if not (np.asarray(flows["ip_version"]) == 4).all():
        raise ValueError("NetFlow v5 carries IPv4 flows only")
    if not 1 <= sampling_interval <= C.V5_SAMPLING_INTERVAL_MASK:
        raise ValueError(f"sampling_interval={sampling_interval} does not fit in 14 bits")
    if n and max(np.max(flows["octets"]), np.max(flows["packets"])) > 2**32 - 1:
        raise ValueError("v5 octet and packet counters are 32-bit")
    rec = np.zeros(n, dtype=V5_RECORD_DTYPE)
    for name in ("src_v4", "dst_v4", "src_port", "dst_port", "protocol", "octets", "packets"):
        rec[name] = np.asarray(flows[name])
    rec["first_uptime_ms"] = epoch_to_uptime_ms(
        flows["flow_start_ms"], export_time_s, sys_uptime_ms
    )
    rec["last_uptime_ms"] = epoch_to_uptime_ms(flows["flow_end_ms"], export_time_s, sys_uptime_ms)
    per = C.V5_RECORDS_PER_DATAGRAM
    k = max(1, -(-n // per))
    sizes = np.full(k, per, dtype=np.int64)
    sizes[-1] = n - per * (k - 1)
    headers = np.empty(k, dtype=V5_HEADER_DTYPE)
    headers["version"] = C.NETFLOW_V5_VERSION
    headers["count"] = sizes
    headers["sys_uptime_ms"] = sys_uptime_ms % 2**32
    headers["unix_secs"] = export_time_s
    headers["unix_nsecs"] = 0
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    headers["flow_sequence"] = (sequence_start + offsets) % 2**32
    headers["engine_type"] = engine_type
    headers["engine_id"] = engine_id
    headers["sampling"] = (1 << C.V5_SAMPLING_MODE_SHIFT) | sampling_interval
    matrix = rec.view(np.uint8).reshape(n, C.V5_RECORD_BYTES)
    return framed(headers, matrix, per), (sequence_start + n) % 2**32
