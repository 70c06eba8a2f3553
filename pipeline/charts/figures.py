"""The list of Figures 1–11: for each, its number, file stem, data function and chart function.

Each figure family lives in its own module — `monthly` (1), `profiles` (2, 9, 10), `densities`
(3, 4, 11), `scatters` (5, 6), `port_week` (7, 8) — with the shared look in `style`. A data
function gives the exact numbers drawn (also published as CSV); a chart function takes the
aggregate tables and the report year and returns an Altair chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import altair as alt
import polars as pl

from pipeline.charts import densities, monthly, port_week, profiles, scatters
from pipeline.charts.style import Tables


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its number, file stem, data function and chart function."""

    number: int
    stem: str  # e.g. "monthly_traffic" → figures/fig01.svg, data/figure_01_monthly_traffic.csv
    data: Callable[[Tables, int], pl.DataFrame]
    chart: Callable[[Tables, int], alt.TopLevelMixin]

    @property
    def key(self) -> str:
        return f"fig{self.number:02d}"

    @property
    def csv_name(self) -> str:
        return f"figure_{self.number:02d}_{self.stem}.csv"


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(1, "monthly_traffic", monthly.fig01_data, monthly.fig01_monthly_traffic),
    FigureSpec(2, "weekday_hourly_traffic", profiles.fig02_data, profiles.fig02_weekday_hourly),
    FigureSpec(3, "broadband_daily_usage_density", densities.fig03_data,
               densities.fig03_broadband_density),
    FigureSpec(4, "mobile_daily_usage_density", densities.fig04_data,
               densities.fig04_mobile_density),
    FigureSpec(5, "broadband_in_vs_out", scatters.fig05_data, scatters.fig05_broadband_scatter),
    FigureSpec(6, "mobile_in_vs_out", scatters.fig06_data, scatters.fig06_mobile_scatter),
    FigureSpec(7, "broadband_port_classes_week", port_week.fig07_data,
               port_week.fig07_broadband_port_week),
    FigureSpec(8, "mobile_port_classes_week", port_week.fig08_data,
               port_week.fig08_mobile_port_week),
    FigureSpec(9, "weekday_hourly_out_five_years", profiles.fig09_data,
               profiles.fig09_five_year_out),
    FigureSpec(10, "weekday_hourly_in_five_years", profiles.fig10_data,
               profiles.fig10_five_year_in),
    FigureSpec(11, "broadband_daily_usage_density_six_years", densities.fig11_data,
               densities.fig11_broadband_density_6y),
)  # fmt: skip
