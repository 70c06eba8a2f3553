"""Figure 1: monthly broadband and mobile traffic, relative to the normalisation month."""

from __future__ import annotations

import datetime as dt

import altair as alt
import polars as pl

from pipeline.charts.style import DIGITS, DIRECTION_DASH, HEIGHT, WIDTH, Tables, finish
from pipeline.config import load_params

FIG1_LINES = {  # (series, direction) -> (legend label, colour, stroke width)
    ("broadband", "OUT"): ("Broadband OUT", "#08519c", 2.4),
    ("broadband", "IN"): ("Broadband IN", "#6baed6", 2.4),
    ("broadband_pppoe", "OUT"): ("Broadband PPPoE only OUT", "#238b45", 1.3),
    ("broadband_pppoe", "IN"): ("Broadband PPPoE only IN", "#74c476", 1.3),
    ("mobile", "OUT"): ("Mobile OUT", "#d94801", 1.8),
    ("mobile", "IN"): ("Mobile IN", "#fd8d3c", 1.8),
}


def fig01_data(tables: Tables, year: int) -> pl.DataFrame:
    """Monthly traffic per drawn line, relative to the normalisation month's OUT of its service."""
    df = tables["monthly_traffic_normalised"].filter(pl.col("year") == year)
    labels = pl.DataFrame(
        [(s, d, lab) for (s, d), (lab, _, _) in FIG1_LINES.items()],
        schema=["series", "direction", "line"],
        orient="row",
    )
    return (
        df.join(labels, on=["series", "direction"])
        .select(
            "month",
            "series",
            "direction",
            "line",
            pl.col("normalised").round(DIGITS).alias("relative_traffic"),
        )
        .sort("series", "direction", "month")
    )


def fig01_monthly_traffic(
    tables: Tables, year: int, norm_month: str | None = None
) -> alt.TopLevelMixin:
    norm_month = norm_month or load_params()["report"]["normalise_month"]
    data = fig01_data(tables, year).with_columns((pl.col("month") + "-01").alias("month_start"))
    # legend in three columns: the OUT lines on its first row, the IN lines under them
    keys = sorted(FIG1_LINES, key=lambda key: key[1] != "OUT")
    labs = [FIG1_LINES[k][0] for k in keys]
    y_m = dt.date.fromisoformat(norm_month + "-01").strftime("%b %Y")
    chart = (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("month_start:T", title="month", axis=alt.Axis(format="%Y", tickCount="year")),
            y=alt.Y(
                "relative_traffic:Q",
                title=[f"traffic relative to {y_m}", "OUT of the same service"],
            ),
            color=alt.Color(
                "line:N",
                title=None,
                scale=alt.Scale(domain=labs, range=[FIG1_LINES[k][1] for k in keys]),
            ),
            strokeWidth=alt.StrokeWidth(
                "line:N",
                title=None,
                scale=alt.Scale(domain=labs, range=[FIG1_LINES[k][2] for k in keys]),
            ),
            # Same field as colour and width, so the one legend shows each line's dash too.
            strokeDash=alt.StrokeDash(
                "line:N",
                title=None,
                scale=alt.Scale(
                    domain=labs,
                    range=[DIRECTION_DASH.range[DIRECTION_DASH.domain.index(d)] for _, d in keys],
                ),
            ),
            detail="line:N",
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return finish(chart, legend_columns=3)
