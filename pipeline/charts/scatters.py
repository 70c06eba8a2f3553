"""Figures 5 and 6: daily IN against daily OUT per sampled user, on log axes."""

from __future__ import annotations

import altair as alt
import numpy as np
import polars as pl

from pipeline.charts import axes
from pipeline.charts.style import HALF_WIDTH, Tables, finish

SCATTER_DIGITS = 2  # 0.01 decade: finer than a pixel at this size


# A direction not observed, or below the reliability rule, is NULL in scatter_sample: no place on
# the log axes (the text counts these users). The sample's values are already at 0.01 decade.
DRAWABLE = (pl.col("daily_in_bytes") > 0) & (pl.col("daily_out_bytes") > 0)


def _scatter_data(tables: Tables, service: str, year: int) -> pl.DataFrame:
    """log10 daily OUT and IN bytes per sampled user, ordered by value; users with a direction
    not drawn (NULL) are dropped."""
    df = tables["scatter_sample"].filter((pl.col("service") == service) & (pl.col("year") == year))
    df = df.filter(DRAWABLE)
    out = np.round(np.log10(df["daily_out_bytes"].to_numpy()), SCATTER_DIGITS)
    inn = np.round(np.log10(df["daily_in_bytes"].to_numpy()), SCATTER_DIGITS)
    return pl.DataFrame({"log10_daily_out_bytes": out, "log10_daily_in_bytes": inn}).sort(
        "log10_daily_out_bytes", "log10_daily_in_bytes"
    )


def _scatter_chart(data: pl.DataFrame, service_word: str) -> alt.TopLevelMixin:
    lo, hi = axes.LOG10_MIN, axes.LOG10_MAX
    x = alt.X(
        "log10_daily_out_bytes:Q",
        scale=axes.log_bytes_scale(),
        axis=axes.log_bytes_axis(
            [f"{service_word} user's daily", "download, OUT (bytes)"], two_lines=True
        ),
    )
    y = alt.Y(
        "log10_daily_in_bytes:Q",
        scale=axes.log_bytes_scale(),
        axis=axes.log_bytes_axis("daily upload, IN (bytes)"),  # the x title names the service
    )
    points = (
        alt.Chart(data)
        .mark_point(
            shape="square",
            size=4,
            filled=True,
            strokeWidth=0,
            opacity=0.22,
            color="#08519c",
            clip=True,
        )
        .encode(x=x, y=y)
    )
    # The IN = OUT line on the same fields and axes (axes that differ would be merged, and the
    # merged axis thins out the tick labels once the chart is small).
    diagonal = (
        alt.Chart(
            pl.DataFrame({"log10_daily_out_bytes": [lo, hi], "log10_daily_in_bytes": [lo, hi]})
        )
        .mark_line(color="#888888", strokeDash=[4, 3], strokeWidth=1)
        .encode(x=x, y=y)
    )
    # square, so that a decade is as long on both axes; Figures 5 and 6 sit side by side
    side = HALF_WIDTH - 30
    return finish(alt.layer(points, diagonal).properties(width=side, height=side))


def fig05_data(tables: Tables, year: int) -> pl.DataFrame:
    return _scatter_data(tables, "broadband", year)


def fig05_broadband_scatter(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _scatter_chart(fig05_data(tables, year), "broadband")


def fig06_data(tables: Tables, year: int) -> pl.DataFrame:
    return _scatter_data(tables, "mobile", year)


def fig06_mobile_scatter(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _scatter_chart(fig06_data(tables, year), "mobile")
