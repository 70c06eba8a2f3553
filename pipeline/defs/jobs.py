"""The job that rebuilds one report year, and the sensor that runs it when the collector closes a
file (new flow data for a year re-aggregates and re-renders that year)."""

from dagster import AssetSelection, define_asset_job

from pipeline.defs.partitions import report_year_partitions
from pipeline.defs.sensors import build_collector_sensor

annual_report_job = define_asset_job(
    "annual_report_job",
    selection=AssetSelection.all(),
    partitions_def=report_year_partitions,
    description="Every asset of one report year: raw inputs to the PDF.",
)

collector_files_sensor = build_collector_sensor(annual_report_job)
