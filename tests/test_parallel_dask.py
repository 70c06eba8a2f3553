"""run_parallel on a real Dask cluster (scheduler and 2 workers, separate processes on 127.0.0.1):
same results in the same order as the local pool, failures named, retries, a worker killed
mid-ingest, and a missing scheduler reported at once."""

from __future__ import annotations

import filecmp
import threading
import time
from pathlib import Path

import pytest

import pipeline.parallel as parallel
from pipeline.config import Paths, Settings
from pipeline.parallel import SchedulerUnreachable, run_parallel
from tests.servers.dask import DaskCluster, start_dask

# The pipeline's stages (and Dagster) are imported inside the tests that use them: the local pool's
# spawned processes import this module to find the task functions, and stay quick to start.
YEAR = 2019  # one analysis week, 8 flow days of 8 exporters at scale "small"


def _square_and_pid(x: int) -> tuple[int, int]:
    import os

    return x * x, os.getpid()


def _fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"no square for {x}")
    return x * x


def _fails_once(marker: str) -> str:
    """Raises the first time (leaving `marker` behind), succeeds the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once\n")
        raise OSError(f"transient failure, marker {path.name}")
    return path.read_text()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> DaskCluster:
    with start_dask(tmp_path_factory.mktemp("dask"), workers=2) as c:
        yield c


def test_results_in_task_order_like_the_local_pool(cluster: DaskCluster) -> None:
    seen: list[int] = []
    on_dask = run_parallel(_square_and_pid, range(12), 2, lambda r: seen.append(r[0]),
                           scheduler=cluster.address)  # fmt: skip
    local = run_parallel(_square_and_pid, range(12), 2)
    assert [r[0] for r in on_dask] == [r[0] for r in local] == [x * x for x in range(12)]
    assert seen == [x * x for x in range(12)]  # progress in task order
    assert {pid for _, pid in on_dask} <= set(cluster.worker_pids)  # ran on the workers
    assert run_parallel(_square_and_pid, [], 2, scheduler=cluster.address) == []


def test_a_failing_task_is_named(cluster: DaskCluster) -> None:
    with pytest.raises(ValueError, match="no square for 3") as err:
        run_parallel(_fails_on_three, range(6), 2, scheduler=cluster.address)
    assert err.value.__notes__ == ["in task 4 of 6: _fails_on_three(3)"]
    with pytest.raises(ValueError, match="no square for 3") as local:
        run_parallel(_fails_on_three, range(6), 2)
    assert local.value.__notes__ == err.value.__notes__


def test_a_flaky_task_is_retried(cluster: DaskCluster, tmp_path: Path) -> None:
    markers = [str(tmp_path / f"marker-{i}") for i in range(3)]
    out = run_parallel(_fails_once, markers, 2, scheduler=cluster.address)
    assert out == ["failed once\n"] * 3  # each failed once, then ran again and succeeded


def test_a_missing_scheduler_fails_fast_naming_the_setting(monkeypatch) -> None:
    from tests.servers.dask import free_port

    monkeypatch.setattr(parallel, "DASK_CONNECT_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable) as err:
        run_parallel(_square_and_pid, range(3), 2, scheduler=address)
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"BBTR_DASK_SCHEDULER={address}: no Dask scheduler answered")


def test_the_setting_is_validated_and_carried_by_the_resource() -> None:
    from pipeline.defs.resources import resource_from_settings

    s = Settings.from_env({"BBTR_DASK_SCHEDULER": "tcp://10.0.0.5:8786"})
    assert s.dask_scheduler == "tcp://10.0.0.5:8786"
    assert resource_from_settings(s).dask_scheduler == "tcp://10.0.0.5:8786"
    assert resource_from_settings(s).settings() == s
    assert Settings.from_env(s.as_env()) == s
    assert Settings.from_env({}).dask_scheduler == ""
    for good in ("tls://sched.example.net:8786", "tcp://[::1]:8786", "tcp://scheduler"):
        assert Settings(dask_scheduler=good).dask_scheduler == good
    for bad in ("127.0.0.1:8786", "http://h:8786", "tcp://", "tcp://h:port"):
        with pytest.raises(ValueError, match=r"BBTR_DASK_SCHEDULER\): expected a Dask sched"):
            Settings.from_env({"BBTR_DASK_SCHEDULER": bad})


# --- a worker killed in the middle of a real ingest -------------------------------------------


def _paths(root: Path, raw: Path) -> Paths:
    return Paths(root, raw, root / "truth", root / "warehouse", root / "history", root / "reports")


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _kill_when_busy(cluster: DaskCluster, paths: Paths, victim: int, out: dict) -> None:
    """Once a day task has finished (reports for every exporter of a day) and worker `victim` is
    running or holding a task: SIGKILL it."""
    from distributed import Client

    from pipeline.ingest.flows import load_exporters

    address = cluster.worker_address(victim)
    exporters = len(load_exporters(paths.raw))
    deadline = time.monotonic() + 60
    with Client(cluster.address, timeout=10, set_as_default=False) as client:
        while time.monotonic() < deadline:
            days = paths.warehouse.glob("ingest_report/date=*")
            done = [d for d in days if len(list(d.glob("exporter=*.json"))) == exporters]
            if done:
                busy = client.processing(workers=[address]).get(address, [])
                if busy:
                    cluster.kill_worker(victim)
                    out.update(days_done=len(done), busy=list(busy))
                    return
            time.sleep(0.01)


def _same(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "seconds"}


@pytest.mark.slow  # 20-40 s on the shared 2-core machine (28 CPU-s: a year simulated, 4 runs)
def test_a_worker_killed_mid_ingest_changes_nothing(tmp_path: Path) -> None:
    """Ingest with w0 SIGKILLed mid-run, then attribution on the survivor: the warehouse is
    byte-identical to the local pool's."""
    from pipeline.atomic import remove_debris
    from pipeline.attribute.year import attribute_flows
    from pipeline.ingest.catalogue import flow_days_for_year
    from pipeline.ingest.year import ingest_flows
    from pipeline.simulate.run import simulate_year

    raw = tmp_path / "raw"
    simulate_year(YEAR, raw, tmp_path / "truth", "small")
    local, remote = _paths(tmp_path / "local", raw), _paths(tmp_path / "dask", raw)
    expected = ingest_flows(local, YEAR, workers=2)
    with start_dask(tmp_path / "cluster", workers=2) as cluster:
        kill: dict = {}
        killer = threading.Thread(
            target=_kill_when_busy, args=(cluster, remote, 0, kill), daemon=True
        )
        killer.start()
        got = ingest_flows(remote, YEAR, workers=2, scheduler=cluster.address)
        killer.join(5)
        assert kill.get("busy"), "worker w0 was never seen busy after a day had finished"
        assert kill["days_done"] < len(flow_days_for_year(YEAR))
        assert cluster.killed == [0] and cluster.worker_names() == ["w1"]  # w0 stayed dead
        attributed = attribute_flows(remote, YEAR, "salt", workers=2, scheduler=cluster.address)
    assert _same(attributed) == _same(attribute_flows(local, YEAR, "salt", workers=2))
    assert _same(got) == _same(expected)
    remove_debris([remote.warehouse])  # a killed task's temp file, as the next start does
    files = _tree(local.warehouse)
    assert files == _tree(remote.warehouse)
    assert any(f.startswith("flows/") for f in files) and any(
        f.startswith("attributed/") for f in files
    )
    match, mismatch, errors = filecmp.cmpfiles(
        local.warehouse, remote.warehouse, files, shallow=False
    )
    assert (mismatch, errors) == ([], []) and len(match) == len(files)
