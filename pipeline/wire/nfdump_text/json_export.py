"""Reader of `nfdump -r F -o json` exports (nfdump 1.7.1, with or without -q).

Object resynchronisation, scaled records and quarantine runs: see `pipeline.wire.nfdump_text`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from pipeline.wire.nfdump_text.common import (
    NO_FLOWS_LINE,
    REASON_BAD_VALUE,
    decode_text,
    parse_addresses,
    plain_text,
    uint_expr,
    with_addresses,
    zero_icmp_ports,
)
from pipeline.wire.nfdump_text.results import NfdumpExporterFlows, exporter_results

REASON_BAD_OBJECT = "nfdump json: malformed object"
REASON_MISSING_KEY = "nfdump json: required key missing"
REASON_NOT_FLOW = "nfdump json: not a flow record"
REASON_SCALED_UNKNOWN = "counters scaled by unknown sampler"  # as pipeline.wire.nfcapd.reader

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


def read_nfdump_json(
    path: Path, source: str | None = None, *, fast: bool = True
) -> list[NfdumpExporterFlows]:
    """Flows of an `nfdump -o json` file per router address (see `pipeline.wire.nfdump_text`)."""
    return decode_nfdump_json(Path(path).read_bytes(), source or str(path), fast=fast)


# ------------------------------------------------------------------------------ careful path
def decode_nfdump_json(buf: bytes, source: str, *, fast: bool = True) -> list[NfdumpExporterFlows]:
    """Same as read_nfdump_json, from the file's bytes; never raises on bad input.

    Reads nfdump's layout: `{` and `}`/`},` on lines of their own, one `"key" : value` a line."""
    return decode_text(buf, source, fast, json_fast_columns, _json_careful)


def _json_careful(buf: bytes, source: str, lines: pl.DataFrame) -> list[NfdumpExporterFlows]:
    """The careful path: lines cut into objects and stray runs, each object parsed or set aside."""
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
            uint_expr(pl.col(k), t).alias(k)
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
    addr, addr_ok = parse_addresses(src, dst)
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
    zero_icmp_ports(cols)
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
    return exporter_results(buf, source, pieces, piece_status, reasons, piece_cols)


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


# ------------------------------------------------------------------------------ fast path
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


def json_fast_columns(buf: bytes) -> dict[str, np.ndarray] | None:
    """Columns of a well-formed json export, or None to use the careful path."""
    head = buf[:2].strip()
    if not head or not plain_text(buf):
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
    return with_addresses(cols, src, dst, df.get_column("src4_addr").is_not_null().to_numpy())
