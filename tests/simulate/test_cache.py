"""The simulator's reuse key: it changes with what the output depends on, and only with that."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import fingerprint
from pipeline.config import PARAMS_FILE, REPO_ROOT, load_params
from pipeline.fingerprint import digest
from pipeline.simulate import cache

SMALL = {"broadband_subscriptions": 1500, "mobile_numbers": 1200}


def _key(**changes) -> str:
    args = {"year": 2023, "scale": SMALL, "seed": 7, "flow_format": "ipfix", "faults": True,
            "code": "c0de"} | changes  # fmt: skip
    return digest(cache.simulator_key(**args))


def test_key_is_stable_and_follows_each_setting() -> None:
    base = _key()
    assert _key() == base
    for change in ({"seed": 8}, {"year": 2024}, {"flow_format": "nfcapd"}, {"faults": False},
                   {"scale": {"broadband_subscriptions": 10_000, "mobile_numbers": 8_000}},
                   {"code": "c0de2"}):  # fmt: skip
        assert _key(**change) != base, change


@pytest.fixture
def params_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write an edited copy of params.yaml and make load_params read it."""

    def write(edit) -> None:
        params = yaml.safe_load(PARAMS_FILE.read_text())
        edit(params)
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        monkeypatch.setenv("BBTR_PARAMS", str(path))
        load_params.cache_clear()

    yield write
    load_params.cache_clear()


def test_key_follows_the_params_the_simulator_reads(params_file) -> None:
    base = _key()
    params_file(lambda p: p["daily_usage"].update(scatter_sample_size=1234))
    assert _key() == base, "a parameter the simulator never reads changed the key"
    params_file(lambda p: p["report"].update(title="Another title"))
    assert _key() == base
    params_file(lambda p: p["report"].update(time_zone="Asia/Shanghai"))
    assert _key() != base
    params_file(lambda p: p["weeks"][2023].update(analysis="2023-06-05"))
    assert _key() != base


@pytest.fixture
def repo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the package's sources that the code digest reads instead of the real tree."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "pipeline", root / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__", "*.sql"))  # fmt: skip
    monkeypatch.setattr(fingerprint, "REPO_ROOT", root)
    monkeypatch.setattr(cache, "CALIBRATION_FILE", root / "pipeline/simulate/calibration.yaml")
    return root


def test_code_version_follows_simulator_code_and_calibration(repo_copy: Path) -> None:
    base = cache.code_sha256()
    assert cache.code_sha256() == base
    for unused in ("pipeline/simulate/fit_calibration.py", "pipeline/ingest/flows.py",
                   "pipeline/wire/ipfix/decoder.py"):  # fmt: skip
        with (repo_copy / unused).open("a") as f:
            f.write("\n# not imported by the simulator\n")
        assert cache.code_sha256() == base, unused
    for used in ("pipeline/simulate/model.py", "pipeline/wire/ipfix/writer.py",
                 "pipeline/config.py", "pipeline/simulate/calibration.yaml"):  # fmt: skip
        with (repo_copy / used).open("a") as f:
            f.write("\n# changed\n")
        changed = cache.code_sha256()
        assert changed != base, used
        base = changed


def test_import_closure_of_the_simulator() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in fingerprint.module_files(
        ["pipeline.simulate.run"])}  # fmt: skip
    assert {"pipeline/simulate/run.py", "pipeline/simulate/week.py", "pipeline/simulate/model.py",
            "pipeline/wire/ipfix/writer.py", "pipeline/config.py"} <= names  # fmt: skip
    assert "pipeline/simulate/fit_calibration.py" not in names
    assert not any(n.startswith(("pipeline/ingest/", "pipeline/defs/")) for n in names)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '{"key_sha256": "KEY"}',
        '{"key_sha256": "KEY", "files": {"x/y": 1}}',
        '{"key_sha256": "KEY", "files": [], "summary": 3}',
    ],  # fmt: skip
)
def test_a_manifest_of_another_shape_is_no_match(tmp_path: Path, text: str) -> None:
    key = cache.simulator_key(2023, SMALL, 7, "ipfix", True, code="c0de")
    path = cache.manifest_path(tmp_path / "raw", 2023)
    path.parent.mkdir(parents=True)
    path.write_text(text.replace("KEY", digest(key)))
    assert cache.reusable(tmp_path / "raw", tmp_path / "truth", key) is None
