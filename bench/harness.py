"""Run comparisons side by side: each case in a fresh child process, interleaved, medians of N.

A comparison is a baseline (a floor: the least work that produces the same output, or the reference
tool) and one or more contenders. Per repeat every case of the comparison runs once, in order
(A B A B …), so drift in the machine's load hits all of them alike. A Python case runs
`bench/child.py` (loads a case module from this checkout by path, calls one function, reports the
CPU and wall time of that call alone, imports excluded); a command case runs an external program.
The process CPU comes from os.wait4 (the child's alone); peak RSS is the child's VmHWM (a Python
case reports it; a command runs under /usr/bin/time -f %M), since the ru_maxrss of a forked child
starts from the parent's resident size.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CHILD = BENCH_DIR / "child.py"
CASES_DIR = BENCH_DIR / "cases"
GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True)
class Case:
    """One measured run: a function of bench/cases/<module>.py (kwargs as JSON), or a command."""

    name: str
    module: str | None = None  # bench/cases/<module>.py (or a path ending in .py)
    function: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] | None = None  # an external program instead (stdout → /dev/null)
    rows: int | None = None  # records the case handles (for records per CPU-second)


@dataclass
class Comparison:
    """A baseline and its contenders, measured at one scale."""

    name: str
    scale: int
    baseline: Case
    contenders: list[Case]
    notes: list[str] = field(default_factory=list)

    @property
    def cases(self) -> list[Case]:
        return [self.baseline, *self.contenders]


@dataclass
class Sample:
    """One child run: wall and CPU of the measured work, the child's CPU and peak RSS."""

    wall_s: float
    cpu_s: float
    process_cpu_s: float
    peak_rss_mb: float
    rows: int | None = None
    error: str | None = None


@dataclass
class Row:
    """A case's medians over its repeats and its ratios to the baseline of the same run."""

    comparison: str
    scale: int
    case: str
    role: str  # baseline | contender
    repeats: int
    wall_s: float | None
    cpu_s: float | None
    process_cpu_s: float | None
    peak_rss_mb: float | None
    cpu_ratio: float | None
    wall_ratio: float | None
    rows: int | None
    load_before: str
    load_after: str
    error: str | None = None


def tree_python(tree: Path) -> str:
    """The interpreter of a checkout: its .venv/bin/python if present, else this one."""
    venv = Path(tree) / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def child_env(tree: Path) -> dict[str, str]:
    """Environment of a case's child: the measured tree first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env.setdefault("TZ", "UTC")
    return env


def case_argv(case: Case, tree: Path, result_path: Path) -> list[str]:
    """The child's command line."""
    if case.command is not None:
        if GNU_TIME.exists():  # its %M is the command's own peak RSS (KB)
            return [str(GNU_TIME), "-f", "%M", "-o", str(result_path), *case.command]
        return list(case.command)
    module = str(case.module)
    module_file = Path(module) if module.endswith(".py") else CASES_DIR / f"{module}.py"
    return [
        tree_python(tree),
        str(CHILD),
        str(module_file),
        str(case.function),
        json.dumps(case.kwargs),
        str(result_path),
    ]


def _rss_mb(pid: int) -> float:
    """Current resident set size of a process (0 if gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_case(case: Case, tree: Path, max_rss_mb: float, timeout_s: float) -> Sample:
    """Run one case in a fresh child; kill it beyond `max_rss_mb` or `timeout_s`."""
    with tempfile.TemporaryDirectory(prefix="bench-case-") as tmp:
        result_path = Path(tmp) / "result.json"
        argv = case_argv(case, tree, result_path)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=tree,
            env=child_env(tree),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        killed: list[str] = []
        reaped = threading.Event()

        def watch() -> None:  # memory and time guard: the machine is shared
            # Never proc.poll() here: it would reap the child before os.wait4 reads its usage.
            while not reaped.wait(0.1):
                if _rss_mb(proc.pid) > max_rss_mb:
                    killed.append(f"killed: RSS above {max_rss_mb:.0f} MB")
                    os.kill(proc.pid, signal.SIGKILL)  # not proc.kill(): it polls, i.e. reaps
                elif time.perf_counter() - t0 > timeout_s:
                    killed.append(f"killed: over {timeout_s:.0f} s")
                    os.kill(proc.pid, signal.SIGKILL)

        guard = threading.Thread(target=watch, daemon=True)
        guard.start()
        stderr = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        reaped.set()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        guard.join()
        process_cpu = usage.ru_utime + usage.ru_stime
        peak = usage.ru_maxrss / 1024
        if killed or proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            error = killed[0] if killed else f"exit {proc.returncode}: {tail[0][:200]}"
            return Sample(wall, process_cpu, process_cpu, peak, error=error)
        if case.command is not None:
            if result_path.exists():
                peak = int(result_path.read_text().split()[-1]) / 1024
            return Sample(wall, process_cpu, process_cpu, peak, rows=case.rows)
        result = json.loads(result_path.read_text())
        rows = result.get("rows") if result.get("rows") is not None else case.rows
        peak = result.get("peak_rss_mb", peak)
        return Sample(result["wall_s"], result["cpu_s"], process_cpu, peak, rows=rows)


def median_or_none(values: list[float]) -> float | None:
    """The median of the values (None if there are none)."""
    return statistics.median(values) if values else None


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base (None when either is missing or the base is 0)."""
    if value is None or base is None or base <= 0:
        return None
    return value / base


def load_text() -> str:
    """The 1/5/15-minute load averages as text."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def summarise(
    comparison: Comparison, samples: dict[str, list[Sample]], load_before: str, load_after: str
) -> list[Row]:
    """Medians per case (failed runs left out) and ratios to the baseline's medians."""
    medians: dict[str, tuple[float | None, ...]] = {}
    for case in comparison.cases:
        good = [s for s in samples[case.name] if s.error is None]
        medians[case.name] = (
            median_or_none([s.wall_s for s in good]),
            median_or_none([s.cpu_s for s in good]),
            median_or_none([s.process_cpu_s for s in good]),
            max((s.peak_rss_mb for s in good), default=None),
        )
    base_wall, base_cpu = medians[comparison.baseline.name][:2]
    out = []
    for case in comparison.cases:
        wall, cpu, pcpu, peak = medians[case.name]
        errors = [s.error for s in samples[case.name] if s.error]
        rows = next((s.rows for s in samples[case.name] if s.rows is not None), case.rows)
        out.append(
            Row(
                comparison=comparison.name,
                scale=comparison.scale,
                case=case.name,
                role="baseline" if case is comparison.baseline else "contender",
                repeats=len(samples[case.name]) - len(errors),
                wall_s=wall,
                cpu_s=cpu,
                process_cpu_s=pcpu,
                peak_rss_mb=peak,
                cpu_ratio=ratio(cpu, base_cpu),
                wall_ratio=ratio(wall, base_wall),
                rows=rows,
                load_before=load_before,
                load_after=load_after,
                error=errors[0] if errors else None,
            )
        )
    return out


def tree_labels(trees: list[Path]) -> list[str]:
    """A short label per checkout: its folder name (with its position when names repeat)."""
    names = [Path(t).name or str(t) for t in trees]
    return [n if names.count(n) == 1 else f"{n}#{i + 1}" for i, n in enumerate(names)]


def per_tree(comparison: Comparison, label: str) -> Comparison:
    """The comparison with every case name prefixed by the checkout's label."""

    def named(case: Case) -> Case:
        return replace(case, name=f"{label}: {case.name}")

    return replace(
        comparison,
        baseline=named(comparison.baseline),
        contenders=[named(c) for c in comparison.contenders],
    )


def run_comparison(
    comparison: Comparison,
    tree: Path | list[Path],
    repeats: int,
    max_rss_mb: float = 8192,
    timeout_s: float = 3600,
    echo=print,
) -> list[Row]:
    """Run every case `repeats` times, interleaved; the rows of its table. With several checkouts
    each repeat runs every case in each of them in turn (before and after in one run); ratios are
    to the baseline measured in the same checkout."""
    trees = [Path(t) for t in tree] if isinstance(tree, list) else [Path(tree)]
    if len(trees) == 1:
        plans = [(trees[0], comparison)]
    else:
        plans = [
            (t, per_tree(comparison, lab)) for t, lab in zip(trees, tree_labels(trees), strict=True)
        ]
    samples = [{c.name: [] for c in comp.cases} for _, comp in plans]
    load_before = load_text()
    stopped: set[int] = set()
    for r in range(repeats):
        for i, (t, comp) in enumerate(plans):
            if i in stopped:
                continue
            for case in comp.cases:
                s = run_case(case, t, max_rss_mb, timeout_s)
                samples[i][case.name].append(s)
                what = s.error or (
                    f"cpu {s.cpu_s:.2f} s, wall {s.wall_s:.2f} s, {s.peak_rss_mb:.0f} MB"
                )
                echo(f"  [{comp.name} {r + 1}/{repeats}] {case.name}: {what}")
                if s.error and case is comp.baseline and r == 0:
                    echo("  baseline failed: this comparison stops")
                    stopped.add(i)
                    break
    load_after = load_text()
    return [
        row
        for i, (_, comp) in enumerate(plans)
        for row in summarise(comp, samples[i], load_before, load_after)
    ]
