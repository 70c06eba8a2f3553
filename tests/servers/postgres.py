"""A real PostgreSQL for tests: Debian's server binaries (installed by scripts/setup.sh), a fresh
cluster of its own, on 127.0.0.1 at a free port, stopped by PID when the test is done.

PostgreSQL refuses to run as root: under root the server runs as the `postgres` system user the
Debian package creates, with its data folder in a fresh temporary folder that user can reach (a
pytest tmp_path sits under a root-only folder); otherwise as the current user, in `workdir`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")  # Debian's layout: <version>/bin/{initdb,postgres}
SERVER_USER = "postgres"  # the system user Debian's package creates
SUPERUSER = "bbtr"  # the cluster's superuser (trust auth on loopback: no password)
DATABASE = "dagster"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# A throw-away cluster: nothing is worth a disk flush.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@dataclass(frozen=True)
class PgServer:
    """A running server: `url` (postgresql://bbtr@127.0.0.1:PORT/dagster) and its `pid`."""

    url: str
    pid: int
    port: int
    log: Path

    @property
    def dagster_url(self) -> str:
        """`url` with the driver named, as BBTR_DAGSTER_PG_URL takes it."""
        return self.url.replace("postgresql://", "postgresql+psycopg2://", 1)


def pg_bin() -> Path:
    """The newest installed server's bin folder, or a skip naming scripts/setup.sh."""
    found = sorted(
        (p.parent for p in PG_ROOT.glob("*/bin/initdb") if (p.parent / "postgres").is_file()),
        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
    )
    if not found:
        pytest.skip(f"PostgreSQL server binaries not found ({PG_ROOT}/<version>/bin/initdb): "
                    "run `bash scripts/setup.sh` (installs Debian's postgresql)")  # fmt: skip
    return found[-1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> tuple[dict, Path | None]:
    """Popen keyword arguments that drop root to SERVER_USER (and a fresh folder it owns), or
    nothing when not root."""
    if os.geteuid() != 0:
        return {}, None
    try:
        user = pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.skip(f"running as root and no `{SERVER_USER}` user to run PostgreSQL as: run "
                    "`bash scripts/setup.sh` (Debian's postgresql package creates it)")  # fmt: skip
    base = Path(tempfile.mkdtemp(prefix="bbtr-pg-"))
    os.chown(base, user.pw_uid, user.pw_gid)
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    return as_user, base


@contextlib.contextmanager
def start_postgres(workdir: Path) -> Iterator[PgServer]:
    """A fresh cluster (trust auth, database `dagster`) listening on 127.0.0.1 only (its unix
    socket in its data folder); stopped by PID (SIGINT: fast shutdown, then SIGKILL)."""
    import psycopg2

    bin_dir = pg_bin()
    workdir.mkdir(parents=True, exist_ok=True)
    as_user, base = _run_as()
    data = (base or workdir) / "data"
    log = workdir / "postgres.log"
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}
    proc = None
    try:
        with log.open("ab") as out:
            subprocess.run(
                [bin_dir / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "--no-sync",
                 "--no-instructions", "-E", "UTF8", "--locale=C"],
                stdout=out, stderr=subprocess.STDOUT, env=env, check=True, cwd=data.parent,
                **as_user,
            )  # fmt: skip
            port = free_port()
            settings = {"listen_addresses": "127.0.0.1", "port": str(port),
                        "unix_socket_directories": str(data), **FAST}  # fmt: skip
            args = [a for k, v in settings.items() for a in ("-c", f"{k}={v}")]
            proc = subprocess.Popen(
                [bin_dir / "postgres", "-D", data, *args], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, cwd=data.parent, start_new_session=True,
                **as_user,
            )  # fmt: skip
        admin = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
        _wait_ready(proc, admin, log)
        with contextlib.closing(psycopg2.connect(admin)) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{DATABASE}"')
        yield PgServer(f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}", proc.pid, port, log)
    finally:
        if proc is not None:
            _stop(proc)
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    """Return once `url` accepts a connection; raise with the server's log if it exits or is
    not up within START_TIMEOUT_S."""
    import psycopg2

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            psycopg2.connect(url, connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not up in {START_TIMEOUT_S:.0f} s: "
                                   f"{log.read_text()[-2000:]}") from None  # fmt: skip
            time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT (fast shutdown: ends the sessions, no wait for clients) to the postmaster's PID;
    SIGKILL if it is still there after STOP_TIMEOUT_S."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the postmaster and its backends
            proc.wait()
