"""Transport-framed export packets (one per UDP datagram) → one IPFIX buffer + v5 selection.

Each datagram is checked by its version: IPFIX messages are copied; NetFlow v9 packets get a
16-byte IPFIX header in place of their 20-byte one (flowsets follow unchanged, the v9 template
flowsets are parsed by the decoder in their own layout); v5 datagrams are left to netflow_v5.
Datagrams that cannot be framed are quarantined here with the file offset they came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.wire.ipfix import constants as C
from pipeline.wire.records import TRUST_COUNTERS, DecodeResult, DecodeStats, QuarantineEntry

_V9_SHRINK = C.V9_HEADER_BYTES - C.MESSAGE_HEADER_BYTES  # 4


@dataclass
class Frames:
    """Datagrams of one decode call, sorted by what happens to them."""

    payload: bytes
    starts: np.ndarray  # of every datagram, in payload
    lengths: np.ndarray
    file_offsets: np.ndarray
    ipfix_buffer: bytes = b""  # IPFIX and translated v9 messages, in datagram order
    msg_version: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    msg_uptime: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    msg_count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # v9; -1 IPFIX
    msg_datagram: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    msg_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # in buffer
    v5: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # datagram indices
    quarantine: list[QuarantineEntry] = field(default_factory=list)

    def to_file_offsets(self, entries: list[QuarantineEntry]) -> None:
        """Rewrite entries found in `ipfix_buffer` to the source file's offsets and bytes."""
        if not entries:
            return
        offs = np.array([q.offset for q in entries], dtype=np.int64)
        k = np.maximum(np.searchsorted(self.msg_start, offs, side="right") - 1, 0)
        rel = offs - self.msg_start[k]
        v9 = self.msg_version[k] == C.NETFLOW_V9_VERSION
        rel = np.where(v9, np.where(rel >= C.MESSAGE_HEADER_BYTES, rel + _V9_SHRINK, 0), rel)
        dg = self.msg_datagram[k]
        for q, r, d, whole_v9 in zip(
            entries, rel.tolist(), dg.tolist(), (v9 & (rel == 0)).tolist(), strict=True
        ):
            start, length = int(self.starts[d]), int(self.lengths[d])
            size = min(q.length + (_V9_SHRINK if whole_v9 else 0), max(0, length - r))
            q.offset = int(self.file_offsets[d]) + r
            q.payload = self.payload[start + r : start + r + size]
            q.length = size


def _be(u8: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """Big-endian `width`-byte unsigned values at `offsets` (callers keep them in bounds)."""
    out = np.zeros(len(offsets), dtype=np.int64)
    for j in range(width):
        out = out * 256 + u8[offsets + j]
    return out


def datagram_keys(payload: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Key of each export datagram: 64-bit BLAKE2b of its bytes, header included — so of (version,
    observation domain / source id / engine, sequence number, export time, payload); the decoder
    is one exporter address's. 0 for datagrams too short to be an export packet (never deduped).
    """
    mv = memoryview(payload)
    ok = (lengths >= C.MESSAGE_HEADER_BYTES) & (starts >= 0) & (starts + lengths <= len(payload))
    rows = np.flatnonzero(ok)
    a, b = starts[rows].tolist(), (starts[rows] + lengths[rows]).tolist()
    digests = b"".join(
        hashlib.blake2b(mv[i:j], digest_size=8).digest()
        for i, j in zip(a, b, strict=True)  # loop over datagrams
    )
    keys = np.zeros(len(starts), dtype=np.uint64)
    keys[rows] = np.frombuffer(digests, dtype=">u8").astype(np.uint64) | np.uint64(1)
    return keys


def drop_duplicates(
    decoder, payload: bytes, starts: np.ndarray, lengths: np.ndarray, file_offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Leave out datagrams already decoded (earlier in this batch or an earlier call of the same
    decoder): the same export datagram captured twice is decoded once. A restart that reuses a
    sequence number sends other bytes (export time, records), hence another key. Returns the kept
    starts, lengths, file offsets and the number left out."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    file_offsets = np.asarray(file_offsets, dtype=np.int64)
    if not len(starts) == len(lengths) == len(file_offsets):
        return starts, lengths, file_offsets, 0  # a malformed batch: framing reports it
    keys = datagram_keys(payload, starts, lengths)
    keyed = np.flatnonzero(keys)
    if keyed.size == 0:
        return starts, lengths, file_offsets, 0
    _, first = np.unique(keys[keyed], return_index=True)
    repeat = np.ones(keyed.size, dtype=bool)
    repeat[first] = False
    repeat |= np.isin(keys[keyed], decoder._seen)
    decoder._seen = np.union1d(decoder._seen, keys[keyed])
    if not repeat.any():
        return starts, lengths, file_offsets, 0
    keep = np.ones(len(starts), dtype=bool)
    keep[keyed[repeat]] = False
    return starts[keep], lengths[keep], file_offsets[keep], int(repeat.sum())


def frame_datagrams(
    payload: bytes,
    starts: np.ndarray,
    lengths: np.ndarray,
    file_offsets: np.ndarray,
    source: str,
) -> Frames:
    """Check every datagram's header; build the IPFIX buffer; list v5 datagrams and rejects."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    file_offsets = np.asarray(file_offsets, dtype=np.int64)
    frames = Frames(payload, starts, lengths, file_offsets)
    n = len(starts)
    if n == 0:
        return frames
    u8 = np.frombuffer(payload, dtype=np.uint8)
    inside = (starts >= 0) & (lengths >= 0) & (starts + lengths <= len(payload))
    size = np.where(inside, lengths, 0)
    safe = np.where(inside, starts, 0)
    pad = np.concatenate([u8, np.zeros(C.V5_HEADER_BYTES, np.uint8)])  # header reads stay inside
    version = np.where(size >= 2, _be(pad, safe, 2), -1)
    word = _be(pad, safe + 2, 2)  # IPFIX length; v9/v5 count

    reason = np.full(n, "", dtype=object)
    records = np.ones(n, dtype=np.int64)
    is10 = version == C.IPFIX_VERSION
    is9 = version == C.NETFLOW_V9_VERSION
    is5 = version == C.NETFLOW_V5_VERSION
    reason[~np.isin(version, (5, 9, 10))] = C.REASON_UNKNOWN_VERSION
    reason[is10 & (word > size)] = C.REASON_TRUNCATED_MESSAGE
    reason[is10 & (word < C.MESSAGE_HEADER_BYTES)] = C.REASON_SHORT_MESSAGE
    reason[is10 & (size < C.MESSAGE_HEADER_BYTES)] = C.REASON_SHORT_DATAGRAM
    reason[is9 & (size - _V9_SHRINK > C.MAX_MESSAGE_BYTES)] = C.REASON_DATAGRAM_TOO_LONG
    reason[is9 & (size < C.V9_HEADER_BYTES)] = C.REASON_SHORT_DATAGRAM
    v5_body = size - C.V5_HEADER_BYTES
    mismatch = is5 & (v5_body != C.V5_RECORD_BYTES * word)
    reason[mismatch] = C.REASON_V5_COUNT_MISMATCH
    records[mismatch] = np.maximum(1, v5_body[mismatch] // C.V5_RECORD_BYTES)
    reason[is5 & (size < C.V5_HEADER_BYTES)] = C.REASON_SHORT_DATAGRAM
    reason[size == 0] = C.REASON_EMPTY_DATAGRAM
    reason[~inside] = C.REASON_TRUNCATED_MESSAGE

    for i in np.flatnonzero(reason != "").tolist():  # loop over rejected datagrams
        s, ln = int(starts[i]), int(size[i])
        frames.quarantine.append(
            QuarantineEntry(
                source,
                int(file_offsets[i]),
                ln,
                str(reason[i]),
                payload[s : s + ln] if inside[i] else b"",
                int(records[i]),
            )
        )
    ok = reason == ""
    frames.v5 = np.flatnonzero(ok & is5)
    keep = np.flatnonzero(ok & (is9 | is10))
    trailing = keep[is10[keep] & (word[keep] < size[keep])]
    for i in trailing.tolist():  # IPFIX message shorter than its datagram
        s, hl, ln = int(starts[i]), int(word[i]), int(size[i])
        frames.quarantine.append(
            QuarantineEntry(
                source, int(file_offsets[i]) + hl, ln - hl, C.REASON_TRAILING_BYTES,
                payload[s + hl : s + ln], domain=int(_be(pad, safe[i : i + 1] + 12, 4)[0]),
            )
        )  # fmt: skip
    if keep.size == 0:
        return frames
    v9 = is9[keep]
    out_len = np.where(v9, size[keep] - _V9_SHRINK, word[keep])
    frames.msg_datagram = keep
    frames.msg_version = np.where(v9, C.NETFLOW_V9_VERSION, C.IPFIX_VERSION).astype(np.int64)
    frames.msg_uptime = np.where(v9, _be(pad, safe[keep] + 4, 4), 0)
    frames.msg_count = np.where(v9, word[keep], -1).astype(np.int64)
    frames.msg_start = np.concatenate(([0], np.cumsum(out_len)[:-1])).astype(np.int64)
    # v9: version 10, length, then unix secs, sequence, source id as they are (bytes 8..20)
    k9 = keep[v9]
    headers = np.empty((len(k9), C.MESSAGE_HEADER_BYTES), dtype=np.uint8)
    headers[:, 0], headers[:, 1] = 0, C.IPFIX_VERSION
    new_len = size[k9] - _V9_SHRINK
    headers[:, 2], headers[:, 3] = new_len >> 8, new_len & 0xFF
    headers[:, 4:] = u8[starts[k9, None] + np.arange(8, C.V9_HEADER_BYTES)]
    header_mv = memoryview(headers.tobytes())
    mv = memoryview(payload)
    body_from = np.where(v9, starts[keep] + C.V9_HEADER_BYTES, starts[keep]).tolist()
    body_to = (starts[keep] + np.where(v9, size[keep], word[keep])).tolist()
    parts: list = []
    h = 0
    for a, b, is_v9 in zip(body_from, body_to, v9.tolist(), strict=True):  # loop over datagrams
        if is_v9:
            parts.append(header_mv[h : h + C.MESSAGE_HEADER_BYTES])
            h += C.MESSAGE_HEADER_BYTES
        parts.append(mv[a:b])
    frames.ipfix_buffer = b"".join(parts)
    return frames


def merge_results(
    main: DecodeResult, v5: DecodeResult | None, framing: list[QuarantineEntry]
) -> DecodeResult:
    """One result from the IPFIX/v9 run, the v5 decode and the framing rejects."""
    stats = main.stats
    tables = [main.flows]
    quarantine = list(main.quarantine) + list(framing)
    if v5 is not None:
        tables.append(v5.flows)
        quarantine += v5.quarantine
        s5 = v5.stats
        stats.messages += s5.messages
        stats.sequence_gaps += s5.sequence_gaps
        stats.sequence += s5.sequence
        for key in TRUST_COUNTERS:
            setattr(stats, key, getattr(stats, key) + getattr(s5, key))
        for mine, theirs in (
            (stats.records_by_version, s5.records_by_version),
            (stats.sampling_intervals, s5.sampling_intervals),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
    stats.messages += len(framing)
    flows = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    quarantine.sort(key=lambda q: q.offset)
    stats.records_decoded = flows.num_rows - stats.reverse_rows  # records, not rows (biflows)
    stats.quarantine_by_reason = {}
    for q in quarantine:
        stats.quarantine_by_reason[q.reason] = (
            stats.quarantine_by_reason.get(q.reason, 0) + q.records
        )
    stats.records_quarantined = sum(q.records for q in quarantine)
    stats.records_in = stats.records_decoded + stats.records_quarantined
    return DecodeResult(flows, quarantine, stats)


__all__ = ["DecodeStats", "Frames", "frame_datagrams", "merge_results"]
