"""The CI workflow (.github/workflows/annual-report.yml): its triggers, caches and artifact, its
run steps calling project scripts only, and those steps run as the workflow would (small scale)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.config import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "annual-report.yml"
PROJECT_SCRIPT = re.compile(r"^bash scripts/[\w.-]+\.sh(?: .*)?$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
MAX_BUILD_LINES = 100  # issue 11: `make report` prints fewer than this many lines


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return workflow()["jobs"]["report"]["steps"]


def uses(action: str) -> list[dict]:
    """The steps that use `action` (e.g. actions/cache), any version."""
    return [s for s in steps() if s.get("uses", "").split("@")[0] == action]


def run_lines() -> list[str]:
    """Every command line of every `run:` step."""
    return [ln.strip() for s in steps() if "run" in s for ln in s["run"].splitlines() if ln.strip()]


def test_triggers_are_a_yearly_cron_and_a_manual_run_with_a_year() -> None:
    on = workflow()[True]  # YAML 1.1 reads the key `on` as true
    (cron,) = [c["cron"] for c in on["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert day != "*" and month != "*" and weekday == "*", f"{cron!r} is not once a year"
    assert "year" in on["workflow_dispatch"]["inputs"]


def test_run_steps_call_project_scripts_only() -> None:
    lines = run_lines()
    assert lines, "the workflow has no run step"
    for line in lines:
        assert PROJECT_SCRIPT.match(line), f"run step {line!r} is not `bash scripts/<name>.sh …`"
        script = REPO_ROOT / shlex.split(line)[1]
        assert script.is_file(), f"run step {line!r}: {script} does not exist"


def test_artifact_is_the_report_folder_and_the_history_store_is_cached() -> None:
    uploads = [
        s["with"] for s in steps() if s.get("uses", "").startswith("actions/upload-artifact")
    ]
    assert any(u["path"] == "repo/reports/${{ steps.build.outputs.year }}/" for u in uploads), (
        uploads
    )
    cached = [s["with"]["path"] for s in uses("actions/cache")]
    assert any("repo/data/history" in p.split() for p in cached), cached
    assert any("repo/.dagster_home" in p.split() for p in cached), cached


def _expand(text: str, values: dict[str, str]) -> str:
    """`${{ expr }}` replaced from `values`; an expression the test does not know fails."""

    def one(m: re.Match) -> str:
        assert m.group(1) in values, f"expression {m.group(0)} unknown to the test"
        return values[m.group(1)]

    return EXPRESSION.sub(one, text)


@pytest.mark.slow  # builds 2019-2020 at small scale through make (minutes)
def test_the_workflow_steps_build_the_artifact(tmp_path: Path) -> None:
    year = "2020"
    out = tmp_path / "github_output"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BBTR_", "DAGSTER_"))}
    env |= {"SCALE": "small", "GITHUB_OUTPUT": str(out), "SOURCE_DATE_EPOCH": "1717372800",
            "BBTR_DATA_DIR": str(tmp_path / "data"), "BBTR_REPORTS_DIR": str(tmp_path / "reports"),
            "DAGSTER_HOME": str(tmp_path / "dagster_home")}  # fmt: skip
    printed: list[str] = []
    for step in steps():
        if "run" not in step:
            continue
        command = _expand(step["run"], {"inputs.year": year})
        done = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, env=env, text=True,
                              capture_output=True, timeout=1800)  # fmt: skip
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stderr[-3000:]}"
        printed += (done.stdout + done.stderr).splitlines()
    outputs = dict(ln.split("=", 1) for ln in out.read_text().splitlines())
    assert outputs["year"] == year
    upload = uses("actions/upload-artifact")[0]
    folder = _expand(upload["with"]["path"], {"steps.build.outputs.year": outputs["year"]})
    artifact = tmp_path / "reports" / Path(folder).relative_to("repo/reports")
    assert (artifact / "report.pdf").stat().st_size > 0, f"no PDF in {artifact}"
    assert len(printed) < MAX_BUILD_LINES, "\n".join(printed)
    assert any(ln.startswith("ci: artifact folder") for ln in printed), printed[-5:]
