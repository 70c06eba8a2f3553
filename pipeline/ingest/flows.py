"""Flow export files of one day → per-exporter flow Parquet, quarantine and ingest report."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.atomic import write_atomic
from pipeline.config_schema import ConfigError, load_registry_file
from pipeline.fingerprint import file_sha256
from pipeline.ingest.clocks import clock_tolerance_ms, day_window_ms, set_aside_out_of_window
from pipeline.ingest.duplicates import listed_files
from pipeline.ingest.flow_readers import FlowFileReader
from pipeline.ingest.flow_store import write_flows
from pipeline.ingest.sources import UNREGISTERED, ExporterMatcher, FlowSource, parse_sources
from pipeline.wire.records import FLOW_SCHEMA, TRUST_COUNTERS, DecodeResult, QuarantineEntry

NORMALISED_SCHEMA = pa.schema([pa.field("exporter", pa.string()), *FLOW_SCHEMA])
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("reason", pa.string()),
        ("payload", pa.binary()),
        ("observation_domain_id", pa.uint32()),  # null where the reader cannot tell
        ("template_id", pa.uint16()),
    ]
)

REASON_UNREGISTERED = "exporter not in registry"


def load_exporters(raw_dir: Path) -> list[dict]:
    """The exporter registry `raw/exporters.yaml`, validated (`config_schema.Registry`, unique
    names): a list of {name, service, …}."""
    return _registry(raw_dir)["exporters"]


def _registry(raw_dir: Path) -> dict[str, Any]:
    path = Path(raw_dir) / "exporters.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: exporter registry missing (see docs/ARCHITECTURE.md §1)")
    registry = load_registry_file(path)
    seen: set[str] = set()
    for n, e in enumerate(registry["exporters"]):
        if e["name"] in seen:
            raise ConfigError(
                f"{path}: exporters.{n}.name: {e['name']!r} appears twice (a name is a folder "
                "name: unique)"
            )
        seen.add(e["name"])
    return registry


def _quarantine_table(entries: list[QuarantineEntry]) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "source_file": [e.source for e in entries],
            "offset": [e.offset for e in entries],
            "length": [e.length for e in entries],
            "reason": [e.reason for e in entries],
            "payload": [e.payload for e in entries],
            "observation_domain_id": [e.domain for e in entries],
            "template_id": [e.template_id for e in entries],
        },
        schema=QUARANTINE_SCHEMA,
    )


REPORT_COUNTERS = (
    "messages",
    "records_in",
    "records_decoded",
    "records_quarantined",
    "sequence_gaps",
    *TRUST_COUNTERS,
)


def load_registry(raw_dir: Path) -> tuple[list[dict], list[FlowSource]]:
    """Exporters and flow sources of `raw/exporters.yaml` (see pipeline/ingest/sources.py)."""
    registry = _registry(raw_dir)
    path = Path(raw_dir) / "exporters.yaml"
    return registry["exporters"], parse_sources(registry["sources"], str(path))


def _empty_report() -> dict[str, Any]:
    return {
        "files": 0,
        "formats": {},
        "messages": 0,
        "records_in": 0,
        "records_decoded": 0,
        "records_quarantined": 0,
        "quarantine_by_reason": {},
        "sampling_intervals": {},
        "records_by_version": {},
        "sequence_gaps": 0,
        **dict.fromkeys(TRUST_COUNTERS, 0),
        "sequence": [],
    }


@dataclass
class _ExporterDay:
    """What one exporter-day accumulates across sources and files."""

    report: dict[str, Any] = field(default_factory=_empty_report)
    tables: list[pa.Table] = field(default_factory=list)
    entries: list[QuarantineEntry] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    duplicates: list[dict[str, str]] = field(default_factory=list)

    def add_duplicate(self, rel: str, same_as: str) -> None:
        """A file whose bytes were already read (as `same_as`): skipped, and counted."""
        self.duplicates.append({"file": rel, "same_as": same_as})

    def add(self, result: DecodeResult, rel: str, fmt: str) -> None:
        s, r = result.stats, self.report
        if rel not in self.files:
            self.files.add(rel)
            r["files"] += 1
            r["formats"][fmt] = r["formats"].get(fmt, 0) + 1
        for key in REPORT_COUNTERS:
            r[key] += getattr(s, key, 0)
        _merge_counts(r["quarantine_by_reason"], s.quarantine_by_reason)
        _merge_counts(r["sampling_intervals"], s.sampling_intervals)
        _merge_counts(r["records_by_version"], getattr(s, "records_by_version", {}))
        r["sequence"].extend(getattr(s, "sequence", []))
        self.tables.append(result.flows)
        self.entries.extend(result.quarantine)

    def finished_report(self) -> dict[str, Any]:
        r = self.report
        for key in ("quarantine_by_reason", "formats"):
            r[key] = dict(sorted(r[key].items()))
        for key in ("sampling_intervals", "records_by_version"):
            r[key] = dict(sorted(r[key].items(), key=lambda kv: int(kv[0])))
        r["sequence"] = _merge_sequence(r["sequence"])
        r["duplicate_files"] = len(self.duplicates)
        r["duplicate_file_paths"] = sorted(self.duplicates, key=lambda d: (d["file"], d["same_as"]))
        return r


def _merge_counts(into: dict[str, int], counts: dict) -> None:
    for k, n in counts.items():
        into[str(k)] = into.get(str(k), 0) + int(n)


def _merge_sequence(entries: list[dict]) -> list[dict]:
    """One entry per (version, domain) stream: messages, gaps, missing and restarts summed."""
    merged: dict[tuple[int, int], dict] = {}
    for e in entries:
        key = (int(e["version"]), int(e["domain"]))
        m = merged.setdefault(
            key, {"version": key[0], "domain": key[1], "messages": 0, "gaps": 0, "missing": 0,
                  "restarts": 0, "unit": e.get("unit", "")}
        )  # fmt: skip
        for k in ("messages", "gaps", "missing", "restarts"):
            m[k] += int(e.get(k, 0))
    return [merged[k] for k in sorted(merged)]


def _unregistered(result: DecodeResult, rel: str) -> DecodeResult:
    """Every decoded record of an exporter the registry does not name, set aside and counted."""
    stats = result.stats
    n = stats.records_decoded  # records, not rows (a biflow record gives two rows)
    if result.flows.num_rows:
        result.quarantine.append(QuarantineEntry(rel, 0, 0, REASON_UNREGISTERED, b"", n))
        stats.quarantine_by_reason[REASON_UNREGISTERED] = (
            stats.quarantine_by_reason.get(REASON_UNREGISTERED, 0) + n
        )
        stats.records_decoded -= n
        stats.records_quarantined += n
        stats.reverse_rows = 0
        stats.sampling_intervals = {}
    return DecodeResult(FLOW_SCHEMA.empty_table(), result.quarantine, stats)


ICMP_PROTOCOLS = (1, 58)  # ICMP, ICMPv6: no ports (exporters put type/code in the port field)


def _without_icmp_ports(flows: pa.Table) -> pa.Table:
    """Ports 0 for ICMP/ICMPv6, whichever form the records came in (Cisco NetFlow and nfdump
    carry type * 256 + code as the destination port)."""
    icmp = pc.is_in(
        flows.column("protocol"), pa.array(ICMP_PROTOCOLS, flows.schema.field("protocol").type)
    )
    for name in ("src_port", "dst_port"):
        column = flows.column(name)
        zero = pa.scalar(0, column.type)
        flows = flows.set_column(
            flows.schema.get_field_index(name), name, pc.if_else(icmp, zero, column)
        )
    return flows


def normalise_day(
    raw_dir: Path, warehouse_dir: Path, exporters: list[dict], sources: list[FlowSource],
    day: dt.date, read_before: Mapping[str, str] | None = None,
    digests: Mapping[str, str] | None = None, tolerance_ms: int | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Decode every source's files of one day into per-exporter partitions; returns the reports.

    Every registered exporter gets a partition and report (empty when it sent nothing); records
    of exporters the registry does not name go to the `unregistered` quarantine. A file whose
    bytes were read already (this day, or on an earlier day: `read_before` {sha256: path}) is
    skipped and counted; records whose times fall outside the day's window are set aside
    (pipeline/ingest/clocks.py). `digests` {path: sha256} saves hashing a file twice."""
    raw_dir, warehouse_dir = Path(raw_dir), Path(warehouse_dir)
    by_name = {e["name"]: e for e in exporters}
    acc: dict[str, _ExporterDay] = {e["name"]: _ExporterDay() for e in exporters}
    seen: dict[str, str] = dict(read_before or {})
    tolerance = clock_tolerance_ms() if tolerance_ms is None else tolerance_ms
    window = day_window_ms(day, tolerance)
    readers: dict[tuple[FlowSource, str | None], FlowFileReader] = {}
    for source, target, path in listed_files(raw_dir, exporters, sources, day):
        matcher = ExporterMatcher(exporters, source.match)

        def resolve(address, domain, target=target, matcher=matcher):
            name = target or matcher.name(address, domain)
            return by_name.get(name)

        rel = path.relative_to(raw_dir).as_posix()
        digest = (digests or {}).get(rel) or file_sha256(path)
        if digest in seen:
            names, records = _holdings(path, rel, source, resolve)
            if records:  # a copy of a file with no record (e.g. an empty hour) is no duplicate
                for name in [target] if target else names:
                    acc.setdefault(name, _ExporterDay()).add_duplicate(rel, seen[digest])
                continue
        seen.setdefault(digest, rel)
        if (source, target) not in readers:  # one reader (decoder state) per source and target
            readers[source, target] = FlowFileReader(source.format, resolve)
        reader = readers[source, target]
        for piece in reader.read(path, rel):
            entry = resolve(piece.address, piece.domain)
            result = piece.result if entry else _unregistered(piece.result, rel)
            if entry:
                result = set_aside_out_of_window(result, window, rel)
            name = entry["name"] if entry else UNREGISTERED
            acc.setdefault(name, _ExporterDay()).add(result, rel, source.format)
    return [
        _write_exporter_day(warehouse_dir, name, day, acc[name])
        | {"exporter": name, "date": day.isoformat()}
        for name in sorted(acc)
    ]


def _holdings(path: Path, rel: str, source: FlowSource, resolve) -> tuple[list[str], int]:
    """Registry names whose records a (duplicate) file holds and its records in, read with a
    reader of its own so that the day's decoder state is not touched."""
    pieces = list(FlowFileReader(source.format, resolve).read(path, rel))
    names = {(resolve(p.address, p.domain) or {}).get("name", UNREGISTERED) for p in pieces}
    return sorted(names) or [UNREGISTERED], sum(p.result.stats.records_in for p in pieces)


def _write_exporter_day(
    warehouse_dir: Path, name: str, day: dt.date, got: _ExporterDay
) -> dict[str, Any]:
    flows = pa.concat_tables(got.tables) if got.tables else FLOW_SCHEMA.empty_table()
    flows = flows.add_column(0, "exporter", pa.repeat(pa.scalar(name, pa.string()), flows.num_rows))
    flows = _without_icmp_ports(flows.cast(NORMALISED_SCHEMA))
    report = got.finished_report()
    part = f"date={day.isoformat()}"
    if name != UNREGISTERED:
        flows_path = warehouse_dir / "flows" / part / f"exporter={name}" / "flows.parquet"
        write_flows(flows, flows_path)  # row order and encodings: pipeline/ingest/flow_store.py
    entries = sorted(got.entries, key=lambda q: (q.source, q.offset, q.reason))
    quarantine = _quarantine_table(entries)
    q_path = warehouse_dir / "quarantine" / part / f"exporter={name}" / "quarantine.parquet"
    write_atomic(q_path, lambda tmp: pq.write_table(quarantine, tmp, compression="zstd"))
    report_path = warehouse_dir / "ingest_report" / part / f"exporter={name}.json"
    text = json.dumps(report, indent=2, sort_keys=False) + "\n"
    write_atomic(report_path, lambda tmp: Path(tmp).write_text(text))
    return report


def normalise_exporter_day(
    raw_dir: Path, warehouse_dir: Path, exporter: dict, day: dt.date
) -> dict[str, Any]:
    """One exporter-day from the registry's sources (the default: its IPFIX files)."""
    exporters, sources = load_registry(raw_dir)
    sources = [s for s in sources if s.per_exporter]
    reports = normalise_day(raw_dir, warehouse_dir, [exporter], sources, day)
    report = next(r for r in reports if r["exporter"] == exporter["name"])
    return {k: v for k, v in report.items() if k not in ("exporter", "date")}
