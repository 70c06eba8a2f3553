"""The flow-source registry: validation messages, file selection, exporter matching, defaults."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from pipeline.ingest.flow_readers import apply_default_sampling
from pipeline.ingest.flows import load_registry
from pipeline.ingest.sources import UNREGISTERED, ExporterMatcher, parse_sources
from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats

EXPORTERS = [
    {"name": "bras01", "address": "192.0.2.1", "observation_domain_id": 101, "service": "pppoe"},
    {"name": "bras02", "address": "192.0.2.2", "observation_domain_id": 102, "service": "pppoe"},
]


def test_default_source_is_the_ipfix_layout():
    (source,) = parse_sources(None, "x.yaml")
    assert (source.format, source.per_exporter) == ("ipfix", True)


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ([{"format": "sflow", "path": "a/{date}"}], "format 'sflow' is not one of"),
        ([{"format": "pcap", "path": "pcap/*.pcap"}], "must be a string containing {date}"),
        ([{"format": "pcap", "path": "../x/{date}/*"}], "must stay inside the raw directory"),
        ([{"format": "pcap", "path": "p/{date}/*", "match": ["mac"]}], "match ['mac']"),
        ([{"format": "ipfix", "path": "ipfix/{date}/*"}], "IPFIX files carry no exporter address"),
        ([], "non-empty list"),
    ],
)
def test_bad_sources_are_rejected_naming_the_file_and_entry(sources, message):
    with pytest.raises(ValueError) as err:
        parse_sources(sources, "raw/exporters.yaml")
    assert "raw/exporters.yaml" in str(err.value) and message in str(err.value)


def test_files_of_a_day_in_name_order(tmp_path):
    (source,) = parse_sources([{"format": "pcap", "path": "pcap/{date}/*.pcap"}], "x")
    day = tmp_path / "pcap" / "2024-06-03"
    day.mkdir(parents=True)
    for name in ("b.pcap", "a.pcap", "c.txt"):
        (day / name).write_bytes(b"")
    got = source.files(tmp_path, dt.date(2024, 6, 3))
    assert [p.name for p in got] == ["a.pcap", "b.pcap"]
    assert source.files(tmp_path, dt.date(2024, 6, 4)) == []


def test_matcher_by_address_and_by_domain():
    by_address = ExporterMatcher(EXPORTERS, ("address",))
    assert by_address.name("192.0.2.2", None) == "bras02"
    assert by_address.name("198.51.100.7", None) == UNREGISTERED
    both = ExporterMatcher(EXPORTERS, ("address", "observation_domain_id"))
    assert both.name("192.0.2.1", 101) == "bras01"
    assert both.name("192.0.2.1", 102) == UNREGISTERED  # right address, wrong domain
    by_domain = ExporterMatcher(EXPORTERS, ("observation_domain_id",))
    assert by_domain.name("127.0.0.1", 102) == "bras02"


def test_registry_with_sources_section(tmp_path):
    (tmp_path / "exporters.yaml").write_text(
        "exporters:\n"
        "  - {name: gw1, service: mobile, address: 192.0.2.9, default_sampling_interval: 512}\n"
        "sources:\n"
        "  - {format: nfcapd, path: 'nfcapd/{date}/nfcapd.*', match: [address]}\n"
    )
    exporters, sources = load_registry(tmp_path)
    assert [e["name"] for e in exporters] == ["gw1"]
    assert [(s.format, s.per_exporter, s.match) for s in sources] == [
        ("nfcapd", False, ("address",))
    ]


def _result(intervals: list[int]) -> DecodeResult:
    n = len(intervals)
    cols = {f.name: pa.nulls(n, f.type) for f in FLOW_SCHEMA}
    cols["sampling_interval"] = pa.array(intervals, pa.uint32())
    cols["octets"] = pa.array([100] * n, pa.uint64())
    stats = DecodeStats(records_in=n, records_decoded=n)
    return DecodeResult(pa.table(cols, schema=FLOW_SCHEMA), [], stats)


def test_unknown_sampling_takes_the_configured_default():
    out = apply_default_sampling(_result([0, 2048, 0]), 4096, "f")
    assert out.flows.column("sampling_interval").to_pylist() == [4096, 2048, 4096]
    assert out.stats.sampling_intervals == {2048: 1, 4096: 2}
    assert out.stats.records_quarantined == 0


def test_unknown_sampling_without_default_is_quarantined_not_scaled_by_one():
    out = apply_default_sampling(_result([0, 2048, 0]), None, "f")
    assert out.flows.column("sampling_interval").to_pylist() == [2048]
    s = out.stats
    assert (s.records_in, s.records_decoded, s.records_quarantined) == (3, 1, 2)
    assert s.quarantine_by_reason == {"sampling rate missing": 2}
    assert [(q.reason, q.records) for q in out.quarantine] == [("sampling rate missing", 2)]
