"""Vectorised decoder for any IPFIX (RFC 7011) stream → normalised flow columns + quarantine.

A Python loop walks messages and sets (never records) and files each data set under the template it
was read with; records are then decoded per template over all its sets at once: `np.frombuffer`
with a big-endian structured dtype for fixed-length templates, and a lockstep walk (loop over record
index × field, vectorised across sets) for templates with variable-length fields.

Accounting: `records_in == records_decoded + records_quarantined` counts flow data records.
Options data records (sampling announcements) are counted apart in `options_records`. Where bytes
cannot be parsed and their record count is unknowable (bad header, bad set length, reserved set id,
a record that overruns its set, a data set whose template never becomes known or has variable
length), each quarantined piece counts as 1 record. Records with no IPv4/IPv6 address field
are quarantined ("no IP address fields"); records whose template has no timing IE take the
message export time as start and end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.ingest import ipfix_constants as C

FLOW_SCHEMA = pa.schema(
    [
        ("observation_domain_id", pa.uint32()),
        ("flow_start_ms", pa.int64()),
        ("flow_end_ms", pa.int64()),
        ("ip_version", pa.uint8()),
        ("src_v4", pa.uint32()),
        ("dst_v4", pa.uint32()),
        ("src_v6_hi", pa.uint64()),
        ("src_v6_lo", pa.uint64()),
        ("dst_v6_hi", pa.uint64()),
        ("dst_v6_lo", pa.uint64()),
        ("protocol", pa.uint8()),
        ("src_port", pa.uint16()),
        ("dst_port", pa.uint16()),
        ("flow_direction", pa.uint8()),
        ("octets", pa.uint64()),
        ("packets", pa.uint64()),
        ("sampling_interval", pa.uint32()),
    ]
)

# IEs the decoder reads, with the encodings it accepts (RFC 7011 §6.2 reduced-size for unsigned).
_ANY_UINT = frozenset(range(1, 9))
ACCEPTED_LENGTHS: dict[int, frozenset[int]] = {
    C.IE_SOURCE_IPV4_ADDRESS: frozenset({4}),
    C.IE_DESTINATION_IPV4_ADDRESS: frozenset({4}),
    C.IE_SOURCE_IPV6_ADDRESS: frozenset({16}),
    C.IE_DESTINATION_IPV6_ADDRESS: frozenset({16}),
    C.IE_FLOW_START_MILLISECONDS: frozenset({8}),
    C.IE_FLOW_END_MILLISECONDS: frozenset({8}),
    C.IE_FLOW_START_MICROSECONDS: frozenset({8}),
    C.IE_FLOW_END_MICROSECONDS: frozenset({8}),
    C.IE_FLOW_START_NANOSECONDS: frozenset({8}),
    C.IE_FLOW_END_NANOSECONDS: frozenset({8}),
    C.IE_SYSTEM_INIT_TIME_MILLISECONDS: frozenset({8}),
    C.IE_FLOW_START_SECONDS: frozenset({4}),
    C.IE_FLOW_END_SECONDS: frozenset({4}),
    C.IE_FLOW_START_SYS_UP_TIME: frozenset({4}),
    C.IE_FLOW_END_SYS_UP_TIME: frozenset({4}),
    C.IE_SOURCE_TRANSPORT_PORT: frozenset({1, 2}),
    C.IE_DESTINATION_TRANSPORT_PORT: frozenset({1, 2}),
    C.IE_PROTOCOL_IDENTIFIER: frozenset({1}),
    C.IE_FLOW_DIRECTION: frozenset({1}),
    C.IE_IP_VERSION: frozenset({1}),
    C.IE_TEMPLATE_ID: frozenset({1, 2}),
    **{
        ie: _ANY_UINT
        for ie in (
            C.IE_OCTET_DELTA_COUNT,
            C.IE_PACKET_DELTA_COUNT,
            C.IE_OCTET_TOTAL_COUNT,
            C.IE_PACKET_TOTAL_COUNT,
            C.IE_SAMPLING_INTERVAL,
            C.IE_SAMPLER_ID,
            C.IE_SAMPLER_RANDOM_INTERVAL,
            C.IE_OBSERVATION_DOMAIN_ID,
            C.IE_SELECTOR_ID,
            C.IE_SAMPLING_PACKET_INTERVAL,
            C.IE_SAMPLING_PACKET_SPACE,
            C.IE_SAMPLING_SIZE,
            C.IE_SAMPLING_POPULATION,
        )
    },
}
_MAX_RECORD_BYTES = C.MAX_MESSAGE_BYTES - C.MESSAGE_HEADER_BYTES - C.SET_HEADER_BYTES
_U32_MAX = 2**32 - 1


@dataclass
class QuarantineEntry:
    """Bytes set aside: where they were (`offset` in the source file), why, and how many records."""

    source: str
    offset: int
    length: int
    reason: str
    payload: bytes
    records: int = 1


@dataclass
class DecodeStats:
    """Counters of one decode call; `records_in == records_decoded + records_quarantined`."""

    records_in: int = 0
    records_decoded: int = 0
    records_quarantined: int = 0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    sampling_intervals: dict[int, int] = field(default_factory=dict)
    messages: int = 0
    sequence_gaps: int = 0
    options_records: int = 0


@dataclass
class DecodeResult:
    flows: pa.Table
    quarantine: list[QuarantineEntry]
    stats: DecodeStats


@dataclass(eq=False)
class _Template:
    """One template definition; a redefinition of the same id is a new object."""

    domain: int
    template_id: int
    fields: tuple[tuple[int, int], ...]  # (IE id or -1 for enterprise-specific, length)
    scope_count: int = 0  # > 0 for options templates
    error: str | None = None
    fixed_length: int | None = None  # record length when no field is variable-length
    min_length: int = 0
    # data sets waiting to be decoded in this call: (payload start, payload end, chunk, msg, epoch)
    chunks: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    blocks: list[np.ndarray] = field(default_factory=list)  # same columns, many sets at once

    def __post_init__(self) -> None:
        lengths = [n for _, n in self.fields]
        self.min_length = sum(1 if n == C.VARIABLE_LENGTH else n for n in lengths)
        if C.VARIABLE_LENGTH not in lengths:
            self.fixed_length = sum(lengths)
        if self.error is not None:
            return
        seen = set()
        for ie, n in self.fields:
            if ie in ACCEPTED_LENGTHS and ie not in seen and n != 0:
                seen.add(ie)
                if n not in ACCEPTED_LENGTHS[ie]:
                    self.error = C.REASON_IMPLAUSIBLE_FIELD_LENGTH
        if self.min_length > _MAX_RECORD_BYTES:
            self.error = C.REASON_IMPLAUSIBLE_FIELD_LENGTH
        elif self.min_length == 0:
            self.error = C.REASON_RECORD_LENGTH_ZERO

    def field_offsets(self) -> dict[int, tuple[int, int]]:
        """First occurrence of each read IE → (byte offset in record, length); fixed templates."""
        out: dict[int, tuple[int, int]] = {}
        pos = 0
        for ie, n in self.fields:
            if ie in ACCEPTED_LENGTHS and ie not in out and n != 0:
                out[ie] = (pos, n)
            pos += n
        return out


class _Values:
    """Decoded field values of a batch of records: IE → uint64 array (16-byte IEs → (hi, lo))."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.uint: dict[int, np.ndarray] = {}
        self.pair: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, ie: int) -> np.ndarray | None:
        return self.uint.get(ie)

    def first(self, *ies: int) -> np.ndarray | None:
        for ie in ies:
            if ie in self.uint:
                return self.uint[ie]
        return None


def _be_uint(byte_matrix: np.ndarray) -> np.ndarray:
    """Big-endian unsigned value of each row of an (n, w ≤ 8) uint8 matrix, as uint64."""
    n, w = byte_matrix.shape
    padded = np.zeros((n, 8), dtype=np.uint8)
    padded[:, 8 - w :] = byte_matrix
    return padded.view(">u8").ravel().astype(np.uint64)


def _native(values: np.ndarray) -> np.ndarray:
    """A big-endian field as a contiguous native-order array of the same width."""
    return values.astype(values.dtype.newbyteorder("="))


def _values_fixed(tpl: _Template, joined: bytes) -> _Values:
    """Decode concatenated fixed-length records with one structured big-endian dtype."""
    offsets = tpl.field_offsets()
    names, formats, offs = [], [], []
    for ie, (off, n) in offsets.items():
        if n == 16:
            names += [f"h{ie}", f"l{ie}"]
            formats += [">u8", ">u8"]
            offs += [off, off + 8]
        else:
            names.append(f"u{ie}")
            formats.append(f">u{n}" if n in (1, 2, 4, 8) else f"({n},)u1")
            offs.append(off)
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offs, "itemsize": tpl.fixed_length}
    )
    arr = np.frombuffer(joined, dtype=dtype)
    vals = _Values(len(arr))
    for ie, (_, n) in offsets.items():
        if n == 16:
            vals.pair[ie] = (_native(arr[f"h{ie}"]), _native(arr[f"l{ie}"]))
        elif n in (1, 2, 4, 8):
            vals.uint[ie] = _native(arr[f"u{ie}"])
        else:
            vals.uint[ie] = _be_uint(np.ascontiguousarray(arr[f"u{ie}"]))
    return vals


def _walk_variable(
    u8: np.ndarray, tpl: _Template, starts: np.ndarray, ends: np.ndarray
) -> tuple[_Values, np.ndarray, list[tuple[int, int]]]:
    """Walk all sets of a variable-length template in lockstep (record index × field).

    Returns the values, the set index of each record (records of a set in order, sets interleaved
    by record index) and the (set index, byte offset) of records that overrun their set.
    """
    pos = starts.astype(np.int64).copy()
    ends = ends.astype(np.int64)
    active = np.ones(len(starts), dtype=bool)
    limit = len(u8) - 1
    wanted = set(ACCEPTED_LENGTHS)
    per_field_offs: list[list[np.ndarray]] = [[] for _ in tpl.fields]
    per_field_lens: list[list[np.ndarray]] = [[] for _ in tpl.fields]
    set_of_record: list[np.ndarray] = []
    overruns: list[tuple[int, int]] = []
    while True:
        act = np.flatnonzero(active & (ends - pos >= tpl.min_length))
        if act.size == 0:
            break
        p = pos[act]
        e = ends[act]
        valid = np.ones(act.size, dtype=bool)
        offs, lens = [], []
        for _, n in tpl.fields:
            if n != C.VARIABLE_LENGTH:
                offs.append(p)
                lens.append(n)
                p = p + n
                continue
            b0 = u8[np.minimum(p, limit)].astype(np.int64)
            long_form = b0 == 255
            b12 = u8[np.minimum(p + 1, limit)].astype(np.int64) * 256 + u8[
                np.minimum(p + 2, limit)
            ].astype(np.int64)
            hdr = np.where(long_form, 3, 1)
            vlen = np.where(long_form, b12, b0)
            valid &= p + hdr <= e
            offs.append(p + hdr)
            lens.append(vlen)
            p = p + hdr + vlen
        valid &= p <= e
        for i in np.flatnonzero(~valid):  # loop over broken sets, not records
            overruns.append((int(act[i]), int(pos[act[i]])))
        active[act[~valid]] = False
        good = act[valid]
        pos[good] = p[valid]
        set_of_record.append(good)
        for j, (ie, _) in enumerate(tpl.fields):
            if ie in wanted:
                per_field_offs[j].append(offs[j][valid])
                ln = lens[j]
                per_field_lens[j].append(ln[valid] if isinstance(ln, np.ndarray) else ln)
    sets = np.concatenate(set_of_record) if set_of_record else np.zeros(0, np.int64)
    # Records come out grouped by record index; reorder to set order (stable keeps record order).
    order = np.argsort(sets, kind="stable")
    vals = _Values(len(sets))
    done: set[int] = set()
    for j, (ie, n) in enumerate(tpl.fields):
        if ie not in wanted or ie in done or n == 0 or not per_field_offs[j]:
            continue
        done.add(ie)
        offs = np.concatenate(per_field_offs[j])[order]
        if n == 16:
            idx = offs[:, None] + np.arange(16)
            mat = u8[np.minimum(idx, limit)]
            vals.pair[ie] = (_be_uint(mat[:, :8]), _be_uint(mat[:, 8:]))
        else:
            mat = u8[np.minimum(offs[:, None] + np.arange(n), limit)]
            vals.uint[ie] = _be_uint(mat)
    return vals, sets[order], overruns


def _u64(values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else values.astype(np.uint64)


def _equal_length_run(u8: np.ndarray, off: int, length: int) -> int:
    """How many consecutive messages from `off` have a valid header with this same length."""
    header = np.array([0, C.IPFIX_VERSION, length >> 8, length & 0xFF], dtype=np.uint8)
    run, window = 0, 64
    while True:
        k = min(window, (len(u8) - off) // length - run)
        if k <= 0:
            return run
        cand = off + length * (run + np.arange(k))
        ok = (u8[cand[:, None] + np.arange(4)] == header).all(axis=1)
        bad = np.flatnonzero(~ok)
        if bad.size:
            return run + int(bad[0])
        run += k
        window *= 4


def _distinct(values: np.ndarray) -> list[int]:
    """Sorted distinct values (fast path for the common single-value array)."""
    if len(values) and values.min() == values.max():
        return [int(values[0])]
    return np.unique(values).tolist()


def _value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(values) and values.min() == values.max():
        return values[:1], np.array([len(values)])
    return np.unique(values, return_counts=True)


def _gather_be(u8: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """Big-endian unsigned `width`-byte values at absolute offsets of a byte buffer, as int64."""
    idx = np.minimum(offsets[:, None] + np.arange(width), len(u8) - 1)
    return _be_uint(u8[idx]).astype(np.int64)


def _ntp_to_ms(v: np.ndarray) -> np.ndarray:
    """RFC 7011 dateTimeMicro/Nanoseconds (NTP 64-bit format) → Unix epoch ms."""
    v = v.astype(np.uint64)
    seconds = (v >> np.uint64(32)).astype(np.int64) - C.NTP_UNIX_OFFSET_S
    frac_ms = ((v & np.uint64(_U32_MAX)) * np.uint64(1000)) >> np.uint64(32)
    return seconds * 1000 + frac_ms.astype(np.int64)


def _times_ms(vals: _Values, export_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flow start/end in epoch ms from the first timing IEs present; else the export time."""

    def one(ms_ie: int, s_ie: int, us_ie: int, ns_ie: int, up_ie: int) -> np.ndarray | None:
        if (v := vals.get(ms_ie)) is not None:
            return v.astype(np.int64)
        if (v := vals.get(s_ie)) is not None:
            return v.astype(np.int64) * 1000
        if (v := vals.first(us_ie, ns_ie)) is not None:
            return _ntp_to_ms(v)
        init = vals.get(C.IE_SYSTEM_INIT_TIME_MILLISECONDS)
        if (v := vals.get(up_ie)) is not None and init is not None:
            return init.astype(np.int64) + v.astype(np.int64)
        return None

    start = one(
        C.IE_FLOW_START_MILLISECONDS,
        C.IE_FLOW_START_SECONDS,
        C.IE_FLOW_START_MICROSECONDS,
        C.IE_FLOW_START_NANOSECONDS,
        C.IE_FLOW_START_SYS_UP_TIME,
    )
    end = one(
        C.IE_FLOW_END_MILLISECONDS,
        C.IE_FLOW_END_SECONDS,
        C.IE_FLOW_END_MICROSECONDS,
        C.IE_FLOW_END_NANOSECONDS,
        C.IE_FLOW_END_SYS_UP_TIME,
    )
    start = start if start is not None else end
    end = end if end is not None else start
    if start is None:
        return export_ms, export_ms
    return start, end


def _in_record_sampling(vals: _Values) -> np.ndarray | None:
    """N of "1 in N" carried by the records themselves (0 where not usable), or None."""
    if (v := vals.first(C.IE_SAMPLING_INTERVAL, C.IE_SAMPLER_RANDOM_INTERVAL)) is not None:
        return v.astype(np.uint64)
    interval = _u64(vals.get(C.IE_SAMPLING_PACKET_INTERVAL))
    space = _u64(vals.get(C.IE_SAMPLING_PACKET_SPACE))
    if interval is not None and space is not None:
        safe = np.maximum(interval, np.uint64(1))
        return np.where(interval > 0, (interval + space) // safe, np.uint64(0)).astype(np.uint64)
    size = _u64(vals.get(C.IE_SAMPLING_SIZE))
    population = _u64(vals.get(C.IE_SAMPLING_POPULATION))
    if size is not None and population is not None:
        safe = np.maximum(size, np.uint64(1))
        return np.where(size > 0, population // safe, np.uint64(0)).astype(np.uint64)
    return None


ALL_NULL = "all null"


class _Columns:
    """Per-batch output columns, concatenated at the end.

    A batch column is (values or None for zeros, null mask or None for none or ALL_NULL).
    """

    def __init__(self) -> None:
        self.parts: dict[str, list[tuple]] = {f.name: [] for f in FLOW_SCHEMA}
        self.chunk: list[np.ndarray] = []

    def add(self, cols: dict[str, tuple], chunk: np.ndarray) -> None:
        for name, (values, null) in cols.items():
            self.parts[name].append((values, null, len(chunk)))
        self.chunk.append(chunk)

    def table(self) -> pa.Table:
        """One Arrow chunk per batch (no concatenation); reordered only if batches interleave."""
        if not self.chunk:
            return FLOW_SCHEMA.empty_table()
        columns = []
        for f in FLOW_SCHEMA:
            dtype = np.dtype(f.type.to_pandas_dtype())
            pieces = []
            for values, null, n in self.parts[f.name]:
                if null is ALL_NULL:
                    pieces.append(pa.nulls(n, type=f.type))
                    continue
                values = np.zeros(n, dtype) if values is None else values.astype(dtype, copy=False)
                pieces.append(pa.array(values, type=f.type, mask=null))
            columns.append(pa.chunked_array(pieces, type=f.type))
        table = pa.Table.from_arrays(columns, schema=FLOW_SCHEMA)
        if len(self.chunk) > 1:
            chunk = np.concatenate(self.chunk)
            if (np.diff(chunk) < 0).any():  # templates interleaved in the input
                table = table.take(pa.array(np.argsort(chunk, kind="stable")))
        return table


class IpfixDecoder:
    """Decodes the IPFIX files of one exporter; templates and samplers persist across files.

    Sequence numbers are checked within a file (one transport session per RFC 5655 file).
    """

    def __init__(self, exporter: str, default_sampling_interval: int | None = None) -> None:
        self.exporter = exporter
        self.default_sampling_interval = default_sampling_interval or None
        self._templates: dict[tuple[int, int], _Template] = {}
        # (domain, kind, id) → N; kind: "selector" (selectorId/samplerId), "template", "domain"
        self._samplers: dict[tuple[int, str, int], int] = {}

    # ---------------------------------------------------------------- public
    def decode(self, buf: bytes, source: str) -> DecodeResult:
        """Decode one buffer (a whole file); never raises on bad input."""
        return _Run(self, buf if isinstance(buf, bytes) else bytes(buf), source).run()


class _Run:
    """State of one decode call."""

    def __init__(self, decoder: IpfixDecoder, buf: bytes, source: str) -> None:
        self.d = decoder
        self.buf = buf
        self.mv = memoryview(buf)
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.source = source
        self.stats = DecodeStats()
        self.quarantine: list[QuarantineEntry] = []
        self.columns = _Columns()
        self.msg_domain = np.zeros(0, np.int64)
        self.msg_seq = np.zeros(0, np.int64)
        self.msg_export_s = np.zeros(0, np.int64)
        self.msg_records = np.zeros(0, np.int64)  # data records per message (sequence checks)
        self.n_chunks = 0
        self.pending_templates: dict[int, _Template] = {}  # id() → template with chunks
        self.unknown: list[tuple[QuarantineEntry, int, int]] = []  # entry, domain, template id
        self.snapshots: list[dict[tuple[int, str, int], int]] = [dict(decoder._samplers)]

    # ---------------------------------------------------------------- helpers
    def _quarantine(
        self, offset: int, length: int, reason: str, records: int = 1
    ) -> QuarantineEntry:
        length = max(0, min(length, len(self.buf) - offset))
        entry = QuarantineEntry(
            self.source, offset, length, reason, bytes(self.mv[offset : offset + length]), records
        )
        self.quarantine.append(entry)
        return entry

    def _next_message_start(self, start: int) -> int:
        """Offset of the next plausible message header after `start`, or the end of the buffer."""
        buf, n = self.buf, len(self.buf)
        p = buf.find(b"\x00\x0a", start)
        while p != -1 and p + C.MESSAGE_HEADER_BYTES <= n:
            length = int.from_bytes(buf[p + 2 : p + 4], "big")
            if C.MESSAGE_HEADER_BYTES <= length <= n - p and (
                p + length == n or buf[p + length : p + length + 2] == b"\x00\x0a"
            ):
                return p
            p = buf.find(b"\x00\x0a", p + 1)
        return n

    # ---------------------------------------------------------------- main loop
    def run(self) -> DecodeResult:
        st, ln = self._message_bounds()
        m = len(st)
        self.stats.messages = m
        if m == 0:
            return self._finish()
        u8 = self.u8
        self.msg_export_s = _gather_be(u8, st + 4, 4)
        self.msg_seq = _gather_be(u8, st + 8, 4)
        self.msg_domain = _gather_be(u8, st + 12, 4)
        self.msg_records = np.zeros(m, dtype=np.int64)
        # "simple" message: exactly one non-empty data set filling it (the bulk of any stream)
        has_set = ln >= C.MESSAGE_HEADER_BYTES + C.SET_HEADER_BYTES
        at = np.where(has_set, st + C.MESSAGE_HEADER_BYTES, 0)
        set_id = _gather_be(u8, at, 2)
        set_len = _gather_be(u8, at + 2, 2)
        simple = has_set & (set_id >= C.MIN_DATA_SET_ID) & (set_len == ln - C.MESSAGE_HEADER_BYTES)
        simple &= set_len > C.SET_HEADER_BYTES
        prev = 0
        for i in np.flatnonzero(~simple).tolist() + [m]:  # loop over non-simple messages
            if prev < i:
                self._simple_run(prev, i, st, ln, set_id)
            if i < m:
                self._message(i, int(st[i]), int(ln[i]))
            prev = i + 1
        return self._finish()

    def _message_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Offsets and lengths of well-formed message headers; bad stretches are quarantined.

        Where consecutive messages have equal length (full data messages), a run of them is
        verified at once with numpy instead of stepping message by message.
        """
        buf, n, u8 = self.buf, len(self.buf), self.u8
        unpack = C.SET_HEADER.unpack_from  # same ">HH" layout as version, length
        starts: list[int] = []
        lengths: list[int] = []
        runs: list[tuple[np.ndarray, np.ndarray]] = []
        off, prev_length, cool_down = 0, -1, 0
        while off < n:  # loop over messages (or runs of equal-length messages)
            if n - off >= C.MESSAGE_HEADER_BYTES:
                version, length = unpack(buf, off)
                if version == C.IPFIX_VERSION and C.MESSAGE_HEADER_BYTES <= length <= n - off:
                    if length == prev_length and cool_down <= 0:
                        run = _equal_length_run(u8, off, length)
                        if run >= 4:
                            runs.append(
                                (np.asarray(starts, np.int64), np.asarray(lengths, np.int64))
                            )
                            runs.append(
                                (
                                    off + length * np.arange(run, dtype=np.int64),
                                    np.full(run, length, np.int64),
                                )
                            )
                            starts, lengths = [], []
                            off += run * length
                            continue
                        cool_down = 32
                    cool_down -= 1
                    prev_length = length
                    starts.append(off)
                    lengths.append(length)
                    off += length
                    continue
                if version != C.IPFIX_VERSION:
                    reason = C.REASON_UNKNOWN_VERSION
                elif length < C.MESSAGE_HEADER_BYTES:
                    reason = C.REASON_SHORT_MESSAGE
                else:
                    reason = C.REASON_TRUNCATED_MESSAGE
            else:
                reason = C.REASON_TRUNCATED_MESSAGE
            nxt = self._next_message_start(off + 1)
            self._quarantine(off, nxt - off, reason)
            off = nxt
        runs.append((np.asarray(starts, np.int64), np.asarray(lengths, np.int64)))
        return np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs])

    def _simple_run(
        self, a: int, b: int, st: np.ndarray, ln: np.ndarray, set_id: np.ndarray
    ) -> None:
        """Messages a..b-1, each one data set: filed in bulk when all their templates are usable.

        No template or sampler state can change inside such a run unless one of its sets is
        options data or has no usable template; then the run goes message by message.
        """
        keys = self.msg_domain[a:b] * 65536 + set_id[a:b]
        uniq = _distinct(keys)
        tpls = [self.d._templates.get((k >> 16, k & 0xFFFF)) for k in uniq]
        if any(t is None or t.error is not None or t.scope_count for t in tpls):
            for i in range(a, b):
                self._message(i, int(st[i]), int(ln[i]))
            return
        epoch = len(self.snapshots) - 1
        msg = np.arange(a, b, dtype=np.int64)
        chunk_ids = self.n_chunks + (msg - a)
        self.n_chunks += b - a
        for key, tpl in zip(uniq, tpls, strict=True):
            rows = slice(None) if len(uniq) == 1 else keys == key
            m = msg[rows]
            body = st[m] + C.MESSAGE_HEADER_BYTES + C.SET_HEADER_BYTES
            block = np.column_stack(
                [body, st[m] + ln[m], chunk_ids[rows], m, np.full(len(m), epoch)]
            )
            tpl.blocks.append(block)
            self.pending_templates[id(tpl)] = tpl

    def _message(self, msg: int, off: int, length: int) -> None:
        """One message, set by set (templates, options, several sets, broken sets)."""
        buf = self.buf
        unpack_set = C.SET_HEADER.unpack_from
        templates = self.d._templates
        domain = int(self.msg_domain[msg])
        end = off + length
        pos = off + C.MESSAGE_HEADER_BYTES
        while pos < end:  # loop over sets
            if end - pos < C.SET_HEADER_BYTES:
                self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH)
                return
            set_id, set_len = unpack_set(buf, pos)
            if set_len < C.SET_HEADER_BYTES or pos + set_len > end:
                self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH)
                return
            body, pos = pos + C.SET_HEADER_BYTES, pos + set_len
            if set_id < C.MIN_DATA_SET_ID:
                self._non_data_set(set_id, body, pos, domain, msg)
                continue
            if body == pos:
                continue  # empty data set
            tpl = templates.get((domain, set_id))
            if tpl is not None and tpl.error is None and not tpl.scope_count:
                tpl.chunks.append((body, pos, self.n_chunks, msg, len(self.snapshots) - 1))
                self.n_chunks += 1
                self.pending_templates[id(tpl)] = tpl
            else:
                self._special_data_set(tpl, set_id, body, pos, domain, msg)

    def _non_data_set(self, set_id: int, body: int, end: int, domain: int, msg: int) -> None:
        """Template and options template sets; anything else below 256 is quarantined."""
        if set_id in (C.TEMPLATE_SET_ID, C.OPTIONS_TEMPLATE_SET_ID):
            self._template_set(set_id, body, end, domain)
        else:
            start = body - C.SET_HEADER_BYTES
            self._quarantine(start, end - start, C.REASON_RESERVED_SET_ID)
            self.msg_records[msg] += 1

    def _special_data_set(
        self, tpl: _Template | None, set_id: int, body: int, end: int, domain: int, msg: int
    ) -> None:
        """Data set of an unknown or rejected template (quarantined) or of an options template."""
        start = body - C.SET_HEADER_BYTES
        if tpl is None:
            entry = self._quarantine(start, end - start, C.REASON_TEMPLATE_UNKNOWN)
            self.unknown.append((entry, domain, set_id))
            self.msg_records[msg] += 1
        elif tpl.error is not None:
            count = (end - body) // tpl.fixed_length if tpl.fixed_length else 1
            if count:
                self._quarantine(start, end - start, tpl.error, count)
                self.msg_records[msg] += count
        else:
            self._options_data(tpl, body, end, msg)

    # ---------------------------------------------------------------- templates
    def _template_set(self, set_id: int, pos: int, end: int, domain: int) -> None:
        buf = self.buf
        options = set_id == C.OPTIONS_TEMPLATE_SET_ID
        templates = self.d._templates
        while end - pos >= 4:
            if not any(buf[pos:end]):
                return  # padding
            rec_start = pos
            tid, count = C.SET_HEADER.unpack_from(buf, pos)
            pos += 4
            if count == 0:  # withdrawal; set id itself = withdraw all of this kind in the domain
                if tid == set_id:
                    for key in [
                        k
                        for k, t in templates.items()
                        if k[0] == domain and bool(t.scope_count) == options
                    ]:
                        del templates[key]
                else:
                    templates.pop((domain, tid), None)
                continue
            scope = 0
            if options:
                if end - pos < 2:
                    self._quarantine(rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0)
                    return
                scope = int.from_bytes(buf[pos : pos + 2], "big")
                pos += 2
            fields = []
            for _ in range(count):
                if end - pos < 4:
                    self._quarantine(rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0)
                    return
                ie, length = C.SET_HEADER.unpack_from(buf, pos)
                pos += 4
                if ie & C.ENTERPRISE_BIT:
                    if end - pos < 4:
                        self._quarantine(rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0)
                        return
                    pos += 4
                    ie = -1  # enterprise-specific: value skipped, length kept
                fields.append((ie, length))
            error = None
            if tid < C.MIN_DATA_SET_ID or (options and not 0 < scope <= count):
                error = C.REASON_BAD_TEMPLATE
            tpl = _Template(domain, tid, tuple(fields), scope, error)
            if tpl.error is not None:
                self._quarantine(rec_start, pos - rec_start, tpl.error, 0)
            old = templates.get((domain, tid))
            if tid >= C.MIN_DATA_SET_ID and not (
                old is not None and (old.fields, old.scope_count) == (tpl.fields, tpl.scope_count)
            ):  # a refresh of the same definition keeps the object (and its pending sets)
                templates[(domain, tid)] = tpl

    # ---------------------------------------------------------------- records
    def _decode_chunks(
        self, tpl: _Template, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[_Values, np.ndarray, np.ndarray]:
        """Decode all records of the given sets; returns values, set index per record, counts."""
        if tpl.fixed_length is not None:
            rec = tpl.fixed_length
            counts = (ends - starts) // rec
            mv = self.mv
            joined = b"".join(
                map(mv.__getitem__, map(slice, starts.tolist(), (starts + counts * rec).tolist()))
            )
            vals = _values_fixed(tpl, joined)
            return vals, np.repeat(np.arange(len(starts)), counts), counts
        vals, set_idx, overruns = _walk_variable(self.u8, tpl, starts, ends)
        counts = np.bincount(set_idx, minlength=len(starts))
        for i, at in overruns:
            self._quarantine(at, int(ends[i]) - at, C.REASON_RECORD_OVERRUNS_SET)
            counts[i] += 1  # counted in the message's records for sequence checks
        return vals, set_idx, counts

    def _options_data(self, tpl: _Template, start: int, end: int, msg: int) -> None:
        """Decode an options data set now and update the sampler state."""
        starts, ends = np.array([start]), np.array([end])
        vals, _, counts = self._decode_chunks(tpl, starts, ends)
        self.msg_records[msg] += int(counts.sum())
        self.stats.options_records += vals.n
        n_values = _in_record_sampling(vals)
        if n_values is None or vals.n == 0:
            return
        scope_ies = {ie for ie, _ in tpl.fields[: tpl.scope_count]}
        samplers = self.d._samplers
        domain_col = vals.get(C.IE_OBSERVATION_DOMAIN_ID)
        selector_col = vals.first(C.IE_SELECTOR_ID, C.IE_SAMPLER_ID)
        template_col = vals.get(C.IE_TEMPLATE_ID)
        changed = False
        for i in range(vals.n):  # options records: a handful per file
            n_value = int(n_values[i])
            if not 1 <= n_value <= _U32_MAX:
                continue
            domain = tpl.domain
            if C.IE_OBSERVATION_DOMAIN_ID in scope_ies and domain_col is not None:
                domain = int(domain_col[i]) or tpl.domain
            if scope_ies & {C.IE_SELECTOR_ID, C.IE_SAMPLER_ID} and selector_col is not None:
                key = (domain, "selector", int(selector_col[i]))
            elif C.IE_TEMPLATE_ID in scope_ies and template_col is not None:
                key = (domain, "template", int(template_col[i]))
            else:
                key = (domain, "domain", 0)
            if samplers.get(key) != n_value:
                samplers[key] = n_value
                changed = True
        if changed:
            self.snapshots.append(dict(samplers))

    def _sampling(self, tpl: _Template, vals: _Values, epochs: np.ndarray) -> np.ndarray:
        """N per record (0 = unknown): in-record IEs, then selector, template, domain, default."""
        n = vals.n
        result = _in_record_sampling(vals)
        if result is None:
            result = np.zeros(n, dtype=np.uint64)
        result[result > _U32_MAX] = 0
        missing = result == 0
        if not missing.any():
            return result
        selector = vals.first(C.IE_SELECTOR_ID, C.IE_SAMPLER_ID)
        default = self.d.default_sampling_interval or 0
        d = tpl.domain
        all_missing = bool(missing.all())
        epoch_list = _distinct(epochs[missing])
        for epoch in epoch_list:
            snap = self.snapshots[epoch]
            if all_missing and len(epoch_list) == 1:
                rows = slice(None)
            else:
                rows = missing & (epochs == epoch)
            scoped = snap.get((d, "template", tpl.template_id)) or snap.get((d, "domain", 0))
            if selector is None:
                in_domain = [v for k, v in snap.items() if k[0] == d]
                only = in_domain[0] if len(in_domain) == 1 else 0
                result[rows] = scoped or only or default
                continue
            keys = sorted((k[2], v) for k, v in snap.items() if k[0] == d and k[1] == "selector")
            fallback = np.uint64(scoped or default)
            sel = selector[rows]
            if keys and len(sel) and sel.min() == sel.max():
                result[rows] = dict(keys).get(int(sel[0]), int(fallback))
            elif keys:
                key_ids = np.array([k for k, _ in keys], dtype=np.uint64)
                key_ns = np.array([v for _, v in keys], dtype=np.uint64)
                idx = np.minimum(np.searchsorted(key_ids, sel), len(keys) - 1)
                result[rows] = np.where(key_ids[idx] == sel, key_ns[idx], fallback)
            else:
                result[rows] = fallback
        return result

    def _normalise(
        self, tpl: _Template, vals: _Values, chunk_info: np.ndarray, set_idx: np.ndarray
    ):
        """Flow columns for one template's records; returns (columns, problem reason per record)."""
        n = vals.n
        export_ms = self._msg_export_ms[chunk_info[:, 3]][set_idx]
        start_ms, end_ms = _times_ms(vals, export_ms)
        has4 = C.IE_SOURCE_IPV4_ADDRESS in vals.uint or C.IE_DESTINATION_IPV4_ADDRESS in vals.uint
        has6 = C.IE_SOURCE_IPV6_ADDRESS in vals.pair or C.IE_DESTINATION_IPV6_ADDRESS in vals.pair
        if (v := vals.get(C.IE_IP_VERSION)) is not None:
            version = v.astype(np.uint8)
        elif has4 and has6:
            nonzero6 = np.zeros(n, dtype=bool)
            for hi, lo in vals.pair.values():
                nonzero6 |= (hi != 0) | (lo != 0)
            version = np.where(nonzero6, 6, 4).astype(np.uint8)
        else:
            version = np.full(n, 6 if has6 else 4 if has4 else 0, dtype=np.uint8)
        is4 = (version == 4) & has4
        is6 = (version == 6) & has6
        cols: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        null4 = None if is4.all() else ALL_NULL if not is4.any() else ~is4
        null6 = None if is6.all() else ALL_NULL if not is6.any() else ~is6
        for name, ie in (
            ("src_v4", C.IE_SOURCE_IPV4_ADDRESS),
            ("dst_v4", C.IE_DESTINATION_IPV4_ADDRESS),
        ):
            v = vals.get(ie)
            cols[name] = (None, ALL_NULL) if v is None else (v, null4)
        for name, ie in (
            ("src_v6", C.IE_SOURCE_IPV6_ADDRESS),
            ("dst_v6", C.IE_DESTINATION_IPV6_ADDRESS),
        ):
            hi, lo = vals.pair.get(ie, (None, None))
            null = ALL_NULL if hi is None else null6
            cols[name + "_hi"] = (hi, null)
            cols[name + "_lo"] = (lo, null)
        direction = vals.get(C.IE_FLOW_DIRECTION)
        octets = vals.first(C.IE_OCTET_DELTA_COUNT, C.IE_OCTET_TOTAL_COUNT)
        packets = vals.first(C.IE_PACKET_DELTA_COUNT, C.IE_PACKET_TOTAL_COUNT)
        sampling = self._sampling(tpl, vals, chunk_info[:, 4][set_idx])
        cols.update(
            observation_domain_id=(np.full(n, tpl.domain, dtype=np.uint32), None),
            flow_start_ms=(start_ms, None),
            flow_end_ms=(end_ms, None),
            ip_version=(np.where(is4 | is6, version, 0), None),
            protocol=(vals.get(C.IE_PROTOCOL_IDENTIFIER), None),
            src_port=(vals.get(C.IE_SOURCE_TRANSPORT_PORT), None),
            dst_port=(vals.get(C.IE_DESTINATION_TRANSPORT_PORT), None),
            flow_direction=(None, ALL_NULL) if direction is None else (direction, None),
            octets=(octets, None),
            packets=(packets, None),
            sampling_interval=(sampling, None),
        )
        problem = np.zeros(n, dtype=np.int8)  # 0 ok, 1 no address, 2 sampling missing
        problem[~(is4 | is6)] = 1
        problem[(problem == 0) & (sampling == 0)] = 2
        return cols, problem

    def _flush_template(self, tpl: _Template) -> None:
        """Decode every pending set of one template and add its flows / quarantine entries."""
        info = np.concatenate([*tpl.blocks, np.array(tpl.chunks, dtype=np.int64).reshape(-1, 5)])
        info = info[np.argsort(info[:, 2], kind="stable")]  # input order
        tpl.chunks, tpl.blocks = [], []
        vals, set_idx, counts = self._decode_chunks(tpl, info[:, 0], info[:, 1])
        np.add.at(self.msg_records, info[:, 3], counts)
        if vals.n == 0:
            return
        cols, problem = self._normalise(tpl, vals, info, set_idx)
        keep = problem == 0
        if not keep.all():
            reasons = (C.REASON_NO_ADDRESS, C.REASON_SAMPLING_MISSING)
            for code, reason in enumerate(reasons, start=1):
                per_set = np.bincount(set_idx[problem == code], minlength=len(info))
                for i in np.flatnonzero(per_set).tolist():  # loop over sets
                    start = int(info[i, 0]) - C.SET_HEADER_BYTES
                    length = int(info[i, 1]) - start
                    self._quarantine(start, length, reason, int(per_set[i]))
            cols = {k: (_take(v, keep), _take(m, keep)) for k, (v, m) in cols.items()}
        self.columns.add(cols, info[:, 2][set_idx[keep]])

    # ---------------------------------------------------------------- end of buffer
    def _finish(self) -> DecodeResult:
        self._msg_export_ms = self.msg_export_s * 1000
        for tpl in self.pending_templates.values():
            self._flush_template(tpl)
        for entry, domain, tid in self.unknown:  # count records once the template is known
            tpl = self.d._templates.get((domain, tid))
            if tpl is not None and tpl.fixed_length:
                entry.records = (entry.length - C.SET_HEADER_BYTES) // tpl.fixed_length
        self._count_sequence_gaps()
        self.quarantine.sort(key=lambda q: q.offset)
        table = self.columns.table()
        stats = self.stats
        stats.records_decoded = table.num_rows
        for q in self.quarantine:
            stats.quarantine_by_reason[q.reason] = (
                stats.quarantine_by_reason.get(q.reason, 0) + q.records
            )
            stats.records_quarantined += q.records
        stats.records_in = stats.records_decoded + stats.records_quarantined
        if table.num_rows:
            ns, counts = _value_counts(table.column("sampling_interval").to_numpy())
            stats.sampling_intervals = {int(k): int(c) for k, c in zip(ns, counts, strict=True)}
        return DecodeResult(table, self.quarantine, stats)

    def _count_sequence_gaps(self) -> None:
        """Messages whose sequence ≠ previous sequence + previous data records (same domain)."""
        domains, seqs, recs = self.msg_domain, self.msg_seq, self.msg_records
        for d in np.unique(domains).tolist():
            idx = np.flatnonzero(domains == d)
            expected = (seqs[idx[:-1]] + recs[idx[:-1]]) % 2**32
            self.stats.sequence_gaps += int((seqs[idx[1:]] != expected).sum())


def _take(values, keep: np.ndarray):
    """Rows `keep` of a batch column part (None and ALL_NULL stand for whole columns)."""
    return values if values is None or values is ALL_NULL else values[keep]
