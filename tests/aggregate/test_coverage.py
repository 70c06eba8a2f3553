"""Coverage of the 95 % sampling-error intervals against the simulator's truth (issue 13): the share
of intervals holding the true value lies in [90 %, 99 %] for every statistic (coverage.py)."""

from __future__ import annotations

import polars as pl
import pytest

from tests.aggregate import coverage

DRAWS = 100
USERS = 2000


@pytest.mark.slow
def test_intervals_cover_the_truth(capsys: pytest.CaptureFixture[str]) -> None:
    table = coverage.coverage(DRAWS, USERS, coverage.coverage_params())
    with capsys.disabled():
        print(f"\ncoverage of 95 % intervals, {DRAWS} sampling draws of {USERS} users:")
        print(coverage.markdown(table))
    held = table.filter(pl.col("statistic").is_in(coverage.STATISTICS))
    assert held.height == len(coverage.STATISTICS)
    low = held.filter((pl.col("coverage_pct") < 90) | (pl.col("coverage_pct") > 99))
    assert low.is_empty(), low
