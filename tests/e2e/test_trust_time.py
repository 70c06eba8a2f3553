"""End to end, one report year at small scale, in a subprocess: SIGKILL at several points leaves
reports/<year>/ absent, previous or new (never mixed) and the rerun is byte-identical; a world in
America/New_York over a spring-forward week builds, with files by local date and hour."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline.aggregate.history import read_history
from pipeline.atomic import remove_debris
from pipeline.config import PARAMS_FILE, REPO_ROOT, Week, local_day_bounds_ms, week_bounds_ms

pytestmark = pytest.mark.slow  # small builds of one report year (minutes)

YEAR = 2019  # the first report year: its report needs no earlier measured year


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BBTR_", "DAGSTER_"))}
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    return env | {
        "BBTR_DATA_DIR": str(root / "data"),
        "BBTR_REPORTS_DIR": str(root / "reports"),
        "BBTR_SCALE": "small",
        "BBTR_SOURCE": "simulator",
        "SOURCE_DATE_EPOCH": "1717372800",
        "BBTR_CODE_VERSION": "e2e-trust-time",
        "DAGSTER_HOME": str(root / "dagster_home"),
        **extra,
    }


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.build", "--year", str(YEAR), "--from-year",
            str(YEAR), *args]  # fmt: skip


def _build(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=3600)  # fmt: skip


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _report_state(folder: Path) -> str:
    """'absent', or 'complete' when every file is the one provenance.json lists (one build)."""
    if not folder.exists():
        return "absent"
    files = _digests(folder)
    listed = json.loads((folder / "provenance.json").read_text())["outputs_sha256"]
    files.pop("provenance.json")
    assert files == listed, "reports/<year>/ mixes files of two builds"
    return "complete"


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory):
    """A finished build of the year: (its env, reports/<year> digests)."""
    root = tmp_path_factory.mktemp("kill")
    env = _env(root)
    done = _build(env)
    assert done.returncode == 0, done.stderr[-3000:]
    return env, _digests(root / "reports" / str(YEAR))


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, "the build ended before the point to kill it at"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("when", ["after_20s", "report_step", "report_pdf"])
def test_sigkill_leaves_no_mix_and_rerun_is_identical(undisturbed, when: str) -> None:
    env, reference = undisturbed
    data, reports = Path(env["BBTR_DATA_DIR"]), Path(env["BBTR_REPORTS_DIR"])
    # the killed run dates its report otherwise: its files differ from the previous run's
    killed_env = env | {"SOURCE_DATE_EPOCH": "1800000000"}
    proc = subprocess.Popen(_command("--force"), env=killed_env, cwd=REPO_ROOT,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        staging = reports / f".{YEAR}.build.tmp"
        if when == "after_20s":
            time.sleep(20)
        elif when == "report_step":  # CSVs written, HTML and PDF not yet
            _wait_for(staging / "data", proc, 1800)
        else:  # the HTML is written: the PDF is being rendered
            _wait_for(staging / "report.html", proc, 1800)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its worker processes
        proc.wait()
    # absent, the previous report, or the killed run's complete one: never a mix of the two
    assert _report_state(reports / str(YEAR)) in ("absent", "complete")
    if when != "after_20s":  # killed before the swap: the previous report, untouched
        assert _digests(reports / str(YEAR)) == reference
    # killed inside the report step, its staging folder is left; after 20 s the build may or may
    # not have reached that step yet (it depends on the machine's load)
    debris = staging.exists()
    assert debris or when == "after_20s"

    rerun = _build(env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert ("left by an interrupted run" in rerun.stdout) or not debris
    assert _report_state(reports / str(YEAR)) == "complete"
    after = _digests(reports / str(YEAR))
    changed = sorted(n for n in reference.keys() | after.keys() if reference.get(n) != after.get(n))
    assert not changed, f"the rerun after a kill differs from an undisturbed build: {changed}"
    assert remove_debris([data, reports]) == [], "the rerun left temporary files behind"


def test_dst_world_builds_with_local_days(tmp_path: Path) -> None:
    """America/New_York, analysis week 2019-03-04 (clocks spring forward on Sunday 10 March): the
    build succeeds; flow files, RADIUS and lease files are by local date; the 167-hour week's
    daily partitions hold only their local day's flows and add up to the weekly total."""
    params = yaml.safe_load(PARAMS_FILE.read_text())
    params["report"]["time_zone"] = "America/New_York"
    params["weeks"] = {YEAR: {"analysis": "2019-03-04", "extra": []}}
    # a world of 2019 alone has no counters after it: Fig 1 is normalised by a month it holds
    # (otherwise the completeness check stops the build, as it should)
    params["report"]["normalise_month"] = "2019-01"
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    env = _env(tmp_path, BBTR_PARAMS=str(params_file))
    done = _build(env)
    assert done.returncode == 0, done.stderr[-3000:]

    week = Week(dt.date(2019, 3, 4), "analysis")
    raw, warehouse = tmp_path / "data" / "raw", tmp_path / "data" / "warehouse"
    w0, w1 = week_bounds_ms(week, params)
    assert (w1 - w0) // 3_600_000 == 167
    for exporter_dir in sorted((raw / "ipfix").iterdir()):
        hours = {d.isoformat(): [p.stem for p in (exporter_dir / d.isoformat()).glob("*.ipfix")]
                 for d in week.days}  # fmt: skip
        assert len(hours["2019-03-10"]) == 23 and "0200" not in hours["2019-03-10"]
        assert all(len(v) == 24 for k, v in hours.items() if k != "2019-03-10")
    for d in week.days:
        assert (raw / "radius" / f"detail-{d:%Y%m%d}").is_file()
        assert (raw / "ipoe_leases" / f"leases-{d.isoformat()}.csv").is_file()

    flows = pl.read_parquet(warehouse / "flows" / "*" / "*" / "*.parquet", hive_partitioning=True)
    flows = flows.with_columns(pl.col("date").cast(pl.String))
    in_week = flows.filter(pl.col("flow_start_ms").is_between(w0, w1 - 1))
    daily = {}
    for d in week.days:
        lo, hi = local_day_bounds_ms(d, params)
        part = flows.filter(pl.col("date") == d.isoformat())
        assert (
            part.height and part["flow_start_ms"].min() >= lo and part["flow_start_ms"].max() < hi
        )
        daily[d] = part["octets"].sum()  # raw sampled counters: exact integer sums
    assert sum(daily.values()) == in_week["octets"].sum()
    assert (local_day_bounds_ms(dt.date(2019, 3, 10), params)[1]
            - local_day_bounds_ms(dt.date(2019, 3, 10), params)[0]) == 23 * 3_600_000  # fmt: skip

    history = tmp_path / "data" / "history"
    profile = read_history(history, "weekday_hourly_profile", [YEAR])
    assert profile.height == 48 and profile["mean_bps"].null_count() == 0
    series = read_history(history, "port_class_week_series", [YEAR])
    total = series.filter((pl.col("service") == "broadband") & (pl.col("port_class") == "total"))
    assert total.height == 167 * 60 // int(params["ports"]["week_series_bin_minutes"])
    assert (tmp_path / "reports" / str(YEAR) / "report.pdf").is_file()
