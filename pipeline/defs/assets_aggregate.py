"""Aggregate group: one asset per metric table (one .sql each), stored in the history store."""

import functools
from collections.abc import Callable

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pipeline.aggregate import checks
from pipeline.aggregate import year as aggregate_year
from pipeline.config import load_params
from pipeline.defs.assets_attribute import attributed_flows
from pipeline.defs.assets_ingest import (
    mobile_usage,
    monthly_counters,
    normalised_flows,
    raw_inputs,
    subscriber_sessions,
)
from pipeline.defs.outputs import versioned_result
from pipeline.defs.partitions import report_year_partitions
from pipeline.defs.resources import PipelineSettings

BIN_WIDTH = load_params()["daily_usage"]["bin_width_decades"]
# Every table reads the year's inputs only once they are known complete enough: input_completeness
# raises, naming what is missing, below the thresholds of params.yaml `completeness`, and
# everything downstream of it is skipped.
COMPLETENESS = "input_completeness"

# check name → (function of the table, blocking?). Computation invariants block the report;
# empirical shape facts of real traffic (mean > mode, mode > median) only warn.
Check = tuple[str, Callable[[pl.DataFrame], checks.CheckOutcome], bool]


@asset(
    group_name="aggregate",
    partitions_def=report_year_partitions,
    deps=[attributed_flows, mobile_usage, COMPLETENESS],
)
def user_week_usage(
    context: AssetExecutionContext, settings: PipelineSettings
) -> MaterializeResult:
    """Per personal user: daily IN/OUT bytes in the analysis week (hashed keys, warehouse only)."""
    year, paths = int(context.partition_key), settings.paths()
    df = aggregate_year.compute_user_week(paths, year, settings.user_key_salt)
    counts = df.group_by("service").len().sort("service")
    users = {"dagster/row_count": df.height, "users": MetadataValue.json(dict(counts.iter_rows()))}
    return versioned_result("user_week_usage", paths, year, users)


def _with_bin_width(check: Callable[..., checks.CheckOutcome]) -> Callable:
    """`check` of a density table at params.yaml's bin width (its docstring kept: the check's
    description in the UI)."""
    return functools.update_wrapper(functools.partial(check, bin_width=BIN_WIDTH), check)


TABLES: dict[str, tuple[list, list[Check]]] = {
    COMPLETENESS: (
        [raw_inputs, normalised_flows, subscriber_sessions, mobile_usage, monthly_counters],
        [],
    ),
    "monthly_traffic_normalised": ([monthly_counters, COMPLETENESS], []),
    "growth_statistics": (
        [monthly_counters, COMPLETENESS],
        [("annualised_matches_factor", checks.annualised_matches_factor, True)],
    ),
    "weekday_hourly_profile": ([attributed_flows, COMPLETENESS], []),
    "daily_usage_density": (
        [user_week_usage],
        [("density_area_is_one", _with_bin_width(checks.density_area_is_one), True)],
    ),
    "daily_usage_summary": (
        [user_week_usage],
        [
            ("mean_exceeds_mode", checks.mean_exceeds_mode, False),
            ("mode_on_grid", checks.mode_on_grid, True),
            ("mode_exceeds_median", checks.mode_exceeds_median, False),
        ],
    ),
    "scatter_sample": ([user_week_usage], []),
    "top_user_share": ([user_week_usage], []),
    "usage_by_port": (
        [attributed_flows, COMPLETENESS],
        [
            ("protocol_totals_sum_to_100", checks.protocol_totals_sum_to_100, True),
            ("tcp_subtotals_equal_tcp", checks.tcp_subtotals_equal_tcp, True),
        ],
    ),
    "port_class_week_series": ([attributed_flows, COMPLETENESS], []),
    "data_quality": ([normalised_flows, attributed_flows, COMPLETENESS], []),
}


def _aggregate_asset(table: str, deps: list, table_checks: list[Check]) -> AssetsDefinition:
    specs = [
        AssetCheckSpec(name, asset=table, blocking=blocking, description=fn.__doc__)
        for name, fn, blocking in table_checks
    ]

    @asset(
        name=table,
        group_name="aggregate",
        partitions_def=report_year_partitions,
        deps=deps,
        check_specs=specs,
        description=aggregate_year.describe(table),
    )
    def _table(context: AssetExecutionContext, settings: PipelineSettings) -> MaterializeResult:
        df = aggregate_year.compute_table(
            settings.paths(), int(context.partition_key), table, settings.user_key_salt
        )
        results = []
        for name, fn, blocking in table_checks:
            passed, details = fn(df)
            results.append(
                AssetCheckResult(
                    check_name=name,
                    passed=bool(passed),
                    metadata={"details": MetadataValue.json(details)},
                    severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
                )
            )
        return versioned_result(
            table,
            settings.paths(),
            int(context.partition_key),
            {"dagster/row_count": df.height, "preview": MetadataValue.md(_preview(df))},
            check_results=results,
        )

    return _table


def _preview(df: pl.DataFrame, rows: int = 12) -> str:
    head = df.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in head.rows()]
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


aggregate_assets = [_aggregate_asset(name, deps, cks) for name, (deps, cks) in TABLES.items()]
