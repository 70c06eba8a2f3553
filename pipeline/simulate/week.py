"""One week of the simulated ISP: each access service's subscriber files and exporter flows.

PPPoE, IPoE and mobile take one path (`simulate_service`). What sets a service apart is data
(`Service`: its exporters, usage model, record budget, RNG streams, whether its exporters carry
traffic of no subscriber) and one strategy, `Service.provision`: it writes the service's
subscriber records (RADIUS sessions, IPv6 prefix leases, mobile billing) and returns the
addressing that puts the users' traffic, and the traffic of no subscriber, on addresses.

Every RNG stream is drawn from in a fixed order (the output is byte-identical for a seed); each
addressing strategy documents the order of its draws.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import polars as pl

from pipeline.config import (
    Week,
    load_params,
    local_day_bounds_ms,
    local_hour_starts_ms,
    week_bounds_ms,
)
from pipeline.simulate import billing, flows, model, sessions, world
from pipeline.simulate.flow_files import FlowForm, write_exporter_week
from pipeline.simulate.flows import Cells, PortMix, PortTruth
from pipeline.simulate.sessions import IpoeLeases, PppoeSessions

RECORDS_PER_BROADBAND_USER = 200  # record budget: ~2.2 M per broadband week at the default scale
RECORDS_PER_MOBILE_NUMBER = 110  # ~0.9 M per mobile week at the default scale
V6_SUBNETS_USED = 4  # a broadband user's traffic uses the first few /64s of the delegated /56
# RNG streams per week (world.week_rng)
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
    form: FlowForm = field(default_factory=FlowForm)

    def add_files(self, prefix: str, written: dict[str, bytes]) -> None:
        for name, data in written.items():
            key = f"{prefix}/{name}" if prefix else name
            self.files[key] = hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Users:
    """The users of one service in one week (arrays aligned with `ids`)."""

    ids: list[str]  # subscription ids or phone numbers
    id_column: str  # "subscription_id" | "msisdn"
    rows: np.ndarray  # index into the population's arrays
    enterprise: np.ndarray  # bool
    home: np.ndarray  # index into world.exporters_of(service) of the exporter carrying the user
    v6_share: np.ndarray  # share of the user's traffic over IPv6 (where the service has IPv4)


def subscription_users(pop: world.Population, rows: np.ndarray, home: np.ndarray) -> Users:
    """Broadband users: subscriptions `rows`, carried by exporter `home[rows]`."""
    return Users(
        world.subscription_ids(pop.sub_number[rows]), "subscription_id", rows,
        pop.sub_enterprise[rows], home[rows], pop.sub_v6_share[rows],
    )  # fmt: skip


def phone_users(pop: world.Population) -> Users:
    """Mobile users: every phone number."""
    rows = np.arange(len(pop.msisdn_number))
    return Users(
        world.msisdns(pop.msisdn_number), "msisdn", rows,
        pop.msisdn_enterprise, pop.msisdn_exporter, pop.msisdn_v6_share,
    )  # fmt: skip


class Endpoints(NamedTuple):
    """The subscriber side of each record: start time, IP version, IPv4, IPv6 upper 64 bits."""

    start_ms: np.ndarray
    is_v6: np.ndarray
    v4: np.ndarray
    v6_hi: np.ndarray


class Addressing(Protocol):
    """Puts a service's sampled cells on subscriber-side addresses and times."""

    def users(self, cells: Cells, rng: np.random.Generator) -> Endpoints: ...

    def strays(self, cells: Cells, exporter: int, rng: np.random.Generator) -> Endpoints: ...


def _in_delegated_prefix(prefix56_hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of the first V6_SUBNETS_USED /64s of each record's /56."""
    return prefix56_hi | rng.integers(0, V6_SUBNETS_USED, len(prefix56_hi), dtype=np.uint64)


def _stray_prefixes(base: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random /56s of a block that is never delegated."""
    return world.prefix_hi(base + rng.integers(0, 2**16, n))


@dataclass(frozen=True)
class PppoeAddressing:
    """RADIUS sessions: a framed IPv4 address per session (BRAS pools recycle them) and the user's
    delegated /56. Traffic of no subscriber: released IPv4 addresses in their cooldown, prefixes
    never delegated. Draws: times, snap into sessions, IP version, /64 (strays: times, released
    session, gap, IP version, prefix)."""

    sess: PppoeSessions
    prefix56_hi: np.ndarray  # per user
    v6_share: np.ndarray  # per user
    week_ms: tuple[int, int]
    hour_starts_ms: np.ndarray  # the week's local hour starts (config.local_hour_starts_ms)

    def users(self, cells: Cells, rng: np.random.Generator) -> Endpoints:
        w0, w1 = self.week_ms
        t = flows.start_times_ms(cells, self.hour_starts_ms, rng)
        t, srow = flows.snap_into_sessions(cells.user, t, self.sess, w0, w1, rng)
        is_v6 = rng.random(len(t)) < self.v6_share[cells.user]
        v6_hi = _in_delegated_prefix(self.prefix56_hi[cells.user], rng)
        return Endpoints(t, is_v6, self.sess.framed_v4[srow], v6_hi)

    def strays(self, cells: Cells, exporter: int, rng: np.random.Generator) -> Endpoints:
        (w0, w1), s, m = self.week_ms, self.sess, len(cells.user)
        t = flows.start_times_ms(cells, self.hour_starts_ms, rng)
        released = np.flatnonzero(
            (s.bras == exporter) & (s.stop_s * 1000 >= w0)
            & (s.stop_s < w1 // 1000 - sessions.ADDRESS_COOLDOWN_S)
        )  # fmt: skip
        pick = released[rng.integers(0, len(released), m)]
        t_gap = s.stop_s[pick] * 1000 + rng.integers(1000, 100_000, m)
        is_v6 = rng.random(m) < 0.5
        t = np.where(is_v6, t, t_gap)
        v6_hi = _stray_prefixes(world.PPPOE_STRAY_PREFIX_BASE, m, rng)
        return Endpoints(t, is_v6, s.framed_v4[pick], v6_hi)


@dataclass(frozen=True)
class IpoeAddressing:
    """IPv6 prefix leases (IPv6 only): the /56 leased at the record's time. Traffic of no
    subscriber: prefixes never leased. Draws: times, /64 (strays: prefix, then times)."""

    leases: IpoeLeases
    hour_starts_ms: np.ndarray  # the week's local hour starts (config.local_hour_starts_ms)

    def users(self, cells: Cells, rng: np.random.Generator) -> Endpoints:
        t = flows.start_times_ms(cells, self.hour_starts_ms, rng)
        lrow = flows.lease_at(cells.user, t, self.leases)
        v6_hi = _in_delegated_prefix(self.leases.prefix_hi[lrow], rng)
        return Endpoints(t, np.ones(len(t), bool), np.zeros(len(t), np.uint32), v6_hi)

    def strays(self, cells: Cells, exporter: int, rng: np.random.Generator) -> Endpoints:
        m = len(cells.user)
        v6_hi = _stray_prefixes(world.IPOE_STRAY_PREFIX_BASE, m, rng)  # drawn before the times
        t = flows.start_times_ms(cells, self.hour_starts_ms, rng)
        return Endpoints(t, np.ones(m, bool), np.zeros(m, np.uint32), v6_hi)


@dataclass(frozen=True)
class MobileAddressing:
    """One IPv4 address and one /64 per phone number; no traffic of no subscriber.
    Draws: IP version, then times."""

    v6_share: np.ndarray  # per user
    hour_starts_ms: np.ndarray  # the week's local hour starts (config.local_hour_starts_ms)

    def users(self, cells: Cells, rng: np.random.Generator) -> Endpoints:
        row = cells.user
        is_v6 = rng.random(len(row)) < self.v6_share[row]  # drawn before the times
        t = flows.start_times_ms(cells, self.hour_starts_ms, rng)
        v4 = (world.MOBILE_V4_BASE + row).astype(np.uint32)
        return Endpoints(t, is_v6, v4, world.prefix_hi(world.MOBILE_PREFIX_BASE + row))

    def strays(self, cells: Cells, exporter: int, rng: np.random.Generator) -> Endpoints:
        raise NotImplementedError("mobile exporters carry no traffic of no subscriber")


def _day_before_ms(week: Week) -> int:
    """UTC epoch ms of local midnight the day before the week (RADIUS and leases start there)."""
    return local_day_bounds_ms(week.start - dt.timedelta(days=1))[0]


def provision_pppoe(
    out: WeekOutput, users: Users, weekly: np.ndarray, week: Week, seed: int, raw_dir: Path
) -> tuple[np.ndarray, Addressing]:
    """Sessions and the RADIUS detail files accounting them (from the day before the week)."""
    w0, w1 = week_bounds_ms(week)
    data_start_s, w1_s = _day_before_ms(week) // 1000, w1 // 1000
    week_s = (w1 - w0) // 1000  # 604 800 s; an hour less or more in a DST week
    prefix56_hi = world.prefix_hi(world.PPPOE_PREFIX_BASE + users.rows)
    sess = sessions.generate_pppoe_sessions(
        users.enterprise, users.home, data_start_s, w1_s, week.start,
        world.week_rng(seed, week.start, S_SESSIONS),
    )  # fmt: skip
    written = sessions.write_radius_detail(
        sess, users.ids, world.class_names(users.enterprise), world.v6_prefix_text(prefix56_hi, 56),
        weekly[:, 0] / week_s, weekly[:, 1] / week_s, data_start_s, w1_s, raw_dir / "radius",
        world.week_rng(seed, week.start, S_RADIUS), load_params(),
    )  # fmt: skip
    out.add_files("radius", written)
    hours = np.asarray(local_hour_starts_ms(week), np.int64)
    return weekly, PppoeAddressing(sess, prefix56_hi, users.v6_share, (w0, w1), hours)


def provision_ipoe(
    out: WeekOutput, users: Users, weekly: np.ndarray, week: Week, seed: int, raw_dir: Path
) -> tuple[np.ndarray, Addressing]:
    """Prefix leases and the lease files (leases valid on each local day)."""
    w0, w1 = week_bounds_ms(week)
    leases = sessions.generate_ipoe_leases(
        users.rows, _day_before_ms(week) // 1000, w1 // 1000,
        world.week_rng(seed, week.start, S_LEASES),
    )  # fmt: skip
    bounds = [tuple(b // 1000 for b in local_day_bounds_ms(d)) for d in week.days]
    written = sessions.write_ipoe_leases(
        leases, users.ids, world.class_names(users.enterprise), week.days, bounds,
        raw_dir / "ipoe_leases",
    )  # fmt: skip
    out.add_files("ipoe_leases", written)
    return weekly, IpoeAddressing(leases, np.asarray(local_hour_starts_ms(week), np.int64))


def provision_mobile(
    out: WeekOutput, users: Users, weekly: np.ndarray, week: Week, seed: int, raw_dir: Path
) -> tuple[np.ndarray, Addressing]:
    """Billing files; the week's usage is what was billed (whole bytes per day)."""
    written, billed_in, billed_out = billing.write_mobile_billing(
        week.days, users.ids, users.enterprise, weekly[:, 0], weekly[:, 1],
        raw_dir / "mobile_billing", world.week_rng(seed, week.start, S_BILLING),
    )  # fmt: skip
    out.add_files("mobile_billing", written)
    billed = np.stack([billed_in, billed_out], axis=1).astype(np.float64)
    hours = np.asarray(local_hour_starts_ms(week), np.int64)
    return billed, MobileAddressing(users.v6_share, hours)


Provision = Callable[
    [WeekOutput, Users, np.ndarray, Week, int, Path], tuple[np.ndarray, Addressing]
]


@dataclass(frozen=True)
class Service:
    """What sets one access service apart; `simulate_service` does the rest."""

    name: str  # exporter service (world.exporters_of) and key of the unattributable truth
    access_protocol: str | None  # in truth/user_week.parquet
    usage: str  # model service: daily usage, port mix, hourly shape ("broadband" | "mobile")
    port_truth: str  # key in truth/port_share.parquet
    records_per_user: int  # flow-record budget
    usage_stream: int
    flows_stream: int
    unattributable: bool  # its exporters carry traffic of no subscriber (flows.STRAY_SHARE)
    provision: Provision  # writes the subscriber files; returns (weekly usage, addressing)


PPPOE = Service(
    "pppoe", "pppoe", "broadband", "broadband", RECORDS_PER_BROADBAND_USER,
    S_USAGE_PPPOE, S_FLOWS_PPPOE, True, provision_pppoe,
)  # fmt: skip
IPOE = Service(
    "ipoe", "ipoe", "broadband", "broadband_ipoe", RECORDS_PER_BROADBAND_USER,
    S_USAGE_IPOE, S_FLOWS_IPOE, True, provision_ipoe,
)  # fmt: skip
MOBILE = Service(
    "mobile", None, "mobile", "mobile", RECORDS_PER_MOBILE_NUMBER,
    S_USAGE_MOBILE, S_FLOWS_MOBILE, False, provision_mobile,
)  # fmt: skip


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


def user_week_frame(users: Users, service: Service, weekly: np.ndarray) -> pl.DataFrame:
    """Truth rows: the users' true weekly IN/OUT bytes."""
    ids, n = users.ids, len(users.ids)
    other = "msisdn" if users.id_column == "subscription_id" else "subscription_id"
    return pl.DataFrame(
        {
            "subscription_id": ids if users.id_column == "subscription_id" else [None] * n,
            "msisdn": ids if users.id_column == "msisdn" else [None] * n,
            "access_protocol": [service.access_protocol] * n,
            "service": [service.usage] * n,
            "service_class": world.class_names(users.enterprise),
            "true_in_bytes": weekly[:, 0],
            "true_out_bytes": weekly[:, 1],
        },
        schema_overrides={other: pl.String, "access_protocol": pl.String},
    )


def _record_unattributable(
    out: WeekOutput, service: str, stray_true: np.ndarray, cells: Cells, n: int
) -> None:
    entry = out.unattributable.setdefault(
        service, {"true_in_bytes": 0.0, "true_out_bytes": 0.0, "sampled_estimate_bytes": 0.0}
    )
    entry["true_in_bytes"] += float(stray_true[0])
    entry["true_out_bytes"] += float(stray_true[1])
    entry["sampled_estimate_bytes"] += float(cells.octets.astype(np.float64).sum() * n)


def simulate_service(
    out: WeekOutput, service: Service, users: Users, week: Week, seed: int, raw_dir: Path
) -> None:
    """One service's week: true usage, subscriber files, truth rows, then its exporters' flows."""
    usage_rng = world.week_rng(seed, week.start, service.usage_stream)
    weekly = weekly_usage(service.usage, users.enterprise, week, usage_rng)
    weekly, addressing = service.provision(out, users, weekly, week, seed, raw_dir)
    if week.role == "analysis":
        out.user_week.append(user_week_frame(users, service, weekly))

    rng = world.week_rng(seed, week.start, service.flows_stream)
    exporters = world.exporters_of(service.name)
    mix = PortMix.from_frame(model.port_mix(service.usage, week.start.year))
    hour_w = model.hourly_weights(service.usage, week.start, week.role)
    interval = np.array([e.sampling_interval for e in exporters])[users.home]
    truth = out.port_truth.setdefault(service.port_truth, PortTruth())
    cells = flows.sample_user_cells(
        weekly, interval.astype(np.float64), hour_w, mix,
        service.records_per_user * len(users.ids), truth, rng,
    )  # fmt: skip
    flows.fill_server_ports(cells, mix, rng)
    f = flows.flow_arrays(cells, mix, *addressing.users(cells, rng), rng)
    home = users.home[cells.user]
    parts: dict[int, list[dict[str, np.ndarray]]] = {}
    for k in range(len(exporters)):
        rows = np.flatnonzero(home == k)  # one selection per exporter, applied to every column
        parts[k] = [{c: v[rows] for c, v in f.items()}]

    # traffic of no subscriber: e.g. released addresses in their cooldown, undelegated prefixes
    for k, exporter in enumerate(exporters if service.unattributable else []):
        stray_true = flows.STRAY_SHARE * weekly[users.home == k].sum(axis=0)
        stray = flows.sample_stray_cells(
            stray_true, exporter.sampling_interval, hour_w, mix, truth, rng
        )
        flows.fill_server_ports(stray, mix, rng)
        parts[k].append(flows.flow_arrays(stray, mix, *addressing.strays(stray, k, rng), rng))
        _record_unattributable(out, service.name, stray_true, stray, exporter.sampling_interval)

    for k, exporter in enumerate(exporters):
        written, n = write_exporter_week(
            flows.concat_flows(parts[k]), exporter, week, raw_dir, out.form
        )
        out.add_files("", written)
        out.records[exporter.name] = out.records.get(exporter.name, 0) + n


def simulate_week(
    week: Week, pop: world.Population, seed: int, raw_dir: Path, with_mobile: bool, form: FlowForm
) -> WeekOutput:
    """All raw files of one week (and its truth pieces), flows written as `form` says."""
    out = WeekOutput(form=form)
    pppoe, ipoe = world.access_protocols(pop, week.start)
    simulate_service(out, PPPOE, subscription_users(pop, np.flatnonzero(pppoe), pop.sub_bras),
                     week, seed, raw_dir)  # fmt: skip
    simulate_service(out, IPOE, subscription_users(pop, np.flatnonzero(ipoe), pop.sub_ipoe_gw),
                     week, seed, raw_dir)  # fmt: skip
    if with_mobile:
        simulate_service(out, MOBILE, phone_users(pop), week, seed, raw_dir)
    return out
