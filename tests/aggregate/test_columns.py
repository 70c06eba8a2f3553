"""The column registry (pipeline/aggregate/columns.py) is what the SQL returns and the history
stores: every table is computed on the hand-built fixtures of test_metrics, written through
write_history, read back, and its stored schema compared with the registry, column by column.

A column added to a .sql file (or history.SCHEMAS) without the other, or without a description
in columns.DESCRIPTIONS, fails here with the table and column named.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.aggregate import columns, history, metrics
from pipeline.ingest import completeness
from tests.aggregate.test_metrics import (
    MON,
    TEN_IN,
    TEN_OUT,
    _billing,
    _month_rates,
    _monthly,
    _port_flows,
    _user_flows,
    flow,
    user_flow,
    user_week,
    write_flows,
)
from tests.aggregate.test_metrics import params as params  # noqa: F401 (the fixture)


def _computed(tmp: Path, params: dict[str, Any]) -> dict[str, pl.DataFrame]:
    """Every history table of 2024 computed by its metric on small fixtures."""
    t = MON + dt.timedelta(hours=5)
    rows = [*_port_flows(), user_flow(t, "pppoe", 300, "u1"), flow(t, "mobile", 50)]
    glob = write_flows(tmp / "wh", rows)
    months = [f"{2019 + (5 + i) // 12}-{(5 + i) % 12 + 1:02d}" for i in range(61)]
    monthly = _monthly(tmp, {m: _month_rates(1, 2, 3, 4, 5, 6) for m in months})
    users = pl.concat(
        [user_week("broadband", TEN_IN, TEN_OUT), user_week("mobile", TEN_OUT, TEN_IN)]
    )
    report = {"exporter": "pppoe-1", "files": 1, "messages": 1, "records_in": 3,
              "records_decoded": 3, "records_quarantined": 0, "quarantine_by_reason": {},
              "sampling_intervals": {"1": 3}}  # fmt: skip
    (tmp / "raw").mkdir()
    (tmp / "raw" / "exporters.yaml").write_text(
        "exporters:\n- {name: pppoe-1, service: pppoe, address: 192.0.2.1,"
        " observation_domain_id: 1}\n"
    )
    return {
        "monthly_traffic_normalised": metrics.monthly_traffic_normalised(monthly, 2024, params),
        "growth_statistics": metrics.growth_statistics(monthly, 2024, params),
        "weekday_hourly_profile": metrics.weekday_hourly_profile(glob, 2024, params),
        "daily_usage_density": metrics.daily_usage_density(users, 2024, params),
        "daily_usage_summary": metrics.daily_usage_summary(users, 2024, params),
        "scatter_sample": metrics.scatter_sample(users, 2024, params),
        "top_user_share": metrics.top_user_share(users, 2024, params),
        "usage_by_port": metrics.usage_by_port(glob, 2024, params),
        "port_class_week_series": metrics.port_class_week_series(glob, 2024, params),
        "data_quality": metrics.data_quality([report], glob, 2024, params),
        "input_completeness": completeness.input_completeness(
            tmp / "raw", tmp / "wh", 2024, params
        ),
    }


@pytest.fixture
def stored(tmp_path: Path, params: dict[str, Any]) -> dict[str, pl.DataFrame]:  # noqa: F811
    """Each table as the history store holds it (written and read back)."""
    out = {}
    for table, df in _computed(tmp_path, params).items():
        history.write_history(tmp_path / "history", table, 2024, df)
        out[table] = history.read_history(tmp_path / "history", table, [2024])
    return out


def test_every_history_table_is_computed_here(stored: dict[str, pl.DataFrame]) -> None:
    assert sorted(stored) == columns.tables()


def test_registry_matches_what_the_sql_returns(stored: dict[str, pl.DataFrame]) -> None:
    for table, df in stored.items():
        assert df.height > 0, f"{table}: the fixture gives no rows, so the check would be empty"
        got = [(name, str(dtype)) for name, dtype in df.schema.items()]
        want = [(c.name, c.type) for c in columns.columns(table)]
        assert got == want, f"{table}: stored columns differ from columns.py / history.SCHEMAS"


def test_every_column_has_a_description() -> None:
    for table in columns.tables():
        described = set(columns.DESCRIPTIONS[table])
        stored = set(history.SCHEMAS[table])
        assert described == stored, (
            f"{table}: undescribed {sorted(stored - described)}, "
            f"described but not stored {sorted(described - stored)}"
        )
        assert all(c.description.strip() for c in columns.columns(table)), table
    assert set(columns.DESCRIPTIONS) == set(history.SCHEMAS)


def test_user_week_usage_columns_match_the_sql(tmp_path: Path, params: dict[str, Any]) -> None:  # noqa: F811
    glob = write_flows(tmp_path, _user_flows())
    df = metrics.user_week_usage(glob, _billing(tmp_path), 2024, params, salt="s")
    assert df.height > 0
    got = [(name, str(dtype)) for name, dtype in df.schema.items()]
    assert got == [(c.name, c.type) for c in columns.columns("user_week_usage")]
    assert all(c.description for c in columns.columns("user_week_usage"))
