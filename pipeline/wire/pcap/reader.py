"""Captures of export datagrams: classic pcap and pcapng → UDP payloads plus exporter addresses.

A Python loop walks the capture's record (or block) headers — one step per packet, no parsing —
and everything below (link layer, VLAN tags, IPv4/IPv6 with extension headers, UDP) is read with
numpy gathers over all packets at once. Any UDP port counts: the decoder decides what is export
data. Unreadable capture records are set aside as `QuarantineEntry`s; packets that are not UDP
(ARP, TCP, ICMP …) are only counted in `skipped_packets`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.wire.records import QuarantineEntry

# Reasons for capture-level problems (records_in of the flow accounting counts each as 1).
REASON_CAPTURE_TRUNCATED = "capture record truncated"
REASON_CAPTURE_LENGTH = "implausible capture length"
REASON_BAD_BLOCK = "bad pcapng block"
REASON_LINK_TYPE = "unsupported link type"
REASON_IP_FRAGMENT = "IP fragment of UDP (not reassembled)"
REASON_UDP_TRUNCATED = "UDP datagram truncated in capture"
REASON_UDP_LENGTH = "bad UDP length"

_CLASSIC_MAGIC = {  # magic → (byte order, timestamp fraction units per second)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_PCAPNG_IDB, _PCAPNG_OPB, _PCAPNG_SPB, _PCAPNG_EPB = 1, 2, 3, 6
MAX_CAPLEN = 262_144  # larger record lengths are corrupt headers (libpcap's MAXIMUM_SNAPLEN)

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW_ALT, LINKTYPE_RAW = 0, 1, 12, 101
LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6 = 108, 113, 228, 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW_ALT,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)
_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_ETH_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
_AF_INET6_VALUES = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
_IPV6_EXT_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options
_IPV6_AH, _IPV6_FRAGMENT, _UDP = 51, 44, 17
_MAX_VLAN_TAGS, _MAX_IPV6_EXT_HEADERS = 4, 8


@dataclass
class ExportDatagrams:
    """The UDP datagrams of one capture as columns (datagram i: `datagram(i)`)."""

    payload: bytes
    starts: np.ndarray  # int64, start of datagram i in `payload`
    lengths: np.ndarray  # int64
    file_offsets: np.ndarray  # int64, offset of datagram i's UDP payload in the capture file
    time_ms: np.ndarray  # int64, capture time (0 for pcapng simple packet blocks: no timestamp)
    src_address: np.ndarray  # object: exporter address text ("192.0.2.1", "2001:db8::1")
    dst_address: np.ndarray  # object: collector address text
    src_port: np.ndarray  # uint16
    dst_port: np.ndarray  # uint16
    problems: list[QuarantineEntry] = field(default_factory=list)
    packets_total: int = 0
    skipped_packets: int = 0  # readable packets that are not unfragmented UDP over IP

    def __len__(self) -> int:
        return len(self.starts)

    def datagram(self, i: int) -> bytes:
        start = int(self.starts[i])
        return self.payload[start : start + int(self.lengths[i])]


@dataclass(frozen=True)
class UdpDatagram:
    """One UDP datagram of a capture (exporter address and ports, payload bytes)."""

    time_s: float
    src: str
    dst: str
    src_port: int
    dst_port: int
    payload: bytes


@dataclass
class _Packets:
    """Captured packets of a file: where their bytes are, their link type and time."""

    offsets: list[int] = field(default_factory=list)
    caplens: list[int] = field(default_factory=list)
    linktypes: list[int] = field(default_factory=list)
    time_ms: list[int] = field(default_factory=list)
    problems: list[QuarantineEntry] = field(default_factory=list)


def _problem(data: bytes, source: str, offset: int, length: int, reason: str) -> QuarantineEntry:
    length = max(0, min(length, len(data) - offset))
    return QuarantineEntry(source, offset, length, reason, data[offset : offset + length])


# ------------------------------------------------------------------ record walks (one per packet)
def _walk_classic(data: bytes, source: str) -> _Packets:
    """Record headers of a classic pcap file; stops at the first unreadable record."""
    endian, units = _CLASSIC_MAGIC[data[:4]]
    if len(data) < 24:
        raise ValueError(f"{source}: offset 0: pcap file header truncated ({len(data)} bytes)")
    snaplen, linktype = struct.unpack_from(endian + "II", data, 16)
    linktype &= 0x0FFFFFFF  # upper bits carry the FCS length
    limit = max(snaplen, MAX_CAPLEN)
    incl_len = struct.Struct(endian + "I")
    out = _Packets()
    starts: list[int] = []
    off, n = 24, len(data)
    while off < n:  # only the captured length is read here; the rest is gathered below
        if off + 16 > n:
            out.problems.append(_problem(data, source, off, n - off, REASON_CAPTURE_TRUNCATED))
            break
        incl = incl_len.unpack_from(data, off + 8)[0]
        if incl > limit:
            out.problems.append(_problem(data, source, off, n - off, REASON_CAPTURE_LENGTH))
            break
        if off + 16 + incl > n:
            out.problems.append(_problem(data, source, off, n - off, REASON_CAPTURE_TRUNCATED))
            break
        starts.append(off)
        off += 16 + incl
    record = np.asarray(starts, np.int64)
    u8 = np.frombuffer(data, np.uint8)
    shifts = (0, 8, 16, 24) if endian == "<" else (24, 16, 8, 0)
    words = [
        sum(u8[record + k + j].astype(np.int64) << shift for j, shift in enumerate(shifts))
        for k in (0, 4, 8)
    ]  # ts seconds, ts fraction, captured length of every record
    ms = words[0] * 1000 + words[1] // (units // 1000)
    out.offsets = (record + 16).tolist()
    out.caplens = words[2].tolist()
    out.time_ms = ms.tolist()
    out.linktypes = [linktype] * len(starts)
    return out


def _idb_time_units(data: bytes, endian: str, start: int, end: int) -> tuple[int, int]:
    """(timestamp units per second, offset in seconds) from an IDB's options."""
    units, offset_s, pos = 1_000_000, 0, start
    while pos + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", data, pos)
        if code == 0:
            break
        value = data[pos + 4 : pos + 4 + length]
        if code == 9 and length >= 1:  # if_tsresol
            v = value[0]
            units = 2 ** (v & 0x7F) if v & 0x80 else 10 ** min(v, 18)
        elif code == 14 and length == 8:  # if_tsoffset
            offset_s = struct.unpack(endian + "q", value)[0]
        pos += 4 + length + (-length % 4)
    return units, offset_s


def _walk_pcapng(data: bytes, source: str) -> _Packets:
    """Blocks of a pcapng file (all sections); EPB, SPB and obsolete packet blocks are packets."""
    out = _Packets()
    interfaces: list[tuple[int, int, int, int]] = []  # linktype, snaplen, units/s, offset s
    endian, off, n = "<", 0, len(data)
    while off < n:
        if off + 12 > n:
            out.problems.append(_problem(data, source, off, n - off, REASON_CAPTURE_TRUNCATED))
            break
        btype = struct.unpack_from(endian + "I", data, off)[0]
        if btype == _PCAPNG_SHB:
            bom = data[off + 8 : off + 12]
            if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                if off == 0:
                    raise ValueError(f"{source}: offset 8: pcapng byte-order magic {bom.hex()}")
                out.problems.append(_problem(data, source, off, n - off, REASON_BAD_BLOCK))
                break
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        blen = struct.unpack_from(endian + "I", data, off + 4)[0]
        if blen < 12 or blen % 4 or off + blen > n:
            if off == 0:
                raise ValueError(f"{source}: offset 4: pcapng section header length {blen}")
            reason = REASON_CAPTURE_TRUNCATED if off + blen > n >= off + 12 else REASON_BAD_BLOCK
            out.problems.append(_problem(data, source, off, n - off, reason))
            break
        body = off + 8
        if btype == _PCAPNG_IDB and blen >= 20:
            linktype, _, snaplen = struct.unpack_from(endian + "HHI", data, body)
            units, offset_s = _idb_time_units(data, endian, body + 8, off + blen - 4)
            interfaces.append((linktype, snaplen, units, offset_s))
        elif btype in (_PCAPNG_EPB, _PCAPNG_OPB, _PCAPNG_SPB):
            if btype == _PCAPNG_SPB:
                iface, caplen, ts, data_at = 0, None, None, body + 4
            elif btype == _PCAPNG_EPB:
                iface, hi, lo, caplen = struct.unpack_from(endian + "IIII", data, body)
                ts, data_at = (hi << 32) | lo, body + 20
            else:
                iface, _, hi, lo, caplen = struct.unpack_from(endian + "HHIII", data, body)
                ts, data_at = (hi << 32) | lo, body + 20
            room = off + blen - 4 - data_at
            if iface >= len(interfaces) or room < 0:
                out.problems.append(_problem(data, source, off, blen, REASON_BAD_BLOCK))
                off += blen
                continue
            linktype, snaplen, units, offset_s = interfaces[iface]
            if caplen is None:  # SPB: captured length = original length cut to snaplen and block
                orig = struct.unpack_from(endian + "I", data, body)[0]
                caplen = min(orig, snaplen or orig, room)
            if caplen > room or caplen > max(snaplen, MAX_CAPLEN):
                out.problems.append(_problem(data, source, off, blen, REASON_CAPTURE_LENGTH))
                off += blen
                continue
            out.offsets.append(data_at)
            out.caplens.append(caplen)
            out.linktypes.append(linktype)
            out.time_ms.append(0 if ts is None else ts * 1000 // units + offset_s * 1000)
        off += blen
    return out


# ------------------------------------------------------------------ vectorised header parsing
class _Gather:
    """Big-endian reads at many file offsets at once; rows not `ok` read offset 0 (ignored)."""

    def __init__(self, data: bytes) -> None:
        self.u8 = np.frombuffer(data, dtype=np.uint8)

    def u8_at(self, offs: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return self.u8[np.where(ok, offs, 0)].astype(np.int64)

    def be16(self, offs: np.ndarray, ok: np.ndarray) -> np.ndarray:
        o = np.where(ok, offs, 0)
        return (self.u8[o].astype(np.int64) << 8) | self.u8[o + 1]

    def be32(self, offs: np.ndarray, ok: np.ndarray) -> np.ndarray:
        return (self.be16(offs, ok) << 16) | self.be16(offs + 2, ok)

    def le32(self, offs: np.ndarray, ok: np.ndarray) -> np.ndarray:
        o = np.where(ok, offs, 0)
        return sum(self.u8[o + k].astype(np.int64) << (8 * k) for k in range(4))

    def be64(self, offs: np.ndarray, ok: np.ndarray) -> np.ndarray:
        hi = self.be32(offs, ok).astype(np.uint64)
        return (hi << np.uint64(32)) | self.be32(offs + 4, ok).astype(np.uint64)


def _network_layer(
    g: _Gather, pos: np.ndarray, end: np.ndarray, linktype: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(IP header offset, IP version 4/6 or 0) of every packet from its link-layer header."""
    l3 = pos.copy()
    version = np.zeros(len(pos), np.int64)
    ethertype = np.full(len(pos), -1, np.int64)

    eth = (linktype == LINKTYPE_ETHERNET) & (pos + 14 <= end)
    ethertype[eth] = g.be16(pos + 12, eth)[eth]
    l3[eth] = pos[eth] + 14
    for _ in range(_MAX_VLAN_TAGS):  # 802.1Q / QinQ tags
        tagged = eth & np.isin(ethertype, _ETH_VLAN_TAGS) & (l3 + 4 <= end)
        if not tagged.any():
            break
        ethertype[tagged] = g.be16(l3 + 2, tagged)[tagged]
        l3[tagged] += 4

    sll = (linktype == LINKTYPE_LINUX_SLL) & (pos + 16 <= end)
    ethertype[sll] = g.be16(pos + 14, sll)[sll]
    l3[sll] = pos[sll] + 16
    sll2 = (linktype == LINKTYPE_LINUX_SLL2) & (pos + 20 <= end)
    ethertype[sll2] = g.be16(pos, sll2)[sll2]
    l3[sll2] = pos[sll2] + 20
    version[ethertype == _ETH_IPV4] = 4
    version[ethertype == _ETH_IPV6] = 6

    raw = np.isin(linktype, (LINKTYPE_RAW, LINKTYPE_RAW_ALT, LINKTYPE_IPV4, LINKTYPE_IPV6))
    raw &= pos < end
    version[raw] = g.u8_at(pos, raw)[raw] >> 4

    for lt, family in ((LINKTYPE_NULL, g.le32), (LINKTYPE_LOOP, g.be32)):
        null = (linktype == lt) & (pos + 4 <= end)
        af = family(pos, null)
        if lt == LINKTYPE_NULL:  # host byte order of the capturing machine: try both
            swapped = g.be32(pos, null)
            af = np.where((af == 2) | np.isin(af, _AF_INET6_VALUES), af, swapped)
        l3[null] = pos[null] + 4
        version[null & (af == 2)] = 4
        version[null & np.isin(af, _AF_INET6_VALUES)] = 6

    version[(linktype == LINKTYPE_IPV4) & (version != 4)] = 0
    version[(linktype == LINKTYPE_IPV6) & (version != 6)] = 0
    version[(version != 4) & (version != 6)] = 0
    return l3, version


def _address_text(values: list[np.ndarray], v6: np.ndarray) -> np.ndarray:
    """Address text per row from (v4 uint32 | v6 hi, v6 lo) uint64 columns; one string per value."""
    v4, hi, lo = values
    out = np.empty(len(v6), dtype=object)
    rows4, rows6 = np.flatnonzero(~v6), np.flatnonzero(v6)
    if len(rows4):
        uniq, inverse = np.unique(v4[rows4], return_inverse=True)
        text = np.array([str(ipaddress.IPv4Address(int(a))) for a in uniq.tolist()], object)
        out[rows4] = text[inverse.ravel()]
    if len(rows6):  # three 1-D uniques instead of a slow row-wise one
        u_hi, i_hi = np.unique(hi[rows6], return_inverse=True)
        u_lo, i_lo = np.unique(lo[rows6], return_inverse=True)
        pair = i_hi.ravel().astype(np.int64) * len(u_lo) + i_lo.ravel()
        u_pair, inverse = np.unique(pair, return_inverse=True)
        text = np.array(
            [
                str(
                    ipaddress.IPv6Address(
                        (int(u_hi[p // len(u_lo)]) << 64) | int(u_lo[p % len(u_lo)])
                    )
                )
                for p in u_pair.tolist()
            ],
            object,
        )
        out[rows6] = text[inverse.ravel()]
    return out


def _udp_datagrams(data: bytes, packets: _Packets, source: str) -> ExportDatagrams:
    """Locate IP and UDP headers of all packets at once and cut out the UDP payloads."""
    g = _Gather(data)
    pos = np.asarray(packets.offsets, np.int64)
    end = pos + np.asarray(packets.caplens, np.int64)
    linktype = np.asarray(packets.linktypes, np.int64)
    n = len(pos)
    problems = list(packets.problems)
    unsupported = ~np.isin(linktype, list(SUPPORTED_LINKTYPES))

    l3, version = _network_layer(g, pos, end, linktype)
    v4 = (version == 4) & (l3 + 20 <= end)
    v6 = (version == 6) & (l3 + 40 <= end)
    udp = np.zeros(n, np.int64)
    is_udp = np.zeros(n, bool)
    fragment = np.zeros(n, bool)
    ip_end = end.copy()  # where the IP packet says it ends (capture end if it does not say)

    # IPv4: honour IHL; a fragment (MF set or offset > 0) of UDP cannot be read alone.
    ihl = (g.u8_at(l3, v4) & 0x0F) * 4
    v4 &= ihl >= 20
    proto4 = g.u8_at(l3 + 9, v4)
    frag4 = (g.be16(l3 + 6, v4) & 0x3FFF) != 0
    total4 = g.be16(l3 + 2, v4)
    fragment |= v4 & (proto4 == _UDP) & frag4
    udp4 = v4 & (proto4 == _UDP) & ~frag4
    udp[udp4] = (l3 + ihl)[udp4]
    is_udp |= udp4
    ip_end = np.where(v4, l3 + total4, ip_end)

    # IPv6: walk hop-by-hop / routing / destination options (and AH) to the upper layer.
    next_header = g.u8_at(l3 + 6, v6)
    hdr = l3 + 40
    for _ in range(_MAX_IPV6_EXT_HEADERS):
        ext = v6 & np.isin(next_header, (*_IPV6_EXT_HEADERS, _IPV6_AH)) & (hdr + 2 <= end)
        if not ext.any():
            break
        nh, hl = g.u8_at(hdr, ext), g.u8_at(hdr + 1, ext)
        step = np.where(next_header == _IPV6_AH, (hl + 2) * 4, (hl + 1) * 8)
        next_header = np.where(ext, nh, next_header)
        hdr = np.where(ext, hdr + step, hdr)
    frag6 = v6 & (next_header == _IPV6_FRAGMENT) & (hdr + 8 <= end)
    fragment |= frag6 & (g.u8_at(hdr, frag6) == _UDP)
    udp6 = v6 & (next_header == _UDP)
    udp[udp6] = hdr[udp6]
    is_udp |= udp6
    payload6 = g.be16(l3 + 4, v6)
    ip_end = np.where(v6 & (payload6 > 0), l3 + 40 + payload6, ip_end)  # 0: jumbogram

    # UDP header and payload length: must fit the IP length and the captured bytes.
    header_ok = is_udp & (udp + 8 <= end)
    ulen = g.be16(udp + 4, header_ok)
    bad_length = header_ok & ((ulen < 8) | (udp + ulen > ip_end))
    cut = header_ok & ~bad_length & (udp + ulen > end)  # cut by the capture's snaplen
    cut |= is_udp & ~header_ok
    good = header_ok & ~bad_length & ~cut

    for mask, reason in (
        (unsupported, REASON_LINK_TYPE),
        (fragment, REASON_IP_FRAGMENT),
        (bad_length, REASON_UDP_LENGTH),
        (cut, REASON_UDP_TRUNCATED),
    ):
        for i in np.flatnonzero(mask).tolist():  # loop over problem packets only
            problems.append(_problem(data, source, int(pos[i]), int(end[i] - pos[i]), reason))
    problem_rows = unsupported | fragment | bad_length | cut
    skipped = int(n - good.sum() - problem_rows.sum())

    rows = np.flatnonzero(good)
    udp, l3, is_v6 = udp[rows], l3[rows], version[rows] == 6
    file_offsets = udp + 8
    lengths = ulen[rows] - 8
    mv = memoryview(data)
    ends = file_offsets + lengths
    payload = b"".join(map(mv.__getitem__, map(slice, file_offsets.tolist(), ends.tolist())))
    starts = np.zeros(len(rows), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    all_rows = np.ones(len(rows), bool)
    src = [
        g.be32(l3 + 12, all_rows).astype(np.uint64),
        g.be64(l3 + 8, is_v6),
        g.be64(l3 + 16, is_v6),
    ]
    dst = [
        g.be32(l3 + 16, all_rows).astype(np.uint64),
        g.be64(l3 + 24, is_v6),
        g.be64(l3 + 32, is_v6),
    ]
    return ExportDatagrams(
        payload=payload,
        starts=starts,
        lengths=lengths.astype(np.int64),
        file_offsets=file_offsets.astype(np.int64),
        time_ms=np.asarray(packets.time_ms, np.int64)[rows],
        src_address=_address_text(src, is_v6),
        dst_address=_address_text(dst, is_v6),
        src_port=g.be16(udp, all_rows).astype(np.uint16),
        dst_port=g.be16(udp + 2, all_rows).astype(np.uint16),
        problems=sorted(problems, key=lambda e: e.offset),
        packets_total=n + len(packets.problems),
        skipped_packets=skipped,
    )


def read_export_datagrams(path: Path, source: str | None = None) -> ExportDatagrams:
    """All UDP datagrams of a pcap or pcapng file; `source` names it in problems (default: path).

    Raises ValueError only when the file header is unreadable; later damage becomes `problems`.
    """
    data = Path(path).read_bytes()
    source = str(path) if source is None else source
    if data[:4] in _CLASSIC_MAGIC:
        packets = _walk_classic(data, source)
    elif len(data) >= 12 and data[:4] == _PCAPNG_SHB.to_bytes(4, "little"):
        packets = _walk_pcapng(data, source)
    else:
        first = data[:4].hex() or "none"
        raise ValueError(f"{source}: offset 0: not a pcap or pcapng file (first bytes {first})")
    return _udp_datagrams(data, packets, source)


def read_udp_datagrams(path: Path) -> list[UdpDatagram]:
    """Every UDP datagram of a pcap/pcapng file, in capture order (one object per datagram)."""
    grams = read_export_datagrams(path)
    return [
        UdpDatagram(t / 1000, src, dst, sp, dp, grams.datagram(i))
        for i, (t, src, dst, sp, dp) in enumerate(
            zip(
                grams.time_ms.tolist(),
                grams.src_address.tolist(),
                grams.dst_address.tolist(),
                grams.src_port.tolist(),
                grams.dst_port.tolist(),
                strict=True,
            )
        )
    ]
