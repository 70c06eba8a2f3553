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
    """The interval as a table prints it, at `decimals`: '±0.2' when its two sides round to within
    one last digit of each other (the larger side), '[5,012–6,310]' when they differ more; '' when
    it is unknown or both sides round to 0 (an exact value included)."""
    if not _known(value, lo, hi):
        return ""
    v, lo, hi = float(value), float(lo), float(hi)
    below, above = round(v - lo, decimals), round(hi - v, decimals)
    if below <= 0 and above <= 0:
        return ""
    if abs(below - above) <= 10.0**-decimals * (1 + 1e-9):
        return f"±{max(below, above):,.{decimals}f}"
    return f"[{round(lo, decimals):,.{decimals}f}–{round(hi, decimals):,.{decimals}f}]"


LABEL_SUFFIX = "_ci"  # a printed table's interval labels: in the PDF, not in the CSV


def with_labels(df: pl.DataFrame, values: list[str], decimals: int) -> pl.DataFrame:
    """`df` with `<value>_ci`, the printed interval of each value column (interval_label), from
    the unrounded value and ends."""
    return df.with_columns(
        pl.Series(
            f"{c}{LABEL_SUFFIX}",
            [
                interval_label(v, lo, hi, decimals)
                for v, lo, hi in zip(df[c], df[f"{c}_lo"], df[f"{c}_hi"], strict=True)
            ],
            dtype=pl.String,
        )
        for c in values
    )


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


def has_interval(row: dict[str, Any]) -> bool:
    """True when some value of a printed-table row has an interval label that prints."""
    return any(v for k, v in row.items() if k.endswith(LABEL_SUFFIX))
