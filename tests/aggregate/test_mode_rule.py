"""The spec §2.4 mode rule on hand-made histograms (0.1-decade bins, r = 0.9, shift 0.05)."""

from __future__ import annotations

import math

from pipeline.aggregate.mode import mode_log10_from_histogram

W, R, S = 0.1, 0.9, 0.05


def test_no_shift_when_neighbours_are_light() -> None:
    # fullest bin 37 (3.7) with 100 users; neighbours 80 and 50 < 0.9 * 100
    assert mode_log10_from_histogram([35, 36, 37, 38], [10, 80, 100, 50], W, R, S) == 3.7


def test_shift_left_toward_heavier_left_neighbour() -> None:
    # 95 >= 90: half a bin toward bin 36
    assert mode_log10_from_histogram([36, 37, 38], [95, 100, 20], W, R, S) == 3.65


def test_shift_right_toward_heavier_right_neighbour() -> None:
    assert mode_log10_from_histogram([22, 23, 24], [10, 100, 90], W, R, S) == 2.35


def test_threshold_is_inclusive_and_missing_neighbour_counts_as_zero() -> None:
    # right neighbour exactly 0.9 * n_c shifts; bin 51 absent on the left
    assert mode_log10_from_histogram([52, 53], [50, 45], W, R, S) == 5.25
    assert mode_log10_from_histogram([52, 53], [50, 44], W, R, S) == 5.2


def test_tie_picks_bin_closer_to_median() -> None:
    # bins 30 and 34 both hold 100 users; median at 3.35 is closer to 3.4
    assert mode_log10_from_histogram([30, 34], [100, 100], W, R, S, median_log10=3.35) == 3.4
    assert mode_log10_from_histogram([30, 34], [100, 100], W, R, S, median_log10=3.05) == 3.0
    # no median: the lower bin
    assert mode_log10_from_histogram([34, 30], [100, 100], W, R, S) == 3.0


def test_adjacent_tie_lands_between_the_two_bins() -> None:
    # bins 40 and 41 tie; whichever is chosen, its equal neighbour pulls it to 4.05
    assert mode_log10_from_histogram([40, 41], [7, 7], W, R, S, median_log10=3.0) == 4.05
    assert mode_log10_from_histogram([40, 41], [7, 7], W, R, S, median_log10=5.0) == 4.05


def test_equal_heavy_neighbours_shift_toward_median() -> None:
    assert mode_log10_from_histogram([9, 10, 11], [95, 100, 95], W, R, S, median_log10=0.5) == 0.95
    assert mode_log10_from_histogram([9, 10, 11], [95, 100, 95], W, R, S, median_log10=1.5) == 1.05
    assert mode_log10_from_histogram([9, 10, 11], [95, 100, 95], W, R, S) == 1.0


def test_empty_histogram_is_nan() -> None:
    assert math.isnan(mode_log10_from_histogram([], [], W, R, S))
