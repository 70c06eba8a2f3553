"""Coverage of the sampling-error intervals against the simulated ISP's truth (issue 13).

One small world of broadband users (true weekly bytes from the simulator's usage model) is sampled
many times with the simulator's own packet sampling (`flows.sample_user_cells`: Poisson thinning of
each user-hour-category's packets at 1 in 8192 or 16384); each draw's flows go through the
pipeline's aggregate functions (user_week_usage, daily_usage_summary, top_user_share,
daily_usage_density, usage_by_port) and their intervals. The truth is the same functions on the
unsampled volumes. Run `python -m tests.aggregate.coverage [draws] [users]` to print the table.
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.aggregate import metrics
from pipeline.config import analysis_week, load_params, week_bounds_ms
from pipeline.simulate import flows, model

YEAR = 2024
INTERVALS = (8192, 16384)  # the simulator's exporters' 1-in-N
RECORDS_PER_USER = 150
SUMMARY_STATS = ("mean_mb", "median_mb", "mode_log10")
MOBILE_ROWS = 20  # a few unsampled mobile flows and billing rows: the tables need the service


@dataclass(frozen=True)
class World:
    """True weekly bytes (users x IN, OUT) and each user's sampling interval."""

    weekly: np.ndarray
    interval: np.ndarray
    mix: flows.PortMix
    hour_w: dict[str, np.ndarray]


def coverage_params(bootstrap_interval: str | None = None) -> dict[str, Any]:
    """params.yaml, with the 2024 analysis week; optionally another bootstrap interval kind."""
    params = copy.deepcopy(load_params())
    if bootstrap_interval is not None:
        params["daily_usage"]["intervals"]["bootstrap_interval"] = bootstrap_interval
    return params


def make_world(users: int, seed: int, params: dict[str, Any]) -> World:
    week = analysis_week(YEAR, params)
    rng = np.random.default_rng(seed)
    daily_in, daily_out = model.sample_daily_usage("broadband", "personal", week.start, users, rng)
    weekly = 7.0 * np.column_stack([daily_in, daily_out])
    interval = np.asarray(INTERVALS, dtype=np.float64)[np.arange(users) % len(INTERVALS)]
    mix = flows.PortMix.from_frame(model.port_mix("broadband", YEAR))
    return World(weekly, interval, mix, model.hourly_weights("broadband", week.start, week.role))


def _mobile_rows(start_ms: int) -> dict[str, list[Any]]:
    n = MOBILE_ROWS
    return {
        "flow_start_ms": [start_ms + 60_000 * i for i in range(n)],
        "service": ["mobile"] * n,
        "user_key": [None] * n,
        "user_protocol": [None] * n,
        "service_class": [None] * n,
        "direction": ["OUT"] * n,
        "bytes_est": [1e6] * n,
        "packets": [1000] * n,
        "sampling_interval": [1] * n,
        "protocol": [6] * n,
        "src_port": [443] * n,
        "dst_port": [50000] * n,
    }


def _write(root: Path, columns: dict[str, Any]) -> str:
    """Attributed flows as one partition of the analysis week; returns the glob."""
    df = pl.DataFrame(columns).with_columns(
        pl.col("packets").cast(pl.UInt64),
        pl.col("sampling_interval").cast(pl.UInt32),
        pl.col("protocol").cast(pl.UInt8),
        pl.col("src_port").cast(pl.UInt16),
        pl.col("dst_port").cast(pl.UInt16),
        pl.lit(None, pl.String).alias("peer_user_key"),
        pl.lit(None, pl.String).alias("peer_user_protocol"),
        pl.lit(None, pl.String).alias("peer_service_class"),
    )
    folder = root / "attributed" / "date=2024-06-05" / "exporter=x"
    folder.mkdir(parents=True, exist_ok=True)
    df.write_parquet(folder / "flows.parquet")
    return str(root / "attributed" / "date=*" / "exporter=*" / "flows.parquet")


def _mobile_billing(root: Path, week_start: dt.date) -> Path:
    path = root / "mobile_usage.parquet"
    pl.DataFrame(
        {
            "date": [week_start.isoformat()] * 3,
            "msisdn": ["1", "2", "3"],
            "service_class": ["personal"] * 3,
            "uplink_bytes": [1_000_000, 2_000_000, 3_000_000],
            "downlink_bytes": [5_000_000, 6_000_000, 7_000_000],
        }
    ).write_parquet(path)
    return path


def sampled_flows(
    world: World, rng: np.random.Generator, start_ms: int
) -> tuple[dict, pl.DataFrame]:
    """One sampling draw: attributed-flow columns and the port truth of the draw."""
    truth = flows.PortTruth()
    cells = flows.sample_user_cells(
        world.weekly,
        world.interval,
        world.hour_w,
        world.mix,
        RECORDS_PER_USER * len(world.weekly),
        truth,
        rng,
    )
    flows.fill_server_ports(cells, world.mix, rng)
    n = world.interval[cells.user]
    mobile = _mobile_rows(start_ms)
    cols = {
        "flow_start_ms": np.concatenate(
            [start_ms + cells.hour * flows.HOUR_MS + 1, mobile["flow_start_ms"]]
        ),
        "service": ["pppoe"] * len(n) + mobile["service"],
        "user_key": [f"u{u:06d}" for u in cells.user.tolist()] + mobile["user_key"],
        "user_protocol": ["pppoe"] * len(n) + mobile["user_protocol"],
        "service_class": ["personal"] * len(n) + mobile["service_class"],
        "direction": np.where(cells.upload, "IN", "OUT").tolist() + mobile["direction"],
        "bytes_est": np.concatenate([cells.octets.astype(np.float64) * n, mobile["bytes_est"]]),
        "packets": np.concatenate([cells.packets, mobile["packets"]]),
        "sampling_interval": np.concatenate([n.astype(np.int64), mobile["sampling_interval"]]),
        "protocol": np.concatenate([world.mix.protocol[cells.category], mobile["protocol"]]),
        "src_port": np.concatenate([cells.user_port, mobile["src_port"]]),
        "dst_port": np.concatenate([cells.remote_port, mobile["dst_port"]]),
    }
    return cols, truth.frame("pppoe")


def truth_flows(port_truth: pl.DataFrame, start_ms: int) -> dict:
    """The unsampled volume by protocol and port as flows of N = 1 (no sampling error)."""
    mobile = _mobile_rows(start_ms)
    k = port_truth.height
    return {
        "flow_start_ms": [start_ms + 1] * k + mobile["flow_start_ms"],
        "service": ["pppoe"] * k + mobile["service"],
        "user_key": [None] * k + mobile["user_key"],
        "user_protocol": [None] * k + mobile["user_protocol"],
        "service_class": [None] * k + mobile["service_class"],
        "direction": ["OUT"] * k + mobile["direction"],
        "bytes_est": port_truth["true_bytes"].to_list() + mobile["bytes_est"],
        "packets": [1] * k + mobile["packets"],
        "sampling_interval": [1] * k + mobile["sampling_interval"],
        "protocol": port_truth["protocol"].to_list() + mobile["protocol"],
        "src_port": port_truth["port_min"].to_list() + mobile["src_port"],
        "dst_port": port_truth["port_min"].to_list() + mobile["dst_port"],
    }


def truth_user_week(world: World) -> pl.DataFrame:
    """The per-user table of the unsampled volumes (variance 0: every statistic is exact)."""
    n = len(world.weekly)
    w_in, w_out = world.weekly[:, 0], world.weekly[:, 1]
    return pl.DataFrame(
        {
            "year": [YEAR] * n,
            "service": ["broadband"] * n,
            "user_key": [f"u{u:06d}" for u in range(n)],
            "in_bytes": w_in,
            "out_bytes": w_out,
            "daily_in_bytes": w_in / 7,
            "daily_out_bytes": w_out / 7,
            "in_packets_sampled": [10**9] * n,
            "out_packets_sampled": [10**9] * n,
            "in_bytes_var": [0.0] * n,
            "out_bytes_var": [0.0] * n,
            "in_rel_error": [0.0] * n,
            "out_rel_error": [0.0] * n,
        }
    )


def _user_tables(user_week: pl.DataFrame, params: dict[str, Any]) -> dict[str, pl.DataFrame]:
    bb = pl.col("service") == "broadband"
    return {
        "summary": metrics.daily_usage_summary(user_week, YEAR, params).filter(bb),
        "top": metrics.top_user_share(user_week, YEAR, params).filter(bb),
        "density": metrics.daily_usage_density(user_week, YEAR, params).filter(bb),
    }


def _hits(
    estimated: pl.DataFrame, truth: pl.DataFrame, keys: list[str], value: str, name
) -> pl.DataFrame:
    """Rows statistic, hit (truth inside [lo, hi]), rel_width for each matched row."""
    joined = estimated.join(truth.select(*keys, pl.col(value).alias("truth")), on=keys, how="inner")
    lo, hi = f"{value}_lo", f"{value}_hi"
    return joined.select(
        name(joined).alias("statistic") if callable(name) else pl.lit(name).alias("statistic"),
        ((pl.col("truth") >= pl.col(lo)) & (pl.col("truth") <= pl.col(hi))).alias("hit"),
        (pl.col(value) - pl.col("truth")).alias("error"),
        (pl.col(hi) - pl.col(lo)).alias("width"),
    ).filter(pl.col("hit").is_not_null())


def draw_hits(
    world: World,
    truth_tables: dict[str, pl.DataFrame],
    seed: int,
    params: dict[str, Any],
    root: Path,
) -> pl.DataFrame:
    """Every statistic's hit of one sampling draw."""
    week = analysis_week(YEAR, params)
    start_ms = week_bounds_ms(week, params)[0]
    cols, port_truth = sampled_flows(world, np.random.default_rng([seed, 1]), start_ms)
    draw_dir = root / f"draw{seed}"
    glob = _write(draw_dir, cols)
    mobile = _mobile_billing(draw_dir, week.start)
    user_week = metrics.user_week_usage(glob, mobile, YEAR, params, "salt")
    est = _user_tables(user_week, params)
    ports = metrics.usage_by_port(glob, YEAR, params).filter(pl.col("service") == "broadband")
    true_ports = metrics.usage_by_port(
        _write(root / f"truth{seed}", truth_flows(port_truth, start_ms)), YEAR, params
    ).filter(pl.col("service") == "broadband")
    s = est["summary"]
    parts = []
    for stat in SUMMARY_STATS:
        for d in ("IN", "OUT"):
            parts.append(
                _hits(
                    s.filter(pl.col("direction") == d),
                    truth_tables["summary"].filter(pl.col("direction") == d),
                    ["direction"],
                    stat,
                    f"{stat} {d}",
                )
            )
    top = est["top"]
    for d in ("IN", "OUT"):
        for p in top["top_pct"].unique().sort().to_list():
            sel = (pl.col("direction") == d) & (pl.col("top_pct") == p)
            parts.append(
                _hits(
                    top.filter(sel),
                    truth_tables["top"].filter(sel),
                    ["direction", "top_pct"],
                    "share_pct",
                    f"top {p:g} % share {d}",
                )
            )
    parts.append(_hits(ports, true_ports, ["row_id"], "share_pct", "port shares (Table 3 rows)"))
    dens = est["density"]
    true_dens = truth_tables["density"].filter(pl.col("density") >= 0.05)
    parts.append(
        _hits(dens, true_dens, ["direction", "bin_center_log10"], "density", "density band (bins)")
    )
    return pl.concat(parts)


def coverage(draws: int, users: int, params: dict[str, Any], seed: int = 13) -> pl.DataFrame:
    """statistic, draws (rows), coverage_pct, mean error, mean interval width."""
    world = make_world(users, seed, params)
    truth = _user_tables(truth_user_week(world), params)
    with tempfile.TemporaryDirectory() as tmp:
        hits = pl.concat(
            [draw_hits(world, truth, seed * 1000 + i, params, Path(tmp)) for i in range(draws)]
        )
    return hits.group_by("statistic", maintain_order=True).agg(
        pl.len().alias("intervals"),
        (100 * pl.col("hit").mean()).alias("coverage_pct"),
        pl.col("error").mean().alias("mean_error"),
        pl.col("width").mean().alias("mean_width"),
    )


if __name__ == "__main__":
    n_draws = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n_users = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    kind = sys.argv[3] if len(sys.argv) > 3 else None
    pl.Config.set_tbl_rows(100)
    pl.Config.set_tbl_width_chars(200)
    print(coverage(n_draws, n_users, coverage_params(kind)))
