"""The normalised flow partition layout: lossless, deterministic, in its documented row order."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.ingest.flow_store import (
    DELTA_COLUMNS,
    DICTIONARY_COLUMNS,
    column_encoding,
    remote_port,
    sort_keys,
    sorted_flows,
    write_flows,
)
from pipeline.ingest.flows import NORMALISED_SCHEMA

N = 5_000
T0 = 1_717_340_400_000


def random_flows(seed: int = 7, n: int = N) -> pa.Table:
    """Flows with every awkward value: nulls per IP version, a null flow_direction, type extremes,
    repeated rows, negative and huge times, random 64-bit halves."""
    rng = np.random.default_rng(seed)
    v6 = rng.random(n) < 0.45
    u64 = np.iinfo(np.uint64).max

    def pick(values, size=n):
        return rng.choice(np.asarray(values), size)

    def ints(dtype, lo, hi):
        return rng.integers(lo, hi, n, dtype=dtype, endpoint=True)

    start = T0 + ints(np.int64, 0, 86_400_000)
    start[:3] = [np.iinfo(np.int64).min, -1, np.iinfo(np.int64).max - 2_000_000]
    direction = pa.array(pick([0, 1, 1]).astype(np.uint8), mask=rng.random(n) < 0.05)
    columns = {
        "exporter": pa.array(["bras-a"] * n),
        "observation_domain_id": pick([1, 7]).astype(np.uint32),
        "flow_start_ms": start,
        "flow_end_ms": start + ints(np.int64, 0, 1_200_000),
        "ip_version": np.where(v6, 6, 4).astype(np.uint8),
        "src_v4": pa.array(ints(np.uint32, 0, 2**32 - 1), mask=v6),
        "dst_v4": pa.array(ints(np.uint32, 0, 2**32 - 1), mask=v6),
        **{
            f"{side}_v6_{half}": pa.array(ints(np.uint64, 0, u64), mask=~v6)
            for side in ("src", "dst")
            for half in ("hi", "lo")
        },
        "protocol": pick([1, 6, 17, 58]).astype(np.uint8),
        "src_port": ints(np.uint16, 0, 65535),
        "dst_port": pick([0, 53, 443, 65535]).astype(np.uint16),
        "flow_direction": direction,
        "octets": np.concatenate([np.array([0, u64], np.uint64), ints(np.uint64, 0, 10**7)[2:]]),
        "packets": ints(np.uint64, 1, 5000),
        "sampling_interval": pick([1, 1024, 2**31]).astype(np.uint32),
    }
    table = pa.table(columns).cast(NORMALISED_SCHEMA)
    return pa.concat_tables([table, table.slice(10, 20)])  # 20 rows twice


def by_every_column(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.schema.names])


def test_a_written_partition_reads_back_exactly_the_rows_written(tmp_path):
    flows = random_flows()
    path = write_flows(flows, tmp_path / "flows.parquet")
    back = pq.read_table(path)
    assert back.schema == NORMALISED_SCHEMA  # same names, types and nullability
    assert back.equals(sorted_flows(flows))  # every value, in the partition's order
    assert by_every_column(back).equals(by_every_column(flows))  # the same rows, none lost
    # …and the other readers of the partitions get the same values
    assert pl.read_parquet(path).equals(pl.from_arrow(back))
    via_duckdb = duckdb.sql(
        "SELECT * FROM read_parquet($p, hive_partitioning = false)", params={"p": str(path)}
    ).to_arrow_table()
    assert via_duckdb.cast(NORMALISED_SCHEMA).equals(back)


def test_writing_is_byte_identical_whatever_the_input_order(tmp_path):
    flows = random_flows()
    shuffled = flows.take(np.random.default_rng(1).permutation(flows.num_rows))
    first = write_flows(flows, tmp_path / "a.parquet").read_bytes()
    assert write_flows(flows, tmp_path / "b.parquet").read_bytes() == first
    assert write_flows(shuffled, tmp_path / "c.parquet").read_bytes() == first


def test_rows_follow_the_documented_order(tmp_path):
    back = pq.read_table(write_flows(random_flows(), tmp_path / "flows.parquet"))
    keyed = back.append_column("remote_port", remote_port(back))
    order = pc.sort_indices(keyed, [(k, "ascending") for k in sort_keys(back.schema)])
    assert order.to_pylist() == list(range(back.num_rows))
    assert sort_keys(back.schema)[:6] == [
        "ip_version", "flow_direction", "protocol", "remote_port", "flow_start_ms", "flow_end_ms",
    ]  # fmt: skip
    ports = back.slice(0, 50).to_pylist()  # remote port: src for egress (1), else dst
    for row, port in zip(ports, remote_port(back.slice(0, 50)).to_pylist(), strict=True):
        assert port == (row["src_port"] if row["flow_direction"] == 1 else row["dst_port"])


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_single_row_partitions(tmp_path, rows):
    flows = random_flows(n=10).slice(0, rows)
    back = pq.read_table(write_flows(flows, tmp_path / "flows.parquet"))
    assert back.schema == NORMALISED_SCHEMA and back.equals(flows.combine_chunks())


def test_columns_carry_the_chosen_encodings(tmp_path):
    meta = pq.ParquetFile(write_flows(random_flows(), tmp_path / "flows.parquet")).metadata
    chunks = {meta.row_group(0).column(c).path_in_schema: meta.row_group(0).column(c)
              for c in range(meta.num_columns)}  # fmt: skip
    for name, chunk in chunks.items():
        assert chunk.compression == "ZSTD"
        if name in DICTIONARY_COLUMNS:
            assert "RLE_DICTIONARY" in chunk.encodings, name
        else:
            encodings = set(chunk.encodings) - {"RLE"}  # RLE: the definition levels
            assert encodings == {column_encoding(name)}, (name, chunk.encodings)
            assert name not in DELTA_COLUMNS or column_encoding(name) == "DELTA_BINARY_PACKED"
