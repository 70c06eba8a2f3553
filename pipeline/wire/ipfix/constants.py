"""IPFIX (RFC 7011) numbers: headers, set ids, Information Element ids, simulator templates."""

from __future__ import annotations

import struct

IPFIX_VERSION = 10
MESSAGE_HEADER = struct.Struct(">HHIII")  # version, length, export time s, sequence, domain id
SET_HEADER = struct.Struct(">HH")  # set id, set length
MESSAGE_HEADER_BYTES = MESSAGE_HEADER.size  # 16
SET_HEADER_BYTES = SET_HEADER.size  # 4
MAX_MESSAGE_BYTES = 65535

TEMPLATE_SET_ID = 2
OPTIONS_TEMPLATE_SET_ID = 3
MIN_DATA_SET_ID = 256
VARIABLE_LENGTH = 65535  # field length meaning "length carried in the record" (RFC 7011 §7)
ENTERPRISE_BIT = 0x8000

# Information Element ids (IANA IPFIX registry) the normaliser reads.
IE_OCTET_DELTA_COUNT = 1
IE_PACKET_DELTA_COUNT = 2
IE_PROTOCOL_IDENTIFIER = 4
IE_SOURCE_TRANSPORT_PORT = 7
IE_SOURCE_IPV4_ADDRESS = 8
IE_DESTINATION_TRANSPORT_PORT = 11
IE_DESTINATION_IPV4_ADDRESS = 12
IE_FLOW_END_SYS_UP_TIME = 21
IE_FLOW_START_SYS_UP_TIME = 22
IE_SOURCE_IPV6_ADDRESS = 27
IE_DESTINATION_IPV6_ADDRESS = 28
IE_SAMPLING_INTERVAL = 34
IE_SAMPLING_ALGORITHM = 35
IE_SAMPLER_ID = 48
IE_SAMPLER_RANDOM_INTERVAL = 50
IE_IP_VERSION = 60
IE_FLOW_DIRECTION = 61
IE_OCTET_TOTAL_COUNT = 85
IE_PACKET_TOTAL_COUNT = 86
IE_TEMPLATE_ID = 145
IE_OBSERVATION_DOMAIN_ID = 149
IE_FLOW_START_SECONDS = 150
IE_FLOW_END_SECONDS = 151
IE_FLOW_START_MILLISECONDS = 152
IE_FLOW_END_MILLISECONDS = 153
IE_FLOW_START_MICROSECONDS = 154
IE_FLOW_END_MICROSECONDS = 155
IE_FLOW_START_NANOSECONDS = 156
IE_FLOW_END_NANOSECONDS = 157
IE_SYSTEM_INIT_TIME_MILLISECONDS = 160
IE_SELECTOR_ID = 302
IE_SELECTOR_ALGORITHM = 304
IE_SAMPLING_PACKET_INTERVAL = 305
IE_SAMPLING_PACKET_SPACE = 306
IE_SAMPLING_SIZE = 309
IE_SAMPLING_POPULATION = 310

NTP_UNIX_OFFSET_S = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01

# The simulator's templates (ARCHITECTURE §2): (IE id, length in bytes), in record order.
TEMPLATE_ID_V4 = 256
TEMPLATE_ID_V6 = 257
TEMPLATE_ID_SAMPLING_OPTIONS = 258
MS_TIME_FIELDS: tuple[tuple[int, int], ...] = (
    (IE_FLOW_START_MILLISECONDS, 8),
    (IE_FLOW_END_MILLISECONDS, 8),
)
ADDRESS_FIELDS_V4: tuple[tuple[int, int], ...] = (
    (IE_SOURCE_IPV4_ADDRESS, 4),
    (IE_DESTINATION_IPV4_ADDRESS, 4),
)
ADDRESS_FIELDS_V6: tuple[tuple[int, int], ...] = (
    (IE_SOURCE_IPV6_ADDRESS, 16),
    (IE_DESTINATION_IPV6_ADDRESS, 16),
)
# ports to packet count: the part of a record the IPFIX and NetFlow v9 simulator templates share
PORTS_TO_COUNTERS: tuple[tuple[int, int], ...] = (
    (IE_SOURCE_TRANSPORT_PORT, 2),
    (IE_DESTINATION_TRANSPORT_PORT, 2),
    (IE_PROTOCOL_IDENTIFIER, 1),
    (IE_FLOW_DIRECTION, 1),
    (IE_OCTET_DELTA_COUNT, 8),
    (IE_PACKET_DELTA_COUNT, 8),
)
FIELDS_V4: tuple[tuple[int, int], ...] = (
    *MS_TIME_FIELDS,
    *ADDRESS_FIELDS_V4,
    *PORTS_TO_COUNTERS,
    (IE_SELECTOR_ID, 4),
)
FIELDS_V6: tuple[tuple[int, int], ...] = (
    *MS_TIME_FIELDS,
    *ADDRESS_FIELDS_V6,
    *PORTS_TO_COUNTERS,
    (IE_SELECTOR_ID, 4),
)
SAMPLING_OPTIONS_SCOPE: tuple[tuple[int, int], ...] = ((IE_SELECTOR_ID, 4),)
SAMPLING_OPTIONS_FIELDS: tuple[tuple[int, int], ...] = (
    (IE_SAMPLING_PACKET_INTERVAL, 4),
    (IE_SAMPLING_PACKET_SPACE, 4),
)

# Quarantine reasons (stable strings: they are keys of the ingest report).
REASON_TRUNCATED_MESSAGE = "truncated message"
REASON_SHORT_MESSAGE = "message length < 16"
REASON_UNKNOWN_VERSION = "unknown version"
REASON_BAD_SET_LENGTH = "bad set length"
REASON_RESERVED_SET_ID = "reserved set id"
REASON_TEMPLATE_UNKNOWN = "template unknown"
REASON_BAD_TEMPLATE = "bad template"
REASON_IMPLAUSIBLE_FIELD_LENGTH = "implausible field length"
REASON_RECORD_LENGTH_ZERO = "record length 0"
REASON_RECORD_OVERRUNS_SET = "record overruns set"
REASON_SAMPLING_MISSING = "sampling rate missing"
REASON_NO_ADDRESS = "no IP address fields"
# trust under faulty inputs (issue 8): unsplittable sets, trailing bytes, counters, sampling
REASON_TEMPLATE_NEVER_SEEN = "template never seen (record count estimated)"
REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED = "template never seen (record count unknown)"
REASON_SET_TRAILING_BYTES = "non-zero bytes after a set's last record"
REASON_ZERO_LENGTH_COUNTER = "zero-length counter field"
REASON_INVALID_SAMPLING = "invalid sampling announcement"
MAX_SAMPLING_INTERVAL = 2**31  # an announced 1-in-N above this (or N = 0) is not a rate

# NetFlow v9 (RFC 3954) and v5 (Cisco) export packets.
NETFLOW_V9_VERSION = 9
NETFLOW_V5_VERSION = 5
V9_HEADER = struct.Struct(">HHIIII")  # version, count, sysUptime ms, unix secs, sequence, source id
V9_HEADER_BYTES = V9_HEADER.size  # 20
V9_TEMPLATE_FLOWSET_ID = 0
V9_OPTIONS_TEMPLATE_FLOWSET_ID = 1
V9_OPTIONS_TEMPLATE_HEADER = struct.Struct(">HHH")  # template id, scope length B, option length B
V9_VENDOR_BIT = 0x8000  # field types >= 32768 are vendor-specific (no enterprise number follows)
V9_SCOPE_SYSTEM, V9_SCOPE_INTERFACE, V9_SCOPE_LINE_CARD, V9_SCOPE_CACHE, V9_SCOPE_TEMPLATE = (
    1,
    2,
    3,
    4,
    5,
)
IE_SAMPLER_MODE = 49  # FLOW_SAMPLER_MODE (v9)
V5_HEADER_BYTES = 24
V5_RECORD_BYTES = 48
V5_RECORDS_PER_DATAGRAM = 30
V5_SAMPLING_INTERVAL_MASK = 0x3FFF  # low 14 bits; top 2 bits = sampling mode
V5_SAMPLING_MODE_SHIFT = 14

# Exporter restart detection (see pipeline.wire.streams).
RESTART_UPTIME_TOLERANCE_MS = 5_000  # sysUptime may step back this much (reordered datagrams)
UPTIME_WRAP_TOLERANCE_MS = 60_000  # boot time moving by 2^32 ms ± this = 32-bit uptime wrap
RESTART_SEQUENCE_TOLERANCE = 1_000  # IPFIX: records a sequence number may step back
RESTART_MIN_EXPORT_GAP_MS = 10_000  # IPFIX: a reboot takes longer (a template stamped 1 s late)

REASON_EMPTY_DATAGRAM = "empty datagram"
REASON_SHORT_DATAGRAM = "datagram shorter than its header"
REASON_TRAILING_BYTES = "bytes after message end"
REASON_DATAGRAM_TOO_LONG = "datagram too long"
REASON_V5_COUNT_MISMATCH = "v5 count does not match length"

# ---------------------------------------------------------------- vendor information elements
# (ARCHITECTURE §2.2; mapping and precedence in pipeline.wire.ipfix.vendor)
IE_POST_OCTET_DELTA_COUNT = 23
IE_POST_PACKET_DELTA_COUNT = 24
IE_POST_NAT_SOURCE_IPV4_ADDRESS = 225
IE_POST_NAT_DESTINATION_IPV4_ADDRESS = 226
IE_POST_NAPT_SOURCE_TRANSPORT_PORT = 227
IE_POST_NAPT_DESTINATION_TRANSPORT_PORT = 228
IE_INITIATOR_OCTETS = 231  # NSEL (v9) NF_F_FWD_FLOW_DELTA_BYTES
IE_RESPONDER_OCTETS = 232  # NSEL (v9) NF_F_REV_FLOW_DELTA_BYTES
IE_POST_NAT_SOURCE_IPV6_ADDRESS = 281
IE_POST_NAT_DESTINATION_IPV6_ADDRESS = 282
IE_INITIATOR_PACKETS = 298
IE_RESPONDER_PACKETS = 299
IE_LAYER2_OCTET_DELTA_COUNT = 352
IE_LAYER2_OCTET_TOTAL_COUNT = 353
IE_STA_IPV4_ADDRESS = 366  # wireless station (staMacAddress 365 is not attributable)

# Enterprise-specific IEs are kept under a key PEN_BASE[pen] | element id (else -1, skipped).
PEN_REVERSE = 29305  # RFC 5103: reverse direction of the same element id
PEN_VMWARE = 6876  # VMware NSX/VDS: tenant (inner, tunnelled) addresses
PEN_BASE = {PEN_REVERSE: 1 << 16, PEN_VMWARE: 2 << 16}
REVERSE = PEN_BASE[PEN_REVERSE]
IE_TENANT_PROTOCOL = PEN_BASE[PEN_VMWARE] | 880
IE_TENANT_SOURCE_IPV4 = PEN_BASE[PEN_VMWARE] | 881
IE_TENANT_DESTINATION_IPV4 = PEN_BASE[PEN_VMWARE] | 882
IE_TENANT_SOURCE_IPV6 = PEN_BASE[PEN_VMWARE] | 883
IE_TENANT_DESTINATION_IPV6 = PEN_BASE[PEN_VMWARE] | 884
IE_TENANT_SOURCE_PORT = PEN_BASE[PEN_VMWARE] | 886
IE_TENANT_DESTINATION_PORT = PEN_BASE[PEN_VMWARE] | 887


def enterprise_ie(pen: int, element_id: int) -> int:
    """Key of an enterprise-specific IE the decoder reads, or -1 (value skipped)."""
    base = PEN_BASE.get(pen)
    return -1 if base is None else base | (element_id & 0x7FFF)


_VENDOR_COUNTERS = (
    IE_POST_OCTET_DELTA_COUNT,
    IE_POST_PACKET_DELTA_COUNT,
    IE_INITIATOR_OCTETS,
    IE_RESPONDER_OCTETS,
    IE_INITIATOR_PACKETS,
    IE_RESPONDER_PACKETS,
    IE_LAYER2_OCTET_DELTA_COUNT,
    IE_LAYER2_OCTET_TOTAL_COUNT,
)
_REVERSED_COUNTERS = (
    IE_OCTET_DELTA_COUNT,
    IE_PACKET_DELTA_COUNT,
    IE_OCTET_TOTAL_COUNT,
    IE_PACKET_TOTAL_COUNT,
    IE_POST_OCTET_DELTA_COUNT,
    IE_POST_PACKET_DELTA_COUNT,
    IE_LAYER2_OCTET_DELTA_COUNT,
    IE_LAYER2_OCTET_TOTAL_COUNT,
)
# every vendor volume IE, forward and reverse (a zero-length one refuses its template)
VENDOR_VOLUME_IES = frozenset(_VENDOR_COUNTERS) | frozenset(
    REVERSE | ie for ie in _REVERSED_COUNTERS
)
# encodings accepted for the vendor IEs (merged into templates.ACCEPTED_LENGTHS)
VENDOR_ACCEPTED_LENGTHS: dict[int, frozenset[int]] = {
    **{ie: frozenset(range(1, 9)) for ie in _VENDOR_COUNTERS},
    **{REVERSE | ie: frozenset(range(1, 9)) for ie in _REVERSED_COUNTERS},
    IE_POST_NAT_SOURCE_IPV4_ADDRESS: frozenset({4}),
    IE_POST_NAT_DESTINATION_IPV4_ADDRESS: frozenset({4}),
    IE_POST_NAT_SOURCE_IPV6_ADDRESS: frozenset({16}),
    IE_POST_NAT_DESTINATION_IPV6_ADDRESS: frozenset({16}),
    IE_POST_NAPT_SOURCE_TRANSPORT_PORT: frozenset({1, 2}),
    IE_POST_NAPT_DESTINATION_TRANSPORT_PORT: frozenset({1, 2}),
    IE_STA_IPV4_ADDRESS: frozenset({4}),
    IE_TENANT_PROTOCOL: frozenset({1}),
    IE_TENANT_SOURCE_IPV4: frozenset({4}),
    IE_TENANT_DESTINATION_IPV4: frozenset({4}),
    IE_TENANT_SOURCE_IPV6: frozenset({16}),
    IE_TENANT_DESTINATION_IPV6: frozenset({16}),
    IE_TENANT_SOURCE_PORT: frozenset({1, 2}),
    IE_TENANT_DESTINATION_PORT: frozenset({1, 2}),
}
# a total counter's first record of a flow: counted in full only if the flow started in the session
TOTAL_COUNT_STATE_HORIZON_MS = 2 * 3600 * 1000  # last totals of a flow kept this long after its end

REASON_NO_VOLUME = "no volume field"
REASON_LAYER2_VOLUME_ONLY = "layer-2 volume only"
REASON_TOTAL_NO_BASELINE = "total count without baseline"
