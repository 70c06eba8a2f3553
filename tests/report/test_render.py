"""build_report on fixture tables: captions, narrative numbers, tables, CSVs, identical rebuilds."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import polars as pl
import pytest

from pipeline.charts.render import build_charts
from pipeline.report import tables as report_tables
from pipeline.report.facts import report_facts
from pipeline.report.render import build_report, flatten_params
from tests.support.tables import make_context, make_tables

YEAR = 2024


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return make_tables(YEAR)


@pytest.fixture(scope="module")
def built(tables, tmp_path_factory) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    out = tmp_path_factory.mktemp("report")
    figures = build_charts(tables, YEAR, out / "figures")
    written = build_report(YEAR, tables, figures, make_context(YEAR), out)
    return out, figures, written


@pytest.fixture(scope="module")
def pdf_text(built) -> str:
    out, _, _ = built
    text = subprocess.run(
        ["pdftotext", str(out / "report.pdf"), "-"], check=True, capture_output=True, text=True
    ).stdout
    return " ".join(text.split())  # undo line wrapping


def test_outputs_exist(built):
    out, _, written = built
    assert written["pdf"] == out / "report.pdf"
    assert written["html"] == out / "report.html"
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    for n in range(1, 12):
        assert (out / "figures" / f"fig{n:02d}.svg").is_file()
        assert len(list((out / "data").glob(f"figure_{n:02d}_*.csv"))) == 1
    for n in range(1, 5):
        assert len(list((out / "data").glob(f"table_{n}_*.csv"))) == 1


def test_every_caption_in_pdf(pdf_text):
    for n in range(1, 12):
        assert f"Figure {n}:" in pdf_text, n
    for n in range(1, 5):
        assert f"Table {n}:" in pdf_text, n
    for heading in (
        "1.1 Overview",
        "1.2 About the Data",
        "1.3 Users' Daily Usage",
        "1.4 Usage by Port",
        "1.5 Looking Back on the Past Five Years",
        "1.6 Conclusion",
        "Appendix A",
        "Appendix B",
    ):
        assert heading in pdf_text, heading
    assert "built from simulated ISP data" in pdf_text
    assert "Page 3 of" in pdf_text


# Sentences of the narrative with the fixture numbers they must quote, worked out by hand.
NARRATIVE_PHRASES = (
    # broadband yoy IN 14.2 / OUT 11.6 → 14% / 12%; previous year 11% / 18%
    "grew by 14% and download (OUT) by 12%, against 11% and 18%",
    # IPoE share 43.2 / 47.6, change +1.2 / +3.7 points
    "43% of broadband IN and 48% of broadband OUT (up 1 point and up 4 points",
    # five-year factors 1.72 / 2.01 and annualised 1.11 / 1.15
    "1.72 times its June 2019 level and OUT 2.01 times",
    "1.11 and 1.15 times per year on average (about 11% and 15% growth a year)",
    # top shares: broadband 10 % → 50.3 / 75.4, 1 % → 15.2 / 46.1
    "heaviest 10% of users account for 50% of OUT and 75% of IN",
    "top 1% of users alone account for 15% of OUT and 46% of IN",
    # Table 1 2024: OUT mode 5623.4 → 5,623 MB; 5623.4 / 5011.9 = 1.122 → up 12%
    "5,623 MB (up 12% on 2023)",
    # mean/median OUT 5743 / 2372 = 2.421 → 2.42
    "2.42 times the median",
    # five-year mode factor OUT 5623.4 / 1995.3 = 2.818 → 2.82
    "(2.82 times)",
    # ports: TCP 67.5 (−0.8 vs 68.3), UDP 443 21.0 (+1.0)
    "TCP carried 67.5% of bytes in 2024 (-0.8 points",
    "reached 21.0% (+1.0 points)",
    "busiest single port there is 31000 with 1.2%",
    # mobile OUT at 2.1 × Jan 2020
    "2.10 times its January 2020 level",
)


@pytest.mark.parametrize("phrase", NARRATIVE_PHRASES)
def test_narrative_numbers_come_from_fixture(pdf_text, phrase):
    assert phrase in pdf_text


def test_title_page_summary_and_key_numbers(pdf_text):
    page1 = pdf_text.split("1. PERIODIC OBSERVATION REPORT")[0]
    # abstract and key numbers from the fixture: yoy 14.2 / 11.6, UDP 443 21.0, OUT ×2.01
    assert "broadband upload (IN) grew by 14% and download (OUT) by 12%" in page1
    assert "IN +14%, OUT +12%" in page1
    assert "UDP port 443 (QUIC) carries 21.0% of broadband bytes" in page1
    assert "OUT ×2.01" in page1
    assert "Contents" in page1 and "Appendix A: Data Quality" in page1


def test_data_quality_exporter_table(pdf_text, tables):
    from pipeline.report.render import exporter_quality_rows

    assert "Table A.1: Ingest Accounting per Exporter" in pdf_text
    assert "N = 1,024 or 8,192" in pdf_text
    rows = exporter_quality_rows(tables["data_quality"], make_context(YEAR)["exporters"])
    # fixture: bb-pppoe-1 sampled 1 in 8192, 800,000 decoded, 4,000 set aside; no file counts
    bb = rows[0]
    assert (bb["name"], bb["sampling"], bb["records_decoded"]) == ("bb-pppoe-1", "8,192", "800,000")
    assert (bb["records_quarantined"], bb["files"], bb["restarts"]) == ("4,000", "–", "2")
    # the total row takes the data_quality 'all' scope: 1,234,567 in, 4,567 set aside
    total = rows[-1]
    assert (total["name"], total["records_in"], total["records_quarantined"]) == (
        "all exporters",
        "1,234,567",
        "4,567",
    )
    assert (rows[1]["restarts"], total["restarts"]) == ("0", "2")  # mobile-1 none; 2 in all


def test_narrative_phrases_in_words():
    from pipeline.report.formats import growth_phrase, points_phrase, ratio_phrase

    assert growth_phrase(11.6) == "grew by 12%"
    assert growth_phrase(-3.4) == "fell by 3%"
    assert growth_phrase(0.2) == "was unchanged"
    assert points_phrase(-1.2) == "down 1 point"
    assert points_phrase(3.7) == "up 4 points"
    assert ratio_phrase(5623.4 / 5011.9) == "up 12%"
    assert ratio_phrase(0.996) == "unchanged"


def test_facts_peak_hours(tables):
    f = report_facts(tables, YEAR)
    # fixture: broadband week series peaks at 21:00; weekday OUT profile centred on 21.5
    assert f["out_peak_hour"] in (21, 22)
    assert f["broadband_busy_from"] <= 21 < f["broadband_busy_to"]
    # mobile fixture has three bumps at 08, 12.5 and 21
    assert len(f["mobile_weekday_peaks"]) == 3
    assert f["mobile_weekday_peaks"][0] == 8


def test_printed_tables_worked_values(tables):
    t1 = report_tables.daily_usage_table(tables, "broadband", YEAR)
    assert t1["year"].to_list() == list(range(2007, 2025))
    row = t1.filter(pl.col("year") == 2024).row(0, named=True)
    assert (row["in_mean_mb"], row["in_median_mb"], row["out_mode_mb"]) == (834, 178, 5623)
    assert t1.filter(pl.col("year") == 2010)["source"][0] == "published"
    t2 = report_tables.daily_usage_table(tables, "mobile", YEAR)
    assert t2.filter(pl.col("year") == 2024)["out_mode_mb"][0] == 112.2
    t3 = report_tables.port_share_table(tables, "broadband", YEAR)
    assert t3.columns[5:] == [
        *(f"pct_{y}{e}" for y in range(2020, 2025) for e in ("", "_lo", "_hi")),
        *(f"pct_{y}_ci" for y in range(2020, 2025)),
    ]
    assert t3["row_id"].to_list()[:3] == ["tcp_total", "tcp_lt1024", "tcp_443"]
    new_row = t3.filter(pl.col("row_id") == "tcp_8080")
    assert new_row["pct_2022"][0] is None and new_row["pct_2024"][0] == 0.4
    # fixture: tcp_total 67.5 in 2024 with step −0.8 per year → 70.7 in 2020
    assert t3.filter(pl.col("row_id") == "tcp_total")["pct_2020"][0] == 70.7


def test_missing_port_row_prints_dash(built):
    out, _, _ = built
    layout = subprocess.run(
        ["pdftotext", "-layout", str(out / "report.pdf"), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # tcp_8080 is listed from 2023 only: its 2020–2022 cells print "–"
    assert re.search(r"8080 \(http-alt\)\s+–\s+–\s+–\s+0\.4\s+0\.4", layout)


def test_published_rows_marked(built):
    out, _, _ = built
    html = (out / "report.html").read_text()
    assert 'class="published"' in html
    assert "published values, IIR Vol.64" in html


def test_csvs_have_no_identifier_columns(built):
    out, _, _ = built
    forbidden = ("user", "msisdn", "subscription", "addr")
    for path in sorted((out / "data").glob("*.csv")):
        with path.open() as fh:
            header = next(csv.reader(fh))
        for col in header:
            assert not any(w in col.lower() for w in forbidden), (path.name, col)


def test_csv_numbers_are_the_printed_ones(built):
    out, _, _ = built
    t1 = pl.read_csv(out / "data" / "table_1_broadband_daily_usage.csv")
    assert t1.filter(pl.col("year") == 2024)["out_mean_mb"][0] == 5743
    fig1 = pl.read_csv(out / "data" / "figure_01_monthly_traffic.csv")
    norm = fig1.filter(
        (pl.col("series") == "broadband")
        & (pl.col("direction") == "OUT")
        & (pl.col("month") == "2020-01")
    )
    assert norm["relative_traffic"][0] == 1.0


def test_check_publishable_refuses_identifier_column():
    with pytest.raises(ValueError, match="msisdn"):
        report_tables.check_publishable(pl.DataFrame({"msisdn": ["x"]}), "bad.csv")


@pytest.mark.slow  # renders the PDF twice more
def test_rebuild_is_byte_identical(built, tables, tmp_path):
    out, figures, _ = built
    second = build_report(YEAR, tables, figures, make_context(YEAR), tmp_path)
    assert second["pdf"].read_bytes() == (out / "report.pdf").read_bytes()
    assert second["html"].read_bytes() == (out / "report.html").read_bytes()
    for path in sorted((out / "data").glob("*.csv")):
        assert (tmp_path / "data" / path.name).read_bytes() == path.read_bytes(), path.name


def test_pdf_dates_from_source_date_epoch(built):
    out, _, _ = built
    info = subprocess.run(
        ["pdfinfo", str(out / "report.pdf")], check=True, capture_output=True, text=True
    ).stdout
    # 1720000000 = 2024-07-03 09:46:40 UTC
    assert "Jul  3 09:46:40 2024" in info


def test_flatten_params_worked_example():
    params = {
        "b": {"y": [1, 2]},
        "a": 1,
        "w": {2024: {"extra": [{"start": "x", "role": "r"}]}, 2023: {"extra": []}},
        "n": [{"k": {"deep": 1}}],
    }
    assert flatten_params(params) == [
        ("a", "1"),
        ("b.y", "1, 2"),
        ("n[0].k.deep", "1"),
        ("w.2024.extra[0]", "role=r, start=x"),
    ]


def test_export_versions_named_from_the_records():
    from pipeline.report.render import export_versions_seen

    assert export_versions_seen([{"records_by_version": {"10": 5}}]) == "IPFIX"
    both = [{"records_by_version": {"10": 5}}, {"records_by_version": {"9": 1, "5": 2}}]
    assert export_versions_seen(both) == "NetFlow v5, NetFlow v9 and IPFIX"
    assert export_versions_seen([{"records_by_version": {"9": 1, "10": 0}}]) == "NetFlow v9"
    assert export_versions_seen([{"name": "x"}]) == ""  # nothing known: the text names none


def test_related_figures_and_tables_side_by_side(built):
    """Figures 3|4, 5|6, 9|10 and Tables 3|4 in pairs, each with its own caption; the half-width
    figures are the ones the charts draw at half width. Tables 1, 2 carry intervals in the
    fixture, which take the full width: one under the other (paired without: test_intervals)."""
    from pipeline.charts.style import HALF_FIGURES

    out, _, _ = built
    html = (out / "report.html").read_text()
    pairs = [
        re.findall(r'id="((?:figure|table)-\d+)"', block)
        for block in re.findall(r'<div class="pair">(.*?)</div>', html, re.S)
    ]
    assert pairs == [
        ["figure-3", "figure-4"],
        ["figure-5", "figure-6"],
        ["table-3", "table-4"],
        ["figure-9", "figure-10"],
    ]
    paired = {int(i.split("-")[1]) for p in pairs for i in p if i.startswith("figure")}
    assert paired == set(HALF_FIGURES)
    for block in re.findall(r'<div class="pair">(.*?)</div>', html, re.S):
        assert block.count("<figcaption>") == 2


def test_each_figure_and_table_follows_the_text_that_discusses_it(built):
    """Printed after the paragraph that first names it, in the same section (no heading between),
    at most two paragraphs later (the ones that go on discussing it and its pair)."""
    out, _, _ = built
    html = (out / "report.html").read_text()
    chapter = html[html.index('<article class="chapter">') :]
    for kind, word, n in [("figure", "Figure", n) for n in range(1, 12)] + [
        ("table", "Table", n) for n in range(1, 5)
    ]:
        mention = re.search(rf"<p>[^<]*?\b{word}s? (?:\d+ and )?{n}\b", chapter)
        assert mention, (word, n)
        placed = chapter.index(f'id="{kind}-{n}"')
        assert mention.start() < placed, (word, n)
        between = chapter[mention.end() : placed]
        assert "<h2" not in between, (word, n)
        assert between.count("<p>") <= 2, (word, n)


def test_method_rules_and_users_left_out_are_printed(pdf_text):
    """Issue 8 cats 3, 8, 9, 12: the method section states the span rule, the on-net rule, the
    reliability rule with its parameter, and Section 1.3 counts the users left out (fixture:
    broadband IN 37 not observed + 112 below the rule, OUT 4 + 9)."""
    method = pdf_text.split("Appendix B")[-1].replace(
        "\u2010 ", ""
    )  # words hyphenated at a line end
    assert "counts whole in the local hour, day and week in which it started" in method
    assert "upload (IN) for the sender and download (OUT) for the receiver" in method
    assert "relative error is about 1/√k" in method
    assert "rests on at least 1 sampled packet" in method
    assert "ranks below every user with a value" in method
    assert "Local time is Asia/Tokyo, with its daylight-saving rules" in " ".join(method.split())
    assert "left out of both the week's total and the divisor" in " ".join(method.split())
    assert "37 of the 20,000 broadband users had no sampled upload packet (IN) and 4" in pdf_text
    assert "and 112 and 9 had fewer than the 1 sampled packets" in pdf_text
