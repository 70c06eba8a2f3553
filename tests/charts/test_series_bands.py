"""Figs 2, 7-10: the figure CSVs carry the sampling-error interval; Figs 7, 8 shade it only where it
is wider than the line."""

from __future__ import annotations

import altair as alt
import polars as pl

from pipeline.charts import port_week
from pipeline.charts.profiles import fig02_data, fig09_data
from tests.support.tables import make_tables

YEAR = 2024


def test_figure_data_carries_the_interval_columns() -> None:
    tables = make_tables(YEAR)
    for data in (fig02_data(tables, YEAR), fig09_data(tables, YEAR)):
        assert {"relative_traffic_lo", "relative_traffic_hi"} <= set(data.columns)
    for data in (port_week.fig07_data(tables, YEAR), port_week.fig08_data(tables, YEAR)):
        assert {"normalised_lo", "normalised_hi"} <= set(data.columns)


def _rows(half_width: float) -> pl.DataFrame:
    hours = [float(h) for h in range(6)]
    return pl.DataFrame(
        {
            "year": [YEAR] * 6,
            "hour_of_week": hours,
            "series": ["Total"] * 6,
            "normalised": [0.5] * 6,
            "normalised_lo": [0.5 - half_width] * 6,
            "normalised_hi": [0.5 + half_width] * 6,
        }
    )


def test_band_only_where_wider_than_the_line() -> None:
    line_in_y = port_week.LINE_WIDTH * port_week.Y_TOP / port_week.PANEL_HEIGHT
    line = alt.Chart(_rows(0.0)).mark_line()
    assert port_week._with_band(line, _rows(0.4 * line_in_y), ["Total"]) is line
    shaded = port_week._with_band(line, _rows(2 * line_in_y), ["Total"])
    assert isinstance(shaded, alt.LayerChart)
    assert shaded.layer[0].mark.type == "area"
