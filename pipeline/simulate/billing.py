"""Mobile access-gateway billing (per number and day) and the monthly interface counters."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.atomic import write_bytes_atomic
from pipeline.simulate import model, world

IDLE_DAY_P = {"personal": 0.12, "enterprise": 0.05}  # chance that a number has no data on a day
DAY_SPREAD_SHAPE = 3.0  # gamma shape of day-to-day variation


def split_week_over_days(
    weekly_in: np.ndarray, weekly_out: np.ndarray, enterprise: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(active (U, 7) bool, uplink (U, 7) int64, downlink (U, 7) int64); rows sum to the week."""
    n = len(weekly_in)
    idle_p = np.where(enterprise, IDLE_DAY_P["enterprise"], IDLE_DAY_P["personal"])
    active = rng.random((n, 7)) >= idle_p[:, None]
    active[~active.any(axis=1), 0] = True
    weight = rng.gamma(DAY_SPREAD_SHAPE, 1.0, (n, 7)) * active
    weight /= weight.sum(axis=1, keepdims=True)
    uplink = np.round(weekly_in[:, None] * weight).astype(np.int64)
    downlink = np.round(weekly_out[:, None] * weight).astype(np.int64)
    return active, uplink, downlink


def write_mobile_billing(
    days: list[dt.date],
    msisdn: list[str],
    enterprise: np.ndarray,
    weekly_in: np.ndarray,
    weekly_out: np.ndarray,
    billing_dir: Path,
    rng: np.random.Generator,
) -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    """Write `billing-YYYY-MM-DD.csv` per day (idle numbers have no row).

    Returns (name → bytes, weekly uplink, weekly downlink) as billed (integer bytes)."""
    active, uplink, downlink = split_week_over_days(weekly_in, weekly_out, enterprise, rng)
    order = np.argsort(np.asarray(msisdn))
    classes = world.class_names(enterprise)
    written: dict[str, bytes] = {}
    for d, day in enumerate(days):
        rows = order[active[order, d]]
        df = pl.DataFrame(
            {
                "date": [day.isoformat()] * len(rows),
                "msisdn": np.asarray(msisdn)[rows],
                "service_class": classes[rows],
                "uplink_bytes": uplink[rows, d],
                "downlink_bytes": downlink[rows, d],
            }
        )
        name = f"billing-{day.isoformat()}.csv"
        data = df.write_csv().encode("ascii")
        write_bytes_atomic(billing_dir / name, data)
        written[name] = data
    return written, uplink.sum(axis=1), downlink.sum(axis=1)


def write_monthly_counters(counters_dir: Path, first_month: str, last_month: str) -> bytes:
    """Write `monthly_traffic.csv` (month, service, direction, integer bytes) from the model."""
    df = (
        model.monthly_traffic(first_month, last_month)
        .select(
            pl.col("month").cast(pl.String),
            pl.col("service").cast(pl.String),
            pl.col("direction").cast(pl.String),
            pl.col("bytes").round().cast(pl.Int64),
        )
        .sort(["month", "service", "direction"])
    )
    data = df.write_csv().encode("ascii")
    write_bytes_atomic(counters_dir / "monthly_traffic.csv", data)
    return data
