"""Holder intervals resolved once per exporter-day; the vectorised lookup of a flow side in them."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

HOLDER_COLUMNS = ["subscription_id", "service_class", "user_protocol", "user_key"]


@dataclass(frozen=True)
class KeyGroup:
    """The intervals of one (family, prefix_len): its keys, a sorted (key id, edge rank) index."""

    family: int
    prefix_len: int
    mask: int
    keys: np.ndarray  # distinct keys, ascending (uint32 for IPv4, uint64 for IPv6)
    composite: np.ndarray  # int64, ascending: key id × stride + rank of the interval's start edge
    key_ids: np.ndarray  # int64: the key id of each interval row
    first_row: int  # offset of the group's first interval in the whole table


@dataclass(frozen=True)
class HolderIntervals:
    """Every resolved interval (holder columns, held flag, holder rank) and its lookup groups."""

    edges: np.ndarray  # int64, distinct interval starts, ascending
    groups: list[KeyGroup]  # longest prefix first (IPv4 counts as /32)
    held: np.ndarray  # bool per interval: a holder owns it
    has_id: np.ndarray  # bool per interval: its holder has a subscription_id
    rank: np.ndarray  # int64 per interval: holder order (subscription_id, protocol, class)
    holders: pa.Table  # HOLDER_COLUMNS per interval


def resolve_intervals(conn: duckdb.DuckDBPyConnection, sql: str, params: dict) -> HolderIntervals:
    """Run the holder-interval query (relations already registered) into lookup arrays."""
    table = conn.sql(sql, params=params).to_arrow_table()
    family = _np(table["family"], np.int64)
    plen = _np(table["prefix_len"], np.int64)
    start = _np(table["start_ms"], np.int64)
    edges = np.unique(start)
    stride = len(edges) + 1
    groups = []
    cuts = np.flatnonzero(np.diff(family * 256 + plen)) + 1  # rows sorted by family, prefix_len
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(table)], strict=True):
        if hi <= lo:
            continue
        fam, length = int(family[lo]), int(plen[lo])
        dtype = np.uint32 if fam == 4 else np.uint64
        row_keys = _np(table["key"][lo:hi], np.uint64).astype(dtype)
        keys, key_ids = np.unique(row_keys, return_inverse=True)
        key_ids = key_ids.astype(np.int64)
        composite = key_ids * stride + np.searchsorted(edges, start[lo:hi])
        mask = int(table["mask"][lo].as_py())
        groups.append(KeyGroup(fam, length, mask, keys, composite, key_ids, int(lo)))
    groups.sort(key=lambda g: (-g.prefix_len, g.family))
    return HolderIntervals(
        edges=edges,
        groups=groups,
        held=_np(table["held"], np.bool_),
        has_id=table["subscription_id"].is_valid().to_numpy(zero_copy_only=False),
        rank=_np(table["holder_rank"], np.int64),
        holders=table.select(HOLDER_COLUMNS),
    )


def _np(column: pa.ChunkedArray | pa.Array, dtype: type) -> np.ndarray:
    """A non-null arrow column as a numpy array of `dtype`."""
    return np.asarray(column.to_numpy(), dtype=dtype)


def edge_ranks(intervals: HolderIntervals, flow_start_ms: pa.Array) -> np.ndarray:
    """Per flow: the index of the last interval edge <= flow_start_ms (-1: before all, or null)."""
    t, valid = values_and_validity(flow_start_ms)
    ranks = np.searchsorted(intervals.edges, t, side="right") - 1
    if valid is not None:
        ranks[~valid] = -1
    return ranks


def values_and_validity(column: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """A fixed-width arrow array as numpy values (any value under a null) and its validity (None:
    no nulls), without copying the values."""
    values = column.to_numpy() if not column.null_count else None
    if values is None:
        values = column.fill_null(0).to_numpy()
        return values, column.is_valid().to_numpy(zero_copy_only=False)
    return values, None


def side_holders(
    intervals: HolderIntervals, ranks: np.ndarray, v4: pa.Array, v6_hi: pa.Array
) -> np.ndarray:
    """Per flow: the interval row of this side's best holder (longest prefix, then holder order;
    IPv4 counts as /32), or -1 when no holder is valid at the flow's start."""
    best = np.full(len(ranks), -1, dtype=np.int64)
    best_len = np.zeros(len(ranks), dtype=np.int64)
    families = {4: v4, 6: v6_hi}
    present = {}  # family → (row numbers with an address, their addresses)
    for family, column in families.items():
        values, valid = values_and_validity(column)
        rows = np.arange(len(values)) if valid is None else np.flatnonzero(valid)
        present[family] = (rows, values if valid is None else values[rows])
    for group in intervals.groups:
        rows, values = present[group.family]
        if not len(rows):
            continue
        if group.family == 6:
            values = values & np.uint64(group.mask)
        found, held = lookup(intervals, group, values, ranks[rows])
        rows = rows[found]
        if not len(rows):
            continue
        current = best[rows]
        better = current < 0
        tie = ~better & (best_len[rows] == group.prefix_len)
        if tie.any():
            better[tie] = intervals.rank[held[tie]] < intervals.rank[current[tie]]
        best[rows[better]] = held[better]
        best_len[rows[better]] = group.prefix_len
    return best


def lookup(
    intervals: HolderIntervals, group: KeyGroup, keys: np.ndarray, ranks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For keys at edge ranks: which fall in a held interval of `group` (bool mask) and the interval
    row of each of those."""
    key_id = np.searchsorted(group.keys, keys)
    np.minimum(key_id, len(group.keys) - 1, out=key_id)
    found = group.keys[key_id] == keys
    key_id, ranks = key_id[found], ranks[found]
    pos = np.searchsorted(group.composite, key_id * (len(intervals.edges) + 1) + ranks, "right") - 1
    same_key = group.key_ids[pos] == key_id
    same_key &= pos >= 0
    rows = pos + group.first_row
    same_key &= intervals.held[rows]
    hit = np.flatnonzero(found)[same_key]
    found[:] = False
    found[hit] = True
    return found, rows[same_key]
