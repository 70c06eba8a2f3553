"""Normal mixtures in log10(bytes) space: exact moments, quantiles, bin masses and the mode rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

LN10 = float(np.log(10.0))


@dataclass(frozen=True)
class Mixture:
    """Weights, means and standard deviations of the components of log10(daily bytes)."""

    weights: tuple[float, ...]
    means_log10: tuple[float, ...]
    sds_log10: tuple[float, ...]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self.weights), np.asarray(self.means_log10), np.asarray(self.sds_log10)


def cdf(mix: Mixture, x_log10: np.ndarray | float) -> np.ndarray:
    """P(log10 bytes <= x) for each x."""
    w, mu, sd = mix.arrays()
    x = np.asarray(x_log10, dtype=float)[..., None]
    return (w * special.ndtr((x - mu) / sd)).sum(axis=-1)


def quantile(mix: Mixture, p: float) -> float:
    """The log10 quantile of order p (root of the CDF)."""
    _, mu, sd = mix.arrays()
    lo, hi = float((mu - 10 * sd).min()), float((mu + 10 * sd).max())
    return float(optimize.brentq(lambda x: float(cdf(mix, x)) - p, lo, hi, xtol=1e-10))


def mean_bytes(mix: Mixture) -> float:
    """E[10^X]: the mean of daily bytes (log-normal components)."""
    w, mu, sd = mix.arrays()
    return float((w * np.exp(mu * LN10 + 0.5 * (sd * LN10) ** 2)).sum())


def bytes_above(mix: Mixture, a_log10: float) -> float:
    """E[10^X ; X > a]: the bytes carried by users above a, per user of the population."""
    w, mu, sd = mix.arrays()
    partial = np.exp(mu * LN10 + 0.5 * (sd * LN10) ** 2) * special.ndtr(
        (mu + sd**2 * LN10 - a_log10) / sd
    )
    return float((w * partial).sum())


def top_share_pct(mix: Mixture, top_pct: float) -> float:
    """Share (%) of all bytes carried by the heaviest top_pct % of users."""
    a = quantile(mix, 1.0 - top_pct / 100.0)
    return 100.0 * bytes_above(mix, a) / mean_bytes(mix)


def density(mix: Mixture, x_log10: np.ndarray) -> np.ndarray:
    """Probability density of log10(bytes) at each x (per decade)."""
    w, mu, sd = mix.arrays()
    z = (np.asarray(x_log10, dtype=float)[..., None] - mu) / sd
    return (w * np.exp(-0.5 * z**2) / (sd * np.sqrt(2 * np.pi))).sum(axis=-1)


def density_slope(mix: Mixture, x_log10: np.ndarray) -> np.ndarray:
    """Derivative of `density` with respect to x (per decade squared)."""
    w, mu, sd = mix.arrays()
    z = (np.asarray(x_log10, dtype=float)[..., None] - mu) / sd
    return (-w * z * np.exp(-0.5 * z**2) / (sd**2 * np.sqrt(2 * np.pi))).sum(axis=-1)


def count_modes(values: np.ndarray, rel_floor: float = 1e-6) -> int:
    """Local maxima of a sequence (ends included), ignoring values below rel_floor × its maximum."""
    v = np.asarray(values, dtype=float)
    v = v[v >= rel_floor * v.max()]
    steps = np.sign(np.diff(v))
    steps = steps[steps != 0]
    if steps.size == 0:
        return 1
    rises_then_falls = int(((steps[:-1] > 0) & (steps[1:] < 0)).sum())
    return rises_then_falls + int(steps[0] < 0) + int(steps[-1] > 0)


def bin_masses(mix: Mixture, centres_log10: np.ndarray, width: float = 0.1) -> np.ndarray:
    """Probability mass of the bins [c - width/2, c + width/2)."""
    return cdf(mix, centres_log10 + width / 2) - cdf(mix, centres_log10 - width / 2)


def inverse_cdf_grid(mix: Mixture, n_points: int = 40001) -> tuple[np.ndarray, np.ndarray]:
    """(cdf, x) on a fine grid, for inverse-CDF sampling with np.interp."""
    _, mu, sd = mix.arrays()
    x = np.linspace(float((mu - 9 * sd).min()), float((mu + 9 * sd).max()), n_points)
    return cdf(mix, x), x


def _between(mix: Mixture, lo: np.ndarray, hi: np.ndarray, tilted: bool) -> np.ndarray:
    """P(lo < X <= hi), or with `tilted` E[10^X ; lo < X <= hi], for each pair of bounds."""
    w, mu, sd = mix.arrays()
    centre = mu + sd**2 * LN10 if tilted else mu  # bytes weight each component by 10^x
    a = (np.asarray(lo, dtype=float)[..., None] - centre) / sd
    b = (np.asarray(hi, dtype=float)[..., None] - centre) / sd
    # Φ(b) - Φ(a), taken on the side of the tail where it does not cancel.
    mass = np.where(a > 0, special.ndtr(-a) - special.ndtr(-b), special.ndtr(b) - special.ndtr(a))
    scale = np.exp(mu * LN10 + 0.5 * (sd * LN10) ** 2) if tilted else 1.0
    return (w * scale * mass).sum(axis=-1)


def stratum_means_log10(mix: Mixture, n: int) -> np.ndarray:
    """log10 of the mean of 10^X within each of n equal-probability strata, ascending.

    A population that takes one value per stratum has the mixture's mean exactly and, to within
    one user per bin, its histogram, whatever n is; the top stratum carries the whole tail."""
    if n <= 0:
        return np.zeros(0)
    p = np.arange(1, n) / n
    cdf_grid, x_grid = inverse_cdf_grid(mix)
    edges = np.interp(p, cdf_grid, x_grid)
    for _ in range(4):  # Newton steps from the grid's linear interpolation to the exact quantiles
        edges = edges - (cdf(mix, edges) - p) / np.maximum(density(mix, edges), 1e-300)
    lo = np.concatenate([[-np.inf], edges])
    hi = np.concatenate([edges, [np.inf]])
    return np.log10(_between(mix, lo, hi, tilted=True) / _between(mix, lo, hi, tilted=False))


def density_curvature(mix: Mixture, x_log10: np.ndarray) -> np.ndarray:
    """Second derivative of `density` with respect to x (per decade cubed)."""
    w, mu, sd = mix.arrays()
    z = (np.asarray(x_log10, dtype=float)[..., None] - mu) / sd
    return (w * (z**2 - 1) * np.exp(-0.5 * z**2) / (sd**3 * np.sqrt(2 * np.pi))).sum(axis=-1)
