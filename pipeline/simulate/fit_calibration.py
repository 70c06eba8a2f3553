"""Re-fit the simulator's calibration from ../shared/spec/published and rewrite calibration.yaml.

Run: `python -m pipeline.simulate.fit_calibration [--published DIR] [--out FILE]`.
Deterministic: the same published tables give the same yaml bytes.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path
from typing import Any

import yaml

from pipeline.atomic import write_text_atomic
from pipeline.config import PUBLISHED_DIR, analysis_week
from pipeline.progress import cli_logging
from pipeline.simulate import fit_usage

log = logging.getLogger(__name__)

CALIBRATION_FILE = Path(__file__).with_name("calibration.yaml")
PORT_YEARS = (2019, 2020, 2021, 2022, 2023, 2024)

# ---- design choices (INFERRED; the published material does not state them) -----------------
COPULA_RHO = 0.67  # normal-space correlation of log IN and log OUT → Spearman ≈ 0.65
ENTERPRISE_SHIFT_LOG10 = {"broadband": {"IN": 0.6, "OUT": 0.3}, "mobile": {"IN": 1.2, "OUT": 0.3}}
ENTERPRISE_EXTRA_SD_LOG10 = 0.2
# Time warp between the 2019 and 2020 analysis weeks: (date, fraction of the way to 2020).
# Pre-COVID weeks sit below the straight line; the step happens in March 2020.
COVID_WARP = [("2019-06-03", 0.0), ("2020-02-29", 0.45), ("2020-03-28", 1.0), ("2020-06-01", 1.0)]

# Other well-known TCP ports that share the unlisted TCP (<1024) remainder (fractions sum to 1).
TCP_LT1024_SPREAD = {25: 0.2, 110: 0.1, 143: 0.1, 21: 0.15, 554: 0.25, 853: 0.2}
# Other dynamic server ports (absolute %, each < 0.3) taken from the TCP (>=1024) remainder.
TCP_GE1024_SERVERS = {8443: 0.2, 5228: 0.15, 3389: 0.1, 9000: 0.1}
# Other UDP server ports (absolute %) taken from the UDP remainder; the rest is UDP P2P.
UDP_SERVERS = {"broadband": {53: 0.2, 3478: 0.2, 1194: 0.1, 500: 0.05, 123: 0.02},
               "mobile": {3478: 0.2, 1194: 0.1, 500: 0.05, 123: 0.02}}  # fmt: skip
MOBILE_TCP_SERVERS = {25: 0.05, 110: 0.03, 143: 0.05, 853: 0.1, 8080: 0.2, 8443: 0.2, 5228: 0.25}
# (bytes per packet IN, OUT) by protocol and server port (-1: no port or P2P, None: any other
# port); uploads are ACK-heavy on download-dominated services.
BPP = {
    6: {443: (420.0, 1360.0), 80: (400.0, 1380.0), 22: (300.0, 900.0), 1935: (700.0, 1150.0),
        31000: (600.0, 1300.0), -1: (900.0, 1100.0), None: (450.0, 1300.0)},
    17: {443: (600.0, 1250.0), 4500: (700.0, 1100.0), 8801: (900.0, 1000.0),
         51820: (700.0, 1150.0), 53: (80.0, 200.0), 123: (76.0, 76.0), 3478: (800.0, 900.0),
         -1: (800.0, 1100.0), None: (650.0, 1200.0)},
    50: {-1: (700.0, 1150.0)}, 47: {-1: (600.0, 1100.0)}, 4: {-1: (600.0, 1100.0)},
    1: {-1: (90.0, 90.0)},
}  # fmt: skip
BPP_OTHER_PROTOCOL = (600.0, 1100.0)
NOPORT_ROWS = {"esp": 50, "gre": 47, "ipencap": 4, "icmp": 1}
ICMP_FLOOR_PCT = 0.01  # published 0.0 means "rounds to zero", not nothing

# Monthly counters: June-on-June growth (%) of total broadband and mobile, by year.
# 2017 from Vol.36; 2018/2019 INFERRED (Vol.40: download growth fell again; B2021: 24 % in 2019);
# 2020 is solved so that June 2019 → June 2024 = ×1.72 IN, ×2.01 OUT (Vol.64 §1.5); the editions
# are not mutually consistent, so 2020 comes out at +0.2 % IN, +5.7 % OUT. 2025 from Vol.67.
BB_GROWTH_PCT = {
    "IN": {2017: 10, 2018: 12, 2019: 12, 2021: 20, 2022: 13, 2023: 11, 2024: 14, 2025: 9},
    "OUT": {2017: 25, 2018: 20, 2019: 24, 2021: 23, 2022: 17, 2023: 18, 2024: 12, 2025: 4},
}
BB_FACTOR_2019_2024 = {"IN": 1.72, "OUT": 2.01}
MOBILE_GROWTH_PCT = {
    "IN": {2017: 103, 2018: 45, 2019: 30, 2021: 39, 2022: 23, 2023: 27, 2024: 29, 2025: 29},
    "OUT": {2017: 70, 2018: 40, 2019: 30, 2021: -1, 2022: 8, 2023: 31, 2024: 20, 2025: 9},
}
MOBILE_OUT_JUNE2024_OVER_JAN2020_RATE = 2.13  # "2.1×" (rates; bytes 2.06× since June has 30 days)
MOBILE_JAN2020_OVER_JUNE2019 = 1.15
MOBILE_IN_OVER_OUT_JUNE2024 = 0.45  # enterprise uploads make mobile IN a large share
BB_IN_OVER_OUT_JAN2020 = 0.22
# IPoE share of broadband traffic (%), month anchors; June 2020/21/23/24 published, rest INFERRED.
IPOE_SHARE_PCT = {
    "IN": {"2017-01": 0.5, "2018-06": 5, "2019-06": 12, "2020-06": 24, "2021-06": 31,
           "2022-06": 36.5, "2023-06": 42, "2024-06": 43, "2025-06": 43.5},
    "OUT": {"2017-01": 0.5, "2018-06": 4, "2019-06": 10, "2020-06": 20, "2021-03": 27,
            "2021-06": 30, "2022-06": 37, "2023-06": 44, "2024-06": 48, "2025-06": 48.5},
}  # fmt: skip
# Multiplicative month-of-year seasonality (1.0 in January and June, so anchors hold exactly).
SEASONALITY = [1.0, 0.99, 1.0, 1.01, 1.01, 1.0, 0.99, 1.02, 0.99, 0.99, 0.995, 1.01]
# Stay-home months (state of emergency Apr–May 2020): broadband up, mobile down.
COVID_BUMP = {
    "broadband": {"IN": {"2020-03": 1.05, "2020-04": 1.12, "2020-05": 1.10},
                  "OUT": {"2020-03": 1.03, "2020-04": 1.07, "2020-05": 1.06}},
    "mobile": {"IN": {"2020-03": 0.99, "2020-04": 0.96, "2020-05": 0.97},
               "OUT": {"2020-03": 0.98, "2020-04": 0.93, "2020-05": 0.94}},
}  # fmt: skip
MONTHLY_NOISE_SD = 0.006
MONTHLY_SEED = 20170101
BB_OUT_JAN2020_BYTES = 1.0e15
MOBILE_OUT_JAN2020_BYTES = 1.5e14
# Subscriptions: share using IPv6 IPoE, and share of those also using PPPoE (INFERRED).
IPOE_USER_FRACTION = {
    "2018-01-01": 0.0, "2019-06-03": 0.06, "2020-06-01": 0.14, "2021-05-31": 0.24,
    "2022-05-30": 0.32, "2023-05-29": 0.39, "2024-06-03": 0.43, "2025-06-02": 0.44,
}  # fmt: skip
DUAL_PROTOCOL_FRACTION = {
    "2018-01-01": 0.7,
    "2020-06-01": 0.5,
    "2022-05-30": 0.35,
    "2024-06-03": 0.25,
}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def usage_section(published_dir: Path) -> dict[str, Any]:
    """Fitted daily-usage mixtures per service, direction and analysis year (+ the targets)."""
    fits = fit_usage.fit_all(published_dir)
    mixtures: dict[str, Any] = {}
    for f in fits:
        m = f["mixture"]
        entry = {
            "weights": [round(v, 6) for v in m.weights],
            "means_log10": [round(v, 6) for v in m.means_log10],
            "sds_log10": [round(v, 6) for v in m.sds_log10],
            "targets": {
                "mean_mb": f["mean_mb"],
                "median_mb": f["median_mb"],
                "median_published": f["median_known"],
                "mode_log10": f["mode_log10"],
                "top10_pct": f["top10_pct"],
                "top1_pct": f["top1_pct"],
            },
        }
        mixtures.setdefault(f["service"], {}).setdefault(f["direction"], {})[f["year"]] = entry
    return {
        "anchor_weeks": {y: analysis_week(y).start.isoformat() for y in fit_usage.FIT_YEARS},
        "covid_warp": [[d, f] for d, f in COVID_WARP],
        "copula_rho": COPULA_RHO,
        "enterprise_shift_log10": ENTERPRISE_SHIFT_LOG10,
        "enterprise_extra_sd_log10": ENTERPRISE_EXTRA_SD_LOG10,
        "mixtures": mixtures,
    }


def _table_leaves(path: Path) -> dict[str, dict[int, float]]:
    """row_id → {year: pct} from a wide published port table."""
    rows = _read_csv(path)
    return {r["row_id"]: {y: float(r[f"pct_{y}"]) for y in PORT_YEARS[1:]} for r in rows}


def _port_rows(service: str, pct: dict[str, float]) -> list[dict[str, Any]]:
    """Expand one year's table (row_id → %) into categories whose min-port rule gives the table."""
    rows: list[tuple[int, int, str, float]] = []
    listed = {k: v for k, v in pct.items() if k.startswith(("tcp_", "udp_")) and k[4:].isdigit()}
    for row_id, share in listed.items():
        proto = 6 if row_id.startswith("tcp") else 17
        rows.append((proto, int(row_id[4:]), "server", share))
    if service == "broadband":
        lt_rest = max(0.0, pct["tcp_lt_rest"])
        rows += [(6, p, "server", lt_rest * f) for p, f in TCP_LT1024_SPREAD.items()]
        ge_rest = max(0.0, pct["tcp_ge_rest"])
        others = _capped(TCP_GE1024_SERVERS, ge_rest / 2)
        rows += [(6, p, "server", s) for p, s in others.items()]
        rows.append((6, -1, "p2p", ge_rest - sum(others.values())))
    else:
        tcp_rest = max(0.0, pct["tcp_rest"])
        others = _capped(MOBILE_TCP_SERVERS, tcp_rest / 2)
        rows += [(6, p, "server", s) for p, s in others.items()]
        rows.append((6, -1, "p2p", tcp_rest - sum(others.values())))
    udp_rest = max(0.0, pct["udp_rest"])
    others = _capped(UDP_SERVERS[service], udp_rest / 2)
    rows += [(17, p, "server", s) for p, s in others.items()]
    rows.append((17, -1, "p2p", udp_rest - sum(others.values())))
    for row_id, proto in NOPORT_ROWS.items():
        share = pct.get(row_id, 0.0)
        if row_id == "icmp":
            share = max(share, ICMP_FLOOR_PCT)
        rows.append((proto, -1, "noport", share))
    total = sum(r[3] for r in rows)
    out = []
    for proto, port, kind, share in sorted(
        rows, key=lambda r: (r[0] != 6, r[0], r[2], -r[3], r[1])
    ):
        by_port = BPP.get(proto, {})
        bpp_in, bpp_out = by_port.get(port, by_port.get(None, BPP_OTHER_PROTOCOL))
        out.append(
            {
                "protocol": proto,
                "server_port": port,
                "kind": kind,
                "share": round(share / total, 8),
                "bytes_per_packet_in": bpp_in,
                "bytes_per_packet_out": bpp_out,
            }
        )
    return out


def _capped(shares: dict[int, float], budget: float) -> dict[int, float]:
    """Scale absolute shares down so they fit in `budget` (%)."""
    total = sum(shares.values())
    k = min(1.0, budget / total) if total > 0 else 0.0
    return {p: s * k for p, s in shares.items()}


def _year_pct(service: str, table: dict[str, dict[int, float]], year: int) -> dict[str, float]:
    """Leaf percentages of one year; 2019 = extrapolated from 2020–2021 (floored at 0.02)."""

    def v(row_id: str) -> float:
        if row_id not in table:
            return 0.0
        if year == 2019:
            return max(0.02, 2 * table[row_id][2020] - table[row_id][2021])
        return table[row_id][year]

    leaf_ids = [r for r in table if r[4:].isdigit() or r in NOPORT_ROWS]
    pct = {r: v(r) for r in leaf_ids}
    tcp_listed = [r for r in leaf_ids if r.startswith("tcp_")]
    udp_listed = [r for r in leaf_ids if r.startswith("udp_")]
    if service == "broadband":
        lt = [r for r in tcp_listed if int(r[4:]) < 1024]
        ge = [r for r in tcp_listed if int(r[4:]) >= 1024]
        pct["tcp_lt_rest"] = _rest(table, "tcp_lt1024", lt, year)
        pct["tcp_ge_rest"] = _rest(table, "tcp_ge1024", ge, year)
    else:
        pct["tcp_rest"] = _rest(table, "tcp_total", tcp_listed, year)
    pct["udp_rest"] = _rest(table, "udp_total", udp_listed, year)
    return pct


def _rest(table: dict[str, dict[int, float]], total_id: str, parts: list[str], year: int) -> float:
    def rest(y: int) -> float:
        return table[total_id][y] - sum(table[p][y] for p in parts)

    return max(0.0, 2 * rest(2020) - rest(2021)) if year == 2019 else max(0.0, rest(year))


def port_section(published_dir: Path) -> dict[str, Any]:
    """Expanded byte-share categories per service and year (2019 extrapolated)."""
    out: dict[str, Any] = {}
    for service, name in (
        ("broadband", "table3_broadband_port_share_2020_2024.csv"),
        ("mobile", "table4_mobile_port_share_2020_2024.csv"),
    ):
        table = _table_leaves(published_dir / name)
        out[service] = {y: _port_rows(service, _year_pct(service, table, y)) for y in PORT_YEARS}
    return out


def _june_levels(growth_pct: dict[int, float], base_year: int = 2019) -> dict[int, float]:
    """June levels relative to June of base_year from year-on-year growth (%)."""
    levels = {base_year: 1.0}
    for y in range(base_year + 1, max(growth_pct) + 1):
        levels[y] = levels[y - 1] * (1 + growth_pct[y] / 100)
    for y in range(base_year - 1, min(growth_pct) - 2, -1):
        levels[y] = levels[y + 1] / (1 + growth_pct[y + 1] / 100)
    return levels


def monthly_section() -> dict[str, Any]:
    """Anchors (month → relative mean rate) per series, plus seasonality, COVID months, noise."""
    anchors: dict[str, dict[str, dict[str, float]]] = {"broadband": {}, "mobile": {}}
    for d in ("IN", "OUT"):
        g = dict(BB_GROWTH_PCT[d])
        rest = 1.0
        for y in (2021, 2022, 2023, 2024):
            rest *= 1 + g[y] / 100
        g[2020] = (BB_FACTOR_2019_2024[d] / rest - 1) * 100
        levels = _june_levels(g)
        scale = BB_IN_OVER_OUT_JAN2020 if d == "IN" else 1.0
        anchors["broadband"][d] = {f"{y}-06": lv * scale for y, lv in sorted(levels.items())}
    # Mobile: anchor on June 2024 and Jan 2020; 2020's growth follows from the two.
    for d in ("IN", "OUT"):
        g = MOBILE_GROWTH_PCT[d]
        june2024 = 1.0 if d == "OUT" else MOBILE_IN_OVER_OUT_JUNE2024
        out_jan2020 = 1.0 / MOBILE_OUT_JUNE2024_OVER_JAN2020_RATE
        june = {2024: june2024}
        for y in (2023, 2022, 2021, 2020):
            june[y] = june[y + 1] / (1 + g[y + 1] / 100)
        # IN's Jan-2020 level: same Jan/June-2020 ratio as OUT.
        jan2020 = out_jan2020 if d == "OUT" else out_jan2020 * june[2020] / _mobile_out_june2020()
        june[2019] = jan2020 / MOBILE_JAN2020_OVER_JUNE2019
        for y in (2018, 2017, 2016):
            june[y] = june[y + 1] / (1 + g[y + 1] / 100)
        june[2025] = june[2024] * (1 + g[2025] / 100)
        series = {f"{y}-06": v for y, v in june.items()}
        series["2020-01"] = jan2020
        anchors["mobile"][d] = dict(sorted(series.items()))
    for svc in anchors:
        for d in anchors[svc]:
            anchors[svc][d] = {m: round(v, 8) for m, v in anchors[svc][d].items()}
    return {
        "anchors_relative_rate": anchors,
        "ipoe_share_pct": IPOE_SHARE_PCT,
        "seasonality": SEASONALITY,
        "covid_bump": COVID_BUMP,
        "noise_sd": MONTHLY_NOISE_SD,
        "seed": MONTHLY_SEED,
        "scale_jan2020_out_bytes": {
            "broadband": BB_OUT_JAN2020_BYTES,
            "mobile": MOBILE_OUT_JAN2020_BYTES,
        },
    }


def _mobile_out_june2020() -> float:
    g = MOBILE_GROWTH_PCT["OUT"]
    v = 1.0
    for y in (2024, 2023, 2022, 2021):
        v /= 1 + g[y] / 100
    return v


def build_calibration(published_dir: Path = PUBLISHED_DIR) -> dict[str, Any]:
    """The whole calibration as a plain dict (what calibration.yaml holds)."""
    return {
        "about": (
            "Simulator calibration written by `python -m pipeline.simulate.fit_calibration` from "
            "spec/published; edit the design constants there, not here."
        ),
        "daily_usage": usage_section(published_dir),
        "port_mix": port_section(published_dir),
        "monthly_traffic": monthly_section(),
        "ipoe_user_fraction": IPOE_USER_FRACTION,
        "dual_protocol_fraction": DUAL_PROTOCOL_FRACTION,
    }


def write_calibration(calibration: dict[str, Any], path: Path = CALIBRATION_FILE) -> Path:
    """Write the yaml atomically (temp file in the same folder, then rename)."""
    text = yaml.safe_dump(calibration, sort_keys=False, default_flow_style=None, width=110)
    return write_text_atomic(path, text)


def main(argv: list[str] | None = None) -> None:
    cli_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--published", type=Path, default=PUBLISHED_DIR)
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    args = parser.parse_args(argv)
    if not args.published.is_dir():
        raise SystemExit(f"published tables not found: {args.published}")
    path = write_calibration(build_calibration(args.published), args.out)
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
