"""The numbers the report's sentences quote, extracted from the aggregate tables.

`report_facts` returns every fact under a fixed name, None where the tables lack it; the prose
partials (assets/templates/partials/) skip a sentence whose facts are None.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from pipeline.charts.profiles import fig02_data
from pipeline.charts.scatters import DRAWABLE
from pipeline.config import load_params
from pipeline.ingest import completeness as inputs
from pipeline.ingest.clocks import CLOCK_REASONS
from pipeline.report.formats import month_name, present
from pipeline.report.intervals import not_distinguishable, with_interval_columns
from pipeline.report.tables import port_share_table

Tables = dict[str, pl.DataFrame]
Facts = dict[str, Any]
SERVICES = (("broadband", "bb"), ("mobile", "mob"))  # (service, short name in fact keys)
USAGE_STATS = ("mean", "median", "mode")
PORT_ROWS = (  # fact key, protocol, port (None: the protocol's total) of Tables 3 and 4
    ("tcp", "TCP", None),
    ("udp", "UDP", None),
    ("tcp443", "TCP", "443"),
    ("tcp80", "TCP", "80"),
    ("udp443", "UDP", "443"),
)
# Year-on-year changes the text quotes, checked against their intervals (formats.CHANGE_NAMES
# words them): modes of Tables 1, 2; top-10 % shares; port shares of Tables 3, 4 per service.
USAGE_CHANGES_QUOTED = ("out_mode", "in_mode")
TOP_CHANGES_QUOTED = ("OUT_10", "IN_10")
PORT_CHANGES_QUOTED = {"broadband": ("tcp", "tcp443", "udp443", "tcp80"), "mobile": ("udp443",)}
# Facts that only some tables yield: None when they do not, so that every name is defined.
OPTIONAL_FACTS = (
    "out_peak_hour", "in_peak_hour", "in_noon_dip_pct", "out_hours_up", "out_week_growth_pct",
    "pre_covid_week", "in_daytime_share_pre_pct", "in_daytime_share_pct", "in_growth_since_pre",
    "out_growth_since_pre", "bb_sample_out_gt_in_pct", "mob_sample_out_gt_in_pct",
    "bb_sample_users", "mob_sample_users", "bb_sample_not_drawn", "mob_sample_not_drawn",
    "bb_growth_gap", "mob_growth_gap", "five_year_gap", "completeness", "missing_inputs",
    *(
        f"{svc}_{name}"
        for svc, _ in SERVICES
        for name in (
            "busy_from", "busy_to", "weekday_peaks", "udp443_week_share_y",
            "udp443_week_share_prev", "tcp_dynamic_share", "top_dynamic_port",
            "top_dynamic_share",
            *(f"{key}_{kind}" for key, _, _ in PORT_ROWS for kind in ("share", "change")),
        )
    ),
)  # fmt: skip


# Appendix A (quality_facts); WIRE_ROWS as the ingest reports name them (duplicate
# datagrams are shown beside duplicate files).
QUALITY_FACTS = (
    "dq_duplicate_files", "dq_duplicate_datagrams", "dq_out_of_window", "dq_outside_weeks",
    "dq_threshold_pct", "dq_worst_share_pct", "dq_worst_exporter", "dq_worst_day", "dq_wire",
    "dq_default_rate_exporters", "dq_clock_tolerance_minutes",
)  # fmt: skip
WIRE_ROWS = (
    "template_redefinitions", "records_second_pass", "records_default_sampling",
    "invalid_sampling_announcements", "trailing_bytes", "records_estimated_unsplittable",
)  # fmt: skip


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
    df = with_interval_columns(df, [f"{stat}_mb" for stat in USAGE_STATS])
    df = df.sort(pl.col("source") != "measured")
    out: dict[str, float | None] = {}
    for d in ("IN", "OUT"):
        row = df.filter(pl.col("direction") == d)
        if row.is_empty():
            return None
        for stat in USAGE_STATS:
            out[f"{d.lower()}_{stat}"] = float(row[f"{stat}_mb"][0])
            for end in ("lo", "hi"):  # its 95 % interval, None where unknown
                out[f"{d.lower()}_{stat}_{end}"] = row[f"{stat}_mb_{end}"][0]
    return out


def changes_inside(now: Facts | None, prev: Facts | None, quoted: tuple[str, ...]) -> list[str]:
    """The keys of `quoted` whose change from `prev` to `now` is inside their intervals
    (`key_lo`, `key_hi`; intervals.not_distinguishable), in the order given."""
    if not now or not prev:
        return []
    return [
        key
        for key in quoted
        if not_distinguishable(
            now.get(key), now.get(f"{key}_lo"), now.get(f"{key}_hi"),
            prev.get(key), prev.get(f"{key}_lo"), prev.get(f"{key}_hi"),
        )
    ]  # fmt: skip


def _left_out(tables: Tables, service: str, year: int) -> dict[str, int] | None:
    """Measured user-directions of Tables 1, 2 counted and left out (not observed, below the
    reliability rule) per direction; None without measured counts."""
    df = tables["daily_usage_summary"].filter(
        (pl.col("service") == service) & (pl.col("year") == year) & (pl.col("source") == "measured")
    )
    if "users_not_observed" not in df.columns or df.height != 2:
        return None
    out: dict[str, int] = {}
    for d, users, not_observed, below in df.select(
        "direction", "users", "users_not_observed", "users_below_rule"
    ).rows():
        if users is None or not_observed is None or below is None:
            return None
        dl = d.lower()
        out |= {f"{dl}_users": users, f"{dl}_not_observed": not_observed, f"{dl}_below": below}
    return out


def _top_share(
    tables: Tables, service: str, direction: str, top_pct: float, year: int
) -> dict[str, float | None] | None:
    """{share_pct, share_pct_lo, share_pct_hi} of one top-user share (interval None if unknown)."""
    df = tables["top_user_share"].filter(
        (pl.col("service") == service)
        & (pl.col("direction") == direction)
        & (pl.col("top_pct") == top_pct)
        & (pl.col("year") == year)
    )
    if df.is_empty():
        return None
    row = with_interval_columns(df, ["share_pct"]).row(0, named=True)
    return {k: row[k] for k in ("share_pct", "share_pct_lo", "share_pct_hi")}


def _profile(tables: Tables, year: int, role: str, direction: str) -> np.ndarray | None:
    """24 hourly mean rates of the (first) week with this report year and role."""
    df = tables["weekday_hourly_profile"].filter(
        (pl.col("year") == year) & (pl.col("role") == role) & (pl.col("direction") == direction)
    )
    if df.is_empty():
        return None
    first = df["week_start"].min()
    df = df.filter(pl.col("week_start") == first).sort("hour")
    if df.height != 24 or df["mean_bps"].null_count():
        return None  # no weekday of that week had complete inputs
    return df["mean_bps"].to_numpy().astype(float)


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
        weekday = total.filter((pl.col("hour_of_week") < 120) & pl.col("normalised").is_not_null())
        if weekday.is_empty():
            continue  # no weekday with complete inputs
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
    col, row_id = f"pct_{year}", _port_row_id(table, protocol, port)
    if col not in table.columns or row_id is None:
        return None
    value = table.filter(pl.col("row_id") == row_id)[col][0]
    return None if value is None else float(value)


def _port_row_id(table: pl.DataFrame, protocol: str, port: str | None) -> str | None:
    """row_id of a protocol total (port None) or a listed port in a Table 3/4 shaped frame."""
    kind = pl.col("row_kind") == ("protocol_total" if port is None else "port")
    rows = table.filter(kind & (pl.col("protocol").str.to_uppercase() == protocol))
    if port is not None:
        rows = rows.filter(pl.col("label").str.split(" ").list.first() == port)
    return None if rows.is_empty() else rows["row_id"][0]


def _port_change_inside(tables: Tables, service: str, row_id: str, year: int) -> bool:
    """Whether a port row's share changed from year−1 to year by less than its intervals (the
    unrounded shares and intervals of usage_by_port)."""
    df = with_interval_columns(tables["usage_by_port"], ["share_pct"]).filter(
        (pl.col("service") == service) & (pl.col("row_id") == row_id)
    )
    by_year = {r["year"]: r for r in df.to_dicts()}
    now, prev = by_year.get(year), by_year.get(year - 1)
    if now is None or prev is None:
        return False
    cols = ("share_pct", "share_pct_lo", "share_pct_hi")
    return bool(not_distinguishable(*(now[c] for c in cols), *(prev[c] for c in cols)))


def _port_facts(tables: Tables, year: int) -> Facts:
    f: Facts = {}
    for svc in ("broadband", "mobile"):
        try:
            table = port_share_table(tables, svc, year)
        except ValueError:
            continue
        inside = []
        for key, proto, port in PORT_ROWS:
            now, prev = _port_row(table, proto, port, year), _port_row(table, proto, port, year - 1)
            f[f"{svc}_{key}_share"] = now
            f[f"{svc}_{key}_change"] = None if not present(now, prev) else now - prev
            row_id = _port_row_id(table, proto, port)
            if key in PORT_CHANGES_QUOTED[svc] and row_id is not None:
                if _port_change_inside(tables, svc, row_id, year):
                    inside.append(key)
        f[f"{svc}_ports_inside"] = [
            k for k in PORT_CHANGES_QUOTED[svc] if k in inside
        ]  # text order
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


def quality_facts(tables: Tables, year: int) -> Facts:
    """Appendix A's trust counts from the data_quality table: duplicates, out-of-window records
    by reason, records outside the weeks, the set-aside threshold and the worst exporter-day, the
    wire counters and the exporters on the registry's default sampling rate (None if absent)."""
    f: Facts = dict.fromkeys(QUALITY_FACTS)
    f["dq_clock_tolerance_minutes"] = load_params().get("ingest", {}).get("clock_tolerance_minutes")
    dq = tables.get("data_quality")
    if dq is None or dq.is_empty():
        return f
    if "year" in dq.columns:
        dq = dq.filter(pl.col("year") == year)
    rows = dq.select("item", "scope", "value").rows()
    overall = {item: value for item, scope, value in rows if scope == "all"}
    f["dq_duplicate_files"] = overall.get("duplicate_files")
    f["dq_duplicate_datagrams"] = overall.get("duplicate_datagrams")
    f["dq_outside_weeks"] = overall.get("records_outside_weeks")
    f["dq_threshold_pct"] = overall.get("max_quarantined_share_pct")
    if "records_in" in overall:  # reasons never met count 0
        f["dq_out_of_window"] = {r: overall.get(f"quarantined:{r}", 0.0) for r in CLOCK_REASONS}
    for item, scope, value in rows:
        if item == "worst_quarantined_share_pct" and scope.startswith("exporter_day:"):
            name, _, day = scope.removeprefix("exporter_day:").rpartition("/")
            f |= {"dq_worst_share_pct": value, "dq_worst_exporter": name, "dq_worst_day": day}
    if not overall.get("reports_with_wire_counters"):  # no report counted them: say nothing
        return f | {"dq_duplicate_datagrams": None}
    wire = {k: overall[k] for k in WIRE_ROWS if overall.get(k) is not None}
    f["dq_wire"] = wire or None
    default = [(scope.removeprefix("exporter:"), value) for item, scope, value in rows
               if item == "records_default_sampling" and scope.startswith("exporter:")]  # fmt: skip
    if default:
        f["dq_default_rate_exporters"] = sorted(name for name, n in default if n and n > 0)
    return f


def _sample_facts(tables: Tables, year: int) -> Facts:
    df = tables["scatter_sample"].filter(pl.col("year") == year)
    f: Facts = {}
    for svc, short in SERVICES:
        part = df.filter(pl.col("service") == svc)
        drawn = part.filter(DRAWABLE)  # a direction not observed or below the rule is NULL
        if drawn.height:
            n_out = drawn.filter(pl.col("daily_out_bytes") > pl.col("daily_in_bytes")).height
            f[f"{short}_sample_out_gt_in_pct"] = 100 * n_out / drawn.height
        if part.height:
            f[f"{short}_sample_users"] = part.height
            f[f"{short}_sample_not_drawn"] = part.height - drawn.height
    return f


def _monthly_yoy(tables: Tables, series: str, direction: str, year: int) -> float | None:
    """Growth in % of one Fig 1 series between the report months of year−1 and year."""
    month = int(load_params()["report"]["report_month"])
    df = tables["monthly_traffic_normalised"].filter(
        (pl.col("year") == year) & (pl.col("series") == series) & (pl.col("direction") == direction)
    )
    now = df.filter(pl.col("month") == f"{year}-{month:02d}")["bytes"].drop_nulls()
    prev = df.filter(pl.col("month") == f"{year - 1}-{month:02d}")["bytes"].drop_nulls()
    if now.is_empty() or prev.is_empty() or not prev[0]:
        return None
    return 100 * (float(now[0]) / float(prev[0]) - 1)


COUNTER_SERVICES = {"broadband": ("broadband_pppoe", "broadband_ipoe"), "mobile": ("mobile",)}


def _counter_gap(
    completeness: pl.DataFrame | None, months: list[str], services: tuple[str, ...]
) -> str | None:
    """'June 2023 (broadband_ipoe OUT)' for the missing counters among `months` × `services`,
    None when all are present (or nothing is known of them)."""
    if completeness is None:
        return None
    gone = completeness.filter(
        (pl.col("kind") == "counters")
        & pl.col("period").is_in(months)
        & pl.col("service").is_in(list(services))
        & ~pl.col("present")
    ).sort("period", "service", "scope")
    parts = []
    for (month,), rows in gone.group_by("period", maintain_order=True):
        which = ", ".join(f"{s} {d}" for s, d in rows.select("service", "scope").rows())
        parts.append(f"{month_name(month)} ({which})")
    return "; ".join(parts) or None


def _completeness_facts(tables: Tables, year: int) -> Facts:
    """What inputs are missing, and the growth facts that a missing counter month withdraws: a
    comparison that needs a missing month is not stated (the text names the month instead)."""
    df = tables.get("input_completeness")
    df = None if df is None or df.is_empty() else df.filter(pl.col("year") == year)
    if df is None or df.is_empty():
        return {}
    rows = inputs.summary(df)
    f: Facts = {
        "completeness": rows,
        "missing_inputs": [r for r in rows if r["missing"]] or None,
    }
    month = int(load_params()["report"]["report_month"])
    now, prev, y5 = (f"{y:04d}-{month:02d}" for y in (year, year - 1, year - 5))
    f["bb_growth_gap"] = _counter_gap(df, [prev, now], COUNTER_SERVICES["broadband"])
    f["mob_growth_gap"] = _counter_gap(df, [prev, now], COUNTER_SERVICES["mobile"])
    f["five_year_gap"] = _counter_gap(df, [y5, now], COUNTER_SERVICES["broadband"])
    return f


def _withdraw_gapped(f: Facts) -> None:
    """None for every growth fact whose counter months are not all present."""
    if f.get("bb_growth_gap"):
        for key in ("bb_in_yoy", "bb_out_yoy", "ipoe_in_share", "ipoe_out_share",
                    "ipoe_in_change", "ipoe_out_change", "pppoe_out_yoy"):  # fmt: skip
            f[key] = None
    if f.get("mob_growth_gap"):
        f["mob_in_yoy"] = f["mob_out_yoy"] = None
    if f.get("five_year_gap"):
        for d in ("in", "out"):
            f[f"bb_{d}_factor_5y"] = f[f"bb_{d}_annualised_5y"] = None


def report_facts(tables: Tables, year: int) -> Facts:
    """Every number the report's sentences quote, keyed by name; None where the tables lack it."""
    f: Facts = dict.fromkeys(OPTIONAL_FACTS)
    f |= {"year": year, "prev_year": year - 1, "five_years_ago": year - 5}
    f |= {f"{svc}_ports_inside": [] for svc, _ in SERVICES}  # no port table: nothing inside
    months = tables["monthly_traffic_normalised"].filter(pl.col("year") == year)["month"]
    f["first_month"] = month_name(months.min()) if len(months) else None
    f["norm_month"] = month_name(load_params()["report"]["normalise_month"])
    f["fig2_weeks"] = fig02_data(tables, year)["week_start"].n_unique()
    for svc, short in SERVICES:
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
    for svc, short in SERVICES:
        f[f"{short}_usage"] = _summary(tables, svc, year)
        f[f"{short}_usage_prev"] = _summary(tables, svc, year - 1)
        f[f"{short}_usage_5y"] = _summary(tables, svc, year - 5)
        f[f"{short}_left_out"] = _left_out(tables, svc, year)
        top = {y: {} for y in (year, year - 1)}
        for d in ("IN", "OUT"):
            for p in (10, 1):
                for y, suffix in ((year, ""), (year - 1, "_prev")):
                    share = _top_share(tables, svc, d, p, y)
                    f[f"{short}_top{p}_{d.lower()}{suffix}"] = share and share["share_pct"]
                    if share:
                        top[y] |= {k.replace("share_pct", f"{d}_{p}"): v for k, v in share.items()}
        f[f"{short}_top10_inside"] = changes_inside(top[year], top[year - 1], TOP_CHANGES_QUOTED)
        f[f"{short}_usage_inside"] = changes_inside(
            f[f"{short}_usage"], f[f"{short}_usage_prev"], USAGE_CHANGES_QUOTED
        )
    f.update(_profile_facts(tables, year))
    f.update(_sample_facts(tables, year))
    f["pppoe_out_yoy"] = _monthly_yoy(tables, "broadband_pppoe", "OUT", year)
    f.update(_week_series_facts(tables, year))
    f.update(_port_facts(tables, year))
    f.update(_completeness_facts(tables, year))
    _withdraw_gapped(f)
    f.update(quality_facts(tables, year))
    return f
