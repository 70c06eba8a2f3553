"""The benchmark's generated data: schema, row order, attribution share, determinism (tiny)."""

from __future__ import annotations

import pyarrow.parquet as pq

from bench import attributed_year, exporter_day
from pipeline.attribute.attribute import attribute_day
from pipeline.ingest.flow_store import sorted_flows
from pipeline.ingest.flows import NORMALISED_SCHEMA


def test_exporter_day_is_normalised_sorted_and_mostly_attributable(tmp_path):
    warehouse = exporter_day.exporter_day(tmp_path / "a", 3_000, 5)
    table = pq.read_table(exporter_day.flows_file(warehouse))
    assert table.schema.remove_metadata() == NORMALISED_SCHEMA
    assert table.num_rows == 3_000
    assert table.equals(sorted_flows(table))  # one slice at this size
    v6 = (table.column("ip_version").to_numpy() == 6).mean()
    assert 0.15 < v6 < 0.35
    again = exporter_day.exporter_day(tmp_path / "b", 3_000, 5)
    assert pq.read_table(exporter_day.flows_file(again)).equals(table)
    counts = attribute_day(warehouse, exporter_day.DAY, exporter_day.EXPORTER, exporter_day.SALT)
    assert 0.6 < counts["attributed"] / counts["flows"] < 0.8


def test_attributed_year_covers_the_weeks_with_growing_users(tmp_path):
    root = attributed_year.attributed_year(tmp_path, 20_000, 3)
    files = sorted((root / "warehouse" / "attributed").glob("date=*/exporter=*/flows.parquet"))
    days = attributed_year.year_days(attributed_year.YEAR)
    assert len(files) == len(days) * len(attributed_year.EXPORTERS)
    table = pq.read_table(files[0])
    assert table.column("flow_start_ms").to_numpy().tolist() == sorted(
        table.column("flow_start_ms").to_numpy().tolist()
    )
    assert (root / "warehouse" / "reference" / "mobile_usage.parquet").is_file()
