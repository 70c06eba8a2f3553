"""`python -m bench`: every comparison, interleaved, medians of --repeats, table in bench/results/.

Examples:
  python -m bench                                   # every comparison at its default scale
  python -m bench --only attribution --scale 1m,10m,30m
  python -m bench --only aggregation --scale 100m --repeats 3
  python -m bench --tree /work/base9 --only nfcapd  # measure another checkout's code
  python -m bench --tree ../before --tree . --only aggregation   # before and after, interleaved
  python -m bench --only storage --warehouse data/warehouse
  python -m bench --only dask --repeats 3           # local pool vs Dask 1 and 2 workers
  python -m bench --only dask --store s3            # the same with raw/warehouse on S3
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from bench import cluster, harness, results
from bench.comparisons import BUILDERS, DEFAULT_SCALES
from bench.storage import storage_markdown, storage_tsv, table_storage

NAMES = (*BUILDERS, "storage", "dask")
RESULTS_DIR = harness.BENCH_DIR / "results"


def parse_scale(text: str) -> int:
    """'1m' → 1_000_000, '250k' → 250_000, '1200000' → 1_200_000."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}.get(t[-1:], 1)
    value = float(t[:-1] if mult > 1 else t)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"scale must be positive: {text!r}")
    return int(value * mult)


def parse_scales(text: str) -> list[int]:
    """A comma-separated list of scales."""
    return [parse_scale(part) for part in text.split(",") if part.strip()]


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", choices=NAMES, help="repeatable; default: all")
    p.add_argument("--scale", type=parse_scales, help="records, e.g. 1m or 1m,10m,30m or 5e5")
    p.add_argument("--repeats", type=int, default=3, help="runs of each case (interleaved)")
    p.add_argument(
        "--tree",
        type=Path,
        action="append",
        help="checkout whose code runs (default: this one); repeat it to measure several "
        "checkouts in one interleaved run (e.g. before and after)",
    )
    p.add_argument("--data-dir", type=Path, default=Path("/tmp/bbtr-bench"))
    p.add_argument("--seed", type=int, default=20261204)
    p.add_argument("--warehouse", type=Path, help="storage: a built data/warehouse (read only)")
    p.add_argument("--year", type=int, default=cluster.DEFAULT_YEAR, help="dask: simulated year")
    p.add_argument("--sim-scale", default="small", help="dask: simulator scale (small, default)")
    p.add_argument("--store", choices=("local", "s3"), default="local", help="dask: raw/warehouse")
    p.add_argument("--results", type=Path, default=RESULTS_DIR)
    p.add_argument("--max-rss-mb", type=float, default=8192, help="kill a case above this")
    p.add_argument("--timeout-s", type=float, default=3600, help="kill a case after this")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error("--repeats must be at least 1")
    return a


def main(argv: list[str] | None = None) -> int:
    a = arguments(argv)
    trees = [t.resolve() for t in (a.tree or [harness.REPO])]
    names = a.only or list(NAMES)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {
        "date": started,
        "commit": "+".join(results.git_commit(t) for t in trees),
        "tree": " ".join(str(t) for t in trees),
        "bench_commit": results.git_commit(harness.REPO),
        **results.machine_facts(),
        "load_at_start": harness.load_text(),
        "repeats": str(a.repeats),
    }
    print("\n".join(results.header_lines(meta)), flush=True)
    rows: list[harness.Row] = []
    notes: list[str] = []
    for name in names:
        if name in ("storage", "dask"):
            continue
        for scale in a.scale or [DEFAULT_SCALES[name]]:
            print(f"== {name} at {scale:,} records: preparing data", flush=True)
            for comparison in BUILDERS[name](scale, a.data_dir, a.seed):
                notes += [f"{comparison.name}: {n}" for n in comparison.notes]
                for n in comparison.notes:
                    print(f"  note: {n}")
                rows += harness.run_comparison(
                    comparison, trees, a.repeats, a.max_rss_mb, a.timeout_s,
                    echo=lambda s: print(s, flush=True),
                )  # fmt: skip
    extra, storage_text = "", ""
    if "storage" in names:
        if a.warehouse is None:
            print("== storage: skipped (give --warehouse DIR, a built data/warehouse)")
        else:
            storage = [
                *table_storage(a.warehouse, "flows"),
                *table_storage(a.warehouse, "attributed"),
            ]
            extra = f"## storage of {a.warehouse}\n\n{storage_markdown(storage)}"
            storage_text = storage_tsv(storage)
            print(f"== storage of {a.warehouse}\n{storage_text}")
    dask_text = ""
    if "dask" in names:
        cluster.repo_on_path()
        why = cluster.s3_available() if a.store == "s3" else None
        if why:
            print(f"== dask: skipped (--store s3: {why})")
        else:
            print(f"== dask: ingest and attribution of {a.year} (simulator scale {a.sim_scale}, "
                  f"stores {a.store}): local pool, Dask 1 and 2 workers", flush=True)  # fmt: skip
            load = harness.load_text()
            runs = cluster.run_bench(a.data_dir, a.year, a.sim_scale, a.repeats, a.store,
                                     lambda s: print(s, flush=True))  # fmt: skip
            summaries = cluster.summarise(runs)
            rows += cluster.as_rows(summaries, load)
            dask_md, dask_text = cluster.markdown(summaries, a.store), cluster.tsv(summaries)
            extra = f"{extra}\n\n{dask_md}" if extra else dask_md
            print(f"== dask\n{dask_text}")
    meta["load_at_end"] = harness.load_text()
    if notes:
        extra = "\n".join(f"- note: {n}" for n in notes) + ("\n\n" + extra if extra else "")
    print()
    print(results.console_table(rows))
    print(f"load average (1/5/15 min) before {meta['load_at_start']}, after {meta['load_at_end']};"
          f" {meta['cores']} cores")  # fmt: skip
    tsv, md = results.write_results(a.results, rows, meta, extra)
    print(f"results: {tsv} and {md}")
    if storage_text:
        storage_file = tsv.with_name(f"{tsv.stem}-storage.tsv")
        storage_file.write_text(storage_text)
        print(f"storage: {storage_file}")
    if dask_text:
        dask_file = tsv.with_name(f"{tsv.stem}-dask.tsv")
        dask_file.write_text(dask_text)
        print(f"dask: {dask_file}")
    failed = [r for r in rows if r.error]
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    sys.exit(main())
