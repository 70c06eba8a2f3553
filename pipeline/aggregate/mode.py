"""The mode rules of spec §2.4 (INFERRED, chosen in params.yaml daily_usage.mode_rule).

`parabolic` (default): the vertex of the parabola fitted by least squares to the log user counts
of the bins around the fullest one (`mode_fit_bins` of them, centred on the bin nearest the
vertex), rounded to the 0.05-decade grid the published modes lie on.
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


def parabola_vertex(counts: np.ndarray) -> tuple[float, float]:
    """Least-squares parabola through the log of an odd number of counts at -h..h: its vertex
    (in bins from the middle one, clipped to ±h) and its curvature (-2 × the x² coefficient;
    0 when it has no maximum). Exact for a log-normal peak; empty bins count as half a user."""
    h = len(counts) // 2
    x = np.arange(-h, h + 1, dtype=np.float64)
    a, b, _ = np.polyfit(x, np.log(np.maximum(np.asarray(counts, dtype=np.float64), 0.5)), 2)
    if a > -1e-12:  # a line or a valley: no maximum to place
        return 0.0, 0.0
    return float(np.clip(-b / (2 * a), -h, h)), float(-2 * a)


def vertex_bins(
    counts_by_bin: dict[int, float], fullest: int, fit_bins: int
) -> tuple[float, float]:
    """Vertex (in bin units) and curvature of the parabola fitted around `fullest`, refitted once
    around the bin nearest the first vertex so a flat top does not decide the window."""
    h = fit_bins // 2
    centre = fullest
    for _ in range(2):
        window = [counts_by_bin.get(i, 0.0) for i in range(centre - h, centre + h + 1)]
        offset, curvature = parabola_vertex(np.asarray(window))
        vertex = centre + offset
        if round(vertex) == centre:
            break
        centre = round(vertex)
    return vertex, curvature


def mode_log10_parabolic(
    bin_index: np.ndarray | list[int],
    users: np.ndarray | list[float],
    bin_width: float,
    grid_decades: float,
    fit_bins: int = 7,
    median_log10: float | None = None,
) -> float:
    """log10 of the modal daily bytes by the `parabolic` rule, on the grid; NaN if empty."""
    if fit_bins < 3 or fit_bins % 2 == 0:
        raise ValueError(f"daily_usage.mode_fit_bins must be odd and at least 3, got {fit_bins}")
    idx, counts = _sorted_counts(bin_index, users)
    if idx.size == 0 or counts.max() <= 0:
        return math.nan
    c = _fullest_bin(idx, counts, bin_width, median_log10)
    by_bin = dict(zip(idx.tolist(), counts.tolist(), strict=True))
    vertex, _ = vertex_bins(by_bin, c, fit_bins)
    return round(round(vertex * bin_width / grid_decades) * grid_decades, 6)


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
        fit_bins = int(usage_params.get("mode_fit_bins", 7))
        return mode_log10_parabolic(bin_index, users, width, grid, fit_bins, median_log10)
    if rule == "tilt":
        ratio, shift = (float(usage_params[k]) for k in ("mode_tilt_ratio", "mode_shift_decades"))
        return mode_log10_from_histogram(bin_index, users, width, ratio, shift, median_log10)
    raise ValueError(f"daily_usage.mode_rule must be one of {MODE_RULES}, got {rule!r}")
