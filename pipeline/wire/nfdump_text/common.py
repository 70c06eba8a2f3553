"""Shared pieces of the nfdump text readers: line splitting, field parsing, the fast/careful switch.

Lines are split with numpy and fields parsed with polars, never line by line in Python.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa

from pipeline.wire.address_text import ipv4_text_to_uint32
from pipeline.wire.nfdump_text.results import NfdumpExporterFlows, fast_results

REASON_BAD_BYTES = "nfdump text: non-ASCII or control bytes"
REASON_BAD_VALUE = "nfdump text: bad field value"
NO_FLOWS_LINE = "No matching flows"

_HEX_GROUPS = r"^([0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*)?$"
_DOTTED_TAIL = r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$"


def decode_text(
    buf: bytes,
    source: str,
    fast: bool,
    fast_columns: Callable[[bytes], dict[str, np.ndarray] | None],
    careful: Callable[[bytes, str, pl.DataFrame], list[NfdumpExporterFlows]],
) -> list[NfdumpExporterFlows]:
    """The fast path's columns when it accepts the whole buffer, else the careful line-wise path.

    Both give the same results for an export the fast path accepts; `fast=False` forces the
    careful one.
    """
    buf = bytes(buf)
    if fast:
        cols = fast_columns(buf)
        if cols is not None:
            return fast_results(cols)
    return careful(buf, source, split_lines(buf))


# ------------------------------------------------------------------------------ lines
def split_lines(buf: bytes) -> pl.DataFrame:
    """One row per line: text (no CR/LF; bad bytes → '?'), byte offset, byte length, bad."""
    u8 = np.frombuffer(buf, np.uint8)
    special = np.flatnonzero((u8 - np.uint8(0x20)) >= 0x60)  # < 0x20 or >= 0x80 (few: \n)
    is_nl = u8[special] == 10
    nl = special[is_nl]
    starts = np.concatenate([[0], nl + 1]).astype(np.int64)
    ends = np.concatenate([nl, [len(u8)]]).astype(np.int64)
    if starts[-1] == len(u8):  # no line after the final newline (or an empty buffer)
        starts, ends = starts[:-1], ends[:-1]
    has_cr = (ends > starts) & (u8[np.maximum(ends - 1, 0)] == 13) if len(u8) else ends > starts
    ends = ends - has_cr
    others = special[~is_nl]
    others = others[u8[others] != 9]  # tabs are fine
    line_of = np.searchsorted(starts, others, side="right") - 1
    inner = others < ends[line_of] if len(starts) else others < 0  # not the line-ending CR
    bad = np.zeros(len(starts), bool)
    bad[line_of[inner]] = True
    data = u8
    if inner.any():
        data = u8.copy()
        data[others[inner]] = ord("?")
    # each string spans its line and the separator after it; polars strips the separator
    offsets = np.concatenate([starts, [len(u8)]]).astype(np.int64)
    text = pa.LargeStringArray.from_buffers(
        len(starts), pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)
    )
    lengths = ends - starts
    return pl.DataFrame(
        {
            "text": pl.from_arrow(text).str.slice(0, pl.Series(lengths)),
            "offset": starts,
            "length": lengths,
            "bad_bytes": bad,
        }
    ).with_row_index("line")


# ------------------------------------------------------------------------------ field parsing
def uint_expr(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Decimal digits → dtype; null when not digits or out of range."""
    text = col.str.strip_chars()
    return pl.when(text.str.contains(r"^\d{1,20}$")).then(text.cast(dtype, strict=False))


def _ipv6_parts(text: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IPv6 text (incl. `::ffff:a.b.c.d` tails) → (hi, lo, ok) as numpy arrays."""
    df = pl.DataFrame({"t": text.cast(pl.String).str.strip_chars()})
    tail = df.get_column("t").str.extract(_DOTTED_TAIL)
    tail_v4 = ipv4_text_to_uint32(tail)
    body = df.get_column("t").str.replace(_DOTTED_TAIL, "0:0")
    halves = pl.col("t").str.split("::")
    parsed = (
        pl.DataFrame({"t": body})
        .with_columns(
            left=halves.list.get(0, null_on_oob=True),
            right=halves.list.get(1, null_on_oob=True).fill_null(""),
            compressed=halves.list.len() == 2,
            n_halves=halves.list.len(),
        )
        .with_columns(
            left_groups=pl.col("left").str.split(":").list.filter(pl.element() != ""),
            right_groups=pl.col("right").str.split(":").list.filter(pl.element() != ""),
            syntax_ok=(pl.col("n_halves") <= 2)
            & pl.col("left").str.contains(_HEX_GROUPS)
            & pl.col("right").str.contains(_HEX_GROUPS),
        )
        .with_columns(
            missing=8 - pl.col("left_groups").list.len() - pl.col("right_groups").list.len()
        )
        .with_columns(
            count_ok=pl.when(pl.col("compressed"))
            .then(pl.col("missing") >= 1)
            .otherwise(pl.col("missing") == 0),
            groups=pl.concat_list(
                "left_groups", pl.lit("0").repeat_by(pl.col("missing").clip(0, 8)), "right_groups"
            ),
        )
        .select(
            *[
                pl.col("groups")
                .list.get(i, null_on_oob=True)
                .str.to_integer(base=16, strict=False)
                .cast(pl.UInt64)
                .fill_null(0)
                .alias(f"g{i}")
                for i in range(8)
            ],
            ok=(pl.col("syntax_ok") & pl.col("count_ok")).fill_null(False),
        )
    )
    g = [parsed.get_column(f"g{i}").to_numpy().astype(np.uint64) for i in range(8)]
    sh = [np.uint64(s) for s in (48, 32, 16, 0)]
    hi = (g[0] << sh[0]) | (g[1] << sh[1]) | (g[2] << sh[2]) | g[3]
    lo = (g[4] << sh[0]) | (g[5] << sh[1]) | (g[6] << sh[2]) | g[7]
    has_tail = tail.is_not_null().to_numpy()
    tail_ok = tail_v4.is_not_null().to_numpy()
    lo = lo | np.where(tail_ok, tail_v4.fill_null(0).to_numpy().astype(np.uint64), 0)
    ok = parsed.get_column("ok").to_numpy() & (~has_tail | tail_ok) & text.is_not_null().to_numpy()
    return hi, lo, ok


def parse_addresses(src: pl.Series, dst: pl.Series) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Source/destination text (both IPv4 or both IPv6) → address columns and validity."""
    src4, dst4 = ipv4_text_to_uint32(src), ipv4_text_to_uint32(dst)
    v4 = (src4.is_not_null() & dst4.is_not_null()).to_numpy()
    rows6 = np.flatnonzero(~v4)  # the IPv6 parser is the slow part: only where IPv4 failed
    s_hi, s_lo, d_hi, d_lo = (np.zeros(len(v4), np.uint64) for _ in range(4))
    s_hi[rows6], s_lo[rows6], s_ok = _ipv6_parts(src.gather(rows6))
    d_hi[rows6], d_lo[rows6], d_ok = _ipv6_parts(dst.gather(rows6))
    v6 = np.zeros(len(v4), bool)
    v6[rows6] = s_ok & d_ok & src.gather(rows6).str.contains(":").fill_null(False).to_numpy()
    cols = {
        "src_v4": src4.fill_null(0).to_numpy().astype(np.uint32),
        "dst_v4": dst4.fill_null(0).to_numpy().astype(np.uint32),
        "src_v6_hi": s_hi,
        "src_v6_lo": s_lo,
        "dst_v6_hi": d_hi,
        "dst_v6_lo": d_lo,
        "ip_version": np.where(v4, 4, 6).astype(np.uint8),
    }
    return cols, v4 | v6


def plain_text(buf: bytes) -> bool:
    """True when every byte is printable ASCII, tab or LF (what nfdump writes)."""
    u8 = np.frombuffer(buf, np.uint8)
    odd = np.flatnonzero((u8 - np.uint8(0x20)) >= 0x5F)  # < 0x20 or >= 0x7F (LF, tab: few)
    return bool(np.isin(u8[odd], (9, 10)).all())


def with_addresses(
    cols: dict[str, np.ndarray], src: pl.Series, dst: pl.Series, v4: np.ndarray | None
) -> dict[str, np.ndarray] | None:
    """cols plus parsed addresses (and ICMP ports zeroed); None when an address is bad."""
    addr, addr_ok = parse_addresses(src, dst)
    if v4 is not None:
        addr_ok &= (addr["ip_version"] == 4) == v4
    if not addr_ok.all():
        return None
    cols.update(addr)
    zero_icmp_ports(cols)
    return cols


def zero_icmp_ports(cols: dict[str, np.ndarray]) -> None:
    """ICMP (1) and ICMPv6 (58) have no ports: src_port = dst_port = 0 (in place)."""
    icmp = np.isin(cols["protocol"], (1, 58))
    cols["src_port"] = np.where(icmp, 0, cols["src_port"]).astype(np.uint16)
    cols["dst_port"] = np.where(icmp, 0, cols["dst_port"]).astype(np.uint16)
