"""Appendix A shows duplicates, out-of-window records, the set-aside threshold with the worst
exporter-day, the wire counters and the exporters on the registry's default sampling rate."""

from __future__ import annotations

import html
import re

import polars as pl

from pipeline.report.facts import quality_facts
from pipeline.report.render import render_html
from tests.support.tables import make_context, make_tables

YEAR = 2024
FIGURES = {f"fig{n:02d}": f"figures/fig{n:02d}.svg" for n in range(1, 12)}
TRUST_ROWS = [
    ("records_in", "all", 1000.0),
    ("reports_with_wire_counters", "all", 24.0),
    ("duplicate_files", "all", 3.0),
    ("duplicate_datagrams", "all", 12.0),
    ("quarantined:flow time before window", "all", 41.0),
    ("quarantined:flow end before start", "all", 2.0),
    ("records_outside_weeks", "all", 123456.0),
    ("max_quarantined_share_pct", "all", 5.0),
    ("worst_quarantined_share_pct", "exporter_day:bb-pppoe-1/2024-06-05", 0.4321),
    ("template_redefinitions", "all", 4.0),
    ("records_second_pass", "all", 1500.0),
    ("records_default_sampling", "all", 8000.0),
    ("invalid_sampling_announcements", "all", 1.0),
    ("trailing_bytes", "all", 36.0),
    ("records_estimated_unsplittable", "all", 250.0),
    ("records_default_sampling", "exporter:bb-pppoe-1", 0.0),
    ("records_default_sampling", "exporter:mobile-gw-7", 8000.0),
]


def _tables_with(rows) -> dict[str, pl.DataFrame]:
    tables = make_tables(YEAR)
    dq = pl.DataFrame(
        {"year": [YEAR] * len(rows), "item": [r[0] for r in rows],
         "scope": [r[1] for r in rows], "value": [r[2] for r in rows]},
        schema=tables["data_quality"].schema,
    )  # fmt: skip
    return tables | {"data_quality": dq}


def _appendix_text(tables) -> str:
    page = render_html(YEAR, tables, FIGURES, make_context(YEAR))
    appendix = page[page.index('id="appA"') : page.index('id="appB"')]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", appendix)).split())


def test_quality_facts_from_the_data_quality_rows():
    f = quality_facts(_tables_with(TRUST_ROWS), YEAR)
    assert (f["dq_duplicate_files"], f["dq_duplicate_datagrams"]) == (3.0, 12.0)
    assert f["dq_out_of_window"] == {
        "flow end before start": 2.0, "flow time before window": 41.0,
        "flow time after window": 0.0,
    }  # fmt: skip
    assert (f["dq_worst_exporter"], f["dq_worst_day"]) == ("bb-pppoe-1", "2024-06-05")
    assert f["dq_worst_share_pct"] == 0.4321 and f["dq_threshold_pct"] == 5.0
    assert f["dq_default_rate_exporters"] == ["mobile-gw-7"]
    assert f["dq_wire"]["records_estimated_unsplittable"] == 250.0


def test_appendix_a_prints_duplicates_clocks_threshold_and_default_rate_exporters():
    text = _appendix_text(_tables_with(TRUST_ROWS))
    for phrase in (
        "Duplicates, Clocks and the Set-Aside Threshold",
        "duplicate files (same bytes under another name or folder), read once 3",
        "duplicate export datagrams, read once 12",
        "out-of-window records set aside: flow time before window 41",
        "out-of-window records set aside: flow time after window 0",
        "out-of-window records set aside: flow end before start 2",
        "outside the report's weeks (not errors) 123,456",
        "may set aside 5.0%",
        "largest share set aside: bb-pppoe-1, 2024-06-05 0.43%",
        "templates redefined (same id, new layout) 4",
        "records decoded in a second pass (template came later) 1,500",
        "records on the registry's default sampling rate 8,000",
        "invalid sampling announcements (N = 0 or unusable) 1",
        "trailing bytes shorter than one record 36",
        "records estimated in sets never split (no template) 250",
        "default sampling rate (they announced none): mobile-gw-7.",
        "widened by 180 minutes",
    ):
        assert phrase in text, phrase


def test_wire_counters_no_report_carried_are_not_printed_as_zero():
    rows = [r for r in TRUST_ROWS if r[0] != "reports_with_wire_counters"]
    text = _appendix_text(_tables_with(rows))
    assert "duplicate files (same bytes under another name or folder), read once 3" in text
    assert "templates redefined" not in text and "duplicate export datagrams" not in text
    assert "registry's default" not in text
    assert "largest share set aside: bb-pppoe-1, 2024-06-05 0.43%" in text


def test_a_tiny_worst_share_is_not_printed_as_zero():
    """0.0016 % set aside is not "0.00%": a reader must see that something was set aside."""
    rows = [
        (item, scope, 0.0016 if item == "worst_quarantined_share_pct" else value)
        for item, scope, value in TRUST_ROWS
    ]
    text = _appendix_text(_tables_with(rows))
    assert "largest share set aside: bb-pppoe-1, 2024-06-05 < 0.01%" in text
    assert "2024-06-05 0.00%" not in text


def test_appendix_a_without_the_new_rows_leaves_them_out():
    """A data_quality table without these rows (e.g. an ISP's older reports): no row, no crash."""
    text = _appendix_text(make_tables(YEAR))
    assert "duplicate files" not in text and "largest share set aside" not in text
    assert "default sampling rate (they announced none)" not in text
