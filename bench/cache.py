"""Generated benchmark data, cached by name under the data directory (written once, then reused)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


def cached_dir(data_dir: Path, name: str, build: Callable[..., None], *args: object) -> Path:
    """`data_dir/name`, built by `build(tmp_dir, *args)` into a temporary folder and renamed when
    complete, so an interrupted build is never mistaken for data."""
    final = Path(data_dir) / name
    if final.is_dir():
        return final
    tmp = Path(data_dir) / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    build(tmp, *args)
    tmp.rename(final)
    return final
