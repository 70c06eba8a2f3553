"""nfdump 1.7.x binary file layout (LAYOUT_VERSION_2, V3 records), shared by reader and writer.

Checked against files written by Debian's nfcapd/nfdump 1.7.1 (little-endian, host order):
file header 40 bytes, data block header 12 bytes, then records {uint16 type, uint16 size, ...}.
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = 0xA50C
LAYOUT_VERSION_2 = 2
NFDVERSION_1_7_1 = 0x01070100  # what nfcapd 1.7.1 writes in `nfdversion`
# magic, version, nfdversion, created (time_t s), compression, encryption, appendixBlocks,
# creator, offAppendix, BlockSize, NumBlocks
FILE_HEADER = struct.Struct("<HHIqBBHIqII")
BLOCK_HEADER = struct.Struct("<IIHH")  # NumRecords, size (bytes after this header), type, flags
DATA_BLOCK_TYPE_3 = 3
FLAG_BLOCK_UNCOMPRESSED = 0x1

COMPRESSION_NAMES = {0: "none", 1: "LZO", 2: "BZ2", 3: "LZ4", 4: "ZSTD"}

# Record types (nfdump 1.7 nfxV3.h / exporter.h).
TYPE_LEGACY_COMMON = 1
TYPE_EXPORTER_INFO = 7
TYPE_EXPORTER_STAT = 8
TYPE_SAMPLER_LEGACY = 9
TYPE_COMMON_V2 = 10
TYPE_V3_FLOW = 11
TYPE_SAMPLER = 15
TYPE_IDENT = 0x8001
TYPE_STAT = 0x8002
MIN_BLOCK_RECORD_TYPE = 7  # record types a 1.7 data block holds (chain candidates);
MAX_BLOCK_RECORD_TYPE = 31  # lower ids are legacy (1.6) records or V3 element ids

V3_HEADER = struct.Struct("<HHBBBBHBB")  # type, size, numElements, engineType, engineID, align,
#                                          exporterID (sysid), flags, nfversion
V3_HEADER_BYTES = V3_HEADER.size  # 12
V3_FLAG_SAMPLED = 2  # counters were multiplied by nfcapd's default/overwrite sampler

# V3 elements: id and minimum length including the 4-byte element header.
EX_GENERIC_FLOW = 1  # msecFirst, msecLast, msecReceived, inPackets, inBytes (u64); srcPort,
EX_GENERIC_FLOW_BYTES = 52  # dstPort (u16); proto, tcpFlags, fwdStatus, srcTos (u8)
EX_IPV4_FLOW = 2
EX_IPV4_FLOW_BYTES = 12
EX_IPV6_FLOW = 3  # addresses as two host-order uint64 halves, upper half first
EX_IPV6_FLOW_BYTES = 36
EX_FLOW_MISC = 4  # input, output (u32); srcMask, dstMask, dir, dstTos, biFlowDir, endReason, ...
EX_FLOW_MISC_BYTES = 20
EX_IP_RECEIVED_V4 = 12
EX_IP_RECEIVED_V6 = 13

# Offsets of fields from the start of their element (element header included).
OFF_MSEC_FIRST, OFF_MSEC_LAST, OFF_MSEC_RECEIVED = 4, 12, 20
OFF_IN_PACKETS, OFF_IN_BYTES = 28, 36
OFF_SRC_PORT, OFF_DST_PORT, OFF_PROTO = 44, 46, 48
OFF_MISC_DIR = 14

EXPORTER_INFO = struct.Struct("<HHI16sHHI")  # type, size, version, ip[16], sa_family, sysid, id
SAMPLER = struct.Struct("<HHHHqII")  # type, size, sysid, algorithm, id, packetInterval, space
SAMPLER_LEGACY = struct.Struct("<HHiIHH")  # type, size, id, interval, mode, sysid
SAMPLER_DEFAULT_ID = -2  # nfcapd -s N
SAMPLER_OVERWRITE_ID = -3  # nfcapd -s -N
AF_INET, AF_INET6 = 2, 10

# Stat record of the appendix: 15 counters, first/last seen (ms), sequence failures (all u64).
STAT_RECORD = struct.Struct("<HH18Q")

# Packed V3 flow records as the writer lays them out (sizes are multiples of 4).
_V3_HEAD = [
    ("type", "<u2"),
    ("size", "<u2"),
    ("num_elements", "u1"),
    ("engine_type", "u1"),
    ("engine_id", "u1"),
    ("align", "u1"),
    ("exporter_id", "<u2"),
    ("flags", "u1"),
    ("nfversion", "u1"),
]
_GENERIC = [
    ("g_type", "<u2"),
    ("g_len", "<u2"),
    ("msec_first", "<u8"),
    ("msec_last", "<u8"),
    ("msec_received", "<u8"),
    ("in_packets", "<u8"),
    ("in_bytes", "<u8"),
    ("src_port", "<u2"),
    ("dst_port", "<u2"),
    ("proto", "u1"),
    ("tcp_flags", "u1"),
    ("fwd_status", "u1"),
    ("src_tos", "u1"),
]
_MISC = [
    ("m_type", "<u2"),
    ("m_len", "<u2"),
    ("input", "<u4"),
    ("output", "<u4"),
    ("src_mask", "u1"),
    ("dst_mask", "u1"),
    ("dir", "u1"),
    ("dst_tos", "u1"),
    ("bi_flow_dir", "u1"),
    ("end_reason", "u1"),
    ("rev_tcp_flags", "u1"),
    ("fill", "u1"),
]
_RECV4 = [("r_type", "<u2"), ("r_len", "<u2"), ("received_ip", "<u4")]
_RECV6 = [("r_type", "<u2"), ("r_len", "<u2"), ("received_ip_hi", "<u8"), ("received_ip_lo", "<u8")]
_IPV4 = [("a_type", "<u2"), ("a_len", "<u2"), ("src_v4", "<u4"), ("dst_v4", "<u4")]
_IPV6 = [
    ("a_type", "<u2"),
    ("a_len", "<u2"),
    ("src_v6_hi", "<u8"),
    ("src_v6_lo", "<u8"),
    ("dst_v6_hi", "<u8"),
    ("dst_v6_lo", "<u8"),
]


def v3_record_dtype(ip_version: int, exporter_ip_version: int) -> np.dtype:
    """Packed dtype of a writer V3 record: header, generic, IPv4/IPv6, flowMisc, ipReceived."""
    addr = _IPV4 if ip_version == 4 else _IPV6
    recv = _RECV4 if exporter_ip_version == 4 else _RECV6
    return np.dtype(_V3_HEAD + _GENERIC + addr + _MISC + recv)
