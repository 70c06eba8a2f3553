"""A build that talks: progress lines through logging, the Dagster instance's settings, no print in
stage code, and a failed build's runs, log file and closing line."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import yaml
from dagster import DagsterInstance

from pipeline.buildlog import ensure_instance_settings
from pipeline.config import REPO_ROOT
from pipeline.progress import Progress, count

# Command-line entry points whose own terminal output is the point (before logging is set up).
PRINT_ALLOWED = {"pipeline/build.py"}


def test_no_print_in_pipeline_code() -> None:
    found = []
    for path in sorted((REPO_ROOT / "pipeline").rglob("*.py")):
        name = path.relative_to(REPO_ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print" and name not in PRINT_ALLOWED):  # fmt: skip
                found.append(f"{name}:{node.lineno}")
    assert not found, f"print() in pipeline code (log through `logging`): {found}"


def test_progress_logs_at_most_every_interval(caplog) -> None:
    log = logging.getLogger("pipeline.test_progress")
    with caplog.at_level(logging.INFO, logger="pipeline.test_progress"):
        quiet = Progress(log, "ingest 2024: decoded", 3, "days", every=3600)
        for _ in range(3):
            quiet.step(1000)
        assert caplog.records == []
        talking = Progress(log, "ingest 2024: decoded", 30, "days", every=0)
        for _ in range(30):
            talking.step(150_000)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # at 1/3 and 2/3; the stage's own closing line says the end
    assert lines[0].startswith("ingest 2024: decoded: 10/30 days, 1.5 M flows, ")
    assert lines[1].startswith("ingest 2024: decoded: 20/30 days, 3 M flows, ")
    assert (count(999), count(12_345), count(2_500_000)) == ("999", "12.3 k", "2.5 M")


def test_instance_settings_turn_telemetry_off_and_keep_other_keys(tmp_path: Path) -> None:
    fresh = ensure_instance_settings(tmp_path / "fresh")
    instance = DagsterInstance.from_config(str(tmp_path / "fresh"))
    assert not instance.telemetry_enabled
    assert not instance.nux_enabled  # no "Join the Dagster community" dialog over the UI
    settings = yaml.safe_load(fresh.read_text())
    assert settings["python_logs"]["managed_python_loggers"] == ["pipeline"]
    own = tmp_path / "own"
    own.mkdir()
    (own / "dagster.yaml").write_text("telemetry: {enabled: true}\nrun_retries: {enabled: true}\n")
    settings = yaml.safe_load(ensure_instance_settings(own).read_text())
    assert settings["telemetry"] == {"enabled": False}
    assert settings["run_retries"] == {"enabled": True}


def test_a_failed_build_runs_the_report_job_and_keeps_its_log(tmp_path, monkeypatch, capsys):
    """A fresh DAGSTER_HOME: no telemetry banner, runs named annual_report_job, Dagster's events
    (with the failed step's traceback) in the log file the summary names, the cause last."""
    from pipeline.build import build
    from pipeline.config import Settings

    home, raw = tmp_path / "dagster_home", tmp_path / "raw"
    (raw / "counters").mkdir(parents=True)  # no exporters.yaml: the first step stops
    monkeypatch.delenv("BBTR_FORCE_REBUILD", raising=False)
    for key, value in {"DAGSTER_HOME": home, "BBTR_RAW_DIR": raw, "BBTR_DATA_DIR": tmp_path,
                       "BBTR_USER_KEY_SALT": "test-salt",
                       "BBTR_REPORTS_DIR": tmp_path / "reports"}.items():  # fmt: skip
        monkeypatch.setenv(key, str(value))
    assert not build(2024, 2024, only=True, settings=Settings(source="files", workers=1))
    out, err = capsys.readouterr()
    assert "Telemetry" not in out + err and "DEBUG" not in out + err, out + err
    (run,) = DagsterInstance.from_config(str(home)).get_runs()
    assert run.job_name == "annual_report_job" and run.tags["bbtr/year"] == "2024"
    (log_line,) = [ln for ln in out.splitlines() if "build: full log " in ln]
    log_file = Path(log_line.split("build: full log ", 1)[1])
    text = log_file.read_text()
    assert "STEP_FAILURE" in text and "Stack Trace:" in text and "MissingRawInputsError" in text
    assert err.splitlines()[-1].startswith("build: FAILED after "), err
    assert err.splitlines()[-1].endswith("has no exporters.yaml (the exporter registry)"), err
