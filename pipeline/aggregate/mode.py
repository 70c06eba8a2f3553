"""The mode rules of spec §2.4 (INFERRED, chosen in params.yaml daily_usage.mode_rule).

`parabolic` (default): the vertex of the parabola through the log user counts of the fullest
log10 bin and its two neighbours, rounded to the 0.05-decade grid the published modes lie on.
`tilt`: the spec's suggested rule, the fullest bin's centre nudged half a bin toward a neighbour
that holds at least r of it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MODE_RULES = ("parabolic", "tilt")


def _sorted_counts(
    bin_index: np.ndarray | list[int], users: np.ndarray | list[float]
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.asarray(bin_index, dtype=np.int64)
    counts = np.asarray(users, dtype=np.float64)
    order = np.argsort(idx, kind="stable")
    return idx[order], counts[order]


def _fullest_bin(
    idx: np.ndarray, counts: np.ndarray, bin_width: float, median_log10: float | None
) -> int:
    """Index of the fullest bin; ties: the one closest to median_log10, then the lower one."""
    fullest = idx[counts == counts.max()]
    if fullest.size > 1 and median_log10 is not None and math.isfinite(median_log10):
        return int(fullest[np.argmin(np.abs(fullest * bin_width - median_log10))])
    return int(fullest[0])


def parabolic_offset(n_left: float, n_centre: float, n_right: float) -> float:
    """Vertex of the parabola through (-1, ln n_left), (0, ln n_centre), (1, ln n_right), in bins.

    Exact for a log-normal peak (a parabola in log space); an empty neighbour counts as half a
    user. Within ±0.5 when the centre bin is the fullest."""
    ln_l, ln_c, ln_r = (math.log(max(v, 0.5)) for v in (n_left, n_centre, n_right))
    curvature = 2 * ln_c - ln_l - ln_r
    return 0.0 if curvature <= 0 else 0.5 * (ln_r - ln_l) / curvature


def mode_log10_parabolic(
    bin_index: np.ndarray | list[int],
    users: np.ndarray | list[float],
    bin_width: float,
    grid_decades: float,
    median_log10: float | None = None,
) -> float:
    """log10 of the modal daily bytes by the `parabolic` rule, on the grid; NaN if empty."""
    idx, counts = _sorted_counts(bin_index, users)
    if idx.size == 0 or counts.max() <= 0:
        return math.nan
    c = _fullest_bin(idx, counts, bin_width, median_log10)
    by_bin = dict(zip(idx.tolist(), counts.tolist(), strict=True))
    offset = parabolic_offset(by_bin.get(c - 1, 0.0), by_bin[c], by_bin.get(c + 1, 0.0))
    return round(round((c + offset) * bin_width / grid_decades) * grid_decades, 6)


def mode_log10_from_histogram(
    bin_index: np.ndarray | list[int],
    users: np.ndarray | list[float],
    bin_width: float,
    tilt_ratio: float,
    shift_decades: float,
    median_log10: float | None = None,
) -> float:
    """log10 of the modal daily bytes by the `tilt` rule: centre of the fullest bin c (ties: the
    bin closest to median_log10, then the lower one), shifted by shift_decades toward the larger
    neighbour when max(n_left, n_right) >= tilt_ratio * n_c (equal neighbours: toward the
    median). NaN if empty."""
    idx, counts = _sorted_counts(bin_index, users)
    if idx.size == 0 or counts.max() <= 0:
        return math.nan
    has_median = median_log10 is not None and math.isfinite(median_log10)
    c = _fullest_bin(idx, counts, bin_width, median_log10)
    by_bin = dict(zip(idx.tolist(), counts.tolist(), strict=True))
    n_c, n_left, n_right = by_bin[c], by_bin.get(c - 1, 0.0), by_bin.get(c + 1, 0.0)
    centre = c * bin_width
    shift = 0.0
    if max(n_left, n_right) >= tilt_ratio * n_c:
        if n_right > n_left:
            shift = shift_decades
        elif n_left > n_right:
            shift = -shift_decades
        elif has_median and median_log10 != centre:
            shift = math.copysign(shift_decades, median_log10 - centre)
    return round(centre + shift, 6)


def mode_log10(
    bin_index: np.ndarray | list[int],
    users: np.ndarray | list[float],
    usage_params: dict[str, Any],
    median_log10: float | None = None,
) -> float:
    """The mode by the rule that params.yaml's daily_usage section chooses (`mode_rule`)."""
    rule = usage_params.get("mode_rule", "tilt")
    width = float(usage_params["bin_width_decades"])
    if rule == "parabolic":
        grid = float(usage_params["mode_grid_decades"])
        return mode_log10_parabolic(bin_index, users, width, grid, median_log10)
    if rule == "tilt":
        ratio, shift = (float(usage_params[k]) for k in ("mode_tilt_ratio", "mode_shift_decades"))
        return mode_log10_from_histogram(bin_index, users, width, ratio, shift, median_log10)
    raise ValueError(f"daily_usage.mode_rule must be one of {MODE_RULES}, got {rule!r}")
