"""Calibrated model of the simulated ISP: per-user usage, hourly shapes, ports, monthly totals.

Everything fitted lives in calibration.yaml (rewritten by `fit_calibration.py`); this module needs
nothing outside the repository. Hour-of-day shapes are design choices kept here as constants.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from scipy import interpolate

from pipeline.simulate.mixture import Mixture, stratum_means_log10

CALIBRATION_FILE = Path(__file__).with_name("calibration.yaml")
SERVICES = ("broadband", "mobile")
SERVICE_CLASSES = ("personal", "enterprise")
ROLES = ("analysis", "fig2", "pre_covid")
REMOTE_WORK_START = dt.date(2020, 3, 1)


@lru_cache(maxsize=1)
def load_calibration(path: str | None = None) -> dict[str, Any]:
    """The fitted parameters (calibration.yaml) as a plain dict."""
    return yaml.safe_load(Path(path or CALIBRATION_FILE).read_text())


def _check(service: str, service_class: str | None = None) -> None:
    if service not in SERVICES:
        raise ValueError(f"service must be one of {SERVICES}, got {service!r}")
    if service_class is not None and service_class not in SERVICE_CLASSES:
        raise ValueError(f"service_class must be one of {SERVICE_CLASSES}, got {service_class!r}")


def _date(value: str | dt.date) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


# ---- per-user daily usage --------------------------------------------------------------------


def _year_position(week_start: dt.date) -> float:
    """Fractional position between the analysis-week anchors (2019.0 … 2024.0), COVID-warped."""
    cal = load_calibration()["daily_usage"]
    anchors = sorted((int(y), _date(d)) for y, d in cal["anchor_weeks"].items())
    if week_start <= anchors[0][1]:
        return float(anchors[0][0])
    if week_start >= anchors[-1][1]:
        return float(anchors[-1][0])
    warp = [(_date(d), float(f)) for d, f in cal["covid_warp"]]
    if warp[0][0] <= week_start <= warp[-1][0]:
        days = [(d - warp[0][0]).days for d, _ in warp]
        return anchors[0][0] + float(
            np.interp((week_start - warp[0][0]).days, days, [f for _, f in warp])
        )
    for (y0, d0), (y1, d1) in zip(anchors, anchors[1:], strict=False):
        if d0 <= week_start <= d1:
            return y0 + (week_start - d0).days / (d1 - d0).days * (y1 - y0)
    raise AssertionError("unreachable")


def usage_mixture(service: str, service_class: str, direction: str, week_start: dt.date) -> Mixture:
    """The log10(daily bytes) mixture of one population in one week (interpolated in time)."""
    _check(service, service_class)
    cal = load_calibration()["daily_usage"]
    by_year = cal["mixtures"][service][direction]
    pos = _year_position(week_start)
    y0 = min(int(math.floor(pos)), max(int(y) for y in by_year))
    y1 = min(y0 + 1, max(int(y) for y in by_year))
    f = pos - y0
    p0, p1 = by_year[y0], by_year[y1]
    w = (1 - f) * np.asarray(p0["weights"]) + f * np.asarray(p1["weights"])
    mu = (1 - f) * np.asarray(p0["means_log10"]) + f * np.asarray(p1["means_log10"])
    sd = (1 - f) * np.asarray(p0["sds_log10"]) + f * np.asarray(p1["sds_log10"])
    if service_class == "enterprise":
        mu = mu + cal["enterprise_shift_log10"][service][direction]
        sd = np.sqrt(sd**2 + cal["enterprise_extra_sd_log10"] ** 2)
    return Mixture(tuple(w / w.sum()), tuple(mu), tuple(sd))


@lru_cache(maxsize=64)
def _stratum_values(
    service: str, service_class: str, direction: str, week_start: dt.date, n_users: int
) -> np.ndarray:
    mix = usage_mixture(service, service_class, direction, week_start)
    return np.power(10.0, stratum_means_log10(mix, n_users))


def ranks(z: np.ndarray) -> np.ndarray:
    """0-based rank of each value (ties in input order)."""
    rank = np.empty(len(z), dtype=np.int64)
    rank[np.argsort(z, kind="stable")] = np.arange(len(z))
    return rank


def sample_daily_usage(
    service: str, service_class: str, week_start: dt.date, n_users: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """True per-user daily IN (upload) and OUT (download) bytes, float64 > 0, for users active
    that week.

    One value pair per user as the report counts users (a dual-protocol subscriber is two users).
    IN and OUT are joined by a Gaussian copula (rank correlation ≈ 0.65). Each marginal is
    stratified: the user of rank i takes the mean of the i-th of n equal-probability strata of
    the model (`mixture.stratum_means_log10`), so that any n users carry the model's mean exactly
    and its histogram to one user a bin. Independent draws left the top 1 % of ~10^4 log-normal
    users to a handful of extreme values (3 users above 10^12 B/day where 0.4 were expected made
    the 2024 top-10 % OUT share 56.8 %, not 49.9 %); mid-quantiles alone left means 3 % low."""
    _check(service, service_class)
    rho = float(load_calibration()["daily_usage"]["copula_rho"])
    z = rng.standard_normal((2, n_users))
    rank_out = ranks(z[0])
    rank_in = ranks(rho * z[0] + math.sqrt(1 - rho**2) * z[1])
    daily_in = _stratum_values(service, service_class, "IN", week_start, n_users)[rank_in]
    daily_out = _stratum_values(service, service_class, "OUT", week_start, n_users)[rank_out]
    return daily_in, daily_out


# ---- hour-of-week shapes ---------------------------------------------------------------------


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A circular Gaussian bump over the 24 h day."""
    d = (hours - centre + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / width) ** 2)


def _remote_work_level(week_start: dt.date) -> float:
    """Weekday-daytime upload level: low before COVID, up from March 2020, then slowly growing."""
    if week_start < REMOTE_WORK_START:
        return 0.35
    return min(1.0, 0.85 + 0.03 * (week_start - REMOTE_WORK_START).days / 365.25)


def _day_profile(service: str, direction: str, weekend: bool, remote: float) -> np.ndarray:
    """Relative traffic in each of the 24 local hours of one day."""
    h = np.arange(24) + 0.5
    if service == "mobile":
        if weekend:
            p = 0.45 + 0.9 * _bump(h, 15.0, 4.0) + 0.9 * _bump(h, 21.5, 2.0)
        else:
            p = 0.4 + 0.9 * _bump(h, 7.8, 0.9) + 1.1 * _bump(h, 12.5, 0.7)
            p += 0.55 * _bump(h, 16.5, 3.0) + 1.0 * _bump(h, 21.5, 1.6)
        return p * (1.0 - 0.6 * _bump(h, 4.0, 2.0))
    if direction == "OUT":
        p = 1.0 + 1.0 * _bump(h, 22.0, 2.3) + (0.55 if weekend else 0.25) * _bump(h, 14.5, 3.5)
    else:
        p = 0.9 + 0.55 * _bump(h, 22.0, 2.5)
        day = (0.6 if weekend else 1.3 * remote) * _bump(h, 14.0, 3.0)
        if not weekend:
            day *= 1.0 - 0.35 * remote * _bump(h, 12.5, 0.45)  # lunch-break dip in remote work
        p = p + day
    return p * (1.0 - 0.4 * _bump(h, 4.5, 2.2))


def hourly_weights(service: str, week_start: dt.date, role: str) -> dict[str, np.ndarray]:
    """{"IN": w, "OUT": w}: fraction of the week's bytes in each local hour, shape (168,), sums
    to 1; index 0 = Monday 00:00 local. The era (pre/post COVID) follows week_start."""
    _check(service)
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    remote = _remote_work_level(week_start)
    day_level = np.array([1.0, 1.0, 1.0, 1.0, 1.02, 1.1, 1.12])
    if service == "mobile":
        day_level = np.array([1.0, 1.0, 1.0, 1.0, 1.03, 0.95, 0.92])
    out = {}
    for direction in ("IN", "OUT"):
        days = []
        for dow in range(7):
            p = _day_profile(service, direction, dow >= 5, remote)
            days.append(day_level[dow] * p / p.mean())
        w = np.concatenate(days)
        out[direction] = w / w.sum()
    return out


# ---- ports -----------------------------------------------------------------------------------


def port_mix(service: str, year: int) -> pl.DataFrame:
    """Byte shares (IN+OUT) by traffic category: protocol, server_port (-1 = none/P2P), kind
    ("server","p2p","noport"), share (sums to 1), bytes_per_packet_in, bytes_per_packet_out.

    For the min-port rule to see `server_port`, the client side must use a port above it
    (e.g. uniform in [max(49152, server_port + 1), 65535]); "p2p" uses dynamic ports (>= 1024) on
    both sides, avoiding the listed server ports. Years outside 2019–2024 hold the nearest year."""
    _check(service)
    by_year = load_calibration()["port_mix"][service]
    years = sorted(int(y) for y in by_year)
    rows = by_year[min(max(int(year), years[0]), years[-1])]
    df = pl.DataFrame(
        rows,
        schema={
            "protocol": pl.Int64,
            "server_port": pl.Int64,
            "kind": pl.String,
            "share": pl.Float64,
            "bytes_per_packet_in": pl.Float64,
            "bytes_per_packet_out": pl.Float64,
        },
    )
    return df.with_columns(pl.col("share") / pl.col("share").sum())


# ---- monthly interface counters --------------------------------------------------------------


def _month_index(month: str) -> int:
    y, m = month.split("-")
    return int(y) * 12 + int(m) - 1


def _month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _days_in_month(index: int) -> int:
    y, m = divmod(index, 12)
    nxt = dt.date(y + (m == 11), (m + 1) % 12 + 1, 1)
    return (nxt - dt.date(y, m + 1, 1)).days


def _log_trend(anchors: dict[str, float], months: np.ndarray) -> np.ndarray:
    """Monotone-cubic interpolation of log rates through the anchors, linear outside."""
    idx = np.array([_month_index(m) for m in anchors], dtype=float)
    logv = np.log(np.array(list(anchors.values()), dtype=float))
    order = np.argsort(idx)
    idx, logv = idx[order], logv[order]
    inside = interpolate.PchipInterpolator(idx, logv, extrapolate=False)(months)
    left = logv[0] + (months - idx[0]) * (logv[1] - logv[0]) / (idx[1] - idx[0])
    right = logv[-1] + (months - idx[-1]) * (logv[-1] - logv[-2]) / (idx[-1] - idx[-2])
    return np.where(months < idx[0], left, np.where(months > idx[-1], right, inside))


def _ipoe_share(anchors: dict[str, float], months: np.ndarray) -> np.ndarray:
    idx = np.array([_month_index(m) for m in anchors], dtype=float)
    pct = np.array(list(anchors.values()), dtype=float)
    inside = interpolate.PchipInterpolator(idx, pct, extrapolate=False)(months)
    share = np.where(months < idx[0], pct[0] * np.exp((months - idx[0]) / 12.0), inside)
    return np.where(months > idx[-1], pct[-1], share) / 100.0


def _noise(series: str, months: np.ndarray, sd: float, seed: int) -> np.ndarray:
    """Multiplicative month noise, independent of the range asked; none in June or Jan 2020."""
    code = {"broadband:IN": 1, "broadband:OUT": 2, "mobile:IN": 3, "mobile:OUT": 4}[series]
    eps = np.array([np.random.default_rng([seed, code, int(m)]).standard_normal() for m in months])
    quiet = (months % 12 == 5) | (months == _month_index("2020-01"))
    return np.where(quiet, 1.0, np.exp(sd * eps))


def monthly_traffic(first_month: str, last_month: str) -> pl.DataFrame:
    """Monthly interface-counter totals: month ("YYYY-MM"), service
    (broadband_pppoe|broadband_ipoe|mobile), direction (IN|OUT), bytes (float64).

    Smooth trend through June anchors with mild seasonality and noise; June months and Jan 2020
    carry no noise so the published June-on-June statistics hold exactly."""
    cal = load_calibration()["monthly_traffic"]
    first, last = _month_index(first_month), _month_index(last_month)
    if last < first:
        raise ValueError(f"last_month {last_month} is before first_month {first_month}")
    months = np.arange(first, last + 1, dtype=float)
    jan2020 = np.array([float(_month_index("2020-01"))])
    seconds = np.array([_days_in_month(int(m)) * 86_400 for m in months], dtype=float)
    season = np.asarray(cal["seasonality"], dtype=float)[(months % 12).astype(int)]
    frames = []
    for svc in ("broadband", "mobile"):
        anchors = cal["anchors_relative_rate"][svc]
        # Unit: Jan-2020 OUT is the configured number of bytes (its seasonality and noise are 1).
        unit = (
            cal["scale_jan2020_out_bytes"][svc]
            / (31 * 86_400)
            / math.exp(_log_trend(anchors["OUT"], jan2020)[0])
        )
        for direction in ("IN", "OUT"):
            bump = np.array(
                [cal["covid_bump"][svc][direction].get(_month_name(int(m)), 1.0) for m in months]
            )
            rate = unit * np.exp(_log_trend(anchors[direction], months)) * season * bump
            total = (
                rate * _noise(f"{svc}:{direction}", months, cal["noise_sd"], cal["seed"]) * seconds
            )
            names = [_month_name(int(m)) for m in months]
            if svc == "mobile":
                frames.append(_frame(names, "mobile", direction, total))
                continue
            share = _ipoe_share(cal["ipoe_share_pct"][direction], months)
            frames.append(_frame(names, "broadband_pppoe", direction, total * (1 - share)))
            frames.append(_frame(names, "broadband_ipoe", direction, total * share))
    service_order = {"broadband_pppoe": 0, "broadband_ipoe": 1, "mobile": 2}
    df = pl.concat(frames)
    return (
        df.with_columns(pl.col("service").replace_strict(service_order).alias("_o"))
        .sort(["month", "_o", "direction"])
        .drop("_o")
    )


def _frame(months: list[str], service: str, direction: str, values: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "month": months,
            "service": [service] * len(months),
            "direction": [direction] * len(months),
            "bytes": values.astype(np.float64),
        }
    )


# ---- access-protocol mix ---------------------------------------------------------------------


def _interp_dates(anchors: dict[str, float], day: dt.date) -> float:
    xs = [_date(d).toordinal() for d in anchors]
    return float(np.interp(day.toordinal(), xs, list(anchors.values())))


def ipoe_user_fraction(week_start: dt.date) -> float:
    """Share of broadband subscriptions that use IPv6 IPoE (0 before 2018)."""
    return _interp_dates(load_calibration()["ipoe_user_fraction"], week_start)


def dual_protocol_fraction(week_start: dt.date) -> float:
    """Share of IPoE subscriptions that also use PPPoE."""
    return _interp_dates(load_calibration()["dual_protocol_fraction"], week_start)
