"""SVG export of the figures: atomic, deterministic writes via vl-convert (no network)."""

from __future__ import annotations

import re
from pathlib import Path

import altair as alt
import polars as pl
import vl_convert

from pipeline.atomic import write_bytes_atomic
from pipeline.charts.figures import FIGURES
from pipeline.charts.style import to_spec

_ARIA_ATTR = re.compile(r' (?:aria-label|aria-roledescription|role)="[^"]*"')
_ATTR_VALUE = re.compile(r'="([^"]*)"')
_LONG_DECIMAL = re.compile(r"-?\d+\.\d{3,}")


def _round_decimal(match: re.Match[str]) -> str:
    return _fmt(float(match.group(0)))


# A run of identical small squares (scatter points): written as one group carrying fill and opacity.
_SQUARE = (
    r'<path transform="translate\(([-\d.]+),([-\d.]+)\)" d="M-1,-1h2v2h-2Z" fill="(#[0-9a-f]+)" '
    r'stroke-width="0" opacity="([\d.]+)"/>'
)
_SQUARE_RUN = re.compile(
    _SQUARE + r'(?:<path transform="translate\([-\d.]+,[-\d.]+\)" '
    r'd="M-1,-1h2v2h-2Z" fill="\3" stroke-width="0" opacity="\4"/>)*'
)
_TRANSLATE = re.compile(r"translate\(([-\d.]+),([-\d.]+)\)")


def _group_squares(match: re.Match[str]) -> str:
    fill, opacity = match.group(3), match.group(4)
    squares = "".join(
        f'<path d="M{_fmt(float(x) - 1)},{_fmt(float(y) - 1)}h2v2h-2Z"/>'
        for x, y in _TRANSLATE.findall(match.group(0))
    )
    return f'<g fill="{fill}" fill-opacity="{opacity}">{squares}</g>'


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# A multi-line label: its first line as an explicit text chunk at x=0, like the lines after it.
# The same in SVG; WeasyPrint otherwise centres the first line on the whole label's width, so a
# '10⁹' drifted left of its tick above a centred '(1 GB)'.
_FIRST_LINE = re.compile(r"(<text [^>]*>)<tspan>")


def compact_svg(svg: str) -> str:
    """Drop per-mark aria labels, round attribute numbers to 2 decimals, group scatter points;
    anchor the first line of a multi-line label on its own."""
    svg = _ARIA_ATTR.sub("", svg)
    svg = _FIRST_LINE.sub(r'\1<tspan x="0">', svg)
    svg = _ATTR_VALUE.sub(lambda m: '="' + _LONG_DECIMAL.sub(_round_decimal, m.group(1)) + '"', svg)
    svg = _SQUARE_RUN.sub(_group_squares, svg)
    return _renumber_clips(svg)


_CLIP_ID = re.compile(r"\bclip(\d+)\b")


def _renumber_clips(svg: str) -> str:
    """vl-convert numbers clip paths with a process-wide counter; restart at 1 in each SVG."""
    numbers: dict[str, int] = {}
    for n in _CLIP_ID.findall(svg):
        numbers.setdefault(n, len(numbers) + 1)
    return _CLIP_ID.sub(lambda m: f"clip{numbers[m.group(1)]}", svg)


def chart_to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as compact SVG text; the same chart always gives the same bytes."""
    return compact_svg(vl_convert.vegalite_to_svg(to_spec(chart)))


def write_svg(chart: alt.TopLevelMixin, path: Path) -> Path:
    """Render `chart` to SVG at `path` atomically."""
    return write_bytes_atomic(Path(path), chart_to_svg(chart).encode("utf-8"))


def build_charts(tables: dict[str, pl.DataFrame], year: int, out_dir: Path) -> dict[str, Path]:
    """Write figures/figNN.svg for Figures 1–11 under out_dir; returns {"fig01": path, …}."""
    out_dir = Path(out_dir)
    return {
        spec.key: write_svg(spec.chart(tables, year), out_dir / f"{spec.key}.svg")
        for spec in FIGURES
    }
