"""Atomic file writes: write a temp file in the target's folder, then rename it over the target,
so a reader sees the old file or the complete new one, never a partial write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl


def write_atomic(path: Path, write: Callable[[str], object]) -> Path:
    """Call write(tmp_path), then rename tmp over `path`; the temp file never outlives a failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> Path:
    """A polars frame as zstd Parquet (deterministic bytes for the same frame)."""
    return write_atomic(path, lambda tmp: df.write_parquet(tmp, compression="zstd"))
