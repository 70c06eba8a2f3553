"""Encode flow arrays as NetFlow v9 (RFC 3954) export datagrams, vectorised.

Used by tests and the simulator. Flows use ipfix_writer.FLOW_COLUMNS. Flow times are written as
sysUptime-relative FIRST/LAST_SWITCHED: value = sys_uptime_ms - (export_time_s*1000 - t) mod 2^32.
"""

from __future__ import annotations

import struct

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.writer import check_flow_columns, framed
from pipeline.wire.uptime import epoch_to_uptime_ms

V9_TEMPLATE_ID_V4 = 256
V9_TEMPLATE_ID_V6 = 257
V9_TEMPLATE_ID_SAMPLER = 258


def _v9_fields(src_ie: int, dst_ie: int, address_bytes: int) -> tuple[tuple[int, int], ...]:
    """The writer's v9 data template (field type, length) for one IP version."""
    return (
        (C.IE_FLOW_START_SYS_UP_TIME, 4),
        (C.IE_FLOW_END_SYS_UP_TIME, 4),
        (src_ie, address_bytes),
        (dst_ie, address_bytes),
        (C.IE_SOURCE_TRANSPORT_PORT, 2),
        (C.IE_DESTINATION_TRANSPORT_PORT, 2),
        (C.IE_PROTOCOL_IDENTIFIER, 1),
        (C.IE_FLOW_DIRECTION, 1),
        (C.IE_OCTET_DELTA_COUNT, 8),
        (C.IE_PACKET_DELTA_COUNT, 8),
        (C.IE_SAMPLER_ID, 2),
    )


V9_FIELDS_V4 = _v9_fields(C.IE_SOURCE_IPV4_ADDRESS, C.IE_DESTINATION_IPV4_ADDRESS, 4)
V9_FIELDS_V6 = _v9_fields(C.IE_SOURCE_IPV6_ADDRESS, C.IE_DESTINATION_IPV6_ADDRESS, 16)
V9_SAMPLER_SCOPE: tuple[tuple[int, int], ...] = ((C.V9_SCOPE_SYSTEM, 4),)
V9_SAMPLER_FIELDS: tuple[tuple[int, int], ...] = (
    (C.IE_SAMPLER_ID, 2),
    (C.IE_SAMPLER_MODE, 1),
    (C.IE_SAMPLER_RANDOM_INTERVAL, 4),
)
SAMPLER_MODE_RANDOM = 2

_TIMES = [("first", ">u4"), ("last", ">u4")]
_TAIL = [
    ("src_port", ">u2"),
    ("dst_port", ">u2"),
    ("protocol", "u1"),
    ("flow_direction", "u1"),
    ("octets", ">u8"),
    ("packets", ">u8"),
    ("sampler_id", ">u2"),
]
V9_RECORD_DTYPE_V4 = np.dtype([*_TIMES, ("src_v4", ">u4"), ("dst_v4", ">u4"), *_TAIL])
V9_RECORD_DTYPE_V6 = np.dtype(
    [
        *_TIMES,
        ("src_v6_hi", ">u8"),
        ("src_v6_lo", ">u8"),
        ("dst_v6_hi", ">u8"),
        ("dst_v6_lo", ">u8"),
        *_TAIL,
    ]
)
assert V9_RECORD_DTYPE_V4.itemsize == sum(n for _, n in V9_FIELDS_V4)
assert V9_RECORD_DTYPE_V6.itemsize == sum(n for _, n in V9_FIELDS_V6)

V9_HEADER_DTYPE = np.dtype(
    [
        ("version", ">u2"),
        ("count", ">u2"),
        ("uptime", ">u4"),
        ("secs", ">u4"),
        ("seq", ">u4"),
        ("source_id", ">u4"),
        ("set_id", ">u2"),
        ("set_length", ">u2"),
    ]
)


def _v9_template_datagram(
    *, source_id: int, sampler_id: int, sampling_interval: int, secs: int, uptime: int, seq: int
) -> bytes:
    """Templates (v4, v6), the sampler options template and its one record (4 records)."""

    def fields(pairs: tuple[tuple[int, int], ...]) -> bytes:
        return b"".join(struct.pack(">HH", t, n) for t, n in pairs)

    templates = b"".join(
        struct.pack(">HH", tid, len(f)) + fields(f)
        for tid, f in ((V9_TEMPLATE_ID_V4, V9_FIELDS_V4), (V9_TEMPLATE_ID_V6, V9_FIELDS_V6))
    )
    options = C.V9_OPTIONS_TEMPLATE_HEADER.pack(
        V9_TEMPLATE_ID_SAMPLER, 4 * len(V9_SAMPLER_SCOPE), 4 * len(V9_SAMPLER_FIELDS)
    )
    options += fields(V9_SAMPLER_SCOPE + V9_SAMPLER_FIELDS)
    options += b"\x00" * (-len(options) % 4)
    record = struct.pack(">IHBI", source_id, sampler_id, SAMPLER_MODE_RANDOM, sampling_interval)
    record += b"\x00" * (-len(record) % 4)
    body = b"".join(
        struct.pack(">HH", set_id, 4 + len(b)) + b
        for set_id, b in (
            (C.V9_TEMPLATE_FLOWSET_ID, templates),
            (C.V9_OPTIONS_TEMPLATE_FLOWSET_ID, options),
            (V9_TEMPLATE_ID_SAMPLER, record),
        )
    )
    header = C.V9_HEADER.pack(C.NETFLOW_V9_VERSION, 4, uptime, secs, seq % 2**32, source_id)
    return header + body


def encode_v9_datagrams(
    flows: dict[str, np.ndarray],
    *,
    source_id: int,
    sampling_interval: int,
    sampler_id: int = 1,
    export_time_s: int,
    sys_uptime_ms: int,
    sequence_start: int = 0,
    max_datagram_bytes: int = 1400,
    template_refresh_datagrams: int = 100,
) -> tuple[list[bytes], int]:
    """Flows as NetFlow v9 datagrams: templates + sampler options first, refreshed every
    `template_refresh_datagrams` data datagrams; returns (datagrams, next sequence number)."""
    check_flow_columns(flows)
    data_header = C.V9_HEADER_BYTES + C.SET_HEADER_BYTES
    if not data_header + V9_RECORD_DTYPE_V6.itemsize <= max_datagram_bytes <= 65535:
        raise ValueError(f"max_datagram_bytes={max_datagram_bytes} cannot hold one IPv6 record")
    if sampling_interval < 1 or template_refresh_datagrams < 1:
        raise ValueError("sampling_interval and template_refresh_datagrams must be >= 1")
    version = np.asarray(flows["ip_version"])
    if not np.isin(version, (4, 6)).all():
        raise ValueError("ip_version must be 4 or 6")
    first = epoch_to_uptime_ms(flows["flow_start_ms"], export_time_s, sys_uptime_ms)
    last = epoch_to_uptime_ms(flows["flow_end_ms"], export_time_s, sys_uptime_ms)
    per_version = []  # (template id, record matrix, records per datagram), v4 first
    layouts = (
        (4, V9_RECORD_DTYPE_V4, V9_TEMPLATE_ID_V4),
        (6, V9_RECORD_DTYPE_V6, V9_TEMPLATE_ID_V6),
    )
    for v, dtype, tid in layouts:
        rows = np.flatnonzero(version == v)
        rec = np.empty(len(rows), dtype=dtype)
        for name in dtype.names:
            if name == "first":
                rec[name] = first[rows]
            elif name == "last":
                rec[name] = last[rows]
            elif name == "sampler_id":
                rec[name] = sampler_id
            else:
                rec[name] = np.asarray(flows[name])[rows]
        matrix = rec.view(np.uint8).reshape(len(rows), dtype.itemsize)
        per_version.append((tid, matrix, (max_datagram_bytes - data_header) // dtype.itemsize))
    counts = [-(-len(m) // k) for _, m, k in per_version]
    total = sum(counts)
    common = dict(secs=export_time_s, uptime=sys_uptime_ms % 2**32)
    out: list[bytes] = []
    seq = sequence_start
    for block in range(0, max(total, 1), template_refresh_datagrams):  # loop over refreshes
        out.append(
            _v9_template_datagram(
                source_id=source_id, sampler_id=sampler_id,
                sampling_interval=sampling_interval, seq=seq, **common,
            )
        )  # fmt: skip
        seq += 1
        block_end = min(block + template_refresh_datagrams, total)
        first_dg = 0
        for (tid, matrix, per), count in zip(per_version, counts, strict=True):
            base = first_dg
            lo, hi = max(block, base), min(block_end, base + count)
            first_dg += count
            if lo >= hi:
                continue
            recs = matrix[(lo - base) * per : (hi - base) * per]
            k = hi - lo
            sizes = np.full(k, per, dtype=np.int64)
            sizes[-1] = len(recs) - per * (k - 1)
            headers = np.empty(k, dtype=V9_HEADER_DTYPE)
            headers["version"] = C.NETFLOW_V9_VERSION
            headers["count"] = sizes
            headers["uptime"] = common["uptime"]
            headers["secs"] = export_time_s
            headers["seq"] = (seq + np.arange(k)) % 2**32
            headers["source_id"] = source_id
            headers["set_id"] = tid
            headers["set_length"] = C.SET_HEADER_BYTES + sizes * matrix.shape[1]
            out += framed(headers, recs, per)
            seq += k
    return out, seq % 2**32
