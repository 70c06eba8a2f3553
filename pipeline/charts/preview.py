"""A preview of the year's figures for the Dagster UI: the SVG files inline in a markdown table."""

from __future__ import annotations

import base64
import re
from pathlib import Path

_ROOT = re.compile(r"<svg\b[^>]*>")
_SIZE = re.compile(r'\s(width|height)="([0-9.]+)(?:px)?"')


def scaled_svg(svg: str, width_px: int) -> str:
    """`svg` drawn `width_px` wide: the root element's width and height scaled together (its
    viewBox keeps the drawing); unchanged if it states no size or is narrower already."""
    root = _ROOT.search(svg)
    size = dict(_SIZE.findall(root.group(0))) if root else {}
    if root is None or set(size) != {"width", "height"} or float(size["width"]) <= width_px:
        return svg
    height = float(size["height"]) * width_px / float(size["width"])
    values = {"width": f"{width_px}", "height": f"{height:.0f}"}
    tag = _SIZE.sub(lambda m: f' {m.group(1)}="{values[m.group(1)]}"', root.group(0))
    return svg[: root.start()] + tag + svg[root.end() :]


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def caption(name: str) -> str:
    """fig01 → Fig 1 (other names as they are)."""
    match = re.fullmatch(r"fig0*(\d+)", name)
    return f"Fig {match.group(1)}" if match else name


def figures_markdown(figures: dict[str, Path], per_row: int = 2, width_px: int = 440) -> str:
    """Markdown table of the figures, `per_row` to a row under a row of their names, each drawn
    `width_px` wide (the SVG as a data URI: the UI renders it; nothing is fetched)."""
    names = sorted(figures)
    if not names:
        return "*no figures*"
    width = min(per_row, len(names))

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells + [" "] * (width - len(cells))) + " |"

    lines = []
    for i in range(0, len(names), per_row):
        group = names[i : i + per_row]
        lines.append(row([f"**{caption(n)}**" for n in group]))
        if i == 0:
            lines.append("|" + "---|" * width)
        svgs = {n: scaled_svg(figures[n].read_text(), width_px) for n in group}
        lines.append(row([f"![{caption(n)}]({svg_data_uri(svgs[n])})" for n in group]))
    return "\n".join(lines)
