"""Trust under faulty inputs at the wire level (issue 8): hand-made exports that today's decoder
read silently wrong — unsplittable sets, trailing bytes, zero-length counters, redefinitions,
invalid sampling announcements, reordered captures, restarts and duplicated datagrams."""

from __future__ import annotations

import datetime as dt
import json
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest.flows import (
    QUARANTINE_SCHEMA,
    _ExporterDay,
    _quarantine_table,
    _write_exporter_day,
)
from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.decoder import FlowDecoder, IpfixDecoder
from pipeline.wire.ipfix.writer import encode_ipfix_stream
from pipeline.wire.pcap.reader import read_export_datagrams
from pipeline.wire.pcap.writer import write_export_pcap, write_export_pcapng
from pipeline.wire.records import TRUST_COUNTERS
from tests.support.fuzz_corpus import sample_flows, split_ipfix_messages
from tests.support.shared import require_shared
from tests.wire.test_ipfix_decoder import (
    EXPORT_S,
    V4_FIELDS,
    accounting_holds,
    data_set,
    sampling_sets,
    template,
    template_set,
    v4_record,
)
from tests.wire.test_netflow import FIELDS_A, decode_grams, flowset, rec_ab, v5, v5_record, v9


def message(sets: list[bytes], *, domain: int = 1, seq: int = 0, secs: int = EXPORT_S) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), secs, seq, domain) + body


def rec(i: int, octets: int = 700) -> bytes:
    return v4_record(1000 + i, 2000 + i, 0x0A000000 + i, 0xC6336401, 1234, 80, 6, 0, octets, 7)


HEAD = [template_set(template(256, V4_FIELDS)), *sampling_sets()]  # 1 options record


# --------------------------------------------------------------------------- 1: domain, template
def test_quarantine_entries_carry_observation_domain_and_template_id():
    broken = [(8, 4), (12, 4), (1, 0), (2, 8)]  # zero-length octetDeltaCount
    buf = message([template_set(template(300, broken))], domain=9) + message(
        [data_set(300, bytes(16) * 2), data_set(400, bytes(24))], domain=9
    )
    r = IpfixDecoder("x", 1).decode(buf, "f.ipfix")
    got = sorted((q.reason, q.domain, q.template_id) for q in r.quarantine)
    assert got == [
        (C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED, 9, 400),
        (C.REASON_ZERO_LENGTH_COUNTER, 9, 300),  # the template record
        (C.REASON_ZERO_LENGTH_COUNTER, 9, 300),  # its data set: 2 records
    ]
    table = _quarantine_table(r.quarantine)
    assert table.schema == QUARANTINE_SCHEMA
    assert table.schema.field("observation_domain_id").type == pa.uint32()
    assert table.schema.field("template_id").type == pa.uint16()
    assert table.column("template_id").to_pylist() == [300, 300, 400]
    assert table.column("observation_domain_id").null_count == 0


def test_capture_and_v5_entries_fill_what_they_know(tmp_path):
    grams = [v5([v5_record(1, 2, 3, 4, 6, 100, 1, 10, 20)], engine=(1, 2), sampling=0)]
    r = decode_grams(FlowDecoder("x", None), grams)
    (q,) = r.quarantine
    assert (q.reason, q.domain, q.template_id) == (C.REASON_SAMPLING_MISSING, 258, None)


# --------------------------------------------------------------------------- 2: unsplittable sets
def test_set_of_a_template_never_seen_is_estimated_from_sequence_numbers():
    """Message 2 holds 2 decodable records and a set of template 400 (never defined); the next
    message's sequence number says message 2 held 5 data records, so the set held 3."""
    buf = (
        message(HEAD, seq=0)  # the options record is a data record too: next seq 1
        + message([data_set(256, rec(0) + rec(1)), data_set(400, bytes(30))], seq=1)
        + message([data_set(256, rec(2))], seq=6)
        + message([data_set(256, rec(3))], seq=7)
    )
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    assert accounting_holds(r) and r.stats.records_decoded == 4
    (q,) = r.quarantine
    assert (q.reason, q.records, q.template_id) == (C.REASON_TEMPLATE_NEVER_SEEN, 3, 400)
    assert r.stats.records_estimated_unsplittable == 3
    assert r.stats.records_in == 4 + 3
    (stream,) = r.stats.sequence
    assert (stream["gaps"], stream["missing"]) == (0, 0)  # the 3 are set aside, not missing


def test_unsplittable_estimate_uses_sequence_order_not_arrival_order():
    """The message after the unsplittable one arrives before it (reordered): still its successor."""
    buf = (
        message(HEAD, seq=0)
        + message([data_set(256, rec(2))], seq=4)  # overtook the message below
        + message([data_set(400, bytes(40))], seq=1)  # 3 records of an unknown template
        + message([data_set(256, rec(3))], seq=5)
    )
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    (q,) = r.quarantine
    assert (q.reason, q.records) == (C.REASON_TEMPLATE_NEVER_SEEN, 3)
    assert accounting_holds(r) and r.stats.records_in == 2 + 3
    assert r.stats.sequence[0]["missing"] == 0


def test_unsplittable_set_without_a_next_message_is_one_record_count_unknown():
    buf = message(HEAD, seq=0) + message([data_set(256, rec(0)), data_set(400, bytes(30))], seq=1)
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    (q,) = r.quarantine
    assert (q.reason, q.records) == (C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED, 1)
    assert r.stats.records_estimated_unsplittable == 0 and accounting_holds(r)


def test_an_implausible_estimate_is_not_used():
    """A jump of 1000 records after a 10-byte set is a loss, not 1000 records of that set."""
    buf = (
        message(HEAD, seq=0)
        + message([data_set(400, bytes(10))], seq=1)
        + message([data_set(256, rec(0))], seq=1001)
    )
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    (q,) = r.quarantine
    assert (q.reason, q.records) == (C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED, 1)
    assert r.stats.sequence[0]["missing"] == 999


# --------------------------------------------------------------------------- 3: trailing bytes
def test_trailing_bytes_of_a_set_are_counted_and_non_padding_set_aside():
    padded = data_set(256, rec(0) + rec(1) + bytes(3))  # RFC 7011 padding: counted only
    junk = data_set(256, rec(2) + b"\x00\x07\x00")  # 3 non-zero bytes: shorter than a record
    first = message([*HEAD, padded], seq=0)
    buf = first + message([junk], seq=3)
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    assert r.stats.records_decoded == 3 and r.stats.trailing_bytes == 6
    (q,) = r.quarantine
    assert (q.reason, q.records, q.length) == (C.REASON_SET_TRAILING_BYTES, 0, 3)
    assert q.offset == len(first) + 16 + 4 + len(rec(2)) and q.payload == b"\x00\x07\x00"
    assert (q.domain, q.template_id) == (1, 256) and accounting_holds(r)


def test_trailing_bytes_of_a_variable_length_template_are_counted():
    fields = [(8, 4), (12, 4), (1, 4), (2, 4), (34, 4), (96, 65535)]  # applicationName: variable
    one = struct.pack(">IIIII", 1, 2, 300, 3, 1) + b"\x02ab"
    buf = message([template_set(template(260, fields)), data_set(260, one * 2 + b"\x09")])
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    assert r.stats.records_decoded == 2 and r.stats.trailing_bytes == 1
    assert [q.reason for q in r.quarantine] == [C.REASON_SET_TRAILING_BYTES]


# --------------------------------------------------------------------------- 4: zero-length counter
def test_zero_length_counter_field_refuses_the_template_never_zero_volume():
    fields = [(8, 4), (12, 4), (1, 0), (2, 4), (34, 4)]  # octetDeltaCount of length 0
    buf = message([template_set(template(256, fields))]) + message(
        [data_set(256, struct.pack(">IIII", 1, 2, 5, 1) * 3)], seq=0
    )
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    assert r.flows.num_rows == 0  # today: 3 flows of 0 octets
    by = r.stats.quarantine_by_reason
    assert by == {C.REASON_ZERO_LENGTH_COUNTER: 3} and accounting_holds(r)


@pytest.mark.parametrize(
    "counter",
    [
        231,
        232,
        23,
        85,
        0x8001,
    ],  # initiator/responder octets, post delta, total, reverse delta (RFC 5103)
)
def test_zero_length_vendor_counter_refuses_the_template(counter: int):
    fields = [(8, 4), (12, 4), (counter, 0), (2, 4), (34, 4)]
    if counter & 0x8000:  # enterprise bit: the PEN follows the field specifier
        tpl = struct.pack(">HH", 256, len(fields)) + b"".join(
            struct.pack(">HHI", ie, n, 29305) if ie & 0x8000 else struct.pack(">HH", ie, n)
            for ie, n in fields
        )
        tset = struct.pack(">HH", 2, 4 + len(tpl)) + tpl
    else:
        tset = template_set(template(256, fields))
    buf = message([tset]) + message([data_set(256, struct.pack(">IIII", 1, 2, 5, 1) * 3)], seq=0)
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    assert r.flows.num_rows == 0
    assert r.stats.quarantine_by_reason == {C.REASON_ZERO_LENGTH_COUNTER: 3}
    assert accounting_holds(r)


def test_zero_length_counter_in_a_v9_template_and_only_zero_length_fields_do_not_hang():
    fields = [(8, 4), (12, 4), (2, 0), (1, 4), (34, 4)]  # IN_PKTS of length 0
    tpl = flowset(0, struct.pack(">HH", 256, len(fields)) + b"".join(
        struct.pack(">HH", *f) for f in fields
    ))  # fmt: skip
    grams = [v9([tpl], seq=0), v9([flowset(256, struct.pack(">IIII", 1, 2, 9, 1))], seq=1)]
    r = decode_grams(FlowDecoder("x", None), grams)
    assert r.flows.num_rows == 0
    assert r.stats.quarantine_by_reason == {C.REASON_ZERO_LENGTH_COUNTER: 1}
    zero = message([template_set(template(257, [(1, 0), (2, 0)]))])
    r = IpfixDecoder("x").decode(zero + message([data_set(257, bytes(64))]), "f")
    assert r.stats.quarantine_by_reason == {C.REASON_RECORD_LENGTH_ZERO: 1}


# --------------------------------------------------------------------------- 5: redefinitions
def test_template_redefinitions_and_second_pass_records_are_counted():
    other = [(12, 4), (8, 4), (1, 8), (2, 8), (302, 4)]
    buf = (
        message([data_set(256, rec(0) + rec(1))], seq=0)  # before its template: second pass
        + message([*HEAD, data_set(256, rec(2))], seq=2)
        + message([template_set(template(256, V4_FIELDS))], seq=4)  # refresh: not counted
        + message([template_set(template(256, other))], seq=4)  # redefinition
        + message([data_set(256, struct.pack(">IIQQI", 1, 2, 3, 4, 5))], seq=4)
    )
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    assert r.stats.records_decoded == 4 and r.quarantine == []
    assert r.stats.template_redefinitions == 1
    assert r.stats.records_second_pass == 2


# --------------------------------------------------------------------------- 6, 7: sampling
def test_invalid_sampling_announcements_are_flagged_and_records_follow_the_default_rule():
    for interval, space in ((0, 99), (1, 2**32 - 1)):  # N = 0; N = 2^32 > 2^31
        announced = sampling_sets(interval=interval, space=space)
        buf = message([HEAD[0], *announced]) + message([data_set(256, rec(0) + rec(1))], seq=1)
        r = IpfixDecoder("x").decode(buf, "f.ipfix")  # no registry default
        assert r.stats.invalid_sampling_announcements == 1
        assert r.stats.records_decoded == 0 and accounting_holds(r)
        by = {q.reason: q for q in r.quarantine}
        assert by[C.REASON_SAMPLING_MISSING].records == 2
        q = by[C.REASON_INVALID_SAMPLING]
        assert (q.records, q.template_id, q.length) == (0, 300, 12)
        assert q.payload == struct.pack(">III", 5, interval, space)
        with_default = IpfixDecoder("x", default_sampling_interval=512).decode(buf, "f.ipfix")
        assert with_default.flows.column("sampling_interval").to_pylist() == [512, 512]
        assert with_default.stats.records_default_sampling == 2


def test_invalid_announcement_withdraws_an_earlier_valid_rate():
    buf = (
        message(HEAD, seq=0)  # 1 in 100
        + message([data_set(256, rec(0))], seq=1)
        + message([data_set(300, struct.pack(">III", 5, 0, 0))], seq=2)  # N = 0
        + message([data_set(256, rec(1))], seq=3)
    )
    r = IpfixDecoder("x", default_sampling_interval=64).decode(buf, "f.ipfix")
    assert r.flows.column("sampling_interval").to_pylist() == [100, 64]
    assert r.stats.records_default_sampling == 1 and r.stats.invalid_sampling_announcements == 1


def test_records_on_the_registry_default_rate_are_counted_in_every_version():
    tpl_only = message([template_set(template(256, V4_FIELDS))])
    r = IpfixDecoder("x", default_sampling_interval=8).decode(
        tpl_only + message([data_set(256, rec(0) + rec(1))]), "f"
    )
    assert r.stats.records_default_sampling == 2
    announced = IpfixDecoder("x", default_sampling_interval=8).decode(
        message([*HEAD, data_set(256, rec(0))]), "f"
    )
    assert announced.stats.records_default_sampling == 0
    r5 = [v5_record(1, 2, 3, 4, 6, 100, 1, 10, 20)] * 3
    grams = [v5(r5, seq=0, sampling=0), v5(r5, seq=3, sampling=0x4000 | 10)]
    result = decode_grams(FlowDecoder("x", 16), grams)
    assert result.stats.records_default_sampling == 3 and result.stats.records_decoded == 6


# --------------------------------------------------------------------------- 8: reordering
def writer_messages(n: int = 3000, secs: int = EXPORT_S) -> list[bytes]:
    """The simulator's IPFIX export (template + options message first, ~30 records a message)."""
    buf, _ = encode_ipfix_stream(
        sample_flows(n, 11, ipv6_share=0.2),
        observation_domain_id=4,
        sampling_interval=256,
        export_time_s=secs,
        max_message_bytes=1400,
    )
    return split_ipfix_messages(buf)


def rows(result) -> list[tuple]:
    t = result.flows
    return sorted(zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True), key=str)


def test_template_message_captured_after_a_burst_of_its_data_loses_nothing(tmp_path):
    """Capture order: 50 data messages (1,500+ records), then the template message (seq 0):
    today the step back from above 1000 to 0 is taken for a restart and the burst is lost."""
    msgs = writer_messages()
    reordered = [*msgs[1:51], msgs[0], *msgs[51:]]
    path = tmp_path / "reordered.pcap"
    endpoints = dict(src_address="192.0.2.7", dst_address="192.0.2.1", src_port=4739)
    write_export_pcap(path, reordered, dst_port=4739, time_ms=EXPORT_S * 1000, **endpoints)
    grams = read_export_datagrams(path)
    got = FlowDecoder("r", None).decode_datagrams(
        grams.payload, grams.starts, grams.lengths, grams.file_offsets, "reordered.pcap"
    )
    want = IpfixDecoder("r", None).decode(b"".join(msgs), "in-order.ipfix")
    assert got.quarantine == [] and rows(got) == rows(want)
    burst = IpfixDecoder("r", None).decode(b"".join(msgs[:51]), "burst.ipfix")
    assert got.stats.records_second_pass == burst.stats.records_decoded > 1000
    assert got.stats.sequence[0]["restarts"] == 0


def test_late_message_far_behind_is_not_a_restart():
    """One data message captured 60 messages late (its sequence 1,800 records behind): today a
    restart, which drops the templates and loses every later message until the next refresh."""
    msgs = writer_messages()
    late = [*msgs[:5], *msgs[6:66], msgs[5], *msgs[66:]]
    got = IpfixDecoder("r", None).decode(b"".join(late), "late.ipfix")
    want = IpfixDecoder("r", None).decode(b"".join(msgs), "in-order.ipfix")
    assert got.quarantine == [] and rows(got) == rows(want)
    assert got.stats.sequence[0]["restarts"] == 0 and got.stats.sequence[0]["missing"] == 0


def test_true_restart_is_detected_and_a_late_message_after_it_is_not_another():
    """Reboot 40 s later: sequence back to 0, templates re-sent (another layout), export time
    continuing. A message of the old session captured after the restart is not a second one."""
    before = writer_messages(1500)  # a session seen from sequence 0 to ~1,500
    other = [(12, 4), (8, 4), (1, 8), (2, 8), (302, 4)]
    later = EXPORT_S + 40

    def swapped_data(octets: int, seq: int) -> bytes:
        record = struct.pack(">IIQQI", 0x0B000001, 0x0A000001, octets, 9, 1)
        return message([data_set(256, record)], domain=4, secs=later, seq=seq)

    stream = [
        *before[:-1],
        message([template_set(template(256, other)), *sampling_sets(1)], domain=4, secs=later),
        swapped_data(900, 1),
        before[-1],  # late: sent before the reboot
        swapped_data(901, 2),
    ]
    r = IpfixDecoder("r", None).decode(b"".join(stream), "restart.ipfix")
    (seq,) = r.stats.sequence
    assert seq["restarts"] == 1 and r.quarantine == []
    t = r.flows.to_pydict()
    for octets in (900, 901):  # decoded with the re-sent layout, not the old one
        i = t["octets"].index(octets)
        assert (t["src_v4"][i], t["dst_v4"][i], t["packets"][i]) == (0x0A000001, 0x0B000001, 9)
    assert r.flows.num_rows == 1500 + 2


def test_real_capture_with_data_before_its_template_message(tmp_path):
    """The real IPFIX SRv6 export, its data message captured before its template message (lower
    sequence, later export time — as in the original capture), repeated as a burst."""
    data_dir = require_shared() / "flow-exports"
    tpl = read_export_datagrams(data_dir / "ipfix-srv6-template.pcap")
    dat = read_export_datagrams(data_dir / "ipfix-srv6-data.pcap")
    template_msg, data_msg = tpl.datagram(0), dat.datagram(0)
    # renumber: template at 0, then 1,200 data messages of one record each (seq 0..1199)
    burst = [data_msg[:8] + struct.pack(">I", k) + data_msg[12:] for k in range(1200)]
    first = template_msg[:8] + struct.pack(">I", 0) + template_msg[12:]
    in_order = decode_grams(FlowDecoder("srv6", 1), [first, *burst])
    reordered = decode_grams(FlowDecoder("srv6", 1), [*burst, first])
    # its records carry no IP address (SRv6 segments): each is set aside for that, in both
    # orders — none for want of its template (today: a restart, the burst dropped unread)
    expected = {C.REASON_NO_ADDRESS: 1200}
    assert in_order.stats.quarantine_by_reason == expected
    assert reordered.stats.quarantine_by_reason == expected
    assert reordered.stats.records_second_pass == 0  # (set aside, not decoded)
    assert reordered.stats.sequence[0]["restarts"] == 0


# --------------------------------------------------------------------------- 9: duplicates
def test_capture_holding_every_datagram_twice_gives_the_same_flows(tmp_path):
    msgs = writer_messages(1500)
    v9_grams = [
        v9([flowset(0, struct.pack(">HH", 256, len(FIELDS_A)) + b"".join(
            struct.pack(">HH", *f) for f in FIELDS_A))], seq=0),
        v9([flowset(256, rec_ab(1, 2, 3, 4, 6, 100, 1, 3_500_000, 3_590_000, 8))], seq=1),
    ]  # fmt: skip
    once = [*msgs, *v9_grams]
    twice = [g for g in once for _ in range(2)]
    endpoints = dict(src_address="192.0.2.7", dst_address="192.0.2.1", src_port=4739)
    results = {}
    for name, grams, write in (
        ("once.pcap", once, write_export_pcap),
        ("twice.pcap", twice, write_export_pcap),
        ("twice.pcapng", twice, write_export_pcapng),
    ):
        write(tmp_path / name, grams, dst_port=4739, time_ms=EXPORT_S * 1000, **endpoints)
        g = read_export_datagrams(tmp_path / name)
        results[name] = FlowDecoder("d", None).decode_datagrams(
            g.payload, g.starts, g.lengths, g.file_offsets, name
        )
    single = results["once.pcap"]
    assert single.stats.duplicate_datagrams == 0 and single.quarantine == []
    for name in ("twice.pcap", "twice.pcapng"):
        r = results[name]
        assert rows(r) == rows(single), name
        assert r.stats.duplicate_datagrams == len(once)
        assert (r.stats.records_in, r.stats.records_quarantined) == (single.stats.records_in, 0)
        assert [s["gaps"] for s in r.stats.sequence] == [0, 0]


def test_duplicates_across_calls_and_a_restart_reusing_a_sequence_number():
    decoder = FlowDecoder("d", None)
    tpl = flowset(0, struct.pack(">HH", 256, len(FIELDS_A)) + b"".join(
        struct.pack(">HH", *f) for f in FIELDS_A
    ))  # fmt: skip
    a = v9([tpl, flowset(256, rec_ab(1, 2, 3, 4, 6, 100, 1, 3_500_000, 3_590_000, 8))], seq=5)
    first = decode_grams(decoder, [a])
    again = decode_grams(decoder, [a])  # the collector's pcap after a tcpdump of the same
    assert (first.flows.num_rows, again.flows.num_rows) == (1, 0)
    assert again.stats.duplicate_datagrams == 1 and again.stats.records_in == 0
    # rebooted: the same sequence number 5, other records and uptime: decoded, not a duplicate
    b = v9(
        [tpl, flowset(256, rec_ab(1, 2, 3, 4, 6, 555, 1, 10_000, 19_000, 8))],
        seq=5, uptime=20_000, secs=int(EXPORT_S) + 100,
    )  # fmt: skip
    rebooted = decode_grams(decoder, [b])
    assert rebooted.stats.duplicate_datagrams == 0
    assert rebooted.flows.column("octets").to_pylist() == [555]
    assert rebooted.stats.sequence[0]["restarts"] == 1


def test_trust_counters_default_to_zero_and_are_ints():
    r = IpfixDecoder("x").decode(message(HEAD) + message([data_set(256, rec(0))], seq=1), "f")
    assert {k: getattr(r.stats, k) for k in TRUST_COUNTERS} == dict.fromkeys(TRUST_COUNTERS, 0)
    assert np.all([isinstance(getattr(r.stats, k), int) for k in TRUST_COUNTERS])


def test_ingest_report_and_quarantine_parquet_carry_the_new_keys(tmp_path):
    """The per-exporter-day report gets every counter (ints, summed over files); the quarantine
    Parquet gets observation_domain_id and template_id (null where unknown)."""
    buf = (
        message(HEAD, seq=0)
        + message([data_set(256, rec(0) + rec(1)), data_set(400, bytes(30))], seq=1)
        + message([data_set(256, rec(2) + bytes(2))], seq=6)
    )
    day = _ExporterDay()
    for name in ("a.ipfix", "b.ipfix"):
        day.add(IpfixDecoder("x").decode(buf, name), name, "ipfix")
    dup = decode_grams(FlowDecoder("x", None), [v5([v5_record(1, 2, 3, 4, 6, 1, 1, 1, 2)])] * 2)
    day.add(dup, "c.pcap", "pcap")
    report = _write_exporter_day(tmp_path, "edge-1", dt.date(2024, 6, 1), day)
    written = json.loads(
        (tmp_path / "ingest_report/date=2024-06-01/exporter=edge-1.json").read_text()
    )
    assert written == report
    assert {k: report[k] for k in TRUST_COUNTERS} == {
        "template_redefinitions": 0,
        "records_second_pass": 0,
        "records_default_sampling": 0,
        "invalid_sampling_announcements": 0,
        "duplicate_datagrams": 1,
        "trailing_bytes": 4,
        "records_estimated_unsplittable": 6,
    }
    assert report["records_in"] == report["records_decoded"] + report["records_quarantined"]
    q = pq.read_table(tmp_path / "quarantine/date=2024-06-01/exporter=edge-1/quarantine.parquet")
    assert q.schema == QUARANTINE_SCHEMA
    assert q.column("observation_domain_id").to_pylist() == [1, 1, 258]
    assert q.column("template_id").to_pylist() == [400, 400, None]


def test_formats_without_announcements_count_records_on_the_default_rate():
    """nfcapd / nfdump text: rows of unknown interval take the registry default — counted."""
    from pipeline.ingest.flow_readers import apply_default_sampling
    from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats

    cols = {f.name: pa.nulls(3, f.type) for f in FLOW_SCHEMA}
    cols["sampling_interval"] = pa.array([0, 2048, 0], pa.uint32())
    result = DecodeResult(pa.table(cols, schema=FLOW_SCHEMA), [], DecodeStats(3, 3))
    out = apply_default_sampling(result, 4096, "f.nfcapd")
    assert out.stats.records_default_sampling == 2


def test_v9_unsplittable_set_is_estimated_from_the_header_count():
    """NetFlow v9's sequence counts packets; its header count (records of the packet, templates
    included) gives the records of a flowset whose template was never seen."""
    known = flowset(256, rec_ab(1, 2, 3, 4, 6, 100, 1, 3_500_000, 3_590_000, 8) * 2)
    tpl = flowset(0, struct.pack(">HH", 256, len(FIELDS_A)) + b"".join(
        struct.pack(">HH", *f) for f in FIELDS_A
    ))  # fmt: skip
    grams = [
        v9([tpl], seq=0, count=1),
        v9([known, flowset(300, bytes(36))], seq=1, count=5),  # 2 known + 3 of template 300
        v9([flowset(300, bytes(8))], seq=2, count=40),  # 40 records cannot fit in 8 bytes
    ]
    r = decode_grams(FlowDecoder("x", None), grams)
    got = [(q.reason, q.records, q.template_id) for q in r.quarantine]
    assert got == [
        (C.REASON_TEMPLATE_NEVER_SEEN, 3, 300),
        (C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED, 1, 300),
    ]
    assert r.stats.records_estimated_unsplittable == 3 and r.stats.records_in == 2 + 3 + 1


def test_real_v9_data_without_its_template_is_counted_as_tshark_counts_it():
    """The real captures' data datagrams alone: their header counts give the records Wireshark
    decodes (and we decode) once the template capture comes first."""
    data_dir = require_shared() / "flow-exports"
    for name in ("data", "icmp-data", "samplingrate-data"):
        g = read_export_datagrams(data_dir / f"{name}.pcap")
        alone = FlowDecoder("x", 1).decode_datagrams(
            g.payload, g.starts, g.lengths, g.file_offsets, name
        )
        template = read_export_datagrams(data_dir / f"{name.replace('data', 'template')}.pcap")
        decoder = FlowDecoder("x", 1)
        decoder.decode_datagrams(
            template.payload, template.starts, template.lengths, template.file_offsets, "t"
        )
        full = decoder.decode_datagrams(g.payload, g.starts, g.lengths, g.file_offsets, name)
        assert full.stats.records_decoded > 0, name
        assert alone.stats.records_estimated_unsplittable == full.stats.records_decoded, name
        assert alone.stats.records_in == full.stats.records_in, name


def test_data_before_a_refused_template_is_counted_once_in_the_sequence():
    """A set that preceded its template, which then turns out refused: its records are set aside
    under the template's reason and the sequence accounting counts them once."""
    bad = [(8, 4), (12, 4), (1, 0), (2, 4)]  # zero-length octetDeltaCount: refused
    buf = (
        message([data_set(256, struct.pack(">III", 1, 2, 3) * 4)], seq=0)
        + message([template_set(template(256, bad))], seq=4)
        + message([data_set(256, struct.pack(">III", 1, 2, 3))], seq=4)
    )
    r = IpfixDecoder("x").decode(buf, "f.ipfix")
    assert r.stats.quarantine_by_reason == {C.REASON_ZERO_LENGTH_COUNTER: 5}
    (stream,) = r.stats.sequence
    assert (stream["gaps"], stream["missing"]) == (0, 0)
