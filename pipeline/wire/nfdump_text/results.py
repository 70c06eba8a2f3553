"""Results of the nfdump text readers: flows grouped by router address, set-aside runs, orphans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats, QuarantineEntry


@dataclass
class NfdumpExporterFlows:
    """Flows of one router address of an nfdump text export."""

    exporter_address: str
    result: DecodeResult


def fast_results(cols: dict[str, np.ndarray]) -> list[NfdumpExporterFlows]:
    """Results of a fast path: every row decoded, none set aside."""
    n = len(cols["protocol"])
    rows = pl.DataFrame({"offset": np.zeros(n, np.int64), "length": np.zeros(n, np.int64)})
    return exporter_results(b"", "", rows, np.zeros(n, np.int8), {}, cols)


def _quarantine_runs(
    buf: bytes, source: str, rows: pl.DataFrame, status: np.ndarray, reasons: dict[int, str]
) -> list[QuarantineEntry]:
    """One entry per run of consecutive set-aside lines/objects with the same reason."""
    bad = np.flatnonzero(status != 0)
    if not len(bad):
        return []
    code = status[bad]
    new_run = np.r_[True, (np.diff(bad) != 1) | (code[1:] != code[:-1])]
    run_id = np.cumsum(new_run) - 1
    firsts = bad[new_run]
    lasts = bad[np.r_[new_run[1:], True]]
    counts = np.bincount(run_id)
    offsets = rows.get_column("offset").to_numpy()
    ends = offsets + rows.get_column("length").to_numpy()
    return [
        QuarantineEntry(
            source,
            int(offsets[a]),
            int(ends[b] - offsets[a]),
            reasons[int(status[a])],
            bytes(buf[int(offsets[a]) : int(ends[b])]),
            int(n),
        )
        for a, b, n in zip(firsts.tolist(), lasts.tolist(), counts.tolist(), strict=True)
    ]


def exporter_results(
    buf: bytes,
    source: str,
    rows: pl.DataFrame,
    status: np.ndarray,
    reasons: dict[int, str],
    cols: dict[str, np.ndarray] | None,
) -> list[NfdumpExporterFlows]:
    """Group good rows by router into FLOW_SCHEMA results; set-aside rows go to address ""."""
    quarantine = _quarantine_runs(buf, source, rows, status, reasons)
    out: list[NfdumpExporterFlows] = []
    if cols is not None:
        good = np.flatnonzero(status == 0)
        routers = cols["_router"][good]
        for address in sorted(set(routers.tolist())):
            pick = good[routers == address]
            out.append(NfdumpExporterFlows(address, _table_result(cols, pick)))
    return _with_orphans(out, quarantine)


def _with_orphans(
    results: list[NfdumpExporterFlows], quarantine: list[QuarantineEntry]
) -> list[NfdumpExporterFlows]:
    """Add `quarantine` to the "" entry (created first in the list when needed), keeping the
    flows that entry already has (records without a router address)."""
    if not quarantine:
        return results
    flows = FLOW_SCHEMA.empty_table()
    decoded, intervals = 0, {}
    if results and results[0].exporter_address == "":
        old = results[0].result
        quarantine = old.quarantine + quarantine
        flows, decoded = old.flows, old.stats.records_decoded
        intervals = dict(old.stats.sampling_intervals)
        results = results[1:]
    quarantine.sort(key=lambda q: q.offset)
    n = sum(q.records for q in quarantine)
    by_reason: dict[str, int] = {}
    for q in quarantine:
        by_reason[q.reason] = by_reason.get(q.reason, 0) + q.records
    stats = DecodeStats(
        records_in=decoded + n,
        records_decoded=decoded,
        records_quarantined=n,
        quarantine_by_reason=by_reason,
        sampling_intervals=intervals,
    )
    orphan = DecodeResult(flows, quarantine, stats)
    return [NfdumpExporterFlows("", orphan), *results]


def _table_result(cols: dict[str, np.ndarray], pick: np.ndarray) -> DecodeResult:
    """FLOW_SCHEMA table of rows `pick` (domain 0, sampling interval 0 = unknown)."""
    n = len(pick)
    v4 = cols["ip_version"][pick] == 4
    arrays = []
    for f in FLOW_SCHEMA:
        name = f.name
        mask = None
        if name in ("observation_domain_id", "sampling_interval"):
            values = np.zeros(n, np.uint32)
        else:
            values = cols[name][pick]
        if name in ("src_v4", "dst_v4"):
            mask = ~v4
        elif name.endswith(("_hi", "_lo")):
            mask = v4
        elif name == "flow_direction":
            mask = ~cols["_has_direction"][pick]
        arrays.append(pa.array(values, type=f.type, mask=mask))
    table = pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)
    stats = DecodeStats(records_in=n, records_decoded=n, sampling_intervals={0: n} if n else {})
    return DecodeResult(table, [], stats)
