"""What every flow reader returns: normalised flow columns, what was set aside, and counters.

`FLOW_SCHEMA` is the one flow layout all wire formats decode to (raw counters and the sampling
interval kept apart, Akvorado-style); `records_in == records_decoded + records_quarantined` holds
for every `DecodeResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

FLOW_SCHEMA = pa.schema(
    [
        ("observation_domain_id", pa.uint32()),
        ("flow_start_ms", pa.int64()),
        ("flow_end_ms", pa.int64()),
        ("ip_version", pa.uint8()),
        ("src_v4", pa.uint32()),
        ("dst_v4", pa.uint32()),
        ("src_v6_hi", pa.uint64()),
        ("src_v6_lo", pa.uint64()),
        ("dst_v6_hi", pa.uint64()),
        ("dst_v6_lo", pa.uint64()),
        ("protocol", pa.uint8()),
        ("src_port", pa.uint16()),
        ("dst_port", pa.uint16()),
        ("flow_direction", pa.uint8()),
        ("octets", pa.uint64()),
        ("packets", pa.uint64()),
        ("sampling_interval", pa.uint32()),
    ]
)


@dataclass
class QuarantineEntry:
    """Bytes set aside: where they were (`offset` in the source file), why, and how many records.

    `domain` (observation domain / v9 source id / v5 engine) and `template_id` where known.
    """

    source: str
    offset: int
    length: int
    reason: str
    payload: bytes
    records: int = 1
    domain: int | None = None
    template_id: int | None = None


@dataclass
class DecodeStats:
    """Counters of one decode call; `records_in == records_decoded + records_quarantined`."""

    records_in: int = 0
    records_decoded: int = 0
    records_quarantined: int = 0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    sampling_intervals: dict[int, int] = field(default_factory=dict)
    messages: int = 0
    sequence_gaps: int = 0
    options_records: int = 0
    # second rows of decoded records (RFC 5103 reverse / responder direction): rows = decoded + this
    reverse_rows: int = 0
    records_by_version: dict[int, int] = field(default_factory=dict)
    # one entry per stream: version, domain, messages, gaps, missing, unit (see _sequence_stats)
    sequence: list[dict] = field(default_factory=list)
    # trust counters (ingest report keys of the same name; see ARCHITECTURE §2.1)
    template_redefinitions: int = 0  # same key, another definition
    records_second_pass: int = 0  # decoded with a template that came after them
    records_default_sampling: int = 0  # decoded with the registry's default_sampling_interval
    invalid_sampling_announcements: int = 0  # options records announcing N = 0 or N > 2^31
    duplicate_datagrams: int = 0  # the same export datagram captured again, decoded once
    trailing_bytes: int = 0  # bytes after a data set's last whole record (padding included)
    records_estimated_unsplittable: int = 0  # records of never-decoded sets, from sequence numbers


TRUST_COUNTERS = (
    "template_redefinitions",
    "records_second_pass",
    "records_default_sampling",
    "invalid_sampling_announcements",
    "duplicate_datagrams",
    "trailing_bytes",
    "records_estimated_unsplittable",
)


@dataclass
class DecodeResult:
    flows: pa.Table
    quarantine: list[QuarantineEntry]
    stats: DecodeStats
