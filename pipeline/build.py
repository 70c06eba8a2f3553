"""Headless build: materialise the whole Dagster graph for each report year up to --year, in order.

Each year's aggregates go to the history store, so the report of year Y can compare it with the
years before; years already built are rebuilt too (cheap, and the output stays byte-identical).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from pipeline.config import report_years


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    years = report_years()
    p = argparse.ArgumentParser(prog="python -m pipeline.build", description=__doc__)
    p.add_argument(
        "--year", type=int, default=years[-1], help="report year to build (default: latest)"
    )
    p.add_argument("--from-year", type=int, default=years[0], help="first year to (re)build")
    p.add_argument("--only", action="store_true", help="build --year alone (history must exist)")
    p.add_argument(
        "--scale",
        default=os.environ.get("BBTR_SCALE", "default"),
        help="simulator size: default or small",
    )
    default_source = "files" if os.environ.get("BBTR_RAW_DIR") else "simulator"
    p.add_argument(
        "--source",
        default=os.environ.get("BBTR_SOURCE", default_source),
        choices=["simulator", "files"],
        help="simulate raw inputs, or read BBTR_RAW_DIR",
    )
    p.add_argument(
        "--flow-format",
        default=os.environ.get("BBTR_FLOW_FORMAT", "ipfix"),
        choices=["ipfix", "netflow-v9-pcap", "nfcapd", "nfdump-csv", "nfdump-json"],
        help="form of the simulated ISP's flow exports (the pipeline reads any of them)",
    )
    return p.parse_args(argv)


def build(year: int, from_year: int, only: bool = False) -> bool:
    """Materialise every asset for each partition from_year..year; False if any step failed."""
    from dagster import DagsterInstance, materialize

    from pipeline.definitions import defs
    from pipeline.defs.resources import settings_from_env

    definitions = defs()
    assets = list(definitions.assets or [])
    resources = dict(definitions.resources or {}) | {"settings": settings_from_env()}
    instance = (
        DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    )
    years = [year] if only else [y for y in report_years() if from_year <= y <= year]
    for y in years:
        started = time.monotonic()
        result = materialize(
            assets,
            instance=instance,
            resources=resources,
            partition_key=str(y),
            raise_on_error=False,
            tags={"bbtr/year": str(y)},
        )
        took = time.monotonic() - started
        if not result.success:
            failed = [e.step_key for e in result.all_events if e.is_step_failure]
            print(
                f"build: report year {y} FAILED after {took:.0f}s in steps {failed}",
                file=sys.stderr,
            )
            return False
        print(f"build: report year {y} materialised in {took:.0f}s", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["BBTR_SCALE"] = args.scale
    os.environ["BBTR_SOURCE"] = args.source
    os.environ["BBTR_FLOW_FORMAT"] = args.flow_format
    started = time.monotonic()
    ok = build(args.year, args.from_year, args.only)
    if ok:
        from pipeline.config import Paths

        print(
            f"build: done in {time.monotonic() - started:.0f}s"
            f" → {Paths.from_env().reports / str(args.year)}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
