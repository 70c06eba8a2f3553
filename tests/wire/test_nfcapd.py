"""nfcapd reader and writer against Debian's nfdump 1.7.1 (the reference) and hand-checked data."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.wire.ipfix.writer import encode_ipfix_stream
from pipeline.wire.nfcapd import format as F
from pipeline.wire.nfcapd.block_records import record_chain
from pipeline.wire.nfcapd.reader import decode_nfcapd, read_nfcapd
from pipeline.wire.nfcapd.writer import NfcapdExporterInput, encode_nfcapd, write_nfcapd
from tests.support.shared import require_shared

SHARED_FILE = "nfcapd/softflowd-ipfix-tcpreplay-test.nfcapd"
NFDUMP = shutil.which("nfdump")
NFCAPD = shutil.which("nfcapd")
SOFTFLOWD = shutil.which("softflowd")
needs_nfdump = pytest.mark.skipif(
    NFDUMP is None, reason="nfdump (Debian package nfdump) not installed"
)
needs_collector = pytest.mark.skipif(
    NFCAPD is None or NFDUMP is None, reason="nfcapd/nfdump (Debian package nfdump) not installed"
)
PROTO_NAMES = {"TCP": 6, "UDP": 17, "ICMP": 1, "EIGRP": 88, "ICMP6": 58, "IGMP": 2, "GRE": 47}
UTC_ENV = {**os.environ, "TZ": "UTC"}


# ------------------------------------------------------------------------------ helpers
def _addr(v4, hi, lo) -> str:
    if v4 is not None:
        return str(ipaddress.IPv4Address(v4))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def _our_rows(path: Path) -> list[tuple]:
    """(first ms, last ms, src, dst, sp, dp, proto, packets, bytes, dir, router) of every flow."""
    rows = []
    for part in read_nfcapd(path):
        for r in part.result.flows.to_pylist():
            rows.append(
                (
                    r["flow_start_ms"],
                    r["flow_end_ms"],
                    _addr(r["src_v4"], r["src_v6_hi"], r["src_v6_lo"]),
                    _addr(r["dst_v4"], r["dst_v6_hi"], r["dst_v6_lo"]),
                    r["src_port"],
                    r["dst_port"],
                    r["protocol"],
                    r["packets"],
                    r["octets"],
                    r["flow_direction"],
                    part.exporter_address,
                )
            )
    return sorted(rows)


def _iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _nfdump_rows(path: Path) -> list[tuple]:
    """The same tuple from `nfdump -r FILE -o json` (times in ms; TZ=UTC)."""
    out = subprocess.run(
        [NFDUMP, "-r", str(path), "-o", "json"], capture_output=True, text=True, env=UTC_ENV
    ).stdout
    rows = []
    for r in json.loads(out or "[]"):
        rows.append(
            (
                _iso_ms(r["first"]),
                _iso_ms(r["last"]),
                r.get("src4_addr", r.get("src6_addr")),
                r.get("dst4_addr", r.get("dst6_addr")),
                0 if r["proto"] in (1, 58) else r.get("src_port", 0),
                0 if r["proto"] in (1, 58) else r.get("dst_port", 0),  # ICMP: no ports
                r["proto"],
                r["in_packets"],
                r["in_bytes"],
                r["direction"],
                r.get("ip4_router", r.get("ip6_router")),
            )
        )
    return sorted(rows)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _collect(tmp_path: Path, send, *args: str) -> Path:
    """Run nfcapd on a free loopback port, call send(port), stop it with SIGINT; the file."""
    port = _free_udp_port()
    out = tmp_path / f"nfcapd-{port}"
    out.mkdir()
    proc = subprocess.Popen(
        [NFCAPD, "-w", str(out), "-p", str(port), "-b", "127.0.0.1", "-t", "3600", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not list(out.glob("nfcapd.current.*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        send(port)
        time.sleep(0.4)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    files = sorted(p for p in out.glob("nfcapd.*") if "current" not in p.name)
    assert len(files) == 1, files
    return files[0]


def _send_messages(stream: bytes):
    def send(port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            off = 0
            while off + 4 <= len(stream):
                n = struct.unpack_from(">H", stream, off + 2)[0]
                s.sendto(stream[off : off + n], ("127.0.0.1", port))
                off += n
                time.sleep(0.0005)

    return send


def _flows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    version = np.where(rng.random(n) < 0.7, 4, 6).astype(np.uint8)
    start = 1_717_200_000_000 + rng.integers(0, 3_600_000, n)
    return {
        "flow_start_ms": start.astype(np.int64),
        "flow_end_ms": (start + rng.integers(0, 120_000, n)).astype(np.int64),
        "ip_version": version,
        "src_v4": rng.integers(1, 2**32, n, dtype=np.uint64).astype(np.uint32),
        "dst_v4": rng.integers(1, 2**32, n, dtype=np.uint64).astype(np.uint32),
        "src_v6_hi": rng.integers(1, 2**63, n, dtype=np.uint64) * np.uint64(2),
        "src_v6_lo": rng.integers(1, 2**63, n, dtype=np.uint64),
        "dst_v6_hi": rng.integers(1, 2**63, n, dtype=np.uint64),
        "dst_v6_lo": rng.integers(1, 2**63, n, dtype=np.uint64) * np.uint64(2),
        "src_port": rng.integers(1, 65536, n).astype(np.uint16),
        "dst_port": rng.integers(1, 65536, n).astype(np.uint16),
        "protocol": rng.choice(np.array([6, 17, 47], np.uint8), n),
        "flow_direction": rng.integers(0, 2, n).astype(np.uint8),
        "octets": rng.integers(40, 2**40, n, dtype=np.uint64),
        "packets": rng.integers(1, 2**30, n, dtype=np.uint64),
    }


def _input_rows(exporters: list[NfcapdExporterInput]) -> list[tuple]:
    rows = []
    for e in exporters:
        c = e.flows
        for i in range(len(c["flow_start_ms"])):
            v4 = c["ip_version"][i] == 4
            rows.append(
                (
                    int(c["flow_start_ms"][i]),
                    int(c["flow_end_ms"][i]),
                    _addr(
                        int(c["src_v4"][i]) if v4 else None,
                        int(c["src_v6_hi"][i]),
                        int(c["src_v6_lo"][i]),
                    ),
                    _addr(
                        int(c["dst_v4"][i]) if v4 else None,
                        int(c["dst_v6_hi"][i]),
                        int(c["dst_v6_lo"][i]),
                    ),
                    int(c["src_port"][i]),
                    int(c["dst_port"][i]),
                    int(c["protocol"][i]),
                    int(c["packets"][i]),
                    int(c["octets"][i]),
                    int(c["flow_direction"][i]),
                    e.address,
                )
            )
    return sorted(rows)


def _check_accounting(parts) -> None:
    for p in parts:
        s = p.result.stats
        assert s.records_in == s.records_decoded + s.records_quarantined
        assert s.records_decoded == p.result.flows.num_rows
        assert s.records_quarantined == sum(q.records for q in p.result.quarantine)


# ------------------------------------------------------------------------------ record chain
def test_record_chain_follows_sizes_and_stops_at_garbage():
    recs = [(7, 8), (11, 12), (11, 16), (9, 8)]
    block = b"".join(struct.pack("<HH", t, s) + b"\x05" * (s - 4) for t, s in recs)
    offsets, stop = record_chain(np.frombuffer(block, np.uint8))
    assert offsets.tolist() == [0, 8, 20, 36] and stop == 44
    broken = block[:20] + struct.pack("<HH", 0, 0) + block[24:]  # third record zeroed
    offsets, stop = record_chain(np.frombuffer(broken, np.uint8))
    assert offsets.tolist() == [0, 8] and stop == 20


# ------------------------------------------------------------------------------ real file
def test_shared_file_matches_its_nfdump_csv():
    path = require_shared() / SHARED_FILE
    parts = read_nfcapd(path)
    assert [(p.exporter_address, p.observation_domain_id, p.export_version) for p in parts] == [
        ("127.0.0.1", 0, 10)
    ]
    flows = parts[0].result.flows
    assert flows.num_rows == 45  # nfdump summary: 45 flows, 63620 bytes, 166 packets
    assert sum(flows.column("octets").to_pylist()) == 63620
    assert sum(flows.column("packets").to_pylist()) == 166
    assert set(flows.column("sampling_interval").to_pylist()) == {0}  # no sampler announced
    first = flows.slice(0, 1).to_pylist()[0]  # `nfdump -o raw`: record 1
    assert (first["flow_start_ms"], first["flow_end_ms"]) == (1798163622324, 1798163622282)
    assert (first["src_v4"], first["dst_v4"]) == (0x4A7D1311, 0xAC100B0C)  # 74.125.19.17 → ..
    assert (first["src_port"], first["dst_port"], first["protocol"]) == (443, 64565, 6)
    assert (first["packets"], first["octets"], first["flow_direction"]) == (4, 220, 0)

    with open(path.with_suffix(".nfdump.csv"), newline="") as fh:
        lines = list(csv.reader(fh))
    header, body = lines[0], lines[1 : lines.index(["Summary"])]
    expected = []
    for row in body:
        r = dict(zip(header, row, strict=False))
        td = float(r["td"])
        expected.append(
            (r["ts"], r["te"], None if td > 1e9 else round(td * 1000), r["sa"], r["da"],
             *((0, 0) if r["pr"] in ("ICMP", "ICMP6") else (int(r["sp"]), int(r["dp"]))),
             PROTO_NAMES[r["pr"]], int(r["ipkt"]), int(r["ibyt"]),
             int(r["dir"]), r["ra"])
        )  # fmt: skip

    def sec(ms: int) -> str:
        return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")

    ours = []
    for r in _our_rows(path):
        td = r[1] - r[0]
        ours.append((sec(r[0]), sec(r[1]), None if td < 0 else td, *r[2:]))
    assert sorted(ours, key=str) == sorted(expected, key=str)


# ------------------------------------------------------------------------------ writer
def test_writer_is_deterministic_and_round_trips():
    exporters = [
        NfcapdExporterInput("192.0.2.1", 101, 8192, _flows(500, 1)),
        NfcapdExporterInput("2001:db8::11", 201, 0, _flows(40, 2)),
    ]
    a, n = encode_nfcapd(exporters, created_ms=1_717_300_000_000)
    b, _ = encode_nfcapd(exporters, created_ms=1_717_300_000_000)
    assert a == b and n == 540
    assert struct.unpack_from("<HH", a) == (F.MAGIC, F.LAYOUT_VERSION_2)
    parts = decode_nfcapd(a, "mem")
    got = {(p.exporter_address, p.observation_domain_id): p.result for p in parts}
    assert set(got) == {("192.0.2.1", 101), ("2001:db8::11", 201)}
    assert got[("192.0.2.1", 101)].stats.sampling_intervals == {8192: 500}
    assert got[("2001:db8::11", 201)].stats.sampling_intervals == {0: 40}
    _check_accounting(parts)


def test_icmp_ports_read_as_zero():
    flows = _flows(4, 5)
    flows["protocol"][:] = [1, 58, 6, 17]  # ICMP echo, ICMPv6 echo (128 * 256), TCP, UDP
    flows["src_port"][:] = [0, 0, 443, 53]
    flows["dst_port"][:] = [2048, 32768, 50000, 40000]
    buf, _ = encode_nfcapd([NfcapdExporterInput("192.0.2.1", 1, 0, flows)], created_ms=0)
    (part,) = decode_nfcapd(buf, "mem")
    got = sorted(
        zip(
            *(
                part.result.flows.column(c).to_pylist()
                for c in ("protocol", "src_port", "dst_port")
            ),
            strict=True,
        )
    )
    assert got == [(1, 0, 0), (6, 443, 50000), (17, 53, 40000), (58, 0, 0)]


@needs_nfdump
def test_written_file_reads_identically_in_nfdump(tmp_path):
    exporters = [
        NfcapdExporterInput("192.0.2.1", 101, 8192, _flows(3000, 3)),
        NfcapdExporterInput("2001:db8::11", 201, 0, _flows(200, 4)),
    ]
    path = tmp_path / "written.nfcapd"
    assert write_nfcapd(path, exporters, created_ms=1_717_300_000_000) == 3200
    expected = _input_rows(exporters)
    assert _nfdump_rows(path) == expected
    assert _our_rows(path) == expected
    listing = subprocess.run([NFDUMP, "-E", str(path)], capture_output=True, text=True).stdout
    assert "packet interval: 1, packet space: 8191" in listing
    assert "ID: 101" in listing and "2001:db8::11" in listing


# ------------------------------------------------------------------------------ nfcapd + exporters
@needs_collector
@pytest.mark.skipif(SOFTFLOWD is None, reason="softflowd (Debian package softflowd) not installed")
@pytest.mark.parametrize("version", ["9", "10"])
def test_softflowd_export_matches_nfdump(tmp_path, version):
    pcap = require_shared() / "packet-captures/tcpreplay-test.pcap"

    def send(port: int) -> None:
        subprocess.run(
            [SOFTFLOWD, "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", version, "-d"],
            capture_output=True,
            timeout=20,
        )

    path = _collect(tmp_path, send)
    expected = _nfdump_rows(path)
    assert len(expected) == 45
    assert any(":" in r[2] for r in expected)  # the capture holds IPv6 flows
    assert _our_rows(path) == expected
    parts = read_nfcapd(path)
    assert [p.export_version for p in parts] == [int(version)]
    _check_accounting(parts)


@needs_collector
@pytest.mark.parametrize(("args", "interval"), [((), 8192), (("-s", "100"), 100)])
def test_nfcapd_sampling_is_recovered(tmp_path, args, interval):
    """nfcapd keeps announced-sampler counters raw, but multiplies them under `-s N`."""
    flows = _flows(300, 5)
    stream, _ = encode_ipfix_stream(
        flows, observation_domain_id=101, sampling_interval=8192, export_time_s=1_717_200_000
    )
    path = _collect(tmp_path, _send_messages(stream), *args)
    parts = read_nfcapd(path)
    assert [(p.exporter_address, p.observation_domain_id) for p in parts] == [("127.0.0.1", 101)]
    result = parts[0].result
    assert result.stats.sampling_intervals == {interval: 300}
    assert sorted(result.flows.column("octets").to_pylist()) == sorted(flows["octets"].tolist())
    nfdump_bytes = sorted(r[8] for r in _nfdump_rows(path))
    scale = interval if args else 1
    assert nfdump_bytes == sorted((flows["octets"] * np.uint64(scale)).tolist())


# ------------------------------------------------------------------------------ compression
@needs_nfdump
@pytest.mark.parametrize(("flag", "name"), [("-y", "LZ4"), ("-j", "BZ2"), ("-z", "LZO")])
def test_compressed_files(tmp_path, flag, name):
    plain = tmp_path / "plain.nfcapd"
    write_nfcapd(plain, [NfcapdExporterInput("192.0.2.7", 7, 1024, _flows(2000, 6))])
    packed = tmp_path / f"packed{flag}.nfcapd"
    subprocess.run(
        [NFDUMP, "-r", str(plain), flag, "-w", str(packed)], check=True, capture_output=True
    )
    assert packed.read_bytes()[16] == {"LZO": 1, "BZ2": 2, "LZ4": 3}[name]
    parts = read_nfcapd(packed)
    _check_accounting(parts)
    if name == "LZO":
        (orphan,) = parts
        assert orphan.exporter_address == ""
        assert orphan.result.stats.quarantine_by_reason == {"unsupported compression (LZO)": 2002}
        assert orphan.result.quarantine[0].offset == F.FILE_HEADER.size
    else:
        assert _our_rows(packed) == _our_rows(plain)
        assert parts[0].result.stats.sampling_intervals == {1024: 2000}


def test_zstd_block_is_read(tmp_path):
    import pyarrow as pa

    data, _ = encode_nfcapd([NfcapdExporterInput("192.0.2.7", 7, 4, _flows(100, 7))], created_ms=0)
    fields = list(F.FILE_HEADER.unpack_from(data))
    fields[4], fields[8] = 4, 0  # ZSTD, no appendix (its offset would move)
    out, pos = [], F.FILE_HEADER.size
    for _ in range(fields[10]):
        nrec, size, btype, flags = F.BLOCK_HEADER.unpack_from(data, pos)
        z = pa.compress(data[pos + 12 : pos + 12 + size], codec="zstd", asbytes=True)
        out.append(F.BLOCK_HEADER.pack(nrec, len(z), btype, flags) + z)
        pos += 12 + size
    out.insert(0, F.FILE_HEADER.pack(*fields))
    parts = decode_nfcapd(b"".join(out), "zstd")
    assert parts[0].result.flows.equals(decode_nfcapd(data, "plain")[0].result.flows)


# ------------------------------------------------------------------------------ hostile input
def _small_file() -> bytes:
    return encode_nfcapd([NfcapdExporterInput("192.0.2.9", 9, 16, _flows(50, 8))], created_ms=0)[0]


def test_truncated_and_corrupted_files_are_counted():
    data = _small_file()
    for cut in (0, 10, 40, 60, 500, len(data) - 200):
        parts = decode_nfcapd(data[:cut], "cut")
        _check_accounting(parts)
        assert any(p.result.stats.records_quarantined for p in parts) or cut >= 500
    parts = decode_nfcapd(data[:500], "cut")  # inside the flow block: whole block set aside
    assert {q.reason for p in parts for q in p.result.quarantine} == {"truncated block"}
    assert parts[-1].result.stats.records_decoded == 0
    bad = bytearray(data)
    first_flow = bad.index(struct.pack("<HH", F.TYPE_V3_FLOW, 104))
    bad[first_flow + 12 + 2 : first_flow + 12 + 4] = struct.pack("<H", 200)  # element overruns
    parts = decode_nfcapd(bytes(bad), "bad")
    _check_accounting(parts)
    assert parts[0].result.stats.quarantine_by_reason == {"bad V3 elements": 1}
    assert parts[0].result.stats.records_decoded == 49
    assert decode_nfcapd(encode_nfcapd([], created_ms=0)[0], "empty") == []  # appendix only
    (v1,) = decode_nfcapd(b"\x0c\xa5\x01\x00" + bytes(60), "v1")
    assert v1.result.stats.quarantine_by_reason == {
        "nfdump 1.6 file layout (convert: nfdump -r OLD -w NEW)": 1
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
def test_random_corruption_never_raises(flips):
    data = bytearray(_small_file())
    for pos, value in flips:
        data[pos % len(data)] = value
    parts = decode_nfcapd(bytes(data), "fuzz")
    _check_accounting(parts)


def test_legacy_flow_records_are_set_aside_per_run():
    """Records of nfdump's pre-1.7 type (10) among V3 records: each run of adjacent ones is one
    quarantine entry holding their bytes and count; the V3 records around them decode."""
    flows = _flows(6, 5)
    flows["ip_version"][:] = 4  # every record is 104 bytes
    data = bytearray(
        encode_nfcapd([NfcapdExporterInput("192.0.2.9", 9, 16, flows)], created_ms=0)[0]
    )
    v3 = struct.pack("<HH", F.TYPE_V3_FLOW, 104)
    starts = [i for i in range(len(data) - 3) if data[i : i + 4] == v3]
    assert len(starts) == 6 and np.all(np.diff(starts) == 104)
    for k in (1, 2, 4):
        data[starts[k] : starts[k] + 2] = struct.pack("<H", F.TYPE_COMMON_V2)
    parts = decode_nfcapd(bytes(data), "legacy")
    _check_accounting(parts)
    entries = [
        (q.offset, q.length, q.records, q.reason) for p in parts for q in p.result.quarantine
    ]
    assert entries == [
        (starts[1], 208, 2, "unsupported record type"),
        (starts[4], 104, 1, "unsupported record type"),
    ]
    assert sum(p.result.stats.records_decoded for p in parts) == 3
