"""Sampling-error intervals of the per-user tables (docs/UNCERTAINTY.md).

A parametric Poisson bootstrap over users: a user-direction whose weekly estimate is X with
variance V (user_week_usage in/out_bytes_var) is redrawn as (V/X) * Poisson(X^2/V) — the thinning
of X^2/V packets of equal size, the same mean and variance — in (replicates x users) numpy arrays,
and every statistic is recomputed on each replicate as the tables compute it. Mobile (billing, not
sampled) is exact. Intervals are basic (reverse percentile: 2*estimate - quantiles), which removes
the first-order bias sampling noise gives medians, modes, top shares and densities, or percentile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

from pipeline.aggregate import mode as mode_rules

DIRECTIONS = ("IN", "OUT")
SERVICES = ("broadband", "mobile")
BOOTSTRAP_KINDS = ("basic", "percentile")
HIST_LOG10_RANGE = (-2.0, 16.0)  # replicate histograms: 0.01 B to 10 PB a day
CELLS_PER_CHUNK = 4_000_000  # replicates x users held at once (~32 MB per float array)


@dataclass(frozen=True)
class IntervalParams:
    """params.yaml daily_usage.intervals: level, replicates, seed, bootstrap_interval,
    record_size_spread (relative sd of a record's mean sampled packet size, docs/UNCERTAINTY.md)."""

    level: float = 0.95
    replicates: int = 200
    seed: int = 0
    kind: str = "basic"
    record_spread: float = 0.0

    @property
    def z(self) -> float:
        """The standard normal quantile of a two-sided interval at `level`."""
        return NormalDist().inv_cdf(0.5 + self.level / 2)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> IntervalParams:
        raw = params["daily_usage"].get("intervals") or {}
        kind = str(raw.get("bootstrap_interval", "basic"))
        if kind not in BOOTSTRAP_KINDS:
            raise ValueError(
                f"params.yaml daily_usage.intervals.bootstrap_interval must be one of "
                f"{BOOTSTRAP_KINDS}, got {kind!r}"
            )
        level = float(raw.get("level", 0.95))
        if not 0 < level < 1:
            raise ValueError(f"params.yaml daily_usage.intervals.level must be in (0, 1): {level}")
        spread = float(raw.get("record_size_spread") or 0.0)
        if spread < 0:
            raise ValueError(f"daily_usage.intervals.record_size_spread must be >= 0: {spread}")
        replicates = max(1, int(raw.get("replicates", 200)))
        return cls(level, replicates, int(raw.get("seed", 0)), kind, spread)


def max_relative_error(params: dict[str, Any]) -> float:
    """The reliability floor daily_usage.max_relative_error (infinite when null: off)."""
    value = params["daily_usage"].get("max_relative_error")
    return math.inf if value is None else float(value)


@dataclass(frozen=True)
class Rule:
    """The reliability rule: sampled packets and relative standard error a value needs."""

    min_packets: float
    max_rel_error: float


@dataclass(frozen=True)
class Users:
    """One service-direction of user_week_usage: daily estimate (0 = not observed), its daily
    variance, sampled packets (inf where not sampled) and weekly bytes per daily byte."""

    daily: np.ndarray
    daily_var: np.ndarray
    packets: np.ndarray

    @property
    def exact(self) -> bool:
        """No sampling error at all (mobile billing)."""
        return not bool(np.any(self.daily_var > 0))


def users_of(user_week: pl.DataFrame, service: str, direction: str) -> Users:
    """The arrays of one service-direction, in the table's row order."""
    d = direction.lower()
    rows = user_week.filter(pl.col("service") == service).select(
        pl.col(f"daily_{d}_bytes").fill_null(0.0).alias("daily"),
        (pl.col(f"{d}_bytes_var") * (pl.col(f"daily_{d}_bytes") / pl.col(f"{d}_bytes")) ** 2)
        .fill_null(0.0)
        .alias("daily_var"),
        pl.col(f"{d}_packets_sampled").cast(pl.Float64).fill_null(math.inf).alias("packets"),
    )
    return Users(*(rows[c].to_numpy().astype(np.float64) for c in rows.columns))


def detected(
    daily: np.ndarray, packets: np.ndarray, rel_error: np.ndarray, rule: Rule
) -> np.ndarray:
    """Values above the detection limit: observed, enough packets, small enough error."""
    return (daily > 0) & (packets >= rule.min_packets) & ~(rel_error > rule.max_rel_error)


def original(users: Users, rule: Rule) -> tuple[np.ndarray, np.ndarray]:
    """(daily, detected) of the data itself, as one replicate (1 x users)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(users.daily > 0, np.sqrt(users.daily_var) / users.daily, np.nan)
    return users.daily[None, :], detected(users.daily, users.packets, rel, rule)[None, :]


def replicates(
    users: Users, rule: Rule, ip: IntervalParams, stream: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(daily, detected) of the bootstrap replicates, in chunks of (replicates x users).

    A user-direction with estimate X and variance V > 0 is (V/X) * Poisson(X^2/V): k_eff = X^2/V
    equivalent packets; its replicate rests on k* of them (sampled packets scaled by k*/k_eff,
    relative error 1/sqrt(k*)). Exact values are kept. `stream` separates the random streams."""
    rng = np.random.default_rng([ip.seed, stream])
    sampled = users.daily_var > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        k_eff = np.where(sampled, users.daily**2 / users.daily_var, 0.0)
        size = np.where(sampled, users.daily_var / users.daily, 0.0)
        packets_per_k = np.where(sampled, users.packets / k_eff, 0.0)
    n = len(users.daily)
    chunk = max(1, CELLS_PER_CHUNK // max(n, 1))
    for lo in range(0, ip.replicates, chunk):
        reps = min(chunk, ip.replicates - lo)
        k = rng.poisson(k_eff, size=(reps, n)).astype(np.float64)
        daily = np.where(sampled, size * k, users.daily)
        packets = np.where(sampled, k * packets_per_k, users.packets)
        with np.errstate(divide="ignore"):
            rel = np.where(sampled, 1.0 / np.sqrt(k), 0.0)
        yield daily, detected(daily, packets, rel, rule)


# --- the statistics, one value per replicate row (the tables' own definitions) -----------------


def median_mb(daily: np.ndarray, det: np.ndarray) -> np.ndarray:
    """daily_usage_summary's median: censored values rank lowest; NaN when a middle user is."""
    n = daily.shape[1]
    ranked = np.where(det, daily, 0.0)
    censored = (~det).sum(axis=1)
    med = np.quantile(ranked, 0.5, axis=1) / 1e6
    return np.where(2 * censored < n - 1, med, np.nan)


def histogram(daily: np.ndarray, det: np.ndarray, bin_width: float) -> np.ndarray:
    """Counts (replicates x bins) of log10(daily) over the detected values, bin i centred on
    (HIST_FIRST_BIN + i) * bin_width (round half away from zero, as DuckDB's round); values
    outside 10^HIST_LOG10_RANGE fall in the end bins."""
    first, last = (round(v / bin_width) for v in HIST_LOG10_RANGE)
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = np.floor(np.log10(np.where(det, daily, 1.0)) / bin_width + 0.5).astype(np.int64)
    width = last - first + 1
    idx = np.clip(idx, first, last) - first
    row = np.broadcast_to(np.arange(daily.shape[0])[:, None], idx.shape)
    flat = (row * width + idx)[det]
    counts = np.bincount(flat, minlength=daily.shape[0] * width)
    return counts.reshape(daily.shape[0], width).astype(np.float64)


def bin_centres_log10(bin_width: float) -> np.ndarray:
    """Centres (log10 bytes/day) of histogram()'s bins."""
    first, last = (round(v / bin_width) for v in HIST_LOG10_RANGE)
    return np.round(np.arange(first, last + 1) * bin_width, 6)


def modes_log10(counts: np.ndarray, medians_mb: np.ndarray, usage: dict[str, Any]) -> np.ndarray:
    """The mode rule (mode.py) on each replicate's histogram (a cheap call per replicate)."""
    width = float(usage["bin_width_decades"])
    bins = np.arange(counts.shape[1]) + round(HIST_LOG10_RANGE[0] / width)
    out = np.full(counts.shape[0], np.nan)
    for r in range(counts.shape[0]):
        occupied = counts[r] > 0
        if not occupied.any():
            continue
        med = medians_mb[r]
        med_log10 = math.log10(med) + 6 if np.isfinite(med) and med > 0 else None
        out[r] = mode_rules.mode_log10(bins[occupied], counts[r][occupied], usage, med_log10)
    return out


def top_shares_pct(daily: np.ndarray, det: np.ndarray, top_pcts: list[float]) -> np.ndarray:
    """top_user_share's share_pct per replicate (rows) and top_pct (columns): detected users
    first, then by bytes, the top ceil(p*N) users' bytes over all users' bytes."""
    n = daily.shape[1]
    key = np.where(det, daily, 0.0) + np.where(det, 0.0, -1.0 / (1.0 + daily))  # censored last
    order = np.argsort(-key, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(daily, order, axis=1), axis=1)
    total = cum[:, -1]
    out = np.empty((daily.shape[0], len(top_pcts)))
    for j, p in enumerate(top_pcts):
        k = math.ceil(round(p * n / 100.0, 9))
        top = cum[:, k - 1] if k >= 1 else np.zeros(daily.shape[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, j] = 100.0 * top / total
    return out


def intervals(estimates: np.ndarray, draws: np.ndarray, ip: IntervalParams) -> np.ndarray:
    """Bootstrap intervals (2 x statistics) from replicate values (replicates x statistics); NaN
    where the estimate or any of its replicates is undefined (e.g. a censored median)."""
    estimates = np.asarray(estimates, dtype=np.float64)
    draws = np.asarray(draws, dtype=np.float64).reshape(draws.shape[0], -1)
    alpha = 1.0 - ip.level
    q = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0, method="inverted_cdf")
    out = 2 * estimates[None, :] - q[::-1] if ip.kind == "basic" else q
    undefined = ~np.isfinite(estimates) | ~np.all(np.isfinite(draws), axis=0)
    return np.where(undefined[None, :], np.nan, out)


def bootstrap(
    user_week: pl.DataFrame,
    service: str,
    direction: str,
    rule: Rule,
    ip: IntervalParams,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> tuple[Users, np.ndarray]:
    """(the users, `statistic` (daily, detected) -> one row per replicate, stacked over chunks)."""
    users = users_of(user_week, service, direction)
    stream = SERVICES.index(service) * 2 + DIRECTIONS.index(direction)
    parts = [statistic(d, det) for d, det in replicates(users, rule, ip, stream)]
    return users, np.concatenate(parts, axis=0)
