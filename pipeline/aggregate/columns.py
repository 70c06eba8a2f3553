"""What each column of a history table means: the descriptions beside history.SCHEMAS' types.

One registry for the UI's column schema and the docs: the names and types are history.SCHEMAS
(what write_history stores and the SQL returns, checked by tests/aggregate/test_columns.py), the
words are here. A column added to SCHEMAS and the SQL needs its line here too (the test says so).
"""

from __future__ import annotations

from typing import NamedTuple

from pipeline.aggregate.history import SCHEMAS, table_schema


class Column(NamedTuple):
    name: str
    type: str  # the stored Parquet type, as polars names it ("Float64", "String", …)
    description: str


_SVC = "broadband | mobile"
_DIR = "IN (download to the subscriber) | OUT (upload)"
_IV = "(95 % by default, params daily_usage.intervals.level; NULL if published)"
# `year` and `source` are on every table (history.table_schema adds them)
COMMON = {
    "year": "report year the row belongs to",
    "source": "measured (computed by this pipeline) | published (IIJ's printed value)",
}
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "monthly_traffic_normalised": {
        "month": "calendar month YYYY-MM (Fig 1's range up to the report month)",
        "series": "broadband | broadband_pppoe | broadband_ipoe | mobile",
        "direction": _DIR,
        "bytes": "total bytes in the month from the interface counters (NULL: month missing)",
        "rate_bps": "mean rate over the month, bit/s",
        "normalised": "rate_bps / rate_bps of the group's OUT in params normalise_month",
    },
    "growth_statistics": {
        "metric": "yoy_pct | ipoe_share_pct | ipoe_share_change_pts | factor_5y | annualised_5y"
        " | relative_to_norm_month",
        "service": _SVC,
        "direction": _DIR,
        "value": "the metric's value in `unit`",
        "unit": "pct | pts | ratio",
    },
    "weekday_hourly_profile": {
        "week_start": "local Monday of the week, YYYY-MM-DD",
        "role": "analysis | extra (a further week of params.yaml `weeks`)",
        "hour": "local hour of day 0–23",
        "direction": _DIR,
        "mean_bps": "broadband bit/s in that hour, mean over the weekdays present",
        "weekdays": "weekdays (Mon–Fri) whose inputs were complete",
        "mean_bps_lo": "lower end of the sampling-error interval of mean_bps (analytic) " + _IV,
        "mean_bps_hi": "upper end of the interval of mean_bps " + _IV,
    },
    "daily_usage_density": {
        "service": _SVC,
        "direction": _DIR,
        "bin_center_log10": "bin centre, log10(bytes/day)",
        "users": "users in the bin",
        "density": "probability density, 1/decade (area over the bins = 1)",
        "density_lo": "lower end of the pointwise sampling-error interval of density " + _IV,
        "density_hi": "upper end of that interval " + _IV,
    },
    "daily_usage_summary": {
        "service": _SVC,
        "direction": _DIR,
        "users": "personal users of the week (all, below the detection limit included)",
        "mean_mb": "mean daily usage, MB/day",
        "median_mb": "median daily usage, MB/day (NULL if a middle user is below the limit)",
        "mode_mb": "mode of the log-density, MB/day",
        "mode_log10": "mode, log10(bytes/day)",
        "users_not_observed": "users with no traffic in this direction",
        "users_below_rule": "users observed on fewer sampled packets than the rule",
        "mean_mb_lo": "lower end of the sampling-error interval of mean_mb (analytic) " + _IV,
        "mean_mb_hi": "upper end of the interval of mean_mb " + _IV,
        "median_mb_lo": "lower end of the interval of median_mb (Poisson bootstrap) " + _IV,
        "median_mb_hi": "upper end of the interval of median_mb " + _IV,
        "mode_mb_lo": "lower end of the interval of mode_mb (Poisson bootstrap) " + _IV,
        "mode_mb_hi": "upper end of the interval of mode_mb " + _IV,
        "mode_log10_lo": "mode_mb_lo as log10(bytes/day) " + _IV,
        "mode_log10_hi": "mode_mb_hi as log10(bytes/day) " + _IV,
        "interval_method": "poisson_bootstrap (broadband; its mean analytic) | exact (mobile"
        " billing) | NULL (published)",
    },
    "scatter_sample": {
        "service": _SVC,
        "daily_in_bytes": "IN bytes/day of a sampled user, rounded on the log axis (or NULL)",
        "daily_out_bytes": "OUT bytes/day of a sampled user, rounded on the log axis (or NULL)",
    },
    "top_user_share": {
        "service": _SVC,
        "direction": _DIR,
        "top_pct": "the heaviest top_pct % of users",
        "share_pct": "their share of all bytes in the direction, %",
        "share_pct_lo": "lower end of the sampling-error interval of share_pct (Poisson bootstrap) "
        + _IV,
        "share_pct_hi": "upper end of that interval " + _IV,
    },
    "usage_by_port": {
        "service": _SVC,
        "row_id": "row key (tcp_total, tcp_lt1024, tcp_443, udp_total, esp, …)",
        "protocol": "TCP | UDP | ESP | GRE | IP-ENCAP | ICMP | other",
        "port_label": "label as printed in Tables 3, 4",
        "row_kind": "protocol_total | subtotal | port",
        "parent": "row_id of the row it belongs to (NULL for a protocol total)",
        "share_pct": "share of all bytes of the service in the week, %",
        "sort_key": "row order in the printed table (0, 1, …)",
        "share_pct_lo": "lower end of the sampling-error interval of share_pct (delta method) "
        + _IV,
        "share_pct_hi": "upper end of that interval " + _IV,
    },
    "port_class_week_series": {
        "service": _SVC,
        "bin_start_ms": "bin start, UTC epoch ms",
        "hour_of_week": "local clock at the bin start, hours since Monday 00:00",
        "port_class": "total | tcp80 | tcp443 | tcp_dynamic | udp443",
        "bytes": "bytes in the bin (NULL on a day whose inputs are missing)",
        "normalised": "bytes / the week's largest total bin (panel peak = 1)",
        "bytes_lo": "lower end of the sampling-error interval of bytes (analytic) " + _IV,
        "bytes_hi": "upper end of the interval of bytes " + _IV,
        "normalised_lo": "bytes_lo / the week's largest total bin " + _IV,
        "normalised_hi": "bytes_hi / the week's largest total bin " + _IV,
    },
    "data_quality": {
        "item": "what is counted (records_in, quarantined:<reason>, unattributed_bytes_pct, …)",
        "scope": "all | exporter:<name> | service:<service> | exporter_day:<name>/<date>",
        "value": "the count or percentage",
    },
    "input_completeness": {
        "kind": "flows | counters | radius | ipoe_leases | mobile_billing",
        "service": "exporter service, counter service, or the reference's service",
        "scope": "exporter name, counter direction, or the kind again",
        "period": "YYYY-MM-DD (days) or YYYY-MM (counter months)",
        "present": "whether the input was found with records",
        "records": "records read from it",
    },
}


# Warehouse tables (never published) shown with their columns too: name → (type, meaning).
WAREHOUSE: dict[str, dict[str, tuple[str, str]]] = {
    "user_week_usage": {
        "year": ("Int64", "report year"),
        "service": ("String", _SVC),
        "user_key": ("String", "salted hash of the subscription id or phone number"),
        "in_bytes": ("Float64", "IN bytes in the analysis week (NULL: not observed)"),
        "out_bytes": ("Float64", "OUT bytes in the analysis week (NULL: not observed)"),
        "daily_in_bytes": ("Float64", "in_bytes / the days present"),
        "daily_out_bytes": ("Float64", "out_bytes / the days present"),
        "in_packets_sampled": ("Int64", "sampled IN packets behind the estimate (NULL: mobile)"),
        "out_packets_sampled": (
            "Int64",
            "sampled OUT packets behind the estimate (NULL: mobile)",
        ),
        "in_bytes_var": (
            "Float64",
            "variance of in_bytes under 1-in-N packet sampling, bytes² (0: mobile; NULL: not"
            " observed)",
        ),
        "out_bytes_var": ("Float64", "variance of out_bytes, likewise"),
        "in_rel_error": ("Float64", "sqrt(in_bytes_var) / in_bytes: relative standard error"),
        "out_rel_error": ("Float64", "sqrt(out_bytes_var) / out_bytes"),
    },
}


def columns(table: str) -> list[Column]:
    """The stored columns of a history (or warehouse) table in order, with type and meaning."""
    if table in WAREHOUSE:
        return [Column(name, t, words) for name, (t, words) in WAREHOUSE[table].items()]
    words = COMMON | DESCRIPTIONS[table]
    return [Column(name, str(dtype), words[name]) for name, dtype in table_schema(table).items()]


def tables() -> list[str]:
    """Every history table the registry describes (those of history.SCHEMAS)."""
    return sorted(SCHEMAS)


def described_tables() -> list[str]:
    """Every table with a column schema: the history tables and the warehouse ones above."""
    return sorted([*SCHEMAS, *WAREHOUSE])
