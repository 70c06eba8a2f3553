"""Attribute group: flows → subscriber, access protocol and direction; unattributed kept."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pipeline.attribute import year as attribute_year
from pipeline.defs.assets_ingest import normalised_flows, subscriber_sessions
from pipeline.defs.outputs import versioned_result
from pipeline.defs.partitions import report_year_partitions
from pipeline.defs.resources import PipelineSettings

UNATTRIBUTED_WARN_PCT = 5.0


@asset(
    group_name="attribute",
    partitions_def=report_year_partitions,
    deps=[normalised_flows, subscriber_sessions],
    check_specs=[
        AssetCheckSpec(
            "flows_conserved",
            asset="attributed_flows",
            blocking=True,
            description="every normalised flow appears once in the attributed table",
        ),
        AssetCheckSpec(
            "unattributed_share_small",
            asset="attributed_flows",
            description=f"unattributed broadband bytes below {UNATTRIBUTED_WARN_PCT} %",
        ),
    ],
)
def attributed_flows(
    context: AssetExecutionContext, settings: PipelineSettings
) -> MaterializeResult:
    """Each flow with its user key (salted hash), access protocol, class and IN/OUT direction."""
    s = attribute_year.attribute_flows(
        settings.paths(),
        int(context.partition_key),
        settings.user_key_salt,
        settings.workers,
        scheduler=settings.dask_scheduler or None,
    )
    share = s["unattributed_bytes_pct"]
    return versioned_result(
        "attributed_flows",
        settings.paths(),
        int(context.partition_key),
        {
            "dagster/row_count": s["flows_out"],
            "flows_in": s["flows_in"],
            "flows_out": s["flows_out"],
            "attributed": s["attributed"],
            "unattributed_bytes_pct": MetadataValue.json(share),
            "seconds": s["seconds"],
        },
        check_results=[
            AssetCheckResult(
                check_name="flows_conserved",
                passed=s["flows_in"] == s["flows_out"],
                metadata={"flows_in": s["flows_in"], "flows_out": s["flows_out"]},
            ),
            AssetCheckResult(
                check_name="unattributed_share_small",
                passed=all(v < UNATTRIBUTED_WARN_PCT for v in share.values()),
                severity=AssetCheckSeverity.WARN,
                metadata={"unattributed_bytes_pct": MetadataValue.json(share)},
            ),
        ],
    )
