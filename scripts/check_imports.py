"""Lint: no import cycles among pipeline modules, and stages import only the stages below them.

Every `import`/`from … import` of a `pipeline` module counts, at any depth (a function-level
import is still a dependency). Exit 1 with one line per problem; run by `scripts/test.sh`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.fingerprint import import_statements

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipeline"

# stage → the stages it may import ("base" = BASE_MODULES below: shared by all).
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "wire": {"base"},
    "storage": {"base"},  # local folders or an S3-compatible store (pipeline/storage)
    "ingest": {"base", "wire", "storage"},
    "collect": {"base", "wire"},
    "simulate": {"base", "wire", "storage", "aggregate"},  # calibration reads the history store
    "attribute": {"base", "storage", "ingest"},
    "aggregate": {"base", "storage", "ingest"},
    "charts": {"base"},
    "report": {"base", "storage", "ingest", "aggregate", "charts"},
    "defs": {"base", "wire", "storage", "ingest", "collect", "simulate", "attribute", "aggregate",
             "charts", "report"},
    "buildlog": {"base"},
    "build": {"base", "buildlog", "storage", "defs", "definitions"},
    "definitions": {"base", "defs"},
}  # fmt: skip
BASE_MODULES = {"atomic", "config", "config_schema", "fingerprint", "parallel", "progress",
                "__init__"}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    top = module.split(".")[1] if "." in module else "__init__"
    return "base" if top in BASE_MODULES else top


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Pipeline modules named by the imports of one file (resolving `from pkg import module`)."""
    found: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for base, names in import_statements(path, package):
        for name in names:
            name = name if name in modules else base
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("pipeline"):
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph has ~100 nodes, recursion depth is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph = {module_name(f): imported_modules(f, modules) - {"pipeline"} for f in files}
    problems = [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph)]
    for mod, deps in sorted(graph.items()):
        stage = stage_of(mod)
        for dep in sorted(deps):
            other = stage_of(dep)
            if other != stage and other not in ALLOWED.get(stage, set()):
                problems.append(f"{mod} imports {dep}: stage '{stage}' may not import '{other}'")
    for line in problems:
        print(line)
    print(f"check_imports: {len(graph)} modules, {sum(map(len, graph.values()))} imports, "
          f"{len(problems)} problems")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
