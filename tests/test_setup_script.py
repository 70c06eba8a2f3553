"""scripts/setup.sh is quiet: its tools' output goes to a log file; a failing step shows the log's
tail and ends with one line naming the step and the log."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.config import REPO_ROOT


def _apt_packages_present() -> bool:
    text = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    names = text.split("APT_PACKAGES=(", 1)[1].split(")", 1)[0].split()
    return all(subprocess.run(["dpkg", "-s", n], capture_output=True).returncode == 0
               for n in names)  # fmt: skip


@pytest.mark.skipif(not shutil.which("dpkg") or not _apt_packages_present(),
                    reason="would install system packages")  # fmt: skip
def test_a_failing_step_shows_the_log_tail_and_one_closing_line(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/setup.sh", "requirements.lock", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\necho 'resolver exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "setup.sh")], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake),
                                          "BBTR_DATA_DIR": str(tmp_path / "data")})  # fmt: skip
    assert done.returncode == 1 and done.stdout == "", done
    lines = done.stderr.splitlines()
    assert "resolver exploded" in lines, lines
    (log,) = (tmp_path / "data" / "logs").glob("setup-*.log")
    assert lines[-1] == f"setup: FAILED: {fake} -m venv .venv (full log: {log})"
    assert "resolver exploded" in log.read_text()


def _fake_tools(folder: Path, bodies: dict[str, str]) -> None:
    """Scripts named after system tools that log their arguments to `folder`/calls."""
    folder.mkdir()
    for name, body in bodies.items():
        (folder / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {folder}/calls\n{body}\n')
        (folder / name).chmod(0o755)


def test_a_fresh_machine_gets_postgresql_without_a_cluster_and_needs_weed(tmp_path: Path) -> None:
    """Nothing installed: apt installs postgresql-common first and turns its default cluster off
    (the tests start clusters of their own), then the packages; a .venv without `weed` stops."""
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/setup.sh", "requirements.lock", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    tools, venv = tmp_path / "bin", tmp_path / ".venv" / "bin"
    python = f'[ "$2" = venv ] && mkdir -p {venv} && cp "$0" {venv}/python && cp "$0" {venv}/uv'
    _fake_tools(tools, {"dpkg": "exit 1", "apt-get": "exit 0", "pg_conftool": "exit 0",
                        "sudo": 'exec "$@"', "python": f"{python}\nexit 0"})  # fmt: skip
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "setup.sh")], capture_output=True,
                          text=True, env={"PATH": f"{tools}:/usr/bin:/bin", "PYTHON": "python",
                                          "BBTR_DATA_DIR": str(tmp_path / "data")})  # fmt: skip
    assert done.returncode == 1, done
    assert done.stderr.splitlines()[-1].startswith("setup: FAILED: .venv/bin/weed "), done.stderr
    calls = [line for line in (tools / "calls").read_text().splitlines()
             if line.split()[0] in ("apt-get", "pg_conftool")]  # fmt: skip
    assert calls[0] == "apt-get update -q", calls
    assert calls[1].endswith("install -y -q --no-install-recommends postgresql-common"), calls
    conf = "/etc/postgresql-common/createcluster.conf set create_main_cluster false"
    assert calls[2] == f"pg_conftool {conf}", calls
    assert calls[3].endswith(" postgresql") and "tshark" in calls[3], calls
