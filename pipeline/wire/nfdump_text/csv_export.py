"""Reader of `nfdump -r F -o csv` exports (nfdump 1.7.1, with or without -q).

Times, protocol names, ICMP ports and quarantine runs: see `pipeline.wire.nfdump_text`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipeline.wire.nfdump_text.common import (
    NO_FLOWS_LINE,
    REASON_BAD_BYTES,
    REASON_BAD_VALUE,
    decode_text,
    parse_addresses,
    plain_text,
    uint_expr,
    with_addresses,
    zero_icmp_ports,
)
from pipeline.wire.nfdump_text.results import NfdumpExporterFlows, exporter_results

REASON_FIELD_COUNT = "nfdump csv: wrong number of fields"
REASON_MISSING_COLUMN = "nfdump csv: header lacks a required column"

# `nfdump -o csv` 1.7.1 header (printed unless -q).
CSV_COLUMNS_1_7_1 = (
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,"
    "nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,"
    "mpls10,cl,sl,al,ra,eng,exid,tr"
).split(",")
CSV_REQUIRED = ("ts", "te", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt", "dir", "ra")

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
_MAX_TD_MS = 10 * 365 * 86_400_000  # larger td values are nfdump's print of a negative duration


def read_nfdump_csv(
    path: Path, source: str | None = None, *, fast: bool = True
) -> list[NfdumpExporterFlows]:
    """Flows of an `nfdump -o csv` file per router address (see `pipeline.wire.nfdump_text`)."""
    return decode_nfdump_csv(Path(path).read_bytes(), source or str(path), fast=fast)


# ------------------------------------------------------------------------------ careful path
def decode_nfdump_csv(buf: bytes, source: str, *, fast: bool = True) -> list[NfdumpExporterFlows]:
    """Same as read_nfdump_csv, from the file's bytes; never raises on bad input."""
    return decode_text(buf, source, fast, csv_fast_columns, _csv_careful)


def _csv_careful(buf: bytes, source: str, lines: pl.DataFrame) -> list[NfdumpExporterFlows]:
    """The careful path: every line parsed, set-aside lines grouped into runs by reason."""
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
        return exporter_results(buf, source, rows, status, {1: REASON_MISSING_COLUMN}, None)
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
        sp=uint_expr(pl.col("sp"), pl.UInt32),
        dp=uint_expr(pl.col("dp"), pl.UInt32),
        ipkt=uint_expr(pl.col("ipkt"), pl.UInt64),
        ibyt=uint_expr(pl.col("ibyt"), pl.UInt64),
        dir=uint_expr(pl.col("dir"), pl.UInt32),
        pr=pl.col("pr").str.strip_chars().replace_strict(PROTO_NUMBER, default=None),
    )
    addr, addr_ok = parse_addresses(df.get_column("sa"), df.get_column("da"))
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
    zero_icmp_ports(cols)
    reasons = {2: REASON_FIELD_COUNT, 3: REASON_BAD_VALUE, 4: REASON_BAD_BYTES}
    return exporter_results(buf, source, rows, status, reasons, cols)


def _csv_time(text: pl.Series) -> pl.Series:
    """`YYYY-mm-dd HH:MM:SS` (read as UTC) → epoch ms; null when malformed."""
    return (
        text.str.strip_chars()
        .str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False)
        .dt.epoch("ms")
    )


# ------------------------------------------------------------------------------ fast path
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


def csv_fast_columns(buf: bytes) -> dict[str, np.ndarray] | None:
    """Columns of a well-formed csv export, or None to use the careful path."""
    if not plain_text(buf):
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
    return with_addresses(cols, df.get_column("sa"), df.get_column("da"), None)
