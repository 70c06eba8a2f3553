"""The provenance the report prints names the inputs the build really used."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import polars as pl
import pytest

from pipeline.aggregate import history
from pipeline.aggregate import year as aggregate_year
from pipeline.config import PARAMS_FILE, Paths, load_params
from pipeline.ingest import flows as ingest_flows
from pipeline.report import references
from pipeline.report import year as report_year


@pytest.fixture
def other_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """BBTR_PARAMS pointing at a copy of params.yaml that differs by a comment."""
    text = PARAMS_FILE.read_text() + "\n# a copy kept beside the data\n"
    path = tmp_path / "params.yaml"
    path.write_text(text)
    monkeypatch.setenv("BBTR_PARAMS", str(path))
    load_params.cache_clear()
    yield text
    monkeypatch.delenv("BBTR_PARAMS")
    load_params.cache_clear()


def test_provenance_hashes_the_params_file_in_use(tmp_path: Path, monkeypatch, other_params):
    monkeypatch.setattr(aggregate_year, "ingest_reports_for_year", lambda paths, year: [])
    monkeypatch.setattr(ingest_flows, "load_exporters", lambda raw: [])
    paths = Paths(tmp_path, tmp_path / "raw", tmp_path / "truth", tmp_path / "wh",
                  tmp_path / "history", tmp_path / "reports")  # fmt: skip
    quality = pl.DataFrame(schema={"item": pl.String, "scope": pl.String, "value": pl.Float64})
    context = report_year.build_context(paths, 2024, "simulator", {"data_quality": quality})
    expected = hashlib.sha256(other_params.encode()).hexdigest()
    assert context["provenance"]["params_sha256"] == expected
    assert expected != hashlib.sha256(PARAMS_FILE.read_bytes()).hexdigest()


def test_reference_tables_pinned_by_size_and_hash(tmp_path: Path, caplog) -> None:
    published = tmp_path / "published"
    published.mkdir()
    for name in references.MERGED:
        (published / name).write_text(f"year,value\n2024,{len(name)}\n")
    (published / "notes.txt").write_text("not a table")
    tables, warnings = references.reference_tables(published)
    assert [t["name"] for t in tables] == sorted(references.MERGED)
    first = published / tables[0]["name"]
    assert tables[0]["bytes"] == first.stat().st_size
    assert tables[0]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert warnings == [] and "absent" not in caplog.text


def test_absent_reference_tables_warn(tmp_path: Path, caplog) -> None:
    tables, warnings = references.reference_tables(tmp_path / "nowhere")
    assert tables == [] and len(warnings) == 1 and "absent" in warnings[0]
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "top_user_shares.csv").write_text("year\n")
    tables, warnings = references.reference_tables(tmp_path / "published")
    assert [t["name"] for t in tables] == ["top_user_shares.csv"]
    assert len(warnings) == len(references.MERGED) - 1
    assert "table1_broadband_daily_usage_2007_2024.csv" in warnings[0]
    assert caplog.text.count("WARNING") == 1 + len(warnings)


def test_the_merged_names_are_the_ones_history_reads() -> None:
    source = Path(history.__file__).read_text()
    read = set(re.findall(r'"([a-z0-9_]+\.csv)"', source))
    assert read == set(references.MERGED)
