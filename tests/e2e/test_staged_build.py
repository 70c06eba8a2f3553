"""A small year built with local folders and again with raw, warehouse and history in a store
(`file://`: a local folder read and written only through `Store`, so every step stages): the
report's tables, PDF and provenance come out byte-identical.

The local build (`local_report`, tests/e2e/conftest.py) is shared with the real-server variant
(tests/e2e/test_cluster_build.py). One small 2019 build takes about 25 s locally and 35-60 s
staged on two cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.storage.store import TMP_PREFIX, Store
from tests.support.builds import YEAR, assert_same_report, build_year

pytestmark = pytest.mark.slow  # a staged build and a staged rebuild of one small year (~1 min)


def test_staged_build_is_byte_identical(tmp_path: Path, local_report: Path) -> None:
    store_url = f"file://{tmp_path / 'store'}"
    local = local_report
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
    local_wh = local.parent.parent / "data" / "warehouse"
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
