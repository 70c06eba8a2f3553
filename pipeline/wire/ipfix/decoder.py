"""Vectorised decoder of IPFIX (RFC 7011), NetFlow v9 (RFC 3954) and v5 → flows + quarantine.

`FlowDecoder.decode(buf)` reads an RFC 5655 IPFIX file; `decode_datagrams` reads export packets of
any version framed by the transport (UDP). NetFlow v9 packets are turned into IPFIX messages (the
20-byte header becomes a 16-byte one; flowsets ≥ 256 are byte-identical to IPFIX data sets) and go
through the same machinery; v9 template flowsets are parsed in their own layout and
FIRST/LAST_SWITCHED are made absolute with the packet's sysUptime. v5 is decoded apart
(pipeline.wire.netflow_v5).

In a file, a message must look whole (its sets tile it and a message header or the end follows);
otherwise it may have been cut short mid-file, its length field reaching into the next message:
the decoder then resynchronises at the first plausible message inside its claimed span, keeps the
cut message's whole sets and quarantines the rest ("truncated message").

Templates are keyed by (version, domain, template id): the "stream" key is version << 32 | domain
(IPFIX observation domain, v9 source id, v5 engine_type << 8 | engine_id). Data whose template comes
later in the same call is decoded with the first definition that follows it (second pass). An
exporter restart (v9/v5: sysUptime steps back; IPFIX: sequence number steps back) drops that
stream's templates and samplers. Templates, samplers, sequence expectations and restart state
persist across calls of one decoder (consecutive files or datagram batches of one exporter).

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

from pipeline.wire.ipfix import constants as C
from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats, QuarantineEntry
from pipeline.wire.streams import distinct, restart_flags, sequence_stats
from pipeline.wire.uptime import uptime_to_epoch_ms

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


@dataclass(eq=False)
class _Template:
    """One template definition; a redefinition of the same id is a new object.

    `domain` is the stream key version << 32 | observation domain (or v9 source id).
    """

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

    @property
    def version(self) -> int:
        return self.domain >> 32

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


def _sets_tile(u8: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each message's sets (length ≥ 4 each) fill its body exactly; lockstep over sets."""
    pos = starts.astype(np.int64) + C.MESSAGE_HEADER_BYTES
    end = starts.astype(np.int64) + lengths
    ok = pos == end
    idx = np.flatnonzero(pos < end)
    limit = len(u8) - 1
    while idx.size:  # loop over set index (≤ 16k), vectorised across messages
        p, e = pos[idx], end[idx]
        at = np.minimum(p + 2, limit - 1)
        set_len = u8[at].astype(np.int64) * 256 + u8[at + 1]
        p2 = p + set_len
        good = (e - p >= C.SET_HEADER_BYTES) & (set_len >= C.SET_HEADER_BYTES) & (p2 <= e)
        done = good & (p2 == e)
        ok[idx[done]] = True
        pos[idx] = p2
        idx = idx[good & ~done]
    return ok


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


def _times_ms(
    vals: _Values, export_ms: np.ndarray, uptime_ms: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flow start/end in epoch ms from the first timing IEs present; else the export time.

    `uptime_ms` (NetFlow v9: the packet's sysUptime per record) dates FIRST/LAST_SWITCHED.
    """

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
        if v is not None and uptime_ms is not None:
            return uptime_to_epoch_ms(export_ms, uptime_ms, v)
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


class FlowDecoder:
    """Decodes the flow exports of one exporter (IPFIX, NetFlow v9, v5).

    Templates, samplers, sequence expectations and restart detection state persist across calls:
    consecutive files (or datagram batches) of one exporter continue its streams, so a sequence
    gap between two files is counted, and a template announced in one applies to the next.
    """

    def __init__(self, exporter: str, default_sampling_interval: int | None = None) -> None:
        self.exporter = exporter
        self.default_sampling_interval = default_sampling_interval or None
        self._templates: dict[tuple[int, int], _Template] = {}
        # (stream, kind, id) → N; kind: "selector" (selectorId/samplerId), "template", "domain"
        self._samplers: dict[tuple[int, str, int], int] = {}
        self._seq_next: dict[int, int] = {}  # stream → expected next sequence number
        self._last: dict[int, tuple[int, int, int]] = {}  # stream → (seq, uptime ms, export ms)

    # ---------------------------------------------------------------- public
    def decode(self, buf: bytes, source: str) -> DecodeResult:
        """Decode one buffer of IPFIX messages (an RFC 5655 file); never raises on bad input."""
        return _Run(self, buf if isinstance(buf, bytes) else bytes(buf), source).run()

    def decode_datagrams(
        self,
        payload: bytes,
        starts: np.ndarray,
        lengths: np.ndarray,
        file_offsets: np.ndarray,
        source: str,
    ) -> DecodeResult:
        """Decode export packets of any version (5, 9, 10), one per transport datagram.

        Datagram i is payload[starts[i]:starts[i] + lengths[i]], found at byte file_offsets[i] of
        `source`; quarantine offsets are file offsets. Never raises on bad input.
        """
        from pipeline.wire import datagrams as netflow_frames
        from pipeline.wire import netflow_v5

        payload = payload if isinstance(payload, bytes) else bytes(payload)
        frames = netflow_frames.frame_datagrams(payload, starts, lengths, file_offsets, source)
        if frames.ipfix_buffer:
            run = _Run(self, frames.ipfix_buffer, source, frames=frames)
            result = run.run()
        else:
            result = DecodeResult(FLOW_SCHEMA.empty_table(), [], DecodeStats())
        v5 = netflow_v5.decode_v5(self, payload, frames, source)
        return netflow_frames.merge_results(result, v5, frames.quarantine)


IpfixDecoder = FlowDecoder  # the name callers used before NetFlow support


class _Run:
    """State of one decode call (IPFIX messages; NetFlow v9 packets translated to them)."""

    def __init__(self, decoder: FlowDecoder, buf: bytes, source: str, frames=None) -> None:
        self.d = decoder
        self.buf = buf
        self.mv = memoryview(buf)
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.source = source
        self.frames = frames  # netflow_frames.Frames when decoding datagrams, else None
        self.stats = DecodeStats()
        self.quarantine: list[QuarantineEntry] = []
        self.columns = _Columns()
        self.msg_domain = np.zeros(0, np.int64)  # stream key: version << 32 | domain
        self.msg_seq = np.zeros(0, np.int64)
        self.msg_export_s = np.zeros(0, np.int64)
        self.msg_records = np.zeros(0, np.int64)  # data records per message (sequence checks)
        self.msg_version = np.zeros(0, np.int64)
        self.msg_uptime = np.zeros(0, np.int64)
        self.restart = np.zeros(0, dtype=bool)
        self.n_chunks = 0
        self.pending_templates: dict[int, _Template] = {}  # id() → template with chunks
        self.unknown: list[tuple[QuarantineEntry, int, int]] = []  # entry, stream, template id
        # (stream, template id) → data sets waiting for a definition later in this call
        self.waiting: dict[tuple[int, int], list[tuple[QuarantineEntry, int, int, int, int]]] = {}
        self.resolved: set[int] = set()  # id() of quarantine entries decoded in the second pass
        self.deferred: list[tuple] = []  # (template, *waiting) to resolve at the message's end
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

    def _tile_end(self, off: int, limit: int) -> int:
        """End of the run of whole sets (length ≥ 4) from the body of the message at `off`."""
        buf, pos = self.buf, off + C.MESSAGE_HEADER_BYTES
        while limit - pos >= C.SET_HEADER_BYTES:  # loop over sets
            set_len = (buf[pos + 2] << 8) | buf[pos + 3]
            if set_len < C.SET_HEADER_BYTES or pos + set_len > limit:
                break
            pos += set_len
        return pos

    def _followed_by_message(self, end: int) -> bool:
        """Whether `end` is the end of the buffer or starts with a version-10 header."""
        buf = self.buf
        return end == len(buf) or (
            end + 2 <= len(buf) and buf[end] == 0 and buf[end + 1] == C.IPFIX_VERSION
        )

    def _looks_whole(self, off: int, length: int) -> bool:
        """A message whose sets tile it and which is followed by a message or the buffer end.

        Otherwise it may have been cut short mid-file: its length field then reaches into the
        next message (RFC 5655 files carry no other framing), so a resync is looked for.
        """
        end = off + length
        return self._followed_by_message(end) and self._tile_end(off, end) == end

    def _resync_in(self, off: int, length: int) -> int | None:
        """First plausible message inside (off, off + length): version 10, 16 ≤ length ≤ bytes
        left, sets tiling it, followed by the end of the buffer or another version-10 header."""
        u8, n = self.u8, len(self.buf)
        last = min(off + length, n - C.MESSAGE_HEADER_BYTES + 1)
        if last <= off + 1:
            return None
        window = u8[off + 1 : last + 1]
        cand = off + 1 + np.flatnonzero((window[:-1] == 0) & (window[1:] == C.IPFIX_VERSION))
        if cand.size == 0:
            return None
        cand_len = u8[cand + 2].astype(np.int64) * 256 + u8[cand + 3]
        cand_end = cand + cand_len
        keep = (cand_len >= C.MESSAGE_HEADER_BYTES) & (cand_end <= n)
        cand, cand_len, cand_end = cand[keep], cand_len[keep], cand_end[keep]
        after = np.minimum(cand_end, n - 2)
        follows = (cand_end == n) | (
            (cand_end + 2 <= n) & (u8[after] == 0) & (u8[after + 1] == C.IPFIX_VERSION)
        )
        cand, cand_len = cand[follows], cand_len[follows]
        if cand.size == 0:
            return None
        ok = np.flatnonzero(_sets_tile(u8, cand, cand_len))
        return int(cand[ok[0]]) if ok.size else None

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
        if self.frames is not None and len(self.frames.msg_version) == m:
            self.msg_version = self.frames.msg_version
            self.msg_uptime = self.frames.msg_uptime
        else:
            self.msg_version = np.full(m, C.IPFIX_VERSION, dtype=np.int64)
            self.msg_uptime = np.zeros(m, dtype=np.int64)
        self.msg_domain = _gather_be(u8, st + 12, 4) | (self.msg_version << 32)
        self.msg_records = np.zeros(m, dtype=np.int64)
        self.restart = restart_flags(
            self.d, self.msg_domain, self.msg_seq, self.msg_uptime, self.msg_export_s * 1000
        )
        # "simple" message: exactly one non-empty data set filling it (the bulk of any stream)
        has_set = ln >= C.MESSAGE_HEADER_BYTES + C.SET_HEADER_BYTES
        at = np.where(has_set, st + C.MESSAGE_HEADER_BYTES, 0)
        set_id = _gather_be(u8, at, 2)
        set_len = _gather_be(u8, at + 2, 2)
        simple = has_set & (set_id >= C.MIN_DATA_SET_ID) & (set_len == ln - C.MESSAGE_HEADER_BYTES)
        simple &= (set_len > C.SET_HEADER_BYTES) & ~self.restart
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
        check_tiling = self.frames is None  # a datagram's message ends with its datagram
        while off < n:  # loop over messages (or runs of equal-length messages)
            if n - off >= C.MESSAGE_HEADER_BYTES:
                version, length = unpack(buf, off)
                if version == C.IPFIX_VERSION and C.MESSAGE_HEADER_BYTES <= length <= n - off:
                    if length == prev_length and cool_down <= 0:
                        run = _equal_length_run(u8, off, length)
                        if run >= 4 and check_tiling:
                            run = self._tiling_run(off, length, run)
                            if not self._followed_by_message(off + run * length):
                                run -= 1  # the last one may be cut short: checked alone
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
                    if check_tiling and not self._looks_whole(off, length):
                        resync = self._resync_in(off, length)
                        if resync is not None:  # truncated: the next message starts inside it
                            off = self._truncated_message(off, resync, starts, lengths)
                            prev_length = -1
                            continue
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

    def _tiling_run(self, off: int, length: int, run: int) -> int:
        """How many of `run` equal-length messages from `off` have sets tiling them exactly."""
        u8 = self.u8
        st = off + length * np.arange(run, dtype=np.int64)
        one_set = _gather_be(u8, st + C.MESSAGE_HEADER_BYTES + 2, 2) == (
            length - C.MESSAGE_HEADER_BYTES
        )
        if length < C.MESSAGE_HEADER_BYTES + C.SET_HEADER_BYTES:
            one_set[:] = length == C.MESSAGE_HEADER_BYTES
        if one_set.all():
            return run
        rest = np.flatnonzero(~one_set)
        tiles = _sets_tile(u8, st[rest], np.full(len(rest), length, np.int64))
        return int(rest[~tiles][0]) if not tiles.all() else run

    def _truncated_message(
        self, off: int, resync: int, starts: list[int], lengths: list[int]
    ) -> int:
        """Keep the whole sets of a message cut short at `resync`; quarantine the rest."""
        keep_to = off
        if resync - off >= C.MESSAGE_HEADER_BYTES:
            keep_to = self._tile_end(off, resync)
            starts.append(off)
            lengths.append(keep_to - off)
        if resync > keep_to:
            self._quarantine(keep_to, resync - keep_to, C.REASON_TRUNCATED_MESSAGE)
        return resync

    def _simple_run(
        self, a: int, b: int, st: np.ndarray, ln: np.ndarray, set_id: np.ndarray
    ) -> None:
        """Messages a..b-1, each one data set: filed in bulk when all their templates are usable.

        No template or sampler state can change inside such a run unless one of its sets is
        options data or has no usable template; then the run goes message by message.
        """
        keys = self.msg_domain[a:b] * 65536 + set_id[a:b]
        uniq = distinct(keys)
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
        stream = int(self.msg_domain[msg])
        v9 = self.msg_version[msg] == C.NETFLOW_V9_VERSION
        if self.restart[msg]:
            self._restart_stream(stream)
        end = off + length
        pos = off + C.MESSAGE_HEADER_BYTES
        while pos < end:  # loop over sets
            if end - pos < C.SET_HEADER_BYTES:
                self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH)
                break
            set_id, set_len = unpack_set(buf, pos)
            if set_len < C.SET_HEADER_BYTES or pos + set_len > end:
                self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH)
                break
            body, pos = pos + C.SET_HEADER_BYTES, pos + set_len
            if set_id < C.MIN_DATA_SET_ID:
                if v9:
                    self._v9_non_data_set(set_id, body, pos, stream, msg)
                else:
                    self._non_data_set(set_id, body, pos, stream, msg)
                continue
            if body == pos:
                continue  # empty data set
            tpl = templates.get((stream, set_id))
            if tpl is not None and tpl.error is None and not tpl.scope_count:
                tpl.chunks.append((body, pos, self.n_chunks, msg, len(self.snapshots) - 1))
                self.n_chunks += 1
                self.pending_templates[id(tpl)] = tpl
            else:
                self._special_data_set(tpl, set_id, body, pos, stream, msg)
        self._resolve_deferred()

    def _resolve_deferred(self) -> None:
        """Second pass: earlier data sets of templates this message defined (its samplers known)."""
        deferred, self.deferred = self.deferred, []
        for tpl, *waiting in deferred:
            self._resolve(tpl, *waiting)

    def _restart_stream(self, stream: int) -> None:
        """The exporter restarted: forget this stream's templates, samplers and waiting data."""
        templates, samplers = self.d._templates, self.d._samplers
        for key in [k for k in templates if k[0] == stream]:
            del templates[key]
        dropped = [k for k in samplers if k[0] == stream]
        for key in dropped:
            del samplers[key]
        if dropped:
            self.snapshots.append(dict(samplers))
        for key in [k for k in self.waiting if k[0] == stream]:
            del self.waiting[key]  # they stay quarantined as "template unknown"

    def _non_data_set(self, set_id: int, body: int, end: int, stream: int, msg: int) -> None:
        """Template and options template sets; anything else below 256 is quarantined."""
        if set_id in (C.TEMPLATE_SET_ID, C.OPTIONS_TEMPLATE_SET_ID):
            self._template_set(set_id, body, end, stream)
        else:
            start = body - C.SET_HEADER_BYTES
            self._quarantine(start, end - start, C.REASON_RESERVED_SET_ID)
            self.msg_records[msg] += 1

    def _v9_non_data_set(self, set_id: int, body: int, end: int, stream: int, msg: int) -> None:
        """NetFlow v9 flowsets 0 (templates) and 1 (options templates); 2..255 are reserved."""
        if set_id == C.V9_TEMPLATE_FLOWSET_ID:
            self._v9_template_flowset(body, end, stream)
        elif set_id == C.V9_OPTIONS_TEMPLATE_FLOWSET_ID:
            self._v9_options_template_flowset(body, end, stream)
        else:
            start = body - C.SET_HEADER_BYTES
            self._quarantine(start, end - start, C.REASON_RESERVED_SET_ID)
            self.msg_records[msg] += 1

    def _special_data_set(
        self, tpl: _Template | None, set_id: int, body: int, end: int, stream: int, msg: int
    ) -> None:
        """Data set of an unknown or rejected template (quarantined) or of an options template."""
        start = body - C.SET_HEADER_BYTES
        if tpl is None:
            entry = self._quarantine(start, end - start, C.REASON_TEMPLATE_UNKNOWN)
            self.unknown.append((entry, stream, set_id))
            waiting = (entry, body, end, self.n_chunks, msg)
            self.waiting.setdefault((stream, set_id), []).append(waiting)
            self.n_chunks += 1  # keeps its place in the output order if resolved later
            self.msg_records[msg] += 1
        elif tpl.error is not None:
            count = (end - body) // tpl.fixed_length if tpl.fixed_length else 1
            if count:
                self._quarantine(start, end - start, tpl.error, count)
                self.msg_records[msg] += count
        else:
            self._options_data(tpl, body, end, msg)

    # ---------------------------------------------------------------- templates
    def _define(
        self, stream: int, tid: int, fields: list, scope: int, error: str | None, at: int, end: int
    ) -> None:
        """Store one template definition; data sets waiting for it are filed under it now."""
        tpl = _Template(stream, tid, tuple(fields), scope, error)
        if tpl.error is not None:
            self._quarantine(at, end - at, tpl.error, 0)
        if tid < C.MIN_DATA_SET_ID:
            return
        templates = self.d._templates
        old = templates.get((stream, tid))
        if old is not None and (old.fields, old.scope_count) == (tpl.fields, tpl.scope_count):
            tpl = old  # a refresh of the same definition keeps the object (and its pending sets)
        else:
            templates[(stream, tid)] = tpl
        for waiting in self.waiting.pop((stream, tid), []):  # second pass, after this message
            self.deferred.append((tpl, *waiting))

    def _resolve(
        self, tpl: _Template, entry: QuarantineEntry, body: int, end: int, chunk: int, msg: int
    ) -> None:
        """A data set that preceded its template: decode it with this (the next) definition."""
        self.msg_records[msg] -= 1  # its provisional count as an unknown set
        if tpl.error is not None:
            count = (end - body) // tpl.fixed_length if tpl.fixed_length else 1
            entry.reason, entry.records = tpl.error, count
            self.msg_records[msg] += count
            if count == 0:
                self.resolved.add(id(entry))
            return
        self.resolved.add(id(entry))
        if tpl.scope_count:
            self._options_data(tpl, body, end, msg)
            return
        tpl.chunks.append((body, end, chunk, msg, len(self.snapshots) - 1))
        self.pending_templates[id(tpl)] = tpl

    def _template_set(self, set_id: int, pos: int, end: int, stream: int) -> None:
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
                        if k[0] == stream and bool(t.scope_count) == options
                    ]:
                        del templates[key]
                else:
                    templates.pop((stream, tid), None)
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
            self._define(stream, tid, fields, scope, error, rec_start, pos)

    def _v9_template_flowset(self, pos: int, end: int, stream: int) -> None:
        """v9 template records: template id, field count, (type, length) pairs; no withdrawals."""
        buf = self.buf
        while end - pos >= 4:
            if not any(buf[pos:end]):
                return  # padding
            rec_start = pos
            tid, count = C.SET_HEADER.unpack_from(buf, pos)
            pos += 4
            if count == 0 or end - pos < 4 * count:
                self._quarantine(rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0)
                return
            fields = self._v9_fields(pos, count)
            pos += 4 * count
            error = C.REASON_BAD_TEMPLATE if tid < C.MIN_DATA_SET_ID else None
            self._define(stream, tid, fields, 0, error, rec_start, pos)

    def _v9_options_template_flowset(self, pos: int, end: int, stream: int) -> None:
        """v9 options templates: id, scope length and option length in BYTES, then the fields.

        Scope fields (system, interface, line card, cache, template) are skipped by length.
        """
        buf = self.buf
        while end - pos >= C.V9_OPTIONS_TEMPLATE_HEADER.size:
            if not any(buf[pos:end]):
                return  # padding
            rec_start = pos
            tid, scope_len, option_len = C.V9_OPTIONS_TEMPLATE_HEADER.unpack_from(buf, pos)
            pos += C.V9_OPTIONS_TEMPLATE_HEADER.size
            if (
                scope_len == 0
                or scope_len % 4
                or option_len % 4
                or end - pos < scope_len + option_len
            ):
                self._quarantine(rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0)
                return
            n_scope = scope_len // 4
            fields = [(-1, n) for _, n in self._v9_fields(pos, n_scope)]
            fields += self._v9_fields(pos + scope_len, option_len // 4)
            pos += scope_len + option_len
            error = C.REASON_BAD_TEMPLATE if tid < C.MIN_DATA_SET_ID else None
            self._define(stream, tid, fields, n_scope, error, rec_start, pos)

    def _v9_fields(self, pos: int, count: int) -> list[tuple[int, int]]:
        """`count` (type, length) pairs at `pos`; vendor-specific types (≥ 32768) become -1."""
        pairs = np.frombuffer(self.buf, dtype=">u2", count=2 * count, offset=pos).reshape(-1, 2)
        return [(-1 if t & C.V9_VENDOR_BIT else t, n) for t, n in pairs.tolist()]

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
        # v9 sampler options carry FLOW_SAMPLER_ID as an option field (the scope is the system)
        by_selector = bool(scope_ies & {C.IE_SELECTOR_ID, C.IE_SAMPLER_ID}) or (
            tpl.version == C.NETFLOW_V9_VERSION
        )
        for i in range(vals.n):  # options records: a handful per file
            n_value = int(n_values[i])
            if not 1 <= n_value <= _U32_MAX:
                continue
            domain = tpl.domain
            if C.IE_OBSERVATION_DOMAIN_ID in scope_ies and domain_col is not None:
                value = int(domain_col[i])
                domain = (tpl.version << 32) | value if value else tpl.domain
            if by_selector and selector_col is not None:
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
        epoch_list = distinct(epochs[missing])
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
        msg = chunk_info[:, 3][set_idx]
        export_ms = self._msg_export_ms[msg]
        uptime = self.msg_uptime[msg] if tpl.version == C.NETFLOW_V9_VERSION else None
        start_ms, end_ms = _times_ms(vals, export_ms, uptime)
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
            observation_domain_id=(np.full(n, tpl.domain & _U32_MAX, dtype=np.uint32), None),
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
        by_version = self.stats.records_by_version
        by_version[tpl.version] = by_version.get(tpl.version, 0) + int(keep.sum())
        self.columns.add(cols, info[:, 2][set_idx[keep]])

    # ---------------------------------------------------------------- end of buffer
    def _finish(self) -> DecodeResult:
        self._msg_export_ms = self.msg_export_s * 1000
        for tpl in self.pending_templates.values():
            self._flush_template(tpl)
        for entry, stream, tid in self.unknown:  # count records once the template is known
            tpl = self.d._templates.get((stream, tid))
            if id(entry) not in self.resolved and tpl is not None and tpl.fixed_length:
                entry.records = (entry.length - C.SET_HEADER_BYTES) // tpl.fixed_length
        if self.resolved:
            self.quarantine = [q for q in self.quarantine if id(q) not in self.resolved]
        increment = np.where(self.msg_version == C.IPFIX_VERSION, self.msg_records, 1)
        sequence_stats(self.d, self.msg_domain, self.msg_seq, increment, self.restart, self.stats)
        if self.frames is not None:
            self.frames.to_file_offsets(self.quarantine)
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


def _take(values, keep: np.ndarray):
    """Rows `keep` of a batch column part (None and ALL_NULL stand for whole columns)."""
    return values if values is None or values is ALL_NULL else values[keep]
