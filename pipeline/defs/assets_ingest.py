"""Ingest group: raw inputs (simulated or an ISP's own) → normalised Parquet in the warehouse."""

import os

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pipeline.defs.outputs import INTACT_KEY, intact_token, versioned_result
from pipeline.defs.partitions import report_year_partitions
from pipeline.defs.resources import PipelineSettings
from pipeline.defs.simulator import simulate_report_year
from pipeline.ingest import year as ingest_year

GROUP = "ingest"


def force_rebuild() -> bool:
    """BBTR_FORCE_REBUILD=1: the simulator writes every file even when its cache key matches."""
    return os.environ.get("BBTR_FORCE_REBUILD") == "1"


def as_metadata(summary: dict) -> dict:
    """Counts as they are; dicts and lists as JSON metadata."""
    return {
        k: MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in summary.items()
    }


@asset(group_name=GROUP, partitions_def=report_year_partitions)
def raw_inputs(context: AssetExecutionContext, settings: PipelineSettings) -> MaterializeResult:
    """The report year's raw files: written by the simulated ISP, or an ISP's own, catalogued."""
    year, paths = int(context.partition_key), settings.paths()
    simulator, reused = None, {}
    if settings.source == "simulator":
        simulator = {"scale": settings.scale, "seed": settings.seed,
                     "flow_format": settings.flow_format}  # fmt: skip
        sim = simulate_report_year(year, paths, settings.settings(), reuse=not force_rebuild())
        reused = {"simulator_reused": sim["reused"]}
    elif settings.source != "files":
        raise ValueError(f"unknown raw input source {settings.source!r} (simulator or files)")
    summary = ingest_year.catalogue_raw_inputs(
        paths, year, settings.source, simulator, settings.workers, settings.dask_scheduler or None
    )
    return MaterializeResult(
        data_version=DataVersion(summary["inputs_sha256"]),
        metadata={
            "source": settings.source,
            "flow_format": settings.flow_format if settings.source == "simulator" else "registry",
            "files": summary["files"],
            "bytes": summary["bytes"],
            "inputs_sha256": summary["inputs_sha256"],
            INTACT_KEY: intact_token("raw_inputs", paths, year),
        }
        | reused,
    )


@asset(
    group_name=GROUP,
    partitions_def=report_year_partitions,
    deps=[raw_inputs],
    check_specs=[
        AssetCheckSpec(
            "records_conserved",
            asset="normalised_flows",
            blocking=True,
            description="records in = decoded + quarantined, per exporter-day",
        )
    ],
)
def normalised_flows(
    context: AssetExecutionContext, settings: PipelineSettings
) -> MaterializeResult:
    """Flow records of every source in exporters.yaml (IPFIX, NetFlow v9/v5 captures, nfcapd,
    nfdump csv/json) decoded to Parquet by local day and exporter, what cannot be read set aside
    in quarantine; stops when an exporter-day sets aside more than
    `quality.max_quarantined_share_pct` of its records."""
    summary = ingest_year.ingest_flows(
        settings.paths(),
        int(context.partition_key),
        settings.workers,
        scheduler=settings.dask_scheduler or None,
    )
    conserved = summary["records_in"] == summary["records_decoded"] + summary["records_quarantined"]
    return versioned_result(
        "normalised_flows",
        settings.paths(),
        int(context.partition_key),
        {
            "dagster/row_count": summary["records_decoded"],
            "partitions": summary["partitions"],
            "records_in": summary["records_in"],
            "records_decoded": summary["records_decoded"],
            "records_quarantined": summary["records_quarantined"],
            "duplicate_files": summary["duplicate_files"],
            "quarantine_by_reason": MetadataValue.json(summary["quarantine_by_reason"]),
            "sampling_intervals": MetadataValue.json(summary["sampling_intervals"]),
            "decode_seconds": summary["seconds"],
        },
        check_results=[
            AssetCheckResult(
                check_name="records_conserved",
                passed=bool(conserved and summary["unbalanced"] == []),
                metadata={"unbalanced_partitions": MetadataValue.json(summary["unbalanced"])},
            )
        ],
    )


@asset(group_name=GROUP, partitions_def=report_year_partitions, deps=[raw_inputs])
def subscriber_sessions(
    context: AssetExecutionContext, settings: PipelineSettings
) -> MaterializeResult:
    """PPPoE sessions from RADIUS accounting and IPv6 IPoE prefix leases, as half-open intervals."""
    summary = ingest_year.ingest_subscriber_sessions(settings.paths(), int(context.partition_key))
    year, paths = int(context.partition_key), settings.paths()
    return versioned_result("subscriber_sessions", paths, year, as_metadata(summary))


@asset(group_name=GROUP, partitions_def=report_year_partitions, deps=[raw_inputs])
def mobile_usage(context: AssetExecutionContext, settings: PipelineSettings) -> MaterializeResult:
    """Per phone number and day usage from the access-gateway billing records."""
    summary = ingest_year.ingest_mobile_usage(settings.paths(), int(context.partition_key))
    year, paths = int(context.partition_key), settings.paths()
    rows = {"dagster/row_count": summary["rows"]}
    return versioned_result("mobile_usage", paths, year, rows | as_metadata(summary))


@asset(group_name=GROUP, partitions_def=report_year_partitions, deps=[raw_inputs])
def monthly_counters(
    context: AssetExecutionContext, settings: PipelineSettings
) -> MaterializeResult:
    """Monthly interface-counter totals per service and direction."""
    summary = ingest_year.ingest_counters(settings.paths(), int(context.partition_key))
    year, paths = int(context.partition_key), settings.paths()
    rows = {"dagster/row_count": summary["rows"]}
    return versioned_result("monthly_counters", paths, year, rows | as_metadata(summary))
