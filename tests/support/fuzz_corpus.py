"""Hostile-input helpers: valid seeds, hand-built broken exports, mutators and the decoder contract.

Shared by tests/wire/test_fuzz.py (bounded CI run) and bench/fuzz.py (long coverage-guided run).
Every target's decoder and writer must exist: a missing one fails loudly, never shrinks the run.
"""

from __future__ import annotations

import importlib
import random
import struct
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from pipeline.config import SHARED_DIR
from pipeline.wire.ipfix import constants as C

CAPTURES_DIR = SHARED_DIR / "data" / "flow-exports"
NFCAPD_DIR = SHARED_DIR / "data" / "nfcapd"
CALL_LIMIT_S = 2.0  # generous per-call wall-clock limit on inputs <= 64 KiB
MAX_INPUT_BYTES = 65536
EXPORT_S = 1_717_600_000
SAMPLING = 1024
VERSIONS = (0, 1, 5, 9, 10, 11, 0xFFFF)
LENGTHS_16 = (0, 1, 3, 4, 15, 16, 17, 19, 20, 23, 24, 0x7FFF, 0xFFFE, 0xFFFF)


# --------------------------------------------------------------------------- valid flows
def sample_flows(
    n: int,
    seed: int = 1,
    ipv6_share: float = 0.3,
    start_ms: tuple[int, int] = (1_717_000_000_000, 1_717_500_000_000),
) -> dict[str, np.ndarray]:
    """`n` flows in the writers' column layout (IPv4 and IPv6 mixed, all fields non-zero),
    starting in [start_ms[0], start_ms[1])."""
    rng = np.random.default_rng(seed)
    start = rng.integers(start_ms[0], start_ms[1], n, dtype=np.int64)

    def u(lo: int, hi: int, dtype) -> np.ndarray:
        return rng.integers(lo, hi, n, dtype=dtype)

    return {
        "flow_start_ms": start,
        "flow_end_ms": start + u(0, 60_000, np.int64),
        "ip_version": np.where(rng.random(n) < ipv6_share, 6, 4).astype(np.uint8),
        "src_v4": u(1, 2**32, np.uint32),
        "dst_v4": u(1, 2**32, np.uint32),
        "src_v6_hi": u(1, 2**63, np.uint64),
        "src_v6_lo": u(1, 2**63, np.uint64),
        "dst_v6_hi": u(1, 2**63, np.uint64),
        "dst_v6_lo": u(1, 2**63, np.uint64),
        "src_port": u(1, 2**16, np.uint16),
        "dst_port": u(1, 2**16, np.uint16),
        "protocol": np.where(rng.random(n) < 0.5, 6, 17).astype(np.uint8),
        "flow_direction": u(0, 2, np.uint8),
        "octets": u(40, 2**31, np.uint64),
        "packets": u(1, 2**16, np.uint64),
    }


def split_ipfix_messages(buf: bytes) -> list[bytes]:
    """A valid IPFIX stream cut into its messages by their length fields."""
    out, off = [], 0
    while off + C.MESSAGE_HEADER_BYTES <= len(buf):
        length = int.from_bytes(buf[off + 2 : off + 4], "big")
        if length < C.MESSAGE_HEADER_BYTES:
            break
        out.append(buf[off : off + length])
        off += length
    return out


@cache
def ipfix_stream_messages(n: int = 40, seed: int = 1, max_message_bytes: int = 400) -> list[bytes]:
    """Writer output as messages: template+options message first, then data messages."""
    from pipeline.wire.ipfix.writer import encode_ipfix_stream

    buf, _ = encode_ipfix_stream(
        sample_flows(n, seed),
        observation_domain_id=7,
        sampling_interval=SAMPLING,
        export_time_s=EXPORT_S,
        max_message_bytes=max_message_bytes,
    )
    return split_ipfix_messages(buf)


def _attribute(module: str, name: str):
    """`module.name`; a missing module or attribute fails loudly (a moved writer must not silently
    shrink the corpus)."""
    return getattr(importlib.import_module(module), name)


@cache
def v9_writer_datagrams(n: int = 30, seed: int = 2) -> tuple[bytes, ...]:
    """NetFlow v9 datagrams from `netflow_v9.encode_v9_datagrams`."""
    encode = _attribute("pipeline.wire.netflow_v9", "encode_v9_datagrams")
    grams, _ = encode(
        sample_flows(n, seed),
        source_id=7,
        sampling_interval=SAMPLING,
        export_time_s=EXPORT_S,
        sys_uptime_ms=3_600_000,
        sequence_start=0,
        max_datagram_bytes=600,
    )
    return tuple(grams)


@cache
def v5_writer_datagrams(n: int = 40, seed: int = 3) -> tuple[bytes, ...]:
    """NetFlow v5 datagrams from `netflow_v5.encode_v5_datagrams`."""
    encode = _attribute("pipeline.wire.netflow_v5", "encode_v5_datagrams")
    flows = sample_flows(n, seed, ipv6_share=0.0)  # v5 carries IPv4 only, 32-bit counters
    flows["octets"] %= np.uint64(2**32)
    grams, _ = encode(
        flows,
        engine_type=1,
        engine_id=2,
        sampling_interval=SAMPLING,
        export_time_s=EXPORT_S,
        sys_uptime_ms=3_600_000,
        sequence_start=0,
    )
    return tuple(grams)


@cache
def capture_datagrams() -> dict[str, tuple[bytes, ...]]:
    """UDP payloads of every real capture (X-template.pcap datagrams first, then X-data.pcap).

    Empty when ../shared/data is absent.
    """
    from pipeline.wire.pcap.reader import read_udp_datagrams

    if not CAPTURES_DIR.is_dir():
        return {}
    files = {p.stem: p for p in sorted(CAPTURES_DIR.glob("*.pcap"))}
    out: dict[str, tuple[bytes, ...]] = {}
    for stem, path in files.items():
        if stem.endswith("-template") or stem == "template":
            continue  # announced ahead of its data capture below
        grams = [d.payload for d in read_udp_datagrams(path)]
        base = stem.removesuffix("-data")
        if stem.endswith("-data") and f"{base}-template" in files:
            grams = [d.payload for d in read_udp_datagrams(files[f"{base}-template"])] + grams
        elif stem == "data" and "template" in files:
            grams = [d.payload for d in read_udp_datagrams(files["template"])] + grams
        out[base] = tuple(grams)
    return out


# --------------------------------------------------------------------------- hand-built IPFIX
def ipfix_set(set_id: int, body: bytes, length: int | None = None) -> bytes:
    """One set; `length` overrides the header's set length (to build broken sets)."""
    return (
        struct.pack(">HH", set_id, C.SET_HEADER_BYTES + len(body) if length is None else length)
        + body
    )


def ipfix_template(tid: int, fields: Sequence[tuple[int, int]], count: int | None = None) -> bytes:
    """One template record; `count` overrides the field count."""
    body = b"".join(struct.pack(">HH", ie, n) for ie, n in fields)
    return struct.pack(">HH", tid, len(fields) if count is None else count) + body


def ipfix_options_template(
    tid: int, scope_count: int, fields: Sequence[tuple[int, int]], count: int | None = None
) -> bytes:
    """One options template record (RFC 7011 §3.4.2.2)."""
    body = b"".join(struct.pack(">HH", ie, n) for ie, n in fields)
    return struct.pack(">HHH", tid, len(fields) if count is None else count, scope_count) + body


def ipfix_message(
    *sets: bytes, domain: int = 9, seq: int = 0, version: int = 10, length: int | None = None
) -> bytes:
    """One message around `sets`; `version`/`length` override the header (broken messages)."""
    body = b"".join(sets)
    total = C.MESSAGE_HEADER_BYTES + len(body) if length is None else length
    return struct.pack(">HHIII", version, total, EXPORT_S, seq, domain) + body


# A small fixed template (v4 address, ports, octets, packets, sampling in-record) and its records.
SMALL_TID = 300
SMALL_FIELDS = ((8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 8), (2, 8), (34, 4))
SMALL_RECORD = struct.Struct(">IIHHBQQI")


def small_records(n: int, seed: int = 5) -> bytes:
    """`n` records of SMALL_FIELDS with distinct addresses and in-record sampling interval 512."""
    rng = random.Random(seed)
    return b"".join(
        SMALL_RECORD.pack(
            0x0A000001 + i,
            0xC0000201 + rng.randrange(200),
            1000 + i,
            443,
            6,
            1500 * (i + 1),
            i + 1,
            512,
        )
        for i in range(n)
    )


def small_ipfix_stream(n_messages: int = 3, per_message: int = 4, domain: int = 9) -> list[bytes]:
    """Template message then `n_messages` data messages of the small template."""
    msgs = [ipfix_message(ipfix_set(2, ipfix_template(SMALL_TID, SMALL_FIELDS)), domain=domain)]
    seq = 0
    for m in range(n_messages):
        recs = small_records(per_message, seed=m)
        msgs.append(ipfix_message(ipfix_set(SMALL_TID, recs), domain=domain, seq=seq))
        seq += per_message
    return msgs


def vendor_ipfix_stream(domain: int = 11) -> list[bytes]:
    """Vendor shapes (ARCHITECTURE §2.2): RFC 5103 biflow (PEN 29305), firewall initiator/responder
    and total counters, with in-record sampling; reverse rows and total differencing under fuzz."""
    rev = struct.pack(">HHIHHI", 0x8001, 8, C.PEN_REVERSE, 0x8002, 8, C.PEN_REVERSE)
    base = (8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (34, 4)
    bi = ipfix_template(310, [*base, (1, 8), (2, 8)], count=10) + rev
    fw = ipfix_template(311, [*base, (231, 8), (232, 8), (298, 4), (299, 4)])
    tot = ipfix_template(312, [*base, (85, 8), (86, 8)])
    tuple_ = struct.pack(">IIHHBI", 0x0A000001, 0xC0000201, 40000, 443, 6, 512)
    msgs = [ipfix_message(ipfix_set(2, bi + fw + tot), domain=domain)]
    data = [
        ipfix_set(310, (tuple_ + struct.pack(">QQQQ", 900, 3, 70000, 50)) * 3),
        ipfix_set(311, (tuple_ + struct.pack(">QQII", 1200, 64000, 10, 40)) * 2),
        ipfix_set(312, b"".join(tuple_ + struct.pack(">QQ", 1000 * k, 10 * k) for k in (1, 2, 3))),
    ]
    seq = 0
    for counts, d in zip((3, 2, 3), data, strict=True):
        msgs.append(ipfix_message(d, domain=domain, seq=seq))
        seq += counts
    return msgs


# --------------------------------------------------------------------------- hand-built v9 / v5
V9_HEADER = struct.Struct(">HHIIII")  # version, count, sys uptime ms, unix s, sequence, source id
V5_HEADER = struct.Struct(">HHIIIIBBH")  # ..., unix nsecs, flow sequence, engine type/id, sampling
V5_RECORD_BYTES = 48


def v9_packet(
    *flowsets: bytes, count: int | None = None, seq: int = 0, source_id: int = 7
) -> bytes:
    """One NetFlow v9 export packet; `count` defaults to the number of records is not checked."""
    n = len(flowsets) if count is None else count
    return V9_HEADER.pack(9, n, 3_600_000, EXPORT_S, seq, source_id) + b"".join(flowsets)


def v9_flowset(flowset_id: int, body: bytes, length: int | None = None) -> bytes:
    """One FlowSet padded to 4 bytes; `length` overrides the header's length."""
    body += b"\0" * (-(len(body) + 4) % 4)
    return struct.pack(">HH", flowset_id, len(body) + 4 if length is None else length) + body


def v9_options_template(
    tid: int,
    scope: Sequence[tuple[int, int]],
    options: Sequence[tuple[int, int]],
    scope_length: int | None = None,
) -> bytes:
    """One v9 options template record (RFC 3954 §6.1); lengths are in bytes, not fields."""
    s = b"".join(struct.pack(">HH", t, n) for t, n in scope)
    o = b"".join(struct.pack(">HH", t, n) for t, n in options)
    return (
        struct.pack(">HHH", tid, len(s) if scope_length is None else scope_length, len(o)) + s + o
    )


def v5_packet(n_records: int, count: int | None = None, sampling: int = 0x4000 | SAMPLING) -> bytes:
    """A NetFlow v5 packet of `n_records` records; `count` overrides the header's count."""
    header = V5_HEADER.pack(
        5, n_records if count is None else count, 3_600_000, EXPORT_S, 0, 0, 0, 0, sampling
    )
    recs = b"".join(
        struct.pack(
            ">IIIHHIIIIHHBBBBHHBBH",
            0x0A000001 + i,
            0xC0000201,
            0,
            1,
            2,
            i + 1,
            1500 * (i + 1),
            3_500_000,
            3_599_000,
            1000 + i,
            443,
            0,
            0x18,
            6,
            0,
            0,
            0,
            24,
            24,
            0,
        )
        for i in range(n_records)
    )
    return header + recs


# --------------------------------------------------------------------------- mutators
def mutate(data: bytes, rng: random.Random, n_ops: int = 2) -> bytes:
    """Apply `n_ops` byte-level mutations (flip, truncate, set u16/u32, insert, delete, dup)."""
    b = bytearray(data)
    for _ in range(n_ops):
        op = rng.randrange(8)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            del b[pos:]
        elif op == 2 and len(b) >= 2:
            p = min(pos, len(b) - 2)
            b[p : p + 2] = rng.choice(LENGTHS_16 + VERSIONS).to_bytes(2, "big")
        elif op == 3 and len(b) >= 4:
            p = min(pos, len(b) - 4)
            b[p : p + 4] = rng.choice((0, 1, 2**31, 2**32 - 1, rng.getrandbits(32))).to_bytes(
                4, "big"
            )
        elif op == 4:
            b[pos:pos] = rng.randbytes(rng.randrange(1, 24))
        elif op == 5:
            del b[pos : pos + rng.randrange(1, 32)]
        elif op == 6:
            b[pos:pos] = b[pos : pos + rng.randrange(1, 64)]
        elif op == 7 and len(b) >= 4:  # length field of a message/set header at a 4-byte boundary
            p = min(pos & ~3, len(b) - 4)
            b[p + 2 : p + 4] = rng.choice(LENGTHS_16).to_bytes(2, "big")
    return bytes(b[:MAX_INPUT_BYTES])


def mutate_messages(msgs: Sequence[bytes], rng: random.Random) -> list[bytes]:
    """Message-level mutations: mutate one, duplicate one, swap two, drop one, insert garbage."""
    out = list(msgs)
    op = rng.randrange(5)
    i = rng.randrange(len(out)) if out else 0
    if op == 0 and out:
        out[i] = mutate(out[i], rng, rng.randrange(1, 4))
    elif op == 1 and out:
        out.insert(i, out[i])
    elif op == 2 and len(out) >= 2:
        j = rng.randrange(len(out))
        out[i], out[j] = out[j], out[i]
    elif op == 3 and out:
        del out[i]
    else:
        out.insert(i, rng.randbytes(rng.randrange(0, 64)))
    return out


def structured_template_case(rng: random.Random, version: int) -> list[bytes]:
    """A template with adversarial field lengths/counts and a data set of random bytes for it."""
    tid = rng.choice((256, 300, 65535, 0, 255))
    n_fields = rng.choice((0, 1, 2, 5, 40))
    lens = (0, 1, 2, 3, 4, 8, 16, 17, 65535, rng.randrange(65536))
    ies = (1, 2, 4, 7, 8, 11, 12, 27, 28, 34, 60, 152, 153, 302, 305, 306, rng.randrange(65536))
    fields = [(rng.choice(ies), rng.choice(lens)) for _ in range(n_fields)]
    count = rng.choice((None, None, 0, n_fields + 1, 65535))
    data = rng.randbytes(rng.randrange(0, 200))
    if version == 9:
        tpl = struct.pack(">HH", tid, n_fields if count is None else count) + b"".join(
            struct.pack(">HH", ie, n) for ie, n in fields
        )
        return [v9_packet(v9_flowset(0, tpl)), v9_packet(v9_flowset(tid, data))]
    if rng.random() < 0.3:
        scope = rng.choice((0, 1, n_fields, n_fields + 1, 65535))
        set_body = ipfix_options_template(tid, scope, fields, count)
        set_id = 3
    else:
        set_body, set_id = ipfix_template(tid, fields, count), 2
    set_len = rng.choice((None, None, None, 0, 1, 3, 4, 65535))
    return [
        ipfix_message(ipfix_set(set_id, set_body, set_len)),
        ipfix_message(ipfix_set(tid, data)),
    ]


# --------------------------------------------------------------------------- the contract
@cache
def known_reasons() -> frozenset[str]:
    """Every REASON_* string of the wire-format modules (pipeline.wire and its subpackages)."""
    import pkgutil

    import pipeline.wire

    reasons = set()
    for info in pkgutil.walk_packages(pipeline.wire.__path__, "pipeline.wire."):
        mod = importlib.import_module(info.name)
        reasons |= {
            v for k, v in vars(mod).items() if k.startswith("REASON_") and isinstance(v, str)
        }
    return frozenset(reasons)


def reason_base(reason: str) -> str | None:
    """`reason` if it is one of the REASON_* constants, else None."""
    return reason if reason in known_reasons() else None


def reason_known(reason: str) -> bool:
    """Reasons are the REASON_* constants exactly: quarantine_by_reason stays a short list."""
    return reason_base(reason) is not None


def check_result(
    result, data: bytes, source: str, *, payload_at_offset: bool = True, sampled: bool = True
) -> None:
    """Assert the decoder contract on one DecodeResult of `data` decoded under name `source`.

    `payload_at_offset`: each entry's payload is data[offset:offset+length] (IPFIX/NetFlow).
    `sampled`: kept flows all have a known interval (readers that leave 0 to the caller: False).
    """
    from pipeline.wire.records import FLOW_SCHEMA

    s = result.stats
    assert s.records_in == s.records_decoded + s.records_quarantined, s
    # rows = records decoded + second rows of biflows (ARCHITECTURE §2.2)
    assert result.flows.num_rows == s.records_decoded + s.reverse_rows, (result.flows.num_rows, s)
    assert result.flows.schema.equals(FLOW_SCHEMA, check_metadata=False), result.flows.schema
    assert sum(q.records for q in result.quarantine) == s.records_quarantined, s
    assert sum(s.quarantine_by_reason.values()) == s.records_quarantined, s
    check_trust_counters(result)
    for q in result.quarantine:
        assert q.source == source, q
        assert q.reason and reason_known(q.reason), q.reason
        assert 0 <= q.offset <= len(data), (q.offset, len(data), q.reason)
        assert q.records >= 0 and q.length >= 0, q
        if payload_at_offset:
            assert q.offset + q.length <= len(data), (q.offset, q.length, len(data), q.reason)
            assert q.payload == data[q.offset : q.offset + q.length], (q.offset, q.reason)
    if result.flows.num_rows:
        sampling = result.flows.column("sampling_interval").to_numpy()
        assert not sampled or (sampling > 0).all(), "a flow of unknown sampling interval was kept"
        versions = set(result.flows.column("ip_version").to_pylist())
        assert versions <= {4, 6}, versions


def check_trust_counters(result) -> None:
    """The issue-8 counters: non-negative ints; estimated records are exactly those of the
    entries that say so (part of records_quarantined); counted decoded records within decoded;
    domain and template id of entries in range where known."""
    from pipeline.wire.records import TRUST_COUNTERS

    s = result.stats
    for key in TRUST_COUNTERS:
        value = getattr(s, key)
        assert isinstance(value, int) and value >= 0, (key, value)
    estimated = [q.records for q in result.quarantine if q.reason == C.REASON_TEMPLATE_NEVER_SEEN]
    assert s.records_estimated_unsplittable == sum(estimated) <= s.records_quarantined, s
    assert all(n >= 1 for n in estimated), estimated
    assert s.records_second_pass <= s.records_decoded, s
    assert s.records_default_sampling <= s.records_decoded, s
    for q in result.quarantine:
        assert q.domain is None or 0 <= q.domain < 2**32, q
        assert q.template_id is None or 0 <= q.template_id < 2**16, q


def flow_rows(result) -> Counter:
    """The decoded flows as a multiset of row tuples (for 'nothing lost' comparisons)."""
    cols = [result.flows.column(i).to_pylist() for i in range(result.flows.num_columns)]
    return Counter(zip(*cols, strict=True))


def missing_rows(expected, got) -> int:
    """How many of `expected`'s flow rows are absent from `got` (multiset difference)."""
    return sum((flow_rows(expected) - flow_rows(got)).values())


# --------------------------------------------------------------------------- targets
@dataclass
class Call:
    """One measured call of a target: what it returned, how long it took, its peak memory."""

    results: list
    seconds: float
    peak_bytes: int = 0
    reasons: set[str] = field(default_factory=set)


def _datagram_buffers(grams: Sequence[bytes]):
    """Concatenated payload with starts, lengths, file offsets (= starts) for decode_datagrams."""
    lengths = np.array([len(g) for g in grams], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return b"".join(grams), starts, lengths, starts.copy()


def _nfcapd_results(parts) -> list:
    """decode_nfcapd's per-exporter parts as their DecodeResults."""
    return [p.result for p in parts]


@dataclass
class Target:
    """A decoder under test: how to call it on one fuzz unit and the seeds to mutate."""

    name: str
    run: Callable[..., list]  # (fuzz unit, source) → list of DecodeResult (pcap: ExportDatagrams)
    seeds: Callable[[], list]  # fuzz units
    unit_is_list: bool = False  # datagram targets take a list of datagrams


def run_ipfix(data: bytes, source: str = "fuzz.ipfix") -> list:
    from pipeline.wire.ipfix.decoder import FlowDecoder

    return [FlowDecoder("fuzz", None).decode(data, source)]


def run_datagrams(grams: Sequence[bytes], source: str = "fuzz.pcap") -> list:
    from pipeline.wire.ipfix.decoder import FlowDecoder

    payload, starts, lengths, offsets = _datagram_buffers(grams)
    return [FlowDecoder("fuzz", None).decode_datagrams(payload, starts, lengths, offsets, source)]


def run_nfcapd(data: bytes, source: str = "fuzz.nfcapd") -> list:
    from pipeline.wire.nfcapd.reader import decode_nfcapd

    return _nfcapd_results(decode_nfcapd(data, source))


def _in_temp_file(data: bytes, name: str, read: Callable):
    """`read(path)` on `data` written to a temporary file called `name`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return read(path)


def run_pcap(data: bytes, source: str = "fuzz.pcap") -> list:
    """[ExportDatagrams] of `data` read as a capture file."""
    from pipeline.wire.pcap.reader import read_export_datagrams

    return [_in_temp_file(data, "fuzz.pcap", lambda p: read_export_datagrams(p, source))]


def run_nfdump_csv(data: bytes, source: str = "fuzz.csv") -> list:
    from pipeline.wire.nfdump_text import decode_nfdump_csv

    return [p.result for p in decode_nfdump_csv(data, source)]


def run_nfdump_json(data: bytes, source: str = "fuzz.json") -> list:
    from pipeline.wire.nfdump_text import decode_nfdump_json

    return [p.result for p in decode_nfdump_json(data, source)]


def ipfix_seeds() -> list[bytes]:
    """Valid IPFIX streams: writer output, the small template stream, real IPFIX captures."""
    seeds = [b"".join(ipfix_stream_messages()), b"".join(small_ipfix_stream())]
    seeds.append(b"".join(vendor_ipfix_stream()))
    for grams in capture_datagrams().values():
        if grams and grams[0][:2] == b"\x00\x0a":
            seeds.append(b"".join(grams))
    return seeds


def datagram_seeds(kind: str = "all") -> list[list[bytes]]:
    """Valid datagram lists (v5, v9, IPFIX) from the writers and the real captures."""
    seeds: list[list[bytes]] = []
    wanted = {"v5": (5,), "v9": (9,), "ipfix": (10,), "all": (5, 9, 10)}[kind]
    if 10 in wanted:
        seeds.append(ipfix_stream_messages())
    if 9 in wanted and v9_writer_datagrams():
        seeds.append(list(v9_writer_datagrams()))
    if 5 in wanted:
        seeds.append([v5_packet(3), v5_packet(2)])
        if v5_writer_datagrams():
            seeds.append(list(v5_writer_datagrams()))
    for grams in capture_datagrams().values():
        if grams and int.from_bytes(grams[0][:2], "big") in wanted:
            seeds.append(list(grams))
    return seeds


@cache
def written_nfcapd(n: int = 20, seed: int = 4) -> bytes:
    """nfcapd bytes from `nfcapd_writer.encode_nfcapd` (v4 + v6 exporter)."""
    encode = _attribute("pipeline.wire.nfcapd.writer", "encode_nfcapd")
    from pipeline.wire.nfcapd.writer import NfcapdExporterInput

    exporters = [
        NfcapdExporterInput("192.0.2.1", 7, SAMPLING, sample_flows(n, seed)),
        NfcapdExporterInput("2001:db8::9", 8, 0, sample_flows(n // 2, seed + 1)),
    ]
    data, _ = encode(exporters, created_ms=EXPORT_S * 1000)
    return data


def nfcapd_seeds() -> list[bytes]:
    """The real nfcapd file and, when the writer exists, one written from sample flows."""
    seeds = (
        [p.read_bytes() for p in sorted(NFCAPD_DIR.glob("*.nfcapd"))] if NFCAPD_DIR.is_dir() else []
    )
    if written_nfcapd() is not None:
        seeds.insert(0, written_nfcapd())
    return [s[:MAX_INPUT_BYTES] for s in seeds]


@cache
def written_captures() -> tuple[bytes, ...]:
    """pcap and pcapng files from pcap_writer around the v9/v5 writer datagrams (IPv4 and IPv6)."""
    from pipeline.wire.pcap.writer import write_export_pcap, write_export_pcapng

    out = []
    grams = [*v9_writer_datagrams(), *v5_writer_datagrams()][:12]
    for write, (src, dst) in (
        (write_export_pcap, ("192.0.2.1", "198.51.100.2")),
        (write_export_pcapng, ("2001:db8::1", "2001:db8::2")),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "seed.pcap"
            times = np.arange(len(grams), dtype=np.int64) + EXPORT_S * 1000
            write(path, list(grams), src_address=src, dst_address=dst, src_port=50000,
                  dst_port=2055, time_ms=times)  # fmt: skip
            out.append(path.read_bytes())
    return tuple(out)


def pcap_seeds() -> list[bytes]:
    """Written pcap + pcapng files, then the real capture files (each under 64 KiB)."""
    seeds = list(written_captures())
    if CAPTURES_DIR.is_dir():
        seeds += [p.read_bytes() for p in sorted(CAPTURES_DIR.glob("*.pcap"))]
    return [s[:MAX_INPUT_BYTES] for s in seeds]


NFDUMP_CSV = NFCAPD_DIR / "softflowd-ipfix-tcpreplay-test.nfdump.csv"


def nfdump_csv_seeds() -> list[bytes]:
    """nfdump `-o csv` output of the real nfcapd file (first 64 KiB, whole lines)."""
    if not NFDUMP_CSV.is_file():
        return []
    data = NFDUMP_CSV.read_bytes()[:MAX_INPUT_BYTES]
    return [data[: data.rfind(b"\n") + 1]]


NFDUMP_JSON_RECORD = """{{
\t"type" : "FLOW",
\t"sampled" : 0,
\t"export_sysid" : 1,
\t"first" : "2024-06-05T12:00:00.324",
\t"last" : "2024-06-05T12:00:01.282",
\t"received" : "2024-06-05T12:00:02.643",
\t"in_packets" : {pk},
\t"in_bytes" : {by},
\t"proto" : 6,
\t"tcp_flags" : "...A...F",
\t"src_port" : 443,
\t"dst_port" : 64565,
\t"src_tos" : 0,
\t"src{v}_addr" : "{src}",
\t"dst{v}_addr" : "{dst}",
\t"input_snmp" : 0,
\t"output_snmp" : 0,
\t"src_mask" : 0,
\t"dst_mask" : 0,
\t"src_net" : "",
\t"dst_net" : "",
\t"fwd_status" : 0,
\t"direction" : {d},
\t"dst_tos" : 0,
\t"ip{v}_router" : "{router}",
\t"label" : "<none>"
}}"""


def nfdump_json_seeds() -> list[bytes]:
    """An `nfdump -o json` export (1.7.1 key order, as printed for the real nfcapd file):
    three flows, IPv4 and IPv6, two routers."""
    recs = [
        NFDUMP_JSON_RECORD.format(pk=4, by=220, v=4, src="74.125.19.17", dst="172.16.11.12",
                                  d=0, router="127.0.0.1"),
        NFDUMP_JSON_RECORD.format(pk=5, by=287, v=4, src="172.16.11.12", dst="74.125.19.17",
                                  d=1, router="127.0.0.1"),
        NFDUMP_JSON_RECORD.format(pk=3, by=240, v=6, src="2001:db8::1", dst="2001:db8::2",
                                  d=0, router="2001:db8::ff"),
    ]  # fmt: skip
    return [("[\n" + ",\n".join(recs) + "]\n").encode()]


TARGETS: dict[str, Target] = {
    "ipfix": Target("ipfix", run_ipfix, ipfix_seeds),
    "datagrams": Target("datagrams", run_datagrams, datagram_seeds, True),
    "v9": Target("v9", run_datagrams, lambda: datagram_seeds("v9"), True),
    "v5": Target("v5", run_datagrams, lambda: datagram_seeds("v5"), True),
    "nfcapd": Target("nfcapd", run_nfcapd, nfcapd_seeds),
    "pcap": Target("pcap", run_pcap, pcap_seeds),
    "nfdump_csv": Target(
        "nfdump_csv",
        run_nfdump_csv,
        nfdump_csv_seeds,
    ),
    "nfdump_json": Target(
        "nfdump_json",
        run_nfdump_json,
        nfdump_json_seeds,
    ),
}
TEXT_TARGETS = ("nfdump_csv", "nfdump_json")


def unit_bytes(unit) -> bytes:
    """The bytes quarantine offsets refer to (datagrams: their concatenation)."""
    return b"".join(unit) if isinstance(unit, list | tuple) else unit


PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def pcap_header_readable(data: bytes) -> bool:
    """A classic pcap global header is all there (pcapng: the reader judges its header)."""
    return len(data) >= 24 and data[:4] in PCAP_MAGICS


def check_pcap_output(out, data: bytes, source: str) -> None:
    """Contract of read_export_datagrams' result: problems named and placed, datagrams in bounds."""
    for q in out.problems:
        assert q.source == source, q
        assert q.reason and reason_known(q.reason), q.reason
        assert 0 <= q.offset <= len(data), (q.offset, len(data))
    starts, lengths = np.asarray(out.starts), np.asarray(out.lengths)
    offsets = np.asarray(out.file_offsets)
    assert len(starts) == len(lengths) == len(offsets) == len(out.src_address)
    if len(starts):
        assert (starts >= 0).all() and (starts + lengths <= len(out.payload)).all()
        assert (offsets >= 0).all() and (offsets + lengths <= len(data)).all()
        for i in range(min(len(starts), 8)):  # a few datagrams: bytes are where the offset says
            s, n, o = int(starts[i]), int(lengths[i]), int(offsets[i])
            assert out.payload[s : s + n] == data[o : o + n], i


def call_target(
    target: Target, unit, *, trace_memory: bool = False, source: str = "fuzz.input"
) -> Call:
    """Run one unit through `target` and check the contract; raises AssertionError on a breach.

    A pcap reader may raise ValueError naming the file (header unreadable); that is allowed.
    """
    data = unit_bytes(unit)
    if trace_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        try:
            out = target.run(unit, source)
        except ValueError as exc:
            if target.name != "pcap":
                raise
            assert source in str(exc), f"pcap ValueError does not name the file: {exc}"
            assert data[:4] == PCAPNG_MAGIC or not pcap_header_readable(data), (
                f"ValueError on a readable pcap header: {exc}"
            )
            out = []
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    finally:
        if trace_memory:
            tracemalloc.stop()
    assert seconds <= CALL_LIMIT_S, f"{target.name}: {seconds:.2f} s on {len(data)} bytes"
    if trace_memory:
        assert peak < 50 * len(data) + 16 * 2**20, f"{target.name}: peak {peak} B on {len(data)} B"
    call = Call(out, seconds, peak)
    for res in out:
        if target.name == "pcap":
            check_pcap_output(res, data, source)
            call.reasons |= {q.reason for q in res.problems}
            continue
        decoder = target.name in ("ipfix", "datagrams", "v9", "v5")  # sampling resolved
        exact = decoder or target.name in TEXT_TARGETS  # payload == data[offset:offset+length]
        check_result(res, data, source, payload_at_offset=exact, sampled=decoder)
        call.reasons |= set(res.stats.quarantine_by_reason)
    return call
