"""The provenance the report prints names the inputs the build really used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from pipeline.aggregate import year as aggregate_year
from pipeline.config import PARAMS_FILE, Paths, load_params
from pipeline.ingest import flows as ingest_flows
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
