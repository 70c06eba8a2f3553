"""The `parabolic` mode rule (params.yaml default) on hand-made histograms of 0.1-decade bins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.aggregate.mode import mode_log10, mode_log10_parabolic, parabola_vertex

W, GRID = 0.1, 0.05


def lognormal_counts(peak_log10: float, sd: float = 0.4, users: float = 1e4):
    """Expected user counts of 0.1-decade bins (centres k/10) for a log-normal peak."""
    idx = np.arange(round(peak_log10 * 10) - 15, round(peak_log10 * 10) + 16)
    return idx, users * np.exp(-0.5 * ((idx * W - peak_log10) / sd) ** 2)


@pytest.mark.parametrize(
    ("peak", "mode"),
    [(3.70, 3.7), (3.74, 3.75), (3.76, 3.75), (3.72, 3.7), (3.78, 3.8), (2.351, 2.35)],
)
def test_vertex_of_a_lognormal_peak_rounded_to_the_grid(peak: float, mode: float) -> None:
    idx, counts = lognormal_counts(peak)
    assert mode_log10_parabolic(idx, counts, W, GRID, 7) == mode


def test_vertex_is_exact_for_a_parabola_in_log_space() -> None:
    x = np.arange(-3, 4)
    offset, curvature = parabola_vertex(np.exp(-0.05 * (x - 0.3) ** 2))
    assert offset == pytest.approx(0.3) and curvature == pytest.approx(0.1)
    assert parabola_vertex(np.array([1.0, 2.0, 4.0])) == (0.0, 0.0)  # no maximum: no offset


def test_flat_top_refits_around_the_vertex() -> None:
    # two equal fullest bins: the fit moves its window to the bin nearest the first vertex
    idx, counts = lognormal_counts(3.65, sd=0.5)
    assert counts[np.argsort(counts)[-2:]].std() < 1e-6 * counts.max()
    assert mode_log10_parabolic(idx, counts, W, GRID, 7) == 3.65


def test_a_few_users_more_or_less_do_not_move_a_centred_mode() -> None:
    idx, counts = lognormal_counts(9.75, sd=0.45, users=700)
    rng = np.random.default_rng(3)
    for _ in range(20):
        noisy = counts * (1 + rng.normal(0, 0.02, counts.size))  # ±2 % in every bin
        assert mode_log10_parabolic(idx, noisy, W, GRID, 7) == 9.75


def test_rule_choice_and_bad_parameters() -> None:
    idx, counts = lognormal_counts(5.0, sd=0.2)
    usage = {"bin_width_decades": W, "mode_grid_decades": GRID, "mode_fit_bins": 7}
    assert mode_log10(idx, counts, {**usage, "mode_rule": "parabolic"}) == 5.0
    tilt = {**usage, "mode_rule": "tilt", "mode_tilt_ratio": 0.9, "mode_shift_decades": 0.05}
    assert mode_log10(idx, counts, tilt) == 5.0
    with pytest.raises(ValueError, match="mode_rule"):
        mode_log10(idx, counts, {**usage, "mode_rule": "kde"})
    with pytest.raises(ValueError, match="mode_fit_bins"):
        mode_log10_parabolic(idx, counts, W, GRID, 4)
    assert math.isnan(mode_log10_parabolic([], [], W, GRID, 7))
