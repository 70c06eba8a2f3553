"""Figures 3, 4 and 11: densities of users' daily traffic volume on a log axis, a line per year."""

from __future__ import annotations

import altair as alt
import polars as pl

from pipeline.charts import axes
from pipeline.charts.style import (
    DIGITS,
    DIRECTION_DASH,
    HALF_HEIGHT,
    HALF_WIDTH,
    Tables,
    finish,
    year_colours,
)


def _density_data(tables: Tables, service: str, years: list[int]) -> pl.DataFrame:
    df = tables["daily_usage_density"].filter(
        (pl.col("service") == service) & pl.col("year").is_in(years)
    )
    if df.is_empty():
        raise ValueError(f"daily_usage_density has no {service} rows for years {years}")
    return df.select("year", "direction", "bin_center_log10", pl.col("density").round(DIGITS)).sort(
        "year", "direction", "bin_center_log10"
    )


def _density_layer(plot: pl.DataFrame, x_title: str, dashed: bool) -> alt.Chart:
    years = sorted(plot["year_label"].unique().to_list())
    return (
        alt.Chart(plot)
        .mark_line(clip=True, strokeWidth=1.7)
        .encode(
            x=alt.X(
                "bin_center_log10:Q",
                scale=axes.log_bytes_scale(),
                axis=axes.log_bytes_axis(x_title, two_lines=True),
            ),
            y=alt.Y("density:Q", title="probability density"),
            color=alt.Color(
                "year_label:N",
                title="year",
                sort=years,
                scale=alt.Scale(domain=years, range=year_colours(len(years))),
            ),
            strokeDash=(
                alt.StrokeDash("direction:N", scale=DIRECTION_DASH, title="direction")
                if dashed
                else alt.Undefined
            ),
            detail="line:N",
        )
        .properties(width=HALF_WIDTH, height=HALF_HEIGHT)
    )


def _density_chart(data: pl.DataFrame, service_word: str, split: bool = False) -> alt.TopLevelMixin:
    """Densities per year: IN dotted over OUT solid (a half-width figure), or (split) an OUT panel
    beside an IN panel (a full-width figure)."""
    plot = data.with_columns(
        pl.format("{} {}", pl.col("year"), pl.col("direction")).alias("line"),
        pl.col("year").cast(pl.String).alias("year_label"),
    )
    x_title = f"{service_word} user's daily traffic volume (bytes)"
    if not split:
        return finish(_density_layer(plot, x_title, dashed=True))
    panels = [
        _density_layer(plot.filter(pl.col("direction") == d), x_title, dashed=False).properties(
            title=word
        )
        for d, word in (("OUT", "download (OUT)"), ("IN", "upload (IN)"))
    ]
    return finish(alt.hconcat(*panels, spacing=24).resolve_scale(color="shared"), 6)


def fig03_data(tables: Tables, year: int) -> pl.DataFrame:
    return _density_data(tables, "broadband", [year - 1, year])


def fig03_broadband_density(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _density_chart(fig03_data(tables, year), "broadband")


def fig04_data(tables: Tables, year: int) -> pl.DataFrame:
    return _density_data(tables, "mobile", [year - 1, year])


def fig04_mobile_density(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _density_chart(fig04_data(tables, year), "mobile")


def fig11_data(tables: Tables, year: int) -> pl.DataFrame:
    return _density_data(tables, "broadband", list(range(year - 5, year + 1)))


def fig11_broadband_density_6y(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _density_chart(fig11_data(tables, year), "broadband", split=True)
