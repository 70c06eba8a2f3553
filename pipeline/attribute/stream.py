"""Attributed flows written batch by batch, in input order, in memory bounded by one batch.

Each normalised flow once, without its addresses, plus service, user_key, user_protocol,
service_class, direction (IN = user sends, OUT = user receives), bytes_est / packets_est (DOUBLE,
counter × sampling interval) and the peer_* columns (ARCHITECTURE §4). Each side's holder is
looked up in the resolved intervals (intervals.py: IPv4 address equal, IPv6 longest prefix over the
upper 64 bits, valid start <= flow_start_ms < stop, ties → the smallest holder in tie order); the
user is the source side's (IN), else the destination's (OUT), else direction from flow_direction
(0 → IN, 1 → OUT). On-net flows (both sides held, the source's with a subscription_id) name the
destination-side subscriber in peer_user_key / peer_user_protocol / peer_service_class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.attribute.intervals import HolderIntervals, edge_ranks, side_holders
from pipeline.ingest.flows import NORMALISED_SCHEMA

BATCH_ROWS = 262_144  # rows read, attributed and written as one row group at a time
COMPRESSION_LEVEL = 3  # zstd level (DuckDB's default, as the SQL writer used)
PASSTHROUGH = [
    "exporter",
    "observation_domain_id",
    "flow_start_ms",
    "flow_end_ms",
    "ip_version",
    "protocol",
    "src_port",
    "dst_port",
    "flow_direction",
    "octets",
    "packets",
    "sampling_interval",
]
ADDRESSES = ["src_v4", "src_v6_hi", "dst_v4", "dst_v6_hi"]
ADDED = pa.schema(
    [
        ("service", pa.string()),
        ("user_key", pa.string()),
        ("user_protocol", pa.string()),
        ("service_class", pa.string()),
        ("direction", pa.string()),
        ("bytes_est", pa.float64()),
        ("packets_est", pa.float64()),
        ("peer_user_key", pa.string()),
        ("peer_user_protocol", pa.string()),
        ("peer_service_class", pa.string()),
    ]
)
OUTPUT_SCHEMA = pa.schema([*(NORMALISED_SCHEMA.field(n) for n in PASSTHROUGH), *ADDED])
# Few distinct values per row group: dictionary pages. The others (counters, ports, estimates of
# counters) would spill a dictionary page and then fall back, larger and slower than plain.
DICTIONARY_COLUMNS = [
    *("exporter", "observation_domain_id", "ip_version", "protocol", "flow_direction"),
    *("packets", "sampling_interval", "packets_est"),
    *(field.name for field in ADDED if field.type == pa.string()),
]
DELTA_COLUMNS = ["flow_start_ms", "flow_end_ms"]  # time-sorted: small deltas
_DIRECTIONS = pa.array(["IN", "OUT"])


def write_attributed(flows_path: Path, out_path: Path, intervals: HolderIntervals, service: str):
    """Attribute every flow of `flows_path` (ARCHITECTURE §4) into the Parquet file `out_path`."""
    source = pq.ParquetFile(flows_path, pre_buffer=False)  # pre-buffering keeps every row group
    with pq.ParquetWriter(
        out_path,
        OUTPUT_SCHEMA,
        compression="zstd",
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=DICTIONARY_COLUMNS,
        column_encoding=dict.fromkeys(DELTA_COLUMNS, "DELTA_BINARY_PACKED"),
    ) as writer:
        for batch in source.iter_batches(BATCH_ROWS, columns=PASSTHROUGH + ADDRESSES):
            table = attribute_batch(batch, intervals, service).cast(OUTPUT_SCHEMA)
            writer.write_table(table, row_group_size=BATCH_ROWS)


def attribute_batch(batch: pa.RecordBatch, intervals: HolderIntervals, service: str) -> pa.Table:
    """A batch of normalised flows → its attributed columns (addresses dropped), same row order."""
    ranks = edge_ranks(intervals, batch.column("flow_start_ms"))
    src = side_holders(intervals, ranks, batch.column("src_v4"), batch.column("src_v6_hi"))
    dst = side_holders(intervals, ranks, batch.column("dst_v4"), batch.column("dst_v6_hi"))
    src_id = _has_id(intervals, src)
    dst_id = _has_id(intervals, dst)
    user = np.where(src_id, src, np.where(dst_id, dst, -1))
    protocol_side = np.where(src >= 0, src, dst)  # coalesce(src protocol, dst protocol)
    class_side = np.where(src_id, src, dst)
    peer = np.where(src_id, dst, -1)
    peer_key = np.where(src_id & dst_id, dst, -1)
    fdir = batch.column("flow_direction")
    fdir_code = pc.fill_null(fdir, 2).to_numpy(zero_copy_only=False).astype(np.int64)
    direction = np.where(src_id, 0, np.where(dst_id, 1, np.where(fdir_code <= 1, fdir_code, -1)))
    holders = intervals.holders
    interval = pc.cast(batch.column("sampling_interval"), pa.float64(), safe=False)
    added = [
        pa.repeat(pa.scalar(service, pa.string()), len(batch)),
        _take(holders["user_key"], user),
        _take(holders["user_protocol"], protocol_side),
        _take(holders["service_class"], class_side),
        _take(_DIRECTIONS, direction),
        pc.multiply(pc.cast(batch.column("octets"), pa.float64(), safe=False), interval),
        pc.multiply(pc.cast(batch.column("packets"), pa.float64(), safe=False), interval),
        _take(holders["user_key"], peer_key),
        _take(holders["user_protocol"], peer),
        _take(holders["service_class"], peer),
    ]
    columns = [batch.column(name) for name in PASSTHROUGH] + added
    return pa.Table.from_arrays(columns, names=PASSTHROUGH + ADDED.names)


def _has_id(intervals: HolderIntervals, rows: np.ndarray) -> np.ndarray:
    """Per flow: the side has a holder and that holder has a subscription_id (holder rows)."""
    found = rows >= 0
    found[found] = intervals.has_id[rows[found]]
    return found


def _take(values: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> pa.Array:
    """values[rows], null where rows < 0."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) == 0:
        return pa.nulls(len(rows), values.type)
    return values.take(pa.array(rows, mask=rows < 0))
