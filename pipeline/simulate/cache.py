"""Reuse of a simulated year: a key of everything the output depends on, in a manifest beside it.

`raw/.simulator/year=<Y>.json` holds the key, the summary `simulate_year` returned, and the size
of every file written (raw and truth). A later run with the same key whose files are all present
with those sizes reuses them and writes nothing. Sizes, not contents, are checked: hashing the
~3 GB of a default world would cost more than the check saves, and the pipeline hashes every raw
file it reads anyway (provenance). A same-size edit of a raw file goes unnoticed: delete
`raw/.simulator/` or set BBTR_FORCE_REBUILD=1 to write everything again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pipeline.atomic import write_text_atomic
from pipeline.config import listed_years, load_params, weeks_for_year
from pipeline.fingerprint import digest, params_subset, sizes, source_digest

MANIFEST_DIR = ".simulator"
CALIBRATION_FILE = Path(__file__).with_name("calibration.yaml")
# Params the simulator reads: the weeks (all years: the counters run to the last listed year's
# June) and the local time zone (RADIUS and day folders; utc_offset_hours is its old alias).
PARAMS_KEYS = ("weeks", "report.time_zone", "report.utc_offset_hours")


def code_sha256() -> str:
    """The simulator's code version: the import closure of `pipeline.simulate.run` (simulator,
    wire writers and the modules they use) and calibration.yaml."""
    return source_digest(["pipeline.simulate.run"], [CALIBRATION_FILE])


def _nfdump_version(flow_format: str) -> str | None:
    """nfdump's version line when it writes the flow files (the nfdump text forms), else None."""
    if not flow_format.startswith("nfdump-") or shutil.which("nfdump") is None:
        return None
    out = subprocess.run(["nfdump", "-V"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip()


def simulator_key(
    year: int, scale: dict[str, Any], seed: int, flow_format: str, faults: bool,
    code: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Everything a simulated year's files depend on (`code` defaults to `code_sha256()`)."""
    params = load_params()
    return {
        "year": year,
        "seed": seed,
        "scale": scale,
        "flow_format": flow_format,
        "faults": faults,
        "weeks": [(w.start.isoformat(), w.role) for w in weeks_for_year(year, params)],
        "report_years": listed_years(params),
        "params": params_subset(params, PARAMS_KEYS),
        "nfdump": _nfdump_version(flow_format),
        "code_sha256": code or code_sha256(),
    }


def manifest_path(raw_dir: Path, year: int) -> Path:
    return Path(raw_dir) / MANIFEST_DIR / f"year={year}.json"


def _written_sizes(raw_dir: Path, truth_dir: Path, summary: dict, year: int) -> dict[str, int]:
    raw = sizes([Path(raw_dir) / name for name in summary["sha256"]], Path(raw_dir))
    truth_files = [p for p in (Path(truth_dir) / str(year)).glob("*") if p.is_file()]
    truth = sizes(truth_files, Path(truth_dir))
    return {f"raw/{k}": v for k, v in raw.items()} | {f"truth/{k}": v for k, v in truth.items()}


def write_manifest(raw_dir: Path, truth_dir: Path, key: dict, summary: dict) -> Path:
    """Record the key, the summary and the written files' sizes (after every file is written)."""
    files = _written_sizes(raw_dir, truth_dir, summary, key["year"])
    manifest = {"key": key, "key_sha256": digest(key), "summary": summary, "files": files}
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    return write_text_atomic(manifest_path(raw_dir, key["year"]), text)


def reusable(raw_dir: Path, truth_dir: Path, key: dict) -> dict | None:
    """The recorded summary when the manifest has this key and every file it lists is present
    with its recorded size; None otherwise (the year must be simulated)."""
    path = manifest_path(raw_dir, key["year"])
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    roots = {"raw": Path(raw_dir), "truth": Path(truth_dir)}
    try:  # a manifest of another shape (hand-edited, another version) is not a match
        if manifest.get("key_sha256") != digest(key):
            return None
        for name, size in manifest["files"].items():
            kind, _, rel = name.partition("/")
            target = roots[kind] / rel
            if not target.is_file() or target.stat().st_size != size:
                return None
        summary = manifest["summary"]
    except (AttributeError, KeyError, TypeError):
        return None
    return summary if isinstance(summary, dict) else None
