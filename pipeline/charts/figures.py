"""Figures 1–11: for each, a `figNN_data` function (the exact numbers drawn) and a chart function.

Every chart function takes the aggregate tables and the report year and returns an Altair chart;
`FIGURES` lists them in order with the stem used for the SVG and CSV files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import altair as alt
import numpy as np
import polars as pl

from pipeline.charts import axes
from pipeline.config import load_params

Tables = dict[str, pl.DataFrame]
WIDTH = 460
HEIGHT = 230
FONT = "DejaVu Sans"
DIGITS = 4  # rounding of plotted values: keeps SVG and CSV small and byte-stable

# OUT solid, IN dotted with dots long enough to read at print size.
DIRECTION_DASH = alt.Scale(domain=["OUT", "IN"], range=[[1, 0], [3, 2.5]])
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
# Sequential (plasma-like, light orange → deep indigo): later years are darker.
YEAR_COLOURS = ["#f9a52c", "#e8694a", "#c33d80", "#8f0da4", "#5402a3", "#13078a"]  # oldest → newest
# Qualitative: Fig 2's weeks are unordered comparisons, so each gets its own hue.
WEEK_COLOURS = ["#8c8c8c", "#2ca02c", "#e07b00", "#08519c"]


def year_colours(n: int) -> list[str]:
    """n distinguishable colours ordered old → new (two-series comparisons: orange vs dark blue)."""
    if n == 2:
        return ["#e08214", "#08519c"]
    if n > len(YEAR_COLOURS):
        raise ValueError(f"at most {len(YEAR_COLOURS)} periods per chart, got {n}")
    if n <= 3:
        return [YEAR_COLOURS[0], YEAR_COLOURS[3], YEAR_COLOURS[5]][-n:]
    return YEAR_COLOURS[-n:]


def _finish(
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


def _week_label_expr() -> pl.Expr:
    """'week of 2024-06-03 (2024 analysis week)', '… (before the pandemic)' or 'week of …'."""
    base = pl.format("week of {}", pl.col("week_start").cast(pl.String))
    return (
        pl.when(pl.col("role") == "analysis")
        .then(pl.format("{} ({} analysis week)", base, pl.col("year")))
        .when(pl.col("role") == "pre_covid")
        .then(pl.format("{} (before the pandemic)", base))
        .otherwise(base)
    )


# ---------------------------------------------------------------- Figure 1: monthly traffic
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
    labs = [lab for lab, _, _ in FIG1_LINES.values()]
    y_m = dt.date.fromisoformat(norm_month + "-01").strftime("%b %Y")
    chart = (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("month_start:T", title="month", axis=alt.Axis(format="%Y", tickCount="year")),
            y=alt.Y(
                "relative_traffic:Q", title=f"traffic relative to {y_m} OUT of the same service"
            ),
            color=alt.Color(
                "line:N",
                title=None,
                scale=alt.Scale(domain=labs, range=[c for _, c, _ in FIG1_LINES.values()]),
            ),
            strokeWidth=alt.StrokeWidth(
                "line:N",
                title=None,
                scale=alt.Scale(domain=labs, range=[w for _, _, w in FIG1_LINES.values()]),
            ),
            # Same field as colour and width, so the one legend shows each line's dash too.
            strokeDash=alt.StrokeDash(
                "line:N",
                title=None,
                scale=alt.Scale(
                    domain=labs,
                    range=[
                        DIRECTION_DASH.range[DIRECTION_DASH.domain.index(d)] for _, d in FIG1_LINES
                    ],
                ),
            ),
            detail="line:N",
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return _finish(chart, legend_columns=2)


# ---------------------------------------------------------------- weekday hourly profiles
def _profile_rows(tables: Tables, keys: list[tuple[int, str]], year: int) -> pl.DataFrame:
    """Profiles of the weeks (year, role) in `keys`, relative to the latest week's peak OUT."""
    df = tables["weekday_hourly_profile"]
    if df.schema["week_start"] == pl.String:
        df = df.with_columns(pl.col("week_start").str.to_date())
    key_df = pl.DataFrame(keys, schema=["year", "role"], orient="row")
    rows = df.join(key_df, on=["year", "role"]).sort("week_start", "direction", "hour")
    if rows.is_empty():
        raise ValueError(
            f"weekday_hourly_profile has no rows for weeks {keys} (report year {year})"
        )
    latest = rows["week_start"].max()
    peak = rows.filter((pl.col("week_start") == latest) & (pl.col("direction") == "OUT"))[
        "mean_bps"
    ].max()
    return rows.select(
        "week_start",
        "role",
        "direction",
        "hour",
        _week_label_expr().alias("week"),
        (pl.col("mean_bps") / peak).round(DIGITS).alias("relative_traffic"),
    )


def _profile_chart(
    data: pl.DataFrame, y_title: str, zero: bool = True, qualitative: bool = False
) -> alt.TopLevelMixin:
    """One line per week (and direction); qualitative hues for unordered weeks, else sequential."""
    weeks = data.sort("week_start")["week"].unique(maintain_order=True).to_list()
    if qualitative and len(weeks) > len(WEEK_COLOURS):
        raise ValueError(f"at most {len(WEEK_COLOURS)} weeks per chart, got {len(weeks)}")
    colours = WEEK_COLOURS[: len(weeks)] if qualitative else year_colours(len(weeks))
    plot = data.with_columns(pl.col("week_start").cast(pl.String))
    chart = (
        alt.Chart(plot)
        .mark_line(strokeWidth=1.8)
        .encode(
            x=alt.X(
                "hour:Q",
                title="hour of day (local time, Mon–Fri mean)",
                scale=alt.Scale(domain=[0, 23], nice=False),
                axis=alt.Axis(values=list(range(0, 24, 3))),
            ),
            y=alt.Y("relative_traffic:Q", title=y_title, scale=alt.Scale(zero=zero)),
            color=alt.Color(
                "week:N",
                title=None,
                sort=weeks,
                scale=alt.Scale(domain=weeks, range=colours),
            ),
            strokeDash=(
                alt.StrokeDash("direction:N", scale=DIRECTION_DASH, title="direction")
                if data["direction"].n_unique() > 1
                else alt.Undefined
            ),
            detail="direction:N",
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return _finish(chart, legend_columns=2)


def fig02_data(tables: Tables, year: int) -> pl.DataFrame:
    """Previous analysis week, this year's Fig 2 weeks and this year's analysis week."""
    return _profile_rows(tables, [(year - 1, "analysis"), (year, "fig2"), (year, "analysis")], year)


def fig02_weekday_hourly(tables: Tables, year: int) -> alt.TopLevelMixin:
    data = fig02_data(tables, year)
    return _profile_chart(data, "traffic relative to the latest week's peak OUT", qualitative=True)


def _five_year_keys(tables: Tables, year: int) -> list[tuple[int, str]]:
    pre = (
        tables["weekday_hourly_profile"]
        .filter(pl.col("role") == "pre_covid")
        .select("year")
        .unique()
        .sort("year")["year"]
        .to_list()
    )
    return [(y, "pre_covid") for y in pre if y <= year] + [
        (y, "analysis") for y in range(year - 4, year + 1)
    ]


def fig09_data(tables: Tables, year: int) -> pl.DataFrame:
    """OUT profiles of the pre-COVID week and the analysis weeks Y−4..Y."""
    return _profile_rows(tables, _five_year_keys(tables, year), year).filter(
        pl.col("direction") == "OUT"
    )


def fig09_five_year_out(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _profile_chart(
        fig09_data(tables, year), "download (OUT) relative to the latest week's peak"
    )


def fig10_data(tables: Tables, year: int) -> pl.DataFrame:
    """IN profiles of the Fig 9 weeks, on Fig 9's scale (latest week's peak OUT = 1)."""
    return _profile_rows(tables, _five_year_keys(tables, year), year).filter(
        pl.col("direction") == "IN"
    )


def fig10_five_year_in(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _profile_chart(
        fig10_data(tables, year), "upload (IN) relative to the latest week's peak OUT", zero=False
    )


# ---------------------------------------------------------------- density of daily usage
def _density_data(tables: Tables, service: str, years: list[int]) -> pl.DataFrame:
    df = tables["daily_usage_density"].filter(
        (pl.col("service") == service) & pl.col("year").is_in(years)
    )
    if df.is_empty():
        raise ValueError(f"daily_usage_density has no {service} rows for years {years}")
    return df.select("year", "direction", "bin_center_log10", pl.col("density").round(DIGITS)).sort(
        "year", "direction", "bin_center_log10"
    )


def _density_layer(plot: pl.DataFrame, x_title: str, height: int, dashed: bool) -> alt.Chart:
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
        .properties(width=WIDTH, height=height)
    )


def _density_chart(data: pl.DataFrame, service_word: str, split: bool = False) -> alt.TopLevelMixin:
    """Densities per year: IN dotted over OUT solid, or (split) an OUT panel above an IN panel."""
    plot = data.with_columns(
        pl.format("{} {}", pl.col("year"), pl.col("direction")).alias("line"),
        pl.col("year").cast(pl.String).alias("year_label"),
    )
    x_title = f"{service_word} user's daily traffic volume (bytes)"
    if not split:
        return _finish(_density_layer(plot, x_title, HEIGHT, dashed=True))
    panels = [
        _density_layer(
            plot.filter(pl.col("direction") == d), f"{x_title}, {word}", 150, dashed=False
        ).properties(title=word)
        for d, word in (("OUT", "download (OUT)"), ("IN", "upload (IN)"))
    ]
    return _finish(alt.vconcat(*panels, spacing=12).resolve_scale(color="shared"), 6)


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


# ---------------------------------------------------------------- IN vs OUT scatter
SCATTER_DIGITS = 2  # 0.01 decade: finer than a pixel at this size


def _scatter_data(tables: Tables, service: str, year: int) -> pl.DataFrame:
    """log10 daily OUT and IN bytes per sampled user; users with a zero direction are dropped."""
    df = tables["scatter_sample"].filter((pl.col("service") == service) & (pl.col("year") == year))
    df = df.filter((pl.col("daily_in_bytes") > 0) & (pl.col("daily_out_bytes") > 0))
    out = np.round(np.log10(df["daily_out_bytes"].to_numpy()), SCATTER_DIGITS)
    inn = np.round(np.log10(df["daily_in_bytes"].to_numpy()), SCATTER_DIGITS)
    return pl.DataFrame({"log10_daily_out_bytes": out, "log10_daily_in_bytes": inn}).sort(
        "log10_daily_out_bytes", "log10_daily_in_bytes"
    )


def _scatter_chart(data: pl.DataFrame, service_word: str) -> alt.TopLevelMixin:
    lo, hi = axes.LOG10_MIN, axes.LOG10_MAX
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
        .encode(
            x=alt.X(
                "log10_daily_out_bytes:Q",
                scale=axes.log_bytes_scale(),
                axis=axes.log_bytes_axis(
                    f"{service_word} user's daily download, OUT (bytes)", two_lines=True
                ),
            ),
            y=alt.Y(
                "log10_daily_in_bytes:Q",
                scale=axes.log_bytes_scale(),
                axis=axes.log_bytes_axis(f"{service_word} user's daily upload, IN (bytes)"),
            ),
        )
    )
    diagonal = (
        alt.Chart(pl.DataFrame({"x": [lo, hi], "y": [lo, hi]}))
        .mark_line(color="#888888", strokeDash=[4, 3], strokeWidth=1)
        .encode(x="x:Q", y="y:Q")
    )
    return _finish(alt.layer(points, diagonal).properties(width=420, height=360))


def fig05_data(tables: Tables, year: int) -> pl.DataFrame:
    return _scatter_data(tables, "broadband", year)


def fig05_broadband_scatter(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _scatter_chart(fig05_data(tables, year), "broadband")


def fig06_data(tables: Tables, year: int) -> pl.DataFrame:
    return _scatter_data(tables, "mobile", year)


def fig06_mobile_scatter(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _scatter_chart(fig06_data(tables, year), "mobile")


# ---------------------------------------------------------------- port classes over the week
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
    ).sort("year", "port_class", "hour_of_week")


def _port_week_chart(data: pl.DataFrame) -> alt.TopLevelMixin:
    series = [s for s in PORT_CLASS_LABELS.values() if s in set(data["series"].to_list())]
    panels = []
    for y in sorted(data["year"].unique().to_list()):
        panel = (
            alt.Chart(data.filter(pl.col("year") == y), title=str(y))
            .mark_line(strokeWidth=1.3)
            .encode(
                x=alt.X(
                    "hour_of_week:Q",
                    scale=alt.Scale(domain=[0, 168], nice=False),
                    axis=axes.weekday_axis(""),
                ),
                y=alt.Y(
                    "normalised:Q",
                    title="relative to the panel's peak total",
                    scale=alt.Scale(domain=[0, 1.05], nice=False),
                ),
                color=alt.Color(
                    "series:N",
                    title=None,
                    sort=series,
                    scale=alt.Scale(domain=series, range=[PORT_CLASS_COLOURS[s] for s in series]),
                ),
            )
            .properties(width=WIDTH, height=150)
        )
        panels.append(panel)
    return _finish(alt.vconcat(*panels, spacing=14).resolve_scale(color="shared"))


def fig07_data(tables: Tables, year: int) -> pl.DataFrame:
    return _port_week_data(tables, "broadband", year)


def fig07_broadband_port_week(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _port_week_chart(fig07_data(tables, year))


def fig08_data(tables: Tables, year: int) -> pl.DataFrame:
    return _port_week_data(tables, "mobile", year)


def fig08_mobile_port_week(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _port_week_chart(fig08_data(tables, year))


# ---------------------------------------------------------------- registry
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
    FigureSpec(1, "monthly_traffic", fig01_data, fig01_monthly_traffic),
    FigureSpec(2, "weekday_hourly_traffic", fig02_data, fig02_weekday_hourly),
    FigureSpec(3, "broadband_daily_usage_density", fig03_data, fig03_broadband_density),
    FigureSpec(4, "mobile_daily_usage_density", fig04_data, fig04_mobile_density),
    FigureSpec(5, "broadband_in_vs_out", fig05_data, fig05_broadband_scatter),
    FigureSpec(6, "mobile_in_vs_out", fig06_data, fig06_mobile_scatter),
    FigureSpec(7, "broadband_port_classes_week", fig07_data, fig07_broadband_port_week),
    FigureSpec(8, "mobile_port_classes_week", fig08_data, fig08_mobile_port_week),
    FigureSpec(9, "weekday_hourly_out_five_years", fig09_data, fig09_five_year_out),
    FigureSpec(10, "weekday_hourly_in_five_years", fig10_data, fig10_five_year_in),
    FigureSpec(
        11, "broadband_daily_usage_density_six_years", fig11_data, fig11_broadband_density_6y
    ),
)
