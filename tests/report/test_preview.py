"""The report asset's first-page preview: a small PNG from poppler, or a line saying why not."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from weasyprint import HTML

from pipeline.report import preview


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    HTML(string="<h1>Broadband Traffic Report</h1><p style='page-break-after:always'>1</p>"
         "<p>2</p>").write_pdf(path)  # fmt: skip
    return path


def test_first_page_is_a_small_png(pdf: Path) -> None:
    md = preview.first_page_markdown(pdf, dpi=30)
    assert md.startswith("![report.pdf, page 1](data:image/png;base64,")
    png = base64.b64decode(md.split("base64,", 1)[1].rstrip(")"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    # A4 (210 × 297 mm) at 30 dpi ≈ 248 × 351 px: one page, not a strip of two
    assert abs(width - 248) <= 2 and abs(height - 351) <= 2


def test_without_pdftoppm_the_preview_says_so(pdf: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert preview.first_page_markdown(pdf) == "*no preview of report.pdf (pdftoppm unavailable)*"
    assert "pdftoppm failed" in caplog.text
