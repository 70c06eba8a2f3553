"""NetFlow v9 / v5 next to IPFIX: round trips, sampling, restarts, sequences, hostile input.

Packets are hand-built here with struct (independent of the decoder); the round trips go through
pipeline.wire.netflow_v9 and compare with the IPFIX decode of the same flows.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow.compute as pc

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.decoder import FlowDecoder, IpfixDecoder
from pipeline.wire.ipfix.writer import FLOW_COLUMNS, encode_ipfix_stream
from pipeline.wire.netflow_v5 import encode_v5_datagrams
from pipeline.wire.netflow_v9 import encode_v9_datagrams
from pipeline.wire.records import FLOW_SCHEMA
from tests.support.fuzz_corpus import sample_flows

EXPORT_S = 1_717_000_000
EXPORT_MS = EXPORT_S * 1000
UPTIME_MS = 3_600_000
PCAP_OVERHEAD = 16 + 42  # pcap record header + Ethernet/IPv4/UDP headers before each payload


# --------------------------------------------------------------------------- builders
def batch(grams: list[bytes]) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """Datagrams as (payload, starts, lengths, file offsets) laid out like a pcap file."""
    lengths = np.array([len(g) for g in grams], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    file_offsets = 24 + PCAP_OVERHEAD * (np.arange(len(grams)) + 1) + starts
    return b"".join(grams), starts, lengths, file_offsets


def decode_grams(decoder: FlowDecoder, grams: list[bytes], source: str = "cap.pcap"):
    payload, starts, lengths, offsets = batch(grams)
    return decoder.decode_datagrams(payload, starts, lengths, offsets, source)


def v9(flowsets, *, seq=0, source_id=7, uptime=UPTIME_MS, secs=EXPORT_S, count=None) -> bytes:
    n = len(flowsets) if count is None else count
    return struct.pack(">HHIIII", 9, n, uptime, secs, seq, source_id) + b"".join(flowsets)


def flowset(flowset_id: int, body: bytes, length: int | None = None) -> bytes:
    body += b"\0" * (-(len(body) + 4) % 4)
    return struct.pack(">HH", flowset_id, len(body) + 4 if length is None else length) + body


def v9_template(tid: int, fields: list[tuple[int, int]]) -> bytes:
    return struct.pack(">HH", tid, len(fields)) + b"".join(struct.pack(">HH", *f) for f in fields)


# src v4, dst v4, sport, dport, proto, octets, packets, FIRST/LAST_SWITCHED, SAMPLING_INTERVAL
FIELDS_A = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4), (22, 4), (21, 4), (34, 4)]
# the same with addresses and counters swapped: decoding with the wrong one is visible
FIELDS_B = [(12, 4), (8, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4), (22, 4), (21, 4), (34, 4)]
FMT_AB = ">IIHHBIIIII"  # 33 bytes


def rec_ab(a, b, sport, dport, proto, c, d, first, last, interval) -> bytes:
    return struct.pack(FMT_AB, a, b, sport, dport, proto, c, d, first, last, interval)


def v5(
    records: list[bytes],
    *,
    seq=0,
    uptime=UPTIME_MS,
    secs=EXPORT_S,
    engine=(1, 2),
    sampling=0,
    count=None,
) -> bytes:
    n = len(records) if count is None else count
    head = struct.pack(">HHIIIIBBH", 5, n, uptime, secs, 0, seq, *engine, sampling)
    return head + b"".join(records)


def v5_record(src, dst, sport, dport, proto, octets, packets, first, last) -> bytes:
    head = struct.pack(">IIIHHIIII", src, dst, 0, 1, 2, packets, octets, first, last)
    return head + struct.pack(">HHBBBBHHBBH", sport, dport, 0, 0, proto, 0, 0, 0, 0, 0, 0)


def ipfix(sets: list[bytes], *, seq=0, domain=3, secs=EXPORT_S) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), secs, seq, domain) + body


def ipfix_set(set_id: int, body: bytes) -> bytes:
    return struct.pack(">HH", set_id, 4 + len(body)) + body


def flows_for_test(n: int, seed: int, ipv6_share: float) -> dict[str, np.ndarray]:
    """Flows of the last hour before the export (inside the exporter's uptime)."""
    return sample_flows(n, seed, ipv6_share, start_ms=(EXPORT_MS - 3_000_000, EXPORT_MS - 60_000))


COMPARED = [*FLOW_COLUMNS, "sampling_interval"]


def sorted_rows(table, columns=COMPARED) -> list[tuple]:
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True), key=str)


def accounting_holds(result) -> bool:
    s = result.stats
    return (
        s.records_in == s.records_decoded + s.records_quarantined
        and sum(s.quarantine_by_reason.values()) == s.records_quarantined
        and sum(q.records for q in result.quarantine) == s.records_quarantined
        and result.flows.num_rows == s.records_decoded + s.reverse_rows  # RFC 5103: 2 rows
        and result.flows.schema == FLOW_SCHEMA
    )


# --------------------------------------------------------------------------- round trips
def test_v9_round_trip_equals_ipfix_decode_of_the_same_flows():
    flows = flows_for_test(700, seed=11, ipv6_share=0.3)
    grams, next_seq = encode_v9_datagrams(
        flows,
        source_id=42,
        sampling_interval=1000,
        export_time_s=EXPORT_S,
        sys_uptime_ms=UPTIME_MS,
        sequence_start=5,
        template_refresh_datagrams=7,
    )
    assert next_seq == 5 + len(grams)  # v9 sequence counts export packets
    v9_result = decode_grams(FlowDecoder("r1", None), grams)
    buf, _ = encode_ipfix_stream(
        flows, observation_domain_id=42, sampling_interval=1000, export_time_s=EXPORT_S
    )
    ipfix_result = IpfixDecoder("r1", None).decode(buf, "r1.ipfix")
    assert v9_result.quarantine == [] and accounting_holds(v9_result)
    assert v9_result.flows.num_rows == ipfix_result.flows.num_rows == 700
    assert sorted_rows(v9_result.flows) == sorted_rows(ipfix_result.flows)
    assert v9_result.stats.records_by_version == {9: 700}
    assert v9_result.stats.sampling_intervals == {1000: 700}
    assert v9_result.stats.sequence == [
        {
            "version": 9,
            "domain": 42,
            "messages": len(grams),
            "gaps": 0,
            "missing": 0,
            "unit": "packets",
            "restarts": 0,
        }
    ]
    assert set(v9_result.flows.column("observation_domain_id").to_pylist()) == {42}


def test_v5_round_trip_equals_ipfix_decode_of_the_same_flows():
    flows = flows_for_test(95, seed=12, ipv6_share=0.0)
    flows["octets"] %= np.uint64(2**32)
    grams, next_seq = encode_v5_datagrams(
        flows,
        engine_type=1,
        engine_id=2,
        sampling_interval=64,
        export_time_s=EXPORT_S,
        sys_uptime_ms=UPTIME_MS,
        sequence_start=100,
    )
    assert len(grams) == 4 and next_seq == 195  # 30 + 30 + 30 + 5 flows
    v5_result = decode_grams(FlowDecoder("r2", None), grams)
    buf, _ = encode_ipfix_stream(
        flows, observation_domain_id=1, sampling_interval=64, export_time_s=EXPORT_S
    )
    ipfix_result = IpfixDecoder("r2", None).decode(buf, "r2.ipfix")
    assert v5_result.quarantine == [] and accounting_holds(v5_result)
    no_direction = [c for c in COMPARED if c != "flow_direction"]
    assert sorted_rows(v5_result.flows, no_direction) == sorted_rows(
        ipfix_result.flows, no_direction
    )
    assert v5_result.flows.column("flow_direction").null_count == 95  # v5 has no direction
    assert v5_result.stats.records_by_version == {5: 95}
    assert set(v5_result.flows.column("observation_domain_id").to_pylist()) == {1 << 8 | 2}
    assert v5_result.stats.sequence == [
        {
            "version": 5,
            "domain": 258,
            "messages": 4,
            "gaps": 0,
            "missing": 0,
            "unit": "flows",
            "restarts": 0,
        }
    ]


# --------------------------------------------------------------------------- sampling
def sampler_options(samplers: list[tuple[int, int]], tid: int = 300) -> list[bytes]:
    """v9 options template (scope system) + one record per (FLOW_SAMPLER_ID, interval)."""
    body = struct.pack(">HHH", tid, 4, 12) + struct.pack(">HHHHHHHH", 1, 4, 48, 1, 49, 1, 50, 4)
    records = b"".join(struct.pack(">IBBI", 0, sid, 2, n) for sid, n in samplers)
    return [flowset(1, body), flowset(tid, records)]


def test_v9_sampler_options_give_each_record_its_interval():
    tpl = flowset(0, v9_template(260, [(8, 4), (12, 4), (1, 4), (2, 4), (48, 1)]))
    recs = b"".join(
        struct.pack(">IIIIB", 0x0A000001 + i, 0x0A0000FF, 1000 * (i + 1), i + 1, sid)
        for i, sid in enumerate([1, 2, 3])
    )
    grams = [
        v9([*sampler_options([(1, 100), (2, 1000)]), tpl], seq=0),
        v9([flowset(260, recs)], seq=1),
    ]
    result = decode_grams(FlowDecoder("s", 50), grams)
    assert result.flows.column("sampling_interval").to_pylist() == [100, 1000, 50]  # 3 → default
    assert result.stats.options_records == 2
    no_default = decode_grams(FlowDecoder("s", None), grams)
    assert no_default.flows.column("sampling_interval").to_pylist() == [100, 1000]
    (q,) = no_default.quarantine
    assert (q.reason, q.records) == (C.REASON_SAMPLING_MISSING, 1)
    assert accounting_holds(no_default) and no_default.stats.records_in == 3


def test_v5_header_sampling_zero_uses_default_else_is_quarantined():
    recs = [v5_record(0x0A000001, 0x0A000002, 1, 2, 6, 500, 5, UPTIME_MS - 10, UPTIME_MS - 5)] * 3
    grams = [v5(recs, sampling=(1 << 14) | 256), v5(recs, seq=3, sampling=0)]
    with_default = decode_grams(FlowDecoder("v5", 10), grams)
    assert with_default.flows.column("sampling_interval").to_pylist() == [256] * 3 + [10] * 3
    assert with_default.flows.column("flow_start_ms").to_pylist()[0] == EXPORT_MS - 10
    without = decode_grams(FlowDecoder("v5", None), grams)
    assert without.flows.num_rows == 3
    (q,) = without.quarantine
    second_offset = 24 + 2 * PCAP_OVERHEAD + len(grams[0])
    assert (q.reason, q.records, q.offset) == (C.REASON_SAMPLING_MISSING, 3, second_offset + 24)
    assert q.payload == b"".join(recs)
    assert accounting_holds(without) and without.stats.records_in == 6


# --------------------------------------------------------------------------- templates, sessions
def test_v9_restart_drops_templates_and_second_pass_uses_the_new_one():
    first_a = rec_ab(
        0x01010101, 0x02020202, 10, 20, 6, 700, 7, UPTIME_MS - 9000, UPTIME_MS - 8000, 10
    )
    before = [
        v9([flowset(0, v9_template(256, FIELDS_A))], seq=0),
        v9([flowset(256, first_a)], seq=1),
    ]
    # rebooted 100 s later: uptime 20 s; data (layout B) arrives before its new template
    b_rec = rec_ab(0x04040404, 0x03030303, 30, 40, 17, 9, 900, 15_000, 19_000, 20)  # dst first
    after = [
        v9([flowset(256, b_rec)], seq=0, uptime=20_000, secs=EXPORT_S + 100),
        v9([flowset(0, v9_template(256, FIELDS_B))], seq=1, uptime=20_500, secs=EXPORT_S + 100),
    ]
    result = decode_grams(FlowDecoder("x", None), before + after)
    assert result.quarantine == [] and accounting_holds(result)
    rows = result.flows.select(
        [
            "src_v4",
            "dst_v4",
            "octets",
            "packets",
            "sampling_interval",
            "flow_start_ms",
            "flow_end_ms",
        ]
    ).to_pylist()
    assert rows[1] == {
        "src_v4": 0x03030303,
        "dst_v4": 0x04040404,
        "octets": 900,
        "packets": 9,
        "sampling_interval": 20,
        "flow_start_ms": (EXPORT_S + 100) * 1000 - 5000,
        "flow_end_ms": (EXPORT_S + 100) * 1000 - 1000,
    }
    assert rows[0]["flow_start_ms"] == EXPORT_MS - 9000
    # the restart is not a sequence gap
    assert result.stats.sequence[0]["gaps"] == 0


def test_v9_restart_across_calls_leaves_old_template_unused():
    decoder = FlowDecoder("x", None)
    decode_grams(decoder, [v9([flowset(0, v9_template(256, FIELDS_A))], seq=0)])
    b_rec = rec_ab(0x04040404, 0x03030303, 30, 40, 17, 9, 900, 15_000, 19_000, 20)
    result = decode_grams(
        decoder, [v9([flowset(256, b_rec)], seq=0, uptime=20_000, secs=EXPORT_S + 100)]
    )
    assert result.flows.num_rows == 0
    (q,) = result.quarantine
    assert (q.reason, q.offset) == (C.REASON_TEMPLATE_NEVER_SEEN, 24 + PCAP_OVERHEAD + 20)


def test_uptime_step_back_without_reboot_is_not_a_restart():
    """Captures taken apart: uptime lower, but the implied boot time is before the last export."""
    decoder = FlowDecoder("x", None)
    decode_grams(decoder, [v9([flowset(0, v9_template(256, FIELDS_A))], seq=0)])
    rec = rec_ab(1, 2, 3, 4, 6, 100, 1, 1_000_000, 1_100_000, 8)
    result = decode_grams(decoder, [v9([flowset(256, rec)], seq=1, uptime=1_200_000)])
    assert result.flows.column("octets").to_pylist() == [100]


def two_layouts_of_template_256() -> tuple[bytes, bytes, bytes]:
    """IPFIX template 256 before (A: src, dst, octets, packets) and after a restart (B: the same
    five u32 fields in another order), and one data set of it."""
    a_fields = b"".join(
        struct.pack(">HH", ie, n) for ie, n in FIELDS_A[:2] + [(1, 4), (2, 4), (34, 4)]
    )
    b_fields = b"".join(
        struct.pack(">HH", ie, n) for ie, n in [(12, 4), (8, 4), (2, 4), (1, 4), (34, 4)]
    )
    tpl_a = ipfix_set(2, struct.pack(">HH", 256, 5) + a_fields)
    tpl_b = ipfix_set(2, struct.pack(">HH", 256, 5) + b_fields)
    rec = ipfix_set(256, struct.pack(">IIIII", 0x0A0A0A0A, 0x0B0B0B0B, 1234, 12, 4))
    return tpl_a, tpl_b, rec


def test_ipfix_sequence_backwards_is_a_restart():
    tpl_a, tpl_b, rec = two_layouts_of_template_256()
    buf = (
        ipfix([tpl_a], seq=5000)
        + ipfix([rec], seq=5000)
        + ipfix([rec], seq=0)  # restarted: sequence back to 0; written with template B
        + ipfix([tpl_b], seq=1)
    )
    result = IpfixDecoder("x", None).decode(buf, "f.ipfix")
    assert result.quarantine == [] and accounting_holds(result)
    got = result.flows.select(["src_v4", "dst_v4", "octets", "packets"]).to_pylist()
    assert got == [
        {"src_v4": 0x0A0A0A0A, "dst_v4": 0x0B0B0B0B, "octets": 1234, "packets": 12},
        {"src_v4": 0x0B0B0B0B, "dst_v4": 0x0A0A0A0A, "octets": 12, "packets": 1234},
    ]
    assert result.stats.sequence == [
        {
            "version": 10,
            "domain": 3,
            "messages": 4,
            "gaps": 0,
            "missing": 0,
            "unit": "records",
            "restarts": 1,
        }
    ]


def test_v9_data_before_template_in_one_call_decoded_later_call_quarantined():
    rec = rec_ab(1, 2, 3, 4, 6, 100, 1, UPTIME_MS - 100, UPTIME_MS - 50, 8)
    grams = [v9([flowset(256, rec)], seq=0), v9([flowset(0, v9_template(256, FIELDS_A))], seq=1)]
    result = decode_grams(FlowDecoder("x", None), grams)
    assert result.flows.column("octets").to_pylist() == [100] and result.quarantine == []
    split = FlowDecoder("x", None)
    first = decode_grams(split, grams[:1])
    assert [(q.reason, q.records) for q in first.quarantine] == [(C.REASON_TEMPLATE_NEVER_SEEN, 1)]
    assert decode_grams(split, grams[1:]).flows.num_rows == 0  # no retroactive decode


def test_same_template_id_in_two_source_ids_stays_separate():
    rec = rec_ab(0x01000001, 0x02000002, 3, 4, 6, 100, 1, UPTIME_MS - 100, UPTIME_MS - 50, 8)
    grams = [
        v9([flowset(0, v9_template(256, FIELDS_A))], source_id=1),
        v9([flowset(0, v9_template(256, FIELDS_B))], source_id=2),
        v9([flowset(256, rec)], source_id=1, seq=1),
        v9([flowset(256, rec)], source_id=2, seq=1),
    ]
    result = decode_grams(FlowDecoder("x", None), grams)
    got = result.flows.select(["observation_domain_id", "src_v4", "octets"]).to_pylist()
    assert got == [
        {"observation_domain_id": 1, "src_v4": 0x01000001, "octets": 100},
        {"observation_domain_id": 2, "src_v4": 0x02000002, "octets": 1},
    ]


def test_v9_and_ipfix_template_ids_do_not_collide():
    a_ipfix = b"".join(
        struct.pack(">HH", ie, n) for ie, n in [(8, 4), (12, 4), (1, 4), (2, 4), (34, 4)]
    )
    grams = [
        ipfix([ipfix_set(2, struct.pack(">HH", 256, 5) + a_ipfix)], domain=7),
        v9([flowset(0, v9_template(256, FIELDS_B))], source_id=7),
        ipfix([ipfix_set(256, struct.pack(">IIIII", 5, 6, 700, 7, 1))], domain=7),
    ]
    result = decode_grams(FlowDecoder("x", None), grams)
    assert result.flows.select(["src_v4", "octets"]).to_pylist() == [{"src_v4": 5, "octets": 700}]
    assert result.stats.records_by_version == {10: 1}


# --------------------------------------------------------------------------- sequences
def test_sequence_entries_per_version_and_domain_with_units_and_across_calls():
    tpl = flowset(0, v9_template(256, FIELDS_A))
    rec = flowset(256, rec_ab(1, 2, 3, 4, 6, 100, 1, UPTIME_MS - 100, UPTIME_MS - 50, 8))
    r5 = [v5_record(1, 2, 3, 4, 6, 100, 1, UPTIME_MS - 10, UPTIME_MS - 5)] * 2
    ipfix_tpl = ipfix_set(2, struct.pack(">HHHHHHHHHH", 256, 4, 8, 4, 12, 4, 1, 4, 34, 4))
    ipfix_rec = ipfix_set(256, struct.pack(">IIII", 1, 2, 3, 4) * 3)
    grams = [
        v9([tpl], seq=0),
        v9([rec], seq=1),
        v9([rec], seq=3),  # packet 2 lost
        v5(r5, seq=0, sampling=8),
        v5(r5, seq=12, sampling=8),  # 10 flows lost
        ipfix([ipfix_tpl], seq=0),
        ipfix([ipfix_rec], seq=0),
        ipfix([ipfix_rec], seq=3),
    ]
    decoder = FlowDecoder("x", None)
    result = decode_grams(decoder, grams)
    assert accounting_holds(result) and result.quarantine == []
    assert result.stats.records_by_version == {9: 2, 5: 4, 10: 6}
    by_stream = {(s["version"], s["domain"]): s for s in result.stats.sequence}
    assert by_stream == {
        (10, 3): {
            "version": 10,
            "domain": 3,
            "messages": 3,
            "gaps": 0,
            "missing": 0,
            "unit": "records",
            "restarts": 0,
        },
        (9, 7): {
            "version": 9,
            "domain": 7,
            "messages": 3,
            "gaps": 1,
            "missing": 1,
            "unit": "packets",
            "restarts": 0,
        },
        (5, 258): {
            "version": 5,
            "domain": 258,
            "messages": 2,
            "gaps": 1,
            "missing": 10,
            "unit": "flows",
            "restarts": 0,
        },
    }
    assert result.stats.sequence_gaps == 2
    # the next call continues the streams: v9 expects 4, v5 expects 14
    more = decode_grams(decoder, [v9([rec], seq=4), v5(r5, seq=20, sampling=8)])
    by_stream = {
        (s["version"], s["domain"]): (s["gaps"], s["missing"]) for s in more.stats.sequence
    }
    assert by_stream == {(9, 7): (0, 0), (5, 258): (1, 6)}


# --------------------------------------------------------------------------- hostile input
def test_hostile_datagrams_each_a_counted_reason_at_its_file_offset():
    tpl = flowset(0, v9_template(256, FIELDS_A))
    good_rec = rec_ab(1, 2, 3, 4, 6, 100, 1, UPTIME_MS - 100, UPTIME_MS - 50, 8)
    r5 = v5_record(1, 2, 3, 4, 6, 100, 1, UPTIME_MS - 10, UPTIME_MS - 5)
    bad_options = flowset(1, struct.pack(">HHH", 301, 6, 4) + struct.pack(">HHHH", 1, 4, 34, 4))
    grams = [
        v9([tpl], seq=0),  # 0
        v5([r5, r5], count=5, sampling=8),  # 1: count 5, 2 records present
        v9([bad_options, flowset(256, good_rec)], seq=1),  # 2: scope length 6
        v9([flowset(256, good_rec), flowset(256, b"", length=0)], seq=2),  # 3: flowset length 0
        v9([flowset(256, good_rec)], seq=3) + b"\x01\x00",  # 4: 2 bytes left, short flowset
        struct.pack(">HH", 7, 1) + bytes(40),  # 5: unknown version
        b"",  # 6: empty
        v9([flowset(256, good_rec)], seq=4)[:12],  # 7: shorter than the v9 header
        v9([flowset(256, good_rec)], seq=5),  # 8: fine
    ]
    _, starts, _, offsets = batch(grams)
    result = decode_grams(FlowDecoder("x", None), grams, source="hostile.pcap")
    assert accounting_holds(result)
    assert result.flows.num_rows == 4  # datagrams 2, 3, 4 and 8
    got = [(q.reason, q.offset, q.records) for q in result.quarantine]
    set_at_3 = int(offsets[3]) + 20 + len(flowset(256, good_rec))
    set_at_4 = int(offsets[4]) + 20 + len(flowset(256, good_rec))
    assert got == sorted(
        [
            (C.REASON_V5_COUNT_MISMATCH, int(offsets[1]), 2),
            (C.REASON_BAD_TEMPLATE, int(offsets[2]) + 20 + 4, 0),
            (C.REASON_BAD_SET_LENGTH, set_at_3, 1),
            (C.REASON_BAD_SET_LENGTH, set_at_4, 1),
            (C.REASON_UNKNOWN_VERSION, int(offsets[5]), 1),
            (C.REASON_EMPTY_DATAGRAM, int(offsets[6]), 1),
            (C.REASON_SHORT_DATAGRAM, int(offsets[7]), 1),
        ],
        key=lambda t: t[1],
    )
    assert all(q.source == "hostile.pcap" for q in result.quarantine)
    by_reason = result.stats.quarantine_by_reason
    assert by_reason[C.REASON_V5_COUNT_MISMATCH] == 2 and by_reason[C.REASON_BAD_SET_LENGTH] == 2
    assert result.stats.records_in == 4 + 2 + 2 + 3


def test_random_datagrams_never_raise():
    rng = np.random.default_rng(5)
    grams = []
    for i in range(300):
        body = rng.integers(0, 256, int(rng.integers(0, 120)), dtype=np.uint8).tobytes()
        version = [5, 9, 10][i % 3]
        grams.append(struct.pack(">H", version) + body)
    result = decode_grams(FlowDecoder("x", 1), grams)
    assert accounting_holds(result)


def test_empty_batch():
    result = FlowDecoder("x", None).decode_datagrams(
        b"", np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), "e.pcap"
    )
    assert result.flows.num_rows == 0 and result.stats.records_in == 0
    assert pc.sum(result.flows.column("octets")).as_py() is None


def test_ipfix_restart_with_data_overtaking_the_template_message():
    """The restarted exporter's first data messages arrive before its template message (seq 0):
    a step back among small sequence numbers is reordering, not a second restart."""
    tpl_a, tpl_b, rec = two_layouts_of_template_256()
    buf = (
        ipfix([tpl_a], seq=5000)
        + ipfix([rec], seq=5000)
        + ipfix([rec], seq=0)  # restarted; template B's message (seq 0) comes two messages later
        + ipfix([rec], seq=1)
        + ipfix([tpl_b], seq=0)
    )
    result = IpfixDecoder("x", None).decode(buf, "f.ipfix")
    assert result.quarantine == [] and accounting_holds(result)
    assert result.flows.column("octets").to_pylist() == [1234, 12, 12]
    (stream,) = result.stats.sequence
    assert (stream["gaps"], stream["missing"]) == (1, 0)  # expected 2, got 0: a step back


def test_sequence_missing_is_net_of_reordered_messages():
    one = ipfix_set(256, struct.pack(">IIIII", 1, 2, 3, 4, 4))
    tpl = ipfix_set(2, struct.pack(">HH", 256, 5) + b"".join(
        struct.pack(">HH", ie, n) for ie, n in FIELDS_A[:2] + [(1, 4), (2, 4), (34, 4)]
    ))  # fmt: skip

    def stream_of(seqs: list[int]) -> dict:
        buf = ipfix([tpl], seq=seqs[0]) + b"".join(ipfix([one], seq=s) for s in seqs)
        (entry,) = IpfixDecoder("x", None).decode(buf, "f.ipfix").stats.sequence
        return {k: entry[k] for k in ("gaps", "missing")}

    assert stream_of([0, 1, 2, 3]) == {"gaps": 0, "missing": 0}
    assert stream_of([0, 2, 3]) == {"gaps": 1, "missing": 1}  # record 1 lost
    assert stream_of([0, 2, 1, 3]) == {"gaps": 3, "missing": 0}  # 1 late, not lost
