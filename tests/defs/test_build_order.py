"""The headless build runs a stale asset together with everything downstream of it."""

from __future__ import annotations

from dagster import AssetKey, asset

from pipeline.build import descendants
from pipeline.definitions import defs


@asset
def source() -> int:
    return 1


@asset
def middle(source: int) -> int:
    return source + 1


@asset
def leaf(middle: int) -> int:
    return middle + 1


@asset
def apart() -> int:
    return 0


def test_descendants_of_a_small_graph() -> None:
    graph = [source, middle, leaf, apart]
    assert descendants(graph, {AssetKey("source")}) == {AssetKey("middle"), AssetKey("leaf")}
    assert descendants(graph, {AssetKey("middle")}) == {AssetKey("leaf")}
    assert descendants(graph, {AssetKey("leaf"), AssetKey("apart")}) == set()


def test_a_new_simulation_reaches_every_table_and_the_report() -> None:
    """The regression behind this rule: raw inputs re-simulated after the tables had run on the
    old ones left the history stale. Everything that reads the year's data lies downstream."""
    assets = list(defs().assets or [])
    below = {k.to_user_string() for k in descendants(assets, {AssetKey("raw_inputs")})}
    for name in ("user_week_usage", "daily_usage_summary", "daily_usage_density", "annual_report"):
        assert name in below
