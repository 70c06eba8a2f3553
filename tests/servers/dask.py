"""A real Dask cluster on 127.0.0.1 for tests and the bench: a scheduler and N workers, each its own
process (`dask scheduler`, `dask worker --no-nanny`), started and stopped by PID.

Workers run without a nanny, so a worker killed with SIGKILL stays dead and the scheduler must
reschedule its tasks on the survivors (with a nanny the nanny would restart it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")
START_TIMEOUT_S = 60


@dataclass
class DaskCluster:
    """A running scheduler (`address`) and its workers (`worker_pids[i]`, named `w{i}`)."""

    address: str
    scheduler_pid: int
    worker_pids: list[int]
    logs: Path
    killed: list[int] = field(default_factory=list)

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker i (no clean goodbye to the scheduler: its connection just drops)."""
        os.kill(self.worker_pids[i], signal.SIGKILL)
        self.killed.append(i)

    def worker_address(self, i: int) -> str:
        """The address of worker i as the scheduler knows it (by its name `w{i}`)."""
        return _worker_addresses(self.address)[f"w{i}"]

    def worker_names(self) -> list[str]:
        """The names of the workers the scheduler knows now."""
        return sorted(_worker_addresses(self.address))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def start_dask(
    workdir: Path, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[DaskCluster]:
    """Start a scheduler and `workers` single-threaded workers (cwd: the repo root, which is on
    their PYTHONPATH, and `env` added to theirs); yield once the scheduler sees them all; stop
    every process (and its process group) at exit. Logs in `workdir`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    address = f"tcp://127.0.0.1:{free_port()}"
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    base = {**os.environ, "PYTHONPATH": python_path}
    procs: list[subprocess.Popen] = []
    try:
        port = address.rsplit(":", 1)[1]
        procs.append(
            _spawn(
                [
                    str(DASK),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    port,
                    "--dashboard-address",
                    ":0",
                    "--no-show",
                ],
                base,
                workdir / "scheduler.log",
            )  # fmt: skip
        )
        for i in range(workers):
            procs.append(
                _spawn(
                    [
                        str(DASK),
                        "worker",
                        address,
                        "--name",
                        f"w{i}",
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--local-directory",
                        str(workdir / f"w{i}"),
                    ],
                    {**base, **(env or {})},
                    workdir / f"worker-{i}.log",
                )  # fmt: skip
            )
        _wait_for_workers(address, workers, procs, workdir)
        yield DaskCluster(address, procs[0].pid, [p.pid for p in procs[1:]], workdir)
    finally:
        for p in reversed(procs):
            _stop(p)


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _worker_addresses(address: str) -> dict[str, str]:
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    return {info["name"]: addr for addr, info in workers.items()}


def _wait_for_workers(address: str, n: int, procs: list[subprocess.Popen], workdir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"dask process {dead[0].args[1]} exited; logs in {workdir}")
        with suppress(OSError, TimeoutError):
            if len(_worker_addresses(address)) >= n:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{n} Dask workers not up at {address} in {START_TIMEOUT_S} s ({workdir})")


def _stop(p: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left after 10 s."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        try:
            p.wait(wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)  # anything the leader left behind in its group
