"""IPFIX files of one exporter-day → normalised flow Parquet, quarantine Parquet, ingest report."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from pipeline.atomic import write_atomic
from pipeline.ingest.ipfix_decoder import FLOW_SCHEMA, IpfixDecoder, QuarantineEntry

NORMALISED_SCHEMA = pa.schema([pa.field("exporter", pa.string()), *FLOW_SCHEMA])
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("reason", pa.string()),
        ("payload", pa.binary()),
    ]
)
# Deterministic row order of a partition: time first, then every other column.
SORT_KEYS = [
    "flow_start_ms",
    "flow_end_ms",
    "observation_domain_id",
    "ip_version",
    "src_v4",
    "dst_v4",
    "src_v6_hi",
    "src_v6_lo",
    "dst_v6_hi",
    "dst_v6_lo",
    "protocol",
    "src_port",
    "dst_port",
    "flow_direction",
    "octets",
    "packets",
    "sampling_interval",
]


EXPORTER_SERVICES = ("pppoe", "ipoe", "mobile")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def load_exporters(raw_dir: Path) -> list[dict]:
    """The exporter registry `raw/exporters.yaml`, validated: a list of {name, service, …}."""
    path = Path(raw_dir) / "exporters.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: exporter registry missing (see docs/ARCHITECTURE.md §1)")
    try:
        data = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if isinstance(data, dict):  # tolerate {exporters: [...]}
        data = data.get("exporters", [])
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of exporters, got {type(data).__name__}")
    seen: set[str] = set()
    for n, e in enumerate(data):
        where = f"{path}: exporter #{n + 1}"
        if not isinstance(e, dict) or "name" not in e:
            raise ValueError(f"{where}: entry without a name: {e!r}")
        if not _SAFE_NAME.match(str(e["name"])) or e["name"] in seen:
            raise ValueError(f"{where}: name {e['name']!r} is not a unique safe folder name")
        seen.add(e["name"])
        if e.get("service") not in EXPORTER_SERVICES:
            raise ValueError(
                f"{where} ({e['name']}): service {e.get('service')!r} is not one of "
                f"{', '.join(EXPORTER_SERVICES)}"
            )
        interval = e.get("default_sampling_interval")
        if interval is not None and (not isinstance(interval, int) or interval < 1):
            raise ValueError(
                f"{where} ({e['name']}): default_sampling_interval must be a "
                f"positive integer or null, got {interval!r}"
            )
    return list(data)


def _quarantine_table(entries: list[QuarantineEntry]) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "source_file": [e.source for e in entries],
            "offset": [e.offset for e in entries],
            "length": [e.length for e in entries],
            "reason": [e.reason for e in entries],
            "payload": [e.payload for e in entries],
        },
        schema=QUARANTINE_SCHEMA,
    )


def normalise_exporter_day(
    raw_dir: Path, warehouse_dir: Path, exporter: dict, day: dt.date
) -> dict[str, Any]:
    """Decode raw/ipfix/<exporter>/<day>/*.ipfix into warehouse partitions; returns the report."""
    raw_dir, warehouse_dir = Path(raw_dir), Path(warehouse_dir)
    name = exporter["name"]
    files = sorted((raw_dir / "ipfix" / name / day.isoformat()).glob("*.ipfix"))
    decoder = IpfixDecoder(name, exporter.get("default_sampling_interval"))
    tables: list[pa.Table] = []
    entries: list[QuarantineEntry] = []
    report: dict[str, Any] = {
        "files": len(files),
        "messages": 0,
        "records_in": 0,
        "records_decoded": 0,
        "records_quarantined": 0,
        "quarantine_by_reason": {},
        "sampling_intervals": {},
        "sequence_gaps": 0,
    }
    for path in files:  # name order = time order
        result = decoder.decode(path.read_bytes(), path.relative_to(raw_dir).as_posix())
        s = result.stats
        for key in (
            "messages",
            "records_in",
            "records_decoded",
            "records_quarantined",
            "sequence_gaps",
        ):
            report[key] += getattr(s, key)
        for reason, n in s.quarantine_by_reason.items():
            report["quarantine_by_reason"][reason] = (
                report["quarantine_by_reason"].get(reason, 0) + n
            )
        for interval, n in s.sampling_intervals.items():
            key = str(interval)
            report["sampling_intervals"][key] = report["sampling_intervals"].get(key, 0) + n
        tables.append(result.flows)
        entries.extend(result.quarantine)
    report["quarantine_by_reason"] = dict(sorted(report["quarantine_by_reason"].items()))
    report["sampling_intervals"] = dict(
        sorted(report["sampling_intervals"].items(), key=lambda kv: int(kv[0]))
    )

    flows = pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()
    flows = flows.add_column(0, "exporter", pa.repeat(pa.scalar(name, pa.string()), flows.num_rows))
    flows = flows.cast(NORMALISED_SCHEMA)
    if flows.num_rows:
        flows = flows.take(pc.sort_indices(flows, [(k, "ascending") for k in SORT_KEYS]))
    flows = flows.combine_chunks()

    part = f"date={day.isoformat()}"
    flows_path = warehouse_dir / "flows" / part / f"exporter={name}" / "flows.parquet"
    write_atomic(flows_path, lambda tmp: pq.write_table(flows, tmp, compression="zstd"))
    quarantine = _quarantine_table(entries)
    q_path = warehouse_dir / "quarantine" / part / f"exporter={name}" / "quarantine.parquet"
    write_atomic(q_path, lambda tmp: pq.write_table(quarantine, tmp, compression="zstd"))
    report_path = warehouse_dir / "ingest_report" / part / f"exporter={name}.json"
    text = json.dumps(report, indent=2, sort_keys=False) + "\n"
    write_atomic(report_path, lambda tmp: Path(tmp).write_text(text))
    return report
