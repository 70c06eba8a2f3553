"""What the UI shows of each asset: kinds, owner, stage tags, description, code references,
check descriptions, and the column schema of every history table (from the column registry)."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey

from pipeline.aggregate import columns
from pipeline.definitions import defs

GROUPS = {"ingest", "attribute", "aggregate", "charts", "report"}


def _graph():
    return defs().resolve_asset_graph()


def test_every_asset_has_kinds_owner_tags_and_a_description() -> None:
    graph = _graph()
    for key in graph.get_all_asset_keys():
        node, name = graph.get(key), key.path[-1]
        assert node.kinds, f"{name}: no kinds"
        assert len(node.owners) == 1 and node.owners[0].startswith("team:"), name
        assert node.tags.get("stage") == node.group_name and node.group_name in GROUPS, name
        assert node.tags.get("data") in {"subscriber-level", "aggregate"}, name
        text = node.description or ""
        assert len(text) > 30 and "//" not in text and "IPFIX files" not in text, name


def test_code_references_point_at_existing_files() -> None:
    graph = _graph()
    for key in graph.get_all_asset_keys():
        refs = graph.get(key).metadata["dagster/code_references"].code_references
        files = [Path(r.file_path) for r in refs]
        assert all(f.is_file() for f in files), key
        assert files[0].parent.name == "defs", f"{key}: the declaration comes first"
        assert len(files) >= 2, f"{key}: no reference to its stage function"


def test_every_check_has_a_description() -> None:
    graph = _graph()
    for check in graph.asset_check_keys:
        assert (graph.get_check_spec(check).description or "").strip(), check


def test_history_tables_carry_the_registry_column_schema() -> None:
    graph = _graph()
    for table in columns.tables():
        schema = graph.get(AssetKey(table)).metadata["dagster/column_schema"]
        got = [(c.name, c.type, c.description) for c in schema.columns]
        assert got == [tuple(c) for c in columns.columns(table)], table
    kinds = {k.path[-1]: graph.get(k).kinds for k in graph.get_all_asset_keys()}
    assert "pdf" in kinds["annual_report"] and "duckdb" in kinds["usage_by_port"]


def test_on_github_actions_code_references_link_to_the_commit(monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "isp/bbtr")
    monkeypatch.setenv("GITHUB_SHA", "0123abcd")
    node = _graph().get(AssetKey("usage_by_port"))
    urls = [r.url for r in node.metadata["dagster/code_references"].code_references]
    base = "https://github.com/isp/bbtr/tree/0123abcd/"
    assert urls[0].startswith(base + "pipeline/defs/assets_aggregate.py")
    assert base + "pipeline/aggregate/sql/usage_by_port.sql#L1" in urls
