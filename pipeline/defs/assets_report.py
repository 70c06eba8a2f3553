"""Charts and report groups: SVG figures, then the PDF/HTML/CSV report of the year.

The figures and the report of year Y read the history of every year up to Y (all but the
current-year-only tables), so they depend on those years' partitions of each table: a time-window
mapping (`partitions.EARLIER_YEARS`), which orders a backfill and shows a missing year as such."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pipeline.charts.preview import figures_markdown
from pipeline.defs.assets_aggregate import TABLES
from pipeline.defs.assets_ingest import normalised_flows, raw_inputs
from pipeline.defs.outputs import versioned_result
from pipeline.defs.partitions import EARLIER_YEARS, report_year_partitions
from pipeline.defs.resources import PipelineSettings
from pipeline.report import year as report_year
from pipeline.report.preview import first_page_markdown

TABLE_DEPS = [
    AssetDep(AssetKey(name))
    if name in report_year.CURRENT_YEAR_ONLY
    else AssetDep(AssetKey(name), partition_mapping=EARLIER_YEARS)
    for name in TABLES
]


@asset(group_name="charts", partitions_def=report_year_partitions, deps=TABLE_DEPS)
def report_figures(context: AssetExecutionContext, settings: PipelineSettings) -> MaterializeResult:
    """Figures 1–11 as SVG from the history store (this year and the years before it)."""
    year, paths = int(context.partition_key), settings.paths()
    figures = report_year.build_figures(paths, year)
    metadata = {
        "figures": len(figures),
        "preview": MetadataValue.md(figures_markdown({p.stem: p for p in figures.values()})),
        "folder": MetadataValue.path(str(report_year.figures_dir(paths, year))),
    }
    return versioned_result("report_figures", paths, year, metadata)


@asset(
    group_name="report",
    partitions_def=report_year_partitions,
    deps=[report_figures, *TABLE_DEPS, raw_inputs, normalised_flows],  # provenance, ingest reports
)
def annual_report(context: AssetExecutionContext, settings: PipelineSettings) -> MaterializeResult:
    """The year's report folder, reports/YYYY/: report.pdf, report.html, one CSV per figure and
    table, and provenance.json (inputs, code, reference tables and output hashes)."""
    year, paths = int(context.partition_key), settings.paths()
    out = report_year.build_annual_report(paths, year, settings.source)
    metadata = {
        "pdf": MetadataValue.path(str(out["pdf"])),
        "first_page": MetadataValue.md(first_page_markdown(out["pdf"])),
        "pdf_sha256": out["pdf_sha256"],
        "pages": out["pages"],
        "csv_files": out["csv_files"],
        "reference_tables": out["reference_tables"],
    }
    if out["superseded"]:  # the report it replaced was built from other inputs: kept, with REASON
        metadata["superseded"] = MetadataValue.path(str(out["superseded"]))
    return versioned_result("annual_report", paths, year, metadata)
