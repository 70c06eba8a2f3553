"""The build's start-of-run clean-up reaches remote stores: old temporary uploads go, young ones
(a running task's) and data stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeline.build import _remove_store_debris
from pipeline.config import Paths, Settings


def test_old_temporaries_of_remote_stores_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BBTR_STORE_URL", f"file://{tmp_path}")
    folder = tmp_path / "warehouse" / "flows"
    folder.mkdir(parents=True)
    names = (".a.parquet.abcdefgh.bbtr.tmp", ".b.parquet.abcdefgh.bbtr.tmp", "a.parquet")
    old, young, data = (folder / n for n in names)
    for f in (old, young, data):
        f.write_bytes(b"x")
    for f in (old, data):
        os.utime(f, (time.time() - 7200,) * 2)
    removed = _remove_store_debris(Paths.from_env(), Settings())
    assert removed == [str(old)]
    assert sorted(p.name for p in folder.iterdir()) == sorted([young.name, data.name])


def test_local_folders_are_left_to_the_local_clean_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BBTR_STORE_URL", "BBTR_RAW_URL", "BBTR_WAREHOUSE_URL", "BBTR_HISTORY_URL"):
        monkeypatch.delenv(name, raising=False)
    assert _remove_store_debris(Paths.from_env(), Settings()) == []
