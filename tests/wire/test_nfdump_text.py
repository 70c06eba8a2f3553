"""nfdump `-o csv` / `-o json` readers against Debian's nfdump 1.7.1 output and hand-made text."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.wire.nfcapd.reader import read_nfcapd
from pipeline.wire.nfcapd.writer import NfcapdExporterInput, write_nfcapd
from pipeline.wire.nfdump_text import (
    decode_nfdump_csv,
    decode_nfdump_json,
    read_nfdump_csv,
    read_nfdump_json,
)
from pipeline.wire.nfdump_text.csv_export import csv_fast_columns
from pipeline.wire.nfdump_text.json_export import json_fast_columns
from tests.support.shared import require_shared

SHARED_CSV = "nfcapd/softflowd-ipfix-tcpreplay-test.nfdump.csv"
SHARED_NFCAPD = "nfcapd/softflowd-ipfix-tcpreplay-test.nfcapd"
NFDUMP = shutil.which("nfdump")
needs_nfdump = pytest.mark.skipif(
    NFDUMP is None, reason="nfdump (Debian package nfdump) not installed"
)
UTC_ENV = {**os.environ, "TZ": "UTC"}  # nfdump prints local time; the readers read UTC
COLUMNS = (
    "flow_start_ms flow_end_ms ip_version src_v4 dst_v4 src_v6_hi src_v6_lo dst_v6_hi dst_v6_lo "
    "protocol src_port dst_port flow_direction octets packets"
).split()


def _accounting(parts) -> None:
    for p in parts:
        s = p.result.stats
        assert s.records_in == s.records_decoded + s.records_quarantined
        assert s.records_decoded == p.result.flows.num_rows
        assert s.records_quarantined == sum(q.records for q in p.result.quarantine)


def _rows(parts) -> list[tuple]:
    """(router, columns…) of every flow, sorted."""
    out = []
    for p in parts:
        for r in p.result.flows.to_pylist():
            out.append((p.exporter_address, *(r[c] for c in COLUMNS)))
    return sorted(out, key=repr)


# ------------------------------------------------------------------------------ shared real file
def test_shared_csv_known_values():
    parts = read_nfdump_csv(require_shared() / SHARED_CSV)
    _accounting(parts)
    assert [p.exporter_address for p in parts] == ["127.0.0.1"]
    flows = parts[0].result
    # the file's own Summary block: 45 flows, 63620 bytes, 166 packets (not counted as a flow)
    assert flows.stats.records_in == 45 and flows.stats.records_quarantined == 0
    assert sum(flows.flows.column("octets").to_pylist()) == 63620
    assert sum(flows.flows.column("packets").to_pylist()) == 166
    assert flows.stats.sampling_intervals == {0: 45}
    rows = flows.flows.to_pylist()
    first = rows[0]  # 2026-12-25 01:53:42, td wrapped (last < first): end = te
    assert (first["flow_start_ms"], first["flow_end_ms"]) == (1798163622000, 1798163622000)
    assert (first["src_v4"], first["dst_v4"]) == (0x4A7D1311, 0xAC100B0C)
    assert (first["src_port"], first["dst_port"], first["protocol"]) == (443, 64565, 6)
    assert (first["packets"], first["octets"], first["flow_direction"]) == (4, 220, 0)
    icmp = rows[2]  # 10.31.0.1 → 10.34.0.1 echo request: nfdump's dp 2048 (8 * 256 + 0) → 0
    assert (icmp["protocol"], icmp["src_port"], icmp["dst_port"]) == (1, 0, 0)
    assert [r["protocol"] for r in rows].count(88) >= 1  # "EIGRP"
    v6 = [r for r in rows if r["ip_version"] == 6]
    assert len(v6) == 2
    addr = int(ipaddress.IPv6Address("2001:4958:15a0:24:c1b3:b766:7fff:d0b3"))
    assert (addr >> 64, addr & (2**64 - 1)) in {(r["src_v6_hi"], r["src_v6_lo"]) for r in v6}


def test_shared_csv_agrees_with_nfcapd_reader_to_the_second():
    data = require_shared()
    text = read_nfdump_csv(data / SHARED_CSV)[0].result.flows.to_pylist()
    binary = read_nfcapd(data / SHARED_NFCAPD)[0].result.flows.to_pylist()
    assert len(text) == len(binary) == 45
    for t, b in zip(text, binary, strict=True):  # both in nfcapd's record order
        assert t["flow_start_ms"] == b["flow_start_ms"] // 1000 * 1000
        assert t["flow_end_ms"] // 1000 == b["flow_end_ms"] // 1000
        for c in COLUMNS[2:]:
            assert t[c] == b[c], c


# ------------------------------------------------------------------------------ nfdump round trip
def _flows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    version = np.where(rng.random(n) < 0.6, 4, 6).astype(np.uint8)
    start = 1_717_200_000_000 + rng.integers(0, 3_600_000, n)
    end = start + rng.integers(0, 120_000, n)
    end[:5] = start[:5] - 7  # exporters do send end < start: nfdump prints a wrapped td
    protocols = np.array([x for x in range(256) if x != 38], np.uint8)  # 38 prints as "IDPR"
    proto = rng.choice(protocols, n)
    proto[: n // 5] = rng.choice(np.array([6, 17, 1, 58], np.uint8), n // 5)
    icmp = (proto == 1) | (proto == 58)
    src_v6_hi = rng.integers(1, 2**63, n, dtype=np.uint64)
    src_v6_lo = rng.integers(1, 2**63, n, dtype=np.uint64)
    src_v6_hi[5], src_v6_lo[5] = 0, 0xFFFF_C000_0201  # ::ffff:192.0.2.1 (dotted tail)
    src_v6_hi[6], src_v6_lo[6] = 0x20010DB8_00000000, 1  # 2001:db8::1
    version[5:7] = 6
    return {
        "flow_start_ms": start.astype(np.int64),
        "flow_end_ms": end.astype(np.int64),
        "ip_version": version,
        "src_v4": rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32),
        "dst_v4": rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32),
        "src_v6_hi": src_v6_hi,
        "src_v6_lo": src_v6_lo,
        "dst_v6_hi": rng.integers(1, 2**63, n, dtype=np.uint64) * np.uint64(2),
        "dst_v6_lo": rng.integers(0, 2**16, n, dtype=np.uint64),
        "src_port": np.where(icmp, 0, rng.integers(0, 65536, n)).astype(np.uint16),
        "dst_port": rng.integers(0, 65536, n).astype(np.uint16),
        "protocol": proto,
        "flow_direction": rng.integers(0, 2, n).astype(np.uint8),
        "octets": rng.integers(40, 2**40, n, dtype=np.uint64),
        "packets": rng.integers(1, 2**30, n, dtype=np.uint64),
    }


def _expected(exporters: list[NfcapdExporterInput], csv: bool) -> list[tuple]:
    """Input rows as the readers must return them; csv: times per the module docstring."""
    out = []
    for e in exporters:
        c = {k: v.astype(object) for k, v in e.flows.items()}
        v4 = e.flows["ip_version"] == 4
        for k in ("src_v6_hi", "src_v6_lo", "dst_v6_hi", "dst_v6_lo"):
            c[k][v4] = None
        for k in ("src_v4", "dst_v4"):
            c[k][~v4] = None
        icmp = np.isin(e.flows["protocol"], (1, 58))  # no ports: 0, not nfdump's type*256+code
        c["src_port"][icmp] = 0
        c["dst_port"][icmp] = 0
        if csv:
            start, end = e.flows["flow_start_ms"], e.flows["flow_end_ms"]
            start_s, end_s = start // 1000 * 1000, end // 1000 * 1000
            c["flow_start_ms"] = start_s.astype(object)
            c["flow_end_ms"] = np.where(
                end >= start, np.maximum(end_s, start_s + (end - start)), end_s
            ).astype(object)
        for i in range(len(v4)):
            out.append((e.address, *(None if c[k][i] is None else int(c[k][i]) for k in COLUMNS)))
    return sorted(out, key=repr)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, list[NfcapdExporterInput]]:
    exporters = [
        NfcapdExporterInput("192.0.2.1", 101, 8192, _flows(1500, 1)),
        NfcapdExporterInput("2001:db8::11", 201, 0, _flows(500, 2)),
    ]
    path = tmp_path_factory.mktemp("nfdump_text") / "written.nfcapd"
    write_nfcapd(path, exporters, created_ms=1_717_300_000_000)
    return path, exporters


def _nfdump(path: Path, out: Path, *args: str) -> Path:
    with open(out, "wb") as fh:
        subprocess.run([NFDUMP, "-r", str(path), *args], stdout=fh, env=UTC_ENV, check=True)
    return out


@needs_nfdump
@pytest.mark.parametrize("quiet", [True, False])
def test_nfdump_json_reads_back_exactly(written, tmp_path, quiet):
    path, exporters = written
    out = _nfdump(path, tmp_path / "f.json", "-o", "json", *(["-q"] if quiet else []))
    parts = read_nfdump_json(out, "f.json")
    _accounting(parts)
    assert [p.exporter_address for p in parts] == ["192.0.2.1", "2001:db8::11"]
    assert _rows(parts) == _expected(exporters, csv=False)  # ms-exact
    assert parts[0].result.stats.sampling_intervals == {0: 1500}  # text keeps no sampler


@needs_nfdump
@pytest.mark.parametrize("quiet", [True, False])
def test_nfdump_csv_reads_back_to_the_second(written, tmp_path, quiet):
    path, exporters = written
    out = _nfdump(path, tmp_path / "f.csv", "-o", "csv", *(["-q"] if quiet else []))
    text = out.read_text()
    assert text.startswith("ts,te,td,") != quiet and ("Summary" in text) != quiet
    parts = read_nfdump_csv(out, "f.csv")
    _accounting(parts)
    assert [p.exporter_address for p in parts] == ["192.0.2.1", "2001:db8::11"]
    assert sum(p.result.stats.records_in for p in parts) == 2000  # summary/header not counted
    assert _rows(parts) == _expected(exporters, csv=True)


@needs_nfdump
def test_protocol_38_reads_as_35_in_csv(tmp_path):
    flows = _flows(10, 3)
    flows["protocol"][:] = 38
    path = tmp_path / "p.nfcapd"
    write_nfcapd(path, [NfcapdExporterInput("192.0.2.1", 1, 0, flows)], created_ms=0)
    out = _nfdump(path, tmp_path / "p.csv", "-o", "csv", "-q")
    assert {line.split(",")[7] for line in out.read_text().splitlines()} == {"IDPR"}
    (part,) = read_nfdump_csv(out)
    assert set(part.result.flows.column("protocol").to_pylist()) == {35}


@needs_nfdump
def test_no_matching_flows(tmp_path):
    path = tmp_path / "empty.nfcapd"
    write_nfcapd(path, [], created_ms=0)
    for fmt, reader in (("csv", read_nfdump_csv), ("json", read_nfdump_json)):
        for quiet in ([], ["-q"]):
            out = _nfdump(path, tmp_path / f"e.{fmt}", "-o", fmt, *quiet)
            assert reader(out) == [], (fmt, quiet, out.read_text())


# ------------------------------------------------------------------------------ malformed input
def test_malformed_csv_lines_quarantined_with_offsets():
    lines = require_shared().joinpath(SHARED_CSV).read_bytes().split(b"\n")
    good = lines[1]
    few = b"2026-12-25 01:53:42,1,2,3"
    bad_number = good.replace(b",4,220,", b",4,22x,")
    non_ascii = good.replace(b"127.0.0.1", b"127.0.0.\xff")
    lines[2:2] = [few, bad_number]  # consecutive, different reasons: two entries
    lines[10:10] = [non_ascii]
    data = b"\n".join(lines)
    parts = decode_nfdump_csv(data, "bad.csv")
    _accounting(parts)
    orphan, flows = parts
    assert orphan.exporter_address == "" and flows.exporter_address == "127.0.0.1"
    assert flows.result.stats.records_decoded == 45
    got = [(q.offset, q.reason, q.records, q.payload) for q in orphan.result.quarantine]
    assert got == [
        (data.index(few), "nfdump csv: wrong number of fields", 1, few),
        (data.index(bad_number), "nfdump text: bad field value", 1, bad_number),
        (data.index(non_ascii), "nfdump text: non-ASCII or control bytes", 1, non_ascii),
    ]


def _json_object(**overrides: object) -> str:
    fields = {
        "type": '"FLOW"',
        "sampled": 0,
        "export_sysid": 1,
        "first": '"2024-06-01T00:00:01.250"',
        "last": '"2024-06-01T00:00:02.005"',
        "received": '"2024-06-01T00:01:00.000"',
        "in_packets": 3,
        "in_bytes": 180,
        "proto": 17,
        "src_port": 53,
        "dst_port": 40000,
        "src4_addr": '"192.0.2.10"',
        "dst4_addr": '"198.51.100.7"',
        "direction": 1,
        "ip4_router": '"192.0.2.1"',
        "label": '"<none>"',
    }
    fields.update(overrides)
    body = ",\n".join(f'\t"{k}" : {v}' for k, v in fields.items() if v is not None)
    return "{\n" + body + "\n}"


def test_json_hand_made_values_and_bad_objects():
    objects = [
        _json_object(),
        _json_object(in_bytes='"12x"'),
        _json_object(sampled=1),
        _json_object(
            proto=58,
            src_port=None,
            dst_port=None,
            icmp_type=128,
            icmp_code=0,
            src4_addr=None,
            dst4_addr=None,
            src6_addr='"::ffff:192.0.2.1"',
            dst6_addr='"2001:db8::7"',
            ip4_router=None,
            ip6_router='"2001:db8::1"',
        ),  # fmt: skip
        _json_object(first=None),
    ]
    text = "[\n" + ",\n".join(objects) + "\n]\n"
    truncated = text[: -len(objects[-1]) // 2 - 3]  # the last object cut in its middle
    data = truncated.encode()
    parts = decode_nfdump_json(data, "x.json")
    _accounting(parts)
    assert [p.exporter_address for p in parts] == ["", "192.0.2.1", "2001:db8::1"]
    flow = parts[1].result.flows.to_pylist()
    assert flow == [
        {
            "observation_domain_id": 0,
            "flow_start_ms": 1717200001250,
            "flow_end_ms": 1717200002005,
            "ip_version": 4,
            "src_v4": 0xC000020A,
            "dst_v4": 0xC6336407,
            "src_v6_hi": None,
            "src_v6_lo": None,
            "dst_v6_hi": None,
            "dst_v6_lo": None,
            "protocol": 17,
            "src_port": 53,
            "dst_port": 40000,
            "flow_direction": 1,
            "octets": 180,
            "packets": 3,
            "sampling_interval": 0,
        }
    ]
    v6 = parts[2].result.flows.to_pylist()[0]
    assert (v6["src_v6_hi"], v6["src_v6_lo"]) == (0, 0xFFFF_C000_0201)
    assert (v6["dst_v6_hi"], v6["dst_v6_lo"]) == (0x20010DB8_00000000, 7)
    assert (v6["protocol"], v6["src_port"], v6["dst_port"]) == (58, 0, 0)  # icmp_type 128
    starts = [i for i in range(len(truncated)) if truncated.startswith("{\n", i)]
    got = [(q.offset, q.reason, q.records) for q in parts[0].result.quarantine]
    assert got == [
        (starts[1], "nfdump text: bad field value", 1),
        (starts[2], "counters scaled by unknown sampler", 1),
        (starts[4], "nfdump json: malformed object", 1),
    ]
    assert parts[0].result.quarantine[0].payload == objects[1].encode() + b",\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(0, 2000),
)
@pytest.mark.slow  # a thousand corrupted exports
def test_random_corruption_never_raises(flips, cut):
    text = ("[\n" + ",\n".join([_json_object(), _json_object(proto=6)] * 3) + "\n]\n").encode()
    csv = (
        b"2024-06-01 00:00:01,2024-06-01 00:00:02,0.755,192.0.2.10,198.51.100.7,53,40000,UDP,"
        + b"0," * 14
        + b"1,"
        + b"0," * 21
        + b"192.0.2.1,0/0,1,2024-06-01 00:01:00.000\n"
    ) * 6
    assert decode_nfdump_csv(csv, "c")[0].result.stats.records_decoded == 6
    for data, decode in ((text, decode_nfdump_json), (csv, decode_nfdump_csv)):
        buf = bytearray(data[: len(data) - cut % len(data)])
        for pos, value in flips:
            if buf:
                buf[pos % len(buf)] = value
        _accounting(decode(bytes(buf), "fuzz"))


# ------------------------------------------------------------------------------ fast path
def _same(a, b) -> None:
    assert [p.exporter_address for p in a] == [p.exporter_address for p in b]
    for x, y in zip(a, b, strict=True):
        assert x.result.flows.equals(y.result.flows)
        assert x.result.stats == y.result.stats and x.result.quarantine == y.result.quarantine


@needs_nfdump
@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("quiet", [True, False])
def test_fast_and_careful_paths_agree_on_a_valid_export(written, tmp_path, fmt, quiet):
    path, _ = written
    out = _nfdump(path, tmp_path / f"f.{fmt}", "-o", fmt, *(["-q"] if quiet else []))
    buf = out.read_bytes()
    fast = csv_fast_columns(buf) if fmt == "csv" else json_fast_columns(buf)
    assert fast is not None  # the fast path accepts nfdump's own output
    decode = decode_nfdump_csv if fmt == "csv" else decode_nfdump_json
    _same(decode(buf, "f", fast=True), decode(buf, "f", fast=False))
    bad = buf.replace(b"192.0.2.1", b"192.0.2.\xff", 1)  # one non-ASCII byte: careful path
    assert (csv_fast_columns(bad) if fmt == "csv" else json_fast_columns(bad)) is None
    _same(decode(bad, "f", fast=True), decode(bad, "f", fast=False))


@needs_nfdump
@pytest.mark.parametrize("fast", [True, False])
def test_icmp_ports_read_as_zero(tmp_path, fast):
    flows = {k: v[:3] for k, v in _flows(10, 4).items()}
    flows["protocol"][:] = [1, 58, 6]  # ICMP echo request (8 * 256), ICMPv6 echo (128 * 256), TCP
    flows["src_port"][:] = [0, 0, 443]
    flows["dst_port"][:] = [2048, 32768, 50000]
    path = tmp_path / "icmp.nfcapd"
    write_nfcapd(path, [NfcapdExporterInput("192.0.2.1", 1, 0, flows)], created_ms=0)
    for fmt, reader in (("csv", read_nfdump_csv), ("json", read_nfdump_json)):
        out = _nfdump(path, tmp_path / f"i.{fmt}", "-o", fmt, "-q")
        (part,) = reader(out, fast=fast)
        got = sorted(
            zip(*(part.result.flows.column(c).to_pylist() for c in COLUMNS[9:12]), strict=True)
        )
        assert got == [(1, 0, 0), (6, 443, 50000), (58, 0, 0)], fmt


def _short_json_flow(packets: int) -> str:
    """A router-less nfdump json flow object of exactly 195 bytes (no tabs), `}` last."""
    return (
        "{\n"  # 2
        '"type" : "FLOW",\n'  # 6 + 3 + 6 + 1 + 1 = 17
        '"first" : "2024-06-05T12:00:00.000",\n'  # 7 + 3 + 25 + 1 + 1 = 37
        '"last" : "2024-06-05T12:00:01.000",\n'  # 6 + 3 + 25 + 1 + 1 = 36
        f'"in_packets" : {packets},\n'  # 12 + 3 + 1 + 1 + 1 = 18
        '"in_bytes" : 220,\n'  # 10 + 3 + 3 + 1 + 1 = 18
        '"proto" : 6,\n'  # 7 + 3 + 1 + 1 + 1 = 13
        '"src4_addr" : "192.0.2.1",\n'  # 11 + 3 + 11 + 1 + 1 = 27
        '"dst4_addr" : "192.0.2.2"\n'  # 11 + 3 + 11 + 1 = 26
        "}"  # 1   → 195
    )


@pytest.mark.parametrize("fast", [True, False])
def test_json_resynchronises_at_each_object_around_bad_pieces(fast):
    """Worked example: a stray line, an object cut short by the next `{` and a stray run of two
    lines after the last object each cost one record; both flows around them still decode.

    offset   0: "[\\n"
    offset   2: flow (4 packets), 195 bytes, then ",\\n"         → 2 + 195 + 2 = 199
    offset 199: "x\\n"  stray line outside objects             → piece (199, 1 byte), next 201
    offset 201: '{\\n"type" : "FLOW",\\n' never closed (2 + 17) → piece (201, 19 bytes) up to
                the next `{` line, next 220
    offset 220: flow (5 packets), 195 bytes, then "\\n"         → 220 + 195 + 1 = 416
    offset 416: '"in_bytes" : 1,\\n},' pair + close outside (15 + 1 + 2) → piece (416, 18 bytes)
    offset 435: "]\\n", 437 bytes in all."""
    assert len(_short_json_flow(4)) == 195
    unclosed = '{\n"type" : "FLOW",\n'
    data = (
        "[\n"
        + _short_json_flow(4)
        + ",\nx\n"
        + unclosed
        + _short_json_flow(5)
        + '\n"in_bytes" : 1,\n},\n]\n'
    ).encode()
    assert len(data) == 437
    parts = decode_nfdump_json(data, "w.json", fast=fast)
    _accounting(parts)
    (part,) = parts  # no router address: flows and set-aside pieces share the "" entry
    assert part.exporter_address == ""
    assert part.result.flows.column("packets").to_pylist() == [4, 5]
    assert part.result.flows.column("flow_start_ms").to_pylist() == [1717588800000] * 2
    got = [(q.offset, q.length, q.reason, q.payload, q.records) for q in part.result.quarantine]
    bad = "nfdump json: malformed object"
    assert got == [
        (199, 1, bad, b"x", 1),
        (201, 19, bad, unclosed.encode(), 1),
        (416, 18, bad, b'"in_bytes" : 1,\n},', 1),
    ]
    stats = part.result.stats
    assert (stats.records_in, stats.records_decoded, stats.records_quarantined) == (5, 2, 3)
    assert stats.quarantine_by_reason == {bad: 3}
