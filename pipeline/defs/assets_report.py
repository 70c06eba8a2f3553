"""Charts and report groups: SVG figures, then the PDF/HTML/CSV report of the year."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipeline.defs.assets_aggregate import TABLES
from pipeline.defs.partitions import report_year_partitions
from pipeline.defs.resources import PipelineSettings
from pipeline.report import year as report_year


@asset(
    group_name="charts",
    partitions_def=report_year_partitions,
    deps=[AssetKey(name) for name in TABLES],
)
def report_figures(context: AssetExecutionContext, settings: PipelineSettings) -> MaterializeResult:
    """Figures 1–11 as SVG from the history store (this year and the years before it)."""
    figures = report_year.build_figures(settings.paths(), int(context.partition_key))
    return MaterializeResult(
        metadata={
            "figures": len(figures),
            "files": MetadataValue.json(sorted(p.name for p in figures.values())),
        }
    )


@asset(group_name="report", partitions_def=report_year_partitions, deps=[report_figures])
def annual_report(context: AssetExecutionContext, settings: PipelineSettings) -> MaterializeResult:
    """reports/<year>/: report.pdf, report.html, one CSV per figure and table, provenance.json."""
    out = report_year.build_annual_report(
        settings.paths(), int(context.partition_key), settings.source
    )
    return MaterializeResult(
        metadata={
            "pdf": MetadataValue.path(str(out["pdf"])),
            "pdf_sha256": out["pdf_sha256"],
            "pages": out["pages"],
            "csv_files": out["csv_files"],
        }
    )
