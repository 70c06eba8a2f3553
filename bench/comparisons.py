"""The comparisons of `python -m bench`: each builds its data (cached) and returns its cases."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from bench import attributed_year, exporter_day, streams
from bench.harness import Case, Comparison

DEFAULT_SCALES = {  # records when --scale is not given
    "attribution": 1_000_000,
    "nfcapd": 1_200_000,
    "decoders": 2_000_000,
    "aggregation": 1_000_000,
}


def attribution(scale: int, data_dir: Path, seed: int) -> list[Comparison]:
    """attribute_day on one exporter-day vs DuckDB read_parquet → write_parquet (zstd)."""
    warehouse = exporter_day.exporter_day(data_dir, scale, seed)
    flows = exporter_day.flows_file(warehouse)
    floor_out = warehouse.parent / "rewrite-floor.parquet"
    floor = Case(
        "read+rewrite floor (DuckDB zstd)",
        "attribution",
        "rewrite_floor",
        {"flows_path": str(flows), "out_path": str(floor_out)},
        rows=scale,
    )
    attribute = Case(
        "attribute_day",
        "attribution",
        "attribute",
        {
            "warehouse": str(warehouse),
            "day": exporter_day.DAY.isoformat(),
            "exporter": exporter_day.EXPORTER,
            "salt": exporter_day.SALT,
        },
        rows=scale,
    )
    return [Comparison("attribution", scale, floor, [attribute])]


def nfcapd(scale: int, data_dir: Path, seed: int) -> list[Comparison]:
    """read_nfcapd vs nfdump on the same file: every record, and bytes by protocol."""
    path = str(streams.nfcapd_file(data_dir, scale))
    floor = Case(
        "numpy: read + sum file bytes", "nfcapd", "bytes_floor", {"path": path, "records": scale}
    )
    ours_all = Case("read_nfcapd (all columns)", "nfcapd", "read_all", {"path": path}, rows=scale)
    ours_proto = Case("read_nfcapd + bytes by proto", "nfcapd", "bytes_by_protocol", {"path": path})
    nfdump = shutil.which("nfdump")
    if nfdump is None:  # no reference tool: our reader against the byte floor only
        note = "nfdump not installed: nfcapd compared with the byte floor only"
        return [Comparison("nfcapd-read", scale, floor, [ours_all, ours_proto], notes=[note])]
    read = Case(
        "nfdump -r F -q -o null", command=(nfdump, "-r", path, "-q", "-o", "null"), rows=scale
    )
    proto = Case(
        "nfdump -r F -s proto/bytes", command=(nfdump, "-r", path, "-s", "proto/bytes"), rows=scale
    )
    return [
        Comparison("nfcapd-read", scale, read, [ours_all, floor]),
        Comparison("nfcapd-proto-bytes", scale, proto, [ours_proto]),
    ]


def _descr(dtype) -> list[list[str]]:
    return [[name, code] for name, code in dtype.descr if name]


def decoders(scale: int, data_dir: Path, seed: int) -> list[Comparison]:
    """FlowDecoder per export format vs np.frombuffer of the same number of bare records."""
    root = streams.decoder_streams(data_dir, scale)
    out = []
    for label, file, fn, floor in (
        ("ipfix-fixed", "ipfix-fixed.bin", "ipfix_file", "ipfix"),
        ("ipfix-variable", "ipfix-var.bin", "ipfix_file", "ipfix"),
        ("netflow-v9", "v9.bin", "datagrams", "v9"),
        ("netflow-v5", "v5.bin", "datagrams", "v5"),
    ):
        n = scale if label != "ipfix-variable" else max(1, scale // 4)
        dtype = _descr(streams.FLOOR_DTYPES[floor])
        base = Case(
            f"np.frombuffer {floor} records",
            "decoders",
            "frombuffer_floor",
            {"path": str(root / f"floor-{floor}.bin"), "dtype": dtype, "count": n},
        )
        decoder = Case(f"FlowDecoder {label}", "decoders", fn, {"path": str(root / file)})
        comp = Comparison(f"decode-{label}", n, base, [decoder])
        if label == "ipfix-variable":
            comp.notes.append("ipfix-variable: its floor is fixed-size IPFIX records, same count")
        out.append(comp)
    return out


def aggregation(scale: int, data_dir: Path, seed: int) -> list[Comparison]:
    """The year's aggregate SQL (aggregate/year.py) vs a DuckDB scan of the columns it reads."""
    root = attributed_year.attributed_year(data_dir, scale, seed)
    rows = attributed_year.flow_count(root)
    floor = Case(
        "DuckDB scan floor (columns read)",
        "aggregation",
        "scan_floor",
        {"root": str(root)},
        rows=rows,
    )
    year = Case(
        "year aggregate tables",
        "aggregation",
        "year_tables",
        {"root": str(root), "year": attributed_year.YEAR, "salt": attributed_year.SALT},
        rows=rows,
    )
    return [Comparison("aggregation", scale, floor, [year])]


BUILDERS: dict[str, Callable[[int, Path, int], list[Comparison]]] = {
    "attribution": attribution,
    "nfcapd": nfcapd,
    "decoders": decoders,
    "aggregation": aggregation,
}
