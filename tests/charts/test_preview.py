"""The figures asset's preview: every SVG inline (data URI) under its name, bytes unchanged."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from pipeline.charts.preview import figures_markdown


def test_every_figure_is_inline_with_its_bytes(tmp_path: Path) -> None:
    figures = {}
    for i in range(1, 5):
        path = tmp_path / f"fig{i:02d}.svg"
        path.write_text(f'<svg xmlns="http://www.w3.org/2000/svg"><text>{i}</text></svg>')
        figures[path.stem] = path
    md = figures_markdown(figures, per_row=3)
    images = re.findall(
        r"\*\*(fig\d+)\*\* !\[\1\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md
    )
    assert [name for name, _ in images] == sorted(figures)
    for name, data in images:
        assert base64.b64decode(data) == figures[name].read_bytes()
    rows = [line for line in md.splitlines() if line.startswith("| **")]
    assert len(rows) == 2 and rows[1].count("**") == 2  # 3 + 1, the last row padded
    assert all(line.count("|") == 4 for line in md.splitlines())


def test_no_figures_says_so() -> None:
    assert figures_markdown({}) == "*no figures*"
