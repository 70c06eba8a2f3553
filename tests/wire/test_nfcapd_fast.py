"""The nfcapd reader's fast paths (O(n) V3 block chain, learnt element layouts, chunked decode,
memory-mapped file) against its reference paths (pointer-jumping chain, element walk)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.wire.nfcapd import format as F
from pipeline.wire.nfcapd import v3_records
from pipeline.wire.nfcapd.block_records import record_chain, v3_chain
from pipeline.wire.nfcapd.reader import decode_nfcapd, read_nfcapd
from pipeline.wire.nfcapd.writer import NfcapdExporterInput, encode_nfcapd
from tests.wire.test_nfcapd import _flows


# ------------------------------------------------------------------------------ helpers
def _outcome(parts) -> list[tuple]:
    """Everything a caller sees: exporter, table, quarantine (with bytes) and counters."""
    out = []
    for p in parts:
        s = p.result.stats
        quarantine = [(q.offset, q.length, q.reason, q.records, q.payload, q.domain)
                      for q in p.result.quarantine]  # fmt: skip
        counters = (s.records_in, s.records_decoded, s.records_quarantined, s.messages)
        out.append(
            (
                p.exporter_address,
                p.observation_domain_id,
                p.export_version,
                quarantine,
                counters,
                s.quarantine_by_reason,
                s.sampling_intervals,
                p.result.flows,
            )  # fmt: skip
        )
    return out


def _assert_same(data: bytes) -> list:
    """Fast and reference decodes of `data` agree in every detail; returns the fast one."""
    fast, ref = decode_nfcapd(data, "f"), decode_nfcapd(data, "f", fast=False)
    a, b = _outcome(fast), _outcome(ref)
    assert [x[:-1] for x in a] == [x[:-1] for x in b]
    for x, y in zip(a, b, strict=True):
        assert x[-1].equals(y[-1])
    for p in fast:
        s = p.result.stats
        assert s.records_in == s.records_decoded + s.records_quarantined
    return fast


def _head(n_el: int, size: int, sysid: int = 1, flags: int = 0) -> bytes:
    return F.V3_HEADER.pack(F.TYPE_V3_FLOW, size, n_el, 0, 0, 0, sysid, flags, 10)


def _generic(i: int, proto: int = 6, sport: int = 1000, dport: int = 443) -> bytes:
    first = 1_717_200_000_000 + i
    return struct.pack("<HHQQQQQHHBBBB", 1, 52, first, first + 5, 0, 1 + i, 100 + i, sport, dport,
                       proto, 0, 0, 0)  # fmt: skip


def _v4(i: int) -> bytes:
    return struct.pack("<HHII", 2, 12, 0x0A000000 + i, 0xC0000200 + i)


def _v6(i: int) -> bytes:
    return struct.pack("<HHQQQQ", 3, 36, 0x20010DB8 << 32, i, 0x20010DB8 << 32, i + 1)


def _misc(direction: int) -> bytes:
    return struct.pack("<HHIIBBBBBBBB", 4, 20, 0, 0, 0, 0, direction, 0, 0, 0, 0, 0)


def _other(n: int) -> bytes:
    """An element nobody reads (id 99) of n bytes in all."""
    return struct.pack("<HH", 99, n) + bytes(n - 4)


def _record(*elements: bytes, sysid: int = 1) -> bytes:
    body = b"".join(elements)
    return _head(len(elements), F.V3_HEADER_BYTES + len(body), sysid) + body


def _file(*blocks: list[bytes], cut_last: int = 0) -> bytes:
    """A written one-exporter file (sysid 1, 192.0.2.9) whose flow blocks are `blocks`
    (lists of records); `cut_last` bytes are taken from the last record of the last block."""
    flows = _flows(1, 3)
    written = encode_nfcapd([NfcapdExporterInput("192.0.2.9", 9, 16, flows)], created_ms=0)[0]
    pos, parts = F.FILE_HEADER.size, []
    while pos < len(written):
        size = F.BLOCK_HEADER.unpack_from(written, pos)[1]
        parts.append(written[pos : pos + F.BLOCK_HEADER.size + size])
        pos += F.BLOCK_HEADER.size + size
    meta, appendix = parts[0], parts[-1]
    body = meta
    for k, records in enumerate(blocks):
        payload = b"".join(records)
        if k == len(blocks) - 1 and cut_last:
            payload = payload[:-cut_last]
        body += F.BLOCK_HEADER.pack(len(records), len(payload), F.DATA_BLOCK_TYPE_3, 0) + payload
    header = bytearray(written[: F.FILE_HEADER.size])
    fields = list(F.FILE_HEADER.unpack(bytes(header)))
    fields[8] = F.FILE_HEADER.size + len(body)  # offAppendix
    fields[10] = 1 + len(blocks)  # NumBlocks
    return F.FILE_HEADER.pack(*fields) + body + appendix


# ------------------------------------------------------------------------------ block chain
def test_v3_chain_matches_record_chain_and_declines_other_blocks():
    recs = [_record(_generic(i), _v4(i), _misc(1)) if i % 3 else _record(_generic(i), _v6(i))
            for i in range(20)]  # fmt: skip
    block = b"".join(recs)
    w32 = np.frombuffer(block, "<u4")
    offsets, sizes = v3_chain(w32, 0, len(block))
    ref, stop = record_chain(np.frombuffer(block, np.uint8))
    assert offsets.tolist() == ref.tolist() and stop == len(block)
    assert sizes.tolist() == [len(r) for r in recs]
    with_meta = struct.pack("<HH", F.TYPE_EXPORTER_STAT, 8) + bytes(4) + block
    assert v3_chain(np.frombuffer(with_meta, "<u4"), 0, len(with_meta)) is None
    cut = block[:-4]  # last record overruns the block
    assert v3_chain(np.frombuffer(cut, "<u4"), 0, len(cut)) is None


def test_v3_chain_ignores_field_values_that_look_like_headers():
    """src_port 11 / dst_port 104 reads as a V3 header {11, 104} inside the generic element, and an
    octets high word 11 as {11, 0}: neither is another record's end, so the chain holds."""
    recs = [_record(_generic(i, sport=11, dport=104), _v4(i)) for i in range(6)]
    recs[2] = _record(_generic(2)[:40] + struct.pack("<I", 11) + _generic(2)[44:], _v4(2))
    block = b"".join(recs)
    chain = v3_chain(np.frombuffer(block, "<u4"), 0, len(block))
    assert chain is not None
    assert chain[0].tolist() == record_chain(np.frombuffer(block, np.uint8))[0].tolist()


# ------------------------------------------------------------------------------ whole files
def test_mixed_layouts_and_sizes_in_one_block_decode_as_the_reference():
    """Same size, different element order; extra unread elements; IPv4 and IPv6 interleaved."""
    recs = []
    for i in range(40):
        kind = i % 5
        if kind == 0:
            recs.append(_record(_generic(i), _v4(i), _misc(1)))
        elif kind == 1:
            recs.append(_record(_misc(0), _v4(i), _generic(i)))  # same size, other order
        elif kind == 2:
            recs.append(_record(_generic(i), _v6(i)))
        elif kind == 3:
            recs.append(_record(_other(8), _generic(i), _v6(i), _misc(1)))
        else:
            recs.append(_record(_generic(i, proto=1, sport=0, dport=771), _v4(i)))
    parts = _assert_same(_file(recs))
    (p,) = parts
    t = p.result.flows
    assert t.num_rows == 40 and p.result.stats.records_quarantined == 0
    assert t.column("octets").to_pylist() == [100 + i for i in range(40)]
    assert t.column("ip_version").to_pylist() == [6 if i % 5 in (2, 3) else 4 for i in range(40)]
    assert t.column("flow_direction").to_pylist()[:5] == [1, 0, None, 1, None]
    assert t.column("dst_port").to_pylist()[4] == 0  # ICMP
    assert t.column("src_v6_lo").to_pylist()[2] == 2 and t.column("src_v4").to_pylist()[1] == (
        0x0A000001
    )


def test_unaligned_and_bad_elements_fall_back_to_the_walk():
    recs = []
    for i in range(12):
        if i % 4 == 0:  # a 6-byte element puts the rest off 4-byte boundaries
            recs.append(_record(_other(6), _generic(i), _v4(i), _other(6)))
        elif i % 4 == 1:  # element overruns the record
            bad = bytearray(_record(_generic(i), _v4(i)))
            bad[12 + 52 + 2 : 12 + 52 + 4] = struct.pack("<H", 40)
            recs.append(bytes(bad))
        elif i % 4 == 2:
            recs.append(_record(_v4(i)))  # no generic element
        else:
            recs.append(_record(_generic(i)))  # no address
    parts = _assert_same(_file(recs))
    (p,) = parts
    assert p.result.flows.num_rows == 3
    assert p.result.stats.quarantine_by_reason == {
        "bad V3 elements": 3,
        "no generic flow element": 3,
        "no IP address fields": 3,
    }


def test_truncated_last_record_is_set_aside_like_the_reference():
    recs = [_record(_generic(i), _v4(i) if i % 2 else _v6(i), _misc(1)) for i in range(30)]
    data = _file(recs[:10], recs[10:], cut_last=8)
    orphan, p = _assert_same(data)  # the cut record cannot be tied to an exporter
    assert p.result.stats.records_decoded == 29
    assert orphan.result.stats.quarantine_by_reason == {"corrupt record chain": 1}
    (q,) = orphan.result.quarantine
    assert q.payload == recs[-1][:-8] and data[q.offset : q.offset + q.length] == q.payload


def test_chunks_across_blocks_of_both_alignments(monkeypatch):
    """Small chunks span blocks whose records sit at 8k and at 8k + 4."""
    monkeypatch.setattr(v3_records, "CHUNK_RECORDS", 7)
    blocks = []
    for b in range(5):
        recs = [_record(_generic(i), _v6(i), _misc(1)) for i in range(9)]
        if b % 2:
            recs.append(_record(_generic(99), _v4(99), _other(4)))  # a 4 mod 8 size
        blocks.append(recs)
    parts = _assert_same(_file(*blocks))
    assert parts[0].result.flows.num_rows == 47


def test_many_layouts_beyond_the_learnt_limit(monkeypatch):
    monkeypatch.setattr(v3_records, "CHUNK_RECORDS", 16)
    recs = [_record(_other(4 * (1 + i % 20)), _generic(i), _v4(i)) for i in range(200)]
    parts = _assert_same(_file(recs))
    assert parts[0].result.flows.num_rows == 200


@pytest.mark.parametrize("seed", [1, 2])
def test_written_files_two_exporters_many_blocks(monkeypatch, seed):
    monkeypatch.setattr("pipeline.wire.nfcapd.writer.BLOCK_TARGET_BYTES", 4096)
    exporters = [NfcapdExporterInput("192.0.2.9", 9, 16, _flows(700, seed)),
                 NfcapdExporterInput("2001:db8::1", 3, 0, _flows(300, seed + 1))]  # fmt: skip
    data = encode_nfcapd(exporters, created_ms=0)[0]
    parts = _assert_same(data)
    assert sum(p.result.flows.num_rows for p in parts) == 1000


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), max_size=6))
def test_random_corruption_fast_equals_reference(flips):
    exporters = [NfcapdExporterInput("192.0.2.9", 9, 16, _flows(150, 4))]
    data = bytearray(encode_nfcapd(exporters, created_ms=0)[0])
    for pos, value in flips:
        data[pos % len(data)] = value
    _assert_same(bytes(data))


def test_memory_mapped_read_equals_decode_of_bytes(tmp_path):
    data = encode_nfcapd([NfcapdExporterInput("192.0.2.9", 9, 16, _flows(90, 5))], created_ms=0)[0]
    path = tmp_path / "f.nfcapd"
    path.write_bytes(data)
    a, b = _outcome(read_nfcapd(path, "f")), _outcome(decode_nfcapd(data, "f"))
    assert [x[:-1] for x in a] == [x[:-1] for x in b] and a[0][-1].equals(b[0][-1])
    empty = tmp_path / "empty.nfcapd"
    empty.write_bytes(b"")
    (only,) = read_nfcapd(empty)
    assert only.result.stats.quarantine_by_reason == {"bad nfcapd file header": 1}


@pytest.mark.parametrize("columns", [["protocol", "octets"], ["dst_v6_lo", "src_v4", "ip_version"]])
def test_column_projection_keeps_rows_and_counters(columns):
    exporters = [NfcapdExporterInput("192.0.2.9", 9, 16, _flows(300, 6)),
                 NfcapdExporterInput("2001:db8::1", 3, 0, _flows(100, 7))]  # fmt: skip
    data = bytearray(encode_nfcapd(exporters, created_ms=0)[0])
    data[5000:5004] = b"\xff\xff\xff\xff"  # damage one record
    full = _outcome(decode_nfcapd(bytes(data), "f"))
    some = _outcome(decode_nfcapd(bytes(data), "f", columns=columns))
    assert [x[:-1] for x in some] == [x[:-1] for x in full]
    for x, y in zip(some, full, strict=True):
        assert x[-1].column_names == [c for c in y[-1].column_names if c in columns]
        assert x[-1].num_rows == y[-1].num_rows
        assert x[-1].equals(y[-1].select(x[-1].column_names))
    for bad in (["bytes"], []):
        with pytest.raises(ValueError, match="FLOW_SCHEMA"):
            decode_nfcapd(bytes(data), "f", columns=bad)


def test_lz4_file_with_a_block_stored_uncompressed_reads_like_the_plain_file(monkeypatch):
    """Compression 3 (LZ4) in the file header; one data block carries the uncompressed flag."""
    pa = pytest.importorskip("pyarrow")
    monkeypatch.setattr("pipeline.wire.nfcapd.writer.BLOCK_TARGET_BYTES", 2048)
    flows = _flows(200, 8)
    plain = encode_nfcapd([NfcapdExporterInput("192.0.2.9", 9, 16, flows)], created_ms=0)[0]
    fields = list(F.FILE_HEADER.unpack_from(plain))
    fields[4] = 3  # LZ4
    out, pos, k = [], F.FILE_HEADER.size, 0
    while pos < fields[8]:  # data blocks up to the appendix
        n, size, btype, _ = F.BLOCK_HEADER.unpack_from(plain, pos)
        payload = plain[pos + 12 : pos + 12 + size]
        if k == 2:
            out.append(F.BLOCK_HEADER.pack(n, size, btype, F.FLAG_BLOCK_UNCOMPRESSED) + payload)
        else:
            packed = pa.compress(payload, codec="lz4_raw", asbytes=True)
            out.append(F.BLOCK_HEADER.pack(n, len(packed), btype, 0) + packed)
        pos, k = pos + 12 + size, k + 1
    body = b"".join(out)
    appendix = plain[fields[8] :]
    appendix = appendix[:10] + struct.pack("<H", F.FLAG_BLOCK_UNCOMPRESSED) + appendix[12:]
    fields[8] = F.FILE_HEADER.size + len(body)
    data = F.FILE_HEADER.pack(*fields) + body + appendix
    assert k > 4
    packed_parts, plain_parts = _assert_same(data), decode_nfcapd(plain, "f")
    (a,), (b,) = packed_parts, plain_parts
    assert a.result.flows.equals(b.result.flows) and a.result.stats.records_in == 200
