"""IPFIX decoder on hand-built messages (written here with struct, independent of our writer)."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.decoder import IpfixDecoder
from pipeline.wire.records import FLOW_SCHEMA

EXPORT_S = 1_717_000_000


def message(sets: list[bytes], *, domain: int = 1, seq: int = 0, version: int = 10) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", version, 16 + len(body), EXPORT_S, seq, domain) + body


def data_set(set_id: int, body: bytes) -> bytes:
    return struct.pack(">HH", set_id, 4 + len(body)) + body


def template(tid: int, fields: list[tuple]) -> bytes:
    """Template record; a field is (ie, length) or (ie, length, enterprise number)."""
    out = struct.pack(">HH", tid, len(fields))
    for f in fields:
        if len(f) == 3:
            out += struct.pack(">HHI", f[0] | 0x8000, f[1], f[2])
        else:
            out += struct.pack(">HH", *f)
    return out


def template_set(*records: bytes) -> bytes:
    return data_set(2, b"".join(records))


def options_template_set(tid: int, scope: list[tuple], fields: list[tuple]) -> bytes:
    body = struct.pack(">HHH", tid, len(scope) + len(fields), len(scope))
    body += b"".join(struct.pack(">HH", *f) for f in scope + fields)
    return data_set(3, body)


# flowStart/End ms, src/dst v4, ports, protocol, direction, octets, packets, selectorId
V4_FIELDS = [
    (152, 8),
    (153, 8),
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (61, 1),
    (1, 8),
    (2, 8),
    (302, 4),
]
V4_FMT = ">QQIIHHBBQQI"


def v4_record(start, end, src, dst, sport, dport, proto, direction, octets, packets, sel=5):
    return struct.pack(
        V4_FMT, start, end, src, dst, sport, dport, proto, direction, octets, packets, sel
    )


def sampling_sets(selector: int = 5, interval: int = 1, space: int = 99) -> list[bytes]:
    """Options template 300 (scope selectorId) + one record: 1 packet in (interval+space)."""
    return [
        options_template_set(300, [(302, 4)], [(305, 4), (306, 4)]),
        data_set(300, struct.pack(">III", selector, interval, space)),
    ]


def accounting_holds(result) -> bool:
    s = result.stats
    return (
        s.records_in == s.records_decoded + s.records_quarantined
        and sum(s.quarantine_by_reason.values()) == s.records_quarantined
        and sum(q.records for q in result.quarantine) == s.records_quarantined
        and result.flows.num_rows == s.records_decoded + s.reverse_rows  # RFC 5103: 2 rows
        and result.flows.schema == FLOW_SCHEMA
    )


def test_fixed_v4_template_with_sampling_options():
    rec1 = v4_record(
        1_717_000_000_123, 1_717_000_001_000, 0xC0000201, 0xC6336401, 51000, 443, 6, 1, 1500, 3
    )
    rec2 = v4_record(
        1_717_000_002_000, 1_717_000_002_500, 0x0A000001, 0x08080808, 53, 40000, 17, 0, 2**64 - 1, 1
    )
    buf = message(
        [template_set(template(256, V4_FIELDS)), *sampling_sets(), data_set(256, rec1 + rec2)]
    )
    r = IpfixDecoder("r1").decode(buf, "f.ipfix")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 2 and r.stats.records_quarantined == 0
    t = r.flows.to_pydict()
    assert t["flow_start_ms"] == [1_717_000_000_123, 1_717_000_002_000]
    assert t["flow_end_ms"] == [1_717_000_001_000, 1_717_000_002_500]
    assert t["src_v4"] == [3221225985, 167772161]  # 192.0.2.1, 10.0.0.1
    assert t["dst_v4"] == [3325256705, 134744072]  # 198.51.100.1, 8.8.8.8
    assert t["src_v6_hi"] == [None, None]
    assert t["src_port"] == [51000, 53] and t["dst_port"] == [443, 40000]
    assert t["protocol"] == [6, 17] and t["flow_direction"] == [1, 0]
    assert t["octets"] == [1500, 18446744073709551615] and t["packets"] == [3, 1]
    assert t["ip_version"] == [4, 4] and t["observation_domain_id"] == [1, 1]
    assert t["sampling_interval"] == [100, 100]  # (1 + 99) / 1
    assert r.stats.sampling_intervals == {100: 2}
    assert r.stats.options_records == 1


def test_fixed_v6_template_and_domain_scoped_sampling_interval():
    fields = [(152, 8), (153, 8), (27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4)]
    src = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1
    dst = bytes.fromhex("2001067c04e8f00200000000000000ff")
    rec = (
        struct.pack(">QQ", 1000, 2000)
        + src
        + dst
        + struct.pack(">HHBII", 443, 50000, 17, 70000, 50)
    )
    opts = [
        options_template_set(400, [(149, 4)], [(34, 4), (35, 1)]),
        data_set(400, struct.pack(">IIB", 9, 512, 2)),  # samplingInterval 512 for domain 9
    ]
    buf = message([template_set(template(256, fields)), *opts, data_set(256, rec)], domain=9)
    r = IpfixDecoder("r6").decode(buf, "f")
    assert accounting_holds(r)
    t = r.flows.to_pydict()
    assert t["ip_version"] == [6]
    assert t["src_v6_hi"] == [0x20010DB800000000] and t["src_v6_lo"] == [1]
    assert t["dst_v6_hi"] == [0x2001067C04E8F002] and t["dst_v6_lo"] == [0xFF]
    assert t["src_v4"] == [None] and t["dst_v4"] == [None]
    assert t["octets"] == [70000] and t["packets"] == [50]  # reduced-size (4-byte) counters
    assert t["flow_direction"] == [None]  # IE 61 absent
    assert t["sampling_interval"] == [512] and t["observation_domain_id"] == [9]


VAR_FIELDS = [(8, 4), (12, 4), (82, 65535), (1, 8), (2, 8), (4, 1)]  # interfaceName is variable


def var_record(src: int, name: bytes, octets: int, proto: int, long_form: bool) -> bytes:
    length = b"\xff" + struct.pack(">H", len(name)) if long_form else bytes([len(name)])
    return struct.pack(">II", src, 1) + length + name + struct.pack(">QQB", octets, 1, proto)


def test_variable_length_field_short_and_long_forms_across_sets():
    set_a = var_record(1, b"eth0", 100, 6, False) + var_record(2, b"x" * 300, 200, 17, True)
    set_b = var_record(3, b"", 300, 1, False)
    set_c = (var_record(4, b"ge-0/0/0", 400, 6, False) + var_record(5, b"y" * 254, 500, 17, False)
             + var_record(6, b"z", 600, 47, True) + b"\x00\x00")  # fmt: skip  # 2 padding bytes
    buf = message([template_set(template(256, VAR_FIELDS)), data_set(256, set_a)]) + message(
        [data_set(256, set_b), data_set(256, set_c)], seq=2
    )
    r = IpfixDecoder("v", default_sampling_interval=64).decode(buf, "f")
    assert accounting_holds(r)
    assert r.stats.records_quarantined == 0
    t = r.flows.to_pydict()
    assert t["src_v4"] == [1, 2, 3, 4, 5, 6]  # input order across sets
    assert t["octets"] == [100, 200, 300, 400, 500, 600]
    assert t["protocol"] == [6, 17, 1, 6, 17, 47]
    assert t["sampling_interval"] == [64] * 6
    assert r.stats.sequence_gaps == 0


def test_variable_length_record_overrunning_its_set_is_quarantined():
    good = var_record(1, b"eth0", 100, 6, False)
    bad = struct.pack(">II", 7, 7) + bytes([200]) + b"s" * 20  # says 200 bytes, set has 20
    buf = message([template_set(template(256, VAR_FIELDS)), data_set(256, good + bad)])
    r = IpfixDecoder("v", default_sampling_interval=1).decode(buf, "f")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 1
    assert r.stats.quarantine_by_reason == {"record overruns set": 1}
    assert r.quarantine[0].payload == bad and r.quarantine[0].offset == 16 + 4 + 28 + 4 + len(good)


def test_zero_length_and_enterprise_fields_are_skipped():
    fields = [(8, 4), (61, 0), (1000, 6, 12345), (12, 4), (210, 0), (1, 8), (2, 8), (4, 1)]
    rec = struct.pack(">I", 0x01020304) + b"ENTERP" + struct.pack(">IQQB", 0x05060708, 99, 2, 6)
    buf = message([template_set(template(256, fields)), data_set(256, rec * 2)])
    r = IpfixDecoder("e", default_sampling_interval=8).decode(buf, "f")
    assert accounting_holds(r)
    t = r.flows.to_pydict()
    assert t["src_v4"] == [0x01020304] * 2 and t["dst_v4"] == [0x05060708] * 2
    assert t["octets"] == [99, 99] and t["packets"] == [2, 2] and t["protocol"] == [6, 6]
    assert t["flow_direction"] == [None, None]  # zero-length IE 61 carries no value
    # no timing IE: the message export time stands in
    assert t["flow_start_ms"] == [EXPORT_S * 1000] * 2


def test_template_withdrawal_then_data_is_template_unknown():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    buf = (
        message([template_set(template(256, V4_FIELDS)), *sampling_sets(), data_set(256, rec)])
        + message([template_set(struct.pack(">HH", 256, 0))], seq=2)
        + message([data_set(256, rec * 3)], seq=2)
    )
    r = IpfixDecoder("w").decode(buf, "f")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 1
    # the template is unknown at the end of the buffer too, so its record count is unknowable
    assert r.stats.quarantine_by_reason == {C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED: 1}


def test_withdraw_all_templates_of_a_domain():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    buf = message([template_set(template(256, V4_FIELDS), template(257, V4_FIELDS))]) + message(
        [template_set(struct.pack(">HH", 2, 0)), data_set(257, rec)]
    )
    r = IpfixDecoder("w", default_sampling_interval=1).decode(buf, "f")
    assert r.stats.quarantine_by_reason == {C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED: 1}


def test_same_template_id_in_two_domains_stays_separate():
    fields_b = [(12, 4), (8, 4), (2, 8), (1, 8)]  # other order, other layout
    rec_a = v4_record(10, 20, 0x0A000001, 0x0A000002, 1, 2, 6, 0, 1000, 10)
    rec_b = struct.pack(">IIQQ", 0x0B000002, 0x0B000001, 20, 2000)
    buf = (
        message([template_set(template(256, V4_FIELDS))], domain=1)
        + message([template_set(template(256, fields_b))], domain=2)
        + message([data_set(256, rec_a)], domain=1)
        + message([data_set(256, rec_b)], domain=2)
    )
    r = IpfixDecoder("d", default_sampling_interval=2).decode(buf, "f")
    assert accounting_holds(r)
    t = r.flows.to_pydict()
    assert t["observation_domain_id"] == [1, 2]
    assert t["src_v4"] == [0x0A000001, 0x0B000001] and t["dst_v4"] == [0x0A000002, 0x0B000002]
    assert t["octets"] == [1000, 2000] and t["packets"] == [10, 20]


def test_data_before_template_is_decoded_in_the_second_pass_in_input_order():
    early_recs = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8) + v4_record(9, 9, 9, 9, 9, 9, 17, 0, 9, 9)
    late = v4_record(50, 60, 70, 80, 90, 100, 6, 1, 110, 120)
    buf = message([data_set(256, early_recs)]) + message(
        [template_set(template(256, V4_FIELDS)), *sampling_sets(), data_set(256, late)], seq=2
    )
    r = IpfixDecoder("b").decode(buf, "early.ipfix")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 3 and r.quarantine == []
    t = r.flows.to_pydict()
    assert t["flow_start_ms"] == [1, 9, 50] and t["octets"] == [7, 9, 110]
    assert t["sampling_interval"] == [100, 100, 100]  # the sampler announced with the template
    assert r.stats.sequence_gaps == 0  # seq 0 + 2 early records + ... = 2


def test_data_whose_template_comes_in_a_later_call_is_quarantined_with_its_bytes():
    recs = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8) * 2
    early = message([data_set(256, recs)])
    r = IpfixDecoder("b").decode(early, "early.ipfix")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 0
    assert r.stats.quarantine_by_reason == {
        C.REASON_TEMPLATE_NEVER_SEEN_UNCOUNTED: 1
    }  # length of a record unknown
    (q,) = r.quarantine
    assert (q.source, q.offset, q.length, q.payload) == (
        "early.ipfix",
        16,
        4 + len(recs),
        early[16:],
    )


def test_truncated_message_is_quarantined_and_the_rest_decoded():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    good = message([template_set(template(256, V4_FIELDS)), *sampling_sets(), data_set(256, rec)])
    cut = message([data_set(256, rec * 2)], seq=2)[:-10]
    r = IpfixDecoder("t").decode(good + cut, "f")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 1
    assert r.stats.quarantine_by_reason == {"truncated message": 1}
    assert r.quarantine[0].offset == len(good) and r.quarantine[0].payload == cut


def test_message_cut_short_mid_file_does_not_swallow_the_next_ones():
    """The cut message's length field reaches into the next message: resync inside its span."""
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    head = message([template_set(template(256, V4_FIELDS)), *sampling_sets()])
    data = [message([data_set(256, rec * 2)], seq=1 + 2 * i) for i in range(6)]
    for at in (1, 5):  # after a single message; inside a run of equal-length messages
        two_sets = message([data_set(256, rec), data_set(256, rec)], seq=2 * at - 1)  # a replay
        cut = two_sets[: 16 + 54 + 30]  # whole first set (4 + 50 bytes), 30 bytes of the second
        buf = head + b"".join(data[:at]) + cut + b"".join(data[at:])
        r = IpfixDecoder("t").decode(buf, "f")
        assert accounting_holds(r)
        assert r.stats.records_decoded == 13  # 6 messages × 2 + the cut one's whole set
        cut_at = len(head) + len(data[0]) * at
        assert [(q.reason, q.offset, q.length) for q in r.quarantine] == [
            ("truncated message", cut_at + 16 + 54, 30)
        ]


def test_bad_set_lengths():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    tmpl = message([template_set(template(256, V4_FIELDS)), *sampling_sets()])
    too_short = message([struct.pack(">HH", 256, 2) + rec], seq=1)
    too_long = message([struct.pack(">HH", 256, 500) + rec], seq=1)
    r = IpfixDecoder("s").decode(
        tmpl + too_short + too_long + message([data_set(256, rec)], seq=1), "f"
    )
    assert accounting_holds(r)
    assert r.stats.records_decoded == 1
    assert r.stats.quarantine_by_reason == {"bad set length": 2}
    assert [q.offset for q in r.quarantine] == [len(tmpl) + 16, len(tmpl) + len(too_short) + 16]


def test_unknown_version_resynchronises_on_next_message():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    tmpl = message([template_set(template(256, V4_FIELDS)), *sampling_sets()])
    v9 = message([data_set(256, rec)], version=9)
    r = IpfixDecoder("u").decode(tmpl + v9 + message([data_set(256, rec)], seq=1), "f")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 1 and r.stats.messages == 2
    assert r.stats.quarantine_by_reason == {"unknown version": 1}
    assert r.quarantine[0].payload == v9


def test_run_of_equal_length_messages_with_one_broken_header():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    head = message([template_set(template(256, V4_FIELDS)), *sampling_sets()])
    msgs = [message([data_set(256, rec * 2)], seq=1 + 2 * i) for i in range(200)]
    broken = b"\x00\x0b" + msgs[150][2:]  # version 11
    buf = head + b"".join(msgs[:150]) + broken + b"".join(msgs[151:])
    r = IpfixDecoder("run").decode(buf, "f")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 398 and r.stats.messages == 200
    assert r.stats.quarantine_by_reason == {"unknown version": 1}
    assert r.quarantine[0].offset == len(head) + 150 * len(msgs[0])
    assert r.stats.sequence_gaps == 1  # the records of the broken message are missing


def test_sampling_rate_missing_is_quarantined_never_assumed_one():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    buf = message([template_set(template(256, V4_FIELDS)), data_set(256, rec * 3)])
    r = IpfixDecoder("m").decode(buf, "f")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 0
    assert r.stats.quarantine_by_reason == {"sampling rate missing": 3}
    r2 = IpfixDecoder("m", default_sampling_interval=1024).decode(buf, "f")
    assert r2.flows.column("sampling_interval").to_pylist() == [1024] * 3


def test_selector_of_record_picks_its_sampler():
    rec5 = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8, sel=5)
    rec6 = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8, sel=6)
    rec7 = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8, sel=7)
    buf = message(
        [
            template_set(template(256, V4_FIELDS)),
            *sampling_sets(5, 1, 99),
            data_set(300, struct.pack(">III", 6, 2, 4094)),  # 2 in 4096 → N = 2048
            data_set(256, rec5 + rec6 + rec7),
        ]
    )
    r = IpfixDecoder("s").decode(buf, "f")
    assert r.flows.column("sampling_interval").to_pylist() == [100, 2048]
    assert r.stats.quarantine_by_reason == {"sampling rate missing": 1}  # selector 7 unknown


def test_sequence_gaps_padding_and_bad_templates():
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    buf = (
        message([template_set(template(256, V4_FIELDS)), *sampling_sets()], seq=0)  # 1 options rec
        + message([data_set(256, rec * 2 + b"\x00" * 3)], seq=1)  # padding < record: fine
        + message([data_set(256, rec)], seq=3)
        + message([data_set(256, rec)], seq=10)  # expected 4: a gap
        + message(
            [template_set(template(260, [(8, 3), (1, 8)]), template(261, [(210, 0)]))], seq=11
        )
        + message([data_set(260, b"\x01" * 22), data_set(261, b"\x00" * 4)], seq=11)
    )
    r = IpfixDecoder("g").decode(buf, "f")
    assert accounting_holds(r)
    assert r.stats.records_decoded == 4 and r.stats.sequence_gaps == 1
    assert r.stats.quarantine_by_reason == {"implausible field length": 2, "record length 0": 1}


def test_empty_buffer():
    r = IpfixDecoder("x").decode(b"", "f")
    assert accounting_holds(r) and r.stats.records_in == 0 and r.flows.num_rows == 0


def _valid_stream() -> bytes:
    rec = v4_record(1, 2, 3, 4, 5, 6, 6, 0, 7, 8)
    var = var_record(1, b"eth0", 100, 6, False)
    return message(
        [
            template_set(template(256, V4_FIELDS), template(257, VAR_FIELDS)),
            *sampling_sets(),
            data_set(256, rec * 3),
            data_set(257, var * 2),
        ]
    )


VALID = _valid_stream()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_accounting_holds(noise: bytes):
    r = IpfixDecoder("h").decode(noise, "noise")
    assert accounting_holds(r)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8),
    st.integers(0, len(VALID)),
)
@example(flips=[(49, 232)], cut=0)  # a field turned into a reverse (RFC 5103) counter: 2 rows
def test_mutated_streams_never_raise_and_accounting_holds(flips, cut):
    buf = bytearray(VALID + VALID)
    for pos, value in flips:
        buf[pos] = value
    r = IpfixDecoder("h", default_sampling_interval=1).decode(bytes(buf[: len(VALID) + cut]), "m")
    assert accounting_holds(r)
    assert np.all(np.isin(r.flows.column("ip_version").to_numpy(), [4, 6]))
