"""Figures 1–11 render to SVG; log axes carry '10⁹ (1 GB)'-style labels; output is deterministic."""

from __future__ import annotations

import re

import polars as pl
import pytest

from pipeline.charts import axes
from pipeline.charts.figures import FIGURES
from pipeline.charts.profiles import fig02_data, fig09_data, fig10_data
from pipeline.charts.render import build_charts, chart_to_svg, compact_svg, write_svg
from pipeline.charts.scatters import fig05_data
from tests.support.tables import make_tables

YEAR = 2024


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return make_tables(YEAR)


@pytest.fixture(scope="module")
def svgs(tables, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("figures")
    paths = build_charts(tables, YEAR, out)
    return {k: p.read_text() for k, p in paths.items()}


def test_tick_labels_worked_out():
    assert axes.bytes_tick_label(4) == "10⁴ (10 KB)"
    assert axes.bytes_tick_label(6) == "10⁶ (1 MB)"
    assert axes.bytes_tick_label(11) == "10¹¹ (100 GB)"


def test_every_figure_renders_to_svg(svgs):
    assert sorted(svgs) == [f"fig{n:02d}" for n in range(1, 12)]
    for key, svg in svgs.items():
        assert svg.startswith("<svg"), key
        assert svg.rstrip().endswith("</svg>"), key
        assert len(svg) < 400_000, f"{key} is {len(svg)} bytes"


@pytest.mark.parametrize("key", ["fig03", "fig04", "fig11"])
def test_density_axis_labels(svgs, key):
    text = svgs[key]
    # two-line labels: the power and the unit are separate text runs
    for part in ("10⁴", "(10 KB)", "10⁶", "(1 MB)", "10⁹", "(1 GB)", "10¹¹", "(100 GB)"):
        assert part in text, (key, part)
    assert "probability density" in text


@pytest.mark.parametrize("key", ["fig05", "fig06"])
def test_scatter_axis_labels_and_size(svgs, key):
    text = svgs[key]
    assert "10⁹ (1 GB)" in text  # y axis, one line, a real superscript
    assert "10⁶ (1 MB)" in text
    assert len(text) < 250_000


@pytest.mark.slow  # renders every figure twice
def test_chart_svg_is_deterministic(tables):
    for spec in FIGURES:
        a = chart_to_svg(spec.chart(tables, YEAR))
        b = chart_to_svg(spec.chart(tables, YEAR))
        assert a == b, spec.key


def test_write_svg_atomic_leaves_no_temp(tables, tmp_path):
    path = write_svg(FIGURES[0].chart(tables, YEAR), tmp_path / "x" / "fig01.svg")
    assert path.read_text().startswith("<svg")
    assert [p.name for p in path.parent.iterdir()] == ["fig01.svg"]


def test_compact_svg_rounds_and_groups():
    raw = (
        '<g><path aria-label="a: 1" role="graphics-symbol" transform="translate(1.23456,2.5)" '
        'd="M-1,-1h2v2h-2Z" fill="#08519c" stroke-width="0" opacity="0.35"/>'
        '<path aria-label="a: 2" transform="translate(10,20.999)" '
        'd="M-1,-1h2v2h-2Z" fill="#08519c" stroke-width="0" opacity="0.35"/></g>'
    )
    assert compact_svg(raw) == (
        '<g><g fill="#08519c" fill-opacity="0.35"><path d="M0.23,1.5h2v2h-2Z"/>'
        '<path d="M9,20h2v2h-2Z"/></g></g>'
    )


def test_scatter_drops_zero_and_uses_log10(tables):
    data = fig05_data(tables, YEAR)
    # the fixture gives 3 broadband users zero IN bytes: they cannot sit on a log axis
    assert data.height == 5000 - 3
    # values are log10 bytes with 2 decimals: a 1 GB user sits at 9.0, not at 1e9
    assert 6.0 < data["log10_daily_out_bytes"].median() < 12.0
    hundredths = data["log10_daily_out_bytes"] * 100
    assert (hundredths - hundredths.round(0)).abs().max() < 1e-6


def _week_starts(data: pl.DataFrame) -> list[str]:
    return sorted(data["week_start"].cast(pl.String).unique().to_list())


def test_profiles_are_normalised_to_latest_week_peak_out(tables):
    fig2 = fig02_data(tables, YEAR)
    assert _week_starts(fig2) == ["2023-05-29", "2023-10-02", "2024-02-05", "2024-06-03"]
    latest_out = fig2.filter(
        (pl.col("week_start").cast(pl.String) == "2024-06-03") & (pl.col("direction") == "OUT")
    )
    assert latest_out["relative_traffic"].max() == 1.0
    fig9 = fig09_data(tables, YEAR)
    assert _week_starts(fig9) == [
        "2020-02-17",
        "2020-06-01",
        "2021-05-31",
        "2022-05-30",
        "2023-05-29",
        "2024-06-03",
    ]
    assert set(fig9["direction"].to_list()) == {"OUT"}
    fig10 = fig10_data(tables, YEAR)
    assert set(fig10["direction"].to_list()) == {"IN"}
    assert fig10["relative_traffic"].max() < 0.2  # same scale as Fig 9: IN is far below peak OUT


def test_weekday_axis_labels(svgs):
    for day in ("Mon", "Wed", "Sun"):
        assert re.search(rf">{day}<", svgs["fig07"]), day
    assert "TCP dynamic (&gt;= 1024)" in svgs["fig07"]
    assert "TCP dynamic" not in svgs["fig08"]


def test_fig02_weeks_have_distinct_hues_and_named_legend(svgs):
    from pipeline.charts.style import WEEK_COLOURS

    text = svgs["fig02"]
    assert "week of 2023-05-29 (2023 analysis week)" in text
    assert "week of 2024-06-03 (2024 analysis week)" in text
    assert "week of 2023-10-02" in text
    for colour in WEEK_COLOURS:
        assert colour in text, colour
    assert len(set(WEEK_COLOURS)) == 4


def test_fig11_year_colours_apart_in_colour_and_greyscale(svgs):
    from pipeline.charts.style import year_colours

    for n in (2, 3, 5, 6):
        colours = year_colours(n)
        assert len(set(colours)) == n
        lum = [0.2126 * int(c[1:3], 16) + 0.7152 * int(c[3:5], 16) + 0.0722 * int(c[5:7], 16)
               for c in colours]  # fmt: skip
        # neighbouring years stay apart when printed in greyscale; the newest year is the darkest
        assert all(abs(a - b) >= 25 for a, b in zip(lum[:-1], lum[1:], strict=True)), (n, lum)
        assert lum[-1] == min(lum)
    colours = year_colours(6)
    assert all(c in svgs["fig11"] for c in colours)
    assert "download (OUT)" in svgs["fig11"] and "upload (IN)" in svgs["fig11"]


def test_figures_are_drawn_at_the_size_they_are_printed(svgs):
    """The report prints an SVG at its own size, so its fonts are the printed ones: a full-width
    figure fits the text block, a half-width one (Figures 3|4, 5|6, 9|10 side by side) half of it,
    and no text is smaller than 9 px (6.75 pt)."""
    from pipeline.charts.style import HALF_FIGURE, HALF_FIGURES, TEXT_WIDTH

    for key, svg in svgs.items():
        width, height = (
            float(v)
            for v in re.search(r'<svg[^>]* width="([\d.]+)" height="([\d.]+)"', svg).groups()
        )
        limit = HALF_FIGURE if int(key[3:]) in HALF_FIGURES else TEXT_WIDTH
        assert width <= limit, (key, width, limit)
        assert height <= 446, (key, height)  # 118 mm, the figures' max-height in report.css
        sizes = {float(v) for v in re.findall(r'font-size="([\d.]+)px"', svg)}
        assert sizes and min(sizes) >= 9, (key, sizes)


@pytest.mark.parametrize("key", ["fig03", "fig05", "fig11"])
def test_half_width_log_axis_units_at_kb_mb_gb_and_ends(svgs, key):
    """About 32 px a decade: every decade keeps its power, units only three decades apart."""
    assert [e for e in axes.bytes_tick_values() if axes.shows_unit(e)] == [4, 6, 9, 11]
    text = svgs[key]
    for unit in ("(10 KB)", "(1 MB)", "(1 GB)", "(100 GB)"):
        assert unit in text, (key, unit)
    for unit in ("(100 KB)", "(10 MB)", "(100 MB)", "(10 GB)"):
        assert f">{unit}<" not in text, (key, unit)


def test_multiline_labels_anchor_their_first_line(svgs):
    """'10⁹' centred on its tick above '(1 GB)' (WeasyPrint centres an unanchored first line on
    the whole label)."""
    assert '<tspan x="0">10⁹</tspan>' in svgs["fig03"]
    assert not re.search(r"<text [^>]*><tspan>", "".join(svgs.values()))


def test_legend_titles_sit_beside_their_keys(svgs):
    """Fig 2's 'direction' (and Fig 3's 'year', 'direction') on the line of their keys, the second
    legend under the first, within the figure."""
    from pipeline.charts.figures import FIGURES
    from pipeline.charts.style import LEGEND_LAYOUT, to_spec

    assert LEGEND_LAYOUT["bottom"]["direction"] == "vertical"
    spec = to_spec(FIGURES[1].chart(make_tables(YEAR), YEAR))
    assert spec["config"]["legend"]["titleOrient"] == "left"
    assert spec["config"]["legend"]["layout"] == LEGEND_LAYOUT
    assert ">direction<" in svgs["fig02"]
