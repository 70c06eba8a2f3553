"""Staging (pipeline/storage/stage.py) with `file://` stores in temporary folders: a task sees
exactly the keys it names, what it writes is published, its scratch is deleted, and the same
task gives the same bytes again."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from pipeline.config import Paths
from pipeline.storage.stage import (
    SCRATCH_ENV,
    StagedTask,
    StageError,
    fetch,
    is_current,
    mirror,
    publish_files,
    run_staged,
    snapshot,
    without_scratch,
    working_copy,
)
from pipeline.storage.store import Store


def _paths(tmp_path: Path, remote: bool = True) -> Paths:
    env = {"BBTR_DATA_DIR": str(tmp_path / "host")}
    if remote:
        env["BBTR_STORE_URL"] = f"file://{tmp_path / 'store'}"
    return Paths.from_env(env)


def _store(paths: Paths, area: str) -> Store:
    return Store.from_url(paths.store_url(area))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _double(folders: dict[str, Path]) -> dict:
    """A stand-in stage function: reads raw/a.txt, writes warehouse/out/a.txt (and a DuckDB
    scratch file and a dot temp file, never published)."""
    text = (folders["raw"] / "in" / "a.txt").read_text()
    out = folders["warehouse"] / "out" / "a.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text * 2)
    (folders["warehouse"] / "out" / "scratch.duckdb").write_bytes(b"db")
    (folders["warehouse"] / "out" / ".a.txt.tmp").write_bytes(b"tmp")
    return {"output": str(out), "seen": sorted(_files(folders["raw"]))}


def _task(paths: Paths) -> StagedTask:
    return StagedTask.of(paths, reads={"raw": ["in/a.txt"]}, writes={"warehouse": ["out"]})


@pytest.fixture
def staged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    paths = _paths(tmp_path)
    raw = _store(paths, "raw")
    raw.put_bytes("in/a.txt", b"ab")
    raw.put_bytes("in/other.txt", b"not fetched")
    monkeypatch.setenv(SCRATCH_ENV, str(tmp_path / "scratch"))
    return paths


def test_task_fetches_its_keys_publishes_what_it_wrote_and_deletes_its_scratch(
    staged: Paths, tmp_path: Path
) -> None:
    task = _task(staged)
    result = run_staged(task, _double)
    assert result["seen"] == ["in/a.txt"]  # only the named key, no listing
    warehouse = _store(staged, "warehouse")
    assert warehouse.list() == ["out/a.txt"]  # no DuckDB file, no temp file
    assert warehouse.read_bytes("out/a.txt") == b"abab"
    assert list((tmp_path / "scratch").iterdir()) == []
    assert not staged.warehouse.exists() and not staged.raw.exists()  # the host copy untouched
    summary = without_scratch(result, {"warehouse": Path(result["output"]).parents[1]}, task.urls)
    assert summary["output"] == f"{task.urls['warehouse']}/out/a.txt"


def test_rerun_gives_the_same_bytes(staged: Paths, tmp_path: Path) -> None:
    run_staged(_task(staged), _double)
    first = _files(tmp_path / "store")
    run_staged(_task(staged), _double)
    assert _files(tmp_path / "store") == first


def test_failed_task_publishes_nothing_and_deletes_its_scratch(
    staged: Paths, tmp_path: Path
) -> None:
    def fail(folders: dict[str, Path]) -> None:
        (folders["warehouse"] / "out").mkdir(parents=True)
        (folders["warehouse"] / "out" / "half.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_staged(_task(staged), fail)
    assert _store(staged, "warehouse").list() == []
    assert list((tmp_path / "scratch").iterdir()) == []


def test_missing_key_names_the_store_and_key(staged: Paths) -> None:
    task = dataclasses.replace(_task(staged), reads={"raw": ("in/absent.txt",)})
    with pytest.raises(StageError, match=r"file://.*/store/raw/in/absent\.txt: no such object"):
        run_staged(task, _double)


def test_local_stores_run_in_place(tmp_path: Path) -> None:
    paths = _paths(tmp_path, remote=False)
    (paths.raw / "in").mkdir(parents=True)
    (paths.raw / "in" / "a.txt").write_text("xy")
    result = run_staged(_task(paths), _double)
    assert result["output"] == str(paths.warehouse / "out" / "a.txt")
    assert (paths.warehouse / "out" / "a.txt").read_text() == "xyxy"
    assert not (tmp_path / "store").exists()
    with working_copy(paths, reads={"raw": ["in/a.txt"]}, writes={"warehouse": ["out"]}):
        pass  # nothing to fetch or publish


def test_working_copy_fetches_once_publishes_changes_and_drops_what_the_store_lacks(
    staged: Paths,
) -> None:
    raw, warehouse = _store(staged, "raw"), _store(staged, "warehouse")
    stale = staged.raw / "in" / "gone.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("a local copy of an object the store no longer has")
    reads = {"raw": ["in/a.txt", "in/gone.txt"]}
    with working_copy(staged, reads=reads, writes={"warehouse": ["out"]}):
        assert (staged.raw / "in" / "a.txt").read_bytes() == b"ab"
        assert not stale.exists()
        _double({"raw": staged.raw, "warehouse": staged.warehouse})
    assert warehouse.list() == ["out/a.txt"]
    local_inode = (staged.raw / "in" / "a.txt").stat().st_ino
    published = warehouse.fs.get_file_info(f"{warehouse.root}/out/a.txt").mtime_ns
    with working_copy(staged, reads=reads, writes={"warehouse": ["out"]}):
        pass  # up to date: nothing fetched again (same local file), nothing written
    assert (staged.raw / "in" / "a.txt").stat().st_ino == local_inode
    assert warehouse.fs.get_file_info(f"{warehouse.root}/out/a.txt").mtime_ns == published
    raw.put_bytes("in/a.txt", b"changed")  # the store's object changed: fetched again
    with working_copy(staged, reads=reads):
        assert (staged.raw / "in" / "a.txt").read_bytes() == b"changed"
    # A step that writes nothing publishes nothing; one that changes a file publishes it.
    with working_copy(staged, writes={"warehouse": ["out"]}):
        (staged.warehouse / "out" / "a.txt").write_text("new")
    assert warehouse.read_bytes("out/a.txt") == b"new"


def test_fetch_required_key_absent(staged: Paths) -> None:
    with pytest.raises(StageError, match="raw/nope: no such object"):
        fetch(_store(staged, "raw"), staged.raw, ["nope"])


def test_publish_files_sends_missing_or_resized_only(staged: Paths) -> None:
    raw = _store(staged, "raw")
    (staged.raw / "in").mkdir(parents=True)
    (staged.raw / "in" / "a.txt").write_bytes(b"ab")  # same size as the store's
    (staged.raw / "in" / "b.txt").write_bytes(b"new")
    assert publish_files(raw, staged.raw, ["in/a.txt", "in/b.txt"]) == ["in/b.txt"]
    assert publish_files(raw, staged.raw, ["in/a.txt", "in/b.txt"]) == []


def test_mirror_holds_exactly_the_stores_objects(staged: Paths) -> None:
    extra = staged.raw / "in" / "extra.txt"
    extra.parent.mkdir(parents=True)
    extra.write_text("not in the store")
    keys = mirror(_store(staged, "raw"), staged.raw, "in")
    assert keys == ["in/a.txt", "in/other.txt"]
    assert sorted(snapshot(staged.raw, ["in"])) == keys


def test_a_failed_host_step_publishes_nothing(staged: Paths) -> None:
    with (
        pytest.raises(RuntimeError, match="half done"),
        working_copy(staged, writes={"warehouse": ["out"]}),
    ):
        (staged.warehouse / "out").mkdir(parents=True)
        (staged.warehouse / "out" / "a.txt").write_text("half")
        raise RuntimeError("half done")
    assert _store(staged, "warehouse").list() == []


def test_a_published_file_is_a_current_working_copy(staged: Paths) -> None:
    with working_copy(staged, writes={"warehouse": ["out"]}):
        (staged.warehouse / "out").mkdir(parents=True)
        (staged.warehouse / "out" / "a.txt").write_text("abc")
    info = _store(staged, "warehouse").infos("out")["out/a.txt"]
    assert is_current(staged.warehouse, "out/a.txt", info)
    (staged.warehouse / "out" / "a.txt").write_text("abd")  # same size, but not the object
    assert not is_current(staged.warehouse, "out/a.txt", info)


def test_scratch_of_a_killed_worker_is_removed_by_the_next_task(
    staged: Paths, tmp_path: Path
) -> None:
    import subprocess
    import sys

    scratch = tmp_path / "scratch"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (scratch / f"bbtr-stage-{dead}-abc" / "raw").mkdir(parents=True)
    (scratch / f"bbtr-stage-{os.getpid()}-live").mkdir()  # a task of a running process
    (scratch / "other-program").mkdir()
    run_staged(_task(staged), _double)
    assert sorted(p.name for p in scratch.iterdir()) == [
        f"bbtr-stage-{os.getpid()}-live",
        "other-program",
    ]
