"""Figures 3, 4 and 11: densities of users' daily traffic volume on a log axis, a line per year,
each shaded with its 95 % band (density_lo..density_hi) where the band is wider than the line."""

from __future__ import annotations

import math

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

LINE_WIDTH = 1.7  # px: the density lines' stroke
BAND_OPACITY = 0.22
BAND_COLUMNS = ("density_lo", "density_hi")
NICE_FACTORS = ((10, math.sqrt(50)), (5, math.sqrt(10)), (2, math.sqrt(2)), (1, 0.0))  # d3


def _density_data(tables: Tables, service: str, years: list[int]) -> pl.DataFrame:
    df = tables["daily_usage_density"].filter(
        (pl.col("service") == service) & pl.col("year").is_in(years)
    )
    if df.is_empty():
        raise ValueError(f"daily_usage_density has no {service} rows for years {years}")
    df = df.with_columns(
        pl.lit(None, dtype=pl.Float64).alias(c) for c in BAND_COLUMNS if c not in df.columns
    )
    return df.select(
        "year",
        "direction",
        "bin_center_log10",
        *[pl.col(c).cast(pl.Float64).round(DIGITS) for c in ("density", *BAND_COLUMNS)],
    ).sort("year", "direction", "bin_center_log10")


def nice_top(value: float, count: int = 10) -> float:
    """The top of a linear axis from 0 that Vega's `nice` gives for data up to `value`: d3's
    tick increment for `count` ticks, the top rounded up to it, until it no longer moves."""
    if not value > 0:
        return 1.0
    top = value
    for _ in range(10):
        step = top / count
        power = math.floor(math.log10(step))
        error = step / 10**power
        factor = next(f for f, bound in NICE_FACTORS if error >= bound)
        increment = factor * 10.0**power
        nicer = round(math.ceil(top / increment - 1e-9) * increment, 12)
        if nicer == top:
            break
        top = nicer
    return top


def band_rows(plot: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """The bins of each line where its band is wider than `threshold` (in density units), with
    one bin more on each side so that the band tapers into the line; `segment` numbers each run
    of consecutive bins, drawn as one area."""
    wide = (pl.col("density_hi") - pl.col("density_lo")).fill_null(0.0) > threshold
    over = pl.col("line")
    shown = plot.sort("line", "bin_center_log10").with_columns(
        (
            wide
            | wide.shift(1).over(over).fill_null(False)
            | wide.shift(-1).over(over).fill_null(False)
        ).alias("_shown")
    )
    shown = shown.with_columns(
        (pl.col("_shown") != pl.col("_shown").shift(1).over(over).fill_null(False))
        .cum_sum()
        .over(over)
        .alias("_run")
    )
    return shown.filter(pl.col("_shown")).select(
        pl.exclude("_shown", "_run"), pl.format("{} {}", "line", "_run").alias("segment")
    )


def _y_top(plot: pl.DataFrame, band_years: list[str]) -> float:
    """The nice top of the y axis: over the lines, and the bands that are drawn."""
    band = plot.filter(pl.col("year_label").is_in(band_years))["density_hi"]
    return nice_top(max(plot["density"].max() or 0.0, band.max() or 0.0))


def _density_layer(
    plot: pl.DataFrame, x_title: str, dashed: bool, band_years: list[str], top: float
) -> alt.Chart | alt.LayerChart:
    """The lines of `plot` over the bands of `band_years`; the y axis runs from 0 to `top`."""
    years = sorted(plot["year_label"].unique().to_list())
    colour_scale = alt.Scale(domain=years, range=year_colours(len(years)))
    x = alt.X(
        "bin_center_log10:Q",
        scale=axes.log_bytes_scale(),
        axis=axes.log_bytes_axis(x_title, two_lines=True),
    )
    y_scale = alt.Scale(domain=[0, top], nice=False)
    lines = (
        alt.Chart(plot)
        .mark_line(clip=True, strokeWidth=LINE_WIDTH)
        .encode(
            x=x,
            y=alt.Y("density:Q", title="probability density", scale=y_scale),
            color=alt.Color("year_label:N", title="year", sort=years, scale=colour_scale),
            strokeDash=(
                alt.StrokeDash("direction:N", scale=DIRECTION_DASH, title="direction")
                if dashed
                else alt.Undefined
            ),
            detail="line:N",
        )
    )
    band = band_rows(
        plot.filter(pl.col("year_label").is_in(band_years)), LINE_WIDTH * top / HALF_HEIGHT
    )
    # One area layer per year in that year's colour, outside the colour scale: the legend keeps
    # the lines' keys only.
    shades = [
        alt.Chart(band.filter(pl.col("year_label") == year))
        .mark_area(clip=True, opacity=BAND_OPACITY, color=colour)
        .encode(
            x=x,
            y=alt.Y("density_lo:Q", title="probability density", scale=y_scale),
            y2="density_hi:Q",
            detail="segment:N",
        )
        for year, colour in zip(years, year_colours(len(years)), strict=True)
        if not band.filter(pl.col("year_label") == year).is_empty()
    ]
    if not shades:
        return lines.properties(width=HALF_WIDTH, height=HALF_HEIGHT)
    return alt.layer(*shades, lines).properties(width=HALF_WIDTH, height=HALF_HEIGHT)


def _density_chart(
    data: pl.DataFrame, service_word: str, split: bool = False, top: float | None = None
) -> alt.TopLevelMixin:
    """Densities per year: IN dotted over OUT solid (a half-width figure), every year's band; or
    (split) an OUT panel beside an IN panel on one y scale (a full-width figure of six years),
    with the band of the latest year only, so that the curves stay apart."""
    plot = data.with_columns(
        pl.format("{} {}", pl.col("year"), pl.col("direction")).alias("line"),
        pl.col("year").cast(pl.String).alias("year_label"),
    )
    x_title = f"{service_word} user's daily traffic volume (bytes)"
    years = sorted(plot["year_label"].unique().to_list())
    if not split:
        return finish(_density_layer(plot, x_title, True, years, top or _y_top(plot, years)))
    top = _y_top(plot, years[-1:])
    panels = [
        _density_layer(
            plot.filter(pl.col("direction") == d), x_title, False, years[-1:], top
        ).properties(title=word)
        for d, word in (("OUT", "download (OUT)"), ("IN", "upload (IN)"))
    ]
    return finish(alt.hconcat(*panels, spacing=24).resolve_scale(color="shared"), 6)


def pair_top(tables: Tables, year: int) -> float:
    """One y top for Figures 3 and 4, printed side by side: the same scale for both services
    (their peaks compare, and the two plots line up)."""
    both = pl.concat([fig03_data(tables, year), fig04_data(tables, year)])
    return nice_top(max(both["density"].max() or 0.0, both["density_hi"].max() or 0.0))


def fig03_data(tables: Tables, year: int) -> pl.DataFrame:
    return _density_data(tables, "broadband", [year - 1, year])


def fig03_broadband_density(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _density_chart(fig03_data(tables, year), "broadband", top=pair_top(tables, year))


def fig04_data(tables: Tables, year: int) -> pl.DataFrame:
    return _density_data(tables, "mobile", [year - 1, year])


def fig04_mobile_density(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _density_chart(fig04_data(tables, year), "mobile", top=pair_top(tables, year))


def fig11_data(tables: Tables, year: int) -> pl.DataFrame:
    return _density_data(tables, "broadband", list(range(year - 5, year + 1)))


def fig11_broadband_density_6y(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _density_chart(fig11_data(tables, year), "broadband", split=True)
