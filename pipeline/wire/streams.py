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
) -> np.ndarray:
    """Messages where the exporter restarted (state of earlier calls included; updated here).

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
            out[idx] = _ipfix_restarts(decoder, s, sq, ex)
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


def _ipfix_restarts(decoder, s: int, sq: np.ndarray, ex: np.ndarray) -> np.ndarray:
    """IPFIX restarts of one stream, from more evidence than the sequence number.

    The session state (decoder._session: highest sequence, lowest sequence, newest export time,
    export time at the session's start) persists across calls. A message whose sequence steps
    back from the session's highest is a restart only when the step is large (more than the
    tolerance, or from at least the tolerance to below it) AND it was sent after everything seen
    (export time later than the newest; in the same second, only if its sequence also falls
    below every sequence the session has shown). A message sent earlier than the newest one
    (a late, reordered message) or before the session began is never a restart and moves no
    state. In-order streams take a vectorised path; others a loop over their messages.
    """
    tol = C.RESTART_SEQUENCE_TOLERANCE
    state = decoder._session.get(s)
    if state is None:
        state = (int(sq[0]), int(sq[0]), int(ex[0]), int(ex[0]))
    hi, lo, newest, start = state
    flags = np.zeros(len(sq), dtype=bool)
    prev_sq = np.concatenate(([hi], sq[:-1]))
    prev_ex = np.concatenate(([newest], ex[:-1]))
    if (_signed(sq - prev_sq) >= 0).all() and (ex >= prev_ex).all():  # in order: the bulk
        decoder._session[s] = (int(sq[-1]), lo, int(ex[-1]), start)
        return flags
    for i, (q, e) in enumerate(zip(sq.tolist(), ex.tolist(), strict=True)):  # loop over messages
        step = _signed(q - hi)
        if e < start or (step >= 0 and e < newest):
            continue  # sent before this session began, or late with an inconsistent sequence
        if step >= 0:
            hi, newest = q, max(newest, e)
            continue
        below = _signed(q - lo) < 0
        large = step < -tol or (q < tol <= hi)
        if large and (e > newest or (e == newest and below)):
            flags[i] = True
            hi, lo, newest, start = q, q, e, e
        elif below:
            lo = q  # reordered: the session's range grows downwards
    decoder._session[s] = (hi, lo, newest, start)
    return flags


def unsplittable(
    sets: list[tuple],
    stream: np.ndarray,
    seq: np.ndarray,
    msg_records: np.ndarray,
    version: np.ndarray,
    restart: np.ndarray,
) -> int:
    """Records of data sets whose template was never seen, estimated from IPFIX sequence numbers.

    `sets`: (quarantine entry, message, payload bytes). The sequence number counts the data
    records sent before a message, so the message held (the next sequence number of its stream
    and session, in sequence order; equal numbers in arrival order) − (its own); minus the records
    decoded or counted from it, the rest belongs to its unsplittable sets (shared by their bytes).
    Where no next message exists in the call (or NetFlow v9, whose sequence counts packets), or
    the estimate is below 1 record per set or above 1 record per byte (a loss between the
    messages, not records of the set), the set counts as 1 record, "record count unknown".
    Updates the entries and `msg_records`; returns the records estimated.
    """
    by_msg: dict[int, list[tuple]] = {}
    for entry, msg, size in sets:  # loop over unsplittable sets
        by_msg.setdefault(msg, []).append((entry, size))
    msgs = np.array(sorted(by_msg), dtype=np.int64)
    held = np.full(len(msgs), -1, dtype=np.int64)
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
