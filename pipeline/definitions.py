"""Dagster entry point: definitions live in pipeline/defs/ (loaded by `dg` and workspace.yaml);
pipeline/defs/catalog.py adds what the UI shows of each asset (kinds, owners, schemas, code)."""

from pathlib import Path

from dagster import Definitions, definitions, load_from_defs_folder

from pipeline.defs.catalog import describe_assets


@definitions
def defs() -> Definitions:
    return describe_assets(
        load_from_defs_folder(path_within_project=Path(__file__).parent / "defs")
    )
