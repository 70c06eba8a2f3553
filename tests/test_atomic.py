"""Crash debris: what a killed run leaves is cleaned at the next start (ours only), and a report
folder is replaced whole (hand-made kills: SIGKILL inside a write, a failure mid-report)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import atomic
from pipeline.atomic import remove_debris, replace_dir, staging_dir, write_bytes_atomic
from pipeline.config import Paths
from pipeline.report import year as report_year


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


OLD = {"report.pdf": b"old pdf", "report.html": b"old html", "data/fig01.csv": b"old",
       "figures/old_only.svg": b"<svg/>"}  # fmt: skip
NEW = {"report.pdf": b"new pdf", "report.html": b"new html", "data/fig01.csv": b"new"}


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_dir_swaps_the_whole_folder(tmp_path: Path, exchange: bool) -> None:
    target = _write(tmp_path / "2024", OLD)
    staging = _write(staging_dir(target), NEW)
    assert staging.name == ".2024.build.tmp"
    replace_dir(staging, target, exchange=exchange)
    assert _tree(target) == NEW, "a file of the previous run survived beside the new report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024"]


def test_rename_exchange_is_available_here(tmp_path: Path) -> None:
    """On Linux the swap is one renameat2(RENAME_EXCHANGE) call (no instant without a folder)."""
    a, b = _write(tmp_path / "a", {"x": b"a"}), _write(tmp_path / "b", {"x": b"b"})
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux only: replace_dir uses its fallback")
    assert atomic._rename_exchange(a, b)
    assert (a / "x").read_bytes() == b"b" and (b / "x").read_bytes() == b"a"


def test_replace_dir_into_nothing(tmp_path: Path) -> None:
    staging = _write(staging_dir(tmp_path / "2024"), NEW)
    replace_dir(staging, tmp_path / "2024")
    assert _tree(tmp_path / "2024") == NEW


def test_fallback_killed_between_renames_leaves_no_mix(tmp_path, monkeypatch) -> None:
    """Fallback killed after moving the old folder aside: reports/2024 is absent (not mixed), the
    old folder is debris, and the next start removes it."""
    target = _write(tmp_path / "2024", OLD)
    staging = _write(staging_dir(target), NEW)
    real_rename, calls = os.rename, []

    def dying_rename(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real_rename(a, b)

    monkeypatch.setattr(atomic.os, "rename", dying_rename)
    with pytest.raises(KeyboardInterrupt):
        replace_dir(staging, target, exchange=False)
    monkeypatch.undo()
    assert not target.exists()
    removed = remove_debris([tmp_path])
    assert {p.name for p in removed} == {".2024.old.tmp", ".2024.build.tmp"}
    assert list(tmp_path.iterdir()) == []


def test_remove_debris_removes_ours_only(tmp_path: Path) -> None:
    ours = [
        "warehouse/flows/date=2024-06-03/.part.parquet.k2j3h_g5.bbtr.tmp",
        "reports/2024/.report.pdf.abcdefgh.bbtr.tmp",
        "history/.weekday_hourly_profile.parquet.a1b2c3d4.tmp",  # before the .bbtr suffix
    ]
    theirs = [
        "raw/pcap/2024-06-03/.collector-20240603T000000-1.pcap.tmp",  # a live collector's
        "raw/notes.tmp",
        "reports/2024/.hidden",
        "reports/2024/report.pdf",
        "warehouse/scratch.duckdb.tmp/x",
        "reports/.2024.tmp/keep",
    ]
    for name in ours + theirs:
        _write(tmp_path, {name: b"x"})
    _write(
        tmp_path, {"reports/.2024.build.tmp/report.pdf": b"half", "reports/.2024.old.tmp/a": b""}
    )
    removed = remove_debris([tmp_path / d for d in ("warehouse", "reports", "history", "raw")])
    assert len(removed) == len(ours) + 2
    left = set(_tree(tmp_path))
    assert left == set(theirs)


def test_sigkill_inside_a_write_leaves_debris_that_the_next_start_removes(tmp_path: Path) -> None:
    target = tmp_path / "out" / "table.csv"
    write_bytes_atomic(target, b"complete\n")
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from pipeline.atomic import write_atomic\n"
        "def half(tmp):\n"
        "    Path(tmp).write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"write_atomic(Path({str(target)!r}), half)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"complete\n"
    debris = [p for p in target.parent.iterdir() if p != target]
    assert len(debris) == 1 and debris[0].name.startswith(".table.csv.")
    assert remove_debris([tmp_path]) == debris
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def _paths(root: Path) -> Paths:
    return Paths(root, root / "raw", root / "truth", root / "wh", root / "hist", root / "reports")


def _fake_report_steps(monkeypatch, fail_after: str | None) -> None:
    """build_annual_report with its inputs stubbed: build_report writes NEW (failing after the
    file `fail_after` when set, as a kill during the report step would)."""

    def fake_build_report(year, tables, figures, context, out_dir):
        written = {}
        for name, data in NEW.items():
            written[name] = write_bytes_atomic(Path(out_dir) / name, data)
            if name == fail_after:
                raise KeyboardInterrupt("killed during the report step")
        return {"pdf": written["report.pdf"], "html": written["report.html"]}

    monkeypatch.setattr(report_year, "collect_tables", lambda paths, year: {})
    monkeypatch.setattr(
        report_year, "build_context", lambda *a: {"provenance": {"code": "x"}, "params": {}}
    )
    monkeypatch.setattr(report_year, "build_report", fake_build_report)
    monkeypatch.setattr(report_year, "_pdf_pages", lambda pdf: 1)


def test_report_step_failing_midway_keeps_the_previous_report(tmp_path, monkeypatch) -> None:
    paths = _paths(tmp_path)
    _write(paths.reports / "2024", OLD)
    _fake_report_steps(monkeypatch, fail_after="report.html")
    with pytest.raises(KeyboardInterrupt):
        report_year.build_annual_report(paths, 2024, "simulator")
    assert _tree(paths.reports / "2024") == OLD, "new files were mixed into the previous report"


def test_report_is_swapped_in_whole_with_hashes_of_its_files(tmp_path, monkeypatch) -> None:
    paths = _paths(tmp_path)
    _write(paths.reports / "2024", OLD)
    _fake_report_steps(monkeypatch, fail_after=None)
    out = report_year.build_annual_report(paths, 2024, "simulator")
    folder = paths.reports / "2024"
    assert out["pdf"] == folder / "report.pdf"
    tree = _tree(folder)
    provenance = json.loads(tree.pop("provenance.json"))
    assert tree == NEW
    assert provenance["outputs_sha256"] == {
        name: hashlib.sha256(data).hexdigest() for name, data in NEW.items()
    }
    assert sorted(p.name for p in paths.reports.iterdir()) == ["2024"]
