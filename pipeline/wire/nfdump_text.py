"""Readers of nfdump 1.7.1 text exports (`nfdump -r F -o csv` / `-o json`, with or without -q).

Parsed with numpy (line splitting) and polars (fields), never line by line in Python. Flows come
out in FLOW_SCHEMA grouped by router address (csv `ra`, json `ip4_router`/`ip6_router`), with
observation_domain_id 0 and sampling_interval 0 (text exports carry neither: the caller applies
the exporter's configured default or quarantines).

Times: nfdump prints them in its local time zone with no offset; they are read as UTC, so run
nfdump with TZ=UTC. JSON `first`/`last` carry milliseconds and are exact. CSV `ts`/`te` are
truncated to the second: flow_start_ms = ts (0–999 ms early), flow_end_ms = max(te, ts + td), td
being the duration printed with ms; so the duration is kept where it is known and flow_end_ms lies
in te's second, never after the true end. (nfdump prints td as 18446744073709552.000 when the
exporter's end precedes its start; flow_end_ms is then te.)
Protocols: csv prints nfdump's short names; "IDPR" is printed for both 35 and 38 and is read as 35.
ICMP (1) and ICMPv6 (58) flows get src_port = dst_port = 0 (docs/ARCHITECTURE.md: 0 when the
protocol has no ports), not nfdump's icmp type * 256 + code.
JSON records with "sampled" : 1 (counters multiplied by nfcapd's `-s` rate, which the text does not
give) are quarantined; csv has no such column.
Malformed lines/objects are quarantined (offset = byte offset of the line or of the object's `{`),
grouped into runs of consecutive lines with one reason, in an extra entry with exporter_address ""
(present only when non-empty; it also holds flows without a router address). Header, summary
block and "No matching flows" are not flows.
JSON resynchronises at nfdump's layout: an object runs from a `{` line to the first `}`/`},` line
before the next `{` line (else it is malformed up to that `{`); a run of lines outside objects is
one bad piece. So a bad piece costs one record and never the objects around it.

Speed: a fast path parses well-formed exports whole (csv: polars read_csv with fixed column types;
json: DuckDB read_json) and falls back to the careful line-wise path above for the whole buffer as
soon as anything is off (odd bytes, a bad value, a missing key, a scaled or non-flow record…), so
both give the same DecodeResult; `fast=False` forces the careful path.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from pipeline.wire.address_text import ipv4_text_to_uint32
from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats, QuarantineEntry

REASON_BAD_BYTES = "nfdump text: non-ASCII or control bytes"
REASON_FIELD_COUNT = "nfdump csv: wrong number of fields"
REASON_BAD_VALUE = "nfdump text: bad field value"
REASON_MISSING_COLUMN = "nfdump csv: header lacks a required column"
REASON_BAD_OBJECT = "nfdump json: malformed object"
REASON_MISSING_KEY = "nfdump json: required key missing"
REASON_NOT_FLOW = "nfdump json: not a flow record"
REASON_SCALED_UNKNOWN = "counters scaled by unknown sampler"  # as pipeline.wire.nfcapd.reader

# `nfdump -o csv` 1.7.1 header (printed unless -q).
CSV_COLUMNS_1_7_1 = (
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,"
    "nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,"
    "mpls10,cl,sl,al,ra,eng,exid,tr"
).split(",")
CSV_REQUIRED = ("ts", "te", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt", "dir", "ra")
NO_FLOWS_LINE = "No matching flows"

# nfdump 1.7.1 short protocol names as `-o csv` prints them (index = protocol number; numbers
# where nfdump has no name), read off nfdump's output for protocols 0..255.
_PROTO_NAMES_0_137 = (
    "0 ICMP IGMP GGP IPIP ST TCP CBT EGP IGP BBN NVPII PUP ARGUS ENCOM XNET CHAOS UDP MUX DCN HMP "
    "PRM XNS Trnk1 Trnk2 Leaf1 Leaf2 RDP IRTP ISO-4 NETBK MFESP MEINP DCCP 3PC IDPR XTP DDP IDPR "
    "TP++ IL IPv6 SDRP Rte6 Frag6 IDRP RSVP GRE MHRP BNA ESP AH INLSP SWIPE NARP MOBIL TLSP SKIP "
    "ICMP6 NOHE6 OPTS6 HOST CFTP NET SATNT KLAN RVD IPPC FS SATM VISA IPCV CPNX CPHB WSN PVP "
    "BSATM SUNND WBMON WBEXP ISOIP VMTP SVMTP VINES TTP NSIGP DGP TCF EIGRP OSPF S-RPC LARP MTP "
    "AX.25 OS MICP SCCSP ETHIP ENCAP 99 GMTP IFMP PNNI PIM ARIS SCPS QNX A/N IPcmp SNP CpqPP "
    "IPXIP VRRP PGM 0hop L2TP DDX IATP STP SRP UTI SMP SM PTP ISIS4 FIRE CRTP CRUDP 128 IPLT SPS "
    "PIPE SCTP FC 134 MHEAD UDP-L MPLS"
).split()
PROTO_NUMBER = {name: i for i, name in reversed(list(enumerate(_PROTO_NAMES_0_137)))}
PROTO_NUMBER.update({str(i): i for i in range(256)})

_HEX_GROUPS = r"^([0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4})*)?$"
_DOTTED_TAIL = r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$"
_JSON_TIME = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})$"
_JSON_PAIR = r'^\s*"([A-Za-z0-9_]+)"\s*:\s*(.*)$'
_JSON_KEYS = (
    "type",
    "sampled",
    "first",
    "last",
    "in_packets",
    "in_bytes",
    "proto",
    "src_port",
    "dst_port",
    "icmp_type",
    "icmp_code",
    "src4_addr",
    "dst4_addr",
    "src6_addr",
    "dst6_addr",
    "direction",
    "ip4_router",
    "ip6_router",
)
_MAX_TD_MS = 10 * 365 * 86_400_000  # larger td values are nfdump's print of a negative duration


@dataclass
class NfdumpExporterFlows:
    """Flows of one router address of an nfdump text export."""

    exporter_address: str
    result: DecodeResult


def read_nfdump_csv(
    path: Path, source: str | None = None, *, fast: bool = True
) -> list[NfdumpExporterFlows]:
    """Flows of an `nfdump -o csv` file per router address (see module docstring)."""
    return decode_nfdump_csv(Path(path).read_bytes(), source or str(path), fast=fast)


def read_nfdump_json(
    path: Path, source: str | None = None, *, fast: bool = True
) -> list[NfdumpExporterFlows]:
    """Flows of an `nfdump -o json` file per router address (see module docstring)."""
    return decode_nfdump_json(Path(path).read_bytes(), source or str(path), fast=fast)


# ------------------------------------------------------------------------------ lines
def _lines(buf: bytes) -> pl.DataFrame:
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
def _uint(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
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


def _addresses(src: pl.Series, dst: pl.Series) -> tuple[dict[str, np.ndarray], np.ndarray]:
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


# ------------------------------------------------------------------------------ csv
def decode_nfdump_csv(buf: bytes, source: str, *, fast: bool = True) -> list[NfdumpExporterFlows]:
    """Same as read_nfdump_csv, from the file's bytes; never raises on bad input."""
    buf = bytes(buf)
    if fast:
        cols = _csv_fast(buf)
        if cols is not None:
            return _fast_results(cols)
    lines = _lines(buf)
    text = lines.get_column("text")
    stripped = text.str.strip_chars()
    is_header = text.str.starts_with("ts,te,").to_numpy()
    is_sum = (stripped == "Summary").to_numpy()
    sum1 = np.roll(is_sum, 1) & text.str.starts_with("flows,bytes,").to_numpy()
    sum2 = np.roll(sum1, 1)
    if len(is_sum):
        sum1[0] = sum2[0] = False
    skip = is_header | is_sum | sum1 | sum2 | (stripped == "").to_numpy()
    skip |= (stripped == NO_FLOWS_LINE).to_numpy()
    headers = text.filter(pl.Series(is_header))
    names = headers[0].split(",") if len(headers) else CSV_COLUMNS_1_7_1
    rows = lines.filter(pl.Series(~skip))
    missing = [c for c in CSV_REQUIRED if c not in names]
    if missing:
        status = np.full(rows.height, 1, np.int8)
        return _results(buf, source, rows, status, {1: REASON_MISSING_COLUMN}, None)
    fields = rows.get_column("text").str.split(",")
    n_fields = fields.list.len().to_numpy()
    get = {c: fields.list.get(names.index(c), null_on_oob=True) for c in CSV_REQUIRED}
    df = pl.DataFrame(get)
    ts_ms = _csv_time(df.get_column("ts"))
    te_ms = _csv_time(df.get_column("te"))
    td_text = df.get_column("td").str.strip_chars()
    td_ms = (
        pl.DataFrame({"t": td_text})
        .select(
            pl.when(pl.col("t").str.contains(r"^\d{1,20}\.\d{3}$"))
            .then((pl.col("t").cast(pl.Float64, strict=False) * 1000).round(0))
            .alias("ms")
        )
        .get_column("ms")
    )
    ints = df.select(
        sp=_uint(pl.col("sp"), pl.UInt32),
        dp=_uint(pl.col("dp"), pl.UInt32),
        ipkt=_uint(pl.col("ipkt"), pl.UInt64),
        ibyt=_uint(pl.col("ibyt"), pl.UInt64),
        dir=_uint(pl.col("dir"), pl.UInt32),
        pr=pl.col("pr").str.strip_chars().replace_strict(PROTO_NUMBER, default=None),
    )
    addr, addr_ok = _addresses(df.get_column("sa"), df.get_column("da"))
    ok = ~(ints.select(pl.any_horizontal(pl.all().is_null())).to_series().to_numpy())
    ok &= ts_ms.is_not_null().to_numpy() & te_ms.is_not_null().to_numpy()
    ok &= td_ms.is_not_null().to_numpy() & addr_ok
    ok &= (ints.get_column("sp") <= 65535).fill_null(False).to_numpy()
    ok &= (ints.get_column("dp") <= 65535).fill_null(False).to_numpy()
    ok &= (ints.get_column("dir") <= 255).fill_null(False).to_numpy()
    router = df.get_column("ra").str.strip_chars()
    ok &= router.is_not_null().to_numpy()
    status = np.where(n_fields != len(names), 2, np.where(ok, 0, 3)).astype(np.int8)
    status[rows.get_column("bad_bytes").to_numpy()] = 4
    start = ts_ms.fill_null(0).to_numpy()
    td_float = td_ms.fill_null(-1).to_numpy()
    td_known = (td_float >= 0) & (td_float <= _MAX_TD_MS)
    td = np.where(td_known, td_float, 0).astype(np.int64)
    te = te_ms.fill_null(0).to_numpy()
    end = np.where(td_known, np.maximum(te, start + td), te)
    cols = {
        **addr,
        "flow_start_ms": start,
        "flow_end_ms": end,
        "protocol": ints.get_column("pr").fill_null(0).to_numpy().astype(np.uint8),
        "src_port": ints.get_column("sp").fill_null(0).to_numpy().astype(np.uint16),
        "dst_port": ints.get_column("dp").fill_null(0).to_numpy().astype(np.uint16),
        "flow_direction": ints.get_column("dir").fill_null(0).to_numpy().astype(np.uint8),
        "octets": ints.get_column("ibyt").fill_null(0).to_numpy().astype(np.uint64),
        "packets": ints.get_column("ipkt").fill_null(0).to_numpy().astype(np.uint64),
        "_router": router.fill_null("").to_numpy(),
        "_has_direction": np.ones(rows.height, bool),
    }
    _zero_icmp_ports(cols)
    reasons = {2: REASON_FIELD_COUNT, 3: REASON_BAD_VALUE, 4: REASON_BAD_BYTES}
    return _results(buf, source, rows, status, reasons, cols)


def _csv_time(text: pl.Series) -> pl.Series:
    """`YYYY-mm-dd HH:MM:SS` (read as UTC) → epoch ms; null when malformed."""
    return (
        text.str.strip_chars()
        .str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False)
        .dt.epoch("ms")
    )


# ------------------------------------------------------------------------------ json
def decode_nfdump_json(buf: bytes, source: str, *, fast: bool = True) -> list[NfdumpExporterFlows]:
    """Same as read_nfdump_json, from the file's bytes; never raises on bad input.

    Reads nfdump's layout: `{` and `}`/`},` on lines of their own, one `"key" : value` a line."""
    buf = bytes(buf)
    if fast:
        cols = _json_fast(buf)
        if cols is not None:
            return _fast_results(cols)
    lines = _lines(buf)
    text = lines.get_column("text")
    s = text.str.strip_chars()
    bad_bytes = lines.get_column("bad_bytes").to_numpy()
    pair = text.str.extract_groups(_JSON_PAIR)
    key = pair.struct.field("1")
    value = pair.struct.field("2").str.strip_chars_end(", \t")
    obj, inside, objects, strays = _json_pieces(
        lines,
        opens=((s == "{") | (s == "[{")).to_numpy() & ~bad_bytes,
        closes=s.is_in(["}", "},", "}]"]).to_numpy() & ~bad_bytes,
        frame=s.is_in(["[", "]", "", NO_FLOWS_LINE]).to_numpy(),
        is_pair=key.is_not_null().to_numpy() & ~bad_bytes,
        buf_len=len(buf),
    )
    n_obj = objects.height
    well_formed = np.r_[True, objects.get_column("well_formed").to_numpy()]
    objects = objects.select("obj", "offset", "length")
    kv = (
        pl.DataFrame({"obj": obj, "key": key, "value": value})
        .filter(pl.col("key").is_in(_JSON_KEYS) & pl.Series(inside))
        .with_columns(value=pl.col("value").str.replace(r'^"(.*)"$', "${1}"))
        .unique(["obj", "key"], keep="first", maintain_order=True)
    )
    wide = objects.select("obj").join(
        kv.pivot(on="key", index="obj", values="value") if kv.height else kv.select("obj"),
        on="obj",
        how="left",
    )
    for k in _JSON_KEYS:
        if k not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.String).alias(k))
    wide = wide.sort("obj")
    start, start_ok = _json_time(wide.get_column("first"))
    end, end_ok = _json_time(wide.get_column("last"))
    ints = wide.select(
        *[
            _uint(pl.col(k), t).alias(k)
            for k, t in (
                ("in_packets", pl.UInt64),
                ("in_bytes", pl.UInt64),
                ("proto", pl.UInt32),
                ("src_port", pl.UInt32),
                ("dst_port", pl.UInt32),
                ("icmp_type", pl.UInt32),
                ("icmp_code", pl.UInt32),
                ("direction", pl.UInt32),
                ("sampled", pl.UInt32),
            )
        ]
    )
    v4 = wide.get_column("src4_addr").is_not_null()
    src = wide.select(pl.coalesce("src4_addr", "src6_addr")).to_series()
    dst = wide.select(pl.coalesce("dst4_addr", "dst6_addr")).to_series()
    addr, addr_ok = _addresses(src, dst)
    addr_ok &= (addr["ip_version"] == 4) == v4.to_numpy()
    router = wide.select(pl.coalesce("ip4_router", "ip6_router")).to_series()
    icmp = ints.get_column("icmp_type").is_not_null().to_numpy()

    def col(name: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        series = ints.get_column(name)
        return series.fill_null(0).to_numpy(), (series <= limit).fill_null(False).to_numpy()

    packets, packets_ok = col("in_packets", 2**64 - 1)
    octets, octets_ok = col("in_bytes", 2**64 - 1)
    proto, proto_ok = col("proto", 255)
    sp, sp_ok = col("src_port", 65535)
    dp, dp_ok = col("dst_port", 65535)
    it, it_ok = col("icmp_type", 255)
    ic, ic_ok = col("icmp_code", 255)
    direction, dir_ok = col("direction", 255)
    has_dir = wide.get_column("direction").is_not_null().to_numpy()
    has_sp = wide.get_column("src_port").is_not_null().to_numpy()
    has_dp = wide.get_column("dst_port").is_not_null().to_numpy()
    required = [wide.get_column(k).is_not_null() for k in ("first", "last", "in_packets")]
    required += [wide.get_column(k).is_not_null() for k in ("in_bytes", "proto", "type")]
    has_required = (
        np.logical_and.reduce([r.to_numpy() for r in required]) & src.is_not_null().to_numpy()
    )
    has_required &= dst.is_not_null().to_numpy()
    values_ok = start_ok & end_ok & packets_ok & octets_ok & proto_ok & addr_ok
    values_ok &= np.where(icmp, it_ok & ic_ok, (sp_ok | ~has_sp) & (dp_ok | ~has_dp))
    values_ok &= dir_ok | ~has_dir
    is_flow = (wide.get_column("type") == "FLOW").fill_null(False).to_numpy()
    scaled = (ints.get_column("sampled").fill_null(0) != 0).to_numpy()
    status = np.select(
        [~well_formed[1:], ~has_required, ~is_flow, ~values_ok, scaled],
        [1, 2, 3, 4, 5],
        0,
    ).astype(np.int8)
    cols = {
        **addr,
        "flow_start_ms": start,
        "flow_end_ms": end,
        "protocol": proto.astype(np.uint8),
        "src_port": np.where(icmp, 0, sp).astype(np.uint16),
        "dst_port": np.where(icmp, 0, dp).astype(np.uint16),
        "flow_direction": direction.astype(np.uint8),
        "octets": octets.astype(np.uint64),
        "packets": packets.astype(np.uint64),
        "_router": router.fill_null("").to_numpy(),
        "_has_direction": has_dir,
    }
    _zero_icmp_ports(cols)
    reasons = {
        1: REASON_BAD_OBJECT,
        2: REASON_MISSING_KEY,
        3: REASON_NOT_FLOW,
        4: REASON_BAD_VALUE,
        5: REASON_SCALED_UNKNOWN,
        6: REASON_BAD_OBJECT,  # a run of stray lines outside objects
    }
    # stray runs sort between the objects by offset; their row -1 is a padding row never read
    pieces = pl.concat(
        [
            objects.with_columns(status=pl.Series(status), row=pl.int_range(n_obj)),
            strays.with_columns(status=pl.lit(6, pl.Int8), row=pl.lit(-1, pl.Int64)),
        ],
        how="vertical_relaxed",
    ).sort("offset")
    row = pieces.get_column("row").to_numpy()
    piece_cols = {k: np.concatenate([v, np.zeros(1, v.dtype)])[row] for k, v in cols.items()}
    piece_status = pieces.get_column("status").to_numpy()
    return _results(buf, source, pieces, piece_status, reasons, piece_cols)


def _json_pieces(
    lines: pl.DataFrame,
    *,
    opens: np.ndarray,
    closes: np.ndarray,
    frame: np.ndarray,
    is_pair: np.ndarray,
    buf_len: int,
) -> tuple[np.ndarray, np.ndarray, pl.DataFrame, pl.DataFrame]:
    """Cut nfdump json lines into objects and stray runs (resynchronising at every `{` line).

    An object runs from a `{` line to the first `}`/`},` line before the next `{` line; without
    one it is malformed and runs up to that next `{` (or the end). An object is well formed when
    closed and every line inside is a `"key" : value` pair or frame line. Non-frame lines outside
    objects form stray runs, one bad piece per run. Returns (object number of each line, 0
    outside; line inside an object; objects: obj, offset, length, well_formed; strays: obj,
    offset, length). Object pieces end where the line after their last line starts, strays at
    the end of their last line."""
    n_lines = len(opens)
    line = np.arange(n_lines)
    offsets = lines.get_column("offset").to_numpy()
    line_ends = offsets + lines.get_column("length").to_numpy()
    next_start = np.r_[offsets[1:], buf_len].astype(np.int64)
    open_at = np.flatnonzero(opens)
    close_at = np.flatnonzero(closes)
    next_open = np.r_[open_at[1:], n_lines]
    j = np.searchsorted(close_at, open_at, side="right")
    close = close_at[np.minimum(j, len(close_at) - 1)] if len(close_at) else next_open
    closed = (j < len(close_at)) & (close < next_open)
    last_line = np.where(closed, close, next_open - 1)
    obj = np.cumsum(opens)
    inside = line <= np.r_[-1, last_line][obj]
    obj = np.where(inside, obj, 0)
    off_layout = inside & ~(opens | closes | is_pair | frame)
    n_bad = np.bincount(obj[off_layout], minlength=len(open_at) + 1)[1:]
    objects = pl.DataFrame(
        {
            "obj": np.arange(1, len(open_at) + 1, dtype=np.int64),
            "offset": offsets[open_at].astype(np.int64),
            "length": (next_start[last_line] - offsets[open_at]).astype(np.int64),
            "well_formed": closed & (n_bad == 0),
        }
    )
    content = np.flatnonzero(~frame)
    stray = ~inside[content]
    first = content[stray & ~np.r_[False, stray[:-1]]]
    last = content[stray & ~np.r_[stray[1:], False]]
    strays = pl.DataFrame(
        {
            "obj": np.zeros(len(first), np.int64),
            "offset": offsets[first].astype(np.int64),
            "length": (line_ends[last] - offsets[first]).astype(np.int64),
        }
    )
    return obj, inside, objects, strays


def _json_time(text: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """`YYYY-mm-ddTHH:MM:SS.mmm` (read as UTC) → (epoch ms, ok)."""
    parts = text.str.extract_groups(_JSON_TIME)
    seconds = (
        parts.struct.field("1")
        .str.strptime(pl.Datetime("ms"), "%Y-%m-%dT%H:%M:%S", strict=False)
        .dt.epoch("ms")
    )
    ms = parts.struct.field("2").cast(pl.Int64, strict=False)
    value = seconds + ms
    return value.fill_null(0).to_numpy().astype(np.int64), value.is_not_null().to_numpy()


# ------------------------------------------------------------------------------ fast paths
def _plain_text(buf: bytes) -> bool:
    """True when every byte is printable ASCII, tab or LF (what nfdump writes)."""
    u8 = np.frombuffer(buf, np.uint8)
    odd = np.flatnonzero((u8 - np.uint8(0x20)) >= 0x5F)  # < 0x20 or >= 0x7F (LF, tab: few)
    return bool(np.isin(u8[odd], (9, 10)).all())


def _csv_body(buf: bytes) -> bytes | None:
    """Flow lines of a 1.7.1 csv export without header/summary; None when not that layout."""
    body = buf
    if body.startswith(b"ts,te,"):
        header, _, body = body.partition(b"\n")
        if header.decode().split(",") != CSV_COLUMNS_1_7_1:
            return None
    cut = body.rfind(b"Summary\n")
    if cut >= 0:
        if cut > 0 and body[cut - 1] != 10:
            return None
        tail = body[cut:].rstrip(b"\n").split(b"\n")
        if len(tail) != 3 or not tail[1].startswith(b"flows,bytes,") or b"Summary" in tail[2]:
            return None
        body = body[:cut]
    if NO_FLOWS_LINE.encode() in body or not body[:200].strip():
        return None
    return body


def _csv_fast(buf: bytes) -> dict[str, np.ndarray] | None:
    """Columns of a well-formed csv export, or None to use the careful path."""
    if not _plain_text(buf):
        return None
    body = _csv_body(buf)
    if body is None:
        return None
    index = {c: CSV_COLUMNS_1_7_1.index(c) for c in (*CSV_REQUIRED, "tr")}
    types = {"sp": pl.UInt32, "dp": pl.UInt32, "dir": pl.UInt32, "ipkt": pl.UInt64}
    types["ibyt"] = pl.UInt64
    n_cols = len(CSV_COLUMNS_1_7_1)
    try:
        df = pl.read_csv(
            body,
            has_header=False,
            columns=sorted(index.values()),
            schema_overrides=[pl.String] * n_cols,
            quote_char=None,
        )
        df.columns = sorted(index, key=index.__getitem__)  # selected columns in file order
        df = df.with_columns(
            *[pl.col(c).cast(t, strict=True) for c, t in types.items()],
            pl.col("pr").str.strip_chars(),  # nfdump pads protocol numbers: "  221"
        )
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if df.null_count().sum_horizontal().item() or (df.get_column("ts").str.len_bytes() != 19).any():
        return None
    checks = df.select(
        td=pl.col("td").str.contains(r"^\d{1,20}\.\d{3}$").all(),
        te=(pl.col("te").str.len_bytes() == 19).all(),
        ports=(pl.max_horizontal("sp", "dp") <= 65535).all() & (pl.col("dir") <= 255).all(),
        pr=pl.col("pr").is_in(list(PROTO_NUMBER)).all(),
    )
    if not all(checks.row(0)):
        return None
    ts_ms, te_ms = _csv_time(df.get_column("ts")), _csv_time(df.get_column("te"))
    if ts_ms.null_count() or te_ms.null_count():
        return None
    td_float = (df.get_column("td").cast(pl.Float64) * 1000).round(0).to_numpy()
    td_known = td_float <= _MAX_TD_MS
    start, te = ts_ms.to_numpy(), te_ms.to_numpy()
    td = np.where(td_known, td_float, 0).astype(np.int64)
    cols = {
        "flow_start_ms": start,
        "flow_end_ms": np.where(td_known, np.maximum(te, start + td), te),
        "protocol": df.get_column("pr").replace_strict(PROTO_NUMBER).to_numpy().astype(np.uint8),
        "src_port": df.get_column("sp").to_numpy().astype(np.uint16),
        "dst_port": df.get_column("dp").to_numpy().astype(np.uint16),
        "flow_direction": df.get_column("dir").to_numpy().astype(np.uint8),
        "octets": df.get_column("ibyt").to_numpy().astype(np.uint64),
        "packets": df.get_column("ipkt").to_numpy().astype(np.uint64),
        "_router": df.get_column("ra").str.strip_chars().to_numpy(),
        "_has_direction": np.ones(df.height, bool),
    }
    return _with_addresses(cols, df.get_column("sa"), df.get_column("da"), None)


_JSON_DUCKDB_COLUMNS = {
    "type": "VARCHAR",
    "sampled": "BIGINT",
    "first": "VARCHAR",
    "last": "VARCHAR",
    "in_packets": "UBIGINT",
    "in_bytes": "UBIGINT",
    "proto": "BIGINT",
    "src_port": "BIGINT",
    "dst_port": "BIGINT",
    "icmp_type": "BIGINT",
    "icmp_code": "BIGINT",
    "src4_addr": "VARCHAR",
    "dst4_addr": "VARCHAR",
    "src6_addr": "VARCHAR",
    "dst6_addr": "VARCHAR",
    "direction": "BIGINT",
    "ip4_router": "VARCHAR",
    "ip6_router": "VARCHAR",
}


def _read_json_array(text: bytes) -> pl.DataFrame | None:
    """DuckDB read_json of a JSON array (via a temp file); None when DuckDB rejects it."""
    fd, name = tempfile.mkstemp(suffix=".json", prefix="nfdump-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        con = duckdb.connect()
        try:
            relation = con.read_json(name, format="array", columns=_JSON_DUCKDB_COLUMNS)
            return pl.from_arrow(relation.arrow().read_all())
        finally:
            con.close()
    except (duckdb.Error, pa.ArrowException, OSError):  # errors surface in the Arrow stream
        return None
    finally:
        os.unlink(name)


def _json_fast(buf: bytes) -> dict[str, np.ndarray] | None:
    """Columns of a well-formed json export, or None to use the careful path."""
    head = buf[:2].strip()
    if not head or not _plain_text(buf):
        return None
    if head.startswith(b"{"):  # -q: objects separated by ",\n", no brackets
        df = _read_json_array(b"[" + buf + b"]")
    elif head.startswith(b"["):
        df = _read_json_array(buf)
    else:
        return None
    if df is None or not df.height:
        return None
    icmp = pl.col("icmp_type").is_not_null()
    port_ok = pl.when(icmp).then(
        pl.col("icmp_type").is_between(0, 255) & pl.col("icmp_code").is_between(0, 255)
    )
    port_ok = port_ok.otherwise(
        pl.col("src_port").fill_null(0).is_between(0, 65535)
        & pl.col("dst_port").fill_null(0).is_between(0, 65535)
    )
    time_ok = [pl.col(k).str.contains(_JSON_TIME).fill_null(False) for k in ("first", "last")]
    v4 = pl.col("src4_addr").is_not_null()
    checks = df.select(
        flow=(pl.col("type") == "FLOW").fill_null(False).all(),
        unscaled=(pl.col("sampled").fill_null(0) == 0).all(),
        times=(time_ok[0] & time_ok[1]).all(),
        packets=pl.col("in_packets").is_not_null().all(),
        octets=pl.col("in_bytes").is_not_null().all(),
        proto=pl.col("proto").is_between(0, 255).fill_null(False).all(),
        ports=port_ok.fill_null(False).all(),
        direction=pl.col("direction").fill_null(0).is_between(0, 255).all(),
        addresses=(
            pl.when(v4)
            .then(pl.col("dst4_addr").is_not_null())
            .otherwise(pl.col("src6_addr").is_not_null() & pl.col("dst6_addr").is_not_null())
        ).all(),
    )
    if not all(checks.row(0)):
        return None
    start, start_ok = _json_time(df.get_column("first"))
    end, end_ok = _json_time(df.get_column("last"))
    if not (start_ok.all() and end_ok.all()):
        return None
    is_icmp = df.get_column("icmp_type").is_not_null().to_numpy()
    sp = df.get_column("src_port").fill_null(0).to_numpy()
    dp = df.get_column("dst_port").fill_null(0).to_numpy()
    cols = {
        "flow_start_ms": start,
        "flow_end_ms": end,
        "protocol": df.get_column("proto").to_numpy().astype(np.uint8),
        "src_port": np.where(is_icmp, 0, sp).astype(np.uint16),
        "dst_port": np.where(is_icmp, 0, dp).astype(np.uint16),
        "flow_direction": df.get_column("direction").fill_null(0).to_numpy().astype(np.uint8),
        "octets": df.get_column("in_bytes").to_numpy().astype(np.uint64),
        "packets": df.get_column("in_packets").to_numpy().astype(np.uint64),
        "_router": df.select(pl.coalesce("ip4_router", "ip6_router").fill_null(""))
        .to_series()
        .to_numpy(),
        "_has_direction": df.get_column("direction").is_not_null().to_numpy(),
    }
    src = df.select(pl.coalesce("src4_addr", "src6_addr")).to_series()
    dst = df.select(pl.coalesce("dst4_addr", "dst6_addr")).to_series()
    return _with_addresses(cols, src, dst, df.get_column("src4_addr").is_not_null().to_numpy())


def _with_addresses(
    cols: dict[str, np.ndarray], src: pl.Series, dst: pl.Series, v4: np.ndarray | None
) -> dict[str, np.ndarray] | None:
    """cols plus parsed addresses (and ICMP ports zeroed); None when an address is bad."""
    addr, addr_ok = _addresses(src, dst)
    if v4 is not None:
        addr_ok &= (addr["ip_version"] == 4) == v4
    if not addr_ok.all():
        return None
    cols.update(addr)
    _zero_icmp_ports(cols)
    return cols


def _fast_results(cols: dict[str, np.ndarray]) -> list[NfdumpExporterFlows]:
    """Results of a fast path: every row decoded, none set aside."""
    n = len(cols["protocol"])
    rows = pl.DataFrame({"offset": np.zeros(n, np.int64), "length": np.zeros(n, np.int64)})
    return _results(b"", "", rows, np.zeros(n, np.int8), {}, cols)


def _zero_icmp_ports(cols: dict[str, np.ndarray]) -> None:
    """ICMP (1) and ICMPv6 (58) have no ports: src_port = dst_port = 0 (in place)."""
    icmp = np.isin(cols["protocol"], (1, 58))
    cols["src_port"] = np.where(icmp, 0, cols["src_port"]).astype(np.uint16)
    cols["dst_port"] = np.where(icmp, 0, cols["dst_port"]).astype(np.uint16)


# ------------------------------------------------------------------------------ results
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


def _results(
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
