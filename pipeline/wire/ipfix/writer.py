"""Encode flow arrays as RFC 7011 IPFIX messages (the simulated ISP's exporter), vectorised."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from pipeline.atomic import write_bytes_atomic
from pipeline.wire.ipfix.constants import (
    FIELDS_V4,
    FIELDS_V6,
    IPFIX_VERSION,
    MAX_MESSAGE_BYTES,
    MESSAGE_HEADER,
    MESSAGE_HEADER_BYTES,
    OPTIONS_TEMPLATE_SET_ID,
    SAMPLING_OPTIONS_FIELDS,
    SAMPLING_OPTIONS_SCOPE,
    SET_HEADER,
    SET_HEADER_BYTES,
    TEMPLATE_ID_SAMPLING_OPTIONS,
    TEMPLATE_ID_V4,
    TEMPLATE_ID_V6,
    TEMPLATE_SET_ID,
)

FLOW_COLUMNS = (
    "flow_start_ms",
    "flow_end_ms",
    "ip_version",
    "src_v4",
    "dst_v4",
    "src_v6_hi",
    "src_v6_lo",
    "dst_v6_hi",
    "dst_v6_lo",
    "src_port",
    "dst_port",
    "protocol",
    "flow_direction",
    "octets",
    "packets",
)

# Record layouts of FIELDS_V4 / FIELDS_V6 as packed big-endian structured dtypes; the address and
# PORTS_TO_COUNTERS parts are shared with the NetFlow v9 writer.
ADDRESS_DTYPE_V4 = [("src_v4", ">u4"), ("dst_v4", ">u4")]
ADDRESS_DTYPE_V6 = [
    ("src_v6_hi", ">u8"),
    ("src_v6_lo", ">u8"),
    ("dst_v6_hi", ">u8"),
    ("dst_v6_lo", ">u8"),
]
PORTS_TO_COUNTERS_DTYPE = [
    ("src_port", ">u2"),
    ("dst_port", ">u2"),
    ("protocol", "u1"),
    ("flow_direction", "u1"),
    ("octets", ">u8"),
    ("packets", ">u8"),
]
_MS_TIMES_DTYPE = [("flow_start_ms", ">u8"), ("flow_end_ms", ">u8")]
_SELECTOR_DTYPE = [("selector_id", ">u4")]
RECORD_DTYPE_V4 = np.dtype(
    [*_MS_TIMES_DTYPE, *ADDRESS_DTYPE_V4, *PORTS_TO_COUNTERS_DTYPE, *_SELECTOR_DTYPE]
)
RECORD_DTYPE_V6 = np.dtype(
    [*_MS_TIMES_DTYPE, *ADDRESS_DTYPE_V6, *PORTS_TO_COUNTERS_DTYPE, *_SELECTOR_DTYPE]
)
SET_HEADER_DTYPE = [("set_id", ">u2"), ("set_length", ">u2")]
_DATA_MESSAGE_HEADER_DTYPE = np.dtype(
    [
        ("version", ">u2"),
        ("length", ">u2"),
        ("export", ">u4"),
        ("seq", ">u4"),
        ("domain", ">u4"),
        *SET_HEADER_DTYPE,
    ]
)
assert RECORD_DTYPE_V4.itemsize == sum(n for _, n in FIELDS_V4)
assert RECORD_DTYPE_V6.itemsize == sum(n for _, n in FIELDS_V6)


def check_flow_columns(flows: dict[str, np.ndarray]) -> int:
    """Number of flows; raises if the FLOW_COLUMNS arrays differ in length."""
    n = len(flows["ip_version"])
    if any(len(flows[c]) != n for c in FLOW_COLUMNS):
        raise ValueError("flow arrays differ in length")
    return n


def ip_versions(flows: dict[str, np.ndarray]) -> np.ndarray:
    """The ip_version column, after check_flow_columns; raises unless every flow is 4 or 6."""
    check_flow_columns(flows)
    version = np.asarray(flows["ip_version"])
    if not np.isin(version, (4, 6)).all():
        raise ValueError("ip_version must be 4 or 6")
    return version


def record_matrix(
    flows: dict[str, np.ndarray], rows: np.ndarray, dtype: np.dtype, **columns
) -> np.ndarray:
    """Flows `rows` as an (n, record length) uint8 matrix of big-endian `dtype` records.

    Each field comes from `columns` when named there (an array over all flows, or one value for
    every record), else from the flow column of that name.
    """
    out = np.empty(len(rows), dtype=dtype)
    for name in dtype.names:
        value = columns[name] if name in columns else flows[name]
        out[name] = value if np.isscalar(value) else np.asarray(value)[rows]
    return out.view(np.uint8).reshape(len(rows), dtype.itemsize)


def header_rows(dtype: np.dtype, n: int, **values) -> np.ndarray:
    """`n` header rows of a structured dtype, each field set from `values` (scalar or array)."""
    rows = np.empty(n, dtype=dtype)
    for name in dtype.names:
        rows[name] = values[name]
    return rows


_DATA_HEADER_BYTES = MESSAGE_HEADER_BYTES + SET_HEADER_BYTES


def _template_record(template_id: int, fields: tuple[tuple[int, int], ...]) -> bytes:
    """One template record: id, field count, then (IE id, length) pairs."""
    body = b"".join(struct.pack(">HH", ie, length) for ie, length in fields)
    return struct.pack(">HH", template_id, len(fields)) + body


def _set(set_id: int, body: bytes) -> bytes:
    return SET_HEADER.pack(set_id, SET_HEADER_BYTES + len(body)) + body


def template_message(
    *,
    observation_domain_id: int,
    sampling_interval: int,
    selector_id: int,
    export_time_s: int,
    sequence: int,
    template_ids: tuple[int, int] = (TEMPLATE_ID_V4, TEMPLATE_ID_V6),
) -> bytes:
    """Message with both data templates (ids for IPv4, IPv6), the sampling options template and its
    one data record."""
    templates = _set(
        TEMPLATE_SET_ID,
        _template_record(template_ids[0], FIELDS_V4) + _template_record(template_ids[1], FIELDS_V6),
    )
    option_fields = SAMPLING_OPTIONS_SCOPE + SAMPLING_OPTIONS_FIELDS
    options_template = _set(
        OPTIONS_TEMPLATE_SET_ID,
        struct.pack(">HHH", TEMPLATE_ID_SAMPLING_OPTIONS, len(option_fields), 1)
        + b"".join(struct.pack(">HH", ie, length) for ie, length in option_fields),
    )
    # 1 of N packets: samplingPacketInterval = 1, samplingPacketSpace = N - 1 (RFC 5477).
    options_data = _set(
        TEMPLATE_ID_SAMPLING_OPTIONS, struct.pack(">III", selector_id, 1, sampling_interval - 1)
    )
    body = templates + options_template + options_data
    header = MESSAGE_HEADER.pack(
        IPFIX_VERSION,
        MESSAGE_HEADER_BYTES + len(body),
        export_time_s,
        sequence % 2**32,
        observation_domain_id,
    )
    return header + body


def _data_messages(
    records: np.ndarray, *, set_id: int, per_message: int, sequence: int, domain: int, export_s: int
) -> bytes:
    """Data messages of up to `per_message` records each; headers built for all messages at once."""
    n, record_bytes = records.shape
    if n == 0:
        return b""
    n_msgs = -(-n // per_message)
    counts = np.full(n_msgs, per_message, dtype=np.int64)
    counts[-1] = n - per_message * (n_msgs - 1)
    seqs = (sequence + np.concatenate(([0], np.cumsum(counts)[:-1]))) % 2**32
    headers = header_rows(
        _DATA_MESSAGE_HEADER_DTYPE,
        n_msgs,
        version=IPFIX_VERSION,
        length=_DATA_HEADER_BYTES + counts * record_bytes,
        export=export_s,
        seq=seqs,
        domain=domain,
        set_id=set_id,
        set_length=SET_HEADER_BYTES + counts * record_bytes,
    )
    return b"".join(framed(headers, records, per_message))


def framed(header_rows: np.ndarray, records: np.ndarray, per: int) -> list[bytes]:
    """Messages (or datagrams) = header row i + records[i*per:(i+1)*per] (records: one row of
    bytes each); the full ones are built as one matrix, the last may hold fewer records."""
    n, width = records.shape
    n_full = n // per
    head = header_rows.view(np.uint8).reshape(len(header_rows), -1)
    full = np.concatenate(
        [head[:n_full], records[: n_full * per].reshape(n_full, per * width)], axis=1
    )
    out = [row.tobytes() for row in full]  # loop over messages
    if n_full < len(header_rows):
        out.append(head[-1].tobytes() + records[n_full * per :].tobytes())
    return out


def encode_ipfix_stream(
    flows: dict[str, np.ndarray],
    *,
    observation_domain_id: int,
    sampling_interval: int,
    selector_id: int = 1,
    export_time_s: int,
    sequence_start: int = 0,
    max_message_bytes: int = 1400,
    template_refresh_messages: int = 1000,
    template_ids: tuple[int, int] = (TEMPLATE_ID_V4, TEMPLATE_ID_V6),
) -> tuple[bytes, int]:
    """Encode flows as a sequence of IPFIX messages (templates + sampling options first); returns (bytes, next_sequence)."""  # noqa: E501
    if not _DATA_HEADER_BYTES + RECORD_DTYPE_V6.itemsize <= max_message_bytes <= MAX_MESSAGE_BYTES:
        raise ValueError(f"max_message_bytes={max_message_bytes} cannot hold one IPv6 record")
    if sampling_interval < 1 or template_refresh_messages < 1:
        raise ValueError("sampling_interval and template_refresh_messages must be >= 1")
    version = ip_versions(flows)

    per_version = []  # (set id, record matrix, records per message), v4 first
    for v, dtype, tid in (
        (4, RECORD_DTYPE_V4, template_ids[0]),
        (6, RECORD_DTYPE_V6, template_ids[1]),
    ):
        rows = np.flatnonzero(version == v)
        per_message = (max_message_bytes - _DATA_HEADER_BYTES) // dtype.itemsize
        recs = record_matrix(flows, rows, dtype, selector_id=selector_id)
        per_version.append((tid, recs, per_message))
    # Message i of the data stream: v4 messages, then v6 messages.
    msg_counts = [-(-len(recs) // k) for _, recs, k in per_version]
    total_msgs = sum(msg_counts)

    parts: list[bytes] = []
    seq = sequence_start
    common = dict(domain=observation_domain_id, export_s=export_time_s)
    for block_start in range(0, max(total_msgs, 1), template_refresh_messages):
        parts.append(
            template_message(
                observation_domain_id=observation_domain_id,
                sampling_interval=sampling_interval,
                selector_id=selector_id,
                export_time_s=export_time_s,
                sequence=seq,
                template_ids=template_ids,
            )
        )
        seq += 1  # the options data record is a data record
        block_end = min(block_start + template_refresh_messages, total_msgs)
        first_msg = 0
        for (tid, recs, k), count in zip(per_version, msg_counts, strict=True):
            lo, hi = max(block_start, first_msg), min(block_end, first_msg + count)
            if lo < hi:
                chunk = recs[(lo - first_msg) * k : (hi - first_msg) * k]
                parts.append(
                    _data_messages(chunk, set_id=tid, per_message=k, sequence=seq, **common)
                )
                seq += len(chunk)
            first_msg += count
    return b"".join(parts), seq % 2**32


def write_ipfix_file(path: Path, flows: dict[str, np.ndarray], **kwargs) -> int:
    """Atomically write an RFC 5655 IPFIX file; returns the number of data records written.

    The count is of flow records (= len of the arrays); sampling options records are not counted.
    """
    data, _ = encode_ipfix_stream(flows, **kwargs)
    write_bytes_atomic(Path(path), data)
    return int(len(flows["ip_version"]))
