"""Atomic writes: a file is written under a temporary name in the target's folder and renamed over
the target; a folder (reports/<year>/) is built beside its target and swapped in whole. A reader
sees the old file or folder or the complete new one, never a partial write or a mix of two runs.

What a killed run leaves behind is ours by name only: files `.<name>.<8 random>.bbtr.tmp` and
folders `.<name>.build.tmp` / `.<name>.old.tmp`. `remove_debris` deletes exactly those at the next
start (never another program's temp files, e.g. the collector's `.collector-….pcap.tmp`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

TMP_SUFFIX = ".bbtr.tmp"
# mkstemp's names: prefix + 8 characters of [a-z0-9_] + suffix (also the older bare `.tmp` form)
_TMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}(\.bbtr)?\.tmp$")
_TMP_DIR = re.compile(r"^\..+\.(build|old)\.tmp$")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def write_atomic(path: Path, write: Callable[[str], object]) -> Path:
    """Call write(tmp_path), then rename tmp over `path`; the temp file never outlives a failure
    (a SIGKILL excepted: `remove_debris` deletes it at the next start)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
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


def staging_dir(target: Path) -> Path:
    """An empty folder `.<name>.build.tmp` beside `target` to build its new content in (a
    leftover of a killed run is removed first). The name is fixed, so two builds of the same
    content write the same bytes wherever a path could leak into an output."""
    target = Path(target)
    staging = target.parent / f".{target.name}.build.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]  # fmt: skip
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, f"renameat2({a}, {b}, RENAME_EXCHANGE): {os.strerror(err)}")


def replace_dir(staging: Path, target: Path, exchange: bool = True) -> Path:
    """Put the complete folder `staging` (a sibling of `target`) in place of `target`, whole.

    No target yet: one rename. Else, on Linux, one renameat2(RENAME_EXCHANGE) swaps the two
    folders (a reader sees the old folder or the new one, at every instant), then the old one is
    deleted. Fallback (other systems or file systems, `exchange=False`): rename the old folder
    aside, rename the new one in, delete the old: for a moment `target` is absent, never mixed."""
    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.rename(staging, target)
        return target
    if exchange and _rename_exchange(staging, target):
        shutil.rmtree(staging)  # now the old content
        return target
    old = target.parent / f".{target.name}.old.tmp"
    if old.exists():
        shutil.rmtree(old)
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old)
    return target


def remove_debris(roots: Iterable[Path]) -> list[Path]:
    """Delete what killed runs left under `roots`: our temp files and staging/old folders
    (names as in the module docstring, nothing else); returns the paths removed."""
    removed: list[Path] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in list(dirnames):
                if _TMP_DIR.match(name):
                    shutil.rmtree(Path(dirpath) / name)
                    removed.append(Path(dirpath) / name)
                    dirnames.remove(name)
            for name in filenames:
                if _TMP_FILE.match(name):
                    (Path(dirpath) / name).unlink(missing_ok=True)
                    removed.append(Path(dirpath) / name)
    return sorted(removed)
