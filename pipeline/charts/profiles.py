"""Figures 2, 9 and 10: weekday hourly traffic profiles of selected weeks, one line per week."""

from __future__ import annotations

import altair as alt
import polars as pl

from pipeline.charts.style import (
    DIGITS,
    DIRECTION_DASH,
    HALF_HEIGHT,
    HALF_WIDTH,
    HEIGHT,
    WEEK_COLOURS,
    WIDTH,
    Tables,
    finish,
    year_colours,
)


def _week_label_expr(weekdays: bool) -> pl.Expr:
    """'week of 2024-06-03 (2024 analysis week)', '… (before the pandemic)' or 'week of …';
    with ', 4 of 5 weekdays' appended when inputs of a weekday were missing (`weekdays`: the
    table counts them)."""
    base = pl.format("week of {}", pl.col("week_start").cast(pl.String))
    label = (
        pl.when(pl.col("role") == "analysis")
        .then(pl.format("{} ({} analysis week)", base, pl.col("year")))
        .when(pl.col("role") == "pre_covid")
        .then(pl.format("{} (before the pandemic)", base))
        .otherwise(base)
    )
    if not weekdays:
        return label
    return (
        pl.when(pl.col("weekdays").fill_null(5) < 5)
        .then(pl.format("{}, {} of 5 weekdays", label, pl.col("weekdays")))
        .otherwise(label)
    )


def _profile_rows(tables: Tables, keys: list[tuple[int, str]], year: int) -> pl.DataFrame:
    """Profiles of the weeks (year, role) in `keys`, relative to the latest week's peak OUT, with
    their sampling-error interval; a week none of whose weekdays had complete inputs has NULL
    values (no line, not a fall)."""
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
    bounds = [
        (
            (pl.col(f"mean_bps_{end}") / peak).round(DIGITS)
            if f"mean_bps_{end}" in rows.columns
            else pl.lit(None, dtype=pl.Float64)
        ).alias(f"relative_traffic_{end}")
        for end in ("lo", "hi")
    ]  # sampling-error interval, the peak taken as fixed (docs/UNCERTAINTY.md); not drawn
    return rows.select(
        "week_start",
        "role",
        "direction",
        "hour",
        _week_label_expr("weekdays" in rows.columns).alias("week"),
        (pl.col("mean_bps") / peak).round(DIGITS).alias("relative_traffic"),
        *bounds,
    )


def _profile_chart(
    data: pl.DataFrame,
    y_title: str | list[str],
    zero: bool = True,
    qualitative: bool = False,
    half: bool = False,
) -> alt.TopLevelMixin:
    """One line per week (and direction); qualitative hues for unordered weeks, else sequential.

    `half`: a half-width figure (Figures 9 and 10 side by side), its week legend one column."""
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
                # half width: one column of keys, short solid strokes (no dashes to show)
                legend=alt.Legend(symbolSize=220, rowPadding=1) if half else alt.Undefined,
            ),
            strokeDash=(
                alt.StrokeDash("direction:N", scale=DIRECTION_DASH, title="direction")
                if data["direction"].n_unique() > 1
                else alt.Undefined
            ),
            detail="direction:N",
        )
        .properties(width=HALF_WIDTH if half else WIDTH, height=HALF_HEIGHT if half else HEIGHT)
    )
    return finish(chart, legend_columns=1 if half else 2)


def fig02_data(tables: Tables, year: int) -> pl.DataFrame:
    """Previous analysis week, this year's Fig 2 weeks and this year's analysis week."""
    return _profile_rows(tables, [(year - 1, "analysis"), (year, "fig2"), (year, "analysis")], year)


def fig02_weekday_hourly(tables: Tables, year: int) -> alt.TopLevelMixin:
    data = fig02_data(tables, year)
    return _profile_chart(
        data, ["traffic relative to the", "latest week's peak OUT"], qualitative=True
    )


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
        fig09_data(tables, year),
        ["download (OUT) relative to", "the latest week's peak"],
        half=True,
    )


def fig10_data(tables: Tables, year: int) -> pl.DataFrame:
    """IN profiles of the Fig 9 weeks, on Fig 9's scale (latest week's peak OUT = 1)."""
    return _profile_rows(tables, _five_year_keys(tables, year), year).filter(
        pl.col("direction") == "IN"
    )


def fig10_five_year_in(tables: Tables, year: int) -> alt.TopLevelMixin:
    return _profile_chart(
        fig10_data(tables, year),
        ["upload (IN) relative to", "the latest week's peak OUT"],
        zero=False,
        half=True,
    )
