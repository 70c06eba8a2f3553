"""What the UI tells a reader about each asset: kinds, owner and tags of its stage, the column
schema of a history table, and code references (the declaration, the stage function, its SQL).

One table for the whole graph, applied to the loaded definitions (pipeline/definitions.py), so
the asset modules stay thin and a graph-wide change is one diff here.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster import (
    AnchorBasedFilePathMapping,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    CodeReferencesMetadataValue,
    Definitions,
    LocalFileCodeReference,
    TableColumn,
    TableSchema,
    link_code_references_to_git,
    with_source_code_references,
)
from dagster._record import replace

from pipeline.aggregate import columns, metrics
from pipeline.attribute import year as attribute_year
from pipeline.charts import render as charts_render
from pipeline.config import REPO_ROOT
from pipeline.ingest import completeness
from pipeline.ingest import year as ingest_year
from pipeline.report import year as report_year

# stage (asset group) → (owner, tags). Owners are the roles that answer for a stage's output.
STAGES: dict[str, tuple[str, dict[str, str]]] = {
    "ingest": ("team:network-operations", {"stage": "ingest", "store": "warehouse"}),
    "attribute": ("team:network-operations", {"stage": "attribute", "store": "warehouse"}),
    "aggregate": ("team:traffic-analysis", {"stage": "aggregate", "store": "history"}),
    "charts": ("team:report-editors", {"stage": "charts", "store": "warehouse"}),
    "report": ("team:report-editors", {"stage": "report", "store": "reports"}),
}
# Assets holding subscriber-level rows (addresses, hashed user keys): never published as such.
SUBSCRIBER_LEVEL = {"raw_inputs", "normalised_flows", "subscriber_sessions", "mobile_usage",
                    "attributed_flows", "user_week_usage"}  # fmt: skip
_SQL_TABLE = {"duckdb", "sql", "parquet"}
KINDS: dict[str, set[str]] = {
    "raw_inputs": {"python", "file", "json"},
    "normalised_flows": {"python", "parquet"},
    "subscriber_sessions": {"polars", "parquet"},
    "mobile_usage": {"polars", "parquet"},
    "monthly_counters": {"polars", "parquet"},
    "attributed_flows": {"duckdb", "sql", "parquet"},
    "user_week_usage": _SQL_TABLE,
    "input_completeness": {"polars", "parquet"},
    "report_figures": {"altair", "svg"},
    "annual_report": {"pdf", "html", "csv"},
}
# asset → the plain function that does its work (its file and line become a code reference)
STAGE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "raw_inputs": ingest_year.catalogue_raw_inputs,
    "normalised_flows": ingest_year.ingest_flows,
    "subscriber_sessions": ingest_year.ingest_subscriber_sessions,
    "mobile_usage": ingest_year.ingest_mobile_usage,
    "monthly_counters": ingest_year.ingest_counters,
    "attributed_flows": attribute_year.attribute_flows,
    "user_week_usage": metrics.user_week_usage,
    "input_completeness": completeness.input_completeness,
    "report_figures": charts_render.build_charts,
    "annual_report": report_year.build_annual_report,
}
EXTRA_FILES = {"annual_report": ("assets/templates/report.html.j2", "report template")}
SQL_DIR = REPO_ROOT / "pipeline" / "aggregate" / "sql"


def kinds_of(asset: str) -> set[str]:
    return KINDS.get(asset, _SQL_TABLE)


def tags_of(asset: str, group: str) -> dict[str, str]:
    level = "subscriber-level" if asset in SUBSCRIBER_LEVEL else "aggregate"
    store = {"store": "warehouse"} if asset == "user_week_usage" else {}  # not in the history
    return STAGES[group][1] | store | {"data": level}


def column_schema(asset: str) -> TableSchema | None:
    """The stored columns of a table (pipeline/aggregate/columns.py), else None."""
    if asset not in columns.described_tables():
        return None
    return TableSchema(
        columns=[TableColumn(c.name, c.type, c.description) for c in columns.columns(asset)]
    )


def _function_reference(fn: Callable[..., Any], label: str) -> LocalFileCodeReference:
    fn = inspect.unwrap(fn)
    return LocalFileCodeReference(
        file_path=str(Path(inspect.getsourcefile(fn) or "").resolve()),
        line_number=inspect.getsourcelines(fn)[1],
        label=label,
    )


def stage_references(asset: str) -> list[LocalFileCodeReference]:
    """The stage function (or the metric behind an aggregate table), its SQL, extra files."""
    refs = []
    fn = STAGE_FUNCTIONS.get(asset) or getattr(metrics, asset, None)
    if fn is not None:
        refs.append(_function_reference(fn, f"{inspect.unwrap(fn).__name__}()"))
    sql = SQL_DIR / f"{asset}.sql"
    if sql.is_file():
        refs.append(LocalFileCodeReference(file_path=str(sql), line_number=1, label=sql.name))
    if asset in EXTRA_FILES:
        path, label = EXTRA_FILES[asset]
        refs.append(LocalFileCodeReference(file_path=str(REPO_ROOT / path), label=label))
    return refs


def _describe(spec: AssetSpec) -> AssetSpec:
    asset, group = spec.key.path[-1], spec.group_name or ""
    owner = STAGES[group][0]
    metadata: dict[str, Any] = dict(spec.metadata)
    code = metadata.get("dagster/code_references")
    metadata["dagster/code_references"] = CodeReferencesMetadataValue(
        code_references=[*(code.code_references if code else []), *stage_references(asset)]
    )
    schema = column_schema(asset)
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    return spec.replace_attributes(
        kinds=kinds_of(asset),
        owners=[owner],
        tags=dict(spec.tags) | tags_of(asset, group),
        metadata=metadata,
    )


def _git_links(assets: list) -> list:
    """On GitHub Actions (GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_SHA set), code references
    become links to the commit's files; elsewhere they stay local paths."""
    env = {k: os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA")}
    if not all(env.values()):
        return assets
    return list(
        link_code_references_to_git(
            assets,
            git_url=f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}",
            git_branch=str(env["GITHUB_SHA"]),
            file_path_mapping=AnchorBasedFilePathMapping(
                local_file_anchor=REPO_ROOT, file_anchor_path_in_repository=""
            ),
        )
    )


def describe_assets(defs: Definitions) -> Definitions:
    """`defs` with every asset described: code references first (the declaration), then kinds,
    owner, tags, column schema and the stage's own code references."""
    unique = list({id(a): a for a in defs.assets or []}.values())  # a module re-exports some
    with warnings.catch_warnings():  # code references are a beta API: no warning per load
        warnings.simplefilter("ignore", BetaWarning)
        assets = with_source_code_references(unique)
        described = [a.map_asset_specs(_describe) if isinstance(a, AssetsDefinition) else a
                     for a in assets]  # fmt: skip
        described = _git_links(described)
    return replace(defs, assets=described)
