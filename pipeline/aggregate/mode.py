"""The mode rule of spec §2.4: fullest log10 bin, nudged half a bin toward a heavy neighbour."""

from __future__ import annotations

import math

import numpy as np


def mode_log10_from_histogram(
    bin_index: np.ndarray | list[int],
    users: np.ndarray | list[float],
    bin_width: float,
    tilt_ratio: float,
    shift_decades: float,
    median_log10: float | None = None,
) -> float:
    """log10 of the modal daily bytes: centre of the fullest bin c (ties: the bin closest to
    median_log10, then the lower one), shifted by shift_decades toward the larger neighbour when
    max(n_left, n_right) >= tilt_ratio * n_c (equal neighbours: toward the median). NaN if empty."""
    idx = np.asarray(bin_index, dtype=np.int64)
    counts = np.asarray(users, dtype=np.float64)
    if idx.size == 0 or counts.max() <= 0:
        return math.nan
    order = np.argsort(idx, kind="stable")
    idx, counts = idx[order], counts[order]
    fullest = idx[counts == counts.max()]
    has_median = median_log10 is not None and math.isfinite(median_log10)
    if fullest.size > 1 and has_median:
        c = int(fullest[np.argmin(np.abs(fullest * bin_width - median_log10))])
    else:
        c = int(fullest[0])
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
