"""Hostile input: every decoder never raises, stays fast and small, accounts for every record and
loses nothing around a bad piece. Bounded run for CI; `BBTR_FUZZ_EXAMPLES=2000` runs more locally,
`python -m bench.fuzz` runs a long coverage-guided one.

"""

from __future__ import annotations

import bz2
import os
import random
import struct
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.decoder import FlowDecoder
from tests.support.fuzz_corpus import (
    CAPTURES_DIR,
    NFDUMP_CSV,
    SMALL_FIELDS,
    SMALL_TID,
    TARGETS,
    TEXT_TARGETS,
    V9_HEADER,
    VERSIONS,
    call_target,
    capture_datagrams,
    check_result,
    flow_rows,
    ipfix_message,
    ipfix_options_template,
    ipfix_set,
    ipfix_stream_messages,
    ipfix_template,
    known_reasons,
    missing_rows,
    mutate,
    mutate_messages,
    run_datagrams,
    run_ipfix,
    run_nfcapd,
    run_nfdump_csv,
    run_nfdump_json,
    run_pcap,
    small_ipfix_stream,
    small_records,
    structured_template_case,
    v5_packet,
    v9_flowset,
    v9_options_template,
    v9_packet,
    v9_writer_datagrams,
    written_captures,
    written_nfcapd,
)

pytestmark = pytest.mark.slow  # the bounded fuzz run (~45 s)

EXAMPLES = int(os.environ.get("BBTR_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # per-call time is checked by call_target (CALL_LIMIT_S), without flakiness
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RNGS = st.randoms(use_true_random=False, note_method_calls=False)


def target(name: str):
    """The named fuzz target (reader, seeds)."""
    return TARGETS[name]


def decode(data: bytes):
    (result,) = run_ipfix(data, "fuzz.input")
    return result


# =========================================================================== IPFIX file stream
@FUZZ
@given(rng=RNGS, which=st.integers(0, 20))
def test_ipfix_mutated_seeds_keep_the_contract(rng, which):
    seeds = TARGETS["ipfix"].seeds()
    seed = seeds[which % len(seeds)]
    from tests.support.fuzz_corpus import split_ipfix_messages

    msgs = split_ipfix_messages(seed)
    for _ in range(rng.randrange(1, 4)):
        msgs = mutate_messages(msgs, rng)
    data = b"".join(msgs)
    if rng.random() < 0.5:
        data = mutate(data, rng, rng.randrange(1, 4))
    call_target(TARGETS["ipfix"], data, source="fuzz.input")


@FUZZ
@given(noise=st.binary(max_size=1024), header=st.booleans())
def test_ipfix_random_bytes_keep_the_contract(noise, header):
    if header:  # a plausible message header so the noise reaches the set/template parser
        noise = struct.pack(">HHIII", 10, 16 + len(noise), 0, 0, 7) + noise
    call_target(TARGETS["ipfix"], noise, source="fuzz.input")


@FUZZ
@given(rng=RNGS)
def test_ipfix_adversarial_templates_keep_the_contract(rng):
    """Zero-length fields, zero/huge field counts, 65535 everywhere, odd set lengths, scopes."""
    msgs = structured_template_case(rng, 10)
    call_target(TARGETS["ipfix"], b"".join(msgs), source="fuzz.input")


def test_ipfix_truncated_at_every_offset_never_invents_flows():
    msgs = small_ipfix_stream(n_messages=3, per_message=3)
    data = b"".join(msgs)
    full = decode(data)
    assert full.flows.num_rows == 9 and full.stats.records_quarantined == 0
    boundaries = {sum(map(len, msgs[:k])): 3 * max(k - 1, 0) for k in range(len(msgs) + 1)}
    for cut in range(len(data)):
        call = call_target(TARGETS["ipfix"], data[:cut], source="fuzz.input")
        (part,) = call.results
        assert missing_rows(part, full) == 0, f"cut {cut}: flows not in the full stream"
        if cut in boundaries:  # whole messages: exactly their flows, nothing quarantined
            assert part.flows.num_rows == boundaries[cut] and not part.quarantine, cut
        else:
            assert part.stats.records_quarantined >= 1, cut


@pytest.mark.parametrize("version", VERSIONS)
def test_ipfix_version_field_of_one_message(version):
    msgs = small_ipfix_stream(n_messages=3, per_message=2)
    broken = bytearray(msgs[2])
    broken[0:2] = version.to_bytes(2, "big")
    result = decode(b"".join([*msgs[:2], bytes(broken), msgs[3]]))
    if version == 10:
        assert result.flows.num_rows == 6 and not result.quarantine
    else:
        assert result.flows.num_rows == 4
        assert [(q.offset, q.reason) for q in result.quarantine] == [
            (len(msgs[0]) + len(msgs[1]), C.REASON_UNKNOWN_VERSION)
        ]


@FUZZ
@given(
    garbage=st.binary(min_size=1, max_size=200).filter(lambda g: b"\x00\x0a" not in g),
    where=st.integers(1, 3),
)
def test_ipfix_garbage_between_messages_loses_nothing(garbage, where):
    msgs = small_ipfix_stream(n_messages=3, per_message=3)
    valid = decode(b"".join(msgs))
    spliced = b"".join([*msgs[:where], garbage, *msgs[where:]])
    (result,) = call_target(TARGETS["ipfix"], spliced, source="fuzz.input").results
    assert missing_rows(valid, result) == 0
    assert result.flows.num_rows == valid.flows.num_rows
    assert result.stats.records_quarantined >= 1


@pytest.mark.parametrize("set_length", [0, 1, 3, 5, 65535])
def test_ipfix_bad_set_between_valid_messages_loses_nothing(set_length):
    msgs = small_ipfix_stream(n_messages=2, per_message=3)
    bad = ipfix_message(ipfix_set(SMALL_TID, small_records(2, seed=9), length=set_length))
    result = decode(b"".join([msgs[0], msgs[1], bad, msgs[2]]))
    valid = decode(b"".join(msgs))
    assert missing_rows(valid, result) == 0 and result.flows.num_rows == 6
    if set_length == 5:  # 1 byte of records: a short data set, not a bad length (RFC 7011 §3.3.1)
        return
    assert [q.reason for q in result.quarantine] == [C.REASON_BAD_SET_LENGTH]
    assert result.quarantine[0].offset == len(msgs[0]) + len(msgs[1]) + 16


def test_ipfix_truncated_message_between_valid_messages_loses_nothing():
    msgs = small_ipfix_stream(n_messages=3, per_message=3)
    truncated = msgs[1][:40]  # header says 16+4+3*33 = 119 bytes, 40 present
    valid = decode(b"".join(msgs))
    result = decode(b"".join([msgs[0], msgs[1], truncated, msgs[2], msgs[3]]))
    assert missing_rows(valid, result) == 0
    assert result.flows.num_rows == 9


# --------------------------------------------------------------------------- known hard cases
def test_zero_length_field_template_does_not_hang():
    """PyPI `netflow` loops forever on a template whose record length is 0."""
    tpl = ipfix_message(ipfix_set(2, ipfix_template(400, [(8, 0), (12, 0)])))
    data = ipfix_message(ipfix_set(400, b"\x01" * 64))
    call = call_target(TARGETS["ipfix"], tpl + data, source="fuzz.input")
    (result,) = call.results
    assert result.flows.num_rows == 0
    assert [q.reason for q in result.quarantine] == [C.REASON_RECORD_LENGTH_ZERO] * 2
    assert result.quarantine[1].offset == len(tpl) + 16


def test_zero_field_count_and_huge_field_count_templates():
    zero = ipfix_set(2, ipfix_template(401, []))
    huge = ipfix_set(2, ipfix_template(402, [(8, 4)], count=65535))
    msgs = small_ipfix_stream(n_messages=1, per_message=2)
    result = decode(ipfix_message(zero) + ipfix_message(huge) + b"".join(msgs))
    assert result.flows.num_rows == 2
    assert C.REASON_BAD_TEMPLATE in {q.reason for q in result.quarantine}


def test_field_length_65535_everywhere_does_not_hang():
    tpl = ipfix_message(ipfix_set(2, ipfix_template(403, [(8, 65535)] * 40)))
    records = bytes([255, 0xFF, 0xFF]) + bytes(range(200))  # long form claims 65535 bytes
    call = call_target(TARGETS["ipfix"], tpl + ipfix_message(ipfix_set(403, records)), source="x")
    assert call.results[0].flows.num_rows == 0


@pytest.mark.parametrize("set_length", [0, 1, 3])
def test_set_length_smaller_than_set_header(set_length):
    msgs = small_ipfix_stream(n_messages=1, per_message=2)
    good_set = ipfix_set(SMALL_TID, small_records(2, seed=7))
    bad = ipfix_message(good_set, ipfix_set(SMALL_TID, b"\0" * 8, length=set_length))
    result = decode(b"".join(msgs) + bad)
    assert result.flows.num_rows == 4  # the set before the bad one is kept
    assert [(q.reason, q.offset) for q in result.quarantine] == [
        (C.REASON_BAD_SET_LENGTH, len(b"".join(msgs)) + 16 + len(good_set))
    ]


@pytest.mark.parametrize("scope_count", [0, len(SMALL_FIELDS) + 1])
def test_options_template_scope_count_zero_or_above_field_count(scope_count):
    opt = ipfix_set(3, ipfix_options_template(500, scope_count, [(302, 4), (305, 4), (306, 4)]))
    opt_data = ipfix_set(500, struct.pack(">III", 1, 1, 99))
    msgs = small_ipfix_stream(n_messages=1, per_message=2)
    result = decode(ipfix_message(opt, opt_data) + b"".join(msgs))
    assert result.flows.num_rows == 2
    assert sorted(q.reason for q in result.quarantine) == [C.REASON_BAD_TEMPLATE] * 2
    assert result.stats.options_records == 0  # never used as a sampler announcement


@pytest.mark.parametrize("length", [0, 1, 15])
def test_ipfix_message_length_zero_or_below_16(length):
    msgs = small_ipfix_stream(n_messages=2, per_message=2)
    short = ipfix_message(length=length)
    result = decode(b"".join([msgs[0], msgs[1], short, msgs[2]]))
    assert result.flows.num_rows == 4
    assert [(q.offset, q.reason) for q in result.quarantine] == [
        (len(msgs[0]) + len(msgs[1]), C.REASON_SHORT_MESSAGE)
    ]


def test_nested_garbage_after_valid_message():
    """Garbage inside a message after its valid set, and garbage after the file's last message."""
    msgs = small_ipfix_stream(n_messages=1, per_message=3)
    inner = ipfix_message(ipfix_set(SMALL_TID, small_records(2, seed=4)), b"\xde\xad\xbe")
    tail = b"\xff" * 11
    result = decode(b"".join(msgs) + inner + tail)
    assert result.flows.num_rows == 5
    head = len(b"".join(msgs))
    assert [(q.offset, q.reason) for q in result.quarantine] == [
        (head + len(inner) - 3, C.REASON_BAD_SET_LENGTH),
        (head + len(inner), C.REASON_TRUNCATED_MESSAGE),
    ]


# =========================================================================== datagrams v5/v9/IPFIX
@FUZZ
@given(rng=RNGS, which=st.integers(0, 40))
def test_datagrams_mutated_seeds_keep_the_contract(rng, which):
    t = target("datagrams")
    seeds = t.seeds()
    grams = list(seeds[which % len(seeds)])
    for _ in range(rng.randrange(1, 4)):
        grams = mutate_messages(grams, rng)
    call_target(t, grams, source="fuzz.input")


@FUZZ
@given(grams=st.lists(st.binary(max_size=300), max_size=4), version=st.sampled_from((5, 9, 10)))
def test_datagrams_random_bytes_keep_the_contract(grams, version):
    t = target("datagrams")
    grams = [version.to_bytes(2, "big") + g for g in grams]
    call_target(t, grams, source="fuzz.input")


@FUZZ
@given(rng=RNGS, version=st.sampled_from((9, 10)))
def test_datagrams_adversarial_templates_keep_the_contract(rng, version):
    t = target("datagrams")
    call_target(t, structured_template_case(rng, version), source="fuzz.input")


@FUZZ
@given(
    garbage=st.binary(max_size=120),
    where=st.integers(1, 6),
    kind=st.sampled_from(("garbage", "truncated", "bad set", "v5 short")),
    which=st.integers(0, 40),
)
def test_datagrams_bad_datagram_between_valid_ones_loses_nothing(garbage, where, kind, which):
    t = target("datagrams")
    seeds = t.seeds()
    grams = list(seeds[which % len(seeds)])
    where = min(where, len(grams))
    victim = grams[min(where, len(grams) - 1)]
    bad = {
        "garbage": b"\xde\xad" + garbage,
        "truncated": victim[: len(garbage) % max(len(victim), 1)],
        "bad set": victim[:16] + b"\x01\x00\x00\x03" + victim[20:] if len(victim) > 24 else victim,
        "v5 short": v5_packet(2, count=30),
    }[kind]
    valid = run_datagrams(grams, "fuzz.input")[0]
    (result,) = call_target(t, [*grams[:where], bad, *grams[where:]], source="fuzz.input").results
    assert missing_rows(valid, result) == 0


@FUZZ
@given(rng=RNGS)
def test_unsplittable_sets_reordering_and_duplicates_keep_the_accounting(rng):
    """Data sets of a template never seen, messages swapped, datagrams captured twice: records
    in = decoded + quarantined with the sequence estimates, equal to the records sent, and the
    sequence accounting shows nothing missing; duplicates change no total."""
    tpl = ipfix_message(ipfix_set(2, ipfix_template(SMALL_TID, SMALL_FIELDS)))
    msgs, seq, sent, unknown = [tpl], 0, 0, 0
    for m in range(rng.randrange(2, 12)):
        n = rng.randrange(1, 5)
        sets = [ipfix_set(SMALL_TID, small_records(n, seed=m))]
        k = rng.randrange(1, 6) if rng.random() < 0.5 else 0
        if k:
            sets.insert(rng.randrange(2), ipfix_set(999, rng.randbytes(12 * k)))
        msgs.append(ipfix_message(*sets, seq=seq))
        seq, sent, unknown = seq + n + k, sent + n + k, unknown + k
    msgs.append(ipfix_message(ipfix_set(SMALL_TID, small_records(1, seed=99)), seq=seq))
    sent += 1
    for _ in range(rng.randrange(3)):  # swap two data messages (the template stays first)
        i = rng.randrange(1, len(msgs) - 1)
        msgs[i], msgs[i + 1] = msgs[i + 1], msgs[i]
    (result,) = call_target(TARGETS["ipfix"], b"".join(msgs), source="fuzz.input").results
    s = result.stats
    assert s.records_in == sent and s.records_estimated_unsplittable == unknown, s
    (stream,) = s.sequence
    assert stream["missing"] == 0 and stream["restarts"] == 0, stream
    twice = [g for g in msgs for _ in range(rng.randrange(1, 3))]
    once = run_datagrams(msgs, "fuzz.input")[0]
    (again,) = call_target(target("datagrams"), twice, source="fuzz.input").results
    assert flow_rows(again) == flow_rows(once) == flow_rows(result)
    assert again.stats.duplicate_datagrams == len(twice) - len(msgs)
    assert again.stats.records_in == once.stats.records_in == sent


def test_v9_zero_length_field_template_does_not_hang():
    t = target("datagrams")
    tpl = v9_packet(v9_flowset(0, struct.pack(">HHHHHH", 400, 2, 8, 0, 12, 0)))
    data = v9_packet(v9_flowset(400, b"\x01" * 64))
    (result,) = call_target(t, [tpl, data], source="fuzz.input").results
    assert result.flows.num_rows == 0 and result.stats.records_quarantined >= 1


@pytest.mark.parametrize("scope_length", [0, 2, 5, 6])
def test_v9_options_template_scope_length_not_multiple_of_4(scope_length):
    t = target("datagrams")
    grams = v9_writer_datagrams()
    opt = v9_flowset(1, v9_options_template(600, [(1, 4)], [(34, 4), (35, 1)], scope_length))
    opt_data = v9_flowset(600, struct.pack(">IIB", 1, 4096, 2))
    bad = v9_packet(opt, opt_data, count=2)
    valid = run_datagrams(list(grams), "fuzz.input")[0]
    (result,) = call_target(t, [grams[0], bad, *grams[1:]], source="fuzz.input").results
    assert missing_rows(valid, result) == 0
    assert result.flows.num_rows == valid.flows.num_rows
    # a rejected options template must not change the interval of the writer's flows
    assert set(result.flows.column("sampling_interval").to_pylist()) == set(
        valid.flows.column("sampling_interval").to_pylist()
    )


def test_v5_count_greater_than_records_present():
    t = target("datagrams")
    good = v5_packet(2)
    short = v5_packet(3, count=30) + b"\x00"  # says 30 records, carries 3 and 1 more byte
    later = good[:16] + struct.pack(">I", 5) + good[20:]  # the next packet (flow sequence 5)
    (result,) = call_target(t, [good, short, later], source="fuzz.input").results
    assert result.flows.num_rows == 4  # the two good packets; nothing salvaged or invented
    assert [(q.offset, q.length, q.reason, q.records) for q in result.quarantine] == [
        (len(good), len(short), C.REASON_V5_COUNT_MISMATCH, 3)
    ]


DATAGRAM_VERSION_REASON = {
    0: C.REASON_UNKNOWN_VERSION,
    1: C.REASON_UNKNOWN_VERSION,
    5: C.REASON_V5_COUNT_MISMATCH,  # v9 bytes read as v5: count 11 needs 24 + 11*48 bytes
    10: C.REASON_SHORT_MESSAGE,  # v9 count 11 read as IPFIX message length
    11: C.REASON_UNKNOWN_VERSION,
    0xFFFF: C.REASON_UNKNOWN_VERSION,
}


@pytest.mark.parametrize("version", sorted(DATAGRAM_VERSION_REASON))
def test_datagram_version_field_of_one_v9_datagram(version):
    """Only the datagram with the bad version is lost; it is quarantined where it starts."""
    t = target("datagrams")
    grams = list(v9_writer_datagrams())
    broken = bytearray(grams[2])
    broken[0:2] = version.to_bytes(2, "big")
    valid = run_datagrams(grams, "fuzz.input")[0]
    unit = [*grams[:2], bytes(broken), *grams[3:]]
    (result,) = call_target(t, unit, source="fuzz.input").results
    assert int.from_bytes(grams[2][2:4], "big") == 11  # records in the victim datagram
    assert missing_rows(valid, result) == 11 and missing_rows(result, valid) == 0
    assert [(q.offset, q.reason) for q in result.quarantine] == [
        (len(grams[0]) + len(grams[1]), DATAGRAM_VERSION_REASON[version])
    ]


def test_v9_header_count_lies_and_flowset_length_zero():
    t = target("datagrams")
    grams = v9_writer_datagrams()
    lying = bytearray(grams[-1])
    lying[2:4] = (65535).to_bytes(2, "big")
    zero = grams[-1][: V9_HEADER.size] + b"\x01\x00\x00\x00" + grams[-1][V9_HEADER.size + 4 :]
    valid = run_datagrams(list(grams), "fuzz.input")[0]
    (result,) = call_target(t, [*grams, bytes(lying), zero], source="fuzz.input").results
    assert missing_rows(valid, result) == 0
    assert result.stats.records_quarantined >= 1


def test_real_captures_decode_within_the_contract():
    t = target("datagrams")
    caps = capture_datagrams()
    if not caps:
        pytest.skip(f"real captures not available: {CAPTURES_DIR} is absent")
    for name, grams in caps.items():
        call = call_target(t, list(grams), source=name)
        stats = call.results[0].stats
        assert stats.records_in + stats.options_records >= 1, name


# =========================================================================== nfcapd
@FUZZ
@given(rng=RNGS, which=st.integers(0, 5))
def test_nfcapd_mutated_seeds_keep_the_contract(rng, which):
    t = target("nfcapd")
    seeds = t.seeds()
    if not seeds:
        pytest.skip("no nfcapd seed (shared data absent and writer missing)")
    call_target(t, mutate(seeds[which % len(seeds)], rng, rng.randrange(1, 5)), source="fuzz.input")


@FUZZ
@given(noise=st.binary(max_size=600))
def test_nfcapd_random_bytes_keep_the_contract(noise):
    t = target("nfcapd")
    call_target(t, noise, source="fuzz.input")


def test_nfcapd_truncated_at_many_offsets():
    t = target("nfcapd")
    seeds = t.seeds()
    if not seeds:
        pytest.skip("no nfcapd seed (shared data absent and writer missing)")
    data = seeds[0]
    for cut in sorted({*range(0, min(len(data), 200)), *range(0, len(data), 37)}):
        call_target(t, data[:cut], source="fuzz.input")


# file header (magic a50c, layout, nfdump 1.7.1, created 0, compression, …, blocks 1), one block
NFCAPD_REASON_CASES = {  # minimal files whose quarantine reason is not a REASON_* constant
    "layout 3": "0ca50300000107010000000000000000" + "00" * 24,
    "compression id 5": "0ca50200000107010000000000000000" + "05" + "00" * 19 + "01000000"
    "01000000"
    "04000000"
    "0300"
    "0000"
    "00000000",
    "block type 7": "0ca50200000107010000000000000000" + "00" * 20 + "01000000"
    "01000000"
    "04000000"
    "0700"
    "0000"
    "00000000",
}


@pytest.mark.parametrize("case", sorted(NFCAPD_REASON_CASES))
def test_nfcapd_quarantine_reasons_are_reason_constants(case):
    data = bytes.fromhex(NFCAPD_REASON_CASES[case])
    results = run_nfcapd(data, "fuzz.nfcapd")
    reasons = {q.reason for r in results for q in r.quarantine}
    assert reasons and reasons <= known_reasons(), reasons


def test_nfcapd_bz2_block_cannot_blow_up_memory():
    """Compression 2 (bz2) and one block whose payload is 24 MiB of zeros compressed to 60 bytes."""
    payload = bz2.compress(b"\0" * 24 * 2**20, 9)
    header = bytes.fromhex("0ca5020000010701000000000000000002" + "00" * 19 + "01000000")
    block = struct.pack("<IIHH", 1, len(payload), 3, 0) + payload
    data = header + block
    assert len(data) < 200
    call_target(target("nfcapd"), data, trace_memory=True, source="fuzz.nfcapd")


def test_nfcapd_written_file_accounts_every_record():
    t = target("nfcapd")
    data = written_nfcapd()
    results = call_target(t, data, source="fuzz.nfcapd").results
    assert sum(r.stats.records_in for r in results) == 30  # 20 + 10 flows written
    assert (
        sum(r.flows.num_rows for r in results) + sum(r.stats.records_quarantined for r in results)
        == 30
    )


@pytest.mark.parametrize("victim", [1, 2])
def test_nfcapd_bad_block_between_valid_blocks_loses_nothing(victim):
    """Written file: meta block, exporter 1 block (20 flows), exporter 2 block (10), appendix.

    An unknown block type on one data block quarantines its records only."""
    t = target("nfcapd")
    data = written_nfcapd()
    blocks, pos = [], 40  # nfcapd_format.FILE_HEADER.size; block header: <IIHH records, size, type
    while pos + 12 <= len(data):
        n, size, _ = struct.unpack_from("<IIH", data, pos)
        blocks.append((pos, n))
        pos += 12 + size
    assert [n for _, n in blocks] == [5, 20, 10, 2]
    off, n_bad = blocks[victim]
    broken = bytearray(data)
    broken[off + 8 : off + 10] = (7).to_bytes(2, "little")
    full = call_target(t, data, source="fuzz.nfcapd").results
    results = call_target(t, bytes(broken), source="fuzz.nfcapd").results
    rows_full = sum((flow_rows(r) for r in full), Counter())
    rows = sum((flow_rows(r) for r in results), Counter())
    assert not rows - rows_full and sum((rows_full - rows).values()) == n_bad
    assert [(q.offset, q.records) for r in results for q in r.quarantine] == [(off, n_bad)]


# =========================================================================== pcap
@FUZZ
@given(rng=RNGS, which=st.integers(0, 20))
def test_pcap_mutated_captures_keep_the_contract(rng, which):
    t = target("pcap")
    seeds = t.seeds()
    if not seeds:
        pytest.skip(f"real captures not available: {CAPTURES_DIR} is absent")
    call_target(t, mutate(seeds[which % len(seeds)], rng, rng.randrange(1, 4)), source="fuzz.pcap")


@FUZZ
@given(noise=st.binary(max_size=300), magic=st.sampled_from((b"", b"\xd4\xc3\xb2\xa1")))
def test_pcap_random_bytes_raise_only_value_error_naming_the_file(noise, magic):
    t = target("pcap")
    call_target(t, magic + noise, source="fuzz.pcap")


def test_pcap_truncated_at_every_offset():
    t = target("pcap")
    seeds = sorted(t.seeds(), key=len)
    if not seeds:
        pytest.skip(f"real captures not available: {CAPTURES_DIR} is absent")
    data = seeds[0]
    for cut in range(len(data) + 1):
        call_target(t, data[:cut], source="fuzz.pcap")


@FUZZ
@given(rng=RNGS, which=st.integers(0, 20))
def test_pcap_then_decoder_quarantine_points_into_the_file(rng, which):
    """Mutated captures read then decoded: quarantine offsets are offsets of the capture file."""
    t = target("pcap")
    seeds = t.seeds()
    data = mutate(seeds[which % len(seeds)], rng, rng.randrange(1, 4))
    call = call_target(t, data, source="fuzz.pcap")
    for grams in call.results:
        result = FlowDecoder("fuzz", None).decode_datagrams(
            grams.payload, grams.starts, grams.lengths, grams.file_offsets, "fuzz.pcap"
        )
        check_result(result, data, "fuzz.pcap")


def test_written_pcap_and_pcapng_truncated_at_every_offset():
    t = target("pcap")
    for data in written_captures():
        full = run_pcap(data, "fuzz.pcap")[0]
        assert len(full) == 6 and not full.problems  # 4 v9 + 2 v5 writer datagrams
        for cut in range(0, len(data) + 1, 7):
            call_target(t, data[:cut], source="fuzz.pcap")


# =========================================================================== nfdump -o csv/json
@FUZZ
@given(rng=RNGS, which=st.integers(0, 3), kind=st.sampled_from(TEXT_TARGETS))
def test_nfdump_text_mutated_seeds_keep_the_contract(rng, which, kind):
    t = target(kind)
    seeds = t.seeds()
    if not seeds:
        pytest.skip(f"no {kind} seed (shared data absent)")
    data = mutate(seeds[which % len(seeds)], rng, rng.randrange(1, 5))
    call_target(t, data, source="fuzz.text")


@FUZZ
@given(noise=st.binary(max_size=400), kind=st.sampled_from(TEXT_TARGETS))
def test_nfdump_text_random_bytes_keep_the_contract(noise, kind):
    call_target(target(kind), noise, source="fuzz.text")


@pytest.mark.parametrize(
    "bad", [b"garbage,1,2", b"\xff\xfe", b"2026-12-25 01:53:43,2026-12-25 01:53:43,0.000,"]
)
def test_nfdump_csv_bad_line_between_valid_lines_loses_nothing(bad):
    t = target("nfdump_csv")
    seeds = t.seeds()
    if not seeds:
        pytest.skip(f"no nfdump csv seed: {NFDUMP_CSV} is absent")
    lines = seeds[0].split(b"\n")
    data = b"\n".join([*lines[:5], bad, *lines[5:]])
    full = run_nfdump_csv(seeds[0], "fuzz.text")
    results = call_target(t, data, source="fuzz.text").results
    rows_full = sum((flow_rows(r) for r in full), Counter())
    rows = sum((flow_rows(r) for r in results), Counter())
    assert rows == rows_full and sum(rows.values()) == 45
    offset = len(b"\n".join(lines[:5])) + 1
    assert [(q.offset, q.length, q.records) for r in results for q in r.quarantine] == [
        (offset, len(bad), 1)  # the line, without its newline
    ]


NFDUMP_JSON_OBJECT = (
    '{{\n\t"type" : "FLOW",\n\t"first" : "2024-06-05T12:00:00.324",\n'
    '\t"last" : "2024-06-05T12:00:01.282",\n\t"in_packets" : {packets},\n\t"in_bytes" : 220,\n'
    '\t"proto" : 6,\n\t"src4_addr" : "192.0.2.1",\n\t"dst4_addr" : "192.0.2.2"\n}}'
)


def nfdump_json_two_flows(middle: str) -> bytes:
    """Two flow objects (4 and 5 packets) with `middle` spliced between them."""
    one, two = (NFDUMP_JSON_OBJECT.format(packets=p) for p in (4, 5))
    return f"[\n{one},\n{middle}{two}\n]\n".encode()


MISSING_KEY_OBJECT = '{\n\t"type" : "FLOW",\n\t"in_bytes" : 5\n},\n'


def test_nfdump_json_object_missing_key_between_full_objects_loses_nothing():
    """The three-flow seed (every key nfdump 1.7.1 prints) with a bad object spliced in."""
    t = target("nfdump_json")
    (seed,) = t.seeds()
    cut = seed.index(b"},\n{") + 3
    data = seed[:cut] + MISSING_KEY_OBJECT.encode() + seed[cut:]
    results = call_target(t, data, source="fuzz.text").results
    assert sorted(p for r in results for p in r.flows.column("packets").to_pylist()) == [3, 4, 5]
    assert [(q.offset, q.records) for r in results for q in r.quarantine] == [(cut, 1)]


@pytest.mark.parametrize("middle", ["x\n", '{ "oops\n},\n', MISSING_KEY_OBJECT])
def test_nfdump_json_bad_piece_between_objects_loses_nothing(middle):
    t = target("nfdump_json")
    clean = run_nfdump_json(nfdump_json_two_flows(""), "fuzz.text")
    assert [r.flows.column("packets").to_pylist() for r in clean] == [[4, 5]]
    results = call_target(t, nfdump_json_two_flows(middle), source="fuzz.text").results
    assert sorted(p for r in results for p in r.flows.column("packets").to_pylist()) == [4, 5]
    assert [q.records for r in results for q in r.quarantine] == [1]


# =========================================================================== memory
@pytest.mark.parametrize("name", ["ipfix", "datagrams", "nfcapd", "pcap", *TEXT_TARGETS])
def test_memory_stays_bounded_on_64k_inputs(name):
    """tracemalloc peak < 50 × input + 16 MiB on large adversarial inputs (see call_target)."""
    t = target(name)
    rng = random.Random(64)
    seeds = t.seeds()
    units = []
    if name == "ipfix":
        # 1-record-per-4-bytes template: the most records a 64 KiB message can hold
        tpl = ipfix_message(ipfix_set(2, ipfix_template(410, [(8, 4)])))
        big = ipfix_message(ipfix_set(410, rng.randbytes(65535 - 20 - len(tpl))))
        var = ipfix_message(ipfix_set(2, ipfix_template(411, [(8, 65535), (12, 4)])))
        var += ipfix_message(ipfix_set(411, bytes([0, 1, 2, 3, 4]) * 12_000))
        units += [tpl + big, var, b"".join(ipfix_stream_messages(n=600, seed=3))[:65536]]
    elif name == "datagrams":
        tpl = v9_packet(v9_flowset(0, struct.pack(">HHHH", 410, 1, 8, 4)))
        units.append([tpl, v9_packet(v9_flowset(410, rng.randbytes(65000)))])
        units.append([v5_packet(1, count=65535) + rng.randbytes(65000)])
    for seed in seeds[:3]:
        units.append(
            mutate(seed, rng, 3) if isinstance(seed, bytes) else mutate_messages(seed, rng)
        )
    for unit in units:
        call_target(t, unit, trace_memory=True, source="fuzz.pcap" if name == "pcap" else "x")
