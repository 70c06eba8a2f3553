"""The figures' shared look: sizes, fonts, rounding, palettes and the final configuration."""

from __future__ import annotations

import altair as alt
import polars as pl

Tables = dict[str, pl.DataFrame]

WIDTH = 460
HEIGHT = 230
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
    """Shared look: fonts present on the machine, no outer border, legend at the bottom."""
    return (
        chart.configure(font=FONT)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=10, titleFontSize=10.5, gridColor="#e4e4e4")
        .configure_legend(
            orient="bottom",
            labelFontSize=10,
            titleFontSize=10,
            columns=legend_columns,
            symbolStrokeWidth=2.2,
            symbolSize=360,
            labelLimit=300,
        )
    )
