"""Errors that explain: a bad params.yaml or exporters.yaml, an empty or incomplete raw folder and a
missing salt each end the build with one line naming the file, the key and what is allowed."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import PARAMS_FILE, REPO_ROOT, load_params
from pipeline.config_schema import ConfigError, load_params_file
from pipeline.ingest.catalogue import MissingRawInputsError, check_raw_folder
from pipeline.ingest.flows import load_registry

SHIPPED = yaml.safe_load(PARAMS_FILE.read_text())


def _del(*keys):
    def edit(p):
        for k in keys[:-1]:
            p = p[k]
        del p[keys[-1]]

    return edit


def _set(value, *keys):
    def edit(p):
        for k in keys[:-1]:
            p = p[k]
        p[keys[-1]] = value

    return edit


PARAMS_CASES = {
    "missing section": (_del("weeks"), "weeks: missing (a required section)"),
    "missing key": (_del("report", "report_month"), "report.report_month: missing (required)"),
    "impossible date": (
        _set("2024-02-30", "weeks", 2024, "analysis"),
        "weeks.2024.analysis: '2024-02-30' is not a date YYYY-MM-DD "
        "(day is out of range for month)",
    ),
    "unknown mode rule": (
        _set("median", "daily_usage", "mode_rule"),
        "daily_usage.mode_rule: 'median' is not one of 'parabolic' or 'tilt'",
    ),
    "unknown week role": (
        _set([{"start": "2020-02-17", "role": "covid"}], "weeks", 2020, "extra"),
        "weeks.2020.extra.0.role: 'covid' is not one of 'pre_covid' or 'fig2'",
    ),
    "impossible rule day": (
        _set("02-30", "week_rule", "first_monday_on_or_after"),
        "week_rule.first_monday_on_or_after: '02-30' is not a month and day MM-DD",
    ),
    "schedule time": (
        _set("25:00", "schedule", "time"),
        "schedule.time: '25:00' is not a time HH:MM",
    ),
    "interval kind": (
        _set("studentized", "daily_usage", "intervals", "bootstrap_interval"),
        "daily_usage.intervals.bootstrap_interval: 'studentized' is not one of 'normal', 'basic'",
    ),
    "wrong type": (
        _set("three", "ports", "top_ports_per_protocol"),
        "ports.top_ports_per_protocol: Input should be a valid integer",
    ),
    "out of range": (
        _set(13, "report", "report_month"),
        "report.report_month: Input should be less than or equal to 12 (got 13)",
    ),
    "not a month": (
        _set("2020-13", "report", "normalise_month"),
        "report.normalise_month: '2020-13' is not a month YYYY-MM",
    ),
    "misspelt key": (
        _set(1, "quality", "max_quarantine_share_pct"),
        "quality.max_quarantine_share_pct: unknown key (allowed: max_quarantined_share_pct)",
    ),
}


def _write_params(tmp_path: Path, edit) -> Path:
    params = copy.deepcopy(SHIPPED)
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_the_shipped_params_pass() -> None:
    assert load_params_file(PARAMS_FILE) == SHIPPED
    assert load_params() == SHIPPED


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_bad_params_name_file_key_and_allowed_values(tmp_path: Path, case: str) -> None:
    edit, message = PARAMS_CASES[case]
    path = _write_params(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_params_file(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text, text
    assert "\n" not in text


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("report:\n  title: x\n weeks: {}\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: line 3, column 2: not valid YAML"):
        load_params_file(path)


def _build_cli(env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BBTR_", "DAGSTER_"))}
    env |= {"BBTR_DATA_DIR": str(tmp_path / "data")} | env_extra
    command = [sys.executable, "-m", "pipeline.build", "--scale", "small"]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("case", ["missing section", "impossible date", "unknown mode rule"])
def test_the_build_ends_with_one_line_on_bad_params(tmp_path: Path, case: str) -> None:
    edit, message = PARAMS_CASES[case]
    path = _write_params(tmp_path, edit)
    done = _build_cli({"BBTR_PARAMS": str(path)}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"build: {path}: {message}"], done.stderr
    assert done.stdout == ""


def test_the_build_ends_with_one_line_on_yaml_syntax(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS_FILE.read_text().replace("weeks:\n", "weeks:\n weeks: [\n", 1))
    done = _build_cli({"BBTR_PARAMS": str(path)}, tmp_path)
    (line,) = done.stderr.splitlines()
    assert done.returncode == 2 and line.startswith(f"build: {path}: line "), done.stderr


def test_raw_dir_without_salt_is_an_error_not_the_default_salt(tmp_path: Path) -> None:
    done = _build_cli({"BBTR_RAW_DIR": str(tmp_path)}, tmp_path)
    (line,) = done.stderr.splitlines()
    assert done.returncode == 2 and "BBTR_USER_KEY_SALT is not" in line, done.stderr


REGISTRY_CASES = {
    "unknown service": ("exporters: [{name: r1, service: cable}]",
                        "exporters.0.service: 'cable' is not one of 'pppoe', 'ipoe' or 'mobile'"),
    "unknown format": ("exporters: [{name: r1, service: pppoe}]\n"
                       "sources: [{format: sflow, path: 'x/{date}'}]",
                       "sources.0.format: 'sflow' is not one of 'ipfix', 'pcap', 'nfcapd', "
                       "'nfdump-csv' or 'nfdump-json'"),
    "wrong type": ("exporters: [{name: r1, service: pppoe, observation_domain_id: one}]",
                   "exporters.0.observation_domain_id: Input should be a valid integer"),
    "missing key": ("exporters: [{name: r1}]", "exporters.0.service: missing (required)"),
    "syntax": ("exporters: [{name: r1,\n", "line 2, column 1: not valid YAML"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REGISTRY_CASES))
def test_bad_registry_names_file_key_and_allowed_values(tmp_path: Path, case: str) -> None:
    body, message = REGISTRY_CASES[case]
    (tmp_path / "exporters.yaml").write_text(body)
    with pytest.raises(ConfigError) as err:
        load_registry(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'exporters.yaml'}: "), err.value
    assert message in str(err.value) and "\n" not in str(err.value), err.value


SHARES = {"flows": 95, "counters": 95, "radius": 100, "ipoe_leases": 100, "mobile_billing": 100}


def test_raw_folder_absent_or_empty_names_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(MissingRawInputsError, match=r"raw folder .*/nowhere does not exist"):
        check_raw_folder(tmp_path / "nowhere", 2024, SHARES)
    with pytest.raises(MissingRawInputsError, match=r"is empty: expected exporters\.yaml, flow"):
        check_raw_folder(tmp_path, 2024, SHARES)


def test_incomplete_raw_folder_names_each_missing_kind(tmp_path: Path) -> None:
    (tmp_path / "exporters.yaml").write_text("exporters: [{name: r1, service: pppoe}]\n")
    (tmp_path / "radius").mkdir()
    (tmp_path / "radius" / "detail-20240603").write_text("")
    with pytest.raises(MissingRawInputsError) as err:
        check_raw_folder(tmp_path, 2024, SHARES)
    assert str(err.value) == (
        f"raw folder {tmp_path} has no flow files, no ipoe_leases/leases-<date>.csv, "
        "no mobile_billing/billing-<date>.csv, no counters/monthly_traffic.csv for 2024 "
        "(2023-10-02…2024-06-09)"
    )
    check_raw_folder(tmp_path, 2024, dict.fromkeys(SHARES, 0))  # nothing required: passes


def test_empty_raw_folder_stops_the_build_at_its_first_step(tmp_path, monkeypatch, capsys):
    from pipeline.build import build
    from pipeline.config import Settings

    raw = tmp_path / "raw"
    raw.mkdir()
    for key in ("DAGSTER_HOME", "BBTR_FORCE_REBUILD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BBTR_RAW_DIR", str(raw))
    monkeypatch.setenv("BBTR_USER_KEY_SALT", "test-salt")
    monkeypatch.setenv("BBTR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BBTR_REPORTS_DIR", str(tmp_path / "reports"))
    assert not build(2024, 2024, only=True, settings=Settings(source="files", workers=1))
    err = capsys.readouterr().err.splitlines()
    cause = f"raw folder {raw} is empty: expected exporters.yaml"
    assert err[0].startswith(f"build: 2024 raw_inputs: {cause}"), err
    assert err[-1].startswith("build: FAILED after ") and cause in err[-1], err
    assert len(err) == 2, err  # the failing step's line and the closing line: no traceback
