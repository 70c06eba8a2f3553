"""The embedded default against the cluster: one small year built with local folders, SQLite and
the process pool, then through real servers on loopback — a Dask scheduler and two workers (separate
processes), a SeaweedFS S3 store holding raw, warehouse and history, the Dagster instance on
PostgreSQL — and the report's tables, figures and PDF compared byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.storage.store import Store
from tests.servers.dask import start_dask
from tests.servers.postgres import start_postgres
from tests.servers.s3 import start_s3
from tests.support.builds import assert_same_report, build_year

pytestmark = pytest.mark.slow  # a small year through three servers (about a minute)


def _task_prefixes(address: str) -> set[str]:
    """The task kinds the scheduler has run (keys are named after their functions)."""
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        return set(
            client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
        )


def test_cluster_build_equals_local_build(
    tmp_path: Path, local_report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = local_report
    with (
        start_s3(tmp_path / "s3") as s3,
        start_postgres(tmp_path / "pg") as pg,
    ):
        s3.make_bucket("bbtr")
        store_env = s3.env("bbtr", "isp")
        with start_dask(tmp_path / "dask", workers=2, env=store_env) as dask:
            cluster = build_year(
                tmp_path / "cluster",
                store_env
                | {
                    "BBTR_DASK_SCHEDULER": dask.address,
                    "BBTR_DAGSTER_PG_URL": pg.dagster_url,
                },  # fmt: skip
            )
            ran = _task_prefixes(dask.address)
        assert_same_report(local, cluster)
        assert {"normalise_task", "attribute_task"} <= ran, ran  # keys drop the leading _
        # raw, warehouse and history are in the object store
        for k, v in store_env.items():
            monkeypatch.setenv(k, v)
        store = Store.from_url(store_env["BBTR_STORE_URL"])
        keys = store.list()
        for prefix in ("raw/ipfix/", "warehouse/attributed/", "history/"):
            assert any(k.startswith(prefix) for k in keys), f"nothing under {prefix}"
        # quarantine partitions are written by the workers' ingest tasks and read by no host step
        flows_quarantine = [k for k in keys if k.startswith("warehouse/quarantine/date=")]
        assert flows_quarantine
        host = tmp_path / "cluster" / "data" / "warehouse"
        assert not list(host.glob("quarantine/date=*")), "the host held a worker's output"
        # ... and the Dagster runs are on PostgreSQL
        import psycopg2

        with psycopg2.connect(pg.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")
            assert cur.fetchone()[0] >= 1
