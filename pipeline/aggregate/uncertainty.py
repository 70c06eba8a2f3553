"""Sampling-error intervals of the per-user tables (docs/UNCERTAINTY.md).

A parametric Poisson bootstrap over users: a user-direction whose weekly estimate is X with
variance V (user_week_usage in/out_bytes_var) is redrawn as (V/X) * Poisson(X^2/V) — the thinning
of X^2/V packets of equal size, the same mean and variance — in (replicates x users) numpy arrays,
and every statistic is recomputed on each replicate as the tables compute it. Mobile (billing, not
sampled) is exact. Intervals are normal (estimate -/+ z bootstrap standard errors), basic (reverse
percentile) or percentile; docs/UNCERTAINTY.md §4 measures which covers the truth.
"""

from __future__ import annotations

import hashlib
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
BOOTSTRAP_KINDS = ("normal", "basic", "percentile")
HIST_LOG10_RANGE = (-2.0, 16.0)  # replicate histograms: 0.01 B to 10 PB a day
CELLS_PER_CHUNK = 4_000_000  # replicates x users held at once (~32 MB per float array)
_SHARED_DRAWS: dict[bytes, np.ndarray] = {}  # replicate statistics, shared by three tables


@dataclass(frozen=True)
class IntervalParams:
    """params.yaml daily_usage.intervals: level, replicates, seed, bootstrap_interval,
    record_size_spread (relative sd of a record's mean sampled packet size, docs/UNCERTAINTY.md)."""

    level: float = 0.95
    replicates: int = 200
    seed: int = 0
    kind: str = "normal"
    record_spread: float = 0.0

    @property
    def z(self) -> float:
        """The standard normal quantile of a two-sided interval at `level`."""
        return NormalDist().inv_cdf(0.5 + self.level / 2)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> IntervalParams:
        raw = params["daily_usage"].get("intervals") or {}
        kind = str(raw.get("bootstrap_interval", "normal"))
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
    variance (0 where exact) and sampled packets (inf where not sampled)."""

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
    first, then by bytes, the top ceil(p*N) users' bytes over all users' bytes (one partial
    partition per replicate, not a sort)."""
    n = daily.shape[1]
    key = np.where(det, daily, 0.0) + np.where(det, 0.0, -1.0 / (1.0 + daily))  # censored last
    ks = [math.ceil(round(p * n / 100.0, 9)) for p in top_pcts]
    kth = sorted({min(k, n) - 1 for k in ks if k >= 1})
    total = daily.sum(axis=1)
    out = np.zeros((daily.shape[0], len(top_pcts)))
    if kth:
        part = np.argpartition(-key, kth, axis=1)[:, : kth[-1] + 1]
        cum = np.cumsum(np.take_along_axis(daily, part, axis=1), axis=1)
        for j, k in enumerate(ks):
            if k >= 1:
                out[:, j] = cum[:, min(k, n) - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * out / total[:, None]


def intervals(estimates: np.ndarray, draws: np.ndarray, ip: IntervalParams) -> np.ndarray:
    """Bootstrap intervals (2 x statistics) from replicate values (replicates x statistics); NaN
    where the estimate or any of its replicates is undefined (e.g. a censored median)."""
    estimates = np.asarray(estimates, dtype=np.float64)
    draws = np.asarray(draws, dtype=np.float64).reshape(draws.shape[0], -1)
    alpha = 1.0 - ip.level
    if ip.kind == "normal":  # estimate -/+ z bootstrap standard errors
        se = draws.std(axis=0, ddof=1) if draws.shape[0] > 1 else np.zeros(draws.shape[1])
        out = estimates[None, :] + np.array([[-ip.z], [ip.z]]) * se[None, :]
    else:
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


@dataclass(frozen=True)
class ReplicateStats:
    """The per-user tables' statistics on each bootstrap replicate (rows)."""

    median_mb: np.ndarray  # (replicates,)
    top_shares_pct: np.ndarray  # (replicates, top_pcts)
    counts: np.ndarray  # (replicates, histogram bins)


def replicate_stats(
    user_week: pl.DataFrame,
    service: str,
    direction: str,
    params: dict[str, Any],
    rule: Rule,
) -> ReplicateStats:
    """Median, top shares and histogram of every replicate of one service-direction: drawn once
    per process and shared by daily_usage_summary, daily_usage_density and top_user_share."""
    ip = IntervalParams.from_params(params)
    usage = params["daily_usage"]
    width = float(usage["bin_width_decades"])
    top_pcts = [float(p) for p in usage["top_shares_pct"]]
    users = users_of(user_week, service, direction)
    digest = hashlib.sha256(
        b"".join(a.tobytes() for a in (users.daily, users.daily_var, users.packets))
        + repr((service, direction, rule, ip, width, top_pcts)).encode()
    ).digest()
    if digest not in _SHARED_DRAWS:

        def stats(daily: np.ndarray, det: np.ndarray) -> np.ndarray:
            return np.column_stack(
                [
                    median_mb(daily, det),
                    top_shares_pct(daily, det, top_pcts),
                    histogram(daily, det, width),
                ]
            )

        _, draws = bootstrap(user_week, service, direction, rule, ip, stats)
        while len(_SHARED_DRAWS) >= 4:
            _SHARED_DRAWS.pop(next(iter(_SHARED_DRAWS)))
        _SHARED_DRAWS[digest] = draws
    draws = _SHARED_DRAWS[digest]
    k = len(top_pcts)
    return ReplicateStats(draws[:, 0], draws[:, 1 : 1 + k], draws[:, 1 + k :])
