"""Minimal classic-pcap reader: UDP payloads over Ethernet (with VLAN tags), raw IP or Linux SLL."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from pathlib import Path

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_RAW_ALT, LINKTYPE_LINUX_SLL = 1, 101, 12, 113
_ETH_IPV4, _ETH_IPV6, _ETH_VLAN, _ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
_UDP = 17


@dataclass(frozen=True)
class UdpDatagram:
    """One UDP datagram of a capture (exporter address and ports, payload bytes)."""

    time_s: float
    src: str
    dst: str
    src_port: int
    dst_port: int
    payload: bytes


def _ip_udp(pkt: bytes, pos: int, ethertype: int) -> tuple[str, str, int, int, bytes] | None:
    """(src, dst, sport, dport, payload) if the IP packet at `pos` is unfragmented UDP."""
    if ethertype == _ETH_IPV4 and len(pkt) >= pos + 20:
        ihl = (pkt[pos] & 0x0F) * 4
        frag = struct.unpack_from(">H", pkt, pos + 6)[0] & 0x3FFF
        if pkt[pos + 9] != _UDP or frag:
            return None
        src, dst = pkt[pos + 12 : pos + 16], pkt[pos + 16 : pos + 20]
        udp = pos + ihl
    elif ethertype == _ETH_IPV6 and len(pkt) >= pos + 40:
        if pkt[pos + 6] != _UDP:  # extension headers are not followed
            return None
        src, dst = pkt[pos + 8 : pos + 24], pkt[pos + 24 : pos + 40]
        udp = pos + 40
    else:
        return None
    if len(pkt) < udp + 8:
        return None
    sport, dport, length = struct.unpack_from(">HHH", pkt, udp)
    payload = pkt[udp + 8 : udp + max(length, 8)]
    return str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst)), sport, dport, payload


def read_udp_datagrams(path: Path) -> list[UdpDatagram]:
    """Every UDP datagram of a classic pcap file, in capture order (other packets skipped)."""
    data = Path(path).read_bytes()
    if data[:4] not in _MAGIC:
        raise ValueError(f"{path}: offset 0: not a classic pcap file (magic {data[:4].hex()})")
    endian, tick = _MAGIC[data[:4]]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(endian + "IIII")
    out: list[UdpDatagram] = []
    off = 24
    while off + record.size <= len(data):  # loop over packets
        ts_s, ts_frac, incl, _ = record.unpack_from(data, off)
        pkt = data[off + record.size : off + record.size + incl]
        if len(pkt) < incl:
            raise ValueError(f"{path}: offset {off}: packet truncated ({len(pkt)} of {incl} bytes)")
        off += record.size + incl
        if linktype == LINKTYPE_ETHERNET:
            pos, ethertype = 14, struct.unpack_from(">H", pkt, 12)[0] if len(pkt) >= 14 else 0
            while ethertype in (_ETH_VLAN, _ETH_QINQ) and len(pkt) >= pos + 4:
                ethertype = struct.unpack_from(">H", pkt, pos + 2)[0]
                pos += 4
        elif linktype in (LINKTYPE_RAW, LINKTYPE_RAW_ALT):
            pos, ethertype = 0, _ETH_IPV4 if pkt and pkt[0] >> 4 == 4 else _ETH_IPV6
        elif linktype == LINKTYPE_LINUX_SLL and len(pkt) >= 16:
            pos, ethertype = 16, struct.unpack_from(">H", pkt, 14)[0]
        else:
            continue
        udp = _ip_udp(pkt, pos, ethertype)
        if udp is not None:
            out.append(UdpDatagram(ts_s + ts_frac * tick, *udp))
    return out
