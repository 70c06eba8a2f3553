"""The simulator's injected exporter faults (restart, data before templates, stray datagram): the
decoder recovers every flow of the faulty hour and sets aside only the stray datagram."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.simulate import world
from pipeline.simulate.flow_files import write_hour
from pipeline.wire.ipfix.decoder import FlowDecoder
from pipeline.wire.pcap.reader import read_export_datagrams
from tests.support.fuzz_corpus import sample_flows

EXPORTER = world.Exporter("bras02", "192.0.2.2", 102, "pppoe", 8192)
WEEK_START_MS = 1_717_340_400_000
HOUR_END_MS = WEEK_START_MS + 62 * 3_600_000
COMPARED = ["flow_start_ms", "src_v4", "src_v6_lo", "dst_port", "octets", "packets"]


def decode(flow_format: str, tmp_path, faulty: bool):
    flows = sample_flows(
        600, seed=5, ipv6_share=0.3, start_ms=(HOUR_END_MS - 3_600_000, HOUR_END_MS - 60_000)
    )
    flows["flow_end_ms"] = np.minimum(flows["flow_end_ms"], HOUR_END_MS - 1)
    raw = tmp_path / ("faulty" if faulty else "clean")
    files, _ = write_hour(
        flow_format, flows, EXPORTER, "2024-06-05", 13, HOUR_END_MS, WEEK_START_MS,
        100_000, raw, faulty,
    )  # fmt: skip
    (rel,) = files
    decoder = FlowDecoder(EXPORTER.name)
    if flow_format == "ipfix":
        return decoder.decode((raw / rel).read_bytes(), rel)
    grams = read_export_datagrams(raw / rel)
    return decoder.decode_datagrams(
        grams.payload, grams.starts, grams.lengths, grams.file_offsets, rel
    )


def rows(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table.column(c).to_pylist() for c in COMPARED), strict=True))


@pytest.mark.parametrize(
    ("flow_format", "stray_reason"),
    [("ipfix", "unknown version"), ("netflow-v9-pcap", "v5 count does not match length")],
)
def test_faulty_hour_decodes_every_flow(tmp_path, flow_format, stray_reason):
    clean = decode(flow_format, tmp_path, faulty=False)
    faulty = decode(flow_format, tmp_path, faulty=True)
    assert clean.stats.records_decoded == 600 and clean.quarantine == []
    assert rows(faulty.flows) == rows(clean.flows)  # restart and early data: nothing lost
    assert set(faulty.flows.column("sampling_interval").to_pylist()) == {8192}
    assert faulty.stats.quarantine_by_reason == {stray_reason: 1}  # the stray datagram alone
    (stream,) = faulty.stats.sequence
    assert (stream["restarts"], stream["missing"]) == (1, 0)
