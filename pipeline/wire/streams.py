"""Per-stream bookkeeping shared by IPFIX, NetFlow v9 and v5: exporter restarts and sequence gaps.

A stream is one (version, observation domain) of one exporter: key version << 32 | domain. The
state lives on the decoder (`_last`: last sequence, uptime and export time; `_seq_next`: expected
next sequence number), so consecutive decode calls continue a stream.
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
    not a restart), unless the boot time moved by 2^32 ms (a 32-bit uptime wrap). IPFIX: the
    sequence number steps back (signed 32-bit difference) by more than a tolerance, or from at
    least the tolerance to below it (a counter reset to 0). A step back among small numbers is
    reordering (e.g. a restarted exporter's data overtaking its template message), not a restart.
    """
    out = np.zeros(len(stream), dtype=bool)
    for s in distinct(stream) if len(stream) else []:  # loop over streams
        idx = np.flatnonzero(stream == s)
        sq, up, ex = seq[idx], uptime_ms[idx], export_ms[idx]
        last = decoder._last.get(s)
        prev_sq = np.concatenate(([last[0] if last else sq[0]], sq[:-1]))
        prev_up = np.concatenate(([last[1] if last else up[0]], up[:-1]))
        prev_ex = np.concatenate(([last[2] if last else ex[0]], ex[:-1]))
        if s >> 32 == C.IPFIX_VERSION:
            step = (sq - prev_sq + 2**31) % 2**32 - 2**31
            tol = C.RESTART_SEQUENCE_TOLERANCE
            flag = (step < -tol) | ((step < 0) & (sq < tol) & (prev_sq >= tol))
        else:
            back = up < prev_up - C.RESTART_UPTIME_TOLERANCE_MS
            boot = ex - up
            booted_since = boot > prev_ex - C.UPTIME_WRAP_TOLERANCE_MS  # after the last packet
            wrap = np.abs(boot - (prev_ex - prev_up) - 2**32) <= C.UPTIME_WRAP_TOLERANCE_MS
            flag = back & booted_since & ~wrap
        out[idx] = flag
        decoder._last[s] = (int(sq[-1]), int(up[-1]), int(ex[-1]))
    return out


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
