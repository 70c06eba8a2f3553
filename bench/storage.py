"""Bytes per flow of a warehouse's flow partitions, per column and in total (read from the Parquet
footers: compressed column-chunk sizes; the file total includes footers and headers)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq


@dataclass
class StorageRow:
    """One column's (or the total's) bytes over the partitions of a table."""

    table: str
    column: str
    bytes: int
    rows: int

    @property
    def bytes_per_flow(self) -> float:
        return self.bytes / self.rows if self.rows else 0.0


def table_storage(warehouse: Path, table: str) -> list[StorageRow]:
    """Per column (compressed chunks) and `TOTAL` (file sizes) of `warehouse/table/**/*.parquet`."""
    files = sorted((Path(warehouse) / table).glob("date=*/exporter=*/*.parquet"))
    return files_storage(table, files)


def files_storage(table: str, files: list[Path]) -> list[StorageRow]:
    """Per column (compressed chunks, largest first) and `TOTAL` (file sizes) of `files`."""
    per_column: dict[str, int] = defaultdict(int)
    rows = total = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        rows += meta.num_rows
        total += f.stat().st_size
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                per_column[chunk.path_in_schema] += chunk.total_compressed_size
    out = [StorageRow(table, name, size, rows) for name, size in per_column.items()]
    out.sort(key=lambda r: -r.bytes)
    return [*out, StorageRow(table, "TOTAL (files)", total, rows)] if files else []


def storage_markdown(rows: list[StorageRow]) -> str:
    """The storage rows as a Markdown table."""
    lines = ["| table | column | bytes | flows | bytes per flow |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.table} | {r.column} | {r.bytes} | {r.rows} | {r.bytes_per_flow:.2f} |" for r in rows
    ]
    return "\n".join(lines)


def storage_tsv(rows: list[StorageRow]) -> str:
    """The storage rows as TSV."""
    lines = ["table\tcolumn\tbytes\tflows\tbytes_per_flow"]
    lines += [f"{r.table}\t{r.column}\t{r.bytes}\t{r.rows}\t{r.bytes_per_flow:.3f}" for r in rows]
    return "\n".join(lines) + "\n"
