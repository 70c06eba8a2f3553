"""Real captures in ../shared/data: their path, or a skip with the reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import SHARED_DIR

SHARED_DATA = SHARED_DIR / "data"


def require_shared() -> Path:
    """Return ../shared/data or skip the test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real captures not available: {SHARED_DATA} is absent (CI has ../shared)")
    return SHARED_DATA
