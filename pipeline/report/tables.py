"""Tables 1–4 shaped for print, and one CSV per figure and table (exactly the numbers shown)."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from pipeline.charts.figures import FIGURES
from pipeline.charts.render import write_bytes_atomic
from pipeline.report.intervals import LABEL_SUFFIX, with_interval_columns, with_labels

Tables = dict[str, pl.DataFrame]
USAGE_STATS = ("mean", "median", "mode")
TABLE_CSV_NAMES = {
    1: "table_1_broadband_daily_usage.csv",
    2: "table_2_mobile_daily_usage.csv",
    3: "table_3_broadband_port_share.csv",
    4: "table_4_mobile_port_share.csv",
}
# Tables whose numbers the text quotes (not drawn in a figure or printed table): one CSV each.
TEXT_CSV_NAMES = {
    "top_user_share": ("text_top_user_shares.csv", ("service", "direction", "top_pct")),
    "growth_statistics": ("text_growth_statistics.csv", ("metric", "service", "direction")),
}
# Words that would betray a per-subscriber or per-address column in a published CSV.
FORBIDDEN_COLUMN_WORDS = ("user", "msisdn", "subscription", "addr", "src_v", "dst_v", "ip_")


def daily_usage_table(tables: Tables, service: str, year: int) -> pl.DataFrame:
    """Table 1 (broadband, integers) or 2 (mobile, one decimal): a row per year ≤ `year`.

    Columns: year, then per value (in_mean_mb … out_mode_mb) the value, its 95 % interval _lo, _hi
    (NULL where unknown) and _ci, the interval as printed (intervals.interval_label, not in the
    CSV); source. Measured rows of a year beat published ones.
    """
    decimals = 0 if service == "broadband" else 1
    values = [f"{s}_mb" for s in USAGE_STATS]
    df = tables["daily_usage_summary"].filter(
        (pl.col("service") == service) & (pl.col("year") <= year)
    )
    df = with_interval_columns(df, values)
    df = df.with_columns((pl.col("source") == "measured").alias("_measured"))
    df = df.filter(pl.col("_measured") == pl.col("_measured").max().over("year"))
    wide = df.pivot(
        on="direction",
        index=["year", "source"],
        values=[f"{v}{end}" for v in values for end in ("", "_lo", "_hi")],
        aggregate_function="first",
    )
    dtype = pl.Int64 if decimals == 0 else pl.Float64
    names = [f"{d.lower()}_{s}_mb" for d in ("IN", "OUT") for s in USAGE_STATS]
    wide = wide.rename(
        {
            f"{s}_mb{end}_{d}": f"{d.lower()}_{s}_mb{end}"
            for d in ("IN", "OUT")
            for s in USAGE_STATS
            for end in ("", "_lo", "_hi")
        }  # fmt: skip
    )
    wide = with_labels(wide, names, decimals)
    cols = [
        pl.col(f"{c}{end}").round(decimals).cast(dtype)
        if end != LABEL_SUFFIX
        else pl.col(f"{c}{end}")
        for c in names
        for end in ("", "_lo", "_hi", LABEL_SUFFIX)
    ]
    return wide.select("year", *cols, "source").sort("year")


def port_share_table(tables: Tables, service: str, year: int) -> pl.DataFrame:
    """Table 3 / 4: a row per port row_id; per year Y−4..Y a share column pct_Y (null = not
    listed) and its 95 % interval pct_Y_lo, pct_Y_hi (null where unknown); then pct_Y_ci, the
    intervals as printed (not in the CSV)."""
    years = list(range(year - 4, year + 1))
    df = tables["usage_by_port"].filter(
        (pl.col("service") == service) & pl.col("year").is_in(years)
    )
    if df.is_empty():
        raise ValueError(f"usage_by_port has no {service} rows for {years[0]}..{year}")
    # Row order and labels come from the latest year in which each row appears.
    latest = (
        df.sort("year")
        .group_by("row_id", maintain_order=True)
        .last()
        .select("row_id", "protocol", "port_label", "row_kind", "parent", "sort_key")
    )
    df = with_interval_columns(df, ["share_pct"])
    shares = df.select(
        "row_id",
        pl.format("pct_{}", "year").alias("col"),
        *[
            pl.col(f"share_pct{end}").cast(pl.Float64).alias(end or "_")
            for end in ("", "_lo", "_hi")
        ],
    ).unpivot(index=["row_id", "col"], variable_name="end")
    shares = shares.with_columns(
        pl.concat_str("col", pl.col("end").str.strip_chars_end("_")).alias("col")
    ).pivot(on="col", index="row_id", values="value", aggregate_function="first")
    columns = [f"pct_{y}{end}" for y in years for end in ("", "_lo", "_hi")]
    shares = shares.with_columns(
        pl.lit(None, dtype=pl.Float64).alias(c) for c in columns if c not in shares.columns
    )
    out = latest.join(shares, on="row_id", how="left").sort("sort_key", "row_id")
    out = with_labels(out, [f"pct_{y}" for y in years], decimals=1)
    return out.select(
        "row_id",
        "protocol",
        pl.col("port_label").alias("label"),
        "row_kind",
        "parent",
        *[pl.col(c).cast(pl.Float64).round(1) for c in columns],
        *[f"pct_{y}{LABEL_SUFFIX}" for y in years],
    )


def printed_tables(tables: Tables, year: int) -> dict[int, pl.DataFrame]:
    """Tables 1–4 by number, in the shape printed in the report."""
    return {
        1: daily_usage_table(tables, "broadband", year),
        2: daily_usage_table(tables, "mobile", year),
        3: port_share_table(tables, "broadband", year),
        4: port_share_table(tables, "mobile", year),
    }


def csv_bytes(df: pl.DataFrame) -> bytes:
    """CSV text of `df` (LF line ends, fixed float formatting)."""
    buf = io.BytesIO()
    df.write_csv(buf, line_terminator="\n")
    return buf.getvalue()


def check_publishable(df: pl.DataFrame, name: str) -> None:
    """Refuse a published CSV with a column that looks like a subscriber id or an address."""
    bad = [c for c in df.columns if any(w in c.lower() for w in FORBIDDEN_COLUMN_WORDS)]
    if bad:
        raise ValueError(f"{name}: columns {bad} look like subscriber identifiers or addresses")


def write_data_csvs(tables: Tables, year: int, out_dir: Path) -> dict[str, Path]:
    """Write figure_NN_*.csv and table_N_*.csv into out_dir; returns {file name: path}."""
    data_dir = Path(out_dir)
    frames: dict[str, pl.DataFrame] = {spec.csv_name: spec.data(tables, year) for spec in FIGURES}
    for number, df in printed_tables(tables, year).items():
        frames[TABLE_CSV_NAMES[number]] = df.select(pl.exclude(f"^.*{LABEL_SUFFIX}$"))
    for table, (name, keys) in TEXT_CSV_NAMES.items():
        if table in tables:
            quoted = tables[table].filter(pl.col("year") <= year)
            frames[name] = quoted.sort("year", *keys).select("year", pl.exclude("year"))
    written = {}
    for name, df in sorted(frames.items()):
        check_publishable(df, name)
        written[name] = write_bytes_atomic(data_dir / name, csv_bytes(df))
    return written
