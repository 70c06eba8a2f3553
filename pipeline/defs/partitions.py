"""Report-year partitions: one per year that has raw data configured in params.yaml."""

from dagster import StaticPartitionsDefinition

from pipeline.config import report_years

report_year_partitions = StaticPartitionsDefinition([str(y) for y in report_years()])
