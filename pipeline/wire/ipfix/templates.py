"""Templates and field values: a template definition and the vectorised walk of its records.

A `Template` is one (options) template as the exporter defined it; `decode_sets` turns all data
sets filed under it into a `Values` (IE → uint64 array, 16-byte IEs → (hi, lo)) at once:
`np.frombuffer` with a big-endian structured dtype for fixed-length templates, a lockstep walk
(loop over record index × field, vectorised across sets) for templates with variable-length
fields. No Python loop runs over records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.wire.ipfix import constants as C

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
    **C.VENDOR_ACCEPTED_LENGTHS,  # vendor IEs: pipeline.wire.ipfix.vendor
}
_MAX_RECORD_BYTES = C.MAX_MESSAGE_BYTES - C.MESSAGE_HEADER_BYTES - C.SET_HEADER_BYTES
# volume IEs: a zero-length one would read as 0 bytes/packets, so its template is refused
COUNTER_IES = (
    frozenset(
        {
            C.IE_OCTET_DELTA_COUNT,
            C.IE_PACKET_DELTA_COUNT,
            C.IE_OCTET_TOTAL_COUNT,
            C.IE_PACKET_TOTAL_COUNT,
        }
    )
    | C.VENDOR_VOLUME_IES
)


@dataclass(eq=False)
class Template:
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
        elif (
            self.error is None
            and not self.scope_count
            and any(n == 0 and ie in COUNTER_IES for ie, n in self.fields)
        ):
            self.error = C.REASON_ZERO_LENGTH_COUNTER

    @property
    def version(self) -> int:
        return self.domain >> 32

    def records_in(self, n_bytes: int) -> int:
        """Records a set body of `n_bytes` holds as counted when set aside (1 if variable)."""
        return n_bytes // self.fixed_length if self.fixed_length else 1

    def field_offsets(self) -> dict[int, tuple[int, int]]:
        """First occurrence of each read IE → (byte offset in record, length); fixed templates."""
        out: dict[int, tuple[int, int]] = {}
        pos = 0
        for ie, n in self.fields:
            if ie in ACCEPTED_LENGTHS and ie not in out and n != 0:
                out[ie] = (pos, n)
            pos += n
        return out


class Values:
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


def be_uint(byte_matrix: np.ndarray) -> np.ndarray:
    """Big-endian unsigned value of each row of an (n, w ≤ 8) uint8 matrix, as uint64."""
    n, w = byte_matrix.shape
    padded = np.zeros((n, 8), dtype=np.uint8)
    padded[:, 8 - w :] = byte_matrix
    return padded.view(">u8").ravel().astype(np.uint64)


def gather_be(u8: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """Big-endian unsigned `width`-byte values at absolute offsets of a byte buffer, as int64."""
    idx = np.minimum(offsets[:, None] + np.arange(width), len(u8) - 1)
    return be_uint(u8[idx]).astype(np.int64)


def _native(values: np.ndarray) -> np.ndarray:
    """A big-endian field as a contiguous native-order array of the same width."""
    return values.astype(values.dtype.newbyteorder("="))


def _values_fixed(tpl: Template, joined: bytes) -> Values:
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
    vals = Values(len(arr))
    for ie, (_, n) in offsets.items():
        if n == 16:
            vals.pair[ie] = (_native(arr[f"h{ie}"]), _native(arr[f"l{ie}"]))
        elif n in (1, 2, 4, 8):
            vals.uint[ie] = _native(arr[f"u{ie}"])
        else:
            vals.uint[ie] = be_uint(np.ascontiguousarray(arr[f"u{ie}"]))
    return vals


def _walk_variable(
    u8: np.ndarray, tpl: Template, starts: np.ndarray, ends: np.ndarray
) -> tuple[Values, np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Walk all sets of a variable-length template in lockstep (record index × field).

    Returns the values, the set index of each record (records of a set in order, sets interleaved
    by record index), the (set index, byte offset) of records that overrun their set and where
    each set's unread rest starts (its end after an overrun).
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
    vals = Values(len(sets))
    done: set[int] = set()
    for j, (ie, n) in enumerate(tpl.fields):
        if ie not in wanted or ie in done or n == 0 or not per_field_offs[j]:
            continue
        done.add(ie)
        offs = np.concatenate(per_field_offs[j])[order]
        if n == 16:
            idx = offs[:, None] + np.arange(16)
            mat = u8[np.minimum(idx, limit)]
            vals.pair[ie] = (be_uint(mat[:, :8]), be_uint(mat[:, 8:]))
        else:
            mat = u8[np.minimum(offs[:, None] + np.arange(n), limit)]
            vals.uint[ie] = be_uint(mat)
    pos[~active] = ends[~active]  # an overrunning record is set aside up to the set's end
    return vals, sets[order], overruns, pos


def decode_sets(
    buf: memoryview, u8: np.ndarray, tpl: Template, starts: np.ndarray, ends: np.ndarray
) -> tuple[Values, np.ndarray, np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Decode all records of the data sets buf[starts[i]:ends[i]] (payloads) of one template.

    Returns the values, the set index of each record, the records per set (an overrunning record
    counts, for sequence checks), the (set index, byte offset) of each overrunning record and
    where each set's trailing bytes (shorter than one record) start (= its end when none).
    """
    if tpl.fixed_length is not None:
        rec = tpl.fixed_length
        counts = (ends - starts) // rec
        tail = starts + counts * rec
        joined = b"".join(map(buf.__getitem__, map(slice, starts.tolist(), tail.tolist())))
        vals = _values_fixed(tpl, joined)
        return vals, np.repeat(np.arange(len(starts)), counts), counts, [], tail
    vals, set_idx, overruns, tail = _walk_variable(u8, tpl, starts, ends)
    counts = np.bincount(set_idx, minlength=len(starts))
    for i, _ in overruns:
        counts[i] += 1
    return vals, set_idx, counts, overruns, tail
