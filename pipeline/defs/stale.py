"""Which assets of a report year need a run: Dagster's staleness (missing, a new code version, an
upstream with a new data version) plus our check that a fresh asset's files are still there.

Dagster (1.13) records each materialisation's code version and the data versions of its upstream
partitions; `CachingStaleStatusResolver` compares them with the current definitions and the
latest upstream materialisations. An upstream that re-ran with the same data version does not
make its downstream stale.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetKey, AssetRecordsFilter, AssetsDefinition, DagsterInstance
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.definitions.temporal_context import TemporalContext
from dagster._time import get_current_datetime

from pipeline.config import Paths
from pipeline.defs.outputs import INTACT_KEY, intact_token


def _resolver(instance: DagsterInstance, graph: AssetGraph) -> CachingStaleStatusResolver:
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def recorded_intact_token(instance: DagsterInstance, key: AssetKey, partition: str) -> str | None:
    """The intactness token of the latest materialisation of `key` in `partition`, if any."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get(INTACT_KEY)
    return None if value is None else str(value.value)


def stale_assets(
    instance: DagsterInstance,
    assets: Sequence[AssetsDefinition],
    partition: str,
    paths: Paths,
    always: Sequence[str] = (),
) -> dict[AssetKey, str]:
    """Asset → why it must run, for every asset of `partition` that is missing, stale, has lost
    its files, or is named in `always` (raw inputs an ISP delivers: observed on every build)."""
    graph = AssetGraph.from_assets(list(assets))
    resolver = _resolver(instance, graph)
    reasons: dict[AssetKey, str] = {}
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        name = key.to_user_string()
        status = resolver.get_status(key, partition)
        if name in always:
            reasons[key] = "observed on every build"
        elif status == StaleStatus.MISSING:
            reasons[key] = "never materialised"
        elif status == StaleStatus.STALE:
            causes = resolver.get_stale_causes(key, partition)
            reasons[key] = "; ".join(sorted({_cause(c) for c in causes}))
        elif recorded_intact_token(instance, key, partition) != intact_token(
            name, paths, int(partition)
        ):
            reasons[key] = "its files changed or are missing"
    return reasons


def _cause(cause) -> str:
    dep = cause.dependency
    where = f" ({dep.asset_key.to_user_string()}[{dep.partition_key}])" if dep else ""
    return f"{cause.reason}{where}"
