"""Message framing of an IPFIX buffer: message bounds, set tiling, resynchronisation.

In a file (RFC 5655: messages back to back, no other framing) a message must look whole: its sets
tile it and a message header or the end of the buffer follows. Otherwise it may have been cut
short mid-file, its length field reaching into the next message: the framer then resynchronises
at the first plausible message inside its claimed span, keeps the cut message's whole sets and
quarantines the rest ("truncated message"). Bytes that start no plausible message are quarantined
up to the next plausible header. Runs of equal-length messages (full data messages, the bulk of a
file) are verified at once with numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.templates import gather_be

# quarantine(offset, length, reason): sets a stretch of the buffer aside
Quarantine = Callable[[int, int, str], object]


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


def _next_message_start(buf: bytes, start: int) -> int:
    """Offset of the next plausible message header after `start`, or the end of the buffer."""
    n = len(buf)
    p = buf.find(b"\x00\x0a", start)
    while p != -1 and p + C.MESSAGE_HEADER_BYTES <= n:
        length = int.from_bytes(buf[p + 2 : p + 4], "big")
        if C.MESSAGE_HEADER_BYTES <= length <= n - p and (
            p + length == n or buf[p + length : p + length + 2] == b"\x00\x0a"
        ):
            return p
        p = buf.find(b"\x00\x0a", p + 1)
    return n


def _tile_end(buf: bytes, off: int, limit: int) -> int:
    """End of the run of whole sets (length ≥ 4) from the body of the message at `off`."""
    pos = off + C.MESSAGE_HEADER_BYTES
    while limit - pos >= C.SET_HEADER_BYTES:  # loop over sets
        set_len = (buf[pos + 2] << 8) | buf[pos + 3]
        if set_len < C.SET_HEADER_BYTES or pos + set_len > limit:
            break
        pos += set_len
    return pos


def _followed_by_message(buf: bytes, end: int) -> bool:
    """Whether `end` is the end of the buffer or starts with a version-10 header."""
    return end == len(buf) or (
        end + 2 <= len(buf) and buf[end] == 0 and buf[end + 1] == C.IPFIX_VERSION
    )


def _looks_whole(buf: bytes, off: int, length: int) -> bool:
    """A message whose sets tile it and which is followed by a message or the buffer end.

    Otherwise it may have been cut short mid-file: its length field then reaches into the
    next message (RFC 5655 files carry no other framing), so a resync is looked for.
    """
    end = off + length
    return _followed_by_message(buf, end) and _tile_end(buf, off, end) == end


def _resync_in(u8: np.ndarray, off: int, length: int) -> int | None:
    """First plausible message inside (off, off + length): version 10, 16 ≤ length ≤ bytes
    left, sets tiling it, followed by the end of the buffer or another version-10 header."""
    n = len(u8)
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


def _tiling_run(u8: np.ndarray, off: int, length: int, run: int) -> int:
    """How many of `run` equal-length messages from `off` have sets tiling them exactly."""
    st = off + length * np.arange(run, dtype=np.int64)
    one_set = gather_be(u8, st + C.MESSAGE_HEADER_BYTES + 2, 2) == (length - C.MESSAGE_HEADER_BYTES)
    if length < C.MESSAGE_HEADER_BYTES + C.SET_HEADER_BYTES:
        one_set[:] = length == C.MESSAGE_HEADER_BYTES
    if one_set.all():
        return run
    rest = np.flatnonzero(~one_set)
    tiles = _sets_tile(u8, st[rest], np.full(len(rest), length, np.int64))
    return int(rest[~tiles][0]) if not tiles.all() else run


def _truncated_message(
    buf: bytes,
    off: int,
    resync: int,
    starts: list[int],
    lengths: list[int],
    quarantine: Quarantine,
) -> int:
    """Keep the whole sets of a message cut short at `resync`; quarantine the rest."""
    keep_to = off
    if resync - off >= C.MESSAGE_HEADER_BYTES:
        keep_to = _tile_end(buf, off, resync)
        starts.append(off)
        lengths.append(keep_to - off)
    if resync > keep_to:
        quarantine(keep_to, resync - keep_to, C.REASON_TRUNCATED_MESSAGE)
    return resync


def message_bounds(
    buf: bytes, u8: np.ndarray, quarantine: Quarantine, *, check_tiling: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and lengths of well-formed message headers; bad stretches are quarantined.

    `check_tiling` (files): a message must look whole, else a resync inside it is looked for;
    a datagram's message ends with its datagram, so datagrams are not checked. Where
    consecutive messages have equal length (full data messages), a run of them is verified at
    once with numpy instead of stepping message by message.
    """
    n = len(buf)
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
                    if run >= 4 and check_tiling:
                        run = _tiling_run(u8, off, length, run)
                        if not _followed_by_message(buf, off + run * length):
                            run -= 1  # the last one may be cut short: checked alone
                    if run >= 4:
                        runs.append((np.asarray(starts, np.int64), np.asarray(lengths, np.int64)))
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
                if check_tiling and not _looks_whole(buf, off, length):
                    resync = _resync_in(u8, off, length)
                    if resync is not None:  # truncated: the next message starts inside it
                        off = _truncated_message(buf, off, resync, starts, lengths, quarantine)
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
        nxt = _next_message_start(buf, off + 1)
        quarantine(off, nxt - off, reason)
        off = nxt
    runs.append((np.asarray(starts, np.int64), np.asarray(lengths, np.int64)))
    return np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs])
