"""Log-axis helpers: bytes are drawn as log10(bytes) on a linear scale with labelled ticks."""

from __future__ import annotations

import altair as alt

LOG10_MIN = 4
LOG10_MAX = 11
_UNITS = ((9, "GB"), (6, "MB"), (3, "KB"), (0, "B"))
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def power_of_ten(exponent: int) -> str:
    """'10⁹': the power written with a real superscript, as in print."""
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def bytes_tick_label(exponent: int) -> str:
    """'10⁹ (1 GB)' for exponent 9: the power of ten plus a human-readable decimal unit."""
    for unit_exp, unit in _UNITS:
        if exponent >= unit_exp:
            return f"{power_of_ten(exponent)} ({10 ** (exponent - unit_exp)} {unit})"
    return power_of_ten(exponent)


def bytes_tick_values(lo: int = LOG10_MIN, hi: int = LOG10_MAX) -> list[int]:
    return list(range(lo, hi + 1))


def shows_unit(exponent: int, lo: int = LOG10_MIN, hi: int = LOG10_MAX) -> bool:
    """Whether a two-line label carries its unit: at 1 KB, 1 MB, 1 GB … and at both ends.

    A half-width axis has about 32 px a decade, less than a '(100 MB)' needs; units three decades
    apart never touch, and every decade keeps its power of ten on the first line."""
    return exponent % 3 == 0 or exponent in (lo, hi)


def bytes_label_expr(lo: int = LOG10_MIN, hi: int = LOG10_MAX, two_lines: bool = False) -> str:
    """Vega expression mapping a tick value (a log10 exponent) to its bytes_tick_label.

    With two_lines the label is a two-element array (power, unit) that Vega prints on two lines,
    the unit only where `shows_unit`."""
    if two_lines:
        pairs = [bytes_tick_label(e).split(" ", 1) for e in bytes_tick_values(lo, hi)]
        labels = ", ".join(
            f"['{p}', '{u if shows_unit(e, lo, hi) else ''}']"
            for e, (p, u) in zip(bytes_tick_values(lo, hi), pairs, strict=True)
        )
    else:
        labels = ", ".join(f"'{bytes_tick_label(e)}'" for e in bytes_tick_values(lo, hi))
    return f"[{labels}][round(datum.value) - {lo}]"


def log_bytes_axis(
    title: str | list[str], lo: int = LOG10_MIN, hi: int = LOG10_MAX, two_lines: bool = False
) -> alt.Axis:
    """Axis over log10(bytes) with one tick per decade labelled like '10⁶ (1 MB)'."""
    return alt.Axis(
        title=title,
        values=bytes_tick_values(lo, hi),
        labelExpr=bytes_label_expr(lo, hi, two_lines),
        labelAngle=0,
        grid=True,
        labelOverlap=False,
        labelFlush=False,  # centred end labels: flushed ones ran into their neighbours
    )


def log_bytes_scale(lo: int = LOG10_MIN, hi: int = LOG10_MAX) -> alt.Scale:
    return alt.Scale(domain=[lo, hi], nice=False, zero=False)


def weekday_axis(title: str = "") -> alt.Axis:
    """Axis over hour_of_week 0..167 with a tick at each local midnight labelled by weekday name."""
    names = ", ".join(f"'{d}'" for d in WEEKDAY_NAMES)
    return alt.Axis(
        title=title,
        values=list(range(0, 168, 24)),
        labelAlign="left",
        labelExpr=f"[{names}][floor(datum.value / 24)]",
        grid=True,
    )
