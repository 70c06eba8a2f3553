"""Holder intervals resolved once per exporter-day; the vectorised lookup of a flow side in them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class KeyGroup:
    """The intervals of one (family, prefix_len): its keys, a sorted (key id, edge rank) index."""

    family: int
    prefix_len: int
    mask: int
    keys: np.ndarray  # distinct keys, ascending (uint32 for IPv4, uint64 for IPv6)
    composite: np.ndarray  # int64, ascending: key id × stride + rank of the interval's start edge
    key_ids: np.ndarray  # int64: the key id of each interval
    holders: np.ndarray  # int64: the winning holder of each interval, -1 for none


@dataclass(frozen=True)
class HolderIntervals:
    """The holders (holder_ranks rows, in tie order) and the lookup groups of their intervals."""

    holders: pa.Table  # subscription_id, service_class, user_protocol, user_key; row = holder
    has_id: np.ndarray  # bool per holder: it has a subscription_id
    edges: np.ndarray  # int64, distinct interval starts, ascending
    groups: list[KeyGroup]  # longest prefix first (IPv4 counts as /32)


def resolve_intervals(
    conn: duckdb.DuckDBPyConnection, read_sql: Callable[[str], str], params: dict
) -> HolderIntervals:
    """Resolve the registered pppoe_sessions / ipoe_leases into holders and lookup groups."""
    conn.sql(read_sql("address_holders"), params={"service": params["service"]}).create(
        "address_holders"
    )
    ranks = conn.sql(read_sql("holder_ranks"), params={"salt": params["salt"]})
    ranks.create("holder_ranks")
    holders = conn.sql(
        "SELECT * EXCLUDE (holder) FROM holder_ranks ORDER BY holder"
    ).to_arrow_table()
    table = conn.sql(read_sql("holder_intervals")).to_arrow_table()
    family = _np(table["family"], np.int64)
    plen = _np(table["prefix_len"], np.int64)
    start = _np(table["start_ms"], np.int64)
    holder = table["holder"].fill_null(-1).to_numpy().astype(np.int64)
    edges = np.unique(start)
    stride = len(edges) + 1
    groups = []
    cuts = np.flatnonzero(np.diff(family * 256 + plen)) + 1  # rows sorted by family, prefix_len
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(table)], strict=True):
        if hi <= lo:
            continue
        fam = int(family[lo])
        row_keys = _np(table["key"][lo:hi], np.uint64).astype(np.uint32 if fam == 4 else np.uint64)
        keys, key_ids = np.unique(row_keys, return_inverse=True)
        key_ids = key_ids.astype(np.int64)
        composite = key_ids * stride + np.searchsorted(edges, start[lo:hi])
        mask = int(table["mask"][lo].as_py())
        groups.append(
            KeyGroup(fam, int(plen[lo]), mask, keys, composite, key_ids, holder[lo:hi].copy())
        )
    groups.sort(key=lambda g: (-g.prefix_len, g.family))
    has_id = holders["subscription_id"].is_valid().to_numpy(zero_copy_only=False)
    return HolderIntervals(holders, has_id, edges, groups)


def _np(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
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
    no nulls)."""
    if not column.null_count:
        return column.to_numpy(), None
    return column.fill_null(0).to_numpy(), column.is_valid().to_numpy(zero_copy_only=False)


def side_holders(
    intervals: HolderIntervals, ranks: np.ndarray, v4: pa.Array, v6_hi: pa.Array
) -> np.ndarray:
    """Per flow: the holder of this side (longest prefix, then the tie order, i.e. the smallest
    holder number; IPv4 counts as /32), or -1 when none is valid at the flow's start."""
    best = np.full(len(ranks), -1, dtype=np.int64)
    best_len = np.zeros(len(ranks), dtype=np.int64)
    present = {}  # family → (flows with an address, their addresses)
    for family, column in ((4, v4), (6, v6_hi)):
        values, valid = values_and_validity(column)
        rows = np.arange(len(values)) if valid is None else np.flatnonzero(valid)
        present[family] = (rows, values if valid is None else values[rows])
    stride = len(intervals.edges) + 1
    for group in intervals.groups:
        rows, values = present[group.family]
        if not len(rows):
            continue
        if group.family == 6:
            values = values & np.uint64(group.mask)
        hit, holder = lookup(group, values, ranks[rows], stride)
        rows = rows[hit]
        current = best[rows]
        better = (current < 0) | ((best_len[rows] == group.prefix_len) & (holder < current))
        best[rows[better]] = holder[better]
        best_len[rows[better]] = group.prefix_len
    return best


def lookup(
    group: KeyGroup, keys: np.ndarray, ranks: np.ndarray, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """For keys at edge ranks: the positions that fall in a held interval of `group`, and the
    holder of each of those."""
    key_id = np.searchsorted(group.keys, keys)
    np.minimum(key_id, len(group.keys) - 1, out=key_id)
    found = np.flatnonzero(group.keys[key_id] == keys)
    key_id = key_id[found]
    pos = np.searchsorted(group.composite, key_id * stride + ranks[found], "right") - 1
    holder = np.where((pos >= 0) & (group.key_ids[pos] == key_id), group.holders[pos], -1)
    held = holder >= 0
    return found[held], holder[held]
