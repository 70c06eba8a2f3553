"""Per-stream bookkeeping shared by IPFIX, NetFlow v9 and v5: exporter restarts and sequence gaps.

A stream is one (version, observation domain) of one exporter: key version << 32 | domain. The
state lives on the decoder (`_last`: last sequence, uptime and export time; `_session`: the IPFIX
session's sequence range and export times; `_seq_next`: expected next sequence number; `_seen`:
hashes of the datagrams decoded), so consecutive decode calls continue a stream.
"""

from __future__ import annotations

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.records import DecodeStats

_U32_MAX = 2**32 - 1


def distinct(values: np.ndarray) -> list[int]:
    """Sorted distinct values (fast path for the common single-value array)."""
    if len(values) and values.min() == values.max():
        return [int(values[0])]
    return np.unique(values).tolist()


def _signed(delta: np.ndarray | int):
    """A 32-bit sequence difference as a signed step."""
    return (delta + 2**31) % 2**32 - 2**31


def restart_flags(
    decoder,
    stream: np.ndarray,
    seq: np.ndarray,
    uptime_ms: np.ndarray,
    export_ms: np.ndarray,
    stragglers: np.ndarray | None = None,
) -> np.ndarray:
    """Messages where the exporter restarted (state of earlier calls included; updated here).

    `stragglers` (IPFIX), when given, is set where a message was sent by the session before the
    last restart (see `_ipfix_restarts`): it belongs to the previous session's templates.

    v9/v5: sysUptime steps back by more than a tolerance and the boot time it implies is after
    the previous packet's export time (a mere step back, as between captures taken apart, is
    not a restart), unless the boot time moved by 2^32 ms (a 32-bit uptime wrap). IPFIX: see
    `_ipfix_restarts` (sequence number, export time and the session's sequence range).
    """
    out = np.zeros(len(stream), dtype=bool)
    for s in distinct(stream) if len(stream) else []:  # loop over streams
        idx = np.flatnonzero(stream == s)
        sq, up, ex = seq[idx], uptime_ms[idx], export_ms[idx]
        if s >> 32 == C.IPFIX_VERSION:
            flags, late = _ipfix_restarts(decoder, s, sq, ex)
            out[idx] = flags
            if stragglers is not None:
                stragglers[idx] = late
            continue
        last = decoder._last.get(s)
        prev_up = np.concatenate(([last[1] if last else up[0]], up[:-1]))
        prev_ex = np.concatenate(([last[2] if last else ex[0]], ex[:-1]))
        back = up < prev_up - C.RESTART_UPTIME_TOLERANCE_MS
        boot = ex - up
        booted_since = boot > prev_ex - C.UPTIME_WRAP_TOLERANCE_MS  # after the last packet
        wrap = np.abs(boot - (prev_ex - prev_up) - 2**32) <= C.UPTIME_WRAP_TOLERANCE_MS
        out[idx] = back & booted_since & ~wrap
        decoder._last[s] = (int(sq[-1]), int(up[-1]), int(ex[-1]))
    return out


def _ipfix_restarts(
    decoder, s: int, sq: np.ndarray, ex: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """IPFIX restarts of one stream, from more evidence than one sequence step.

    The session state (decoder._session: highest and lowest sequence number seen, newest export
    time, export time at the restart and the previous session's highest, -1 before any restart)
    persists across calls. A restart is a message not sent before the newest one seen (export
    time not earlier) whose sequence number either falls below everything the session has
    shown — by more than the tolerance, or from at least the tolerance to below it (a reset to
    ~0) — or steps back that far from the highest and the stream's next message continues from
    it rather than from the highest (without a next message in the call: its export time is
    later than the newest by a reboot's time, 10 s). Other steps back are reordering (a template
    message captured after the burst of data it precedes; a late message). A message sent before
    the restart (earlier export time) whose sequence number is nearer the previous session's
    highest than this one's is a straggler of the previous session: it moves no state and is
    returned in the second array. In-order streams take a vectorised path; others a loop over
    their messages.
    """
    tol = C.RESTART_SEQUENCE_TOLERANCE
    state = decoder._session.get(s)
    if state is None:
        state = (int(sq[0]), int(sq[0]), int(ex[0]), -1, -1)
    hi, lo, newest, start, before = state
    flags = np.zeros(len(sq), dtype=bool)
    late = np.zeros(len(sq), dtype=bool)
    prev_sq = np.concatenate(([hi], sq[:-1]))
    if (_signed(sq - prev_sq) >= 0).all() and (start < 0 or (ex >= start).all()):  # in order
        decoder._session[s] = (int(sq[-1]), lo, max(newest, int(ex.max())), start, before)
        return flags, late
    for i, (q, e) in enumerate(zip(sq.tolist(), ex.tolist(), strict=True)):  # loop over messages
        step = _signed(q - hi)
        if e < start and abs(_signed(q - before)) < abs(step):
            late[i] = True  # sent by the previous session
            continue
        if step >= 0:
            hi, newest = q, max(newest, e)
            continue
        below = _signed(q - lo)
        restart = e >= newest and (below < -tol or q < tol <= lo)
        if not restart and e >= newest and (step < -tol or q < tol <= hi):  # back to ~0 ...
            if i + 1 < len(sq):  # ... and the next message continues from it, not from before
                nxt = int(sq[i + 1])
                restart = abs(_signed(nxt - q)) < abs(_signed(nxt - hi))
            else:  # nothing follows in this call: export time moved on by a reboot's time
                restart = e >= newest + C.RESTART_MIN_EXPORT_GAP_MS
        if restart:
            flags[i] = True
            hi, lo, newest, start, before = q, q, e, e, hi
        elif below < 0:
            lo = q  # reordered: the session's range grows downwards
    decoder._session[s] = (hi, lo, newest, start, before)
    return flags, late


def unsplittable(
    sets: list[tuple],
    stream: np.ndarray,
    seq: np.ndarray,
    msg_records: np.ndarray,
    version: np.ndarray,
    restart: np.ndarray,
    v9_data: np.ndarray,
) -> int:
    """Records of data sets whose template was never seen, estimated from the export headers.

    `sets`: (quarantine entry, message, payload bytes). The sequence number counts the data
    records sent before a message, so the message held (the next sequence number of its stream
    and session, in sequence order; equal numbers in arrival order) − (its own); minus the records
    decoded or counted from it, the rest belongs to its unsplittable sets (shared by their bytes).
    NetFlow v9 (whose sequence counts packets): the header's count of records minus its template
    records (`v9_data`, -1 where unknown) is what the packet held. Where no next message exists in
    the call, or the estimate is below 1 record per set or above 1 record per byte (a loss between
    the messages, not records of the set), the set counts as 1 record, "record count unknown".
    Updates the entries and `msg_records`; returns the records estimated.
    """
    by_msg: dict[int, list[tuple]] = {}
    for entry, msg, size in sets:  # loop over unsplittable sets
        by_msg.setdefault(msg, []).append((entry, size))
    msgs = np.array(sorted(by_msg), dtype=np.int64)
    held = np.where(version[msgs] == C.NETFLOW_V9_VERSION, v9_data[msgs], -1)
    ipfix = version[msgs] == C.IPFIX_VERSION
    for s in distinct(stream[msgs[ipfix]]) if ipfix.any() else []:  # loop over streams
        idx = np.flatnonzero(stream == s)
        session = np.cumsum(restart[idx])
        step = _signed(np.diff(seq[idx], prepend=seq[idx][:1]))
        unwrapped = np.cumsum(step)
        order = np.lexsort((idx, unwrapped, session))  # by session, sequence, arrival
        successor = np.full(len(idx), -1, dtype=np.int64)
        same = session[order[1:]] == session[order[:-1]]
        successor[order[:-1][same]] = order[1:][same]
        wanted = np.flatnonzero(np.isin(idx, msgs))
        has_next = successor[wanted] >= 0
        where = np.searchsorted(msgs, idx[wanted])
        held[where[has_next]] = unwrapped[successor[wanted][has_next]] - unwrapped[wanted][has_next]
    total = 0
    for m, h in zip(msgs.tolist(), held.tolist(), strict=True):  # loop over such messages
        group = by_msg[m]
        sizes = np.array([size for _, size in group], dtype=np.int64)
        estimate = h - (int(msg_records[m]) - len(group)) if h >= 0 else -1
        if not len(group) <= estimate <= sizes.sum():
            for entry, _ in group:
                entry.reason, entry.records = C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED, 1
            continue
        share = np.maximum(1, estimate * sizes // sizes.sum())
        share[np.argmax(sizes)] += estimate - share.sum()
        if share.min() < 1:  # rounding left a set without a record: split evenly instead
            share = np.full(len(group), estimate // len(group))
            share[0] += estimate - share.sum()
        for (entry, _), n in zip(group, share.tolist(), strict=True):
            entry.reason, entry.records = C.REASON_TEMPLATE_NEVER_SEEN, int(n)
        msg_records[m] += estimate - len(group)
        total += estimate
    return total


_SEQUENCE_UNITS = {C.IPFIX_VERSION: "records", C.NETFLOW_V9_VERSION: "packets"}


def sequence_stats(
    decoder,
    stream: np.ndarray,
    seq: np.ndarray,
    increment: np.ndarray,
    restart: np.ndarray,
    stats: DecodeStats,
) -> None:
    """Per-stream sequence check: gaps (discontinuities) and missing (net shortfall: the jump
    forward and the step back of a reordered message cancel).

    Expected next = previous sequence + previous increment (IPFIX data records, v9 1 packet,
    v5 flows), mod 2^32; the expectation continues from the decoder's previous call and starts
    afresh after a restart.
    """
    for s in distinct(stream) if len(stream) else []:  # loop over streams
        idx = np.flatnonzero(stream == s)
        sq, inc, rs = seq[idx], increment[idx], restart[idx]
        first = decoder._seq_next.get(s, -1)
        expected = np.concatenate(([first], (sq[:-1] + inc[:-1]) % 2**32))
        known = (expected >= 0) & ~rs
        step = (sq - expected + 2**31) % 2**32 - 2**31
        gap = known & (step != 0)
        gaps = int(gap.sum())
        missing = max(0, int(step[gap].sum()))  # net: a reordered message is not lost
        decoder._seq_next[s] = int((sq[-1] + inc[-1]) % 2**32)
        version = s >> 32
        stats.sequence.append(
            {
                "version": version,
                "domain": s & _U32_MAX,
                "messages": len(idx),
                "gaps": gaps,
                "missing": missing,
                "unit": _SEQUENCE_UNITS.get(version, "flows"),
                "restarts": int(rs.sum()),
            }
        )
        stats.sequence_gaps += gaps
