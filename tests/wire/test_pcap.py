"""pcap/pcapng reader and writer of export datagrams: packets built by hand with struct here."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.wire.pcap import reader as pcap
from pipeline.wire.pcap.reader import read_export_datagrams, read_udp_datagrams
from pipeline.wire.pcap.writer import (
    encode_capture_records,
    pcap_file_header,
    write_export_pcap,
    write_export_pcapng,
)

TSHARK = shutil.which("tshark")
T_S, T_US = 1_717_200_000, 123_456  # a capture time: seconds and microseconds
T_MS = T_S * 1000 + 123


# ------------------------------------------------------------------------------ packet builders
def ipv4_udp(
    payload: bytes,
    src: str = "192.0.2.1",
    dst: str = "192.0.2.250",
    sport: int = 2055,
    dport: int = 9995,
    options: bytes = b"",
    flags_frag: int = 0x4000,
    proto: int = 17,
) -> bytes:
    ihl = 5 + len(options) // 4
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    head = struct.pack(
        ">BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(udp),
        1,
        flags_frag,
        64,
        proto,
        0,
        ipaddress.ip_address(src).packed,
        ipaddress.ip_address(dst).packed,
    )
    return head + options + udp


def ipv6_udp(
    payload: bytes,
    src: str = "2001:db8::1",
    dst: str = "2001:db8::fa",
    sport: int = 4739,
    dport: int = 4739,
    ext: list[tuple[int, bytes]] = (),
) -> bytes:
    """IPv6 + extension headers [(type, header bytes without next-header)] + UDP."""
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    chain = b""
    types = [t for t, _ in ext] + [17]
    for (_, body), nxt in zip(ext, types[1:], strict=True):
        chain += bytes([nxt]) + body
    rest = chain + udp
    head = struct.pack(">IHBB", 6 << 28, len(rest), types[0], 64)
    head += ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
    return head + rest


def ethernet(ip: bytes, vlans: tuple[int, ...] = ()) -> bytes:
    ethertype = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    frame = bytes(12)
    for tpid in vlans:
        frame += struct.pack(">HH", tpid, 100)
    return frame + struct.pack(">H", ethertype) + ip


def classic(
    packets: list[bytes], linktype: int = 1, endian: str = "<", nano: bool = False
) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    frac = T_US * 1000 if nano else T_US
    for p in packets:
        out += struct.pack(endian + "IIII", T_S, frac, len(p), len(p)) + p
    return out


def ng_block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def ng_shb(endian: str = "<") -> bytes:
    return ng_block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)


def ng_idb(linktype: int, endian: str = "<", tsresol: int | None = None) -> bytes:
    body = struct.pack(endian + "HHI", linktype, 0, 65535)
    if tsresol is not None:
        body += struct.pack(endian + "HHB3x", 9, 1, tsresol) + struct.pack(endian + "HH", 0, 0)
    return ng_block(1, body, endian)


def ng_epb(iface: int, ts: int, packet: bytes, endian: str = "<") -> bytes:
    head = struct.pack(endian + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(packet), len(packet))
    return ng_block(6, head + packet, endian)


def ng_spb(packet: bytes, endian: str = "<") -> bytes:
    return ng_block(3, struct.pack(endian + "I", len(packet)) + packet, endian)


def read(tmp_path: Path, data: bytes, name: str = "x.pcap") -> pcap.ExportDatagrams:
    path = tmp_path / name
    path.write_bytes(data)
    return read_export_datagrams(path)


# ------------------------------------------------------------------------------ classic pcap
@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_byte_orders_and_resolutions(tmp_path, endian, nano):
    data = classic(
        [ethernet(ipv4_udp(b"hello")), ethernet(ipv4_udp(b"abc", sport=1))], 1, endian, nano
    )
    got = read(tmp_path, data)
    assert len(got) == 2 and got.packets_total == 2 and got.skipped_packets == 0
    assert got.payload == b"helloabc"
    assert got.starts.tolist() == [0, 5] and got.lengths.tolist() == [5, 3]
    # 24 file header + 16 record header + 14 Ethernet + 20 IPv4 + 8 UDP = 82
    assert got.file_offsets.tolist() == [82, 82 + 5 + 16 + 42]
    assert got.time_ms.tolist() == [T_MS, T_MS]
    assert got.src_address.tolist() == ["192.0.2.1"] * 2
    assert got.dst_address.tolist() == ["192.0.2.250"] * 2
    assert got.src_port.tolist() == [2055, 1] and got.dst_port.tolist() == [9995, 9995]
    assert got.src_port.dtype == np.uint16 and got.starts.dtype == np.int64
    assert data[82:87] == b"hello"


def test_read_udp_datagrams_keeps_its_shape(tmp_path):
    path = tmp_path / "a.pcap"
    path.write_bytes(classic([ethernet(ipv6_udp(b"\x00\x0a"))]))
    (d,) = read_udp_datagrams(path)
    assert (d.src, d.dst, d.src_port, d.dst_port) == ("2001:db8::1", "2001:db8::fa", 4739, 4739)
    assert d.payload == b"\x00\x0a" and d.time_s == pytest.approx(T_MS / 1000)


# ------------------------------------------------------------------------------ pcapng
@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_sections_interfaces_epb_spb(tmp_path, endian):
    other = ">" if endian == "<" else "<"
    data = ng_shb(endian) + ng_idb(1, endian) + ng_idb(101, endian, tsresol=9)
    data += ng_epb(0, T_MS * 1000 + 456, ethernet(ipv4_udp(b"one")), endian)
    data += ng_block(4, b"\x00" * 8, endian)  # name resolution block: skipped
    data += ng_epb(1, T_MS * 1_000_000 + 7, ipv6_udp(b"two"), endian)
    data += ng_spb(ethernet(ipv4_udp(b"three", sport=7)), endian)
    # a second section in the other byte order, its interfaces numbered from 0 again
    data += ng_shb(other) + ng_idb(113, other)
    sll = struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x0800) + ipv4_udp(b"four", src="10.0.0.4")
    data += ng_epb(0, T_MS * 1000, sll, other)
    got = read(tmp_path, data, "x.pcapng")
    assert got.packets_total == 4 and not got.problems
    assert [got.datagram(i) for i in range(4)] == [b"one", b"two", b"three", b"four"]
    assert got.time_ms.tolist() == [T_MS, T_MS, 0, T_MS]  # SPB has no timestamp
    assert got.src_address.tolist() == ["192.0.2.1", "2001:db8::1", "192.0.2.1", "10.0.0.4"]
    assert got.src_port.tolist() == [2055, 4739, 7, 2055]
    for i in range(4):
        start = int(got.file_offsets[i])
        assert data[start : start + int(got.lengths[i])] == got.datagram(i)


def test_pcapng_block_for_unknown_interface_is_a_problem(tmp_path):
    data = (
        ng_shb()
        + ng_idb(1)
        + ng_epb(3, 0, ethernet(ipv4_udp(b"x")))
        + ng_epb(0, 0, ethernet(ipv4_udp(b"y")))
    )
    got = read(tmp_path, data, "x.pcapng")
    assert got.payload == b"y"
    assert [(p.offset, p.reason) for p in got.problems] == [(28 + 20, pcap.REASON_BAD_BLOCK)]


# ------------------------------------------------------------------------------ link types
def _sll(ip: bytes) -> bytes:
    ethertype = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack(">HHH8sH", 0, 1, 6, bytes(8), ethertype) + ip


def _sll2(ip: bytes) -> bytes:
    ethertype = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack(">HHIHBB8s", ethertype, 0, 2, 1, 0, 6, bytes(8)) + ip


LINKS = {
    "ethernet": (1, ethernet, 14),
    "vlan": (1, lambda ip: ethernet(ip, (0x8100,)), 18),
    "qinq": (1, lambda ip: ethernet(ip, (0x88A8, 0x8100)), 22),
    "raw101": (101, lambda ip: ip, 0),
    "raw12": (12, lambda ip: ip, 0),
    "ipv4_228": (228, lambda ip: ip, 0),
    "ipv6_229": (229, lambda ip: ip, 0),
    "sll": (113, _sll, 16),
    "sll2": (276, _sll2, 20),
    "null_le": (0, lambda ip: struct.pack("<I", 2 if ip[0] >> 4 == 4 else 30) + ip, 4),
    "null_be": (0, lambda ip: struct.pack(">I", 2 if ip[0] >> 4 == 4 else 10) + ip, 4),
    "loop": (108, lambda ip: struct.pack(">I", 2 if ip[0] >> 4 == 4 else 24) + ip, 4),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LINKS))
def test_link_types(tmp_path, name):
    linktype, frame, l2_len = LINKS[name]
    ips = [ipv4_udp(b"v4v4"), ipv6_udp(b"six")]
    if linktype == 228:
        ips = ips[:1]
    elif linktype == 229:
        ips = ips[1:]
    got = read(tmp_path, classic([frame(ip) for ip in ips], linktype))
    assert not got.problems and got.skipped_packets == 0
    assert [got.datagram(i) for i in range(len(got))] == [
        ip[-4:] if ip[0] >> 4 == 4 else ip[-3:] for ip in ips
    ]
    first_offset = 24 + 16 + l2_len + (20 if ips[0][0] >> 4 == 4 else 40) + 8
    assert int(got.file_offsets[0]) == first_offset


def test_unsupported_link_type_is_a_problem(tmp_path):
    got = read(tmp_path, classic([ethernet(ipv4_udp(b"x"))], linktype=147))
    assert len(got) == 0 and got.packets_total == 1
    assert [(p.offset, p.reason) for p in got.problems] == [(40, pcap.REASON_LINK_TYPE)]


# ------------------------------------------------------------------------------ IP layer
def test_ipv4_header_options_are_honoured(tmp_path):
    ip = ipv4_udp(b"payload", options=b"\x94\x04\x00\x00" + b"\x01\x01\x01\x00")  # IHL 7
    got = read(tmp_path, classic([ethernet(ip)]))
    assert got.payload == b"payload"
    assert got.file_offsets.tolist() == [24 + 16 + 14 + 28 + 8]
    assert got.src_port.tolist() == [2055]


def test_ipv6_extension_headers_are_walked(tmp_path):
    hop = (0, b"\x00" + bytes(6))  # hop-by-hop, 8 bytes
    dest = (60, b"\x01" + bytes(14))  # destination options, 16 bytes
    routing = (43, b"\x00\x00\x00" + bytes(4))  # routing, 8 bytes
    got = read(tmp_path, classic([ethernet(ipv6_udp(b"ext", ext=[hop, dest, routing]))]))
    assert got.payload == b"ext"
    assert got.file_offsets.tolist() == [24 + 16 + 14 + 40 + 32 + 8]


def test_fragments_are_set_aside_and_other_protocols_skipped(tmp_path):
    packets = [
        ethernet(ipv4_udp(b"ok")),
        ethernet(ipv4_udp(b"first", flags_frag=0x2000)),  # more fragments
        ethernet(ipv4_udp(b"later", flags_frag=0x0010)),  # offset 16×8
        ethernet(ipv6_udp(b"frag6", ext=[(44, b"\x00" + struct.pack(">HI", 1, 9))])),
        ethernet(ipv4_udp(b"tcp!", proto=6)),  # TCP: not export data
        bytes(12) + b"\x08\x06" + bytes(28),  # ARP
        ethernet(ipv4_udp(b"tcpfrag", proto=6, flags_frag=0x2000)),  # fragment of TCP: skipped
    ]
    got = read(tmp_path, classic(packets))
    assert got.payload == b"ok" and got.packets_total == 7
    assert got.skipped_packets == 3
    reasons = [p.reason for p in got.problems]
    assert reasons == [pcap.REASON_IP_FRAGMENT] * 3
    starts = np.cumsum([24 + 16] + [len(p) + 16 for p in packets])
    assert [p.offset for p in got.problems] == starts[1:4].tolist()


def test_udp_length_beyond_ip_length_is_a_problem(tmp_path):
    ip = bytearray(ipv4_udp(b"12345678"))
    ip[24:26] = struct.pack(">H", 100)  # UDP length > IP total length
    got = read(tmp_path, classic([ethernet(bytes(ip))]))
    assert len(got) == 0 and [p.reason for p in got.problems] == [pcap.REASON_UDP_LENGTH]


def test_snaplen_cut_datagram_is_a_problem(tmp_path):
    frame = ethernet(ipv4_udp(b"x" * 100))
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 60, 1)
    data += struct.pack("<IIII", T_S, 0, 60, len(frame)) + frame[:60]
    got = read(tmp_path, data)
    assert len(got) == 0 and [p.reason for p in got.problems] == [pcap.REASON_UDP_TRUNCATED]


# ------------------------------------------------------------------------------ damaged files
def test_truncated_record_at_end_keeps_what_is_readable(tmp_path):
    good = ethernet(ipv4_udp(b"good"))
    data = classic([good, ethernet(ipv4_udp(b"cut off here"))])[:-5]
    got = read(tmp_path, data)
    assert got.payload == b"good" and got.packets_total == 2
    (problem,) = got.problems
    assert problem.reason == pcap.REASON_CAPTURE_TRUNCATED
    assert problem.offset == 24 + 16 + len(good)  # the damaged record's header
    assert problem.source.endswith("x.pcap")
    assert problem.payload == data[problem.offset :]


def test_truncated_record_header(tmp_path):
    data = classic([ethernet(ipv4_udp(b"good"))]) + b"\x01\x02\x03"
    got = read(tmp_path, data)
    assert got.payload == b"good"
    assert [(p.offset, p.length) for p in got.problems] == [(len(data) - 3, 3)]


def test_implausible_record_length(tmp_path):
    data = classic([ethernet(ipv4_udp(b"good"))]) + struct.pack("<IIII", 0, 0, 10**9, 10**9)
    got = read(tmp_path, data)
    assert [p.reason for p in got.problems] == [pcap.REASON_CAPTURE_LENGTH]


@pytest.mark.parametrize("data", [b"", b"GIF89a" + bytes(40), b"\xd4\xc3\xb2\xa1\x02"])
def test_not_a_capture_raises_naming_the_file(tmp_path, data):
    with pytest.raises(ValueError, match=r"bad\.bin: offset 0"):
        read(tmp_path, data, "bad.bin")


def test_header_only_file_is_empty(tmp_path):
    got = read(tmp_path, pcap_file_header())
    assert len(got) == 0 and got.packets_total == 0 and got.payload == b""


# ------------------------------------------------------------------------------ writer
def _datagrams(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 1500, n)
    lengths[:3] = [0, 1, 1399]  # empty and odd lengths
    return [rng.integers(0, 256, k, dtype=np.uint8).tobytes() for k in lengths]


def _ones_complement_sum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@pytest.mark.parametrize("writer", [write_export_pcap, write_export_pcapng])
@pytest.mark.parametrize(
    ("src", "dst"), [("192.0.2.1", "192.0.2.250"), ("2001:db8::1", "2001:db8::fa")]
)
def test_writer_round_trips_byte_identically(tmp_path, writer, src, dst):
    grams = _datagrams(300, 1)
    times = 1_717_200_000_000 + np.arange(300, dtype=np.int64) * 7
    path = tmp_path / "w.cap"
    size = writer(
        path, grams, src_address=src, dst_address=dst, src_port=2055, dst_port=9995, time_ms=times
    )
    data = path.read_bytes()
    assert size == len(data)
    got = read_export_datagrams(path)
    assert not got.problems and got.packets_total == 300
    assert [got.datagram(i) for i in range(300)] == grams
    assert got.time_ms.tolist() == times.tolist()
    assert set(got.src_address.tolist()) == {src} and set(got.dst_address.tolist()) == {dst}
    assert set(got.src_port.tolist()) == {2055} and set(got.dst_port.tolist()) == {9995}
    # deterministic bytes, and no temp file left beside the output
    writer(
        tmp_path / "again.cap",
        grams,
        src_address=src,
        dst_address=dst,
        src_port=2055,
        dst_port=9995,
        time_ms=times,
    )
    assert (tmp_path / "again.cap").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.cap", "w.cap"]
    # checksums, verified independently on a few frames
    for i in (0, 1, 2, 150):
        ofs = int(got.file_offsets[i]) - 8  # UDP header
        if ":" in src:
            ip6 = data[ofs - 40 : ofs]
            udp = data[ofs : ofs + 8 + len(grams[i])]
            pseudo = ip6[8:40] + struct.pack(">IxxxB", len(udp), 17)
            assert _ones_complement_sum(pseudo + udp) == 0xFFFF
            assert udp[6:8] != b"\0\0"
        else:
            assert _ones_complement_sum(data[ofs - 20 : ofs]) == 0xFFFF


def test_writer_scalar_time_and_mixed_families(tmp_path):
    path = tmp_path / "s.pcap"
    write_export_pcap(
        path,
        [b"a", b"bc"],
        src_address="198.51.100.7",
        dst_address="192.0.2.250",
        src_port=1,
        dst_port=2,
        time_ms=1_000_123,
    )
    got = read_export_datagrams(path)
    assert got.time_ms.tolist() == [1_000_123, 1_000_123] and got.payload == b"abc"
    records = encode_capture_records(
        [b"four", b"six!"],
        src_addresses=["192.0.2.1", "2001:db8::1"],
        dst_addresses=["192.0.2.2", "2001:db8::2"],
        src_ports=[10, 20],
        dst_ports=[30, 40],
        time_ms=[5, 6],
    )
    got = read(tmp_path, pcap_file_header() + records)
    assert got.src_address.tolist() == ["192.0.2.1", "2001:db8::1"]
    assert got.dst_address.tolist() == ["192.0.2.2", "2001:db8::2"]
    assert got.payload == b"foursix!" and got.src_port.tolist() == [10, 20]
    with pytest.raises(ValueError, match="address families differ"):
        encode_capture_records(
            [b"x"],
            src_addresses=["192.0.2.1"],
            dst_addresses=["::1"],
            src_ports=[1],
            dst_ports=[1],
            time_ms=[0],
        )
    with pytest.raises(ValueError, match="exceed the IPv4 maximum"):
        encode_capture_records(
            [bytes(70_000)],
            src_addresses=["192.0.2.1"],
            dst_addresses=["192.0.2.2"],
            src_ports=[1],
            dst_ports=[1],
            time_ms=[0],
        )


@pytest.mark.skipif(TSHARK is None, reason="tshark (Debian package tshark) not installed")
@pytest.mark.parametrize("writer", [write_export_pcap, write_export_pcapng])
def test_tshark_reads_written_files(tmp_path, writer):
    grams = _datagrams(20, 2)
    path = tmp_path / "t.cap"
    writer(
        path,
        grams,
        src_address="2001:db8::1",
        dst_address="2001:db8::fa",
        src_port=2055,
        dst_port=9995,
        time_ms=0,
    )
    out = subprocess.run(
        [TSHARK, "-r", str(path), "-T", "fields", "-e", "udp.length"]
        + ["-e", "udp.checksum.status", "-o", "udp.check_checksum:TRUE"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    rows = [line.split("\t") for line in out if line]
    assert [int(r[0]) for r in rows] == [8 + len(g) for g in grams]
    assert {r[1] for r in rows} == {"1"}  # 1 = good
