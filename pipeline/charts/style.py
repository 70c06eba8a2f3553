"""The figures' shared look: sizes, fonts, rounding, palettes and the final configuration."""

from __future__ import annotations

import altair as alt
import polars as pl

Tables = dict[str, pl.DataFrame]

# Figures are printed at their own size, 1 SVG px = 1 CSS px (0.265 mm), so the font sizes below
# are the printed ones (10 px = 7.5 pt). The text block is 174 mm (657 px) wide: a full-width
# figure's plot is WIDTH wide; a half-width one (two side by side, each ≤ HALF_FIGURE px with its
# axes) HALF_WIDTH. Heights are kept low so that a figure sits on the page that discusses it.
WIDTH = 500
HEIGHT = 170
HALF_WIDTH = 226
HALF_HEIGHT = 135
HALF_FIGURE = 320
TEXT_WIDTH = 657  # px: the text block of report.css (A4 less 18 mm margins)
HALF_FIGURES = (3, 4, 5, 6, 9, 10)  # drawn at half width: the report prints them in pairs
FONT = "DejaVu Sans"
DIGITS = 4  # rounding of plotted values: keeps SVG and CSV small and byte-stable

# OUT solid, IN dotted with dots long enough to read at print size.
DIRECTION_DASH = alt.Scale(domain=["OUT", "IN"], range=[[1, 0], [3, 2.5]])
# Categorical and colour-blind safe (Okabe–Ito), oldest → newest: neighbouring years differ in hue
# and in lightness (so they stay apart in greyscale); the newest year is the darkest, deep blue.
YEAR_COLOURS = ["#e69f00", "#009e73", "#56b4e9", "#d55e00", "#cc79a7", "#0072b2"]
# Qualitative: Fig 2's weeks are unordered comparisons, so each gets its own hue.
WEEK_COLOURS = ["#8c8c8c", "#2ca02c", "#e07b00", "#08519c"]


def year_colours(n: int) -> list[str]:
    """n distinguishable colours ordered old → new (two-series comparisons: orange vs dark blue)."""
    if n == 2:
        return ["#e08214", "#08519c"]
    if n > len(YEAR_COLOURS):
        raise ValueError(f"at most {len(YEAR_COLOURS)} periods per chart, got {n}")
    if n <= 3:
        return [YEAR_COLOURS[0], YEAR_COLOURS[1], YEAR_COLOURS[5]][-n:]
    return YEAR_COLOURS[-n:]


def finish(
    chart: alt.Chart | alt.LayerChart | alt.VConcatChart, legend_columns: int = 3
) -> alt.TopLevelMixin:
    """Shared look: fonts present on the machine, no outer border, legend at the bottom.

    A legend's title, where it has one, is printed on the line of its keys ('direction — OUT ···
    IN'), and a second legend goes under the first: a title cannot drift away from its keys, and
    the legends stay within the plot's width."""
    return (
        chart.configure(font=FONT)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=10, titleFontSize=10.5, gridColor="#e4e4e4")
        .configure_legend(
            orient="bottom",
            labelFontSize=10,
            titleFontSize=10,
            titleOrient="left",
            titleAnchor="middle",
            titleBaseline="middle",
            titlePadding=6,
            offset=12,
            columns=legend_columns,
            symbolStrokeWidth=2.2,
            symbolSize=360,
            labelLimit=300,
        )
    )


# Two legends (years or weeks, and directions) one under the other, aligned left. Vega's legend
# layout, which Altair's schema does not accept in configure_legend: set on the finished spec.
LEGEND_LAYOUT = {"bottom": {"direction": "vertical", "anchor": "start", "margin": 2}}


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec (validated by Altair) with the shared legend layout."""
    spec = chart.to_dict()
    spec.setdefault("config", {}).setdefault("legend", {})["layout"] = LEGEND_LAYOUT
    return spec
