"""Write the simulated ISP's raw inputs (ARCHITECTURE §1, §2) and ground truth (§6)."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.atomic import write_parquet_atomic, write_text_atomic
from pipeline.config import (
    Paths,
    Week,
    load_params,
    local_day_bounds_ms,
    report_years,
    week_bounds_ms,
    weeks_for_year,
)
from pipeline.parallel import run_parallel
from pipeline.simulate import billing, flows, model, sessions, world
from pipeline.simulate.flow_files import (
    FLOW_FORMATS,
    SOURCES,
    check_flow_format,
    needs_default_sampling,
)
from pipeline.simulate.flows import Cells, PortMix, PortTruth

RECORDS_PER_BROADBAND_USER = 200  # record budget: ~2.2 M per broadband week at the default scale
RECORDS_PER_MOBILE_NUMBER = 110  # ~0.9 M per mobile week at the default scale
PPPOE_V6_SUBNETS = 4  # a PPPoE user's traffic uses the first few /64s of the delegated /56
COUNTERS_FIRST_MONTH = "2017-01"
# RNG streams per week
S_SESSIONS, S_LEASES, S_RADIUS, S_FLOWS_PPPOE, S_FLOWS_IPOE = 2, 3, 4, 5, 6
S_USAGE_PPPOE, S_USAGE_IPOE, S_USAGE_MOBILE = 10, 11, 12
S_BILLING, S_FLOWS_MOBILE = 8, 9


@dataclass
class WeekOutput:
    """Files written for one week (path relative to raw dir → sha256) and truth pieces."""

    files: dict[str, str] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)
    user_week: list[pl.DataFrame] = field(default_factory=list)
    port_truth: dict[str, PortTruth] = field(default_factory=dict)
    unattributable: dict[str, dict[str, float]] = field(default_factory=dict)

    flow_format: str = "ipfix"
    faults: bool = True  # flow_files.FAULT_HOUR_OF_WEEK: exporter restarts and stray datagrams

    def add_files(self, prefix: str, written: dict[str, bytes]) -> None:
        for name, data in written.items():
            key = f"{prefix}/{name}" if prefix else name
            self.files[key] = hashlib.sha256(data).hexdigest()


def weekly_usage(
    service: str, enterprise: np.ndarray, week: Week, rng: np.random.Generator
) -> np.ndarray:
    """True weekly bytes (U, 2: IN, OUT) = 7 × the model's daily usage."""
    weekly = np.zeros((len(enterprise), 2))
    for cls, mask in (("personal", ~enterprise), ("enterprise", enterprise)):
        rows = np.flatnonzero(mask)
        if len(rows):
            daily_in, daily_out = model.sample_daily_usage(service, cls, week.start, len(rows), rng)
            weekly[rows, 0] = 7.0 * np.asarray(daily_in, dtype=np.float64)
            weekly[rows, 1] = 7.0 * np.asarray(daily_out, dtype=np.float64)
    return weekly


def _user_week_frame(
    ids: list[str], id_col: str, protocol: str | None, service: str, enterprise, weekly
) -> pl.DataFrame:
    other = "msisdn" if id_col == "subscription_id" else "subscription_id"
    return pl.DataFrame(
        {
            "subscription_id": ids if id_col == "subscription_id" else [None] * len(ids),
            "msisdn": ids if id_col == "msisdn" else [None] * len(ids),
            "access_protocol": [protocol] * len(ids),
            "service": [service] * len(ids),
            "service_class": world.class_names(enterprise),
            "true_in_bytes": weekly[:, 0],
            "true_out_bytes": weekly[:, 1],
        },
        schema_overrides={other: pl.String, "access_protocol": pl.String},
    )


def _by_exporter(
    out: WeekOutput,
    flows_parts: dict[int, list[dict[str, np.ndarray]]],
    exporters: list[world.Exporter],
    week: Week,
    w0: int,
    raw_dir: Path,
) -> None:
    for k, exporter in enumerate(exporters):
        written, n = flows.write_exporter_week(
            flows.concat_flows(flows_parts[k]),
            exporter,
            week.days,
            w0,
            raw_dir,
            out.flow_format,
            faults=out.faults,
        )
        out.add_files("", written)
        out.records[exporter.name] = out.records.get(exporter.name, 0) + n


def _record_unattributable(
    out: WeekOutput, service: str, stray_true: np.ndarray, cells: Cells, n: int
) -> None:
    entry = out.unattributable.setdefault(
        service, {"true_in_bytes": 0.0, "true_out_bytes": 0.0, "sampled_estimate_bytes": 0.0}
    )
    entry["true_in_bytes"] += float(stray_true[0])
    entry["true_out_bytes"] += float(stray_true[1])
    entry["sampled_estimate_bytes"] += float(cells.octets.astype(np.float64).sum() * n)


def simulate_pppoe(
    out: WeekOutput, pop: world.Population, rows: np.ndarray, week: Week, seed: int, raw_dir: Path
) -> None:
    """Sessions, RADIUS detail files and PPPoE exporter flows of one week."""
    params = load_params()
    w0, w1 = week_bounds_ms(week)
    data_start_s, w1_s = (w0 - 86_400_000) // 1000, w1 // 1000
    enterprise = pop.sub_enterprise[rows]
    weekly = weekly_usage(
        "broadband", enterprise, week, world.week_rng(seed, week.start, S_USAGE_PPPOE)
    )
    sub_ids = world.subscription_ids(pop.sub_number[rows])
    prefix_hi = world.prefix_hi(world.PPPOE_PREFIX_BASE + rows)
    sess = sessions.generate_pppoe_sessions(
        enterprise, pop.sub_bras[rows], data_start_s, w1_s, week.start,
        world.week_rng(seed, week.start, S_SESSIONS),
    )  # fmt: skip
    written = sessions.write_radius_detail(
        sess, sub_ids, world.class_names(enterprise), world.v6_prefix_text(prefix_hi, 56),
        weekly[:, 0] / 604_800, weekly[:, 1] / 604_800, data_start_s, w1_s,
        int(params["report"]["utc_offset_hours"]), raw_dir / "radius",
        world.week_rng(seed, week.start, S_RADIUS),
    )  # fmt: skip
    out.add_files("radius", written)
    if week.role == "analysis":
        out.user_week.append(
            _user_week_frame(sub_ids, "subscription_id", "pppoe", "broadband", enterprise, weekly)
        )

    rng = world.week_rng(seed, week.start, S_FLOWS_PPPOE)
    exporters = world.exporters_of("pppoe")
    mix = PortMix.from_frame(model.port_mix("broadband", week.start.year))
    hour_w = model.hourly_weights("broadband", week.start, week.role)
    interval = np.array([e.sampling_interval for e in exporters])[pop.sub_bras[rows]]
    truth = out.port_truth.setdefault("broadband", PortTruth())
    cells = flows.sample_user_cells(
        weekly, interval.astype(np.float64), hour_w, mix,
        RECORDS_PER_BROADBAND_USER * len(rows), truth, rng,
    )  # fmt: skip
    flows.fill_server_ports(cells, mix, rng)
    t = flows.start_times_ms(cells, w0, rng)
    t, srow = flows.snap_into_sessions(cells.user, t, sess, w0, w1, rng)
    n = len(t)
    is_v6 = rng.random(n) < pop.sub_v6_share[rows][cells.user]
    user_hi = prefix_hi[cells.user] | rng.integers(0, PPPOE_V6_SUBNETS, n, dtype=np.uint64)
    user_lo = rng.integers(0, 2**63, n, dtype=np.uint64)
    f = flows.flow_arrays(cells, t, is_v6, sess.framed_v4[srow], user_hi, user_lo, rng)
    f["protocol"] = mix.protocol[cells.category]
    bras_of_record = pop.sub_bras[rows][cells.user]
    parts = {k: [{c: v[bras_of_record == k] for c, v in f.items()}] for k in range(len(exporters))}

    # traffic of no subscriber: released addresses in their cooldown, never-delegated prefixes
    for k, exporter in enumerate(exporters):
        stray_true = stray_true_bytes(weekly[pop.sub_bras[rows] == k])
        stray = flows.sample_stray_cells(
            stray_true, exporter.sampling_interval, hour_w, mix, truth, rng
        )
        flows.fill_server_ports(stray, mix, rng)
        m = len(stray.user)
        t = flows.start_times_ms(stray, w0, rng)
        released = np.flatnonzero(
            (sess.bras == k) & (sess.stop_s * 1000 >= w0)
            & (sess.stop_s < w1_s - sessions.ADDRESS_COOLDOWN_S)
        )  # fmt: skip
        pick = released[rng.integers(0, len(released), m)]
        t_gap = sess.stop_s[pick] * 1000 + rng.integers(1000, 100_000, m)
        is_v6 = rng.random(m) < 0.5
        t = np.where(is_v6, t, t_gap)
        stray_hi = world.prefix_hi(world.PPPOE_STRAY_PREFIX_BASE + rng.integers(0, 2**16, m))
        f = flows.flow_arrays(
            stray, t, is_v6, sess.framed_v4[pick], stray_hi,
            rng.integers(0, 2**63, m, dtype=np.uint64), rng,
        )  # fmt: skip
        f["protocol"] = mix.protocol[stray.category]
        parts[k].append(f)
        _record_unattributable(out, "pppoe", stray_true, stray, exporter.sampling_interval)
    _by_exporter(out, parts, exporters, week, w0, raw_dir)


def stray_true_bytes(weekly: np.ndarray) -> np.ndarray:
    """True (IN, OUT) bytes of traffic from no subscriber on an exporter carrying `weekly`."""
    return flows.STRAY_SHARE * weekly.sum(axis=0)


def simulate_ipoe(
    out: WeekOutput, pop: world.Population, rows: np.ndarray, week: Week, seed: int, raw_dir: Path
) -> None:
    """Prefix leases, lease files and IPoE gateway flows (IPv6 only) of one week."""
    w0, w1 = week_bounds_ms(week)
    data_start_s, w1_s = (w0 - 86_400_000) // 1000, w1 // 1000
    enterprise = pop.sub_enterprise[rows]
    weekly = weekly_usage(
        "broadband", enterprise, week, world.week_rng(seed, week.start, S_USAGE_IPOE)
    )
    sub_ids = world.subscription_ids(pop.sub_number[rows])
    leases = sessions.generate_ipoe_leases(
        rows, data_start_s, w1_s, world.week_rng(seed, week.start, S_LEASES)
    )
    bounds = [tuple(b // 1000 for b in local_day_bounds_ms(d)) for d in week.days]
    written = sessions.write_ipoe_leases(
        leases, sub_ids, world.class_names(enterprise), week.days, bounds,
        raw_dir / "ipoe_leases",
    )  # fmt: skip
    out.add_files("ipoe_leases", written)
    if week.role == "analysis":
        out.user_week.append(
            _user_week_frame(sub_ids, "subscription_id", "ipoe", "broadband", enterprise, weekly)
        )

    rng = world.week_rng(seed, week.start, S_FLOWS_IPOE)
    exporters = world.exporters_of("ipoe")
    mix = PortMix.from_frame(model.port_mix("broadband", week.start.year))
    hour_w = model.hourly_weights("broadband", week.start, week.role)
    gw = pop.sub_ipoe_gw[rows]
    interval = np.array([e.sampling_interval for e in exporters])[gw]
    truth = out.port_truth.setdefault("broadband_ipoe", PortTruth())
    cells = flows.sample_user_cells(
        weekly, interval.astype(np.float64), hour_w, mix,
        RECORDS_PER_BROADBAND_USER * len(rows), truth, rng,
    )  # fmt: skip
    flows.fill_server_ports(cells, mix, rng)
    t = flows.start_times_ms(cells, w0, rng)
    lrow = flows.lease_at(cells.user, t, leases)
    n = len(t)
    user_hi = leases.prefix_hi[lrow] | rng.integers(0, PPPOE_V6_SUBNETS, n, dtype=np.uint64)
    f = flows.flow_arrays(
        cells, t, np.ones(n, bool), np.zeros(n, np.uint32), user_hi,
        rng.integers(0, 2**63, n, dtype=np.uint64), rng,
    )  # fmt: skip
    f["protocol"] = mix.protocol[cells.category]
    parts = {k: [{c: v[gw[cells.user] == k] for c, v in f.items()}] for k in range(len(exporters))}
    for k, exporter in enumerate(exporters):
        stray_true = stray_true_bytes(weekly[gw == k])
        stray = flows.sample_stray_cells(
            stray_true, exporter.sampling_interval, hour_w, mix, truth, rng
        )
        flows.fill_server_ports(stray, mix, rng)
        m = len(stray.user)
        stray_hi = world.prefix_hi(world.IPOE_STRAY_PREFIX_BASE + rng.integers(0, 2**16, m))
        f = flows.flow_arrays(
            stray, flows.start_times_ms(stray, w0, rng), np.ones(m, bool),
            np.zeros(m, np.uint32), stray_hi, rng.integers(0, 2**63, m, dtype=np.uint64), rng,
        )  # fmt: skip
        f["protocol"] = mix.protocol[stray.category]
        parts[k].append(f)
        _record_unattributable(out, "ipoe", stray_true, stray, exporter.sampling_interval)
    _by_exporter(out, parts, exporters, week, w0, raw_dir)


def simulate_mobile(out: WeekOutput, pop: world.Population, week: Week, seed: int, raw_dir: Path):
    """Billing files and mobile router flows (IPv4 + IPv6) of one week."""
    w0, _ = week_bounds_ms(week)
    enterprise = pop.msisdn_enterprise
    weekly = weekly_usage(
        "mobile", enterprise, week, world.week_rng(seed, week.start, S_USAGE_MOBILE)
    )
    numbers = world.msisdns(pop.msisdn_number)
    written, billed_in, billed_out = billing.write_mobile_billing(
        week.days, numbers, enterprise, weekly[:, 0], weekly[:, 1], raw_dir / "mobile_billing",
        world.week_rng(seed, week.start, S_BILLING),
    )  # fmt: skip
    out.add_files("mobile_billing", written)
    weekly = np.stack([billed_in, billed_out], axis=1).astype(np.float64)
    if week.role == "analysis":
        out.user_week.append(
            _user_week_frame(numbers, "msisdn", None, "mobile", enterprise, weekly)
        )

    rng = world.week_rng(seed, week.start, S_FLOWS_MOBILE)
    exporters = world.exporters_of("mobile")
    mix = PortMix.from_frame(model.port_mix("mobile", week.start.year))
    hour_w = model.hourly_weights("mobile", week.start, week.role)
    home = pop.msisdn_exporter
    interval = np.array([e.sampling_interval for e in exporters])[home].astype(np.float64)
    truth = out.port_truth.setdefault("mobile", PortTruth())
    cells = flows.sample_user_cells(
        weekly, interval, hour_w, mix, RECORDS_PER_MOBILE_NUMBER * len(numbers), truth, rng
    )
    flows.fill_server_ports(cells, mix, rng)
    n = len(cells.user)
    row = cells.user
    is_v6 = rng.random(n) < pop.msisdn_v6_share[row]
    f = flows.flow_arrays(
        cells, flows.start_times_ms(cells, w0, rng), is_v6,
        (world.MOBILE_V4_BASE + row).astype(np.uint32),
        world.prefix_hi(world.MOBILE_PREFIX_BASE + row),
        rng.integers(0, 2**63, n, dtype=np.uint64), rng,
    )  # fmt: skip
    f["protocol"] = mix.protocol[cells.category]
    parts = {k: [{c: v[home[row] == k] for c, v in f.items()}] for k in range(len(exporters))}
    _by_exporter(out, parts, exporters, week, w0, raw_dir)


def simulate_week(
    week: Week,
    pop: world.Population,
    seed: int,
    raw_dir: Path,
    with_mobile: bool,
    flow_format: str = "ipfix",
    faults: bool = True,
) -> WeekOutput:
    """All raw files of one week (and its truth pieces); flows in `flow_format`, with the
    exporter faults of flow_files.FAULT_HOUR_OF_WEEK unless `faults` is False."""
    out = WeekOutput(flow_format=flow_format, faults=faults)
    pppoe, ipoe = world.access_protocols(pop, week.start)
    simulate_pppoe(out, pop, np.flatnonzero(pppoe), week, seed, raw_dir)
    simulate_ipoe(out, pop, np.flatnonzero(ipoe), week, seed, raw_dir)
    if with_mobile:
        simulate_mobile(out, pop, week, seed, raw_dir)
    return out


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
    last_month = f"{max(report_years())}-06"
    counters = billing.write_monthly_counters(
        raw_dir / "counters", COUNTERS_FIRST_MONTH, last_month
    )
    return {
        "exporters.yaml": hashlib.sha256(registry.read_bytes()).hexdigest(),
        "counters/monthly_traffic.csv": hashlib.sha256(counters).hexdigest(),
    }


def simulate_year(
    year: int,
    raw_dir: Path,
    truth_dir: Path,
    scale: world.SimScale | str,
    seed: int = 1,
    flow_format: str = "ipfix",
    faults: bool = True,
) -> dict:
    """Write every raw file of the year's weeks, the shared files, and `truth/<year>/`
    (`scale` may be a preset name); refreshes `truth/manifest.json`."""
    began = time.perf_counter()
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    if isinstance(scale, str):
        scale = world.SimScale.preset(scale)
    pop = world.build_population(scale, seed)
    check_flow_format(flow_format)
    files = write_shared_files(raw_dir, flow_format)
    records: dict[str, int] = {}
    year_truth = truth_dir / str(year)
    for week in weeks_for_year(year):
        out = simulate_week(
            week,
            pop,
            seed,
            raw_dir,
            with_mobile=week.role == "analysis",
            flow_format=flow_format,
            faults=faults,
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
    return summary | {"seconds": round(time.perf_counter() - began, 2)}


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
    print(json.dumps({k: v for k, v in summary.items() if k != "records_per_week_exporter"},
                     indent=1))  # fmt: skip
    return 0
