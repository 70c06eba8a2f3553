"""The Dagster instance on PostgreSQL (BBTR_DAGSTER_PG_URL): dagster.yaml names the variable, never
the URL; a real server started here holds the runs, their events and the schedule state; unsetting
the variable goes back to SQLite."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, asset, materialize

from pipeline.buildlog import PG_STORAGE, PG_URL_ENV, ensure_instance_settings
from pipeline.config import REPO_ROOT
from tests.servers.postgres import PgServer, free_port, start_postgres

SECRET_URL = "postgresql+psycopg2://bbtr:s3cret-pw@db.example:5432/dagster"


@pytest.fixture(scope="module")
def pg(tmp_path_factory) -> Iterator[PgServer]:
    with start_postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


def _query(pg: PgServer, sql: str, *params) -> list[tuple]:
    import psycopg2

    with contextlib.closing(psycopg2.connect(pg.url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_settings_follow_the_variable_and_never_hold_the_url(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(PG_URL_ENV, SECRET_URL)
    text = ensure_instance_settings(home).read_text()
    settings = yaml.safe_load(text)
    assert settings["storage"] == {"postgres": {"postgres_url": {"env": PG_URL_ENV}}}
    assert "s3cret" not in text and "db.example" not in text
    assert settings["telemetry"] == {"enabled": False}  # the other settings as before
    monkeypatch.delenv(PG_URL_ENV)  # switched back: Dagster's SQLite default under the home
    settings = yaml.safe_load(ensure_instance_settings(home).read_text())
    assert "storage" not in settings and settings["nux"] == {"enabled": False}
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    own = {"storage": {"sqlite": {"base_dir": str(tmp_path / "own")}}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(own))
    assert yaml.safe_load(ensure_instance_settings(home).read_text())["storage"] == own["storage"]


def test_settings_refuse_what_would_not_work(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("run_storage: {module: m, class: C, config: {}}\n")
    monkeypatch.setenv(PG_URL_ENV, SECRET_URL)
    with pytest.raises(ValueError, match="sets run_storage of its own"):
        ensure_instance_settings(home)
    monkeypatch.setenv(PG_URL_ENV, SECRET_URL.replace("+psycopg2", ""))
    with pytest.raises(ValueError, match=r"must start with postgresql\+psycopg2://") as err:
        ensure_instance_settings(tmp_path / "other")
    assert "s3cret" not in str(err.value)  # the error never shows the password


def test_runs_events_and_schedules_live_in_postgres(pg, tmp_path, monkeypatch, capsys) -> None:
    """The build's own path (DAGSTER_HOME, dagster.yaml, DagsterInstance.get()) records the
    project's run in PostgreSQL, an asset's events too, and the project's schedule state; a
    second instance reads them back; unset, the home is SQLite again."""
    from pipeline.build import build
    from pipeline.config import Settings

    home, raw = tmp_path / "dagster_home", tmp_path / "raw"
    (raw / "counters").mkdir(parents=True)  # no exporters.yaml: the run fails at its first step
    monkeypatch.delenv("BBTR_FORCE_REBUILD", raising=False)
    for key, value in {"DAGSTER_HOME": home, "BBTR_RAW_DIR": raw, "BBTR_DATA_DIR": tmp_path,
                       "BBTR_USER_KEY_SALT": "test-salt", PG_URL_ENV: pg.dagster_url,
                       "BBTR_REPORTS_DIR": tmp_path / "reports"}.items():  # fmt: skip
        monkeypatch.setenv(key, str(value))
    assert not build(2024, 2024, only=True, settings=Settings(source="files", workers=1))
    capsys.readouterr()
    assert yaml.safe_load((home / "dagster.yaml").read_text())["storage"] == PG_STORAGE
    ((run_id, status),) = _query(
        pg, "SELECT run_id, status FROM runs WHERE pipeline_name = 'annual_report_job'"
    )
    assert status == "FAILURE"
    assert _query(pg, "SELECT value FROM run_tags WHERE run_id = %s AND key = 'bbtr/year'",
                  run_id) == [("2024",)]  # fmt: skip
    events = {e for (e,) in _query(pg, "SELECT dagster_event_type FROM event_logs "
                                       "WHERE run_id = %s", run_id)}  # fmt: skip
    assert {"PIPELINE_START", "STEP_FAILURE", "PIPELINE_FAILURE"} <= events, events

    @asset
    def pg_probe() -> int:
        return 1

    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert materialize([pg_probe], instance=instance).success
        schedule = _stop_project_schedule(instance)
    materialized = (
        "SELECT count(*) FROM event_logs WHERE asset_key = %s AND dagster_event_type = %s"
    )
    assert _query(pg, materialized, '["pg_probe"]', "ASSET_MATERIALIZATION") == [(1,)]
    assert _query(pg, "SELECT status FROM jobs WHERE job_origin_id = %s",
                  schedule.get_remote_origin_id()) == [("STOPPED",)]  # fmt: skip
    with DagsterInstance.from_config(str(home)) as again:  # what another host would see
        jobs = {run.job_name for run in again.get_runs()}
        assert jobs == {"annual_report_job", "__ephemeral_asset_job__"}
        state = again.get_instigator_state(schedule.get_remote_origin_id(), schedule.selector_id)
        assert state is not None and state.status.value == "STOPPED"
    assert not list(home.rglob("*.db")), "no SQLite database beside PostgreSQL"

    monkeypatch.delenv(PG_URL_ENV)  # switched back to the embedded default
    ensure_instance_settings(home)
    with DagsterInstance.from_config(str(home)) as local:
        assert type(local.run_storage).__name__ == "SqliteRunStorage"
        assert local.get_runs() == []  # the runs stay in PostgreSQL (no migration)


def _stop_project_schedule(instance: DagsterInstance):
    """Load the project's code location in this process and stop `annual_report_schedule` (what
    the UI's toggle does); returns the schedule."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="pipeline.definitions", working_directory=str(REPO_ROOT)),
        location_name="bbtr",  # workspace.yaml's name
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as workspace:
        location = workspace.create_request_context().get_code_location("bbtr")
        (repo,) = location.get_repositories().values()
        schedule = repo.get_schedule("annual_report_schedule")
        instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
    return schedule


def test_the_server_runs_as_its_own_user_on_loopback_only(pg) -> None:
    """Not root (PostgreSQL refuses it), listening on 127.0.0.1 alone."""
    ((addresses, port),) = _query(pg, "SELECT current_setting('listen_addresses'), "
                                      "current_setting('port')")  # fmt: skip
    assert (addresses, int(port)) == ("127.0.0.1", pg.port)
    owner = os.stat(f"/proc/{pg.pid}").st_uid
    assert owner != 0 and pg.url.startswith("postgresql://bbtr@127.0.0.1:")


LOCATION = ("bbtr", "__repository__")
LOADED = """{ workspaceOrError { ... on Workspace {
  locationEntries { locationOrLoadError { __typename } } } } }"""
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


@pytest.mark.slow
def test_the_deployed_processes_run_a_launched_run_in_the_code_location(pg, tmp_path) -> None:
    """docs/DEPLOY.md's Dagster processes, as plain processes on deploy/workspace.yaml: a run
    launched from the webserver is queued, taken by the daemon and run by the code server (it
    sees the raw folder only the code server is given), all of it recorded in PostgreSQL."""
    raw = tmp_path / "raw"
    (raw / "counters").mkdir(parents=True)  # no exporters.yaml: the run fails at its first step
    code_port, web_port = free_port(), free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "DAGSTER_HOME": str(tmp_path / "home"), PG_URL_ENV: pg.dagster_url,
           "BBTR_CODE_SERVER_HOST": "127.0.0.1",
           "BBTR_CODE_SERVER_PORT": str(code_port)}  # fmt: skip
    data = {"BBTR_RAW_DIR": str(raw), "BBTR_USER_KEY_SALT": "test-salt",  # the code server's only
            "BBTR_DATA_DIR": str(tmp_path / "data"),
            "BBTR_REPORTS_DIR": str(tmp_path / "reports")}  # fmt: skip
    bin_dir = Path(sys.executable).parent
    subprocess.run([sys.executable, "-m", "pipeline.buildlog", env["DAGSTER_HOME"]], env=env,
                   cwd=REPO_ROOT, check=True)  # fmt: skip
    workspace = ["-w", "deploy/workspace.yaml"]
    with contextlib.ExitStack() as stack:
        serve = lambda name, args, extra=None: stack.enter_context(  # noqa: E731
            _serving(tmp_path / f"{name}.log", args, env | (extra or {}))
        )
        serve("code", [bin_dir / "dagster", "code-server", "start", "-m", "pipeline.definitions",
                       "-h", "127.0.0.1", "-p", str(code_port)], data)  # fmt: skip
        serve("web", [bin_dir / "dagster-webserver", *workspace, "-h", "127.0.0.1",
                      "-p", str(web_port)])  # fmt: skip
        serve("daemon", [bin_dir / "dagster-daemon", "run", *workspace])
        graphql = f"http://127.0.0.1:{web_port}/graphql"
        _wait(lambda: _location_loaded(graphql), 120, "the webserver to load the code location")
        selector = {"repositoryLocationName": LOCATION[0], "repositoryName": LOCATION[1],
                    "jobName": "annual_report_job"}  # fmt: skip
        tags = [{"key": "dagster/partition", "value": "2024"}]
        params = {"selector": selector, "executionMetadata": {"tags": tags}, "runConfigData": {}}
        launched = _post(graphql, LAUNCH, {"p": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        status = "SELECT status FROM runs WHERE run_id = %s"
        _wait(lambda: _query(pg, status, run_id) in ([("FAILURE",)], [("SUCCESS",)]), 120,
              f"run {run_id} to end")  # fmt: skip
    assert _query(pg, status, run_id) == [("FAILURE",)]
    events = {e for (e,) in _query(pg, "SELECT dagster_event_type FROM event_logs "
                                       "WHERE run_id = %s", run_id)}  # fmt: skip
    assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "STEP_FAILURE"} <= events, events
    ((failure,),) = _query(pg, "SELECT event FROM event_logs WHERE run_id = %s "
                               "AND dagster_event_type = 'STEP_FAILURE'", run_id)  # fmt: skip
    assert "MissingRawInputsError" in failure and str(raw) in failure
    daemons = {d for (d,) in _query(pg, "SELECT daemon_type FROM daemon_heartbeats")}
    assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"} <= daemons, daemons


@contextlib.contextmanager
def _serving(log: Path, args: list, env: dict) -> Iterator[subprocess.Popen]:
    """A server process (its own session, output in `log`), stopped by PID: SIGINT, then SIGKILL
    to its process group after 20 s."""
    with log.open("wb") as out:
        proc = subprocess.Popen([str(a) for a in args], env=env, cwd=REPO_ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _post(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def _location_loaded(graphql: str) -> bool:
    try:
        entries = _post(graphql, LOADED)["workspaceOrError"]["locationEntries"]
    except OSError:
        return False  # not serving yet
    return [e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"]
            for e in entries] == ["RepositoryLocation"]  # fmt: skip


def _wait(ready, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        time.sleep(1)
