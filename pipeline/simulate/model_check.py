"""Published targets vs the calibrated model (large fixed-seed samples).

Run: `python -m pipeline.simulate.model_check`.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl

from pipeline.aggregate.mode import mode_log10
from pipeline.config import load_params
from pipeline.progress import cli_logging
from pipeline.simulate import model

log = logging.getLogger(__name__)


def _report_mode_log10(daily_bytes: np.ndarray) -> float:
    """The mode by the report's rule (params.yaml) on 0.1-decade bins."""
    usage = load_params()["daily_usage"]
    width = float(usage["bin_width_decades"])
    idx, counts = np.unique(
        np.round(np.log10(daily_bytes) / width).astype(np.int64), return_counts=True
    )
    return mode_log10(idx, counts, usage)


def sample_usage_stats(daily_bytes: np.ndarray) -> dict[str, float]:
    """Mean/median/mode (MB/day; the report's mode rule), top-10 %/1 % shares (%) of a sample."""
    desc = np.sort(daily_bytes)[::-1]
    n = desc.size
    return {
        "mean_mb": float(daily_bytes.mean() / 1e6),
        "median_mb": float(np.median(daily_bytes) / 1e6),
        "mode_log10": _report_mode_log10(daily_bytes),
        "top10_pct": float(100 * desc[: int(np.ceil(0.10 * n))].sum() / desc.sum()),
        "top1_pct": float(100 * desc[: int(np.ceil(0.01 * n))].sum() / desc.sum()),
    }


def _june_stats(monthly: pl.DataFrame) -> dict[tuple[str, str, str], float]:
    """(metric, series, direction) → value from the monthly counters (spec §2.2 formulas)."""
    m = monthly.with_columns(
        pl.when(pl.col("service").str.starts_with("broadband"))
        .then(pl.lit("broadband"))
        .otherwise(pl.lit("mobile"))
        .alias("series")
    )
    tot = m.group_by(["month", "series", "direction"]).agg(pl.col("bytes").sum())
    val = {(r["month"], r["series"], r["direction"]): r["bytes"] for r in tot.iter_rows(named=True)}
    ipoe = {
        (r["month"], r["direction"]): r["bytes"]
        for r in m.filter(pl.col("service") == "broadband_ipoe").iter_rows(named=True)
    }
    out: dict[tuple[str, str, str], float] = {}
    for d in ("IN", "OUT"):
        for y in range(2021, 2025):
            for s in ("broadband", "mobile"):
                out[(f"yoy_pct_{y}", s, d)] = 100 * (
                    val[(f"{y}-06", s, d)] / val[(f"{y - 1}-06", s, d)] - 1
                )
        for y in (2020, 2021, 2023, 2024):
            out[(f"ipoe_share_pct_{y}", "broadband", d)] = (
                100 * ipoe[(f"{y}-06", d)] / val[(f"{y}-06", "broadband", d)]
            )
        out[("factor_2019_2024", "broadband", d)] = (
            val[("2024-06", "broadband", d)] / val[("2019-06", "broadband", d)]
        )
    out[("june2024_over_jan2020", "mobile", "OUT")] = (
        val[("2024-06", "mobile", "OUT")] / val[("2020-01", "mobile", "OUT")]
    )
    return out


def model_calibration_table(n_users: int = 200_000, seed: int = 20240603) -> pl.DataFrame:
    """One row per target: target, service, direction, year, published, model."""
    cal = model.load_calibration()
    rows = []
    for service, by_dir in cal["daily_usage"]["mixtures"].items():
        for year, week in sorted(cal["daily_usage"]["anchor_weeks"].items()):
            week_start = dt.date.fromisoformat(str(week))
            daily_in, daily_out = model.sample_daily_usage(
                service, "personal", week_start, n_users, np.random.default_rng(seed)
            )
            for direction, sample in (("IN", daily_in), ("OUT", daily_out)):
                targets = by_dir[direction][year]["targets"]
                stats = sample_usage_stats(sample)
                for key in ("mean_mb", "median_mb", "mode_log10", "top10_pct", "top1_pct"):
                    name = (
                        key
                        if key != "median_mb" or targets["median_published"]
                        else "median_mb_extrapolated"
                    )
                    rows.append(
                        (name, service, direction, int(year), float(targets[key]), stats[key])
                    )
    published_growth = {
        "yoy_pct_2021": {"broadband": (20, 23), "mobile": (39, -1)},
        "yoy_pct_2022": {"broadband": (13, 17), "mobile": (23, 8)},
        "yoy_pct_2023": {"broadband": (11, 18), "mobile": (27, 31)},
        "yoy_pct_2024": {"broadband": (14, 12), "mobile": (29, 20)},
        "ipoe_share_pct_2020": {"broadband": (24, 20)},
        "ipoe_share_pct_2021": {"broadband": (31, 30)},
        "ipoe_share_pct_2023": {"broadband": (42, 44)},
        "ipoe_share_pct_2024": {"broadband": (43, 48)},
        "factor_2019_2024": {"broadband": (1.72, 2.01)},
    }
    stats = _june_stats(model.monthly_traffic("2017-01", "2024-12"))
    for metric, by_service in published_growth.items():
        year = int(metric[-4:])
        for service, (v_in, v_out) in by_service.items():
            for direction, v in (("IN", v_in), ("OUT", v_out)):
                rows.append(
                    (
                        metric,
                        service,
                        direction,
                        year,
                        float(v),
                        stats[(metric, service, direction)],
                    )
                )
    rows.append(
        (
            "june2024_over_jan2020",
            "mobile",
            "OUT",
            2024,
            2.1,
            stats[("june2024_over_jan2020", "mobile", "OUT")],
        )
    )
    df = pl.DataFrame(
        rows, schema=["target", "service", "direction", "year", "published", "model"], orient="row"
    )
    return df.sort(["target", "service", "direction", "year"])


def main() -> None:
    cli_logging()
    with pl.Config(tbl_rows=-1, float_precision=2):
        log.info("%s", model_calibration_table())


if __name__ == "__main__":
    main()
