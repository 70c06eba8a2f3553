"""Benchmark: our read_nfcapd vs Debian's nfdump 1.7.1 on the same nfcapd file (~1.2 M flows).

Run from the repo root: `.venv/bin/python -m bench.nfcapd_vs_nfdump` (part of `python -m bench`).
The file is written by write_nfcapd from seeded flows (70 % IPv4, 30 % IPv6, interleaved, so
records are variable-size); nfdump timings are skipped when the binary is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.wire.nfcapd.reader import read_nfcapd  # noqa: E402
from pipeline.wire.nfcapd.writer import NfcapdExporterInput, write_nfcapd  # noqa: E402
from pipeline.wire.nfdump_text import read_nfdump_csv, read_nfdump_json  # noqa: E402

FLOWS = 1_200_000
SEED = 20240603


def seeded_flows(n: int) -> dict[str, np.ndarray]:
    """n random flows, IPv4 and IPv6 interleaved."""
    rng = np.random.default_rng(SEED)
    start = rng.integers(1_717_000_000_000, 1_717_003_600_000, n, dtype=np.int64)
    u = lambda hi, dt: rng.integers(0, hi, n, dtype=dt)  # noqa: E731
    return {
        "flow_start_ms": start,
        "flow_end_ms": start + u(60_000, np.int64),
        "ip_version": np.where(rng.random(n) < 0.7, 4, 6).astype(np.uint8),
        "src_v4": u(2**32, np.uint32),
        "dst_v4": u(2**32, np.uint32),
        "src_v6_hi": u(2**63, np.uint64),
        "src_v6_lo": u(2**63, np.uint64),
        "dst_v6_hi": u(2**63, np.uint64),
        "dst_v6_lo": u(2**63, np.uint64),
        "src_port": u(2**16, np.uint16),
        "dst_port": u(2**16, np.uint16),
        "protocol": rng.choice(np.array([6, 17, 1, 58, 47], np.uint8), n),
        "flow_direction": u(2, np.uint8),
        "octets": u(2**40, np.uint64),
        "packets": u(2**20, np.uint64),
    }


def _timed(label: str, n: int, run) -> float:
    t0 = time.perf_counter()
    run()
    dt = time.perf_counter() - t0
    print(f"  {label:<44} {dt:7.2f} s  {n / dt / 1e6:7.2f} M records/s")
    return dt


def main() -> None:
    nfdump = shutil.which("nfdump")
    with tempfile.TemporaryDirectory(prefix="bench-nfcapd-") as tmp:
        path = Path(tmp) / "nfcapd.bench"
        t0 = time.perf_counter()
        exporters = [NfcapdExporterInput("192.0.2.1", 1, 1024, seeded_flows(FLOWS))]
        n = write_nfcapd(path, exporters, created_ms=1_717_003_600_000)
        print(f"nfcapd vs nfdump: {n:,} flows, {path.stat().st_size / 1e6:.0f} MB, written by")
        print(f"  write_nfcapd in {time.perf_counter() - t0:.2f} s (incl. generating the flows)")
        results: list = []
        _timed("read_nfcapd (ours, all columns)", n, lambda: results.append(read_nfcapd(path)))
        decoded = sum(p.result.stats.records_decoded for p in results[0])
        assert decoded == n, (decoded, n)
        if nfdump is None:
            print("  nfdump not installed: reference timings skipped")
            return
        commands = {
            "nfdump -r F -q -o csv > /dev/null": ["-q", "-o", "csv"],
            "nfdump -r F -s proto/bytes": ["-s", "proto/bytes"],
        }
        with open("/dev/null", "wb") as null:
            for label, args in commands.items():
                cmd = [nfdump, "-r", str(path), *args]
                _timed(label, n, lambda cmd=cmd: subprocess.run(cmd, stdout=null, check=True))
        env = {"TZ": "UTC", "PATH": "/usr/bin:/bin"}  # the text readers read nfdump's times as UTC
        for fmt, reader in (("csv", read_nfdump_csv), ("json", read_nfdump_json)):
            out = Path(tmp) / f"export.{fmt}"
            cmd = [nfdump, "-r", str(path), "-q", "-o", fmt]
            with open(out, "wb") as fh:
                run = lambda cmd=cmd, fh=fh: subprocess.run(cmd, stdout=fh, env=env, check=True)  # noqa: E731
                _timed(f"nfdump -r F -q -o {fmt} > file", n, run)
            parts: list = []
            _timed(
                f"read_nfdump_{fmt} (ours, {out.stat().st_size / 1e6:.0f} MB)",
                n,
                lambda r=reader, o=out, p=parts: p.append(r(o)),
            )
            decoded = sum(p.result.stats.records_decoded for p in parts[0])
            assert decoded == n, (fmt, decoded, n)
            out.unlink()


if __name__ == "__main__":
    main()
