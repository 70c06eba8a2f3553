"""NetFlow v9 (RFC 3954): the layout of its template flowsets, and a vectorised datagram writer.

Reading: `parse_v9_templates` / `parse_v9_options_templates` turn a (options) template flowset into
template records for the decoder (`pipeline.wire.ipfix.sets`); v9 data flowsets and the rest of the
packet go through the IPFIX machinery. Writing (tests and the simulator): flows use
ipfix.writer.FLOW_COLUMNS; flow times are written as sysUptime-relative FIRST/LAST_SWITCHED:
value = sys_uptime_ms - (export_time_s*1000 - t) mod 2^32.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.writer import (
    ADDRESS_DTYPE_V4,
    ADDRESS_DTYPE_V6,
    PORTS_TO_COUNTERS_DTYPE,
    SET_HEADER_DTYPE,
    check_flow_columns,
    framed,
    header_rows,
    ip_versions,
    record_matrix,
)
from pipeline.wire.uptime import epoch_to_uptime_ms

V9_TEMPLATE_ID_V4 = 256
V9_TEMPLATE_ID_V6 = 257
V9_TEMPLATE_ID_SAMPLER = 258


_UPTIME_FIELDS = ((C.IE_FLOW_START_SYS_UP_TIME, 4), (C.IE_FLOW_END_SYS_UP_TIME, 4))
_SAMPLER_FIELD = (C.IE_SAMPLER_ID, 2)
V9_FIELDS_V4 = (*_UPTIME_FIELDS, *C.ADDRESS_FIELDS_V4, *C.PORTS_TO_COUNTERS, _SAMPLER_FIELD)
V9_FIELDS_V6 = (*_UPTIME_FIELDS, *C.ADDRESS_FIELDS_V6, *C.PORTS_TO_COUNTERS, _SAMPLER_FIELD)
V9_SAMPLER_SCOPE: tuple[tuple[int, int], ...] = ((C.V9_SCOPE_SYSTEM, 4),)
V9_SAMPLER_FIELDS: tuple[tuple[int, int], ...] = (
    (C.IE_SAMPLER_ID, 2),
    (C.IE_SAMPLER_MODE, 1),
    (C.IE_SAMPLER_RANDOM_INTERVAL, 4),
)
SAMPLER_MODE_RANDOM = 2

_TIMES = [("first", ">u4"), ("last", ">u4")]
_SAMPLER = [("sampler_id", ">u2")]
V9_RECORD_DTYPE_V4 = np.dtype([*_TIMES, *ADDRESS_DTYPE_V4, *PORTS_TO_COUNTERS_DTYPE, *_SAMPLER])
V9_RECORD_DTYPE_V6 = np.dtype([*_TIMES, *ADDRESS_DTYPE_V6, *PORTS_TO_COUNTERS_DTYPE, *_SAMPLER])
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
        *SET_HEADER_DTYPE,
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
    version = ip_versions(flows)
    first = epoch_to_uptime_ms(flows["flow_start_ms"], export_time_s, sys_uptime_ms)
    last = epoch_to_uptime_ms(flows["flow_end_ms"], export_time_s, sys_uptime_ms)
    per_version = []  # (template id, record matrix, records per datagram), v4 first
    layouts = (
        (4, V9_RECORD_DTYPE_V4, V9_TEMPLATE_ID_V4),
        (6, V9_RECORD_DTYPE_V6, V9_TEMPLATE_ID_V6),
    )
    for v, dtype, tid in layouts:
        rows = np.flatnonzero(version == v)
        matrix = record_matrix(flows, rows, dtype, first=first, last=last, sampler_id=sampler_id)
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
            headers = header_rows(
                V9_HEADER_DTYPE,
                k,
                version=C.NETFLOW_V9_VERSION,
                count=sizes,
                uptime=common["uptime"],
                secs=export_time_s,
                seq=(seq + np.arange(k)) % 2**32,
                source_id=source_id,
                set_id=tid,
                set_length=C.SET_HEADER_BYTES + sizes * matrix.shape[1],
            )
            out += framed(headers, recs, per)
            seq += k
    return out, seq % 2**32


# ------------------------------------------------------------------------------ template layout
@dataclass(frozen=True)
class V9TemplateRecord:
    """One (options) template record of a v9 template flowset, as the decoder defines it."""

    template_id: int
    fields: list[tuple[int, int]]  # (field type or -1 for vendor-specific / scope, length)
    scope_count: int  # > 0 for options templates (scope fields come first)
    start: int  # byte offsets of the record in the buffer
    end: int


def _field_pairs(buf: bytes, pos: int, count: int) -> list[tuple[int, int]]:
    """`count` (type, length) pairs at `pos`; vendor-specific types (≥ 32768) become -1."""
    pairs = np.frombuffer(buf, dtype=">u2", count=2 * count, offset=pos).reshape(-1, 2)
    return [(-1 if t & C.V9_VENDOR_BIT else t, n) for t, n in pairs.tolist()]


def parse_v9_templates(buf: bytes, pos: int, end: int) -> tuple[list[V9TemplateRecord], int | None]:
    """Template records of the flowset body buf[pos:end]: template id, field count, (type,
    length) pairs; v9 has no withdrawals. Returns the records and the offset of a broken record
    (the rest of the flowset is then a bad template), or None; an all-zero rest is padding."""
    records: list[V9TemplateRecord] = []
    while end - pos >= 4 and any(buf[pos:end]):
        tid, count = C.SET_HEADER.unpack_from(buf, pos)
        fields_at = pos + 4
        if count == 0 or end - fields_at < 4 * count:
            return records, pos
        next_pos = fields_at + 4 * count
        fields = _field_pairs(buf, fields_at, count)
        records.append(V9TemplateRecord(tid, fields, 0, pos, next_pos))
        pos = next_pos
    return records, None


def parse_v9_options_templates(
    buf: bytes, pos: int, end: int
) -> tuple[list[V9TemplateRecord], int | None]:
    """Options template records of the flowset body buf[pos:end]: id, scope length and option
    length in BYTES, then the fields; scope fields (system, interface, line card, cache,
    template) become -1, skipped by length. Returns as parse_v9_templates."""
    header = C.V9_OPTIONS_TEMPLATE_HEADER
    records: list[V9TemplateRecord] = []
    while end - pos >= header.size and any(buf[pos:end]):
        tid, scope_len, option_len = header.unpack_from(buf, pos)
        fields_at = pos + header.size
        if (
            scope_len == 0
            or scope_len % 4
            or option_len % 4
            or end - fields_at < scope_len + option_len
        ):
            return records, pos
        n_scope = scope_len // 4
        fields = [(-1, n) for _, n in _field_pairs(buf, fields_at, n_scope)]
        fields += _field_pairs(buf, fields_at + scope_len, option_len // 4)
        next_pos = fields_at + scope_len + option_len
        records.append(V9TemplateRecord(tid, fields, n_scope, pos, next_pos))
        pos = next_pos
    return records, None
