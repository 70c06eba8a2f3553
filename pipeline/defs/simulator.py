"""The simulated ISP as the Dagster layer runs it: one call for the `raw_inputs` step and for the
worker processes that write later years ahead of their runs (`pipeline.build`)."""

from __future__ import annotations

import logging

from pipeline.config import Paths, Settings
from pipeline.parallel import Background
from pipeline.simulate.run import simulate_year, write_truth_manifest
from pipeline.simulate.world import SimScale
from pipeline.storage.stage import is_staged, publish_files, store_of

log = logging.getLogger(__name__)


def simulate_report_year(year: int, paths: Paths, settings: Settings, reuse: bool = True) -> dict:
    """Write (or, with `reuse`, find in the simulator's cache) the year's raw files and truth;
    with a raw store, the raw files it lacks (or holds at another size) are uploaded to it, as an
    ISP's collectors would write them there."""
    summary = simulate_year(
        year, paths.raw, paths.truth, SimScale.preset(settings.scale), settings.seed,
        settings.flow_format, reuse=reuse,
    )  # fmt: skip
    if is_staged(paths, "raw"):
        raw = store_of(paths, "raw")
        sent = publish_files(raw, paths.raw, summary["sha256"])
        log.info("simulated %d: %d raw files uploaded to %s", year, len(sent), raw.url)
    return summary


def _simulate_task(args: tuple[int, Paths, Settings]) -> dict:
    return simulate_report_year(*args)


def simulate_ahead(years: list[int], paths: Paths, settings: Settings, nice: int) -> Background:
    """The years simulated in `settings.workers` processes (`nice` below the caller), in order."""
    tasks = {y: (y, paths, settings) for y in years}
    return Background(_simulate_task, tasks, settings.workers, nice=nice)


def merge_truth_manifest(paths: Paths, settings: Settings) -> dict:
    """`truth/manifest.json` from the per-year manifests (after workers merged it concurrently)."""
    return write_truth_manifest(paths.truth, SimScale.preset(settings.scale), settings.seed)
