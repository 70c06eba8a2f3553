"""Real exporter, two collectors: softflowd's NetFlow v9 / IPFIX export of a real capture, received
by Debian's nfcapd and by our live Collector, must give the same totals in nfdump and in our decode.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from pipeline.collect.collector import Collector
from pipeline.wire.ipfix.decoder import IpfixDecoder
from pipeline.wire.pcap.reader import read_export_datagrams
from tests.support.shared import require_shared

TOOLS = {name: shutil.which(name) for name in ("softflowd", "nfcapd", "nfdump")}
pytestmark = [
    pytest.mark.skipif(
        None in TOOLS.values(),
        reason="needs softflowd and nfcapd/nfdump (Debian packages softflowd, nfdump): missing "
        + ", ".join(name for name, path in TOOLS.items() if path is None),
    ),
    pytest.mark.slow,  # starts softflowd, nfcapd and our collector
]
CAPTURE = "packet-captures/tcpreplay-test.pcap"
KEYS = {
    "protocol": ["protocol"],
    "dst_port": ["protocol", "dst_port"],
    "src_port": ["protocol", "src_port"],
}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _softflowd(capture: Path, port: int, version: str) -> None:
    """Export the capture once (-d: foreground; softflowd expires all flows at pcap EOF)."""
    subprocess.run(
        [TOOLS["softflowd"], "-r", str(capture), "-n", f"127.0.0.1:{port}", "-v", version, "-d"],
        capture_output=True,
        timeout=30,
        check=True,
    )


def _collect_both(tmp_path: Path, capture: Path, version: str) -> tuple[Path, Path]:
    """(nfcapd file, our collector's pcap) of the same softflowd export sent to each."""
    nf_port, nf_dir = _free_udp_port(), tmp_path / "nfcapd"
    nf_dir.mkdir()
    nfcapd = subprocess.Popen(
        [TOOLS["nfcapd"], "-w", str(nf_dir), "-p", str(nf_port), "-b", "127.0.0.1", "-t", "3600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    collector = Collector([("127.0.0.1", 0)], tmp_path / "collector", rotate_seconds=3600)
    thread = threading.Thread(target=collector.serve_forever, args=(0.05,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not list(nf_dir.glob("nfcapd.current.*")):
            assert time.monotonic() < deadline, "nfcapd did not start"
            time.sleep(0.05)
        _softflowd(capture, nf_port, version)
        _softflowd(capture, collector.bound_ports[0], version)
        time.sleep(0.5)  # both collectors drain their sockets
    finally:
        collector.stop()
        thread.join(10)
        nfcapd.send_signal(signal.SIGINT)
        nfcapd.wait(10)
    (nf_file,) = [p for p in nf_dir.glob("nfcapd.*") if "current" not in p.name]
    (our_file,) = collector.files_written
    return nf_file, our_file


def _nfdump_flows(path: Path) -> pl.DataFrame:
    out = subprocess.run(
        [TOOLS["nfdump"], "-r", str(path), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    rows = [
        {
            "protocol": r["proto"],
            "src_port": r.get("src_port", 0),
            # nfdump shows ICMP type/code in place of the destination port, as type*256+code
            "dst_port": r.get("dst_port", r.get("icmp_type", 0) * 256 + r.get("icmp_code", 0)),
            "octets": r["in_bytes"],
            "packets": r["in_packets"],
        }
        for r in json.loads(out or "[]")
    ]
    return pl.DataFrame(rows, schema={k: pl.Int64 for k in rows[0]})


def _our_flows(path: Path) -> tuple[pl.DataFrame, object]:
    grams = read_export_datagrams(path)
    assert not grams.problems and set(grams.src_address.tolist()) == {"127.0.0.1"}
    # softflowd samples nothing and announces no sampling rate: the exporter's configured
    # default (1) is what the pipeline would apply, so the test passes it explicitly.
    decoder = IpfixDecoder("softflowd", default_sampling_interval=1)
    result = decoder.decode_datagrams(
        grams.payload, grams.starts, grams.lengths, grams.file_offsets, str(path)
    )
    flows = pl.from_arrow(result.flows).select(
        pl.col(["protocol", "src_port", "dst_port", "octets", "packets"]).cast(pl.Int64)
    )
    return flows, result


def _totals(flows: pl.DataFrame, keys: list[str]) -> list[tuple]:
    # ICMP has no ports (ARCHITECTURE §3.1: 0). nfdump shows type*256+code as the destination
    # port, our IPFIX/v9 decoder leaves it 0 (softflowd sends ICMP in a template with
    # icmpTypeCode (32; 139 for IPv6), no port fields), the nfcapd reader keeps nfdump's: use 0.
    icmp = pl.col("protocol").is_in([1, 58])
    flows = flows.with_columns(
        pl.when(icmp).then(0).otherwise(pl.col("dst_port")).alias("dst_port")
    )
    return (
        flows.group_by(keys)
        .agg(pl.col("octets").sum(), pl.col("packets").sum(), pl.len().alias("flows"))
        .sort(keys)
        .rows()
    )


@pytest.mark.parametrize("version", ["9", "10"])
def test_softflowd_totals_equal_nfdump(tmp_path, version):
    capture = require_shared() / CAPTURE
    nf_file, our_file = _collect_both(tmp_path, capture, version)
    theirs = _nfdump_flows(nf_file)
    ours, result = _our_flows(our_file)

    stats = result.stats
    assert stats.records_in == stats.records_decoded + stats.records_quarantined
    assert stats.quarantine_by_reason == {}
    assert stats.records_by_version == {int(version): 45}
    assert stats.sampling_intervals == {1: 45}
    assert len(theirs) == len(ours) == 45
    # octets and packets per protocol as softflowd's own summary prints them; flow counts nfdump's
    assert _totals(theirs, ["protocol"]) == [
        (1, 1564, 18, 5),
        (2, 138, 3, 1),
        (6, 59706, 116, 14),
        (17, 2152, 28, 24),
        (88, 60, 1, 1),
    ]
    for name, keys in KEYS.items():
        assert _totals(ours, keys) == _totals(theirs, keys), name
