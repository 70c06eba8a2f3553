"""Flow synthesis: how users' bytes are spread over the hours of the week."""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipeline.simulate import model
from pipeline.simulate.flows import HOURS_PER_WEEK, choose_active_hours


def test_hourly_bytes_follow_the_weights_without_a_pile_up_hour() -> None:
    """Light users (fewer expected active hours than one) must not all land in one hour: the
    population's bytes per hour follow hour_w, no hour far above its share (Fig 7's old spike)."""
    rng = np.random.default_rng(7)
    n_users = 20_000
    n_hours = np.concatenate([np.full(n_users // 2, 0.3), rng.uniform(1, 40, n_users // 2)])
    user_bytes = np.where(n_hours < 1, 1e6, 1e8) * rng.lognormal(0, 0.5, n_users)
    hour_w = model.hourly_weights("broadband", dt.date(2024, 6, 3), "analysis")
    user, hour, weight = choose_active_hours(n_hours, hour_w, user_bytes, rng)
    for d, name in enumerate(("IN", "OUT")):
        per_hour = np.bincount(hour, weights=user_bytes[user] * weight[:, d],
                               minlength=HOURS_PER_WEEK)  # fmt: skip
        ratio = (per_hour / per_hour.sum()) / (hour_w[name] / hour_w[name].sum())
        assert ratio.max() < 1.15, f"{name}: hour {ratio.argmax()} has {ratio.max():.2f}x its share"
        light = n_hours < 1
        light_hours = np.bincount(hour[light[user]], minlength=HOURS_PER_WEEK)
        assert light_hours.max() < 0.05 * light.sum(), "light users piled into one hour"
