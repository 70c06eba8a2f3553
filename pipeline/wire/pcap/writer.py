"""Captures of export datagrams: UDP payloads → classic pcap or pcapng (Ethernet + IPv4/IPv6 + UDP).

Frame headers of all datagrams are built at once as numpy structured arrays; IPv4 header checksums
are computed, IPv4 UDP checksums are 0 ("not computed", RFC 768), IPv6 UDP checksums (mandatory,
RFC 8200 §8.1) are computed over pseudo-header, header and payload. Same input → same bytes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np

from pipeline.atomic import write_atomic

SNAPLEN = 262_144
LINKTYPE_ETHERNET = 1
_SRC_MAC = bytes.fromhex("020000000001")  # locally administered, fixed: deterministic files
_DST_MAC = bytes.fromhex("020000000002")
_MAX_PAYLOAD = {4: 65_535 - 20 - 8, 6: 65_535 - 8}

_PCAP_RECORD = [("ts_sec", "<u4"), ("ts_usec", "<u4"), ("incl_len", "<u4"), ("orig_len", "<u4")]
_EPB_HEAD = [
    ("block_type", "<u4"),
    ("block_len", "<u4"),
    ("interface_id", "<u4"),
    ("ts_high", "<u4"),
    ("ts_low", "<u4"),
    ("cap_len", "<u4"),
    ("orig_len", "<u4"),
]
_ETHERNET = [("eth_dst", "u1", 6), ("eth_src", "u1", 6), ("ethertype", ">u2")]
_IPV4 = [
    ("ver_ihl", "u1"),
    ("tos", "u1"),
    ("total_len", ">u2"),
    ("ident", ">u2"),
    ("flags_frag", ">u2"),
    ("ttl", "u1"),
    ("proto", "u1"),
    ("ip_csum", ">u2"),
    ("src", ">u4"),
    ("dst", ">u4"),
]
_IPV6 = [
    ("ver_tc_flow", ">u4"),
    ("payload_len", ">u2"),
    ("next_header", "u1"),
    ("hop_limit", "u1"),
    ("src", "u1", 16),
    ("dst", "u1", 16),
]
_UDP = [("sport", ">u2"), ("dport", ">u2"), ("udp_len", ">u2"), ("udp_csum", ">u2")]


def pcap_file_header(snaplen: int = SNAPLEN) -> bytes:
    """Classic pcap global header: little-endian, microseconds, Ethernet."""
    head = np.zeros(1, [("magic", "<u4"), ("major", "<u2"), ("minor", "<u2"), ("zone", "<i4"),
                        ("sigfigs", "<u4"), ("snaplen", "<u4"), ("linktype", "<u4")])  # fmt: skip
    head[0] = (0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)
    return head.tobytes()


def pcapng_file_header(snaplen: int = SNAPLEN) -> bytes:
    """pcapng section header (little-endian, unknown section length) + one Ethernet interface."""
    shb = np.zeros(1, [("t", "<u4"), ("len", "<u4"), ("bom", "<u4"), ("major", "<u2"),
                       ("minor", "<u2"), ("section_len", "<i8"), ("len2", "<u4")])  # fmt: skip
    shb[0] = (0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = np.zeros(1, [("t", "<u4"), ("len", "<u4"), ("linktype", "<u2"), ("reserved", "<u2"),
                       ("snaplen", "<u4"), ("len2", "<u4")])  # fmt: skip
    idb[0] = (1, 20, LINKTYPE_ETHERNET, 0, snaplen, 20)  # no if_tsresol option: microseconds
    return shb.tobytes() + idb.tobytes()


def _packed_addresses(addresses: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(IP version per row, (n, 16) uint8 address bytes; IPv4 in the first 4 bytes)."""
    texts = np.asarray(addresses, dtype=object)
    if len(texts) == 0:
        return np.zeros(0, np.int64), np.zeros((0, 16), np.uint8)
    uniq, inverse = np.unique(texts.astype(str), return_inverse=True)
    parsed = [ipaddress.ip_address(a) for a in uniq.tolist()]
    versions = np.array([a.version for a in parsed], np.int64)
    packed = np.zeros((len(parsed), 16), np.uint8)
    for row, a in enumerate(parsed):  # loop over distinct addresses
        packed[row, : len(a.packed)] = np.frombuffer(a.packed, np.uint8)
    return versions[inverse], packed[inverse]


def _ones_complement_fold(total: np.ndarray) -> np.ndarray:
    total = total.astype(np.uint64)
    for _ in range(4):
        total = (total & np.uint64(0xFFFF)) + (total >> np.uint64(16))
    return total


def _word_sums(datagrams: Sequence[bytes], rows: np.ndarray) -> np.ndarray:
    """Sum of big-endian 16-bit words (odd length zero-padded) of the chosen datagrams."""
    padded = [datagrams[i] + b"\0" * (len(datagrams[i]) % 2) for i in rows.tolist()]
    words = np.frombuffer(b"".join(padded), dtype=">u2")
    counts = np.array([len(p) // 2 for p in padded], np.int64)
    sums = np.zeros(len(rows), np.uint64)
    nonempty = counts > 0
    if nonempty.any():
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
        sums[nonempty] = np.add.reduceat(words, starts, dtype=np.uint64)
    return sums


def _frame_heads(
    datagrams: Sequence[bytes],
    lengths: np.ndarray,
    src: tuple[np.ndarray, np.ndarray],
    dst: tuple[np.ndarray, np.ndarray],
    src_ports: np.ndarray,
    dst_ports: np.ndarray,
    version: int,
    rows: np.ndarray,
) -> np.ndarray:
    """(len(rows), 42 or 62) uint8: Ethernet + IP + UDP headers of the chosen datagrams."""
    ip = _IPV4 if version == 4 else _IPV6
    head = np.zeros(len(rows), np.dtype(_ETHERNET + ip + _UDP))
    n_bytes = lengths[rows]
    head["eth_dst"] = np.frombuffer(_DST_MAC, np.uint8)
    head["eth_src"] = np.frombuffer(_SRC_MAC, np.uint8)
    head["sport"] = src_ports[rows]
    head["dport"] = dst_ports[rows]
    head["udp_len"] = 8 + n_bytes
    src_bytes, dst_bytes = src[1][rows], dst[1][rows]
    if version == 4:
        head["ethertype"] = 0x0800
        head["ver_ihl"] = 0x45
        head["total_len"] = 28 + n_bytes
        head["ident"] = rows & 0xFFFF
        head["flags_frag"] = 0x4000  # don't fragment
        head["ttl"] = 64
        head["proto"] = 17
        head["src"] = src_bytes[:, :4].copy().view(">u4").ravel()
        head["dst"] = dst_bytes[:, :4].copy().view(">u4").ravel()
        ip_words = head.view(np.uint8).reshape(len(rows), -1)[:, 14:34].copy().view(">u2")
        head["ip_csum"] = ~_ones_complement_fold(ip_words.sum(axis=1, dtype=np.uint64)) & 0xFFFF
    else:
        head["ethertype"] = 0x86DD
        head["ver_tc_flow"] = 6 << 28
        head["payload_len"] = 8 + n_bytes
        head["next_header"] = 17
        head["hop_limit"] = 64
        head["src"] = src_bytes
        head["dst"] = dst_bytes
        addr_words = np.concatenate([src_bytes, dst_bytes], axis=1).copy().view(">u2")
        total = addr_words.sum(axis=1, dtype=np.uint64)
        total += 2 * (8 + n_bytes).astype(np.uint64) + 17  # pseudo-header length + UDP length
        total += src_ports[rows].astype(np.uint64) + dst_ports[rows].astype(np.uint64)
        total += _word_sums(datagrams, rows)
        csum = ~_ones_complement_fold(total) & np.uint64(0xFFFF)
        head["udp_csum"] = np.where(csum == 0, 0xFFFF, csum)
    return head.view(np.uint8).reshape(len(rows), -1)


def encode_capture_records(
    datagrams: Sequence[bytes],
    *,
    src_addresses: Sequence[str] | np.ndarray,
    dst_addresses: Sequence[str] | np.ndarray,
    src_ports: np.ndarray | Sequence[int],
    dst_ports: np.ndarray | Sequence[int],
    time_ms: np.ndarray | Sequence[int],
    pcapng: bool = False,
) -> bytes:
    """Packet records (pcap records or pcapng EPBs, no file header) of per-datagram addresses."""
    n = len(datagrams)
    lengths = np.fromiter((len(d) for d in datagrams), np.int64, n)
    src, dst = _packed_addresses(src_addresses), _packed_addresses(dst_addresses)
    if n and (len(src[0]) != n or len(dst[0]) != n):
        raise ValueError(f"{n} datagrams but {len(src[0])} / {len(dst[0])} addresses")
    mixed = np.flatnonzero(src[0] != dst[0])
    if len(mixed):
        raise ValueError(f"datagram {mixed[0]}: source and destination address families differ")
    for version, limit in _MAX_PAYLOAD.items():
        too_long = np.flatnonzero((src[0] == version) & (lengths > limit))
        if len(too_long):
            i = int(too_long[0])
            raise ValueError(f"datagram {i}: {lengths[i]} bytes exceed the IPv{version} maximum")
    sports = np.broadcast_to(np.asarray(src_ports, np.uint16), (n,))
    dports = np.broadcast_to(np.asarray(dst_ports, np.uint16), (n,))
    ms = np.broadcast_to(np.asarray(time_ms, np.int64), (n,))

    head_len = np.where(src[0] == 4, 42, 62)
    frame_len = head_len + lengths
    prefix_dtype = np.dtype(_EPB_HEAD if pcapng else _PCAP_RECORD)
    prefix = np.zeros(n, prefix_dtype)
    if pcapng:
        pad = -frame_len % 4
        block_len = prefix_dtype.itemsize + frame_len + pad + 4
        ts_us = (ms * 1000).astype(np.uint64)
        prefix["block_type"] = 6
        prefix["block_len"] = block_len
        prefix["ts_high"] = ts_us >> np.uint64(32)
        prefix["ts_low"] = ts_us & np.uint64(0xFFFFFFFF)
        prefix["cap_len"] = frame_len
        prefix["orig_len"] = frame_len
        tails = np.zeros((n, 8), np.uint8)  # up to 3 pad bytes, then the repeated block length
        tails[:, 4:] = block_len.astype("<u4").view(np.uint8).reshape(n, 4)
        tail_start = 4 - pad
    else:
        prefix["ts_sec"] = ms // 1000
        prefix["ts_usec"] = (ms % 1000) * 1000
        prefix["incl_len"] = frame_len
        prefix["orig_len"] = frame_len
        tails, tail_start = np.zeros((n, 0), np.uint8), np.zeros(n, np.int64)

    # All record heads (prefix + frame headers) laid end to end, in datagram order.
    prefix_bytes = prefix.view(np.uint8).reshape(n, -1)
    heads_len = prefix_dtype.itemsize + head_len
    head_off = np.zeros(n + 1, np.int64)
    np.cumsum(heads_len, out=head_off[1:])
    heads = np.zeros(int(head_off[-1]), np.uint8)
    for column in range(prefix_dtype.itemsize):  # loop over header byte columns
        heads[head_off[:-1] + column] = prefix_bytes[:, column]
    for version in (4, 6):
        rows = np.flatnonzero(src[0] == version)
        if len(rows) == 0:
            continue
        frame = _frame_heads(datagrams, lengths, src, dst, sports, dports, version, rows)
        base = head_off[rows] + prefix_dtype.itemsize
        for column in range(frame.shape[1]):
            heads[base + column] = frame[:, column]

    hv, tv = memoryview(heads.tobytes()), memoryview(tails.tobytes())
    width = tails.shape[1]
    parts: list[bytes | memoryview] = []
    for i, (a, b, t) in enumerate(
        zip(head_off[:-1].tolist(), head_off[1:].tolist(), tail_start.tolist(), strict=True)
    ):  # loop over datagrams: joins three byte strings each
        parts += (hv[a:b], datagrams[i], tv[i * width + t : (i + 1) * width])
    return b"".join(parts)


class CaptureEndpoints(TypedDict):
    """Where the written datagrams seem to come from and go to, and when they were received."""

    src_address: str
    dst_address: str
    src_port: int
    dst_port: int
    time_ms: np.ndarray | int


def _write(
    path: Path,
    datagrams: Sequence[bytes],
    *,
    pcapng: bool,
    src_address: str,
    dst_address: str,
    src_port: int,
    dst_port: int,
    time_ms: np.ndarray | int,
) -> int:
    n = len(datagrams)
    records = encode_capture_records(
        datagrams,
        src_addresses=np.full(n, src_address, dtype=object),
        dst_addresses=np.full(n, dst_address, dtype=object),
        src_ports=np.full(n, src_port, np.uint16),
        dst_ports=np.full(n, dst_port, np.uint16),
        time_ms=np.broadcast_to(np.asarray(time_ms, np.int64), (n,)),
        pcapng=pcapng,
    )
    data = (pcapng_file_header() if pcapng else pcap_file_header()) + records
    write_atomic(Path(path), lambda tmp: Path(tmp).write_bytes(data))
    return len(data)


def write_export_pcap(
    path: Path, datagrams: list[bytes], **endpoints: Unpack[CaptureEndpoints]
) -> int:
    """Write datagrams as a classic pcap (atomic); returns the file size in bytes."""
    return _write(path, datagrams, pcapng=False, **endpoints)


def write_export_pcapng(
    path: Path, datagrams: list[bytes], **endpoints: Unpack[CaptureEndpoints]
) -> int:
    """Write datagrams as a pcapng file (atomic); returns the file size in bytes."""
    return _write(path, datagrams, pcapng=True, **endpoints)
