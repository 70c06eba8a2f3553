"""records_outside_weeks of data_quality.sql (a join with the week rows) equals the NOT EXISTS
formulation it replaced, on random flows around the week bounds, with overlapping weeks too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from pipeline.aggregate import metrics
from pipeline.aggregate.run import run_sql

NOT_EXISTS = """
SELECT count(*) FROM read_parquet($flows_glob, hive_partitioning = true) AS f
WHERE list_contains(CAST($read_days AS DATE[]), f.date)
  AND NOT EXISTS (SELECT 1 FROM report_weeks AS w
                  WHERE f.flow_start_ms >= w.week_start_ms AND f.flow_start_ms < w.week_end_ms)
"""
DAY_MS = 86_400_000
T0 = 1_717_372_800_000  # 2024-06-03 00:00 UTC


def _flows(root: Path, weeks: list[tuple[int, int]], seed: int) -> str:
    """Flows on four dated folders: random times plus every week bound and bound - 1 ms."""
    rng = np.random.default_rng(seed)
    edges = [t for s, e in weeks for t in (s, s - 1, e, e - 1)]
    for k in range(4):
        day = dt.date(2024, 6, 2) + dt.timedelta(days=k)
        lo = T0 + (k - 1) * DAY_MS
        times = np.concatenate(
            [rng.integers(lo, lo + DAY_MS, 200), [t for t in edges if lo <= t < lo + DAY_MS]]
        )
        folder = root / f"date={day.isoformat()}" / "exporter=e"
        folder.mkdir(parents=True)
        pl.DataFrame(
            {
                "flow_start_ms": times.astype(np.int64),
                "service": ["pppoe"] * len(times),
                "bytes_est": [1.0] * len(times),
                "user_key": [None] * len(times),
            },
            schema={
                "flow_start_ms": pl.Int64,
                "service": pl.String,
                "bytes_est": pl.Float64,
                "user_key": pl.String,
            },
        ).write_parquet(folder / "flows.parquet")
    return str(root / "date=*" / "exporter=*" / "flows.parquet")


@pytest.mark.parametrize(
    "weeks",
    [
        [(T0, T0 + DAY_MS)],
        [(T0 - DAY_MS // 2, T0 + DAY_MS // 3), (T0 + DAY_MS, T0 + 2 * DAY_MS)],
        [(T0, T0 + DAY_MS), (T0 + DAY_MS // 2, T0 + 2 * DAY_MS)],  # overlapping weeks
        [],
    ],
)
def test_records_outside_weeks_matches_not_exists(tmp_path: Path, weeks) -> None:
    glob = _flows(tmp_path, weeks, seed=len(weeks))
    report_weeks = pl.DataFrame(
        {"week_start_ms": [w[0] for w in weeks], "week_end_ms": [w[1] for w in weeks]},
        schema={"week_start_ms": pl.Int64, "week_end_ms": pl.Int64},
    )
    read_days = ["2024-06-02", "2024-06-03", "2024-06-04"]  # 2024-06-05 exists but is not read
    params = {
        "flows_glob": glob,
        "week_start_ms": T0,
        "week_end_ms": T0 + 7 * DAY_MS,
        "date_lo": "2024-06-02",
        "date_hi": "2024-06-10",
        "read_days": read_days,
        "unregistered_exporter": "unregistered",
        "max_quarantined_share_pct": 5.0,
    }
    tables = {"ingest_reports": metrics.ingest_reports_table([]), "report_weeks": report_weeks}
    dq = run_sql("data_quality", params, tables=tables)
    got = dq.filter(pl.col("item") == "records_outside_weeks")["value"].to_list()
    conn = duckdb.connect()
    conn.register("report_weeks", report_weeks.to_arrow())
    expected = conn.sql(NOT_EXISTS, params={"flows_glob": glob, "read_days": read_days}).fetchall()
    assert got == [float(expected[0][0])]
    total = conn.sql(
        "SELECT count(*) FROM read_parquet($g, hive_partitioning = true) "
        "WHERE list_contains(CAST($d AS DATE[]), date)",
        params={"g": glob, "d": read_days},
    ).fetchall()[0][0]
    assert got[0] == total if not weeks else 0 < got[0] < total
