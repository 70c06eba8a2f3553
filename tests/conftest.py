"""Shared test fixtures and the `slow` marker's rule (see tests/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared import require_shared


@pytest.fixture
def shared_data() -> Path:
    return require_shared()
