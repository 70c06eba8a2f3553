"""Atomic Parquet writes: a temp file in the target folder, then os.replace over the target."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl


def write_parquet_atomic(df: pl.DataFrame, out_path: Path) -> None:
    """Write `df` to `out_path` so that readers see the old file or the complete new one."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
