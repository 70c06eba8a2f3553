"""The Dagster instance on PostgreSQL (BBTR_DAGSTER_PG_URL): dagster.yaml names the variable, never
the URL; a real server started here holds the runs, their events and the schedule state; unsetting
the variable goes back to SQLite."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
import yaml
from dagster import DagsterInstance, asset, materialize

from pipeline.buildlog import PG_STORAGE, PG_URL_ENV, ensure_instance_settings
from pipeline.config import REPO_ROOT
from tests.servers.postgres import PgServer, start_postgres

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
