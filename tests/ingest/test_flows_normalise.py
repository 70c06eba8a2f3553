"""normalise_exporter_day: raw IPFIX files of one exporter-day → warehouse partitions + report."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.ingest.flows import load_exporters, normalise_exporter_day
from pipeline.wire.ipfix.writer import write_ipfix_file
from pipeline.wire.records import TRUST_COUNTERS

DAY = dt.date(2024, 6, 3)
T0 = 1_717_340_400_000  # 2024-06-03 00:00 JST: flow times within the day folder's window
EXPORTERS_YAML = """\
- {name: bras-tokyo-1, address: 192.0.2.1, observation_domain_id: 1, service: pppoe,
   default_sampling_interval: null}
- {name: mobile-gw-1, address: 192.0.2.9, observation_domain_id: 3, service: mobile,
   default_sampling_interval: 1024}
"""


def flows_of(starts: list[int], version: int, octets: list[int]) -> dict[str, np.ndarray]:
    n = len(starts)
    z64, z32 = np.zeros(n, np.uint64), np.zeros(n, np.uint32)
    return {
        "flow_start_ms": np.array(starts, np.int64),
        "flow_end_ms": np.array(starts, np.int64) + 10,
        "ip_version": np.full(n, version, np.uint8),
        "src_v4": z32 + 0x64400001,
        "dst_v4": z32 + 0x08080808,
        "src_v6_hi": z64 + 0x20010DB800000000,
        "src_v6_lo": z64 + 1,
        "dst_v6_hi": z64 + 0x2606470000000000,
        "dst_v6_lo": z64 + 2,
        "src_port": np.full(n, 40000, np.uint16),
        "dst_port": np.full(n, 443, np.uint16),
        "protocol": np.full(n, 6, np.uint8),
        "flow_direction": np.ones(n, np.uint8),
        "octets": np.array(octets, np.uint64),
        "packets": np.ones(n, np.uint64),
    }


def make_raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "exporters.yaml").write_text(EXPORTERS_YAML)
    folder = raw / "ipfix" / "bras-tokyo-1" / DAY.isoformat()
    kw = dict(observation_domain_id=1, sampling_interval=4096, export_time_s=1_717_340_400)
    # 0100 is written first in name order but holds later flows: output must be sorted
    write_ipfix_file(  # sequence continues 0000: 3 flow records + 1 sampling options record
        folder / "0100.ipfix",
        flows_of([T0 + 3_000, T0 + 1_000], 6, [30, 10]),
        sequence_start=4,
        **kw,
    )
    write_ipfix_file(
        folder / "0000.ipfix", flows_of([T0 + 2_000, T0 + 500, T0 + 2_000], 4, [20, 5, 21]), **kw
    )
    (folder / "0200.ipfix").write_bytes(b"\x00\x09garbage-not-ipfix")  # 1 quarantined piece
    return raw


def test_load_exporters(tmp_path):
    raw = make_raw(tmp_path)
    exporters = load_exporters(raw)
    assert [e["name"] for e in exporters] == ["bras-tokyo-1", "mobile-gw-1"]
    assert exporters[1]["default_sampling_interval"] == 1024


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "- {name: r1, service: cable}",
            "exporters.0.service: 'cable' is not one of 'pppoe', 'ipoe' or 'mobile'",
        ),
        (
            "- {name: r1, service: pppoe}\n- {name: r1, service: ipoe}",
            "exporters.1.name: 'r1' appears twice",
        ),
        ("- {name: ../x, service: pppoe}", "exporters.0.name: '../x' does not match"),
        (
            "- {name: r1, service: pppoe, default_sampling_interval: 0}",
            "exporters.0.default_sampling_interval: Input should be greater than or equal to 1",
        ),
        (
            "- {name: r1, service: pppoe, default_sampling_interval: 2.5}",
            "exporters.0.default_sampling_interval: Input should be a valid integer (got 2.5)",
        ),
        ("- {service: pppoe}", "exporters.0.name: missing"),
        ("- {name: r1, servce: pppoe}", "exporters.0.servce: unknown key (allowed: name, service"),
        (
            "exporters:\n- {name: r1, service: pppoe}\nsources:\n- {format: sflow, path: x}",
            "sources.0.format: 'sflow' is not one of 'ipfix', 'pcap'",
        ),
        ("[unclosed", "line 1, column 10: not valid YAML"),
    ],
)
def test_load_exporters_rejects_bad_registry_naming_the_file(tmp_path, body, message):
    (tmp_path / "exporters.yaml").write_text(body)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        load_exporters(tmp_path)
    assert str(tmp_path / "exporters.yaml") in str(err.value)


def test_normalise_exporter_day_writes_sorted_partition_report_and_quarantine(tmp_path):
    raw, wh = make_raw(tmp_path), tmp_path / "warehouse"
    exporter = load_exporters(raw)[0]
    report = normalise_exporter_day(raw, wh, exporter, DAY)
    assert report["formats"] == {"ipfix": 3}
    assert {
        k: v
        for k, v in report.items()
        if k in ("files", "messages", "quarantine_by_reason", "sampling_intervals", "sequence_gaps")
        or k in ("records_in", "records_decoded", "records_quarantined")
        or k in TRUST_COUNTERS
    } == {
        "files": 3,
        "messages": 4,
        "records_in": 6,
        "records_decoded": 5,
        "records_quarantined": 1,
        "quarantine_by_reason": {"unknown version": 1},
        "sampling_intervals": {"4096": 5},
        "sequence_gaps": 0,
        **dict.fromkeys(TRUST_COUNTERS, 0),  # issue 8's counters: none here
    }
    part = wh / "flows" / "date=2024-06-03" / "exporter=bras-tokyo-1" / "flows.parquet"
    table = pq.read_table(part)
    assert table.column_names[:3] == ["exporter", "observation_domain_id", "flow_start_ms"]
    # row order (pipeline/ingest/flow_store.py): IP version first, then time, then the rest
    starts = [T0 + t for t in (500, 2_000, 2_000, 1_000, 3_000)]
    assert table.column("flow_start_ms").to_pylist() == starts
    assert table.column("octets").to_pylist() == [5, 20, 21, 10, 30]
    assert table.column("ip_version").to_pylist() == [4, 4, 4, 6, 6]
    assert set(table.column("exporter").to_pylist()) == {"bras-tokyo-1"}
    assert str(table.schema.field("src_v4").type) == "uint32"
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "ZSTD"
    saved = json.loads(
        (wh / "ingest_report" / "date=2024-06-03" / "exporter=bras-tokyo-1.json").read_text()
    )
    assert saved == report
    q = pq.read_table(
        wh / "quarantine" / "date=2024-06-03" / "exporter=bras-tokyo-1" / "quarantine.parquet"
    )
    assert q.column_names == [
        "source_file", "offset", "length", "reason", "payload", "observation_domain_id",
        "template_id",
    ]  # fmt: skip
    assert q.to_pylist() == [
        {
            "source_file": "ipfix/bras-tokyo-1/2024-06-03/0200.ipfix",
            "offset": 0,
            "length": 19,
            "reason": "unknown version",
            "payload": b"\x00\x09garbage-not-ipfix",
            "observation_domain_id": None,  # no message header to read it from
            "template_id": None,
        }
    ]
    # deterministic: a second run gives the same bytes
    first = part.read_bytes()
    normalise_exporter_day(raw, wh, exporter, DAY)
    assert part.read_bytes() == first


def test_exporter_without_files_gets_empty_partition_and_zero_report(tmp_path):
    raw, wh = make_raw(tmp_path), tmp_path / "warehouse"
    report = normalise_exporter_day(raw, wh, load_exporters(raw)[1], DAY)
    assert (
        report["files"] == 0 and report["records_in"] == 0 and report["quarantine_by_reason"] == {}
    )
    table = pq.read_table(
        wh / "flows" / "date=2024-06-03" / "exporter=mobile-gw-1" / "flows.parquet"
    )
    assert table.num_rows == 0 and "sampling_interval" in table.column_names
    assert len(table.schema) == 18


def test_icmp_type_and_code_in_the_port_field_become_port_0(tmp_path):
    """Cisco-style exporters put ICMP type * 256 + code in the destination port: ports of ICMP and
    ICMPv6 flows are 0 after normalising, TCP ports untouched."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "exporters.yaml").write_text(EXPORTERS_YAML)
    flows = flows_of([T0 + 1_000, T0 + 2_000, T0 + 3_000], 4, [84, 84, 1500])
    flows["protocol"] = np.array([1, 58, 6], np.uint8)
    flows["dst_port"] = np.array([2048, 32768, 443], np.uint16)  # echo request, v6 echo, https
    folder = raw / "ipfix" / "bras-tokyo-1" / DAY.isoformat()
    write_ipfix_file(
        folder / "0000.ipfix", flows, observation_domain_id=1, sampling_interval=4096,
        export_time_s=1_717_340_400,
    )  # fmt: skip
    normalise_exporter_day(raw, tmp_path / "wh", load_exporters(raw)[0], DAY)
    part = tmp_path / "wh" / "flows" / "date=2024-06-03" / "exporter=bras-tokyo-1"
    table = pq.read_table(part / "flows.parquet")
    assert table.select(["protocol", "src_port", "dst_port"]).to_pylist() == [
        {"protocol": 1, "src_port": 0, "dst_port": 0},
        {"protocol": 6, "src_port": 40000, "dst_port": 443},  # rows in protocol order
        {"protocol": 58, "src_port": 0, "dst_port": 0},
    ]
