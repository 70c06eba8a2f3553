"""A preview of the year's figures for the Dagster UI: the SVG files inline in a markdown table."""

from __future__ import annotations

import base64
from pathlib import Path


def svg_data_uri(svg: Path) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.read_bytes()).decode("ascii")


def figures_markdown(figures: dict[str, Path], per_row: int = 3) -> str:
    """Markdown table of the figures, `per_row` to a row, each with its name above it (the SVG
    as a data URI: the UI renders it; nothing is fetched)."""
    names = sorted(figures)
    if not names:
        return "*no figures*"
    rows = [names[i : i + per_row] for i in range(0, len(names), per_row)]
    width = min(per_row, len(names))
    lines = ["| " + " | ".join([" "] * width) + " |", "|" + "---|" * width]
    for row in rows:
        cells = [f"**{n}** ![{n}]({svg_data_uri(figures[n])})" for n in row]
        lines.append("| " + " | ".join(cells + [" "] * (width - len(cells))) + " |")
    return "\n".join(lines)
