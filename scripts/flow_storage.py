"""Bytes per flow of normalised flow partitions, per column, before and after re-writing them with
pipeline/ingest/flow_store.py; checks the re-written partitions hold the same rows and times
a DuckDB scan of both (CPU seconds, median of 3, interleaved).

    .venv/bin/python scripts/flow_storage.py <folder with date=*/exporter=*/flows.parquet> <out>
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.ingest.flow_store import bytes_per_flow, sorted_flows, write_flows

# What attribution reads (pipeline/attribute/sql/attribute_flows.sql: every column).
SCAN = "SELECT {cols} FROM read_parquet($files)"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def scan_cpu_s(files: list[Path], columns: list[str]) -> float:
    """CPU seconds of one DuckDB scan of `columns` (materialised with a hash aggregate)."""
    conn = duckdb.connect()
    conn.execute("SET threads = 1")
    query = f"SELECT sum(hash({', '.join(columns)})) FROM read_parquet($files)"
    start = _cpu()
    conn.execute(query, {"files": [str(f) for f in files]}).fetchall()
    conn.close()
    return _cpu() - start


def main(source: Path, out: Path) -> None:
    before = sorted(source.glob("date=*/exporter=*/flows.parquet"))
    after, write_s = [], 0.0
    for path in before:
        table = pq.read_table(path)
        target = out / path.relative_to(source)
        start = _cpu()
        write_flows(table, target)
        write_s += _cpu() - start
        again = pq.read_table(target)
        if not again.equals(sorted_flows(table)):  # lossless: same rows, same values, same types
            raise SystemExit(f"{target}: re-written partition differs from {path}")
        after.append(target)
    (b_cols, b_total, rows), (a_cols, a_total, _) = bytes_per_flow(before), bytes_per_flow(after)
    print(f"{rows} flows in {len(before)} partitions; write {write_s:.2f} CPU-s (sort + Parquet)")
    print(f"| {'column':24s} | {'before B/flow':>13s} | {'after B/flow':>12s} |")
    print(f"|{'-' * 26}|{'-' * 15}:|{'-' * 14}:|")
    for name in b_cols:
        print(f"| {name:24s} | {b_cols[name]:13.3f} | {a_cols.get(name, 0.0):12.3f} |")
    print(f"| {'sum of column chunks':24s} | {sum(b_cols.values()):13.3f} | "
          f"{sum(a_cols.values()):12.3f} |")  # fmt: skip
    print(f"| {'whole files':24s} | {b_total:13.3f} | {a_total:12.3f} |")
    columns = [c for c in pq.read_schema(before[0]).names if c != "exporter"]
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(3):
        for label, files in (("before", before), ("after", after)):
            times[label].append(scan_cpu_s(files, columns))
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"DuckDB scan of every column (1 thread, median of 3): before {b:.3f} CPU-s, "
          f"after {a:.3f} CPU-s ({a / b:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    start = time.time()
    main(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"({time.time() - start:.0f} s)")
