"""The report's 95 % intervals: how a table prints one, and when a year-on-year change is inside.

The rule (stated in Appendix B, "Method"): a change from `prev` to `now` is not distinguishable
from last year when |now − prev| < √(a² + b²), a being the distance from `now` to the end of its
interval that faces `prev`, b that from `prev` to the end of its interval that faces `now` (for a
symmetric interval both are its half-width).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl


def _known(*values: Any) -> bool:
    return all(v is not None and v == v for v in values)


def interval_label(value: Any, lo: Any, hi: Any, decimals: int) -> str:
    """The interval as a table prints it, from the value and ends rounded to `decimals`: '±0.2'
    when its two sides differ by at most one last digit (the larger side: a symmetric interval
    whose ends rounded apart), '[5,012–6,310]' when they differ more; '' when it is unknown or
    narrower than the last printed digit (an exact value included)."""
    if not _known(value, lo, hi):
        return ""
    v, lo_r, hi_r = (round(float(x), decimals) for x in (value, lo, hi))
    below, above = round(v - lo_r, decimals), round(hi_r - v, decimals)
    if below <= 0 and above <= 0:
        return ""
    if abs(below - above) <= 10.0**-decimals * (1 + 1e-9):
        return f"±{max(below, above):,.{decimals}f}"
    return f"[{lo_r:,.{decimals}f}–{hi_r:,.{decimals}f}]"


def not_distinguishable(
    now: Any, now_lo: Any, now_hi: Any, prev: Any, prev_lo: Any, prev_hi: Any
) -> bool | None:
    """True when the change now − prev is inside the combined interval (module docstring);
    None when a value or an interval end is unknown (the text then says nothing of it)."""
    if not _known(now, now_lo, now_hi, prev, prev_lo, prev_hi):
        return None
    now, prev = float(now), float(prev)
    if now >= prev:
        a, b = now - float(now_lo), float(prev_hi) - prev
    else:
        a, b = float(now_hi) - now, prev - float(prev_lo)
    return abs(now - prev) < math.hypot(max(a, 0.0), max(b, 0.0))


def with_interval_columns(df: pl.DataFrame, values: list[str]) -> pl.DataFrame:
    """`df` with `<value>_lo` and `<value>_hi` for each value column, NULL where the table has
    none (history written before intervals, or published rows of earlier editions)."""
    missing = [
        f"{c}_{end}" for c in values for end in ("lo", "hi") if f"{c}_{end}" not in df.columns
    ]
    return df.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in missing)


def has_interval(row: dict[str, Any], decimals: int) -> bool:
    """True when some value of a printed-table row (a key with `<key>_lo`, `<key>_hi` beside it)
    has an interval that prints."""
    return any(
        interval_label(row[k], row[f"{k}_lo"], row[f"{k}_hi"], decimals)
        for k in row
        if f"{k}_lo" in row and f"{k}_hi" in row
    )
