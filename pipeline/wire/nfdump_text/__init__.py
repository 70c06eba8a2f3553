"""Readers of nfdump 1.7.1 text exports (`nfdump -r F -o csv` / `-o json`, with or without -q).

Parsed with numpy (line splitting) and polars (fields), never line by line in Python. Flows come
out in FLOW_SCHEMA grouped by router address (csv `ra`, json `ip4_router`/`ip6_router`), with
observation_domain_id 0 and sampling_interval 0 (text exports carry neither: the caller applies
the exporter's configured default or quarantines).

Times: nfdump prints them in its local time zone with no offset; they are read as UTC, so run
nfdump with TZ=UTC. JSON `first`/`last` carry milliseconds and are exact. CSV `ts`/`te` are
truncated to the second: flow_start_ms = ts (0–999 ms early), flow_end_ms = max(te, ts + td), td
being the duration printed with ms; so the duration is kept where it is known and flow_end_ms lies
in te's second, never after the true end. (nfdump prints td as 18446744073709552.000 when the
exporter's end precedes its start; flow_end_ms is then te.)
Protocols: csv prints nfdump's short names; "IDPR" is printed for both 35 and 38 and is read as 35.
ICMP (1) and ICMPv6 (58) flows get src_port = dst_port = 0 (docs/ARCHITECTURE.md: 0 when the
protocol has no ports), not nfdump's icmp type * 256 + code.
JSON records with "sampled" : 1 (counters multiplied by nfcapd's `-s` rate, which the text does not
give) are quarantined; csv has no such column.
Malformed lines/objects are quarantined (offset = byte offset of the line or of the object's `{`),
grouped into runs of consecutive lines with one reason, in an extra entry with exporter_address ""
(present only when non-empty; it also holds flows without a router address). Header, summary
block and "No matching flows" are not flows.
JSON resynchronises at nfdump's layout: an object runs from a `{` line to the first `}`/`},` line
before the next `{` line (else it is malformed up to that `{`); a run of lines outside objects is
one bad piece. So a bad piece costs one record and never the objects around it.

Speed: a fast path parses well-formed exports whole (csv: polars read_csv with fixed column types;
json: DuckDB read_json) and falls back to the careful line-wise path above for the whole buffer as
soon as anything is off (odd bytes, a bad value, a missing key, a scaled or non-flow record…), so
both give the same DecodeResult; `fast=False` forces the careful path.

Modules: `csv_export` and `json_export` (one reader each: fast and careful path), `common` (line
splitting, field and address parsing, the fast/careful switch), `results` (grouping by router,
set-aside runs).
"""

from __future__ import annotations

from pipeline.wire.nfdump_text.common import NO_FLOWS_LINE, REASON_BAD_BYTES, REASON_BAD_VALUE
from pipeline.wire.nfdump_text.csv_export import (
    CSV_COLUMNS_1_7_1,
    CSV_REQUIRED,
    PROTO_NUMBER,
    REASON_FIELD_COUNT,
    REASON_MISSING_COLUMN,
    decode_nfdump_csv,
    read_nfdump_csv,
)
from pipeline.wire.nfdump_text.json_export import (
    REASON_BAD_OBJECT,
    REASON_MISSING_KEY,
    REASON_NOT_FLOW,
    REASON_SCALED_UNKNOWN,
    decode_nfdump_json,
    read_nfdump_json,
)
from pipeline.wire.nfdump_text.results import NfdumpExporterFlows

__all__ = [
    "CSV_COLUMNS_1_7_1",
    "CSV_REQUIRED",
    "NO_FLOWS_LINE",
    "PROTO_NUMBER",
    "REASON_BAD_BYTES",
    "REASON_BAD_OBJECT",
    "REASON_BAD_VALUE",
    "REASON_FIELD_COUNT",
    "REASON_MISSING_COLUMN",
    "REASON_MISSING_KEY",
    "REASON_NOT_FLOW",
    "REASON_SCALED_UNKNOWN",
    "NfdumpExporterFlows",
    "decode_nfdump_csv",
    "decode_nfdump_json",
    "read_nfdump_csv",
    "read_nfdump_json",
]
