"""Ingest and attribution of one simulated year on the local process pool and on a real Dask
cluster of 1 and 2 workers (`python -m bench --only dask`), interleaved, medians of --repeats:
flows per second, CPU seconds of the host and cluster processes, and the bytes that crossed the
network per flow (the loopback interface's byte count over the run: machine-wide, so other
programs' loopback traffic counts too; the local pool's row is that floor), and the bytes Dask's
workers served by get_data (task results fetched by the client, and any worker-to-worker transfer:
our tasks exchange none, each reads and writes the stores).

`--store s3` puts raw inputs and warehouse on a SeaweedFS S3 server (tests/servers/s3.py), when
this checkout has it and the staging of tasks (pipeline/storage/stage.py).
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import REPO, Row, load_text

DEFAULT_YEAR = 2019  # one analysis week: 8 flow days
SALT = "bench-salt"
STAGES = ("ingest", "attribution")
SETUPS = ("local pool, 2 processes", "dask, 1 worker", "dask, 2 workers")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One stage of one setup, once."""

    setup: str
    stage: str
    wall_s: float
    cpu_s: float
    flows: int
    lo_bytes: int
    dask_sent_bytes: int | None


def loopback_bytes(text: str | None = None) -> int:
    """Bytes received on the loopback interface so far (/proc/net/dev `lo`; on loopback every
    byte sent is received once, so this is the traffic, not twice it)."""
    text = Path("/proc/net/dev").read_text() if text is None else text
    for line in text.splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            return int(counters.split()[0])
    raise ValueError("no loopback interface in /proc/net/dev")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def host_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the local pool's processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def prepare(data_dir: Path, year: int, scale: str) -> Path:
    """The simulated year's folder (raw/ and truth/; made once, then reused)."""
    from pipeline.simulate.run import simulate_year

    root = Path(data_dir) / f"dask-{year}-{scale}"
    simulate_year(year, root / "raw", root / "truth", scale)
    return root


def _transfer_bytes(address: str | None) -> int | None:
    """Bytes the Dask workers served so far by get_data (transfer_outgoing_bytes_total): the
    results the client gathers, and data sent to other workers."""
    if address is None:
        return None
    from pipeline.parallel import connect_dask

    client = connect_dask(address)
    try:
        per_worker = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    finally:
        client.close()
    return sum(per_worker.values())


def measure_stage(
    setup: str, stage: str, run: Callable[[], int], address: str | None, pids: list[int]
) -> Run:
    """run() (returns the flows it handled) with its wall, CPU (host + cluster) and bytes."""
    sent0 = _transfer_bytes(address)
    cpu0 = host_cpu_s() + sum(process_cpu_s(p) for p in pids)
    lo0, t0 = loopback_bytes(), time.perf_counter()
    flows = run()
    wall = time.perf_counter() - t0
    lo = loopback_bytes() - lo0
    cpu = host_cpu_s() + sum(process_cpu_s(p) for p in pids) - cpu0
    sent1 = _transfer_bytes(address)
    moved = None if sent0 is None or sent1 is None else sent1 - sent0
    return Run(setup, stage, wall, cpu, flows, lo, moved)


def run_setup(setup: str, paths: Any, year: int, address: str | None, pids: list[int]) -> list[Run]:
    """Ingest then attribution of `year` into an empty warehouse."""
    from pipeline.attribute.year import attribute_flows
    from pipeline.ingest.year import ingest_flows

    _clear_warehouse(paths)
    ingest = measure_stage(
        setup,
        "ingest",
        lambda: ingest_flows(paths, year, 2, scheduler=address)["records_decoded"],
        address,
        pids,
    )
    attribution = measure_stage(
        setup,
        "attribution",
        lambda: attribute_flows(paths, year, SALT, 2, scheduler=address)["flows_out"],
        address,
        pids,
    )
    return [ingest, attribution]


def s3_available() -> str | None:
    """Why `--store s3` cannot run in this checkout (None when it can)."""
    for module, what in (
        ("tests.servers.s3", "tests/servers/s3.py (the S3 test server)"),
        ("pipeline.storage.stage", "pipeline/storage/stage.py (the staging of tasks)"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"this checkout has no {what}"
    return None


def _paths(root: Path, i: int, s3_env: dict[str, str] | None) -> Any:
    """Setup i's Paths: local folders under `root`, or (with the S3 server's env) its warehouse
    and history under s3://bench/setup-i and the shared raw inputs, `root`/host-i the working
    copies."""
    from pipeline.config import Paths

    host = root / f"host-{i}"
    if s3_env is None:
        return Paths(host, root / "raw", root / "truth", host / "warehouse", host / "history",
                     host / "reports")  # fmt: skip
    bucket = s3_env["BBTR_STORE_URL"].split("/")[2]
    return Paths.from_env({
        **s3_env, "BBTR_DATA_DIR": str(host), "BBTR_STORE_URL": f"s3://{bucket}/setup-{i}",
        "BBTR_RAW_URL": s3_env["BBTR_STORE_URL"] + "/raw",
    })  # fmt: skip


def _clear_warehouse(paths: Any) -> None:
    """An empty warehouse: its local folder, and its store when it is remote."""
    shutil.rmtree(paths.warehouse, ignore_errors=True)
    if paths.warehouse_url:
        from pipeline.storage.store import Store

        store = Store.from_url(paths.warehouse_url)
        for key in store.list(""):
            store.delete(key)


@contextmanager
def _s3_server(root: Path) -> Iterator[dict[str, str]]:
    """A SeaweedFS S3 server holding the raw inputs under s3://bench/shared/raw; its endpoint and
    credentials set in this process's env while it runs. Yields its env (s3.env)."""
    from pipeline.storage.store import Store
    from tests.servers.s3 import start_s3  # checked by s3_available()

    shutil.rmtree(root / "s3", ignore_errors=True)
    with start_s3(root / "s3") as s3:
        s3.make_bucket("bench")
        env = s3.env("bench", "shared")
        access = {k: v for k, v in env.items() if k != "BBTR_STORE_URL"}  # endpoint, credentials
        saved = {k: os.environ.get(k) for k in access}
        os.environ.update(access)
        try:
            raw = Store.from_url(env["BBTR_STORE_URL"] + "/raw")
            for f in sorted(p for p in (root / "raw").rglob("*") if p.is_file()):
                raw.put_file(f, f.relative_to(root / "raw").as_posix())
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def run_bench(
    data_dir: Path, year: int, scale: str, repeats: int, store: str, echo: Callable[[str], None]
) -> list[Run]:
    """Every setup `repeats` times, interleaved (A B C A B C …), clusters kept up throughout."""
    from tests.servers.dask import start_dask

    root = prepare(data_dir, year, scale)
    runs: list[Run] = []
    with ExitStack() as stack:
        s3_env = stack.enter_context(_s3_server(root)) if store == "s3" else None
        plans = []
        for i, setup in enumerate(SETUPS):
            paths = _paths(root, i, s3_env)
            if setup.startswith("dask"):
                workers = int(setup.split(", ")[1].split()[0])
                access = {k: v for k, v in (s3_env or {}).items() if k != "BBTR_STORE_URL"}
                c = stack.enter_context(start_dask(root / f"cluster-{i}", workers, access))
                plans.append((setup, paths, c.address, [c.scheduler_pid, *c.worker_pids]))
            else:
                plans.append((setup, paths, None, []))
        for r in range(repeats):
            for setup, paths, address, pids in plans:
                for run in run_setup(setup, paths, year, address, pids):
                    runs.append(run)
                    echo(f"  {r + 1}/{repeats} {setup:<26}{run.stage:<13}{run.wall_s:7.2f} s wall"
                         f"{run.cpu_s:8.2f} s CPU {run.flows / run.wall_s:10,.0f} flows/s "
                         f"{run.lo_bytes / max(run.flows, 1):8.1f} lo B/flow")  # fmt: skip
    return runs


@dataclass
class Summary:
    """Medians of one setup and stage."""

    setup: str
    stage: str
    repeats: int
    wall_s: float
    cpu_s: float
    flows: int
    flows_per_s: float
    lo_bytes_per_flow: float
    lo_min_bytes_per_flow: float  # the least: other programs' loopback traffic only adds
    dask_sent_bytes: int | None


def summarise(runs: list[Run]) -> list[Summary]:
    out = []
    for stage in STAGES:
        for setup in SETUPS:
            mine = [r for r in runs if r.setup == setup and r.stage == stage]
            if not mine:
                continue
            wall = statistics.median(r.wall_s for r in mine)
            moved = [r.dask_sent_bytes for r in mine if r.dask_sent_bytes is not None]
            out.append(
                Summary(
                    setup,
                    stage,
                    len(mine),
                    wall,
                    statistics.median(r.cpu_s for r in mine),
                    mine[0].flows,
                    mine[0].flows / wall,
                    statistics.median(r.lo_bytes / max(r.flows, 1) for r in mine),
                    min(r.lo_bytes / max(r.flows, 1) for r in mine),
                    int(statistics.median(moved)) if moved else None,
                )
            )
    return out


def as_rows(summaries: list[Summary], load_before: str) -> list[Row]:
    """The summaries as bench rows (the local pool the baseline of each stage)."""
    rows = []
    for s in summaries:
        base = next(b for b in summaries if b.stage == s.stage)
        rows.append(
            Row(
                comparison=f"dask-{s.stage}",
                scale=s.flows,
                case=s.setup,
                role="baseline" if s is base else "contender",
                repeats=s.repeats,
                wall_s=s.wall_s,
                cpu_s=s.cpu_s,
                process_cpu_s=s.cpu_s,
                peak_rss_mb=None,
                cpu_ratio=s.cpu_s / base.cpu_s if base.cpu_s else None,
                wall_ratio=s.wall_s / base.wall_s if base.wall_s else None,
                rows=s.flows,
                load_before=load_before,
                load_after=load_text(),
            )
        )
    return rows


def markdown(summaries: list[Summary], store: str) -> str:
    lines = [
        f"## dask: flows per second and network bytes per flow (stores: {store})",
        "",
        "| stage | setup | flows | wall s | CPU s (host + cluster) | flows/s "
        "| loopback B/flow (median, least) | bytes Dask workers sent (results, transfers) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        moved = "" if s.dask_sent_bytes is None else str(s.dask_sent_bytes)
        lines.append(
            f"| {s.stage} | {s.setup} | {s.flows} | {s.wall_s:.2f} | {s.cpu_s:.2f} "
            f"| {s.flows_per_s:,.0f} | {s.lo_bytes_per_flow:.1f}, {s.lo_min_bytes_per_flow:.1f} "
            f"| {moved} |"
        )
    return "\n".join(lines)


def tsv(summaries: list[Summary]) -> str:
    head = "stage\tsetup\trepeats\tflows\twall_s\tcpu_s\tflows_per_s\tlo_bytes_per_flow\t"
    head += "lo_min_bytes_per_flow\t"
    lines = [head + "dask_sent_bytes"]
    for s in summaries:
        moved = "" if s.dask_sent_bytes is None else str(s.dask_sent_bytes)
        lines.append(
            f"{s.stage}\t{s.setup}\t{s.repeats}\t{s.flows}\t{s.wall_s:.3f}\t{s.cpu_s:.3f}\t"
            f"{s.flows_per_s:.0f}\t{s.lo_bytes_per_flow:.2f}\t{s.lo_min_bytes_per_flow:.2f}\t"
            f"{moved}"
        )
    return "\n".join(lines) + "\n"


def repo_on_path() -> None:
    """tests/servers is imported from this checkout (python -m bench runs from the repo root)."""
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
