"""Small one-year builds for the end-to-end tests of stores and the cluster: `build_year` builds in
this process under a root folder with extra environment; `assert_same_report` compares two report
folders byte for byte."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

YEAR = 2019
ENV_PREFIXES = ("BBTR_", "DAGSTER_HOME", "SOURCE_DATE_EPOCH")
BASE_ENV = {
    "BBTR_SCALE": "small",
    "BBTR_SOURCE": "simulator",
    "SOURCE_DATE_EPOCH": "1717372800",
    "BBTR_CODE_VERSION": "staged-build-test",  # the report prints it: same in both builds
}


def build_year(root: Path, env: Mapping[str, str] | None = None, year: int = YEAR) -> Path:
    """Build `year` at small scale in this process with its data under `root` and `env` (e.g. a
    store URL) on top of BASE_ENV; every other BBTR_* variable is unset meanwhile. Returns the
    report folder."""
    from pipeline.build import build

    root.mkdir(parents=True, exist_ok=True)
    (root / "dagster_home").mkdir(exist_ok=True)
    wanted = BASE_ENV | {
        "BBTR_DATA_DIR": str(root / "data"),
        "BBTR_REPORTS_DIR": str(root / "reports"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    } | dict(env or {})  # fmt: skip
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    for k in saved:
        del os.environ[k]
    os.environ.update(wanted)
    try:
        assert build(year, year), f"the small build of {year} under {root} failed"
    finally:
        for k in wanted:
            os.environ.pop(k, None)
        os.environ.update(saved)
    return root / "reports" / str(year)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same_report(a: Path, b: Path) -> None:
    """Two report folders hold the same files, byte for byte (tables, figures, PDF, provenance)."""
    files_a, files_b = _files(a), _files(b)
    assert sorted(files_a) == sorted(files_b)
    assert any(name.endswith(".csv") for name in files_a) and "report.pdf" in files_a
    differ = [name for name in files_a if files_a[name] != files_b[name]]
    assert differ == [], f"differ between {a} and {b}: {differ}"
