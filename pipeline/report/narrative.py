"""The report's sentences: every number in them is computed here from the aggregate tables.

`report_facts` extracts the numbers (None when a table lacks them); `narrative` writes the
paragraphs of each section from those facts, skipping a sentence whose numbers are missing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from pipeline.charts.profiles import fig02_data
from pipeline.config import load_params
from pipeline.report.tables import port_share_table

Tables = dict[str, pl.DataFrame]
Facts = dict[str, Any]


# ---------------------------------------------------------------- number formatting
def pct(value: float) -> str:
    """Whole percent, e.g. '14%'."""
    return f"{value:.0f}%"


def pts(value: float) -> str:
    """Signed percentage points, e.g. '+3 points'."""
    v = round(value)
    return f"{v:+d} point" + ("" if abs(v) == 1 else "s")


def share(value: float) -> str:
    """A port share with one decimal, e.g. '53.8%'."""
    return f"{value:.1f}%"


def share_change(value: float) -> str:
    """A signed one-decimal change in points, e.g. '+3.0 points'."""
    return f"{value:+.1f} points"


def growth_phrase(value_pct: float) -> str:
    """A whole-percent change in words: 'grew by 12%', 'fell by 3%' or 'was unchanged'."""
    v = round(value_pct)
    if v == 0:
        return "was unchanged"
    return f"grew by {v}%" if v > 0 else f"fell by {-v}%"


def points_phrase(value: float) -> str:
    """A change in whole percentage points in words: 'up 4 points', 'down 1 point', 'unchanged'."""
    v = round(value)
    if v == 0:
        return "unchanged"
    unit = "point" if abs(v) == 1 else "points"
    return f"{'up' if v > 0 else 'down'} {abs(v)} {unit}"


def ratio_phrase(ratio: float) -> str:
    """A year-on-year ratio in words: 'up 12%', 'down 5%' or 'unchanged' (within 0.5%)."""
    v = round(100 * (ratio - 1))
    if v == 0:
        return "unchanged"
    return f"up {v}%" if v > 0 else f"down {-v}%"


def factor(value: float) -> str:
    """A growth factor with two decimals, e.g. '1.72'."""
    return f"{value:.2f}"


def mb(value: float, decimals: int) -> str:
    """MB/day as printed in Tables 1 (0 decimals) and 2 (1 decimal), with thousands separators."""
    return f"{value:,.{decimals}f} MB"


def hour(h: int) -> str:
    return f"{int(h):02d}:00"


def month_name(month: str) -> str:
    """'2020-01' → 'January 2020'."""
    y, m = month.split("-")
    names = (
        "January February March April May June July August September October November December"
    ).split()
    return f"{names[int(m) - 1]} {y}"


def _all_present(*values: Any) -> bool:
    return all(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values)


# ---------------------------------------------------------------- fact extraction
def growth_value(
    tables: Tables, metric: str, service: str, direction: str, year: int
) -> float | None:
    """One growth_statistics value; a measured row wins over a published one."""
    df = tables["growth_statistics"].filter(
        (pl.col("metric") == metric)
        & (pl.col("service") == service)
        & (pl.col("direction") == direction)
        & (pl.col("year") == year)
    )
    if df.is_empty():
        return None
    df = df.sort(pl.col("source") != "measured")
    return float(df["value"][0])


def _summary(tables: Tables, service: str, year: int) -> dict[str, float] | None:
    df = tables["daily_usage_summary"].filter(
        (pl.col("service") == service) & (pl.col("year") == year)
    )
    if df.is_empty():
        return None
    df = df.sort(pl.col("source") != "measured")
    out: dict[str, float] = {}
    for d in ("IN", "OUT"):
        row = df.filter(pl.col("direction") == d)
        if row.is_empty():
            return None
        for stat in ("mean", "median", "mode"):
            out[f"{d.lower()}_{stat}"] = float(row[f"{stat}_mb"][0])
    return out


def _top_share(tables: Tables, service: str, direction: str, top_pct: float, year: int):
    df = tables["top_user_share"].filter(
        (pl.col("service") == service)
        & (pl.col("direction") == direction)
        & (pl.col("top_pct") == top_pct)
        & (pl.col("year") == year)
    )
    return None if df.is_empty() else float(df["share_pct"][0])


def _profile(tables: Tables, year: int, role: str, direction: str) -> np.ndarray | None:
    """24 hourly mean rates of the (first) week with this report year and role."""
    df = tables["weekday_hourly_profile"].filter(
        (pl.col("year") == year) & (pl.col("role") == role) & (pl.col("direction") == direction)
    )
    if df.is_empty():
        return None
    first = df["week_start"].min()
    df = df.filter(pl.col("week_start") == first).sort("hour")
    return df["mean_bps"].to_numpy().astype(float) if df.height == 24 else None


def _profile_facts(tables: Tables, year: int) -> Facts:
    f: Facts = {}
    out_y = _profile(tables, year, "analysis", "OUT")
    in_y = _profile(tables, year, "analysis", "IN")
    out_prev = _profile(tables, year - 1, "analysis", "OUT")
    if out_y is not None:
        f["out_peak_hour"] = int(np.argmax(out_y))
    if in_y is not None:
        f["in_peak_hour"] = int(np.argmax(in_y))
        day = in_y[12]
        around = (in_y[11] + in_y[13]) / 2
        if day < around:
            f["in_noon_dip_pct"] = 100 * (1 - day / around)
    if out_y is not None and out_prev is not None:
        f["out_hours_up"] = int(np.sum(out_y > out_prev))
        f["out_week_growth_pct"] = 100 * (out_y.mean() / out_prev.mean() - 1)
    pre_rows = tables["weekday_hourly_profile"].filter(pl.col("role") == "pre_covid")
    if not pre_rows.is_empty() and in_y is not None:
        pre_year = int(pre_rows["year"].min())
        in_pre = _profile(tables, pre_year, "pre_covid", "IN")
        out_pre = _profile(tables, pre_year, "pre_covid", "OUT")
        if in_pre is not None:
            f["pre_covid_week"] = str(pre_rows["week_start"].min())
            f["in_daytime_share_pre_pct"] = 100 * in_pre[9:18].sum() / in_pre.sum()
            f["in_daytime_share_pct"] = 100 * in_y[9:18].sum() / in_y.sum()
            f["in_growth_since_pre"] = in_y.mean() / in_pre.mean()
        if out_pre is not None and out_y is not None:
            f["out_growth_since_pre"] = out_y.mean() / out_pre.mean()
    return f


def _week_series_facts(tables: Tables, year: int) -> Facts:
    f: Facts = {}
    df = tables["port_class_week_series"]
    for svc in ("broadband", "mobile"):
        total = df.filter(
            (pl.col("service") == svc)
            & (pl.col("year") == year)
            & (pl.col("port_class") == "total")
        ).sort("hour_of_week")
        if total.is_empty():
            continue
        weekday = total.filter(pl.col("hour_of_week") < 120)
        by_hour = (
            weekday.group_by((pl.col("hour_of_week") % 24).alias("h"))
            .agg(pl.col("normalised").mean())
            .sort("h")
        )
        values = by_hour["normalised"].to_numpy()
        hours = by_hour["h"].to_numpy()
        top = values.max()
        busy = hours[values >= 0.9 * top]
        f[f"{svc}_busy_from"], f[f"{svc}_busy_to"] = int(busy.min()), int(busy.max()) + 1
        peaks = [
            int(hours[i])
            for i in range(len(values))
            if values[i] >= values[i - 1]
            and values[i] > values[(i + 1) % len(values)]
            and values[i] >= 0.5 * top
        ]
        f[f"{svc}_weekday_peaks"] = peaks
        for y in (year - 1, year):
            part = df.filter((pl.col("service") == svc) & (pl.col("year") == y))
            tot = part.filter(pl.col("port_class") == "total")["bytes"].sum()
            udp = part.filter(pl.col("port_class") == "udp443")["bytes"].sum()
            if tot > 0:
                f[f"{svc}_udp443_week_share_{'y' if y == year else 'prev'}"] = 100 * udp / tot
    return f


def _port_row(table: pl.DataFrame, protocol: str, port: str | None, year: int) -> float | None:
    """Share of a protocol total (port None) or of a listed port in a Table 3/4 shaped frame."""
    col = f"pct_{year}"
    if col not in table.columns:
        return None
    if port is None:
        rows = table.filter(
            (pl.col("row_kind") == "protocol_total")
            & (pl.col("protocol").str.to_uppercase() == protocol)
        )
    else:
        rows = table.filter(
            (pl.col("row_kind") == "port")
            & (pl.col("protocol").str.to_uppercase() == protocol)
            & (pl.col("label").str.split(" ").list.first() == port)
        )
    if rows.is_empty() or rows[col][0] is None:
        return None
    return float(rows[col][0])


def _port_facts(tables: Tables, year: int) -> Facts:
    f: Facts = {}
    for svc in ("broadband", "mobile"):
        try:
            table = port_share_table(tables, svc, year)
        except ValueError:
            continue
        for key, proto, port in (
            ("tcp", "TCP", None),
            ("udp", "UDP", None),
            ("tcp443", "TCP", "443"),
            ("tcp80", "TCP", "80"),
            ("udp443", "UDP", "443"),
        ):
            now, prev = _port_row(table, proto, port, year), _port_row(table, proto, port, year - 1)
            f[f"{svc}_{key}_share"] = now
            f[f"{svc}_{key}_change"] = None if not _all_present(now, prev) else now - prev
        ge = table.filter(pl.col("row_kind") == "subtotal")
        ge = ge.filter(pl.col("label").str.contains(">="))
        if not ge.is_empty() and ge[f"pct_{year}"][0] is not None:
            f[f"{svc}_tcp_dynamic_share"] = float(ge[f"pct_{year}"][0])
            children = table.filter(
                (pl.col("parent") == ge["row_id"][0]) & pl.col(f"pct_{year}").is_not_null()
            ).sort(f"pct_{year}", descending=True)
            if not children.is_empty():
                f[f"{svc}_top_dynamic_port"] = children["label"][0]
                f[f"{svc}_top_dynamic_share"] = float(children[f"pct_{year}"][0])
    return f


def _sample_facts(tables: Tables, year: int) -> Facts:
    df = tables["scatter_sample"].filter(pl.col("year") == year)
    f: Facts = {}
    for svc, short in (("broadband", "bb"), ("mobile", "mob")):
        part = df.filter(pl.col("service") == svc)
        if part.height:
            n_out = part.filter(pl.col("daily_out_bytes") > pl.col("daily_in_bytes")).height
            f[f"{short}_sample_out_gt_in_pct"] = 100 * n_out / part.height
    return f


def _monthly_yoy(tables: Tables, series: str, direction: str, year: int) -> float | None:
    """Growth in % of one Fig 1 series between the report months of year−1 and year."""
    month = int(load_params()["report"]["report_month"])
    df = tables["monthly_traffic_normalised"].filter(
        (pl.col("year") == year) & (pl.col("series") == series) & (pl.col("direction") == direction)
    )
    now = df.filter(pl.col("month") == f"{year}-{month:02d}")["bytes"]
    prev = df.filter(pl.col("month") == f"{year - 1}-{month:02d}")["bytes"]
    if now.is_empty() or prev.is_empty() or not prev[0]:
        return None
    return 100 * (float(now[0]) / float(prev[0]) - 1)


def report_facts(tables: Tables, year: int) -> Facts:
    """Every number the narrative quotes, keyed by name; None where the tables lack it."""
    f: Facts = {"year": year, "prev_year": year - 1, "five_years_ago": year - 5}
    months = tables["monthly_traffic_normalised"].filter(pl.col("year") == year)["month"]
    f["first_month"] = month_name(months.min()) if len(months) else None
    f["norm_month"] = month_name(load_params()["report"]["normalise_month"])
    f["fig2_weeks"] = fig02_data(tables, year)["week_start"].n_unique()
    for svc, short in (("broadband", "bb"), ("mobile", "mob")):
        for d in ("IN", "OUT"):
            dl = d.lower()
            f[f"{short}_{dl}_yoy"] = growth_value(tables, "yoy_pct", svc, d, year)
            f[f"{short}_{dl}_yoy_prev"] = growth_value(tables, "yoy_pct", svc, d, year - 1)
    for d in ("IN", "OUT"):
        dl = d.lower()
        f[f"ipoe_{dl}_share"] = growth_value(tables, "ipoe_share_pct", "broadband", d, year)
        f[f"ipoe_{dl}_change"] = growth_value(tables, "ipoe_share_change_pts", "broadband", d, year)
        f[f"bb_{dl}_factor_5y"] = growth_value(tables, "factor_5y", "broadband", d, year)
        f[f"bb_{dl}_annualised_5y"] = growth_value(tables, "annualised_5y", "broadband", d, year)
    f["mob_out_rel_norm"] = growth_value(tables, "relative_to_norm_month", "mobile", "OUT", year)
    for svc, short in (("broadband", "bb"), ("mobile", "mob")):
        f[f"{short}_usage"] = _summary(tables, svc, year)
        f[f"{short}_usage_prev"] = _summary(tables, svc, year - 1)
        f[f"{short}_usage_5y"] = _summary(tables, svc, year - 5)
        for d in ("IN", "OUT"):
            for p in (10, 1):
                f[f"{short}_top{p}_{d.lower()}"] = _top_share(tables, svc, d, p, year)
                f[f"{short}_top{p}_{d.lower()}_prev"] = _top_share(tables, svc, d, p, year - 1)
    f.update(_profile_facts(tables, year))
    f.update(_sample_facts(tables, year))
    f["pppoe_out_yoy"] = _monthly_yoy(tables, "broadband_pppoe", "OUT", year)
    f.update(_week_series_facts(tables, year))
    f.update(_port_facts(tables, year))
    return f


# ---------------------------------------------------------------- sentences
def _ratio(a: float, b: float) -> str:
    """a/b with two decimals, or one decimal at 10 and above."""
    if not b:
        return "n/a"
    r = a / b
    return factor(r) if r < 10 else f"{r:.1f}"


def _overview(f: Facts) -> list[str]:
    y, p = f["year"], f["prev_year"]
    out: list[str] = []
    s = (
        f"Figure 1 traces monthly traffic since {f['first_month']} for broadband and mobile, each "
        f"relative to its own download (OUT) volume of {f['norm_month']}."
    )
    if _all_present(f["bb_in_yoy"], f["bb_out_yoy"]):
        s += (
            f" Over the year to June {y}, broadband upload (IN) grew by {pct(f['bb_in_yoy'])} and "
            f"download (OUT) by {pct(f['bb_out_yoy'])}"
        )
        if _all_present(f["bb_in_yoy_prev"], f["bb_out_yoy_prev"]):
            s += (
                f", against {pct(f['bb_in_yoy_prev'])} and {pct(f['bb_out_yoy_prev'])} "
                f"a year earlier"
            )
        s += "."
    out.append(s)
    if _all_present(f["ipoe_in_share"], f["ipoe_out_share"]):
        s = (
            f"IPv6 IPoE now carries {pct(f['ipoe_in_share'])} of broadband IN and "
            f"{pct(f['ipoe_out_share'])} of broadband OUT"
        )
        if _all_present(f["ipoe_in_change"], f["ipoe_out_change"]):
            s += (
                f" ({points_phrase(f['ipoe_in_change'])} and {points_phrase(f['ipoe_out_change'])}"
                f" on June {p})"
            )
        s += "."
        if _all_present(f.get("pppoe_out_yoy"), f["bb_out_yoy"]):
            s += (
                f" The thin green lines show PPPoE alone: its OUT "
                f"{growth_phrase(f['pppoe_out_yoy'])} over the year"
            )
            if round(f["pppoe_out_yoy"]) < round(f["bb_out_yoy"]):
                s += ", so IPoE carried more than its share of the growth"
            s += "."
        out.append(s)
    if _all_present(f["mob_in_yoy"], f["mob_out_yoy"]):
        s = f"On mobile, IN rose by {pct(f['mob_in_yoy'])} and OUT by {pct(f['mob_out_yoy'])}"
        if _all_present(f["mob_in_yoy_prev"], f["mob_out_yoy_prev"]):
            s += f" (previous year: {pct(f['mob_in_yoy_prev'])} and {pct(f['mob_out_yoy_prev'])})"
        s += "."
        if _all_present(f["mob_out_rel_norm"]):
            s += (
                f" Mobile OUT stands at {factor(f['mob_out_rel_norm'])} times its "
                f"{f['norm_month']} level."
            )
        out.append(s)
    s = (
        f"Figure 2 compares the weekday hourly profile of broadband traffic in "
        f"{f['fig2_weeks']} weeks, from the {p} analysis week to the {y} one."
    )
    if _all_present(f.get("out_hours_up"), f.get("out_week_growth_pct")):
        g = round(f["out_week_growth_pct"])
        hours = (
            "in every hour of the day"
            if f["out_hours_up"] == 24
            else f"in {f['out_hours_up']} of the 24 hours of the day"
        )
        if g > 0:
            s += (
                f" The mean weekday download (OUT) rate of the {y} analysis week was {g}% above "
                f"that of {p}, and higher {hours}."
            )
        elif g < 0:
            s += (
                f" The mean weekday download (OUT) rate of the {y} analysis week was {-g}% below "
                f"that of {p}; it was higher {hours}."
            )
    if _all_present(f.get("out_peak_hour"), f.get("in_peak_hour")):
        s += (
            f" Downloads peak in the hour starting {hour(f['out_peak_hour'])}, uploads in the hour "
            f"starting {hour(f['in_peak_hour'])}."
        )
    out.append(s)
    return out


def _daily_usage(f: Facts) -> list[str]:
    y, p, y5 = f["year"], f["prev_year"], f["five_years_ago"]
    out: list[str] = []
    bb, bbp = f["bb_usage"], f["bb_usage_prev"]
    out.append(
        f"Figure 3 shows how broadband users' daily traffic volumes were distributed in the "
        f"analysis weeks of {p} and {y}, on a logarithmic axis; Figure 4 does the same for "
        "mobile. Volumes spread over several orders of magnitude, and the download (OUT) "
        "curve sits well to the right of the upload (IN) curve"
        + (
            f" (the OUT mode is {_ratio(bb['out_mode'], bb['in_mode'])} times the IN mode)."
            if bb
            else "."
        )
    )
    if bb and bbp:
        out.append(
            f"Table 1 summarises the broadband distribution. In {y} the mode of daily OUT was "
            f"{mb(bb['out_mode'], 0)} ({ratio_phrase(bb['out_mode'] / bbp['out_mode'])} on {p}) "
            f"and the mode of IN {mb(bb['in_mode'], 0)} "
            f"({ratio_phrase(bb['in_mode'] / bbp['in_mode'])}). The mean OUT of "
            f"{mb(bb['out_mean'], 0)} is "
            f"{_ratio(bb['out_mean'], bb['out_median'])} times the median of "
            f"{mb(bb['out_median'], 0)}: a minority of heavy users pulls the mean far above what "
            "a typical user moves."
        )
    mob, mobp = f["mob_usage"], f["mob_usage_prev"]
    if mob and mobp:
        s = (
            f"For mobile (Table 2) the OUT mode went from {mb(mobp['out_mode'], 1)} to "
            f"{mb(mob['out_mode'], 1)} and the IN mode from {mb(mobp['in_mode'], 1)} to "
            f"{mb(mob['in_mode'], 1)}; mean OUT was {mb(mob['out_mean'], 1)}."
        )
        if bb:
            s += (
                f" A typical broadband user downloads "
                f"{_ratio(bb['out_median'], mob['out_median'])} times as much per day as a "
                "typical mobile user (ratio of medians)."
            )
        out.append(s)
    s = (
        f"Figures 5 and 6 plot daily IN against daily OUT for a random sample of users in {y}; "
        "the diagonal marks IN = OUT."
    )
    if _all_present(f.get("bb_sample_out_gt_in_pct"), f.get("mob_sample_out_gt_in_pct")):
        s += (
            f" Of the sampled users, {pct(f['bb_sample_out_gt_in_pct'])} on broadband and "
            f"{pct(f['mob_sample_out_gt_in_pct'])} on mobile download more than they upload, "
            "and both the volumes and the IN/OUT ratios spread over several orders of magnitude."
        )
    out.append(s)
    del y5
    return out


def _concentration(f: Facts) -> list[str]:
    out = []
    for short, word in (("bb", "broadband"), ("mob", "mobile")):
        vals = [
            f[f"{short}_top10_out"],
            f[f"{short}_top10_in"],
            f[f"{short}_top1_out"],
            f[f"{short}_top1_in"],
        ]
        if not _all_present(*vals):
            continue
        s = (
            f"On {word}, the heaviest 10% of users account for {pct(vals[0])} of OUT and "
            f"{pct(vals[1])} of IN; the top 1% of users alone account for {pct(vals[2])} of OUT "
            f"and {pct(vals[3])} of IN."
        )
        prev = [f[f"{short}_top10_out_prev"], f[f"{short}_top10_in_prev"]]
        if _all_present(*prev):
            s += f" A year earlier the top 10% held {pct(prev[0])} of OUT and {pct(prev[1])} of IN."
        out.append(s)
    return out


def _ports(f: Facts) -> list[str]:
    y, p = f["year"], f["prev_year"]
    out = []
    keys = (
        "broadband_tcp_share",
        "broadband_tcp_change",
        "broadband_tcp443_share",
        "broadband_tcp443_change",
    )
    if _all_present(*(f.get(k) for k in keys)):
        s = (
            f"Table 3 breaks broadband (PPPoE) traffic down by protocol and port. TCP carried "
            f"{share(f['broadband_tcp_share'])} of bytes in {y} "
            f"({share_change(f['broadband_tcp_change'])} on {p}); TCP port 443 (HTTPS) alone "
            f"carried {share(f['broadband_tcp443_share'])} "
            f"({share_change(f['broadband_tcp443_change'])})."
        )
        if _all_present(f.get("broadband_udp443_share"), f.get("broadband_udp443_change")):
            s += (
                f" UDP port 443, mostly QUIC, reached {share(f['broadband_udp443_share'])} "
                f"({share_change(f['broadband_udp443_change'])})."
            )
        if _all_present(f.get("broadband_tcp80_share"), f.get("broadband_tcp80_change")):
            verb = "fell to" if f["broadband_tcp80_change"] < 0 else "is at"
            s += (
                f" Plain HTTP on TCP port 80 {verb} {share(f['broadband_tcp80_share'])} "
                f"({share_change(f['broadband_tcp80_change'])})."
            )
        if _all_present(f.get("broadband_tcp_dynamic_share")):
            s += (
                " TCP traffic with both ports at 1024 or above makes up "
                f"{share(f['broadband_tcp_dynamic_share'])}"
            )
            if f.get("broadband_top_dynamic_port"):
                s += (
                    f"; the busiest single port there is {f['broadband_top_dynamic_port']} with "
                    f"{share(f['broadband_top_dynamic_share'])}"
                )
            s += "."
        out.append(s)
    keys = ("mobile_tcp_share", "mobile_tcp443_share", "mobile_udp443_share")
    if _all_present(*(f.get(k) for k in keys)):
        s = (
            f"Mobile (Table 4) looks much like broadband: TCP {share(f['mobile_tcp_share'])}, "
            f"TCP port 443 {share(f['mobile_tcp443_share'])} and UDP port 443 "
            f"{share(f['mobile_udp443_share'])}"
        )
        if _all_present(f.get("mobile_udp443_change")):
            s += f" ({share_change(f['mobile_udp443_change'])} on {p})"
        s += "."
        out.append(s)
    s = (
        f"Figures 7 and 8 follow the main port classes hour by hour across the analysis weeks of "
        f"{p} (top) and {y} (bottom), each panel scaled so that its peak total is 1."
    )
    if _all_present(f.get("broadband_busy_from"), f.get("broadband_busy_to")):
        s += (
            f" Broadband traffic on weekdays is within 10% of its peak from "
            f"{hour(f['broadband_busy_from'])} to {hour(f['broadband_busy_to'] % 24)}."
        )
    if _all_present(
        f.get("broadband_udp443_week_share_y"), f.get("broadband_udp443_week_share_prev")
    ):
        s += (
            " Over the week UDP 443 carried "
            f"{share(f['broadband_udp443_week_share_y'])} of broadband "
            f"bytes, against {share(f['broadband_udp443_week_share_prev'])} in {p}."
        )
    peaks = f.get("mobile_weekday_peaks") or []
    if len(peaks) >= 2:
        listed = ", ".join(hour(h) for h in peaks[:-1]) + " and " + hour(peaks[-1])
        s += f" Mobile shows {len(peaks)} weekday peaks, in the hours starting {listed}"
        if len(peaks) == 3 and peaks[0] < 10 and 11 <= peaks[1] <= 13 and peaks[2] >= 17:
            s += ": the morning commute, the lunch break and the evening"
        s += "."
    out.append(s)
    return out


def _five_years(f: Facts) -> list[str]:
    y, y5 = f["year"], f["five_years_ago"]
    out = []
    keys = ("bb_in_factor_5y", "bb_out_factor_5y", "bb_in_annualised_5y", "bb_out_annualised_5y")
    if _all_present(*(f[k] for k in keys)):
        out.append(
            f"Looking back five years with the data of Figure 1, broadband IN in June {y} was "
            f"{factor(f['bb_in_factor_5y'])} times its June {y5} level and OUT "
            f"{factor(f['bb_out_factor_5y'])} times, i.e. {factor(f['bb_in_annualised_5y'])} and "
            f"{factor(f['bb_out_annualised_5y'])} times per year on average (about "
            f"{pct(100 * (f['bb_in_annualised_5y'] - 1))} and "
            f"{pct(100 * (f['bb_out_annualised_5y'] - 1))} growth a year)."
        )
    s = (
        "Figure 9 overlays the weekday hourly download profile of a week before the pandemic and "
        f"of the analysis weeks of the last five years up to {y}; Figure 10 shows the upload "
        "lines of the same weeks on an enlarged axis."
    )
    if _all_present(f.get("out_growth_since_pre"), f.get("in_growth_since_pre")):
        s += (
            f" Since the pre-pandemic week of {f['pre_covid_week']}, the mean weekday rate has "
            f"grown by a factor of {factor(f['out_growth_since_pre'])} for OUT and "
            f"{factor(f['in_growth_since_pre'])} for IN."
        )
    if _all_present(f.get("in_daytime_share_pre_pct"), f.get("in_daytime_share_pct")):
        s += (
            f" Working hours (09:00–18:00) now hold {pct(f['in_daytime_share_pct'])} of weekday "
            f"uploads, against {pct(f['in_daytime_share_pre_pct'])} before the pandemic."
        )
    if _all_present(f.get("in_noon_dip_pct")):
        s += (
            f" Uploads dip by {pct(f['in_noon_dip_pct'])} in the hour starting 12:00 relative to "
            "the hours either side, consistent with video calls pausing over lunch."
        )
    out.append(s)
    bb, bb5 = f["bb_usage"], f["bb_usage_5y"]
    s = f"Figure 11 draws the broadband usage distributions of the {y - y5 + 1} years {y5} to {y}."
    if bb and bb5:
        s += (
            f" The OUT mode moved from {mb(bb5['out_mode'], 0)} to {mb(bb['out_mode'], 0)} "
            f"({factor(bb['out_mode'] / bb5['out_mode'])} times) and the IN mode from "
            f"{mb(bb5['in_mode'], 0)} to {mb(bb['in_mode'], 0)} "
            f"({factor(bb['in_mode'] / bb5['in_mode'])} times): the whole population shifted, "
            "not only the heaviest users."
        )
    out.append(s)
    return out


def _conclusion(f: Facts) -> list[str]:
    y = f["year"]
    s = f"Year on year, broadband traffic changed moderately in {y}"
    if _all_present(f["bb_in_yoy"], f["bb_out_yoy"]):
        s += f" (IN {f['bb_in_yoy']:+.0f}%, OUT {f['bb_out_yoy']:+.0f}%)"
    s += ", but over five years the changes add up"
    if _all_present(f["bb_out_factor_5y"]):
        s += (
            f": broadband download volume is {factor(f['bb_out_factor_5y'])} times what it was "
            "five years ago"
        )
    s += "."
    bb, bb5 = f["bb_usage"], f["bb_usage_5y"]
    if bb and bb5 and bb["out_mode"] > bb5["out_mode"]:
        s += (
            " The typical user's volume has risen along with the total, so the growth is not "
            "confined to a few heavy users."
        )
    if _all_present(f.get("broadband_udp443_change")) and f["broadband_udp443_change"] > 0:
        s += " QUIC on UDP port 443 keeps gaining share from TCP."
    return [s]


def _abstract(f: Facts) -> list[str]:
    y, p = f["year"], f["prev_year"]
    s = f"This report measures one ISP's broadband and mobile traffic up to June {y}."
    if _all_present(f["bb_in_yoy"], f["bb_out_yoy"]):
        s += (
            f" Over the year, broadband upload (IN) {growth_phrase(f['bb_in_yoy'])} and download "
            f"(OUT) {growth_phrase(f['bb_out_yoy']).removeprefix('grew ')}"
        )
        if _all_present(f["mob_in_yoy"], f["mob_out_yoy"]):
            s += (
                f"; mobile IN {growth_phrase(f['mob_in_yoy']).removeprefix('grew ')} and OUT "
                f"{growth_phrase(f['mob_out_yoy']).removeprefix('grew ')}"
            )
        s += "."
    bb, bbp = f["bb_usage"], f["bb_usage_prev"]
    if bb and bbp:
        s += (
            f" The most common daily download of a broadband user was {mb(bb['out_mode'], 0)}, "
            f"{ratio_phrase(bb['out_mode'] / bbp['out_mode'])} on {p}."
        )
    if _all_present(f.get("broadband_udp443_share"), f["bb_out_factor_5y"]):
        s += (
            f" UDP port 443 (QUIC) carries {share(f['broadband_udp443_share'])} of broadband bytes,"
            f" and broadband download volume is {factor(f['bb_out_factor_5y'])} times its level "
            "of five years ago."
        )
    return [s]


def key_figures(tables: Tables, year: int) -> list[tuple[str, str]]:
    """The title page's key numbers as (label, value) pairs, each taken from the tables."""
    f = report_facts(tables, year)
    p = year - 1
    rows: list[tuple[str, str]] = []
    for short, word in (("bb", "Broadband"), ("mob", "Mobile")):
        if _all_present(f[f"{short}_in_yoy"], f[f"{short}_out_yoy"]):
            rows.append(
                (
                    f"{word} traffic growth, June {p} → June {year}",
                    f"IN {f[f'{short}_in_yoy']:+.0f}%, OUT {f[f'{short}_out_yoy']:+.0f}%",
                )
            )
    if _all_present(f["ipoe_out_share"], f["ipoe_out_change"]):
        rows.append(
            (
                "IPv6 IPoE share of broadband OUT",
                f"{pct(f['ipoe_out_share'])} ({points_phrase(f['ipoe_out_change'])})",
            )
        )
    for short, word, dec in (("bb", "broadband", 0), ("mob", "mobile", 1)):
        u = f[f"{short}_usage"]
        if u:
            rows.append(
                (
                    f"Daily download per {word} user: mean / median / mode",
                    " / ".join(f"{u[f'out_{k}']:,.{dec}f}" for k in ("mean", "median", "mode"))
                    + " MB",
                )
            )
    if _all_present(f["bb_top10_out"], f["bb_top1_out"]):
        rows.append(
            (
                "Broadband OUT of the top 10% / top 1% of users",
                f"{pct(f['bb_top10_out'])} / {pct(f['bb_top1_out'])}",
            )
        )
    if _all_present(f.get("broadband_tcp443_share"), f.get("broadband_udp443_share")):
        rows.append(
            (
                "Broadband bytes on TCP 443 / UDP 443",
                f"{share(f['broadband_tcp443_share'])} / {share(f['broadband_udp443_share'])}",
            )
        )
    if _all_present(f["bb_in_factor_5y"], f["bb_out_factor_5y"]):
        rows.append(
            (
                f"Broadband traffic, June {year} vs June {year - 5}",
                f"IN ×{factor(f['bb_in_factor_5y'])}, OUT ×{factor(f['bb_out_factor_5y'])}",
            )
        )
    return rows


def narrative(tables: Tables, year: int) -> dict[str, list[str]]:
    """Paragraphs per section: abstract, overview, daily_usage, concentration, ports, five_years,
    conclusion.

    Each paragraph is plain text (escaped by the template)."""
    f = report_facts(tables, year)
    return {
        "abstract": _abstract(f),
        "overview": _overview(f),
        "daily_usage": _daily_usage(f),
        "concentration": _concentration(f),
        "ports": _ports(f),
        "five_years": _five_years(f),
        "conclusion": _conclusion(f),
    }
