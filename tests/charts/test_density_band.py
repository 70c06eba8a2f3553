"""Figures 3, 4 and 11: the shaded 95 % band where it is wider than the line (issue 13)."""

from __future__ import annotations

import re

import polars as pl
import pytest

from pipeline.charts import densities
from pipeline.charts.render import chart_to_svg
from pipeline.charts.style import HALF_HEIGHT
from tests.support.tables import make_tables

YEAR = 2024
AREA = re.compile(r'<g class="mark-area role-mark[^"]*"[^>]*>(.*?)</g>', re.S)


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return make_tables(YEAR)


def _line(density: list[float], half: list[float], line: str = "2024 OUT") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "line": [line] * len(density),
            "bin_center_log10": [7.0 + i / 10 for i in range(len(density))],
            "density": density,
            "density_lo": [d - h for d, h in zip(density, half, strict=True)],
            "density_hi": [d + h for d, h in zip(density, half, strict=True)],
        }
    )


def test_band_rows_only_where_wider_than_the_line():
    # wide (> 0.01) at bins 2 and 7 only: each run widened by a bin either side, two segments
    half = [0.001, 0.001, 0.02, 0.001, 0.001, 0.001, 0.001, 0.02, 0.001]
    rows = densities.band_rows(_line([0.1] * 9, half), threshold=0.01)
    assert rows["bin_center_log10"].round(1).to_list() == [7.1, 7.2, 7.3, 7.6, 7.7, 7.8]
    assert rows["segment"].n_unique() == 2
    # a band narrower than the line, or unknown, is not drawn
    assert densities.band_rows(_line([0.1] * 3, [0.004] * 3), threshold=0.01).is_empty()
    unknown = _line([0.1] * 3, [0.0] * 3).with_columns(pl.lit(None, pl.Float64).alias("density_lo"))
    assert densities.band_rows(unknown, threshold=0.0).is_empty()


def test_band_rows_keep_lines_apart():
    two = pl.concat([_line([0.1] * 3, [0.02, 0.0, 0.0]), _line([0.1] * 3, [0.0] * 3, "2023 OUT")])
    rows = densities.band_rows(two, threshold=0.01)
    assert rows["line"].unique().to_list() == ["2024 OUT"]  # 2023's narrow band: nothing
    assert rows["bin_center_log10"].round(1).to_list() == [7.0, 7.1]


def test_nice_top_as_vega():
    """Vega's default y domain for data up to the value (d3 nice, 10 ticks): the threshold of
    'wider than the line' is computed on it."""
    assert [densities.nice_top(v) for v in (0.75, 0.67, 0.98, 12.3)] == [0.8, 0.7, 1.0, 13.0]
    assert densities.nice_top(0.0) == 1.0


def _svg_band_paths(svg: str) -> list[str]:
    return [p for group in AREA.findall(svg) for p in re.findall(r"<path [^>]*>", group)]


def test_band_drawn_in_the_year_colours_under_the_lines(tables):
    svg = chart_to_svg(densities.fig03_broadband_density(tables, YEAR))
    paths = _svg_band_paths(svg)
    assert paths, "the fixture's band is wider than the line near the peaks"
    fills = {re.search(r'fill="(#[0-9a-f]+)"', p).group(1) for p in paths}
    assert fills == {"#e08214", "#08519c"}  # 2023 and 2024, as their lines
    assert all(f'opacity="{densities.BAND_OPACITY}"' in p for p in paths)
    assert svg.index("mark-area") < svg.index("mark-line")  # under the lines
    assert re.search(r">year<", svg) and ">2024<" in svg  # the year legend keeps its keys


def test_no_band_where_it_is_not_wider_than_the_line(tables):
    narrow = dict(tables)
    top = densities.nice_top(tables["daily_usage_density"]["density"].max())
    half = 0.4 * densities.LINE_WIDTH * top / HALF_HEIGHT  # band 0.8 line widths wide
    narrow["daily_usage_density"] = tables["daily_usage_density"].with_columns(
        (pl.col("density") - half).alias("density_lo"),
        (pl.col("density") + half).alias("density_hi"),
    )
    svg = chart_to_svg(densities.fig03_broadband_density(narrow, YEAR))
    assert "mark-area" not in svg
    # …and then the figure is the one drawn without any interval column
    bare = dict(tables)
    bare["daily_usage_density"] = tables["daily_usage_density"].drop("density_lo", "density_hi")
    assert chart_to_svg(densities.fig03_broadband_density(bare, YEAR)) == svg


def test_band_only_around_the_wide_bins(tables):
    """One wide bin of the 2024 OUT curve: one band, over that bin and its two neighbours."""
    df = tables["daily_usage_density"].with_columns(
        pl.col("density").alias("density_lo"), pl.col("density").alias("density_hi")
    )
    wide = (
        (pl.col("year") == YEAR)
        & (pl.col("service") == "broadband")
        & (pl.col("direction") == "OUT")
        & (pl.col("bin_center_log10").round(1) == 9.5)
    )
    df = df.with_columns(
        pl.when(wide).then(pl.col("density") * 1.2).otherwise("density_hi").alias("density_hi")
    )
    data = densities.fig03_data({"daily_usage_density": df}, YEAR)
    plot = data.with_columns(pl.format("{} {}", "year", "direction").alias("line"))
    top = densities.pair_top({"daily_usage_density": df}, YEAR)
    rows = densities.band_rows(plot, densities.LINE_WIDTH * top / HALF_HEIGHT)
    assert rows["bin_center_log10"].round(1).to_list() == [9.4, 9.5, 9.6]
    svg = chart_to_svg(densities.fig03_broadband_density({"daily_usage_density": df}, YEAR))
    assert len(_svg_band_paths(svg)) == 1


def test_band_figures_are_byte_identical_across_builds(tables):
    for chart in (densities.fig03_broadband_density, densities.fig11_broadband_density_6y):
        first, second = (chart_to_svg(chart(tables, YEAR)) for _ in range(2))
        assert first == second and "mark-area" in first


def test_figure_csv_carries_the_band(tables):
    data = densities.fig11_data(tables, YEAR)
    assert data.columns == ["year", "direction", "bin_center_log10", "density", "density_lo",
                            "density_hi"]  # fmt: skip
    assert (data["density_lo"] <= data["density"]).all()


def test_fig11_shades_the_latest_year_only(tables):
    """Six years' bands would hide each other: Figure 11 shades the report year's curves."""
    from pipeline.charts.style import year_colours

    svg = chart_to_svg(densities.fig11_broadband_density_6y(tables, YEAR))
    paths = _svg_band_paths(svg)
    assert len(paths) >= 2  # the OUT and the IN panel
    fills = {re.search(r'fill="(#[0-9a-f]+)"', p).group(1) for p in paths}
    assert fills == {year_colours(6)[-1]}


def test_fig03_and_fig04_share_one_y_scale(tables):
    """Printed side by side: the same y top (the fixture's broadband band reaches higher than the
    mobile curves), so the plots line up and their peaks compare."""
    svgs = [chart_to_svg(c(tables, YEAR)) for c in (densities.fig03_broadband_density,
                                                     densities.fig04_mobile_density)]  # fmt: skip
    heights = {re.search(r'<svg [^>]*height="(\d+)"', svg).group(1) for svg in svgs}
    assert len(heights) == 1
    top = densities.pair_top(tables, YEAR)
    assert all(f">{top:g}<" in svg for svg in svgs)  # the top tick, labelled in both
