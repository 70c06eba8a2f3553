"""Vendor export shapes (ARCHITECTURE §2.2), hand-built with struct: firewall events, RFC 5103
biflows, total counters, NAT, wireless stations, tunnels, and records without any volume field."""

from __future__ import annotations

import struct

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.decoder import FlowDecoder
from tests.support.fuzz_corpus import check_result, v9_flowset, v9_packet

T0 = 1_717_000_000  # session start (first message export time), s
MS = 1000
REV = C.PEN_REVERSE
VMW = C.PEN_VMWARE
SRC, DST = 0x0A000005, 0xC6336401  # 10.0.0.5 (subscriber), 198.51.100.1
PUBLIC = 0xCB007101  # 203.0.113.1 (NAT outside address)


def message(sets: list[bytes], export_s: int = T0, seq: int = 0, domain: int = 1) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), export_s, seq, domain) + body


def ipfix_set(set_id: int, body: bytes) -> bytes:
    return struct.pack(">HH", set_id, 4 + len(body)) + body


def template_set(tid: int, fields: list[tuple]) -> bytes:
    """A template set of one record; a field is (ie, length) or (ie, length, enterprise number)."""
    body = struct.pack(">HH", tid, len(fields))
    for f in fields:
        body += (
            struct.pack(">HHI", f[0] | 0x8000, f[1], f[2])
            if len(f) == 3
            else struct.pack(">HH", *f)
        )
    return ipfix_set(2, body)


def record(fields: list[tuple], *values: int) -> bytes:
    """One data record: each value big-endian in its field's length."""
    return b"".join(v.to_bytes(f[1], "big") for f, v in zip(fields, values, strict=True))


def decode(*messages: bytes, decoder: FlowDecoder | None = None, name: str = "v.ipfix"):
    buf = b"".join(messages)
    result = (decoder or FlowDecoder("vendor", default_sampling_interval=1)).decode(buf, name)
    check_result(result, buf, name)
    return result, result.flows.to_pydict()


TIMES = [(152, 8), (153, 8)]
TUPLE_V4 = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1)]


# ---------------------------------------------------------------- 4. no volume field
def test_record_without_volume_field_is_set_aside_not_zero_bytes():
    fields = [*TIMES, *TUPLE_V4, (61, 1)]
    recs = record(fields, T0 * MS, T0 * MS, SRC, DST, 5000, 443, 6, 0) * 2
    data = ipfix_set(256, recs)
    msg = message([template_set(256, fields), data])
    r, t = decode(msg)
    assert t["octets"] == [] and r.stats.records_decoded == 0
    assert r.stats.quarantine_by_reason == {C.REASON_NO_VOLUME: 2}
    (q,) = r.quarantine
    assert (q.offset, q.records) == (msg.index(data), 2)


def test_packets_without_octets_and_layer2_only_are_set_aside():
    pkt_only = [*TIMES, *TUPLE_V4, (2, 8)]
    l2_only = [*TIMES, *TUPLE_V4, (352, 8), (2, 8)]
    msg = message(
        [
            template_set(256, pkt_only),
            template_set(257, l2_only),
            ipfix_set(256, record(pkt_only, T0 * MS, T0 * MS, SRC, DST, 1, 2, 6, 9)),
            ipfix_set(257, record(l2_only, T0 * MS, T0 * MS, SRC, DST, 1, 2, 6, 900, 9)),
        ]
    )
    r, t = decode(msg)
    assert t["octets"] == []
    assert r.stats.quarantine_by_reason == {C.REASON_NO_VOLUME: 1, C.REASON_LAYER2_VOLUME_ONLY: 1}


# ---------------------------------------------------------------- 1. firewall event exports
FIREWALL = [*TIMES, *TUPLE_V4, (233, 1), (231, 8), (232, 8), (298, 4), (299, 4)]


def test_firewall_event_export_gives_initiator_and_responder_rows():
    recs = record(FIREWALL, T0 * MS, T0 * MS + 5, SRC, DST, 40000, 443, 6, 2, 1200, 64000, 10, 50)
    recs += record(FIREWALL, T0 * MS, T0 * MS + 5, SRC, DST, 40001, 53, 17, 2, 80, 0, 1, 0)
    r, t = decode(message([template_set(256, FIREWALL), ipfix_set(256, recs)]))
    assert r.stats.records_decoded == 2 and r.stats.reverse_rows == 1 and r.stats.records_in == 2
    # rows in input order by set: both initiator rows, then the responder row
    assert t["octets"] == [1200, 80, 64000] and t["packets"] == [10, 1, 50]
    assert t["src_v4"] == [SRC, SRC, DST] and t["dst_v4"] == [DST, DST, SRC]
    assert t["src_port"] == [40000, 40001, 443] and t["dst_port"] == [443, 53, 40000]


def test_nsel_like_netflow_v9_shares_the_mapping():
    # v9 FIRST/LAST_SWITCHED (22/21), addresses, ports, protocol, NSEL fwd/rev delta bytes (4 B)
    fields = [(22, 4), (21, 4), *TUPLE_V4, (231, 4), (232, 4)]
    tpl = struct.pack(">HH", 300, len(fields)) + b"".join(struct.pack(">HH", *f) for f in fields)
    data = record(fields, 3_500_000, 3_590_000, SRC, DST, 40000, 443, 6, 700, 90000)
    gram = v9_packet(v9_flowset(0, tpl), v9_flowset(300, data), count=2)
    decoder = FlowDecoder("asa", default_sampling_interval=1)
    r = decoder.decode_datagrams(
        gram, np.array([0]), np.array([len(gram)]), np.array([0]), "a.pcap"
    )
    check_result(r, gram, "a.pcap")
    t = r.flows.to_pydict()
    assert r.stats.records_decoded == 1 and r.stats.reverse_rows == 1
    assert t["octets"] == [700, 90000] and t["packets"] == [0, 0]
    assert t["src_v4"] == [SRC, DST] and t["dst_port"] == [443, 40000]


# ---------------------------------------------------------------- 2. RFC 5103 biflows
BIFLOW = [*TIMES, *TUPLE_V4, (61, 1), (1, 8), (2, 8), (1, 8, REV), (2, 8, REV)]


def test_biflow_reverse_counters_become_a_second_row():
    recs = record(BIFLOW, T0 * MS, T0 * MS + 9, SRC, DST, 40000, 443, 6, 0, 500, 5, 70000, 60)
    recs += record(BIFLOW, T0 * MS, T0 * MS + 9, SRC, DST, 40002, 443, 6, 1, 300, 3, 0, 0)
    r, t = decode(message([template_set(256, BIFLOW), ipfix_set(256, recs)]))
    assert (r.stats.records_in, r.stats.records_decoded, r.stats.reverse_rows) == (2, 2, 1)
    assert t["octets"] == [500, 300, 70000] and t["packets"] == [5, 3, 60]
    assert t["src_v4"] == [SRC, SRC, DST] and t["src_port"] == [40000, 40002, 443]
    assert t["flow_direction"] == [0, 1, 1]  # the reverse row's direction is flipped


def test_template_with_reverse_counters_only_gives_one_reversed_row():
    fields = [*TIMES, *TUPLE_V4, (1, 8, REV), (2, 8, REV)]
    recs = record(fields, T0 * MS, T0 * MS, SRC, DST, 40000, 443, 6, 800, 4)
    r, t = decode(message([template_set(256, fields), ipfix_set(256, recs)]))
    assert (r.stats.records_decoded, r.stats.reverse_rows) == (1, 0)
    assert t["octets"] == [800] and t["src_v4"] == [DST] and t["dst_port"] == [40000]


def test_other_enterprise_fields_are_still_skipped_by_length():
    fields = [*TIMES, *TUPLE_V4, (1, 8), (7, 4, 9), (1, 8, 12345)]
    recs = record(fields, T0 * MS, T0 * MS, SRC, DST, 1, 2, 6, 100, 77, 999)
    r, t = decode(message([template_set(256, fields), ipfix_set(256, recs)]))
    assert t["octets"] == [100] and r.stats.reverse_rows == 0


# ---------------------------------------------------------------- 1. total counters
TOTALS = [*TIMES, *TUPLE_V4, (85, 8), (86, 8)]


def _total(start_s: int, end_s: int, sport: int, octets: int, packets: int) -> bytes:
    return record(TOTALS, start_s * MS, end_s * MS, SRC, DST, sport, 443, 6, octets, packets)


def test_total_count_records_of_one_flow_are_differenced():
    # flow A (port 1000) reported three times with running totals; flow B (2000) once
    data = ipfix_set(
        256,
        _total(T0 + 10, T0 + 60, 1000, 1000, 10)
        + _total(T0 + 20, T0 + 30, 2000, 777, 7)
        + _total(T0 + 10, T0 + 120, 1000, 2500, 25),
    )
    later = ipfix_set(256, _total(T0 + 10, T0 + 180, 1000, 4000, 40))
    r, t = decode(
        message([template_set(256, TOTALS), data]), message([later], export_s=T0 + 200, seq=3)
    )
    assert t["octets"] == [1000, 777, 1500, 1500] and t["packets"] == [10, 7, 15, 15]
    assert sum(t["octets"]) == 4000 + 777  # the flows' last totals, each counted once


def test_total_count_difference_carries_across_files_of_one_decoder():
    decoder = FlowDecoder("totals", default_sampling_interval=1)
    first = message([template_set(256, TOTALS), ipfix_set(256, _total(T0 + 1, T0 + 60, 7, 100, 1))])
    _, t1 = decode(first, decoder=decoder, name="a.ipfix")
    second = message([ipfix_set(256, _total(T0 + 1, T0 + 120, 7, 350, 3))], T0 + 130, seq=1)
    _, t2 = decode(second, decoder=decoder, name="b.ipfix")
    assert t1["octets"] == [100] and t2["octets"] == [250] and t2["packets"] == [2]


def test_total_count_of_flow_started_before_the_session_has_no_baseline():
    data = ipfix_set(
        256,
        _total(T0 - 600, T0 + 60, 1000, 90000, 90)  # began before this decoder's first message
        + _total(T0 - 600, T0 + 120, 1000, 91000, 95),
    )
    msg = message([template_set(256, TOTALS), data])
    r, t = decode(msg)
    assert t["octets"] == [1000] and t["packets"] == [5]  # the second record, differenced
    assert r.stats.quarantine_by_reason == {C.REASON_TOTAL_NO_BASELINE: 1}
    assert r.quarantine[0].offset == msg.index(data)


def test_delta_count_wins_over_total_count():
    fields = [*TIMES, *TUPLE_V4, (85, 8), (1, 8), (2, 8)]
    recs = record(fields, T0 * MS, T0 * MS, SRC, DST, 1, 2, 6, 99999, 300, 3) * 2
    r, t = decode(message([template_set(256, fields), ipfix_set(256, recs)]))
    assert t["octets"] == [300, 300]


# ---------------------------------------------------------------- 3. addresses
def test_nat_export_keeps_the_pre_nat_subscriber_address():
    fields = [*TIMES, *TUPLE_V4, (225, 4), (226, 4), (227, 2), (228, 2), (1, 8)]
    recs = record(fields, T0 * MS, T0 * MS, SRC, DST, 40000, 443, 6, PUBLIC, DST, 1024, 443, 100)
    r, t = decode(message([template_set(256, fields), ipfix_set(256, recs)]))
    assert t["src_v4"] == [SRC] and t["dst_v4"] == [DST] and t["src_port"] == [40000]


def test_post_nat_addresses_are_used_when_the_pre_nat_ones_are_absent():
    fields = [*TIMES, (225, 4), (226, 4), (227, 2), (228, 2), (4, 1), (1, 8)]
    recs = record(fields, T0 * MS, T0 * MS, PUBLIC, DST, 1024, 443, 6, 100)
    r, t = decode(message([template_set(256, fields), ipfix_set(256, recs)]))
    assert t["src_v4"] == [PUBLIC] and t["src_port"] == [1024] and t["ip_version"] == [4]


def test_wireless_station_address_is_the_subscriber_side():
    with_dst = [*TIMES, (365, 6), (366, 4), (12, 4), (61, 1), (1, 8)]
    station_only = [*TIMES, (365, 6), (366, 4), (61, 1), (1, 8)]
    msg = message(
        [
            template_set(256, with_dst),
            template_set(257, station_only),
            ipfix_set(256, record(with_dst, T0 * MS, T0 * MS, 0xAABBCCDDEEFF, SRC, DST, 0, 10)),
            ipfix_set(
                257,
                record(station_only, T0 * MS, T0 * MS, 0xAABBCCDDEEFF, SRC, 0, 20)
                + record(station_only, T0 * MS, T0 * MS, 0xAABBCCDDEEFF, SRC, 1, 30),
            ),
        ]
    )
    r, t = decode(msg)
    assert r.stats.records_decoded == 3 and t["octets"] == [10, 20, 30]
    assert t["src_v4"] == [SRC, SRC, 0] and t["dst_v4"] == [DST, 0, SRC]  # egress: to the station


def test_tunnel_export_uses_the_inner_tenant_addresses():
    fields = [
        *TIMES,
        *TUPLE_V4,  # outer: the tunnel endpoints
        (881, 4, VMW),
        (882, 4, VMW),
        (886, 2, VMW),
        (887, 2, VMW),
        (880, 1, VMW),
        (1, 8),
    ]
    vtep_a, vtep_b = 0xAC100001, 0xAC100002
    recs = record(
        fields, T0 * MS, T0 * MS, vtep_a, vtep_b, 4789, 4789, 17, SRC, DST, 40000, 443, 6, 1500
    )
    recs += record(fields, T0 * MS, T0 * MS, vtep_a, vtep_b, 4789, 4789, 17, 0, 0, 0, 0, 0, 60)
    r, t = decode(message([template_set(256, fields), ipfix_set(256, recs)]))
    assert t["src_v4"] == [SRC, vtep_a] and t["dst_v4"] == [DST, vtep_b]  # untunnelled: outer
    assert t["src_port"] == [40000, 4789] and t["protocol"] == [6, 17]


def test_ipv6_biflow_swaps_both_address_halves_and_reverse_packets_alone_give_no_row():
    fields = [*TIMES, (27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (1, 8), (1, 8, REV)]
    a, b = 0x20010DB8_00000000_00000000_00000001, 0x2606470000000000_0000000000001111
    recs = record(fields, T0 * MS, T0 * MS, a, b, 5000, 443, 6, 100, 2000)
    no_rev_octets = [*TIMES, (27, 16), (28, 16), (1, 8), (2, 8, REV)]
    msg = message(
        [
            template_set(256, fields),
            template_set(257, no_rev_octets),
            ipfix_set(256, recs),
            ipfix_set(257, record(no_rev_octets, T0 * MS, T0 * MS, a, b, 300, 9)),
        ]
    )
    r, t = decode(msg)
    assert (r.stats.records_decoded, r.stats.reverse_rows) == (2, 1)
    assert t["octets"] == [100, 2000, 300]
    assert t["src_v6_hi"] == [a >> 64, b >> 64, a >> 64]
    assert t["src_v6_lo"][1] == b & (2**64 - 1) and t["dst_v6_lo"][1] == a & (2**64 - 1)
    assert t["src_v4"] == [None, None, None] and t["ip_version"] == [6, 6, 6]
