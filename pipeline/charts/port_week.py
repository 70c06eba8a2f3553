"""Figures 7 and 8: traffic by port class hour by hour over the week, one panel per year."""

from __future__ import annotations

import altair as alt
import polars as pl

from pipeline.charts import axes
from pipeline.charts.style import DIGITS, WIDTH, Tables, finish

PORT_CLASS_LABELS = {
    "total": "Total",
    "tcp443": "TCP 443",
    "tcp80": "TCP 80",
    "tcp_dynamic": "TCP dynamic (>= 1024)",
    "udp443": "UDP 443",
}
PORT_CLASS_COLOURS = {
    "Total": "#222222",
    "TCP 443": "#1f77b4",
    "TCP 80": "#ff7f0e",
    "TCP dynamic (>= 1024)": "#2ca02c",
    "UDP 443": "#d62728",
}
# TCP 80 runs close to the dynamic-port line in both services: dashed, it stays visible on top of
# it (and in greyscale). Same field as the colour, so the one legend shows the dash.
PORT_CLASS_DASH = {"TCP 80": [4, 2]}
PANEL_HEIGHT = 105  # two panels (previous year above this year) and the legend in about 90 mm
LINE_WIDTH = 1.3  # px: the lines' stroke
Y_TOP = 1.05  # the y axis runs from 0 to Y_TOP (panel peak total = 1)


def _port_week_data(tables: Tables, service: str, year: int) -> pl.DataFrame:
    classes = (
        list(PORT_CLASS_LABELS)
        if service == "broadband"
        else [c for c in PORT_CLASS_LABELS if c != "tcp_dynamic"]
    )
    df = tables["port_class_week_series"].filter(
        (pl.col("service") == service)
        & pl.col("year").is_in([year - 1, year])
        & pl.col("port_class").is_in(classes)
    )
    if df.is_empty():
        raise ValueError(f"port_class_week_series has no {service} rows for {year - 1}..{year}")
    return df.select(
        "year",
        "hour_of_week",
        "port_class",
        pl.col("port_class").replace_strict(PORT_CLASS_LABELS).alias("series"),
        pl.col("normalised").round(DIGITS),
        *[  # sampling-error interval (docs/UNCERTAINTY.md): published, not drawn
            (pl.col(c).round(DIGITS) if c in df.columns else pl.lit(None, dtype=pl.Float64)).alias(
                c
            )
            for c in ("normalised_lo", "normalised_hi")
        ],
    ).sort("year", "port_class", "hour_of_week")


def _port_week_chart(data: pl.DataFrame) -> alt.TopLevelMixin:
    series = [s for s in PORT_CLASS_LABELS.values() if s in set(data["series"].to_list())]
    panels = []
    for y in sorted(data["year"].unique().to_list()):
        rows = data.filter(pl.col("year") == y)
        line = (
            alt.Chart(rows, title=str(y))
            .mark_line(strokeWidth=LINE_WIDTH)
            .encode(
                x=alt.X(
                    "hour_of_week:Q",
                    scale=alt.Scale(domain=[0, 168], nice=False),
                    axis=axes.weekday_axis(""),
                ),
                y=alt.Y(
                    "normalised:Q",
                    title=["relative to the", "panel's peak total"],
                    scale=alt.Scale(domain=[0, Y_TOP], nice=False),
                ),
                color=alt.Color(
                    "series:N",
                    title=None,
                    sort=series,
                    scale=alt.Scale(domain=series, range=[PORT_CLASS_COLOURS[s] for s in series]),
                ),
                strokeDash=alt.StrokeDash(
                    "series:N",
                    title=None,
                    sort=series,
                    scale=alt.Scale(
                        domain=series, range=[PORT_CLASS_DASH.get(s, [1, 0]) for s in series]
                    ),
                ),
            )
            .properties(width=WIDTH, height=PANEL_HEIGHT)
        )
        panels.append(_with_band(line, rows, series))
    stacked = alt.vconcat(*panels, spacing=10)
    return finish(stacked.resolve_scale(color="shared", strokeDash="shared"), legend_columns=5)


def _with_band(line: alt.Chart, rows: pl.DataFrame, series: list[str]) -> alt.TopLevelMixin:
    """The line under a light 95 % sampling-error band where the band is wider than the line
    (docs/UNCERTAINTY.md); elsewhere the band collapses onto the line."""
    if "normalised_lo" not in rows.columns:
        return line
    threshold = LINE_WIDTH * Y_TOP / PANEL_HEIGHT  # the line's width in y units
    wide = (pl.col("normalised_hi") - pl.col("normalised_lo")).fill_null(0.0) > threshold
    band = rows.with_columns(
        pl.when(wide).then(pl.col(c)).otherwise(pl.col("normalised")).alias(c)
        for c in ("normalised_lo", "normalised_hi")
    )
    if band.filter(pl.col("normalised_lo") != pl.col("normalised_hi")).is_empty():
        return line
    area = (
        alt.Chart(band)
        .mark_area(opacity=0.2, clip=True)
        .encode(
            x="hour_of_week:Q",
            y="normalised_lo:Q",
            y2="normalised_hi:Q",
            fill=alt.Fill(  # not `color`: the legend keeps the lines' strokes
                "series:N",
                sort=series,
                scale=alt.Scale(domain=series, range=[PORT_CLASS_COLOURS[s] for s in series]),
                legend=None,
            ),
            detail="series:N",
        )
    )
    return alt.layer(area, line).resolve_scale(fill="independent")


def fig07_data(tables: Tables, year: int) -> pl.DataFrame:
    return _port_week_data(tables, "broadband", year)


def fig07_broadband_port_week(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _port_week_chart(fig07_data(tables, year))


def fig08_data(tables: Tables, year: int) -> pl.DataFrame:
    return _port_week_data(tables, "mobile", year)


def fig08_mobile_port_week(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _port_week_chart(fig08_data(tables, year))
