"""How numbers are printed in the report: Jinja filters and globals of the report templates.

`register(env)` makes each helper a filter (`{{ f.bb_in_yoy | pct }}`) and the few that take
several values, or decide whether a sentence is written, globals (`present(…)`, `ratio(a, b)`).
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
from markupsafe import Markup, escape

from pipeline.report.intervals import has_interval


def pct(value: float) -> str:
    """Whole percent, e.g. '14%'."""
    return f"{value:.0f}%"


def signed_pct(value: float) -> str:
    """Signed whole percent, e.g. '+14%'."""
    return f"{value:+.0f}%"


def share(value: float) -> str:
    """A port share with one decimal, e.g. '53.8%'."""
    return f"{value:.1f}%"


def share_change(value: float) -> str:
    """A signed one-decimal change in points, e.g. '+3.0 points'."""
    return f"{value:+.1f} points"


def growth_phrase(value_pct: float) -> str:
    """A whole-percent change in words: 'grew by 12%', 'fell by 3%' or 'was unchanged'."""
    v = round(value_pct)
    if v == 0:
        return "was unchanged"
    return f"grew by {v}%" if v > 0 else f"fell by {-v}%"


def points_phrase(value: float) -> str:
    """A change in whole percentage points in words: 'up 4 points', 'down 1 point', 'unchanged'."""
    v = round(value)
    if v == 0:
        return "unchanged"
    unit = "point" if abs(v) == 1 else "points"
    return f"{'up' if v > 0 else 'down'} {abs(v)} {unit}"


def ratio_phrase(ratio: float) -> str:
    """A year-on-year ratio in words: 'up 12%', 'down 5%' or 'unchanged' (within 0.5%)."""
    v = round(100 * (ratio - 1))
    if v == 0:
        return "unchanged"
    return f"up {v}%" if v > 0 else f"down {-v}%"


def factor(value: float) -> str:
    """A growth factor with two decimals, e.g. '1.72'."""
    return f"{value:.2f}"


def ratio(a: float, b: float) -> str:
    """a/b with two decimals, or one decimal at 10 and above; 'n/a' when b is 0."""
    if not b:
        return "n/a"
    r = a / b
    return factor(r) if r < 10 else f"{r:.1f}"


def mb(value: float, decimals: int) -> str:
    """MB/day as printed in Tables 1 (0 decimals) and 2 (1 decimal), with thousands separators."""
    return f"{value:,.{decimals}f} MB"


def fmt_number(value: Any, decimals: int = 0) -> str:
    """A table cell: thousands separators, fixed decimals, '–' when the value is missing."""
    if value is None:
        return "–"
    return f"{float(value):,.{decimals}f}"


def hour(h: int) -> str:
    """The start of an hour of day, e.g. '09:00'."""
    return f"{int(h):02d}:00"


MONTH_NAMES = (
    "January February March April May June July August September October November December"
).split()


def month_name(month: str) -> str:
    """'2020-01' → 'January 2020'."""
    y, m = month.split("-")
    return f"{MONTH_NAMES[int(m) - 1]} {y}"


def whole(value: float) -> int:
    """The value rounded to a whole number, as `pct` prints it (half to even)."""
    return round(value)


def present(*values: Any) -> bool:
    """True when every value is known: a sentence quoting a missing fact is left out.

    Missing means None or NaN (`v == v` is False only for NaN); a name the facts do not define
    raises in a template (StrictUndefined) instead of silently dropping its sentence."""
    return all(v is not None and v == v for v in values)


# What a year-on-year change is of, by the key facts.py gives it (changes_inside, _port_facts).
CHANGE_NAMES = {
    "out_mode": "the OUT mode",
    "in_mode": "the IN mode",
    "OUT_10": "the top 10%&#39;s share of OUT",
    "IN_10": "the top 10%&#39;s share of IN",
    "tcp": "TCP&#39;s share",
    "udp": "UDP&#39;s share",
    "tcp443": "the share of TCP port 443",
    "tcp80": "the share of TCP port 80",
    "udp443": "the share of UDP port 443",
}


def inside_sentence(keys: list[str] | None) -> Markup:
    """'The change in the IN mode is not distinguishable from last year at this sampling rate.'
    for the changes inside their intervals; '' when there is none."""
    names = [CHANGE_NAMES[k] for k in keys or ()]
    if not names:
        return Markup("")
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "change in" if len(names) == 1 else "changes in"
    be = "is" if len(names) == 1 else "are"
    return Markup(
        f"The {verb} {listed} {be} not distinguishable from last year at this sampling rate."
    )


_SPACES = re.compile(r"[ \t\r\n]+")


def prose(text: str | Markup) -> Markup:
    """A paragraph written over several template lines, as one line: each run of spaces and line
    breaks becomes one space (as a browser shows it), and the ends are stripped."""
    return Markup(_SPACES.sub(" ", escape(text)).strip(" "))


FILTERS = {
    f.__name__: f
    for f in (pct, signed_pct, share, share_change, growth_phrase, points_phrase, ratio_phrase,
              factor, mb, hour, month_name, prose, inside_sentence)
}  # fmt: skip
FILTERS["num"] = fmt_number
FILTERS["has_interval"] = has_interval
GLOBALS = {f.__name__: f for f in (present, ratio, whole)}


def register(env: jinja2.Environment) -> jinja2.Environment:
    """Add the report's number formats to `env` as filters and globals."""
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env
