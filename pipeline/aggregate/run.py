"""Run one table's .sql file with DuckDB named parameters and return a polars DataFrame.

Besides DuckDB's own functions the queries can call `exact_sum(list)`: the exactly rounded sum of a
list of DOUBLEs (Python's math.fsum; NULL elements skipped), so a sum of shares does not depend on
the order of its terms. DuckDB's `sum` and `fsum` are not exactly rounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from duckdb import sqltypes

SQL_DIR = Path(__file__).with_name("sql")
_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT_RE = re.compile(r"--[^\n]*")


@lru_cache(maxsize=64)
def load_sql(name: str) -> str:
    """The text of `sql/<name>.sql`."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file for metric {name!r}: {path}")
    return path.read_text()


def exact_sum(values: Iterable[float | None]) -> float:
    """The exactly rounded sum of the non-null values (0.0 if none)."""
    return math.fsum(v for v in values if v is not None)


def sql_parameters(sql: str) -> set[str]:
    """Names of the $parameters a query uses (comments ignored)."""
    return set(_PARAM_RE.findall(_COMMENT_RE.sub("", sql)))


def run_sql(
    name: str,
    params: Mapping[str, Any],
    tables: Mapping[str, pl.DataFrame] | None = None,
    conn: duckdb.DuckDBPyConnection | None = None,
) -> pl.DataFrame:
    """Run `sql/<name>.sql`, binding only the parameters it uses; `tables` become views."""
    sql = load_sql(name)
    wanted = sql_parameters(sql)
    missing = wanted - set(params)
    if missing:
        raise ValueError(f"{name}.sql needs parameters {sorted(missing)}")
    own = conn is None
    conn = conn or duckdb.connect()
    try:
        conn.execute("SET enable_progress_bar = false")
        conn.create_function(
            "exact_sum", exact_sum, [duckdb.list_type(sqltypes.DOUBLE)], sqltypes.DOUBLE
        )
        if tables:
            # in-memory inputs are small; one thread keeps float sums in a fixed order
            conn.execute("SET threads = 1")
        for view_name, frame in (tables or {}).items():
            conn.register(view_name, frame.to_arrow())
        bound = {k: v for k, v in params.items() if k in wanted}
        return conn.sql(sql, params=bound).pl()
    finally:
        if own:
            conn.close()
