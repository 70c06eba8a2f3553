"""The annual report: Jinja HTML + CSS paged media → report.html and report.pdf (WeasyPrint)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import jinja2
import polars as pl
from weasyprint import HTML

from pipeline.charts.render import write_bytes_atomic
from pipeline.config import REPO_ROOT, time_zone
from pipeline.report import formats
from pipeline.report.facts import report_facts
from pipeline.report.formats import fmt_number, month_name
from pipeline.report.tables import printed_tables, write_data_csvs

ASSETS_DIR = REPO_ROOT / "assets"
TEMPLATES_DIR = ASSETS_DIR / "templates"
CSS_FILE = ASSETS_DIR / "css" / "report.css"
PUBLISHED_NOTE = "published values, IIR Vol.64"


def figure_titles(year: int, norm_month: str = "2020-01") -> dict[int, str]:
    """Captions 'Figure N: <title>' of the eleven figures (title part)."""
    p, y5 = year - 1, year - 5
    return {
        1: f"Monthly Broadband and Mobile Traffic, Relative to {month_name(norm_month)}",
        2: f"Weekday Hourly Broadband Traffic, Selected Weeks from {p} to {year}",
        3: f"Daily Traffic per Broadband User: Comparison of {p} and {year}",
        4: f"Daily Traffic per Mobile User: Comparison of {p} and {year}",
        5: f"Daily IN versus OUT per Broadband User, {year}",
        6: f"Daily IN versus OUT per Mobile User, {year}",
        7: f"Broadband Traffic by Port Class over the Week, {p} (top) and {year} (bottom)",
        8: f"Mobile Traffic by Port Class over the Week, {p} (top) and {year} (bottom)",
        9: f"Weekday Hourly Broadband Download (OUT), Before the Pandemic and {year - 4}–{year}",
        10: f"Weekday Hourly Broadband Upload (IN), Before the Pandemic and {year - 4}–{year}",
        11: f"Daily Traffic per Broadband User, {y5}–{year}",
    }


def table_titles(year: int) -> dict[int, str]:
    return {
        1: f"Daily Traffic per Broadband User, MB/day (mean, median, mode), up to {year}",
        2: f"Daily Traffic per Mobile User, MB/day (mean, median, mode), up to {year}",
        3: f"Broadband Traffic Share by Protocol and Port, {year - 4}–{year} (%)",
        4: f"Mobile Traffic Share by Protocol and Port, {year - 4}–{year} (%)",
    }


EDITORIAL_PARAMS = ("report.editions", "report.default_subtitle")


def flatten_params(params: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested params as sorted ('a.b.c', 'value') pairs; lists are printed inline, a list of flat
    mappings one row per entry ('k=v, …'); empty lists and mappings (nothing set) are left out."""
    if isinstance(params, dict):
        out: list[tuple[str, str]] = []
        for key in sorted(params, key=str):
            out += flatten_params(params[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(params, list) and not params:
        return []
    if isinstance(params, list) and all(isinstance(v, dict) for v in params):
        if all(not isinstance(x, dict | list) for v in params for x in v.values()):
            return [
                (f"{prefix}[{i}]", ", ".join(f"{k}={v[k]}" for k in sorted(v, key=str)))
                for i, v in enumerate(params)
            ]
    if isinstance(params, list) and any(isinstance(v, dict) for v in params):
        return [pair for i, v in enumerate(params) for pair in flatten_params(v, f"{prefix}[{i}]")]
    if isinstance(params, list):
        return [(prefix, ", ".join(str(v) for v in params))]
    return [(prefix, "null" if params is None else str(params))]


def interval_params(params: dict) -> dict[str, Any]:
    """daily_usage.intervals of params.yaml (level 0.95 unless set), with the level in percent."""
    given = params.get("daily_usage", {}).get("intervals") or {}
    level = float(given.get("level", 0.95))
    return {**given, "level": level, "level_pct": f"{100 * level:g}"}


def data_quality_rows(dq: pl.DataFrame | None) -> list[dict[str, str]]:
    """Appendix A rows (item, scope, value as printed) from the data_quality table."""
    if dq is None or dq.is_empty():
        return []
    rows = []
    for r in dq.to_dicts():
        value = r.get("value")
        if isinstance(value, float) and value != value:
            text = "–"
        elif isinstance(value, int | float) and float(value).is_integer():
            text = f"{value:,.0f}"
        elif isinstance(value, int | float):
            text = f"{value:,.2f}"
        else:
            text = str(value)
        rows.append({"item": str(r["item"]), "scope": str(r.get("scope") or ""), "value": text})
    return rows


EXPORTER_COUNTS = ("files", "messages", "records_in", "records_decoded", "records_quarantined",
                   "sequence_gaps")  # fmt: skip
VERSION_NAMES = {"5": "NetFlow v5", "9": "NetFlow v9", "10": "IPFIX"}
SOURCE_NAMES = {"ipfix": "file", "pcap": "pcap", "nfcapd": "nfcapd", "nfdump-csv": "nfdump csv",
                "nfdump-json": "nfdump json"}  # fmt: skip


def export_label(exporter: dict[str, Any]) -> str:
    """'IPFIX · file', 'NetFlow v9 · pcap': export versions seen, and the form read from."""
    versions = exporter.get("records_by_version") or {}
    names = [VERSION_NAMES.get(str(v), f"v{v}") for v in sorted(versions, key=int) if versions[v]]
    forms = [SOURCE_NAMES.get(f, f) for f in sorted(exporter.get("formats") or {})]
    return " · ".join(p for p in (", ".join(names), ", ".join(forms)) if p) or "–"


def sequence_label(exporter: dict[str, Any]) -> str:
    """Sequence gaps, with what they lost in each version's own unit: '2 (96 records)'."""
    streams = (exporter.get("sequence") or {}).values()
    gaps = int(exporter.get("sequence_gaps") or 0)
    lost: dict[str, int] = {}
    for s in streams:
        if s.get("missing"):
            lost[s.get("unit") or "records"] = (
                lost.get(s.get("unit") or "records", 0) + s["missing"]
            )
    if not lost:
        return f"{gaps:,}"
    return f"{gaps:,} ({', '.join(f'{n:,} {u}' for u, n in sorted(lost.items()))} lost)"


def quarantine_reason_rows(exporters: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Appendix A table of set-aside records: one row per exporter and reason, most first."""
    rows = []
    for e in sorted(exporters, key=lambda e: str(e.get("name"))):
        reasons = e.get("quarantine_by_reason") or {}
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            if n:
                rows.append({"name": str(e["name"]), "reason": reason, "records": f"{n:,}"})
    return rows


def exporter_quality_rows(
    dq: pl.DataFrame | None, exporters: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Appendix A table: per exporter (then 'all') the ingest counts and sampling intervals seen.

    Counts come from the data_quality table's `exporter:<name>` rows, else from the context's
    exporter entry; a count known to neither prints '–'."""
    scoped: dict[str, dict[str, float]] = {}
    if dq is not None and not dq.is_empty():
        for item, scope, value in dq.select("item", "scope", "value").rows():
            scoped.setdefault(str(scope or ""), {})[str(item)] = value
    names = sorted({str(e.get("name")) for e in exporters} | {
        k.split(":", 1)[1] for k in scoped if k.startswith("exporter:")
    })  # fmt: skip
    by_name = {str(e.get("name")): e for e in exporters}
    rows = []
    totals: dict[str, float | None] = dict.fromkeys(EXPORTER_COUNTS, 0.0)
    for name in names:
        e, q = by_name.get(name, {}), scoped.get(f"exporter:{name}", {})
        row = {
            "name": name,
            "service": str(e.get("service") or "–"),
            "export": export_label(e),
            "sequence": sequence_label(e) if e else "–",
            "restarts": f"{int(e.get('restarts') or 0):,}" if e else "–",
        }
        for k in EXPORTER_COUNTS:
            v = q.get(k, e.get(k))
            row[k] = fmt_number(v)
            totals[k] = None if v is None or totals[k] is None else totals[k] + float(v)
        intervals = e.get("sampling_intervals") or {}
        row["sampling"] = (
            ", ".join(
                f"{int(n):,}" for n in sorted(intervals, key=lambda n: int(n)) if intervals[n]
            )
            or "–"
        )
        rows.append(row)
    if rows:
        overall = scoped.get("all", {})
        total_row = {"name": "all exporters", "service": "", "sampling": "", "export": ""}
        for k in EXPORTER_COUNTS:
            total_row[k] = fmt_number(overall.get(k, totals[k]))
        total_row["sequence"] = total_row["sequence_gaps"]
        total_row["restarts"] = f"{sum(int(e.get('restarts') or 0) for e in exporters):,}"
        rows.append(total_row)
    return rows


def export_versions_seen(exporters: list[dict[str, Any]]) -> str:
    """'IPFIX', 'NetFlow v9 and IPFIX': the export versions some exporter's records came in."""
    seen = sorted({int(v) for e in exporters for v, n in (e.get("records_by_version") or {}).items()
                   if n})  # fmt: skip
    names = [VERSION_NAMES.get(str(v), f"v{v}") for v in seen]
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else ""


def sampling_intervals_seen(exporters: list[dict[str, Any]]) -> list[int]:
    """Every sampling interval N that some exporter's records carried, ascending."""
    return sorted({int(n) for e in exporters for n, c in (e.get("sampling_intervals") or {}).items()
                   if c})  # fmt: skip


def _pdf_date(epoch: int) -> str:
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy_figures(figures: dict[str, Path], fig_dir: Path) -> dict[str, str]:
    """Place each figure under out_dir/figures/ and return {key: relative src for the HTML}."""
    srcs = {}
    for key, path in sorted(figures.items()):
        target = fig_dir / f"{key}.svg"
        if Path(path).resolve() != target.resolve():
            write_bytes_atomic(target, Path(path).read_bytes())
        srcs[key] = f"figures/{key}.svg"
    return srcs


def _first_measured_year(tables: dict[str, pl.DataFrame]) -> int | None:
    df = tables.get("daily_usage_summary")
    if df is None or "source" not in df.columns:
        return None
    years = df.filter(pl.col("source") == "measured")["year"]
    return None if years.is_empty() else int(years.min())


def render_html(
    year: int, tables: dict[str, pl.DataFrame], figure_srcs: dict[str, str], context: dict
) -> str:
    """The report as one HTML document (figures referenced relative to the output folder).

    The prose partials (assets/templates/partials/) quote `facts` (pipeline.report.facts) through
    the filters and globals of pipeline.report.formats."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    formats.register(env)
    provenance = context.get("provenance", {})
    params = context.get("params", {})
    epoch = int(provenance.get("source_date_epoch", 0))
    dq = tables.get("data_quality")
    return env.get_template("report.html.j2").render(
        year=year,
        title=context.get("title", "Broadband Traffic Report"),
        series=context.get("series", "Periodic Observation Report"),
        subtitle=context.get("subtitle", ""),
        edition=context.get("edition", f"{year} edition"),
        simulated=bool(context.get("simulated", True)),
        css=CSS_FILE.read_text(),
        created=_pdf_date(epoch),
        facts=report_facts(tables, year),
        fig=figure_srcs,
        fig_titles=figure_titles(year, params.get("report", {}).get("normalise_month", "2020-01")),
        days_per_week=params.get("daily_usage", {}).get("days_per_week", 7),
        time_zone=str(time_zone(params)),
        mode_rule=params.get("daily_usage", {}).get("mode_rule", "tilt"),
        mode_fit_bins=params.get("daily_usage", {}).get("mode_fit_bins", 7),
        min_sampled_packets=params.get("daily_usage", {}).get("min_sampled_packets", 1),
        max_relative_error=params.get("daily_usage", {}).get("max_relative_error"),
        intervals=interval_params(params),
        interval_level_pct=interval_params(params)["level_pct"],
        table_titles=table_titles(year),
        tables={k: v.to_dicts() for k, v in printed_tables(tables, year).items()},
        port_years=list(range(year - 4, year + 1)),
        published_note=PUBLISHED_NOTE,
        analysis_weeks={
            str(k): str(v) for k, v in sorted(context.get("analysis_weeks", {}).items())
        },
        provenance=provenance,
        # editorial wording (subtitles, edition lines) is on the title page, not a computation
        params=[(k, v) for k, v in flatten_params(params) if not k.startswith(EDITORIAL_PARAMS)],
        data_quality_rows=data_quality_rows(dq),
        dq_context=context.get("data_quality", {}),
        exporters=sorted(context.get("exporters", []), key=lambda e: str(e.get("name"))),
        exporter_rows=exporter_quality_rows(dq, context.get("exporters", [])),
        quarantine_rows=quarantine_reason_rows(context.get("exporters", [])),
        sampling_intervals=sampling_intervals_seen(context.get("exporters", [])),
        export_versions=export_versions_seen(context.get("exporters", [])),
        first_measured_year=_first_measured_year(tables),
        unattributed=dict(sorted(context.get("unattributed_share_pct", {}).items())),
    )


def build_report(
    year: int,
    tables: dict[str, pl.DataFrame],
    figures: dict[str, Path],
    context: dict,
    out_dir: Path,
) -> dict[str, Path]:
    """Write report.html, report.pdf, figures/figNN.svg and data/*.csv under out_dir.

    `figures` maps "fig01".."fig11" to SVG files (from charts.render.build_charts).
    `context` keys (all optional except provenance.source_date_epoch for reproducible PDFs):
      year; title; series; subtitle; simulated (bool: adds "built from simulated ISP data");
      analysis_weeks {year: "YYYY-MM-DD"}; params (the params.yaml dict, printed in appendix B);
      provenance {code_version, inputs_sha256, input_files, params_sha256, source_date_epoch};
      data_quality {records_in, records_decoded, records_quarantined, quarantine_by_reason{}};
      exporters [{name, service, sampling_intervals{N: records}, records_decoded,
      records_quarantined}]; unattributed_share_pct {service: float}.
    Returns {"html", "pdf", "fig01".., and each CSV file name: path}.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    srcs = _copy_figures(figures, out_dir / "figures")
    written: dict[str, Path] = {k: out_dir / v for k, v in srcs.items()}
    written.update(write_data_csvs(tables, year, out_dir / "data"))
    html = render_html(year, tables, srcs, context)
    written["html"] = write_bytes_atomic(out_dir / "report.html", html.encode("utf-8"))
    pdf = HTML(string=html, base_url=str(out_dir) + "/").write_pdf()
    written["pdf"] = write_bytes_atomic(out_dir / "report.pdf", pdf)
    return written


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
