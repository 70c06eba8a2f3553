"""Staging: a step's local working copy of just the store keys it reads, and publishing what it
wrote (docs/ARCHITECTURE.md, "Stores and staging").

With local stores (the default) nothing here copies anything: the folders are the stores. With a
remote store (`file://`, `s3://`) a distributed task fetches its keys by name into a scratch
folder, runs the unchanged stage function there, uploads the files it wrote and deletes the
scratch (`run_staged`); a host-side step does the same in the host's folders `Paths.raw`,
`Paths.warehouse`, `Paths.history` (`working_copy`). No listing here: callers name the keys.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow.fs as pafs

from pipeline.config import Paths
from pipeline.storage.store import Store

log = logging.getLogger(__name__)

AREAS = ("raw", "warehouse", "history")
# Where tasks make their scratch folders: a folder local to each worker's machine (default: the
# temp dir); never a shared one (process ids tell dead folders apart).
SCRATCH_ENV = "BBTR_SCRATCH_DIR"
SCRATCH_PREFIX = "bbtr-stage-"  # + "<pid>-<random>": a folder per running task
# Never published: temporary files of atomic writes (dot names) and DuckDB database files.
NEVER_PUBLISHED = (".duckdb", ".duckdb.wal", ".wal", ".tmp", ".lock")

T = TypeVar("T")
Snapshot = dict[str, tuple[int, int]]  # key -> (size, mtime_ns) of a working-copy file


class StageError(RuntimeError):
    """A fetch or publish that failed; the message names the store URL and the key."""


def store_of(paths: Paths, area: str) -> Store:
    """The store of "raw", "warehouse" or "history" (its local folder when no URL is set)."""
    return Store.from_url(paths.store_url(area))


def is_staged(paths: Paths, area: str) -> bool:
    """Whether `area` lives in a store other than its local folder (its steps stage)."""
    return bool(getattr(paths, f"{area}_url")) and not store_of(paths, area).is_local


def key_of(folder: Path, path: Path) -> str:
    """The store key of a working-copy file (its '/'-separated path under the area's folder)."""
    return Path(path).relative_to(folder).as_posix()


def _publishable(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return not name.startswith(".") and not name.endswith(NEVER_PUBLISHED)


def snapshot(folder: Path, prefixes: Iterable[str]) -> Snapshot:
    """(size, mtime_ns) of every publishable file under `folder/<prefix>` (a local walk)."""
    out: Snapshot = {}
    for prefix in prefixes:
        base = folder / prefix.strip("/") if prefix.strip("/") else folder
        files = [base] if base.is_file() else base.rglob("*") if base.is_dir() else []
        for p in files:
            if p.is_file() and _publishable(key := key_of(folder, p)):
                st = p.stat()
                out[key] = (st.st_size, st.st_mtime_ns)
    return out


def _object_info(store: Store, keys: list[str]) -> dict[str, pafs.FileInfo]:
    try:
        infos = store.fs.get_file_info([f"{store.root}/{k}" for k in keys])
    except OSError as e:
        raise StageError(f"{store.url}: could not look up {len(keys)} keys: {e}") from e
    return dict(zip(keys, infos, strict=True))


def fetch(
    store: Store, folder: Path, keys: Iterable[str], optional: bool = False, check: bool = True
) -> int:
    """Copy each key to `folder/<key>`; returns the bytes copied. A local copy with the object's
    size and modification time is kept (`check`; off in a fresh scratch). A key the store lacks
    raises StageError, or with `optional` removes any local copy (the step sees it absent)."""
    keys = sorted(set(keys))
    if store.is_local or not keys:
        return 0
    infos = _object_info(store, keys) if check or optional else {}
    copied = 0
    for key in keys:
        local = folder / key
        info = infos.get(key)
        if info is not None and info.type != pafs.FileType.File:
            if not optional:
                raise StageError(f"{store.url}/{key}: no such object (a step needs it)")
            local.unlink(missing_ok=True)
            continue
        if info is not None and check and _same(local, info):
            continue
        try:
            store.get_file(key, local)
        except FileNotFoundError as e:
            raise StageError(f"{store.url}/{key}: no such object (a step needs it)") from e
        except OSError as e:
            raise StageError(f"{store.url}/{key}: fetch failed: {e}") from e
        if info is not None and info.mtime_ns is not None:
            os.utime(local, ns=(info.mtime_ns, info.mtime_ns))
        copied += local.stat().st_size
    return copied


def _same(local: Path, info: pafs.FileInfo) -> bool:
    return is_current(local.parent, local.name, (int(info.size or 0), info.mtime_ns))


def publish(store: Store, folder: Path, before: Snapshot, prefixes: Iterable[str]) -> list[str]:
    """Upload every file under `folder/<prefix>` that is new or changed since `before`; returns
    the keys published (sorted). Each upload is atomic (Store.put_file)."""
    if store.is_local:
        return []
    after = snapshot(folder, prefixes)
    keys = sorted(k for k, stat in after.items() if before.get(k) != stat)
    for key in keys:
        try:
            store.put_file(folder / key, key)
        except OSError as e:
            raise StageError(f"{store.url}/{key}: publish failed: {e}") from e
    _stamp(store, folder, keys)
    if keys:
        log.debug("published %d files to %s", len(keys), store.url)
    return keys


def remote_sizes(store: Store, prefix: str = "") -> dict[str, int]:
    """{key: size} of every object under `prefix` in one listing (a cold path: once per step)."""
    return {k: size for k, (size, _) in store.infos(prefix).items()}


def is_current(folder: Path, key: str, info: tuple[int, int | None]) -> bool:
    """Whether the working copy `folder/<key>` is the object of `info` (size, mtime_ns): same size
    and the object's modification time, as fetch and publish leave it."""
    local = folder / key
    if info[1] is None or not local.is_file():
        return False
    st = local.stat()
    return (st.st_size, st.st_mtime_ns) == info


def _stamp(store: Store, folder: Path, keys: list[str]) -> None:
    """Give the just-uploaded working-copy files their objects' modification times, so a later
    step of this host finds its copy current instead of fetching it again."""
    for key, info in _object_info(store, keys).items() if keys else ():
        local = folder / key
        if info.type == pafs.FileType.File and info.mtime_ns is not None:
            if local.stat().st_size == info.size:
                os.utime(local, ns=(info.mtime_ns, info.mtime_ns))


def publish_files(store: Store, folder: Path, keys: Iterable[str], prefix: str = "") -> list[str]:
    """Upload the local files `folder/<key>` whose object under `prefix` is missing or of another
    size (one listing; what a collector does with the files it wrote); returns the keys sent."""
    if store.is_local:
        return []
    present = remote_sizes(store, prefix)
    sent = []
    for key in sorted(set(keys)):
        local = folder / key
        if present.get(key) != local.stat().st_size:
            try:
                store.put_file(local, key)
            except OSError as e:
                raise StageError(f"{store.url}/{key}: publish failed: {e}") from e
            sent.append(key)
    _stamp(store, folder, sent)
    return sent


def mirror(store: Store, folder: Path, prefix: str) -> list[str]:
    """Make `folder/<prefix>` hold exactly the store's objects under `prefix` (one listing;
    for a step that reads a whole folder); returns their keys."""
    if store.is_local:
        return []
    keys = sorted(remote_sizes(store, prefix))
    for key in set(snapshot(folder, [prefix])) - set(keys):
        (folder / key).unlink()
    fetch(store, folder, keys)
    return keys


@contextmanager
def working_copy(
    paths: Paths,
    reads: Mapping[str, Iterable[str]] | None = None,
    writes: Mapping[str, Iterable[str]] | None = None,
    optional: bool = True,
) -> Iterator[None]:
    """A host-side step in `Paths.raw/warehouse/history`: the keys of `reads` (area -> keys)
    fetched first (absent ones removed, with `optional`), then what the step wrote under the
    prefixes of `writes` (area -> prefixes) published. Without remote stores: nothing."""
    reads, writes = dict(reads or {}), {a: list(p) for a, p in (writes or {}).items()}
    staged = [a for a in AREAS if (a in reads or a in writes) and is_staged(paths, a)]
    stores = {a: store_of(paths, a) for a in staged}
    for area in staged:
        if area in reads:
            fetch(stores[area], getattr(paths, area), reads[area], optional=optional)
    before = {a: snapshot(getattr(paths, a), writes[a]) for a in staged if a in writes}
    yield
    for area in staged:
        if area in writes:
            publish(stores[area], getattr(paths, area), before[area], writes[area])


@dataclass(frozen=True)
class StagedTask:
    """What a distributed task needs to stage: store URLs by area (a local folder path for an
    unstaged area), the keys to fetch and the prefixes whose new files it publishes."""

    urls: dict[str, str]
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)
    writes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        paths: Paths,
        reads: Mapping[str, Iterable[str]] | None = None,
        writes: Mapping[str, Iterable[str]] | None = None,
    ) -> StagedTask:
        return cls(
            urls={a: paths.store_url(a) for a in AREAS},
            reads={a: tuple(sorted(set(k))) for a, k in (reads or {}).items()},
            writes={a: tuple(p) for a, p in (writes or {}).items()},
        )


def run_staged(task: StagedTask, fn: Callable[[dict[str, Path]], T]) -> T:
    """`fn(folders)` (area -> local folder) in a scratch folder holding the task's keys; the files
    it wrote under the task's prefixes published, the scratch deleted (also on failure)."""
    stores = {a: Store.from_url(u) for a, u in task.urls.items()}
    if all(s.is_local for s in stores.values()):
        return fn({a: Path(s.root) for a, s in stores.items()})
    base = Path(os.environ.get(SCRATCH_ENV) or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    remove_dead_scratch(base)
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=base))
    try:
        folders = {a: Path(s.root) if s.is_local else scratch / a for a, s in stores.items()}
        for area, keys in task.reads.items():
            fetch(stores[area], folders[area], keys, check=False)
        before = {a: snapshot(folders[a], p) for a, p in task.writes.items()}
        result = fn(folders)
        for area, prefixes in task.writes.items():
            publish(stores[area], folders[area], before[area], prefixes)
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_dead_scratch(base: Path) -> list[Path]:
    """Delete the scratch folders under `base` of processes that no longer run (a worker killed
    mid-task leaves its folder); returns them. Folders name their process: bbtr-stage-<pid>-…"""
    removed = []
    for folder in base.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def without_scratch(value: Any, folders: Mapping[str, Path], urls: Mapping[str, str]) -> Any:
    """`value` with any scratch folder path in its strings replaced by its store URL (a summary
    returned by a task names store objects, never the worker's scratch)."""
    if isinstance(value, str):
        for area, folder in folders.items():
            if value.startswith(f"{folder}/"):
                return f"{urls[area]}/{value[len(str(folder)) + 1 :]}"
        return value
    if isinstance(value, dict):
        return {k: without_scratch(v, folders, urls) for k, v in value.items()}
    if isinstance(value, list):
        return [without_scratch(v, folders, urls) for v in value]
    return value
