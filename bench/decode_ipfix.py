"""Benchmark: IpfixDecoder records/s vs a naive struct.iter_unpack baseline, fixed and var-length.

Run from the repo root: `.venv/bin/python -m bench.decode_ipfix` or `python bench/decode_ipfix.py`.
"""

from __future__ import annotations

import struct
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.wire.ipfix.decoder import IpfixDecoder  # noqa: E402
from pipeline.wire.ipfix.writer import RECORD_DTYPE_V4, encode_ipfix_stream  # noqa: E402

FIXED_RECORDS = 2_000_000
VAR_RECORDS = 500_000
VAR_PER_SET = 20
SEED = 20240603


def fixed_stream(n: int) -> bytes:
    """The simulator's format: IPv4 template, 1400-byte messages."""
    rng = np.random.default_rng(SEED)
    start = rng.integers(1_717_000_000_000, 1_717_600_000_000, n, dtype=np.int64)
    u = lambda hi, dt: rng.integers(0, hi, n, dtype=dt)  # noqa: E731
    flows = {
        "flow_start_ms": start,
        "flow_end_ms": start + 1000,
        "ip_version": np.full(n, 4, np.uint8),
        "src_v4": u(2**32, np.uint32),
        "dst_v4": u(2**32, np.uint32),
        "src_v6_hi": np.zeros(n, np.uint64),
        "src_v6_lo": np.zeros(n, np.uint64),
        "dst_v6_hi": np.zeros(n, np.uint64),
        "dst_v6_lo": np.zeros(n, np.uint64),
        "src_port": u(2**16, np.uint16),
        "dst_port": u(2**16, np.uint16),
        "protocol": u(256, np.uint8),
        "flow_direction": u(2, np.uint8),
        "octets": u(2**40, np.uint64),
        "packets": u(2**20, np.uint64),
    }
    buf, _ = encode_ipfix_stream(
        flows, observation_domain_id=1, sampling_interval=4096, export_time_s=1_717_600_000
    )
    return buf


# var-length template: src, dst v4, interfaceName (variable, 0..30 bytes), octets, packets, protocol
VAR_FIELDS = [(8, 4), (12, 4), (82, 65535), (1, 8), (2, 8), (4, 1)]


def var_stream(n: int) -> bytes:
    """Template message, then messages of one data set of VAR_PER_SET records (built with numpy)."""
    rng = np.random.default_rng(SEED)
    name_len = rng.integers(0, 31, n)
    rec_len = 4 + 4 + 1 + name_len + 8 + 8 + 1
    msgs = -(-n // VAR_PER_SET)
    msg_of = np.arange(n) // VAR_PER_SET
    msg_body = np.bincount(msg_of, weights=rec_len, minlength=msgs).astype(np.int64)
    msg_len = 20 + msg_body
    msg_start = np.concatenate(([0], np.cumsum(msg_len)[:-1]))
    within = np.cumsum(rec_len) - rec_len - (np.cumsum(msg_body) - msg_body)[msg_of]
    rec_start = msg_start[msg_of] + 20 + within
    out = np.zeros(int(msg_len.sum()), dtype=np.uint8)

    def put(offsets: np.ndarray, values: np.ndarray, width: int) -> None:
        raw = values.astype(f">u{width}").view(np.uint8).reshape(-1, width)
        out[offsets[:, None] + np.arange(width)] = raw

    put(msg_start, np.full(msgs, 10), 2)
    put(msg_start + 2, msg_len, 2)
    put(msg_start + 4, np.full(msgs, 1_717_600_000), 4)
    put(msg_start + 8, np.concatenate(([0], np.cumsum(np.bincount(msg_of))[:-1])), 4)
    put(msg_start + 12, np.ones(msgs), 4)
    put(msg_start + 16, np.full(msgs, 256), 2)
    put(msg_start + 18, msg_body + 4, 2)
    put(rec_start, rng.integers(0, 2**32, n), 4)
    put(rec_start + 4, rng.integers(0, 2**32, n), 4)
    put(rec_start + 8, name_len, 1)
    after = rec_start + 9 + name_len
    put(after, rng.integers(0, 2**40, n), 8)
    put(after + 8, rng.integers(0, 2**20, n), 8)
    put(after + 16, rng.integers(0, 256, n), 1)
    tset = struct.pack(">HH", 256, len(VAR_FIELDS)) + b"".join(
        struct.pack(">HH", *f) for f in VAR_FIELDS
    )
    body = struct.pack(">HH", 2, 4 + len(tset)) + tset
    return struct.pack(">HHIII", 10, 16 + len(body), 1_717_600_000, 0, 1) + body + out.tobytes()


def _data_sets(buf: bytes, set_id: int = 256):
    """(body start, body end) of every data set `set_id`: a Python walk over messages and sets."""
    off = 0
    while off < len(buf):
        _, length = struct.unpack_from(">HH", buf, off)
        pos, end = off + 16, off + length
        while pos < end:
            sid, set_len = struct.unpack_from(">HH", buf, pos)
            if sid == set_id:
                yield pos + 4, pos + set_len
            pos += set_len
        off = end


def naive_fixed(buf: bytes) -> int:
    """Baseline: loop over messages and sets, struct.iter_unpack over each data set."""
    fmt = struct.Struct(">QQIIHHBBQQI")
    rows = []
    for start, end in _data_sets(buf):
        body = buf[start:end]
        rows.extend(fmt.iter_unpack(body[: len(body) // fmt.size * fmt.size]))
    return len(rows)


def naive_var(buf: bytes) -> int:
    """Baseline: per-record Python parsing of the var-length template."""
    rows = []
    for p, set_end in _data_sets(buf):
        while set_end - p >= 26:
            src, dst, ln = struct.unpack_from(">IIB", buf, p)
            p += 9 + ln
            octets, packets, proto = struct.unpack_from(">QQB", buf, p)
            p += 17
            rows.append((src, dst, octets, packets, proto))
    return len(rows)


def timed(fn, *args) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(3):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    assert RECORD_DTYPE_V4.itemsize == 50
    fixed = fixed_stream(FIXED_RECORDS)
    var = var_stream(VAR_RECORDS)
    print(f"{'stream':<28}{'records':>10}{'decoder rec/s':>16}{'naive rec/s':>14}{'speed-up':>10}")
    for label, buf, naive, n in (
        ("fixed-length (simulator)", fixed, naive_fixed, FIXED_RECORDS),
        ("variable-length template", var, naive_var, VAR_RECORDS),
    ):
        t_dec, result = timed(lambda b: IpfixDecoder("bench", 1).decode(b, "bench"), buf)
        t_naive, naive_n = timed(naive, buf)
        assert result.stats.records_decoded == n == naive_n, (result.stats, naive_n)
        print(
            f"{label:<28}{n:>10,}{n / t_dec:>16,.0f}{n / t_naive:>14,.0f}{t_naive / t_dec:>9.1f}x"
        )


if __name__ == "__main__":
    main()
