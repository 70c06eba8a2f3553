"""The narrative does not compare incomplete against complete (issue 8, completeness): a growth
that needs a missing counter month is not stated as a number, the text names the month, and the
missing inputs are listed in §1.1 and Appendix A."""

from __future__ import annotations

import re

import polars as pl

from pipeline.ingest import completeness as inputs
from pipeline.report.facts import report_facts
from pipeline.report.render import render_html
from tests.support.tables import FIXED_FACTOR_5Y, FIXED_YOY_PCT, make_context, make_tables

YEAR = 2024


def completeness(gone: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    """Expected items of 2024 (a few exporter-days, the anchor months), `gone` ones absent."""
    items = [("flows", "pppoe", "bras01", f"2024-06-0{d}") for d in range(3, 10)]
    items += [
        ("counters", svc, d, m)
        for m in ("2019-06", "2020-01", "2023-06", "2024-06")
        for svc in ("broadband_pppoe", "broadband_ipoe", "mobile")
        for d in ("IN", "OUT")
    ]
    rows = [(*i, i not in gone, 0 if i in gone else 1) for i in items]
    df = pl.DataFrame(rows, schema=inputs.SCHEMA, orient="row")
    return df.select(pl.lit(YEAR, dtype=pl.Int64).alias("year"), pl.all())


def html_text(tables: dict[str, pl.DataFrame]) -> str:
    figs = {f"fig{n:02d}": f"figures/fig{n:02d}.svg" for n in range(1, 12)}
    html = render_html(YEAR, tables, figs, make_context(YEAR))
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_growth_across_a_missing_month_is_not_stated() -> None:
    tables = make_tables(YEAR)
    tables["input_completeness"] = completeness(
        [
            ("counters", "broadband_ipoe", "OUT", "2023-06"),
            ("flows", "pppoe", "bras01", "2024-06-05"),
        ]
    )
    f = report_facts(tables, YEAR)
    assert f["bb_in_yoy"] is None and f["bb_out_yoy"] is None
    assert f["bb_growth_gap"] == "June 2023 (broadband_ipoe OUT)"
    assert f["mob_in_yoy"] is not None  # mobile's months are complete
    assert f["bb_out_factor_5y"] is not None  # June 2019 and June 2024 are complete
    text = html_text(tables)
    assert "The broadband counters of June 2023 (broadband_ipoe OUT) are missing" in text
    assert f"grew by {round(FIXED_YOY_PCT[('broadband', 'IN')])}%" not in text
    assert "flow data is missing for 1 of 7 exporter-days (exporter bras01 on 2024-06-05)" in text
    assert "Table A.3: Expected and Present Inputs of the 2024 Report" in text
    assert "counters (counter months) 24 23 95.8% 2023-06 broadband_ipoe OUT" in text


def test_five_year_factor_needs_both_ends() -> None:
    tables = make_tables(YEAR)
    tables["input_completeness"] = completeness([("counters", "broadband_pppoe", "IN", "2019-06")])
    f = report_facts(tables, YEAR)
    assert f["bb_in_factor_5y"] is None and f["five_year_gap"] == "June 2019 (broadband_pppoe IN)"
    assert f["bb_in_yoy"] is not None
    text = html_text(tables)
    assert "the five-year growth factor from June 2019 to June 2024 is not stated" in text
    assert f"{FIXED_FACTOR_5Y['IN']:.2f} times its June 2019 level" not in text


def test_complete_inputs_print_no_missing_sentence() -> None:
    tables = make_tables(YEAR)
    tables["input_completeness"] = completeness([])
    text = html_text(tables)
    assert "Not every input of this report arrived" not in text
    assert f"grew by {round(FIXED_YOY_PCT[('broadband', 'IN')])}%" in text
    assert "Table A.3" in text
