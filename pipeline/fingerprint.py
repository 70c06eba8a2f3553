"""Content fingerprints for incremental rebuilds: file digests, a module's import closure, params.

Shared by the simulator's reuse key (`pipeline.simulate.cache`) and the assets' code and data
versions (`pipeline.defs.versions`); it imports nothing from the stages.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(value: Any) -> str:
    """sha256 of a JSON-able value in canonical form (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def files_digest(files: Iterable[Path], root: Path) -> str:
    """sha256 over (path relative to root, content sha256) of each file, in path order."""
    pairs = sorted((Path(f).relative_to(root).as_posix(), file_sha256(f)) for f in files)
    return digest(pairs)


def sizes(files: Iterable[Path], root: Path) -> dict[str, int]:
    """{path relative to root: size in bytes} of each file (the cheap intactness check)."""
    return {Path(f).relative_to(root).as_posix(): Path(f).stat().st_size for f in sorted(files)}


def _module_path(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_statements(path: Path, package: str) -> list[tuple[str, list[str]]]:
    """Every import of a file, at any depth (function-level imports too): (the module or package
    it names, [the dotted names it imports]); relative imports resolved against `package`."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [a.name]) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append((base, [f"{base}.{a.name}" for a in node.names]))
    return found


def _imports(path: Path, module: str) -> set[str]:
    """Pipeline modules a file imports (`from pkg import name`: pkg, and pkg.name if a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = {n for base, full in import_statements(path, package) for n in [base, *full]}
    return {n for n in names if n.startswith("pipeline") and _module_path(n)}


def module_files(modules: Iterable[str]) -> list[Path]:
    """Source files of `modules` and of every pipeline module they import, transitively."""
    todo, seen = list(modules), set()
    while todo:
        module = todo.pop()
        if module in seen or (path := _module_path(module)) is None:
            continue
        seen.add(module)
        todo += sorted(_imports(path, module) - seen)
    return sorted(p for m in seen if (p := _module_path(m)) is not None)


def source_digest(modules: Iterable[str], extra_files: Iterable[Path] = ()) -> str:
    """Digest of the import closure of `modules` plus data files (SQL, templates, YAML)."""
    files = set(module_files(modules)) | {Path(f).resolve() for f in extra_files}
    return files_digest(sorted(files), REPO_ROOT)


def params_subset(params: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The values of dotted `keys` (e.g. "report.utc_offset_hours"); None for an absent key."""
    out: dict[str, Any] = {}
    for key in keys:
        value: Any = params
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
    return out
