"""Write the simulated ISP's raw inputs (ARCHITECTURE §1, §2) and ground truth (§6)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import polars as pl

from pipeline.atomic import write_parquet_atomic, write_text_atomic
from pipeline.config import Paths, listed_years, weeks_for_year
from pipeline.parallel import run_parallel
from pipeline.progress import cli_logging
from pipeline.simulate import billing, cache, model, world
from pipeline.simulate.flow_files import (
    FLOW_FORMATS,
    SOURCES,
    FlowForm,
    check_flow_format,
    needs_default_sampling,
)
from pipeline.simulate.flows import PortTruth
from pipeline.simulate.week import simulate_week

log = logging.getLogger(__name__)

COUNTERS_FIRST_MONTH = "2017-01"


def port_share_frame(port_truth: dict[str, PortTruth]) -> pl.DataFrame:
    """service, protocol, port_min, true_bytes, share (of the service's bytes)."""
    df = pl.concat([truth.frame(service) for service, truth in port_truth.items()])
    return df.with_columns(
        share=pl.col("true_bytes") / pl.col("true_bytes").sum().over("service")
    ).sort(["service", "protocol", "port_min"])


def write_shared_files(raw_dir: Path, flow_format: str = "ipfix") -> dict[str, str]:
    """Exporter registry and monthly counters: identical bytes whichever year writes them."""
    registry = world.write_exporter_registry(
        raw_dir, SOURCES[flow_format], needs_default_sampling(flow_format)
    )
    last_month = f"{max(listed_years())}-06"
    counters = billing.write_monthly_counters(
        raw_dir / "counters", COUNTERS_FIRST_MONTH, last_month
    )
    return {
        "exporters.yaml": hashlib.sha256(registry.read_bytes()).hexdigest(),
        "counters/monthly_traffic.csv": hashlib.sha256(counters).hexdigest(),
    }


class UncalibratedYear(ValueError):
    """A year the simulated ISP has no calibration for."""


def check_simulated_year(year: int) -> None:
    """Raise, in one line, when `year` lies outside the simulator's calibrated years."""
    anchors = sorted(int(y) for y in model.load_calibration()["daily_usage"]["anchor_weeks"])
    if not anchors[0] <= year <= anchors[-1]:
        raise UncalibratedYear(
            f"report year {year}: the simulated ISP is calibrated for {anchors[0]}-{anchors[-1]} "
            "only; build it from an ISP's own files (BBTR_RAW_DIR)"
        )


def simulate_year(
    year: int,
    raw_dir: Path,
    truth_dir: Path,
    scale: world.SimScale | str,
    seed: int = 1,
    flow_format: str = "ipfix",
    faults: bool = True,
    reuse: bool = True,
) -> dict:
    """Write every raw file of the year's weeks, the shared files, and `truth/<year>/`
    (`scale` may be a preset name); refreshes `truth/manifest.json`. With `reuse`, a year whose
    cache key and files match `raw/.simulator/year=<Y>.json` is left as it is (nothing written)."""
    check_simulated_year(year)
    began = time.perf_counter()
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    if isinstance(scale, str):
        scale = world.SimScale.preset(scale)
    check_flow_format(flow_format)
    key = cache.simulator_key(year, scale.as_dict(), seed, flow_format, faults)
    if reuse and (recorded := cache.reusable(raw_dir, truth_dir, key)) is not None:
        return recorded | {"reused": True, "seconds": round(time.perf_counter() - began, 2)}
    cache.manifest_path(raw_dir, year).unlink(missing_ok=True)  # stale until rewritten below
    pop = world.build_population(scale, seed)
    files = write_shared_files(raw_dir, flow_format)
    records: dict[str, int] = {}
    year_truth = truth_dir / str(year)
    for week in weeks_for_year(year):
        out = simulate_week(
            week, pop, seed, raw_dir, week.role == "analysis", FlowForm(flow_format, faults)
        )
        files.update(out.files)
        for name, n in out.records.items():
            records[f"{week.start.isoformat()}/{name}"] = n
        if week.role != "analysis":
            continue
        user_week = pl.concat(out.user_week).sort(
            ["service", "access_protocol", "subscription_id", "msisdn"], nulls_last=True
        )
        write_parquet_atomic(user_week, year_truth / "user_week.parquet")
        write_parquet_atomic(port_share_frame(out.port_truth), year_truth / "port_share.parquet")
        unattributable = {"week_start": week.start.isoformat(), "services": out.unattributable}
        write_text_atomic(
            year_truth / "unattributable_bytes.json", json.dumps(unattributable, indent=1) + "\n"
        )
    summary = {
        "year": year,
        "seed": seed,
        "scale": scale.as_dict(),
        "files": len(files),
        "records": records,
        "sha256": dict(sorted(files.items())),
    }
    write_text_atomic(
        year_truth / "manifest.json", json.dumps(summary, indent=1, sort_keys=True) + "\n"
    )
    write_truth_manifest(truth_dir, scale, seed)
    cache.write_manifest(raw_dir, truth_dir, key, summary)
    seconds = round(time.perf_counter() - began, 2)
    log.info(
        "simulate %d: the simulated ISP wrote %d raw files in %.0f s", year, len(files), seconds
    )
    return summary | {"reused": False, "seconds": seconds}


def write_truth_manifest(truth_dir: Path, scale: world.SimScale, seed: int) -> dict:
    """Merge the per-year manifests of this seed and scale into `truth/manifest.json`."""
    years = []
    for path in sorted(Path(truth_dir).glob("*/manifest.json")):
        year = json.loads(path.read_text())
        if year["seed"] == seed and year["scale"] == scale.as_dict():
            years.append(year)
    sha = {name: h for y in years for name, h in y["sha256"].items()}
    kinds: dict[str, int] = {}
    for name in sha:
        kind = name.split("/")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    manifest = {
        "seed": seed,
        "scale": scale.as_dict(),
        "years": sorted(y["year"] for y in years),
        "file_counts": dict(sorted(kinds.items())),
        "records_per_week_exporter": dict(
            sorted((k, n) for y in years for k, n in y["records"].items())
        ),
        "sha256": dict(sorted(sha.items())),
    }
    write_text_atomic(
        Path(truth_dir) / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    )
    return manifest


def _simulate_year_args(args: tuple) -> dict:
    return simulate_year(*args)


def simulate(
    raw_dir: Path,
    truth_dir: Path,
    years: list[int],
    scale: world.SimScale,
    seed: int = 1,
    workers: int = 2,
    flow_format: str = "ipfix",
    faults: bool = True,
) -> dict:
    """Simulate several report years (in parallel processes) and write `truth/manifest.json`."""
    began = time.perf_counter()
    jobs = [
        (y, Path(raw_dir), Path(truth_dir), scale, seed, flow_format, faults) for y in sorted(years)
    ]
    results = run_parallel(_simulate_year_args, jobs, workers)
    manifest = write_truth_manifest(Path(truth_dir), scale, seed)
    per_exporter: dict[str, int] = {}
    for name, n in manifest["records_per_week_exporter"].items():
        exporter = name.split("/")[1]
        per_exporter[exporter] = per_exporter.get(exporter, 0) + n
    return {
        "files": len(manifest["sha256"]),
        "file_counts": manifest["file_counts"],
        "records_per_exporter": dict(sorted(per_exporter.items())),
        "records_per_week_exporter": manifest["records_per_week_exporter"],
        "seconds_per_year": {r["year"]: r["seconds"] for r in results},
        "seconds": round(time.perf_counter() - began, 2),
    }


def parse_years(text: str) -> list[int]:
    """`2019-2024` or `2023,2024` → list of years."""
    years: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        years += list(range(int(lo), int(hi or lo) + 1))
    return sorted(set(years))


def main(argv: list[str] | None = None) -> int:
    """CLI: python -m pipeline.simulate --years 2019-2024 --scale default --seed 1 [--data-dir]."""
    cli_logging()
    ap = argparse.ArgumentParser(prog="python -m pipeline.simulate", description=__doc__)
    ap.add_argument("--years", default="2019-2024", help="e.g. 2019-2024 or 2023,2024")
    ap.add_argument("--scale", default="default", choices=["default", "small"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=None, help="data root (raw/ and truth/)")
    ap.add_argument("--flow-format", default="ipfix", choices=list(FLOW_FORMATS))
    ap.add_argument(
        "--no-faults", action="store_true",
        help="no exporter restarts or stray datagrams (the default injects a few every week)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.data_dir is not None:
        raw, truth = args.data_dir / "raw", args.data_dir / "truth"
    else:
        paths = Paths.from_env()
        raw, truth = paths.raw, paths.truth
    summary = simulate(
        raw, truth, parse_years(args.years), world.SimScale.preset(args.scale), args.seed,
        args.workers, args.flow_format, not args.no_faults,
    )  # fmt: skip
    log.info(json.dumps({k: v for k, v in summary.items() if k != "records_per_week_exporter"},
                        indent=1))  # fmt: skip
    return 0
