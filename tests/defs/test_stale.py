"""Which assets a rebuild picks, on a small graph a → b → c with code and data versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DataVersion,
    MaterializeResult,
    StaticPartitionsDefinition,
    asset,
    materialize,
)

from pipeline.config import Paths
from pipeline.defs.outputs import INTACT_KEY
from pipeline.defs.stale import stale_assets

YEARS = StaticPartitionsDefinition(["2019", "2020"])
DATA = {"a": "a1", "b": "b1", "c": "c1"}  # the data version each asset reports when it runs
A, B, C = AssetKey("a"), AssetKey("b"), AssetKey("c")


def _result(name: str) -> MaterializeResult:
    # these assets write no files: the intactness token of "no files" is ""
    return MaterializeResult(data_version=DataVersion(DATA[name]), metadata={INTACT_KEY: ""})


def graph(b_version: str = "1") -> list:
    @asset(partitions_def=YEARS, code_version="1")
    def a() -> MaterializeResult:
        return _result("a")

    @asset(partitions_def=YEARS, code_version=b_version, deps=[a])
    def b() -> MaterializeResult:
        return _result("b")

    @asset(partitions_def=YEARS, code_version="1", deps=[b])
    def c() -> MaterializeResult:
        return _result("c")

    return [a, b, c]


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    root = tmp_path / "data"
    return Paths(root, root / "raw", root / "truth", root / "warehouse", root / "history",
                 tmp_path / "reports")  # fmt: skip


def _run(instance: DagsterInstance, assets: list, keys: list[AssetKey]) -> None:
    assert materialize(assets, selection=keys, instance=instance, partition_key="2019").success


def test_only_what_changed_is_picked(paths: Paths) -> None:
    instance = DagsterInstance.ephemeral()
    assets = graph()
    assert set(stale_assets(instance, assets, "2019", paths)) == {A, B, C}  # never materialised
    _run(instance, assets, [A, B, C])
    assert stale_assets(instance, assets, "2019", paths) == {}
    assert set(stale_assets(instance, assets, "2020", paths)) == {A, B, C}  # other partition

    # a new code version of b: b alone (c waits to see whether b's data changes)
    assets = graph(b_version="2")
    assert set(stale_assets(instance, assets, "2019", paths)) == {B}
    _run(instance, assets, [B])  # same data version as before
    assert stale_assets(instance, assets, "2019", paths) == {}, "c re-runs for unchanged data"

    # a's data changes: b is stale for its input; c not until b has run
    DATA["a"] = "a2"
    try:
        _run(instance, assets, [A])
        stale = stale_assets(instance, assets, "2019", paths)
        assert set(stale) == {B}
        assert "data version" in stale[B]
        DATA["b"] = "b2"
        _run(instance, assets, [B])
        assert set(stale_assets(instance, assets, "2019", paths)) == {C}
    finally:
        DATA.update(a="a1", b="b1")


def test_lost_files_and_observed_inputs_are_picked(paths: Paths, monkeypatch) -> None:
    from pipeline.defs import stale

    instance = DagsterInstance.ephemeral()
    assets = graph()
    _run(instance, assets, [A, B, C])
    assert set(stale_assets(instance, assets, "2019", paths, always=["a"])) == {A}
    # c's files are no longer what its materialisation recorded
    monkeypatch.setattr(stale, "intact_token", lambda name, p, y: "gone" if name == "c" else "")
    assert set(stale_assets(instance, assets, "2019", paths)) == {C}
