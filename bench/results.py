"""The results of a bench run as tables: the console, bench/results/<time>-<commit>.{tsv,md}, and
the run's facts (date, commits, machine, load)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.harness import Row

COLUMNS = (
    "comparison",
    "scale",
    "case",
    "role",
    "repeats",
    "wall_s",
    "cpu_s",
    "process_cpu_s",
    "peak_rss_mb",
    "cpu_ratio",
    "wall_ratio",
    "rows",
    "mrows_per_cpu_s",
    "load_before",
    "load_after",
    "error",
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def row_cells(row: Row) -> list[str]:
    """The row's cells in COLUMNS order."""
    rate = row.rows / row.cpu_s / 1e6 if row.rows and row.cpu_s else None
    values = {**row.__dict__, "mrows_per_cpu_s": rate}
    digits = {"peak_rss_mb": 0, "cpu_ratio": 2, "wall_ratio": 2, "mrows_per_cpu_s": 2}
    return [_fmt(values[c], digits.get(c, 3)) for c in COLUMNS]


def _git(tree: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def git_commit(tree: Path) -> str:
    """The checkout's commit (with '+dirty' when it has uncommitted changes)."""
    try:
        head = _git(tree, "rev-parse", "--short=12", "HEAD")
        dirty = _git(tree, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_facts() -> dict[str, str]:
    """Host, cores, memory and CPU model of this machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "host": platform.node(),
        "cores": str(os.cpu_count()),
        "memory_gb": f"{mem_kb / 2**20:.1f}",
        "cpu": model,
        "python": platform.python_version(),
    }


def header_lines(meta: dict[str, str]) -> list[str]:
    """`key: value` lines of the run's facts."""
    return [f"{k}: {v}" for k, v in meta.items()]


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def tsv_table(rows: list[Row], meta: dict[str, str]) -> str:
    """The rows as TSV, the run's facts as leading `# key: value` lines."""
    lines = [f"# {line}" for line in header_lines(meta)]
    lines.append("\t".join(COLUMNS))
    lines += ["\t".join(row_cells(r)) for r in rows]
    return "\n".join(lines) + "\n"


def console_table(rows: list[Row]) -> str:
    """A compact fixed-width table for the terminal."""
    width = max([34, *(len(r.case) + 1 for r in rows)])
    head = f"{'comparison':<22}{'scale':>12} {'case':<{width}}{'wall s':>9}{'CPU s':>9}"
    head += f"{'RSS MB':>8}{'CPU ×':>7}{'Mrec/CPU-s':>11}"
    lines = [head]
    for r in rows:
        cells = row_cells(r)
        c = dict(zip(COLUMNS, cells, strict=True))
        line = f"{r.comparison:<22}{r.scale:>12,} {r.case:<{width}}{c['wall_s']:>9}{c['cpu_s']:>9}"
        line += f"{c['peak_rss_mb']:>8}{c['cpu_ratio']:>7}{c['mrows_per_cpu_s']:>11}"
        if r.error:
            line += f"  ({r.error})"
        lines.append(line)
    return "\n".join(lines)


def write_results(
    out_dir: Path, rows: list[Row], meta: dict[str, str], extra_md: str = ""
) -> tuple[Path, Path]:
    """bench/results/<utc time>-<commit>.{tsv,md}: the table and the run's facts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{meta['date'].replace(':', '').replace('-', '')}-{meta['commit']}"
    tsv, md = out_dir / f"{stem}.tsv", out_dir / f"{stem}.md"
    tsv.write_text(tsv_table(rows, meta))
    body = ["# bench run", "", *[f"- {line}" for line in header_lines(meta)], ""]
    body += [markdown_table(rows), ""]
    if extra_md:
        body += [extra_md, ""]
    md.write_text("\n".join(body))
    return tsv, md
