"""Fixtures shared by the end-to-end modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.builds import build_year


@pytest.fixture(scope="session")
def local_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report folder of one small year built the embedded default's way (local folders,
    SQLite, the process pool): what the staged and the cluster builds must equal, byte for byte."""
    return build_year(tmp_path_factory.mktemp("local"))
