"""V3 flow records → columns, vectorised over chunks of consecutive records (a chunk's gathers
stay in the CPU cache).

Records of one layout (same size, element count and element headers) repeat: a layout is learnt
from one record by the element walk, and the records of that size are checked against it with one
gather per element header, after which their elements sit at fixed offsets. Records of no learnt
layout are walked element by element in lockstep (`walk_elements`: a loop over the element index,
vectorised across records), the reference the layouts are tested against.
Status of a record: 0 decoded, 1 bad elements, 2 no generic element, 3 no address.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.wire.nfcapd import format as F
from pipeline.wire.nfcapd.block_records import Words

CHUNK_RECORDS = 8192  # about 1 MB of records
MAX_LAYOUTS = 16  # per file
NEW_LAYOUTS_PER_CHUNK = 2  # records tried as a new layout in one chunk
WANTED = (F.EX_GENERIC_FLOW, F.EX_IPV4_FLOW, F.EX_IPV6_FLOW, F.EX_FLOW_MISC)
COLUMNS = {
    "flow_start_ms": np.int64,
    "flow_end_ms": np.int64,
    "packets": np.uint64,
    "octets": np.uint64,
    "protocol": np.uint8,
    "src_port": np.uint16,
    "dst_port": np.uint16,
    "src_v4": np.uint32,
    "dst_v4": np.uint32,
    "src_v6_hi": np.uint64,
    "src_v6_lo": np.uint64,
    "dst_v6_hi": np.uint64,
    "dst_v6_lo": np.uint64,
    "flow_direction": np.uint8,
    "ip_version": np.uint8,
    "_v4": np.bool_,
    "_v6": np.bool_,
    "_misc": np.bool_,
    "_scaled": np.bool_,
    "_sysid": np.uint16,
}

# element id → offsets (first) and lengths of that element in each record; status per record
Elements = tuple[dict[int, np.ndarray], dict[int, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Layout:
    """Where the elements of every record of one shape are (offsets from the record start)."""

    size: int
    num_el: int
    heads: tuple[tuple[int, int], ...]  # (offset, uint32 type | length << 16) of each element
    at: tuple[int, ...]  # offset of each WANTED element (0 when absent)
    length: tuple[int, ...]  # its length (0 when absent)


def decode_v3(
    w: Words,
    off: np.ndarray,
    size: np.ndarray,
    layouts: bool = True,
    names: frozenset[str] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Columns (COLUMNS: `names` and those starting with "_", or all) and status of the V3
    records at byte offsets `off` of sizes `size` (4-aligned offsets when `layouts`; False walks
    every record's elements)."""
    n = len(off)
    cols = {name: np.zeros(n, dtype) for name, dtype in COLUMNS.items()
            if names is None or name in names or name.startswith("_")}  # fmt: skip
    status = np.empty(n, np.uint8)
    learnt: list[Layout] = []
    for a in range(0, n, CHUNK_RECORDS):
        b = min(n, a + CHUNK_RECORDS)
        o, s = off[a:b], size[a:b]
        if layouts:
            elements = _chunk_elements(w, o, s, learnt)
        else:
            elements = walk_elements(w, o, o + s, w.u8[o + 4])
        status[a:b] = _fields(w, o, elements, cols, slice(a, b))
    return cols, status


def walk_elements(w: Words, off: np.ndarray, end: np.ndarray, num_el: np.ndarray) -> Elements:
    """Offset and length of the first element of each WANTED id of each record (-1 and 0 when
    absent), and its status (1 when an element header is cut or overruns the record)."""
    n = len(off)
    status = np.zeros(n, np.uint8)
    cur = off + F.V3_HEADER_BYTES
    at = {e: np.full(n, -1, np.int64) for e in WANTED}
    length = {e: np.zeros(n, np.int64) for e in WANTED}
    for e in range(int(num_el.max()) if n else 0):
        active = (num_el > e) & (status == 0)
        full = bool(active.all())
        idx = np.arange(n) if full else np.flatnonzero(active)
        if not len(idx):
            break
        c = cur if full else cur[idx]
        stop = end if full else end[idx]
        fits = c + 4 <= stop
        safe = np.where(fits, c, 0)
        etype = w.u16(safe)
        elen = w.u16(safe + 2).astype(np.int64)
        bad = ~fits | (elen < 4) | (c + elen > stop)
        if bad.any():
            status[idx[bad]] = 1
        good = ~bad
        for eid in WANTED:
            sel = good & (etype == eid)
            if not sel.any():
                continue
            rows = idx[sel]
            first = at[eid][rows] < 0
            at[eid][rows[first]] = c[sel][first]
            length[eid][rows[first]] = elen[sel][first]
        cur[idx[good]] = c[good] + elen[good]
    return at, length, status


def learn_layout(w: Words, off: int, size: int) -> Layout | None:
    """The layout of the record at `off` (4-aligned), or None when its elements do not walk
    cleanly or one starts off a 4-byte boundary."""
    o = np.array([off], np.int64)
    num_el = int(w.u8[off + 4])
    at, length, status = walk_elements(w, o, o + size, w.u8[o + 4])
    if status[0]:
        return None
    heads, cur = [], off + F.V3_HEADER_BYTES
    for _ in range(num_el):  # the elements of this one record
        if cur % 4:
            return None
        word = int(w.w32[cur >> 2])
        heads.append((cur - off, word))
        cur += word >> 16
    return Layout(
        size,
        num_el,
        tuple(heads),
        tuple(int(at[e][0]) - off if length[e][0] else 0 for e in WANTED),
        tuple(int(length[e][0]) for e in WANTED),
    )


def _chunk_elements(w: Words, off: np.ndarray, size: np.ndarray, learnt: list[Layout]) -> Elements:
    """Elements of a chunk's records: by the learnt layouts (learning new ones from records that
    match none), and by the element walk for the records still left."""
    m = len(off)
    num_el = w.u8[off + 4]
    none = len(learnt) + NEW_LAYOUTS_PER_CHUNK  # above any layout index this chunk can add
    lid = np.full(m, none, np.int64)
    tried: list[int] = []
    matched = 0  # layouts already matched against the chunk
    while True:
        for k in range(matched, len(learnt)):
            _match(w, off, size, num_el, learnt[k], k, lid, none)
        matched = len(learnt)
        rest = np.flatnonzero(lid == none)
        if not len(rest) or len(tried) >= NEW_LAYOUTS_PER_CHUNK or len(learnt) >= MAX_LAYOUTS:
            break
        untried = rest[~np.isin(rest, tried)]
        if not len(untried):
            break
        r = int(untried[0])
        tried.append(r)
        layout = learn_layout(w, int(off[r]), int(size[r]))
        if layout is not None:
            learnt.append(layout)
    table_at = np.zeros((len(WANTED), none + 1), np.int64)
    table_len = np.zeros((len(WANTED), none + 1), np.int64)
    for j, layout in enumerate(learnt[:none]):
        table_at[:, j], table_len[:, j] = layout.at, layout.length
    at = {e: off + table_at[i][lid] for i, e in enumerate(WANTED)}
    length = {e: table_len[i][lid] for i, e in enumerate(WANTED)}
    status = np.zeros(m, np.uint8)
    rest = np.flatnonzero(lid == none)
    if len(rest):
        o = off[rest]
        r_at, r_len, status[rest] = walk_elements(w, o, o + size[rest], num_el[rest])
        for e in WANTED:
            at[e][rest], length[e][rest] = r_at[e], r_len[e]
    return at, length, status


def _match(
    w: Words,
    off: np.ndarray,
    size: np.ndarray,
    num_el: np.ndarray,
    layout: Layout,
    k: int,
    lid: np.ndarray,
    none: int,
) -> None:
    """Set lid = k for the unmatched records of `layout`'s size whose element headers are its."""
    sel = np.flatnonzero((size == layout.size) & (num_el == layout.num_el) & (lid == none))
    if not len(sel):
        return
    o = off[sel] >> 2
    ok = np.ones(len(sel), bool)
    for rel, word in layout.heads:
        ok &= w.w32[o + (rel >> 2)] == word
    lid[sel[ok]] = k


def _fields(
    w: Words, off: np.ndarray, elements: Elements, cols: dict[str, np.ndarray], out: slice
) -> np.ndarray:
    """Gather the fields of one chunk into cols[out] (the columns present); returns its status."""
    at, length, status = elements
    u8 = w.u8
    gen_ok = length[F.EX_GENERIC_FLOW] >= F.EX_GENERIC_FLOW_BYTES
    v4 = length[F.EX_IPV4_FLOW] >= F.EX_IPV4_FLOW_BYTES
    v6 = ~v4 & (length[F.EX_IPV6_FLOW] >= F.EX_IPV6_FLOW_BYTES)
    status[(status == 0) & ~gen_ok] = 2
    status[(status == 0) & ~v4 & ~v6] = 3
    ok = status == 0
    g = at[F.EX_GENERIC_FLOW] if ok.all() else np.where(ok, at[F.EX_GENERIC_FLOW], 0)
    steps = {"flow_start_ms": 0, "flow_end_ms": 1, "packets": 3, "octets": 4}  # u64 from msecFirst
    wanted = [name for name in steps if name in cols]
    words = w.u64_at(g + F.OFF_MSEC_FIRST, tuple(steps[name] for name in wanted))
    for name, word in zip(wanted, words, strict=True):
        cols[name][out] = word.view(cols[name].dtype)
    proto = u8[g + F.OFF_PROTO]
    if "protocol" in cols:
        cols["protocol"][out] = proto
    if "src_port" in cols or "dst_port" in cols:
        ports = w.u32(g + F.OFF_SRC_PORT)
        ports[(proto == 1) | (proto == 58)] = 0
        if "src_port" in cols:
            cols["src_port"][out] = ports & 0xFFFF
        if "dst_port" in cols:
            cols["dst_port"][out] = ports >> 16
    rows = np.flatnonzero(v4)  # addresses of one version are read where they are (else 0)
    for name, rel in (("src_v4", 4), ("dst_v4", 8)):
        if name in cols:
            cols[name][out][rows] = w.u32(at[F.EX_IPV4_FLOW][rows] + rel)
    rows = np.flatnonzero(v6)
    v6_names = ("src_v6_hi", "src_v6_lo", "dst_v6_hi", "dst_v6_lo")
    wanted = [k for k, name in enumerate(v6_names) if name in cols]
    words = w.u64_at(at[F.EX_IPV6_FLOW][rows] + 4, tuple(wanted))
    for k, word in zip(wanted, words, strict=True):
        cols[v6_names[k]][out][rows] = word
    has_misc = length[F.EX_FLOW_MISC] >= F.EX_FLOW_MISC_BYTES
    if "flow_direction" in cols:
        misc = np.where(has_misc, at[F.EX_FLOW_MISC], 0)
        cols["flow_direction"][out] = u8[misc + F.OFF_MISC_DIR]
    if "ip_version" in cols:
        cols["ip_version"][out] = np.where(v4, 4, 6)
    cols["_v4"][out], cols["_v6"][out], cols["_misc"][out] = v4, v6, has_misc
    cols["_scaled"][out] = (u8[off + 10] & F.V3_FLAG_SAMPLED) != 0
    cols["_sysid"][out] = w.u16(off + 8)
    return status
