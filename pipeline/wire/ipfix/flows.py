"""Decoded field values → flow columns: times, sampling intervals, addresses, output batches.

Everything here works on whole arrays of records (`templates.Values`); the only Python loops run
over timing IEs, sampler snapshots, options records (a handful per file) and output batches.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix import vendor
from pipeline.wire.ipfix.templates import Template, Values
from pipeline.wire.records import FLOW_SCHEMA
from pipeline.wire.streams import distinct
from pipeline.wire.uptime import uptime_to_epoch_ms

U32_MAX = 2**32 - 1
ALL_NULL = "all null"

# sampler state: (stream, kind, id) → N; kind "selector" (selectorId/samplerId), "template" or
# "domain"
Samplers = dict[tuple[int, str, int], int]


def _u64(values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else values.astype(np.uint64)


def _ntp_to_ms(v: np.ndarray) -> np.ndarray:
    """RFC 7011 dateTimeMicro/Nanoseconds (NTP 64-bit format) → Unix epoch ms."""
    v = v.astype(np.uint64)
    seconds = (v >> np.uint64(32)).astype(np.int64) - C.NTP_UNIX_OFFSET_S
    frac_ms = ((v & np.uint64(U32_MAX)) * np.uint64(1000)) >> np.uint64(32)
    return seconds * 1000 + frac_ms.astype(np.int64)


def times_ms(
    vals: Values, export_ms: np.ndarray, uptime_ms: np.ndarray | None = None
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


def in_record_sampling(vals: Values) -> np.ndarray | None:
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


def update_samplers(tpl: Template, vals: Values, samplers: Samplers) -> tuple[bool, list[int]]:
    """Apply the sampling announcements of decoded options records: (whether one changed, the
    records announcing an invalid N — 0 or above MAX_SAMPLING_INTERVAL —, which withdraw the
    rate of their scope: its records follow the default rule)."""
    invalid: list[int] = []
    n_values = in_record_sampling(vals)
    if n_values is None or vals.n == 0:
        return False, invalid
    scope_ies = {ie for ie, _ in tpl.fields[: tpl.scope_count]}
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
        valid = 1 <= n_value <= C.MAX_SAMPLING_INTERVAL
        if not valid:
            invalid.append(i)
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
        if not valid:
            changed |= samplers.pop(key, None) is not None
        elif samplers.get(key) != n_value:
            samplers[key] = n_value
            changed = True
    return changed, invalid


def sampling(
    tpl: Template, vals: Values, epochs: np.ndarray, snapshots: list[Samplers], default: int
) -> np.ndarray:
    """N per record (0 = unknown): in-record IEs, then selector, template, domain, default.

    `epochs` gives, per record, the sampler snapshot in force when its set was read.
    """
    n = vals.n
    result = in_record_sampling(vals)
    if result is None:
        result = np.zeros(n, dtype=np.uint64)
    result[result > U32_MAX] = 0
    missing = result == 0
    if not missing.any():
        return result
    selector = vals.first(C.IE_SELECTOR_ID, C.IE_SAMPLER_ID)
    d = tpl.domain
    all_missing = bool(missing.all())
    epoch_list = distinct(epochs[missing])
    for epoch in epoch_list:
        snap = snapshots[epoch]
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


def flow_columns(
    tpl: Template,
    vals: Values,
    export_ms: np.ndarray,
    uptime_ms: np.ndarray | None,
    sampling_interval: np.ndarray,
    totals: vendor.TotalCounts | None = None,
) -> tuple[dict[str, tuple], np.ndarray, vendor.Volume]:
    """Flow columns of one template's records, a problem code per record and its volume.

    A column is (values or None for zeros, null mask or None or ALL_NULL). Problem codes
    (`vendor.PROBLEM_REASONS`): 0 ok, 1 no IPv4/IPv6 address, 2 sampling rate missing, 3 no volume
    field, 4 layer-2 volume only, 5 total count without baseline. Addresses and volume follow the
    vendor precedence (ARCHITECTURE §2.2); the returned volume's reverse counters give the second
    rows (`vendor.reverse_rows`). Total counters are differenced per flow in `totals`.
    """
    n = vals.n
    start_ms, end_ms = times_ms(vals, export_ms, uptime_ms)
    vals = vendor.subscriber_view(vals)
    vol = vendor.volume(vals)
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
    cols: dict[str, tuple] = {}
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
    cols.update(
        observation_domain_id=(np.full(n, tpl.domain & U32_MAX, dtype=np.uint32), None),
        flow_start_ms=(start_ms, None),
        flow_end_ms=(end_ms, None),
        ip_version=(np.where(is4 | is6, version, 0), None),
        protocol=(vals.get(C.IE_PROTOCOL_IDENTIFIER), None),
        src_port=(vals.get(C.IE_SOURCE_TRANSPORT_PORT), None),
        dst_port=(vals.get(C.IE_DESTINATION_TRANSPORT_PORT), None),
        flow_direction=(None, ALL_NULL) if direction is None else (direction, None),
        sampling_interval=(sampling_interval, None),
    )
    problem = np.zeros(n, dtype=np.int8)
    problem[~(is4 | is6)] = vendor.NO_ADDRESS
    if vol.problem:
        problem[problem == 0] = vol.problem
    problem[(problem == 0) & (sampling_interval == 0)] = vendor.SAMPLING_MISSING
    if vol.totals and totals is not None:
        key_parts = [cols[name][0] for name in _KEY_COLUMNS] + [start_ms]
        keys = vendor.flow_keys([np.full(n, tpl.domain, np.uint64), *key_parts], n)
        no_base = totals.difference(vol, keys, start_ms, end_ms, problem == 0)
        problem[no_base] = vendor.NO_BASELINE
    cols["octets"] = (vol.octets, None)
    cols["packets"] = (vol.packets, None)
    if vol.swapped:  # the template's one direction is the reverse one
        cols = vendor.reverse_rows(cols, vol.octets, vol.packets, slice(None))
    return cols, problem, vol


_KEY_COLUMNS = (
    "src_v4",
    "dst_v4",
    "src_v6_hi",
    "src_v6_lo",
    "dst_v6_hi",
    "dst_v6_lo",
    "src_port",
    "dst_port",
    "protocol",
)


def take(values, keep: np.ndarray):
    """Rows `keep` of a batch column part (None and ALL_NULL stand for whole columns)."""
    return values if values is None or values is ALL_NULL else values[keep]


class Columns:
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
