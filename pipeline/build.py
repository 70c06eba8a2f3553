"""Headless build: materialise the whole Dagster graph for each report year up to --year, in order.

Each year's aggregates go to the history store, so the report of year Y can compare it with the
years before; years already built are rebuilt too (cheap, and the output stays byte-identical).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

from pipeline.config import FLOW_FORMATS, RAW_SOURCES, SCALES, Settings, report_years


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    years, defaults = report_years(), Settings.from_env()
    p = argparse.ArgumentParser(prog="python -m pipeline.build", description=__doc__)
    p.add_argument(
        "--year", type=int, default=years[-1], help="report year to build (default: latest)"
    )
    p.add_argument("--from-year", type=int, default=years[0], help="first year to (re)build")
    p.add_argument("--only", action="store_true", help="build --year alone (history must exist)")
    p.add_argument("--scale", default=defaults.scale, choices=SCALES, help="simulator size")
    p.add_argument(
        "--source",
        default=defaults.source,
        choices=RAW_SOURCES,
        help="simulate raw inputs, or read BBTR_RAW_DIR",
    )
    p.add_argument(
        "--flow-format",
        default=defaults.flow_format,
        choices=FLOW_FORMATS,
        help="form of the simulated ISP's flow exports (the pipeline reads any of them)",
    )
    return p.parse_args(argv)


def build(year: int, from_year: int, only: bool = False, settings: Settings | None = None) -> bool:
    """Materialise every asset for each partition from_year..year; False if any step failed."""
    from dagster import DagsterInstance, materialize

    from pipeline.definitions import defs
    from pipeline.defs.resources import resource_from_settings

    definitions = defs()
    assets = list(definitions.assets or [])
    settings = settings or Settings.from_env()
    resources = dict(definitions.resources or {}) | {"settings": resource_from_settings(settings)}
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
    settings = replace(
        Settings.from_env(), scale=args.scale, source=args.source, flow_format=args.flow_format
    )
    os.environ.update(settings.as_env())  # worker processes and a later `make ui` see the same
    started = time.monotonic()
    ok = build(args.year, args.from_year, args.only, settings)
    if ok:
        from pipeline.config import Paths

        print(
            f"build: done in {time.monotonic() - started:.0f}s"
            f" → {Paths.from_env().reports / str(args.year)}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
