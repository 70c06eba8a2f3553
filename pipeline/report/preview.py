"""The report's first page as a small PNG, for the Dagster UI (poppler's pdftoppm)."""

from __future__ import annotations

import base64
import logging
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def first_page_png(pdf: Path, dpi: int = 40) -> bytes | None:
    """Page 1 of `pdf` rendered at `dpi` (40: about 330 × 470 px for A4), or None if pdftoppm
    is missing or fails (the preview is a convenience: the build goes on)."""
    with tempfile.TemporaryDirectory(prefix="bbtr-preview-") as tmp:
        out = Path(tmp) / "page"
        cmd = ["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile"]
        try:
            subprocess.run([*cmd, str(pdf), str(out)], capture_output=True, check=True)
        except (OSError, subprocess.CalledProcessError) as err:
            log.warning("no preview of %s: pdftoppm failed (%s)", pdf.name, err)
            return None
        return out.with_suffix(".png").read_bytes()


def first_page_markdown(pdf: Path, dpi: int = 40) -> str:
    """Markdown showing page 1 of `pdf` inline (a PNG data URI), or a line saying why not."""
    png = first_page_png(pdf, dpi)
    if png is None:
        return f"*no preview of {pdf.name} (pdftoppm unavailable)*"
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f"![{pdf.name}, page 1]({uri})"
