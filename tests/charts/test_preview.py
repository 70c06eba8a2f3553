"""The figures asset's preview: every SVG inline (data URI) under its caption, drawn smaller
by its root size alone (the drawing itself unchanged)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from pipeline.charts.preview import figures_markdown, scaled_svg

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" class="marks" width="{w}" height="300" '
       'viewBox="0 0 {w} 300"><rect width="{w}" height="300"/><text>{i}</text></svg>')  # fmt: skip


def test_every_figure_is_inline_under_its_caption(tmp_path: Path) -> None:
    figures = {}
    for i in range(1, 6):
        path = tmp_path / f"fig{i:02d}.svg"
        path.write_text(SVG.format(w=600, i=i))
        figures[path.stem] = path
    md = figures_markdown(figures, per_row=2, width_px=400)
    lines = md.splitlines()
    assert lines[0] == "| **Fig 1** | **Fig 2** |" and lines[1] == "|---|---|"
    assert lines[-2] == "| **Fig 5** |   |"  # the last row padded
    pattern = r"!\[Fig (\d+)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)"
    images = re.findall(pattern, md)
    assert [int(n) for n, _ in images] == [1, 2, 3, 4, 5]
    for n, data in images:
        svg = base64.b64decode(data).decode()
        original = figures[f"fig{int(n):02d}"].read_text()
        assert svg == scaled_svg(original, 400)
        assert 'width="400" height="200" viewBox="0 0 600 300"' in svg
        assert svg.split(">", 1)[1] == original.split(">", 1)[1]  # only the root tag differs
    assert all(line.count("|") == 3 for line in lines)


def test_a_narrow_or_unsized_svg_is_left_as_it_is() -> None:
    narrow = SVG.format(w=300, i=1)
    assert scaled_svg(narrow, 400) == narrow
    unsized = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 300"></svg>'
    assert scaled_svg(unsized, 400) == unsized


def test_no_figures_says_so() -> None:
    assert figures_markdown({}) == "*no figures*"
