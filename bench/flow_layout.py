"""Bytes per flow of normalised flow partitions, per column, before and after re-writing them with
pipeline/ingest/flow_store.py; checks the re-written partitions hold the same rows, and times the
writers (previous layout: time-first sort, pyarrow defaults) and reads of both (CPU seconds,
median of 3, interleaved): DuckDB scan of every column (attribution), Polars scan of
exporter + flow_start_ms (pipeline/ingest/completeness.py).

    .venv/bin/python -m bench.flow_layout <folder with date=*/exporter=*/flows.parquet> <out>
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.storage import StorageRow, files_storage
from pipeline.ingest.flow_store import sorted_flows, write_flows

TIME_FIRST = ["flow_start_ms", "flow_end_ms"]  # the layout before flow_store.py


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


def previous_layout(table: pa.Table, path: Path) -> None:
    """The writer flow_store.py replaced: time first, then every column; pyarrow's defaults."""
    keys = TIME_FIRST + [n for n in table.schema.names if n not in TIME_FIRST + ["exporter"]]
    table = table.take(pc.sort_indices(table, [(k, "ascending") for k in keys])).combine_chunks()
    pq.write_table(table, path, compression="zstd")


def polars_scan_cpu_s(files: list[Path]) -> float:
    """CPU seconds of the completeness count: flows per exporter and minute."""
    start = _cpu()
    minute = pl.col("flow_start_ms") // 60_000
    pl.scan_parquet(files).group_by("exporter", minute).len().collect()
    return _cpu() - start


def write_cpu_s(tables: list[pa.Table], out: Path, writer) -> float:
    out.mkdir(parents=True, exist_ok=True)
    start = _cpu()
    for n, table in enumerate(tables):
        writer(table, out / f"{n}.parquet")
    return _cpu() - start


def _per_flow(files: list[Path]) -> tuple[dict[str, float], float, int]:
    """Bytes per flow of each column and of whole files, and the flows (bench.storage's rows)."""
    rows: list[StorageRow] = files_storage("flows", files)
    *columns, total = rows
    return {r.column: r.bytes_per_flow for r in columns}, total.bytes_per_flow, total.rows


def main(source: Path, out: Path) -> None:
    before = sorted(source.glob("date=*/exporter=*/flows.parquet"))
    after = []
    for path in before:
        table = pq.read_table(path)
        target = out / path.relative_to(source)
        write_flows(table, target)
        again = pq.read_table(target)
        if not again.equals(sorted_flows(table)):  # lossless: same rows, same values, same types
            raise SystemExit(f"{target}: re-written partition differs from {path}")
        after.append(target)
    (b_cols, b_total, rows), (a_cols, a_total, _) = _per_flow(before), _per_flow(after)
    print(f"{rows} flows in {len(before)} partitions")
    print(f"| {'column':24s} | {'before B/flow':>13s} | {'after B/flow':>12s} |")
    print(f"|{'-' * 26}|{'-' * 14}:|{'-' * 13}:|")
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
            times.setdefault(f"polars {label}", []).append(polars_scan_cpu_s(files))
    tables = [pq.read_table(p) for p in before]
    for _ in range(3):
        for label, writer in (("write before", previous_layout), ("write after", write_flows)):
            times.setdefault(label, []).append(write_cpu_s(tables, out / "timing", writer))
    for what, b_key, a_key in (
        ("DuckDB scan of every column (1 thread)", "before", "after"),
        ("Polars scan, exporter + flow_start_ms", "polars before", "polars after"),
        ("write (sort + Parquet)", "write before", "write after"),
    ):
        b, a = statistics.median(times[b_key]), statistics.median(times[a_key])
        print(f"{what}, median of 3: before {b:.3f} CPU-s, after {a:.3f} CPU-s ({a / b:.2f}x)")


if __name__ == "__main__":
    start = time.time()
    main(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"({time.time() - start:.0f} s)")
