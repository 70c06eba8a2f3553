"""Issue 13 in the report: intervals in Tables 1–4 and their CSVs, and the narrative's rule for a
year-on-year change inside the intervals. Fixture intervals: tests/support/tables.py."""

from __future__ import annotations

import html
import re

import polars as pl
import pytest

from pipeline.report import tables as report_tables
from pipeline.report.facts import report_facts
from pipeline.report.intervals import interval_label, not_distinguishable
from pipeline.report.render import render_html
from tests.support.tables import make_context, make_tables

YEAR = 2024
INSIDE = "not distinguishable from last year at this sampling rate"
FIGURE_SRCS = {f"fig{n:02d}": f"figures/fig{n:02d}.svg" for n in range(1, 12)}


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return make_tables(YEAR)


def _narrowed(tables: dict[str, pl.DataFrame], factor: float) -> dict[str, pl.DataFrame]:
    """The fixture with every interval's sides scaled by `factor` about its value."""
    out = dict(tables)
    for name, values in (
        ("daily_usage_summary", ("mean_mb", "median_mb", "mode_mb")),
        ("top_user_share", ("share_pct",)),
        ("usage_by_port", ("share_pct",)),
    ):
        out[name] = tables[name].with_columns(
            (pl.col(v) + factor * (pl.col(f"{v}_{end}") - pl.col(v))).alias(f"{v}_{end}")
            for v in values
            for end in ("lo", "hi")
        )
    return out


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _narrative(page: str) -> str:
    """The text of the title page and chapter 1, without the appendices (whose method section
    states the rule in the same words)."""
    return _text(page[: page.index('<section class="appendix"')])


def test_interval_label_worked_examples():
    assert interval_label(67.5, 67.09, 67.91, 1) == "±0.4"
    assert interval_label(67.53, 67.49, 67.57, 1) == ""  # ± 0.04: narrower than the last digit
    # sides that round one digit apart (0.04 → 0.0, 0.06 → 0.1): the larger side, not a range
    assert interval_label(67.53, 67.49, 67.59, 1) == "±0.1"
    assert interval_label(2357.99, 2326.66, 2389.36, 0) == "±31"  # a median's near-even sides
    assert interval_label(5623.4, 5342.2, 5960.8, 0) == "[5,342–5,961]"
    assert interval_label(5623.4, 5011.9, 5623.4, 0) == "[5,012–5,623]"
    assert interval_label(112.2, 112.2, 112.2, 1) == ""  # exact (billing)
    assert interval_label(0.4, 0.38, 0.42, 1) == ""  # narrower than the last digit
    assert interval_label(718.0, None, None, 0) == ""  # published: none
    assert interval_label(5.0, float("nan"), 6.0, 0) == ""


def test_rule_inside_and_outside():
    # symmetric: |Δ| = 0.8 against √(0.5² + 0.5²) = 0.71 (outside) and √2 · 1.0 = 1.41 (inside)
    assert not_distinguishable(50.3, 49.8, 50.8, 49.5, 49.0, 50.0) is False
    assert not_distinguishable(50.3, 49.3, 51.3, 49.5, 48.5, 50.5) is True
    # asymmetric: the sides facing each other count. Up 100: now's lower side 30, prev's upper 50
    # → √(30² + 50²) = 58 < 100 (outside), though their far sides (200 each) would cover it.
    assert not_distinguishable(1100, 1070, 1300, 1000, 800, 1050) is False
    assert not_distinguishable(1000, 800, 1050, 1100, 1070, 1300) is False  # down 100: same sides
    assert not_distinguishable(1100, 1000, 1110, 1000, 990, 1080) is True  # √(100² + 80²) = 128
    # exact values (zero width) are never inside unless equal; unknown ends: no statement
    assert not_distinguishable(14.1, 14.1, 14.1, 11.2, 11.2, 11.2) is False
    assert not_distinguishable(14.1, None, None, 11.2, 11.0, 11.4) is None


def test_table_1_and_2_carry_intervals(tables):
    t1 = report_tables.daily_usage_table(tables, "broadband", YEAR)
    for d in ("in", "out"):
        for s in ("mean", "median", "mode"):
            assert {f"{d}_{s}_mb_lo", f"{d}_{s}_mb_hi"} <= set(t1.columns)
    row = t1.filter(pl.col("year") == YEAR).row(0, named=True)
    # fixture 2024 OUT mode 5623.4, −5 % / +6 % → 5342.2 / 5960.8, printed as integers
    assert (row["out_mode_mb_lo"], row["out_mode_mb"], row["out_mode_mb_hi"]) == (5342, 5623, 5961)
    assert row["out_mode_mb_ci"] == "[5,342–5,961]"
    assert (row["out_mean_mb_lo"], row["out_mean_mb_hi"]) == (5686, 5800)  # 5743 ± 1 %
    published = t1.filter(pl.col("source") == "published")
    assert published["out_mode_mb_lo"].null_count() == published.height
    t2 = report_tables.daily_usage_table(tables, "mobile", YEAR)
    mob = t2.filter(pl.col("year") == YEAR).row(0, named=True)
    assert mob["out_mode_mb_lo"] == mob["out_mode_mb"] == mob["out_mode_mb_hi"] == 112.2  # exact


def test_port_table_carries_intervals(tables):
    t3 = report_tables.port_share_table(tables, "broadband", YEAR)
    tcp = t3.filter(pl.col("row_id") == "tcp_total").row(0, named=True)
    # fixture half-width 0.05·√67.5 = 0.411 → 67.1 … 67.9
    assert (tcp["pct_2024_lo"], tcp["pct_2024"], tcp["pct_2024_hi"]) == (67.1, 67.5, 67.9)
    new_row = t3.filter(pl.col("row_id") == "tcp_8080")
    assert new_row["pct_2022_lo"][0] is None and new_row["pct_2024_lo"][0] == 0.4


def test_tables_without_interval_columns_still_print(tables):
    """History written before intervals: NULL interval columns, no interval printed."""
    old = dict(tables)
    old["daily_usage_summary"] = tables["daily_usage_summary"].select(
        pl.exclude("^.*_(lo|hi)$", "interval_method")
    )
    old["usage_by_port"] = tables["usage_by_port"].drop("share_pct_lo", "share_pct_hi")
    t1 = report_tables.daily_usage_table(old, "broadband", YEAR)
    assert t1["out_mode_mb_lo"].null_count() == t1.height
    html = render_html(YEAR, old, FIGURE_SRCS, make_context(YEAR))
    assert 'class="ci"' not in html and "Grey: the 95% interval" not in html
    pairs = re.findall(r'<div class="pair">(.*?)</div>', html, re.S)
    assert any('id="table-1"' in p and 'id="table-2"' in p for p in pairs)  # half width again


def test_tables_print_intervals(tables):
    html = render_html(YEAR, tables, FIGURE_SRCS, make_context(YEAR))
    table1 = html[html.index('id="table-1"') : html.index('id="table-2"')]
    assert '<table class="usage with-ci">' in table1
    assert '<td class="ci">[5,342–5,961]</td>' in table1  # 2024 OUT mode
    assert '<td class="ci">±57</td>' in table1  # 2024 OUT mean 5743 ± 57
    table2 = html[html.index('id="table-2"') : html.index("</figure>", html.index('id="table-2"'))]
    assert 'class="ci"' not in table2 and 'class="usage"' in table2  # mobile: exact, none printed
    table3 = html[html.index('id="table-3"') : html.index('id="table-4"')]
    assert '67.5<span class="ci">±0.4</span>' in table3
    assert '0.4<span class="ci">' not in table3  # tcp_8080 ± 0.03: narrower than the last digit
    assert "Grey: the 95% interval of the value" in _text(table1)
    # Tables 1 and 2 at full width, one under the other
    pairs = re.findall(r'<div class="pair">(.*?)</div>', html, re.S)
    assert not any('id="table-1"' in p for p in pairs)


def test_csvs_carry_the_interval_columns(tables, tmp_path):
    written = report_tables.write_data_csvs(tables, YEAR, tmp_path)
    t1 = pl.read_csv(written["table_1_broadband_daily_usage.csv"])
    assert t1.filter(pl.col("year") == YEAR)["out_mode_mb_hi"][0] == 5961
    assert t1.columns[:4] == ["year", "in_mean_mb", "in_mean_mb_lo", "in_mean_mb_hi"]
    assert not any(c.endswith("_ci") for c in t1.columns)  # the printed labels stay in the PDF
    t3 = pl.read_csv(written["table_3_broadband_port_share.csv"])
    assert {"pct_2024_lo", "pct_2024_hi", "pct_2020_lo"} <= set(t3.columns)
    top = pl.read_csv(written["text_top_user_shares.csv"])
    assert {"share_pct_lo", "share_pct_hi"} <= set(top.columns)
    for name, path in written.items():
        report_tables.check_publishable(pl.read_csv(path), name)  # no subscriber column


def test_facts_name_the_changes_inside(tables):
    """Fixture: broadband IN mode unchanged (Δ 0) inside, OUT mode +611.5 outside
    √(281² + 301²) = 412; top-10 % IN ±1.0 inside (0.8 < 1.41), OUT ±0.5 outside; port 80 unchanged
    inside, TCP −0.8 outside √2 · 0.41 = 0.58; mobile is exact (no change inside)."""
    f = report_facts(tables, YEAR)
    assert f["bb_usage_inside"] == ["in_mode"]
    assert f["mob_usage_inside"] == []
    assert f["bb_top10_inside"] == ["IN_10"]
    assert f["mob_top10_inside"] == []
    assert f["broadband_ports_inside"] == ["tcp80"]
    assert f["mobile_ports_inside"] == []


def test_narrative_says_when_a_change_is_inside(tables):
    text = _narrative(render_html(YEAR, tables, FIGURE_SRCS, make_context(YEAR)))
    assert f"(unchanged). The change in the IN mode is {INSIDE}." in text
    assert f"The change in the top 10%'s share of IN is {INSIDE}." in text
    assert f"(+0.0 points). The change in the share of TCP port 80 is {INSIDE}." in text
    assert text.count(INSIDE) == 3
    # the summary's OUT mode change (+12 %) is outside: today's wording
    assert (
        "The most common daily download of a broadband user was 5,623 MB, up 12% on 2023." in text
    )


def test_narrative_silent_when_changes_are_outside(tables):
    text = _narrative(render_html(YEAR, _narrowed(tables, 0.0), FIGURE_SRCS, make_context(YEAR)))
    assert INSIDE not in text
    assert "(unchanged). The mean OUT" in text  # the sentence after the modes follows directly
    assert "A year earlier the top 10% held 50% of OUT and 75% of IN." in text


def test_narrative_inside_for_every_change_when_intervals_are_wide(tables):
    wide = _narrowed(tables, 10.0)  # every interval ten times as wide
    f = report_facts(wide, YEAR)
    assert f["bb_usage_inside"] == ["out_mode", "in_mode"]
    assert f["bb_top10_inside"] == ["OUT_10", "IN_10"]
    assert f["broadband_ports_inside"] == ["tcp", "tcp443", "udp443", "tcp80"]
    text = _narrative(render_html(YEAR, wide, FIGURE_SRCS, make_context(YEAR)))
    assert f"The changes in the OUT mode and the IN mode are {INSIDE}." in text
    assert f"5,623 MB, up 12% on 2023, a change {INSIDE}." in text
    assert "QUIC on UDP port 443 held its share" in text


def test_method_section_states_the_intervals_and_the_floor(tables):
    text = _text(render_html(YEAR, tables, FIGURE_SRCS, make_context(YEAR)))
    method = text[text.index("Sampling error.") :]
    params = make_context(YEAR)["params"]["daily_usage"]
    assert "docs/UNCERTAINTY.md" in method
    assert f"redrawn {params['intervals']['replicates']} times" in method
    assert f"fixed seed {params['intervals']['seed']}" in method
    assert "|Δ| < √(a² + b²)" in method
    assert f"c = {params['intervals']['record_size_spread']}" in method
    assert "Figures 2, 9 and 10 are whole-network sums" in method


@pytest.mark.parametrize("floor", [None, 0.5])
def test_method_section_states_the_reliability_floor(tables, floor):
    context = make_context(YEAR)
    context["params"] = {**context["params"]}
    context["params"]["daily_usage"] = {
        **context["params"]["daily_usage"],
        "max_relative_error": floor,
    }
    text = _text(render_html(YEAR, tables, FIGURE_SRCS, context))
    rule = text[text.index("Sparse users under sampling.") : text.index("Sampling error.")]
    if floor is None:
        assert "it is off in this edition" in rule and "(daily_usage.max_relative_error)" in rule
    else:
        assert "is at most 0.5 (daily_usage.max_relative_error, the reliability floor)" in rule
        assert "or a relative error above its floor of 0.5" in text  # Section 1.3's count


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("normal", "the estimate ± z times the standard deviation of the draws"),
        ("basic", "the basic (reverse percentile) bootstrap interval"),
        ("percentile", "the percentile bootstrap interval"),
    ],
)
def test_method_section_names_the_bootstrap_interval_in_use(tables, kind, words):
    context = make_context(YEAR)
    usage = context["params"]["daily_usage"]
    context["params"] = {
        **context["params"],
        "daily_usage": {**usage, "intervals": {**usage["intervals"], "bootstrap_interval": kind}},
    }
    text = _text(render_html(YEAR, tables, FIGURE_SRCS, context))
    method = text[text.index("Sampling error.") : text.index("Intervals in print.")]
    method = " ".join(method.split())
    assert words in method
    others = {"normal": "standard deviation of the draws", "basic": "reverse percentile"}
    assert all(w not in method for k, w in others.items() if k != kind)
