"""Plausible synthetic aggregate tables (ARCHITECTURE §5 schemas) for chart and report tests.

Values that tests assert on are fixed constants (FIXED_*), not re-derived by the code under test.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from pipeline.aggregate import history

SEED = 20240603
DIRECTIONS = ("IN", "OUT")

# Worked-out values the narrative must quote (year Y = 2024 unless noted).
FIXED_YOY_PCT = {
    ("broadband", "IN"): 14.2,
    ("broadband", "OUT"): 11.6,
    ("mobile", "IN"): 29.4,
    ("mobile", "OUT"): 19.8,
}
FIXED_YOY_PCT_PREV = {
    ("broadband", "IN"): 11.0,
    ("broadband", "OUT"): 18.0,
    ("mobile", "IN"): 27.0,
    ("mobile", "OUT"): 31.0,
}
FIXED_IPOE_SHARE_PCT = {"IN": 43.2, "OUT": 47.6}
FIXED_IPOE_CHANGE_PTS = {"IN": 1.2, "OUT": 3.7}
FIXED_FACTOR_5Y = {"IN": 1.72, "OUT": 2.01}
FIXED_ANNUALISED_5Y = {"IN": 1.11, "OUT": 1.15}
FIXED_MOBILE_REL_NORM = 2.1
FIXED_TOP_SHARE = {  # (service, direction, top_pct) -> share_pct, year Y
    ("broadband", "OUT", 10): 50.3,
    ("broadband", "IN", 10): 75.4,
    ("broadband", "OUT", 1): 15.2,
    ("broadband", "IN", 1): 46.1,
    ("mobile", "OUT", 10): 48.0,
    ("mobile", "IN", 10): 45.2,
    ("mobile", "OUT", 1): 12.1,
    ("mobile", "IN", 1): 13.3,
}
# Table 1 measured rows (broadband): year -> (IN mean, median, mode, OUT mean, median, mode) MB/day
FIXED_BB_SUMMARY = {
    2019: (580.0, 110.0, 89.1, 3100.0, 1200.0, 1995.3),
    2020: (760.0, 160.0, 158.5, 4100.0, 1800.0, 3162.3),
    2021: (720.0, 150.0, 177.8, 4500.0, 1900.0, 3981.1),
    2022: (760.0, 155.0, 199.5, 4900.0, 2100.0, 3981.1),
    2023: (804.0, 166.0, 223.9, 5456.0, 2369.0, 5011.9),
    2024: (834.0, 178.0, 223.9, 5743.0, 2372.0, 5623.4),
}
FIXED_MOBILE_SUMMARY = {
    2019: (11.2, 5.9, 8.9, 84.9, 46.4, 79.4),
    2020: (10.4, 4.5, 7.1, 79.4, 35.1, 63.1),
    2021: (9.9, 4.7, 7.9, 85.9, 37.9, 70.8),
    2022: (12.8, 6.0, 10.0, 113.7, 49.2, 89.1),
    2023: (14.1, 6.5, 11.2, 129.3, 55.0, 100.0),
    2024: (16.2, 7.4, 14.1, 150.2, 63.0, 112.2),
}
# Port share rows (broadband) for Y: row_id -> share_pct; earlier years shift by a fixed step.
BB_PORT_ROWS = [  # row_id, protocol, port_label, row_kind, parent, share_pct in Y
    ("tcp_total", "TCP", "TCP", "protocol_total", None, 67.5),
    ("tcp_lt1024", "TCP", "(< 1024)", "subtotal", "tcp_total", 61.1),
    ("tcp_443", "TCP", "443 (https)", "port", "tcp_lt1024", 53.8),
    ("tcp_80", "TCP", "80 (http)", "port", "tcp_lt1024", 6.5),
    ("tcp_ge1024", "TCP", "(>= 1024)", "subtotal", "tcp_total", 6.4),
    ("tcp_31000", "TCP", "31000", "port", "tcp_ge1024", 1.2),
    ("tcp_8080", "TCP", "8080 (http-alt)", "port", "tcp_ge1024", 0.4),
    ("udp_total", "UDP", "UDP", "protocol_total", None, 31.0),
    ("udp_443", "UDP", "443 (quic)", "port", "udp_total", 21.0),
    ("udp_4500", "UDP", "4500 (nat-t)", "port", "udp_total", 0.9),
    ("esp_total", "ESP", "ESP", "protocol_total", None, 1.2),
    ("gre_total", "GRE", "GRE", "protocol_total", None, 0.2),
    ("ipencap_total", "IP-ENCAP", "IP-ENCAP", "protocol_total", None, 0.1),
    ("icmp_total", "ICMP", "ICMP", "protocol_total", None, 0.0),
]
MOBILE_PORT_ROWS = [
    ("tcp_total", "TCP", "TCP", "protocol_total", None, 71.0),
    ("tcp_443", "TCP", "443 (https)", "port", "tcp_total", 42.2),
    ("tcp_80", "TCP", "80 (http)", "port", "tcp_total", 1.8),
    ("udp_total", "UDP", "UDP", "protocol_total", None, 27.9),
    ("udp_443", "UDP", "443 (quic)", "port", "udp_total", 19.6),
    ("udp_53", "UDP", "53 (dns)", "port", "udp_total", 0.4),
    ("esp_total", "ESP", "ESP", "protocol_total", None, 1.0),
    ("icmp_total", "ICMP", "ICMP", "protocol_total", None, 0.1),
]
# Per-year change of a share relative to Y (Y−k gets share − k·step); a row only since Y−1.
PORT_STEP = {
    "tcp_total": -0.8,
    "tcp_lt1024": -0.9,
    "tcp_443": -0.6,
    "udp_total": 0.8,
    "udp_443": 1.0,
}
NEW_ROW_SINCE_LAST_YEAR = "tcp_8080"


# 95 % intervals (issue 13) of the measured rows, as fractions of the value below / above it:
# broadband Table 1 (the mobile values come from billing and are exact: lo = hi = value).
FIXED_BB_INTERVAL_REL = {"mean": (0.01, 0.01), "median": (0.03, 0.04), "mode": (0.05, 0.06)}
# Top-user shares: half-width in points (Y and Y−1); broadband top 10 % IN wider than the rest, so
# that its change of 0.8 points is inside √2 · 1.0 and the others' are outside √2 · 0.5.
FIXED_TOP_SHARE_HALF_WIDTH = 0.5
WIDE_TOP_SHARE = ("broadband", "IN", 10)
WIDE_TOP_SHARE_HALF_WIDTH = 1.0


def port_share_half_width(share_pct: float) -> float:
    """Half-width (points) of a fixture port share's interval: 0.05·√share, e.g. ±0.41 at 67.5."""
    return round(0.05 * math.sqrt(share_pct), 3)


def _months(start: str, end: str) -> list[str]:
    y, m = map(int, start.split("-"))
    ey, em = map(int, end.split("-"))
    out = []
    while (y, m) <= (ey, em):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def monthly_traffic_normalised(year: int) -> pl.DataFrame:
    """Monthly bytes per series/direction, 2017-01 to June of `year`, relative to Jan 2020 OUT."""
    months = _months("2017-01", f"{year}-06")
    t = np.arange(len(months)) / 12.0
    bb_out_ppp = 4.0e16 * (1 + 0.10 * t) * np.where(t > 3.2, 1.15, 1.0)
    bb_out_ipoe = 0.3e16 * np.exp(0.45 * t)
    mob_out = 3.0e14 * (1 + 0.18 * np.clip(t - 3.5, 0, None))
    series = {
        ("broadband_pppoe", "OUT"): bb_out_ppp,
        ("broadband_pppoe", "IN"): bb_out_ppp * 0.16,
        ("broadband_ipoe", "OUT"): bb_out_ipoe,
        ("broadband_ipoe", "IN"): bb_out_ipoe * 0.15,
        ("mobile", "OUT"): mob_out,
        ("mobile", "IN"): mob_out * 0.35,
    }
    for d in DIRECTIONS:
        series[("broadband", d)] = series[("broadband_pppoe", d)] + series[("broadband_ipoe", d)]
    norm_idx = months.index("2020-01")
    frames = []
    for (name, d), values in sorted(series.items()):
        base_name = "mobile" if name == "mobile" else "broadband"
        base = series[(base_name, "OUT")][norm_idx]
        days = np.array([_days_in_month(m) for m in months])
        frames.append(
            pl.DataFrame(
                {
                    "year": [year] * len(months),
                    "month": months,
                    "series": [name] * len(months),
                    "direction": [d] * len(months),
                    "bytes": values,
                    "rate_bps": values * 8 / (days * 86400.0),
                    "normalised": values / base,
                }
            )
        )
    return pl.concat(frames)


def _days_in_month(month: str) -> int:
    y, m = map(int, month.split("-"))
    nxt = dt.date(y + (m == 12), 1 if m == 12 else m + 1, 1)
    return (nxt - dt.date(y, m, 1)).days


def growth_statistics(year: int) -> pl.DataFrame:
    """Year Y measured growth metrics, Y−1 measured yoy, and two published earlier editions."""
    rows = []
    for (svc, d), v in FIXED_YOY_PCT.items():
        rows.append((year, "yoy_pct", svc, d, v, "pct", "measured"))
    for (svc, d), v in FIXED_YOY_PCT_PREV.items():
        rows.append((year - 1, "yoy_pct", svc, d, v, "pct", "measured"))
    for d in DIRECTIONS:
        rows += [
            (year, "ipoe_share_pct", "broadband", d, FIXED_IPOE_SHARE_PCT[d], "pct", "measured"),
            (
                year,
                "ipoe_share_change_pts",
                "broadband",
                d,
                FIXED_IPOE_CHANGE_PTS[d],
                "pts",
                "measured",
            ),
            (year, "factor_5y", "broadband", d, FIXED_FACTOR_5Y[d], "x", "measured"),
            (year, "annualised_5y", "broadband", d, FIXED_ANNUALISED_5Y[d], "x", "measured"),
        ]
    rows.append(
        (year, "relative_to_norm_month", "mobile", "OUT", FIXED_MOBILE_REL_NORM, "x", "measured")
    )
    rows.append((2017, "yoy_pct", "broadband", "IN", 10.0, "pct", "published"))
    rows.append((2017, "yoy_pct", "broadband", "OUT", 25.0, "pct", "published"))
    cols = ["year", "metric", "service", "direction", "value", "unit", "source"]
    return pl.DataFrame(rows, schema=cols, orient="row")


def weekday_hourly_profile(year: int) -> pl.DataFrame:
    """Mon–Fri mean rate per hour for analysis weeks 2019..Y, the pre-COVID and the Fig 2 weeks."""
    analysis = {
        2019: "2019-06-03",
        2020: "2020-06-01",
        2021: "2021-05-31",
        2022: "2022-05-30",
        2023: "2023-05-29",
        2024: "2024-06-03",
    }
    weeks = [(y, dt.date.fromisoformat(d), "analysis") for y, d in analysis.items() if y <= year]
    weeks.append((2020, dt.date(2020, 2, 17), "pre_covid"))
    if year >= 2024:
        weeks += [(2024, dt.date(2023, 10, 2), "fig2"), (2024, dt.date(2024, 2, 5), "fig2")]
    hours = np.arange(24)
    evening = np.exp(-0.5 * ((hours - 21.5) / 2.5) ** 2)
    day = np.exp(-0.5 * ((hours - 14.0) / 3.0) ** 2)
    lunch_dip = 1 - 0.08 * (hours == 12)
    frames = []
    for y, start, role in sorted(weeks, key=lambda w: w[1]):
        growth = 1.14 ** ((start - dt.date(2019, 6, 3)).days / 365.25)
        covid = 0.0 if start < dt.date(2020, 3, 1) else 0.6
        out = 40e9 * growth * (0.35 + 0.65 * evening + 0.15 * covid * day)
        inn = 6e9 * growth * (0.45 + 0.3 * evening + 0.4 * covid * day) * lunch_dip
        for d, vals in (("IN", inn), ("OUT", out)):
            frames.append(
                pl.DataFrame(
                    {
                        "year": [y] * 24,
                        "week_start": [start.isoformat()] * 24,
                        "role": [role] * 24,
                        "hour": hours.astype(np.int64),
                        "direction": [d] * 24,
                        "mean_bps": vals,
                    }
                )
            )
    return pl.concat(frames)


def daily_usage_density(year: int) -> pl.DataFrame:
    """Log-normal-ish densities over 0.1-decade bins, broadband and mobile, years 2019..Y."""
    centers = np.round(np.arange(40, 111) / 10.0, 1)
    frames = []
    for y in range(2019, year + 1):
        for svc, summary in (("broadband", FIXED_BB_SUMMARY), ("mobile", FIXED_MOBILE_SUMMARY)):
            row = summary[y]
            for d, mode_mb in (("IN", row[2]), ("OUT", row[5])):
                mu = math.log10(mode_mb) + 6
                sigma = 0.75 if svc == "broadband" else 0.6
                dens = np.exp(-0.5 * ((centers - mu) / sigma) ** 2) * (
                    1 + 0.3 * np.tanh(mu - centers)
                )
                dens = dens / (dens.sum() * 0.1)
                users = np.round(dens * 0.1 * 20000).astype(np.int64)
                # a band of ±2 relative standard errors of a bin holding `users` users
                half = 2 * dens / np.sqrt(users + 1)
                frames.append(
                    pl.DataFrame(
                        {
                            "year": [y] * len(centers),
                            "service": [svc] * len(centers),
                            "direction": [d] * len(centers),
                            "bin_center_log10": centers,
                            "users": users,
                            "density": dens,
                            "density_lo": np.clip(dens - half, 0, None),
                            "density_hi": dens + half,
                        }
                    )
                )
    return pl.concat(frames)


# Published rows of Tables 1–2: (service, direction) -> first year, then (value in the first year,
# step per year) of mean, median and mode MB/day; the last published year is 2018.
# Measured user-directions left out of Tables 1, 2: (not observed, below the reliability rule).
FIXED_USERS_LEFT_OUT = {("broadband", "IN"): (37, 112), ("broadband", "OUT"): (4, 9)}
PUBLISHED_SUMMARY = {
    ("broadband", "IN"): (2007, (436.0, 10), (5.0, 4), (5.0, 4.5)),
    ("broadband", "OUT"): (2007, (718.0, 150), (59.0, 80), (56.0, 120)),
    ("mobile", "IN"): (2015, (6.2, 1.4), (3.2, 0.7), (4.5, 1.5)),
    ("mobile", "OUT"): (2015, (49.2, 12), (23.5, 7), (44.7, 12)),
}


def daily_usage_summary(year: int) -> pl.DataFrame:
    """Measured rows 2019..Y plus published rows (broadband 2007–2018, mobile 2015–2018)."""
    rows = []
    for svc, summary in (("broadband", FIXED_BB_SUMMARY), ("mobile", FIXED_MOBILE_SUMMARY)):
        for y, v in summary.items():
            if y > year:
                continue
            for d, (mean, median, mode) in (("IN", v[:3]), ("OUT", v[3:])):
                left_out = FIXED_USERS_LEFT_OUT.get((svc, d), (0, 0))
                rows.append(
                    (
                        y,
                        svc,
                        d,
                        20000,
                        mean,
                        median,
                        mode,
                        math.log10(mode) + 6,
                        *left_out,
                        "measured",
                    )
                )
    for (svc, d), (first, *stats) in PUBLISHED_SUMMARY.items():
        for y in range(first, 2019):
            mean, median, mode = (start + step * (y - first) for start, step in stats)
            rows.append((y, svc, d, None, mean, median, mode, None, None, None, "published"))
    schema = history.table_schema("daily_usage_summary")
    base = [c for c in schema if not c.endswith(("_lo", "_hi")) and c != "interval_method"]
    df = pl.DataFrame(rows, schema={c: schema[c] for c in base}, orient="row")
    measured, bb = pl.col("source") == "measured", pl.col("service") == "broadband"
    for stat, (below, above) in FIXED_BB_INTERVAL_REL.items():
        value = pl.col(f"{stat}_mb")
        df = df.with_columns(
            pl.when(measured & bb).then(value * (1 - below)).when(measured).then(value)
            .alias(f"{stat}_mb_lo"),
            pl.when(measured & bb).then(value * (1 + above)).when(measured).then(value)
            .alias(f"{stat}_mb_hi"),
        )  # fmt: skip
    df = df.with_columns(
        (pl.col("mode_mb_lo").log10() + 6).alias("mode_log10_lo"),
        (pl.col("mode_mb_hi").log10() + 6).alias("mode_log10_hi"),
        pl.when(measured & bb).then(pl.lit("poisson_bootstrap"))
        .when(measured).then(pl.lit("exact")).alias("interval_method"),
    )  # fmt: skip
    return df.select(list(schema)).sort("year", "service", "direction")


def scatter_sample(year: int, n: int = 5000) -> pl.DataFrame:
    """Per-user daily IN/OUT bytes, IN about a decade below OUT, a few users with IN not
    observed (NULL)."""
    rng = np.random.default_rng(SEED)
    frames = []
    for svc, mu in (("broadband", 9.3), ("mobile", 7.9)):
        out = 10 ** rng.normal(mu, 0.8, n)
        inn = out * 10 ** rng.normal(-1.0, 0.45, n)
        inn[:3] = np.nan
        frames.append(
            pl.DataFrame(
                {
                    "year": [year] * n,
                    "service": [svc] * n,
                    "daily_in_bytes": pl.Series(inn, nan_to_null=True),
                    "daily_out_bytes": out,
                }
            )
        )
    return pl.concat(frames)


def top_user_share(year: int) -> pl.DataFrame:
    rows = []
    for (s, d, p), v in FIXED_TOP_SHARE.items():
        h = WIDE_TOP_SHARE_HALF_WIDTH if (s, d, p) == WIDE_TOP_SHARE else FIXED_TOP_SHARE_HALF_WIDTH
        rows += [
            (y, s, d, p, share, share - h, share + h)
            for y, share in ((year, v), (year - 1, v - 0.8))
        ]
    cols = ["year", "service", "direction", "top_pct", "share_pct", "share_pct_lo", "share_pct_hi"]
    return pl.DataFrame(rows, schema=cols, orient="row")


def usage_by_port(year: int) -> pl.DataFrame:
    """Port share rows for Y−4..Y; one broadband row exists only from Y−1."""
    rows = []
    for svc, spec in (("broadband", BB_PORT_ROWS), ("mobile", MOBILE_PORT_ROWS)):
        for y in range(year - 4, year + 1):
            k = year - y
            for sort_key, (row_id, proto, label, kind, parent, share) in enumerate(spec):
                if row_id == NEW_ROW_SINCE_LAST_YEAR and k > 1:
                    continue
                value = round(share - k * PORT_STEP.get(row_id, 0.0), 1)
                h = port_share_half_width(value)
                rows.append(
                    (
                        y,
                        svc,
                        row_id,
                        proto,
                        label,
                        kind,
                        parent,
                        value,
                        sort_key,
                        value - h,
                        value + h,
                    )
                )
    schema = {c: t for c, t in history.table_schema("usage_by_port").items() if c != "source"}
    return pl.DataFrame(rows, schema=schema, orient="row")


def port_class_week_series(year: int) -> pl.DataFrame:
    """Hourly port-class bytes over the analysis weeks of Y−1 and Y; panel peak = 1."""
    starts = {
        2023: dt.datetime(2023, 5, 28, 15, tzinfo=dt.UTC),
        2024: dt.datetime(2024, 6, 2, 15, tzinfo=dt.UTC),
    }
    how = np.arange(168)
    hod = how % 24
    frames = []
    for y in (year - 1, year):
        start_ms = int(starts.get(y, starts[2024]).timestamp() * 1000)
        for svc in ("broadband", "mobile"):
            if svc == "broadband":
                shape = 0.35 + 0.65 * np.exp(
                    -0.5 * (np.minimum(abs(hod - 21.0), 24 - abs(hod - 21.0)) / 2.5) ** 2
                )
            else:
                shape = (
                    0.2
                    + 0.5 * np.exp(-0.5 * ((hod - 8) / 1.0) ** 2)
                    + 0.6 * np.exp(-0.5 * ((hod - 12.5) / 0.7) ** 2)
                    + 0.8 * np.exp(-0.5 * ((hod - 21) / 2.0) ** 2)
                )
            total = 1e13 * shape * (1.05 if y == year else 1.0)
            classes = {
                "total": total,
                "tcp443": total * 0.55,
                "tcp80": total * 0.07,
                "udp443": total * (0.21 if y == year else 0.18),
            }
            if svc == "broadband":
                classes["tcp_dynamic"] = total * 0.06
            peak = total.max()
            for cls, b in classes.items():
                frames.append(
                    pl.DataFrame(
                        {
                            "year": [y] * 168,
                            "service": [svc] * 168,
                            "bin_start_ms": start_ms + how.astype(np.int64) * 3_600_000,
                            "hour_of_week": how.astype(np.float64),
                            "port_class": [cls] * 168,
                            "bytes": b,
                            "normalised": b / peak,
                        }
                    )
                )
    return pl.concat(frames)


def data_quality(year: int) -> pl.DataFrame:
    """Rows like the aggregate stage writes: item, scope, value (DOUBLE)."""
    items = [
        ("records_in", "all", 1234567.0),
        ("records_decoded", "all", 1230000.0),
        ("records_quarantined", "all", 4567.0),
        ("quarantined:unknown_template", "all", 4000.0),
        ("quarantined:no_sampling_interval", "all", 567.0),
        ("records_decoded", "exporter:bb-pppoe-1", 800000.0),
        ("unattributed_bytes_pct", "service:broadband", 0.8125),
    ]
    return pl.DataFrame(
        {
            "year": [year] * len(items),
            "item": [i for i, _, _ in items],
            "scope": [s for _, s, _ in items],
            "value": [v for _, _, v in items],
        }
    )


def make_tables(year: int = 2024) -> dict[str, pl.DataFrame]:
    """Every aggregate table the charts and the report read, for report year `year`."""
    return {
        "monthly_traffic_normalised": monthly_traffic_normalised(year),
        "growth_statistics": growth_statistics(year),
        "weekday_hourly_profile": weekday_hourly_profile(year),
        "daily_usage_density": daily_usage_density(year),
        "daily_usage_summary": daily_usage_summary(year),
        "scatter_sample": scatter_sample(year),
        "top_user_share": top_user_share(year),
        "usage_by_port": usage_by_port(year),
        "port_class_week_series": port_class_week_series(year),
        "data_quality": data_quality(year),
    }


def make_context(year: int = 2024) -> dict:
    """A report context as the lead's wiring would pass it."""
    from pipeline.config import load_params

    params = load_params()
    return {
        "year": year,
        "simulated": True,
        "subtitle": "Looking Back on the Past Five Years",
        "analysis_weeks": {y: str(w["analysis"]) for y, w in params["weeks"].items() if y <= year},
        "params": params,
        "provenance": {
            "code_version": "0123abc",
            "inputs_sha256": "ab" * 32,
            "input_files": 1234,
            "params_sha256": "cd" * 32,
            "source_date_epoch": 1720000000,
        },
        "data_quality": {
            "records_in": 1234567,
            "records_decoded": 1230000,
            "records_quarantined": 4567,
            "quarantine_by_reason": {"unknown_template": 4000, "no_sampling_interval": 567},
        },
        "exporters": [
            {
                "name": "bb-pppoe-1",
                "service": "pppoe",
                "sampling_intervals": {"8192": 800000},
                "records_decoded": 800000,
                "records_quarantined": 4000,
                "restarts": 2,
            },
            {
                "name": "mobile-1",
                "service": "mobile",
                "sampling_intervals": {"1024": 430000},
                "records_decoded": 430000,
                "records_quarantined": 567,
            },
        ],
        "unattributed_share_pct": {"broadband": 0.8, "mobile": 0.3},
    }
