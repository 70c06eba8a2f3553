"""The job that rebuilds one report year, and what runs it: the annual schedule (the year just
completed), the sensor of a newest report's changed raw inputs, and the collector sensor (a year
whose flow data the live collector adds)."""

from dagster import AssetSelection, define_asset_job

from pipeline.defs.schedules import build_annual_schedule
from pipeline.defs.sensors import build_collector_sensor, build_inputs_sensor

annual_report_job = define_asset_job(
    "annual_report_job",
    selection=AssetSelection.all(),
    description="Every asset of one report year: raw inputs to the PDF.",
)

annual_report_schedule = build_annual_schedule(annual_report_job)
report_inputs_sensor = build_inputs_sensor(annual_report_job)
collector_files_sensor = build_collector_sensor(annual_report_job)
