"""Real servers for tests (S3 store, Dask cluster, PostgreSQL), started by the test on 127.0.0.1
on free ports and stopped by PID. No mocks. Helpers shared by the server modules."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def venv_bin(name: str) -> Path:
    """The executable `name` beside sys.executable; skips the test if it is absent."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `bash scripts/setup.sh`")
    return path


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (held together while chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def wait_until(ready: Callable[[], bool], timeout: float, what: str, proc=None) -> None:
    """Poll `ready()` until true; fail after `timeout` s or when `proc` (a Popen) has exited."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.05)


def die_with_parent() -> None:
    """A `preexec_fn`: the child gets SIGTERM when the test process dies (Linux; else a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGTERM the process (and its process group), then SIGKILL after `timeout` s."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # started with start_new_session: pgid == pid
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
