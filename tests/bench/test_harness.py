"""The bench harness's logic on tiny inputs: medians, ratios, tables, child runs (nothing timed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import harness, results
from bench.__main__ import parse_scale, parse_scales
from bench.harness import Case, Comparison, Sample
from bench.storage import table_storage

REPO = Path(__file__).resolve().parents[2]


def sample(cpu: float, wall: float = 1.0, rss: float = 100.0, error: str | None = None) -> Sample:
    return Sample(wall_s=wall, cpu_s=cpu, process_cpu_s=cpu + 0.5, peak_rss_mb=rss, error=error)


def test_parse_scale():
    assert parse_scale("1m") == 1_000_000
    assert parse_scale("250k") == 250_000
    assert parse_scale("1.2M") == 1_200_000
    assert parse_scale("5e5") == 500_000
    assert parse_scale("100_000") == 100_000
    assert parse_scales("1m,10m, 30m") == [1_000_000, 10_000_000, 30_000_000]


def test_median_and_ratio():
    assert harness.median_or_none([3.0, 1.0, 2.0]) == 2.0
    assert harness.median_or_none([]) is None
    assert harness.ratio(6.0, 2.0) == 3.0
    assert harness.ratio(6.0, 0.0) is None
    assert harness.ratio(None, 2.0) is None


def test_summarise_medians_ratios_and_failures():
    base, other = Case("floor", command=("true",)), Case("ours", command=("true",), rows=10)
    comp = Comparison("c", 10, base, [other])
    samples = {
        "floor": [sample(1.0), sample(3.0), sample(2.0)],
        "ours": [sample(5.0, rss=300), sample(4.0, rss=200), sample(99.0, error="killed")],
    }
    rows = harness.summarise(comp, samples, "1 1 1", "2 2 2")
    floor, ours = rows
    assert (floor.role, floor.cpu_s, floor.cpu_ratio, floor.repeats) == ("baseline", 2.0, 1.0, 3)
    assert ours.cpu_s == 4.5 and ours.cpu_ratio == pytest.approx(2.25)  # the failed run left out
    assert ours.peak_rss_mb == 300 and ours.repeats == 2 and ours.error == "killed"
    assert ours.process_cpu_s == 5.0 and ours.rows == 10
    cells = dict(zip(results.COLUMNS, results.row_cells(ours), strict=True))
    assert cells["cpu_ratio"] == "2.25" and cells["mrows_per_cpu_s"] == "0.00"


def test_results_tables_written(tmp_path):
    comp = Comparison("c", 5, Case("a", command=("true",)), [Case("b", command=("true",))])
    rows = harness.summarise(comp, {"a": [sample(1.0)], "b": [sample(2.0)]}, "0", "0")
    meta = {"date": "2026-12-04T10:00:00Z", "commit": "abc", "host": "h", "cores": "2"}
    tsv, md = results.write_results(tmp_path, rows, meta, "extra text")
    lines = tsv.read_text().splitlines()
    assert lines[:4] == ["# date: 2026-12-04T10:00:00Z", "# commit: abc", "# host: h", "# cores: 2"]
    assert lines[4].split("\t") == list(results.COLUMNS)
    assert lines[6].split("\t")[:3] == ["c", "5", "b"] and len(lines) == 7
    text = md.read_text()
    assert "| c | 5 | b | contender |" in text and "extra text" in text
    assert tsv.name == "20261204T100000Z-abc.tsv"


def test_interleaved_order_and_child_results(tmp_path):
    module = tmp_path / "tiny_case.py"
    log = tmp_path / "order.txt"
    module.write_text(
        "def run(tag, log):\n"
        "    with open(log, 'a') as fh:\n"
        "        fh.write(tag + '\\n')\n"
        "    return 7\n"
        "def fail():\n"
        "    raise RuntimeError('boom')\n"
    )
    a = Case("a", str(module), "run", {"tag": "a", "log": str(log)})
    b = Case("b", str(module), "run", {"tag": "b", "log": str(log)})
    lines: list[str] = []
    rows = harness.run_comparison(Comparison("t", 7, a, [b]), REPO, 3, echo=lines.append)
    assert log.read_text().split() == ["a", "b"] * 3  # A B A B A B
    assert [r.repeats for r in rows] == [3, 3] and all(r.rows == 7 for r in rows)
    assert all(r.peak_rss_mb and r.peak_rss_mb > 1 for r in rows) and len(lines) == 6
    failed = harness.run_case(Case("f", str(module), "fail"), REPO, 8192, 60)
    assert failed.error and "boom" in failed.error


def test_command_case_and_tree_python(tmp_path):
    s = harness.run_case(Case("true", command=("true",), rows=1), REPO, 8192, 60)
    assert s.error is None and s.rows == 1 and s.peak_rss_mb > 0
    assert harness.tree_python(tmp_path) == sys.executable
    assert harness.child_env(tmp_path)["PYTHONPATH"] == str(tmp_path)


def test_columns_read_ignores_comments(tmp_path):
    spec = importlib.util.spec_from_file_location("agg_case", REPO / "bench/cases/aggregation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "a.sql").write_text("-- octets here is a comment\nSELECT bytes_est FROM t\n")
    assert mod.columns_read(tmp_path, ["octets", "bytes_est", "user_key"]) == ["bytes_est"]


def test_storage_bytes_per_flow(tmp_path):
    folder = tmp_path / "flows" / "date=2024-06-03" / "exporter=e"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"a": list(range(1000)), "b": ["x"] * 1000}), folder / "flows.parquet")
    rows = table_storage(tmp_path, "flows")
    by_col = {r.column: r for r in rows}
    assert set(by_col) == {"a", "b", "TOTAL (files)"}
    assert by_col["TOTAL (files)"].bytes == (folder / "flows.parquet").stat().st_size
    assert all(r.rows == 1000 for r in rows)
    assert by_col["a"].bytes_per_flow > by_col["b"].bytes_per_flow


def test_several_trees_interleave_and_keep_their_own_baseline(tmp_path):
    module = tmp_path / "tiny_case.py"
    log = tmp_path / "order.txt"
    module.write_text(
        "import os\n"
        "def run(tag, log):\n"
        "    with open(log, 'a') as fh:\n"
        "        fh.write(tag + ':' + os.environ['PYTHONPATH'] + '\\n')\n"
    )
    other = tmp_path / "other"
    other.mkdir()
    a = Case("a", str(module), "run", {"tag": "a", "log": str(log)})
    b = Case("b", str(module), "run", {"tag": "b", "log": str(log)})
    rows = harness.run_comparison(Comparison("t", 1, a, [b]), [REPO, other], 2, echo=lambda _: None)
    assert log.read_text().split() == [f"a:{REPO}", f"b:{REPO}", f"a:{other}", f"b:{other}"] * 2
    names = [r.case for r in rows]
    assert names == [f"{REPO.name}: a", f"{REPO.name}: b", "other: a", "other: b"]
    assert [r.role for r in rows] == ["baseline", "contender"] * 2
    assert rows[2].cpu_ratio == 1.0 and all(r.repeats == 2 for r in rows)
    assert harness.tree_labels([Path("/x/a"), Path("/y/a")]) == ["a#1", "a#2"]
