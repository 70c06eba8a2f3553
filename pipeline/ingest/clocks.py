"""Flow times checked against the day folder they came from: implausible clocks are set aside.

A day folder `D` holds the flows of local day D (the simulator, most exports) or of UTC day D (a
collector's folders). Its plausible window is the union of both readings, widened by
`ingest.clock_tolerance_minutes` (params.yaml) on each side for flows that started before the
file's hour and exports that arrive late. A record outside it (1970 from an export time of zero,
a far-future clock, a start after its end from uptime arithmetic gone negative) is set aside with
its reason, the rows kept as Arrow IPC in the quarantine payload, and counted.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pyarrow as pa

from pipeline.config import load_params, local_day_bounds_ms
from pipeline.wire.records import DecodeResult, QuarantineEntry

REASON_END_BEFORE_START = "flow end before start"
REASON_BEFORE_WINDOW = "flow time before window"
REASON_AFTER_WINDOW = "flow time after window"
CLOCK_REASONS = (REASON_END_BEFORE_START, REASON_BEFORE_WINDOW, REASON_AFTER_WINDOW)
DAY_MS = 86_400_000


def clock_tolerance_ms(params: dict | None = None) -> int:
    """`ingest.clock_tolerance_minutes` of params.yaml, in milliseconds."""
    params = params or load_params()
    return int(float(params.get("ingest", {}).get("clock_tolerance_minutes", 180)) * 60_000)


def day_window_ms(day: dt.date, tolerance_ms: int, params: dict | None = None) -> tuple[int, int]:
    """[lo, hi] epoch ms a flow of folder `day` may touch: local and UTC day, ± tolerance."""
    local_lo, local_hi = local_day_bounds_ms(day, params)
    utc_lo = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    return min(local_lo, utc_lo) - tolerance_ms, max(local_hi, utc_lo + DAY_MS) + tolerance_ms


def _reason_codes(flows: pa.Table, window: tuple[int, int]) -> np.ndarray:
    """Per row: 0 plausible, else 1 + index into CLOCK_REASONS (first reason that applies)."""
    start = flows.column("flow_start_ms").to_numpy(zero_copy_only=False)
    end = flows.column("flow_end_ms").to_numpy(zero_copy_only=False)
    lo, hi = window
    return np.select([end < start, start < lo, end > hi], [1, 2, 3], default=0).astype(np.int8)


def set_aside_out_of_window(
    result: DecodeResult, window: tuple[int, int], rel: str
) -> DecodeResult:
    """`result` with its implausibly timed rows moved to the quarantine, one entry per reason and
    observation domain (the template id is not known after decoding)."""
    flows = result.flows
    if flows.num_rows == 0:
        return result
    codes = _reason_codes(flows, window)
    if not codes.any():
        return result
    stats = result.stats
    for code, reason in enumerate(CLOCK_REASONS, start=1):
        rows = flows.filter(pa.array(codes == code))
        if rows.num_rows == 0:
            continue
        domains = rows.column("observation_domain_id").to_numpy(zero_copy_only=False)
        for domain in np.unique(domains).tolist():  # loop over domains, not records
            part = rows.filter(pa.array(domains == domain))
            payload = _ipc_bytes(part)
            result.quarantine.append(
                QuarantineEntry(rel, 0, len(payload), reason, payload, part.num_rows, int(domain))
            )
        stats.quarantine_by_reason[reason] = (
            stats.quarantine_by_reason.get(reason, 0) + rows.num_rows
        )
        stats.records_decoded -= rows.num_rows
        stats.records_quarantined += rows.num_rows
    kept = flows.filter(pa.array(codes == 0))
    intervals = kept.column("sampling_interval").to_numpy(zero_copy_only=False)
    ns, counts = np.unique(intervals, return_counts=True)
    stats.sampling_intervals = {int(k): int(c) for k, c in zip(ns, counts, strict=True)}
    return DecodeResult(kept, result.quarantine, stats)


def _ipc_bytes(rows: pa.Table) -> bytes:
    """The set-aside rows as one Arrow IPC stream (readable with pyarrow.ipc.open_stream)."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return sink.getvalue()
