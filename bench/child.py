"""Child of bench/harness.py: `child.py MODULE_FILE FUNCTION KWARGS_JSON RESULT_JSON`.

Loads the case module by file path (so `pipeline` comes from the measured checkout on PYTHONPATH,
never from this one), calls FUNCTION(**kwargs) once and writes the CPU and wall seconds of that call
(imports excluded), the rows it returned and the process's peak RSS to RESULT_JSON.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import sys
import time


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mb() -> float:
    """VmHWM: this process's peak resident set since exec (ru_maxrss of a child also counts the
    parent's memory at fork, so it is not used)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str]) -> None:
    module_file, function, kwargs_json, result_path = argv
    spec = importlib.util.spec_from_file_location("bench_case", module_file)
    assert spec is not None and spec.loader is not None, module_file
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, function)
    kwargs = json.loads(kwargs_json)
    warm = getattr(module, "warm_up", None)
    if warm is not None:  # imports of the measured code, outside the timing
        warm()
    c0, t0 = cpu_seconds(), time.perf_counter()
    rows = fn(**kwargs)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    with open(result_path, "w") as fh:
        json.dump({"wall_s": wall, "cpu_s": cpu, "rows": rows, "peak_rss_mb": peak_rss_mb()}, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
