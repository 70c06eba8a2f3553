"""IPFIX writer: message layout parsed by hand, sequence numbers, round trip through the decoder."""

from __future__ import annotations

import struct

import numpy as np

from pipeline.wire.ipfix.decoder import IpfixDecoder
from pipeline.wire.ipfix.writer import encode_ipfix_stream, write_ipfix_file

V4_IES = [
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
V6_IES = [
    (152, 8),
    (153, 8),
    (27, 16),
    (28, 16),
    (7, 2),
    (11, 2),
    (4, 1),
    (61, 1),
    (1, 8),
    (2, 8),
    (302, 4),
]


def random_flows(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = rng.integers(1_500_000_000_000, 1_800_000_000_000, n, dtype=np.int64)
    u64 = lambda: rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)  # noqa: E731
    return {
        "flow_start_ms": start,
        "flow_end_ms": start + rng.integers(0, 3_600_000, n),
        "ip_version": rng.choice(np.array([4, 6], dtype=np.uint8), n),
        "src_v4": rng.integers(0, 2**32, n, dtype=np.uint32, endpoint=False),
        "dst_v4": rng.integers(0, 2**32, n, dtype=np.uint32, endpoint=False),
        "src_v6_hi": u64(),
        "src_v6_lo": u64(),
        "dst_v6_hi": u64(),
        "dst_v6_lo": u64(),
        "src_port": rng.integers(0, 2**16, n, dtype=np.uint16, endpoint=False),
        "dst_port": rng.integers(0, 2**16, n, dtype=np.uint16, endpoint=False),
        "protocol": rng.integers(0, 256, n, dtype=np.uint8, endpoint=False),
        "flow_direction": rng.integers(0, 2, n, dtype=np.uint8, endpoint=False),
        "octets": u64(),
        "packets": u64(),
    }


def split_messages(buf: bytes) -> list[tuple[int, int, int, bytes]]:
    """(export time, sequence, domain, body) of each message, by hand."""
    out, off = [], 0
    while off < len(buf):
        version, length, export_s, seq, domain = struct.unpack_from(">HHIII", buf, off)
        assert version == 10 and 16 <= length <= len(buf) - off
        out.append((export_s, seq, domain, buf[off + 16 : off + length]))
        off += length
    return out


def sets_of(body: bytes) -> list[tuple[int, bytes]]:
    out, off = [], 0
    while off < len(body):
        set_id, length = struct.unpack_from(">HH", body, off)
        out.append((set_id, body[off + 4 : off + length]))
        off += length
    return out


def test_first_message_announces_templates_and_sampling():
    flows = random_flows(10)
    buf, _ = encode_ipfix_stream(
        flows,
        observation_domain_id=42,
        sampling_interval=4096,
        selector_id=3,
        export_time_s=1_717_400_000,
    )
    export_s, seq, domain, body = split_messages(buf)[0]
    assert (export_s, seq, domain) == (1_717_400_000, 0, 42)
    (tset_id, tset), (oset_id, oset), (dset_id, dset) = sets_of(body)
    assert (tset_id, oset_id) == (2, 3)
    tid4, n4 = struct.unpack_from(">HH", tset, 0)
    fields4 = [struct.unpack_from(">HH", tset, 4 + 4 * i) for i in range(n4)]
    off6 = 4 + 4 * n4
    tid6, n6 = struct.unpack_from(">HH", tset, off6)
    fields6 = [struct.unpack_from(">HH", tset, off6 + 4 + 4 * i) for i in range(n6)]
    assert (tid4, fields4, tid6, fields6) == (256, V4_IES, 257, V6_IES)
    otid, count, scope = struct.unpack_from(">HHH", oset, 0)
    ofields = [struct.unpack_from(">HH", oset, 6 + 4 * i) for i in range(count)]
    assert (count, scope, ofields) == (3, 1, [(302, 4), (305, 4), (306, 4)])
    assert dset_id == otid and struct.unpack(">III", dset) == (3, 1, 4095)


def test_sequence_numbers_count_data_records_and_sizes_respected():
    flows = random_flows(1000)
    n4 = int((flows["ip_version"] == 4).sum())
    buf, next_seq = encode_ipfix_stream(
        flows,
        observation_domain_id=1,
        sampling_interval=8,
        export_time_s=5,
        sequence_start=2**32 - 3,
        max_message_bytes=512,
        template_refresh_messages=10,
    )
    msgs = split_messages(buf)
    expected, data_records, template_msgs = 2**32 - 3, 0, 0
    for _, seq, _, body in msgs:
        assert seq == expected % 2**32
        assert len(body) + 16 <= 512 or sets_of(body)[0][0] == 2
        for set_id, payload in sets_of(body):
            if set_id == 2:
                template_msgs += 1
            elif set_id == 256:
                expected += len(payload) // 50
                data_records += len(payload) // 50
            elif set_id == 257:
                expected += len(payload) // 74
                data_records += len(payload) // 74
            elif set_id == 258:
                expected += 1
    assert data_records == 1000 and next_seq == expected % 2**32
    # 512-byte messages: 9 v4 or 6 v6 records each; a template message every 10 data messages
    n_data_msgs = -(-n4 // 9) + -(-(1000 - n4) // 6)
    assert template_msgs == -(-n_data_msgs // 10)
    assert len(msgs) == n_data_msgs + template_msgs


def test_round_trip_100k_random_flows_is_exact():
    flows = random_flows(100_000)
    buf, next_seq = encode_ipfix_stream(
        flows, observation_domain_id=7, sampling_interval=16384, export_time_s=1_717_000_000
    )
    r = IpfixDecoder("sim").decode(buf, "x")
    assert r.stats.records_decoded == 100_000 and r.stats.records_quarantined == 0
    assert r.stats.sequence_gaps == 0 and r.stats.sampling_intervals == {16384: 100_000}
    t = r.flows
    assert next_seq == 100_000 + r.stats.options_records
    for version in (4, 6):
        rows = flows["ip_version"] == version
        sub = t.filter(np.asarray(t.column("ip_version")) == version)
        assert sub.num_rows == rows.sum()
        for name, values in flows.items():
            col = sub.column(name)
            if (version == 4 and "_v6_" in name) or (version == 6 and name.endswith("_v4")):
                assert col.null_count == sub.num_rows, name
            else:
                assert np.array_equal(col.to_numpy(), values[rows]), name
        assert set(sub.column("observation_domain_id").to_pylist()) == {7}


def test_write_ipfix_file_is_atomic_and_deterministic(tmp_path):
    flows = random_flows(500)
    path = tmp_path / "d" / "0000.ipfix"
    kwargs = dict(observation_domain_id=1, sampling_interval=8, export_time_s=9)
    assert write_ipfix_file(path, flows, **kwargs) == 500
    first = path.read_bytes()
    assert write_ipfix_file(path, flows, **kwargs) == 500
    assert path.read_bytes() == first == encode_ipfix_stream(flows, **kwargs)[0]
    assert [p.name for p in path.parent.iterdir()] == ["0000.ipfix"]


def test_empty_flows_still_announce_templates():
    flows = {k: v[:0] for k, v in random_flows(1).items()}
    buf, next_seq = encode_ipfix_stream(
        flows, observation_domain_id=1, sampling_interval=2, export_time_s=0
    )
    assert len(split_messages(buf)) == 1 and next_seq == 1
