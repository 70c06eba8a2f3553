"""Benchmark: FlowDecoder records/s per export format, side by side (one core).

IPFIX fixed and variable-length files (`decode`), NetFlow v9 fixed-length and v5 datagrams
(`decode_datagrams`, as from a pcap). Run: `.venv/bin/python -m bench.decode_netflow`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.decode_ipfix import fixed_stream, var_stream  # noqa: E402
from pipeline.wire.ipfix.decoder import FlowDecoder  # noqa: E402
from pipeline.wire.netflow_v5 import encode_v5_datagrams  # noqa: E402
from pipeline.wire.netflow_v9 import encode_v9_datagrams  # noqa: E402

IPFIX_FIXED_RECORDS = 1_000_000
IPFIX_VAR_RECORDS = 300_000
V9_RECORDS = 1_000_000
V5_RECORDS = 600_000
EXPORT_S = 1_717_600_000
UPTIME_MS = 86_400_000
SEED = 20240604


def v4_flows(n: int) -> dict[str, np.ndarray]:
    """IPv4 flows of the last hour before the export, 32-bit counters (v5 carries those)."""
    rng = np.random.default_rng(SEED)
    start = rng.integers(EXPORT_S * 1000 - 3_600_000, EXPORT_S * 1000 - 60_000, n)
    zeros = np.zeros(n, np.uint64)
    return {
        "flow_start_ms": start,
        "flow_end_ms": start + 1000,
        "ip_version": np.full(n, 4, np.uint8),
        "src_v4": rng.integers(0, 2**32, n, dtype=np.uint32),
        "dst_v4": rng.integers(0, 2**32, n, dtype=np.uint32),
        "src_v6_hi": zeros,
        "src_v6_lo": zeros,
        "dst_v6_hi": zeros,
        "dst_v6_lo": zeros,
        "src_port": rng.integers(0, 2**16, n, dtype=np.uint16),
        "dst_port": rng.integers(0, 2**16, n, dtype=np.uint16),
        "protocol": rng.integers(0, 256, n, dtype=np.uint8),
        "flow_direction": rng.integers(0, 2, n, dtype=np.uint8),
        "octets": rng.integers(40, 2**32, n, dtype=np.uint64),
        "packets": rng.integers(1, 2**20, n, dtype=np.uint64),
    }


def framed(grams: list[bytes]) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """Datagrams as one payload with starts, lengths and pcap-like file offsets."""
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return b"".join(grams), starts, lengths, starts + 58 * (np.arange(len(grams)) + 1) + 24


def best_seconds(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    v9_grams, _ = encode_v9_datagrams(
        v4_flows(V9_RECORDS),
        source_id=1,
        sampling_interval=4096,
        export_time_s=EXPORT_S,
        sys_uptime_ms=UPTIME_MS,
    )
    v5_grams, _ = encode_v5_datagrams(
        v4_flows(V5_RECORDS),
        engine_type=0,
        engine_id=1,
        sampling_interval=4096,
        export_time_s=EXPORT_S,
        sys_uptime_ms=UPTIME_MS,
    )
    ipfix_fixed = fixed_stream(IPFIX_FIXED_RECORDS)
    ipfix_var = var_stream(IPFIX_VAR_RECORDS)
    v9_batch, v5_batch = framed(v9_grams), framed(v5_grams)
    cases = [
        (
            "IPFIX fixed (file)",
            IPFIX_FIXED_RECORDS,
            lambda: FlowDecoder("b", 1).decode(ipfix_fixed, "b"),
        ),
        (
            "IPFIX variable (file)",
            IPFIX_VAR_RECORDS,
            lambda: FlowDecoder("b", 1).decode(ipfix_var, "b"),
        ),
        (
            "NetFlow v9 fixed (datagrams)",
            V9_RECORDS,
            lambda: FlowDecoder("b", None).decode_datagrams(*v9_batch, "b"),
        ),
        (
            "NetFlow v5 (datagrams)",
            V5_RECORDS,
            lambda: FlowDecoder("b", None).decode_datagrams(*v5_batch, "b"),
        ),
    ]
    print(f"{'format':<32}{'records':>11}{'seconds':>9}{'records/s':>14}")
    for label, n, run in cases:
        seconds, result = best_seconds(run)
        assert result.stats.records_decoded == n and not result.quarantine, (label, result.stats)
        print(f"{label:<32}{n:>11,}{seconds:>9.3f}{n / seconds:>14,.0f}")


if __name__ == "__main__":
    main()
