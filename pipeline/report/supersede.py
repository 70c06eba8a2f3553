"""A report replaced by one built otherwise is kept, never silently overwritten.

`replace_report` swaps a complete new report folder in (`atomic.replace_dir`). When the old one
differs from it — its provenance.json is not byte-identical — the old folder is first kept as
`reports/superseded/<year>-<12 hex of its provenance sha256>/`, hard links to its files plus a
REASON file that says what changed (raw inputs, parameters, code, environment, or only the
outputs). Kept before the swap, under a temporary name renamed in whole: a run killed at any
point leaves the old report in place or kept. A rebuild giving the same bytes keeps nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline.atomic import replace_dir, staging_dir, write_text_atomic

PROVENANCE_FILE = "provenance.json"
SUPERSEDED_DIR = "superseded"
REASON_FILE = "REASON"
# provenance keys compared, with what a difference means (in this order in REASON)
ASPECTS = (
    ("inputs_sha256", "raw inputs"),
    ("params_sha256", "parameters (params.yaml)"),
    ("code_version", "code"),
    ("simulator", "simulator settings"),
    ("source_date_epoch", "SOURCE_DATE_EPOCH"),
    ("lockfile_sha256", "locked dependencies"),
    ("python", "Python version"),
    ("libraries", "library versions"),
)


def _files_changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Raw files added, removed or changed between two `input_files_detail` maps."""
    lines = [f"  added {n}" for n in sorted(new.keys() - old.keys())]
    lines += [f"  removed {n}" for n in sorted(old.keys() - new.keys())]
    lines += [
        f"  changed {n} ({old[n].get('bytes')} -> {new[n].get('bytes')} bytes)"
        for n in sorted(old.keys() & new.keys())
        if old[n].get("sha256") != new[n].get("sha256")
    ]
    return lines


def _params_changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new), key=str)
    return [f"  key {k}" for k in keys if old.get(k) != new.get(k)]


def change_reason(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between the provenance of two builds of a year's report, as REASON text."""
    lines = [f"Report year {new.get('year')} was rebuilt; this is the report it replaced.", ""]
    for key, what in ASPECTS:
        if old.get(key) == new.get(key):
            continue
        lines.append(f"{what} changed: {key} {old.get(key)} -> {new.get(key)}")
        if key == "inputs_sha256":
            lines += _files_changed(
                old.get("input_files_detail", {}), new.get("input_files_detail", {})
            )
        if key == "params_sha256":
            lines += _params_changed(old.get("params", {}), new.get("params", {}))
    outputs = _files_changed(
        {k: {"sha256": v} for k, v in old.get("outputs_sha256", {}).items()},
        {k: {"sha256": v} for k, v in new.get("outputs_sha256", {}).items()},
    )
    if len(lines) == 2:
        lines.append("inputs, parameters, code and environment are the same; the outputs differ")
    lines.append(f"outputs: {len(outputs)} files differ")
    lines += [line.replace(" (None -> None bytes)", "") for line in outputs]
    return "\n".join(lines) + "\n"


def _link_copy(src: Path, dst: Path) -> None:
    """`src` as a new folder `dst` of hard links (a copy where links are refused)."""
    try:
        shutil.copytree(src, dst, copy_function=os.link)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


def keep_superseded(old_dir: Path, new_provenance: dict[str, Any], reports: Path) -> Path:
    """Keep `old_dir` as reports/superseded/<year>-<hash>/ with REASON (once per old report)."""
    raw = (old_dir / PROVENANCE_FILE).read_bytes()
    year = new_provenance.get("year", old_dir.name)
    kept = reports / SUPERSEDED_DIR / f"{year}-{hashlib.sha256(raw).hexdigest()[:12]}"
    if kept.exists():
        return kept
    staging = staging_dir(kept)
    staging.rmdir()
    _link_copy(old_dir, staging)
    reason = change_reason(json.loads(raw), new_provenance)
    write_text_atomic(staging / REASON_FILE, reason)
    os.rename(staging, kept)
    return kept


def replace_report(staging: Path, out_dir: Path, reports: Path) -> Path | None:
    """Swap the complete report `staging` in as `out_dir`; returns where the old one was kept
    (None: there was none, or it had the same provenance bytes)."""
    staging, out_dir = Path(staging), Path(out_dir)
    old, new = out_dir / PROVENANCE_FILE, staging / PROVENANCE_FILE
    kept = None
    if old.is_file() and old.read_bytes() != new.read_bytes():
        kept = keep_superseded(out_dir, json.loads(new.read_text()), Path(reports))
    replace_dir(staging, out_dir)
    return kept
