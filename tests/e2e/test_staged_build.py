"""A small year built with local folders and again with raw, warehouse and history in a store
(`file://`: a local folder read and written only through `Store`, so every step stages): the
report's tables, PDF and provenance come out byte-identical.

`build_year` and `assert_same_report` are shared with the real-server variant (S3 + Dask +
PostgreSQL). One small 2019 build takes about 25 s locally and 35-60 s staged on two cores (this
test, with the staged rebuild: about 50 s).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from pipeline.storage.store import TMP_PREFIX, Store

pytestmark = pytest.mark.slow  # two small builds of one year (about 1.5 min)

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


def test_staged_build_is_byte_identical(tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    local = build_year(tmp_path / "local")
    staged = build_year(tmp_path / "staged", {"BBTR_STORE_URL": store_url})
    assert_same_report(local, staged)

    store = Store.from_url(store_url)
    keys = store.list()
    for expected in (
        "raw/exporters.yaml",
        f"warehouse/provenance/year={YEAR}.json",
        f"warehouse/ingest_report/date={YEAR}-06-03/exporter=bras01.json",
        f"warehouse/attributed/date={YEAR}-06-03/exporter=bras01/flows.parquet",
        f"warehouse/figures/year={YEAR}/fig01.svg",
        f"history/data_quality/year={YEAR}.parquet",
    ):
        assert expected in keys, f"{expected} not in the store"
    assert not [k for k in keys if TMP_PREFIX in k or k.endswith((".duckdb", ".wal", ".lock"))]
    # Ingest and attribution ran in scratch folders: the host never held what only they read
    # or wrote (quarantine partitions), and published the same warehouse objects the local
    # build wrote.
    host = tmp_path / "staged" / "data" / "warehouse"
    assert not (host / "quarantine" / f"date={YEAR}-06-03").exists()
    local_wh = tmp_path / "local" / "data" / "warehouse"
    for kind in ("flows", "attributed", "ingest_report", "quarantine"):
        names = sorted(p.relative_to(local_wh).as_posix() for p in (local_wh / kind).rglob("*")
                       if p.is_file())  # fmt: skip
        assert names and names == [k.removeprefix("warehouse/") for k in keys
                                   if k.startswith(f"warehouse/{kind}/")]  # fmt: skip
        for name in names:
            assert store.read_bytes(f"warehouse/{name}") == (local_wh / name).read_bytes(), name

    # A second staged build finds everything current: nothing is re-published, same report;
    # a raw object lost from the store is written again by the simulated ISP's collectors.
    lost = f"ipfix/bras01/{YEAR}-06-03/0100.ipfix"
    assert f"raw/{lost}" in keys
    before = {k: store.fs.get_file_info(f"{store.root}/{k}").mtime_ns for k in keys}
    store.child("raw").delete(lost)
    again = build_year(tmp_path / "staged", {"BBTR_STORE_URL": store_url})
    assert_same_report(local, again)
    assert store.list() == keys
    after = {k: store.fs.get_file_info(f"{store.root}/{k}").mtime_ns for k in keys}
    assert [k for k in keys if after[k] != before[k]] == [f"raw/{lost}"]
