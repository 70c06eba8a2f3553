"""PPPoE sessions with a recycling address pool, FreeRADIUS detail files, IPoE prefix leases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.atomic import write_bytes_atomic
from pipeline.config import utc_offsets_ms
from pipeline.simulate import world

INTERIM_INTERVAL_S = 6 * 3600
ADDRESS_COOLDOWN_S = 120  # a released address is not handed out again for 2 minutes
IPOE_RENUMBERED_SHARE = 0.03
TERMINATE_CAUSES = ("User-Request", "Lost-Carrier", "Idle-Timeout", "Session-Timeout", "NAS-Reboot")
TERMINATE_CAUSE_P = (0.55, 0.25, 0.1, 0.07, 0.03)
REALM = "bb.example.jp"


@dataclass(frozen=True)
class PppoeSessions:
    """Sessions sorted by (user, start); times in epoch seconds, stop may lie past the data end."""

    user: np.ndarray  # int64 index into the week's PPPoE user arrays
    start_s: np.ndarray  # int64
    stop_s: np.ndarray  # int64
    bras: np.ndarray  # int64 index into world.exporters_of("pppoe")
    framed_v4: np.ndarray  # uint32
    session_id: np.ndarray  # str


@dataclass(frozen=True)
class IpoeLeases:
    """Prefix leases sorted by (user, valid_from); times in epoch seconds, valid_to exclusive."""

    user: np.ndarray  # int64 index into the week's IPoE user arrays
    prefix_hi: np.ndarray  # uint64 upper 64 bits of the /56
    valid_from_s: np.ndarray
    valid_to_s: np.ndarray


def session_times(
    enterprise: np.ndarray, window_start_s: int, window_end_s: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, start_s, stop_s) of back-to-back sessions with short gaps covering the window."""
    n = len(enterprise)
    median_len_s = np.where(enterprise, 48 * 3600.0, 8 * 3600.0)
    block = 16
    starts, stops = [], []
    cursor = np.full(n, float(window_start_s))
    first = True
    while True:
        length = np.exp(np.log(median_len_s)[:, None] + 1.1 * rng.standard_normal((n, block)))
        length = np.clip(length, 300.0, 10 * 86400.0).round()
        gap = np.clip(np.exp(np.log(60.0) + 1.0 * rng.standard_normal((n, block))), 3, 3600)
        gap = gap.round()
        if first:  # the first session began before the window: a random point of it is "now"
            gap[:, 0] = -np.floor(rng.random(n) * length[:, 0])
            first = False
        begin = cursor[:, None] + np.cumsum(gap + length, axis=1) - length
        starts.append(begin)
        stops.append(begin + length)
        cursor = stops[-1][:, -1]
        if cursor.min() >= window_end_s:
            break
    start = np.concatenate(starts, axis=1)
    stop = np.concatenate(stops, axis=1)
    keep = start < window_end_s
    user = np.broadcast_to(np.arange(n)[:, None], start.shape)[keep]
    return user.astype(np.int64), start[keep].astype(np.int64), stop[keep].astype(np.int64)


def assign_pool_addresses(
    start_s: np.ndarray, stop_s: np.ndarray, pool_base: int, window_end_s: int
) -> np.ndarray:
    """Framed-IP per session from one BRAS pool: a released address is reused after the cooldown.

    The pool is a FIFO of released addresses: in event order (time, stops first, session), a
    stop before the window end releases its address, ready ADDRESS_COOLDOWN_S later; a start takes
    the oldest ready one, else a fresh one. Solved without a loop: with R_j the releases ready by
    start j, the pops before start j+1 are P_{j+1} = min(P_j + 1, R_j) = j + min(1, min_{i<=j}
    (R_i - i)); the k-th pop reuses the address of the k-th release, followed to its fresh root.
    Every session must end after it starts (session_times: at least 300 s)."""
    n = len(start_s)
    sessions = np.arange(n)
    starts = np.lexsort((sessions, start_s))  # sessions in start-event order
    released = np.flatnonzero(stop_s < window_end_s)
    releases = released[np.lexsort((released, stop_s[released]))]  # the FIFO's order
    ready = stop_s[releases] + ADDRESS_COOLDOWN_S
    ready_by_start = np.searchsorted(ready, start_s[starts], side="right")
    j = np.arange(n)
    pops_after = j + np.minimum(1, np.minimum.accumulate(ready_by_start - j)) if n else j
    pops_before = np.concatenate([[0], pops_after[:-1]]).astype(np.int64)
    pop = pops_after > pops_before
    reuses = sessions.copy()  # the session whose address each one takes (itself: a fresh one)
    reuses[starts[pop]] = releases[pops_before[pop]]
    fresh = np.zeros(n, dtype=np.int64)
    fresh[starts[~pop]] = (j - pops_before)[~pop]  # fresh addresses in order of first use
    while n and not np.array_equal(hop := reuses[reuses], reuses):  # pointer jumping to roots
        reuses = hop
    if n - int(pop.sum()) >= 65_536:
        raise ValueError("BRAS pool exhausted: more than a /16 of concurrent sessions")
    return (pool_base + fresh[reuses]).astype(np.uint32)


def generate_pppoe_sessions(
    enterprise: np.ndarray,
    bras: np.ndarray,
    window_start_s: int,
    window_end_s: int,
    week_start: dt.date,
    rng: np.random.Generator,
) -> PppoeSessions:
    """All sessions of the week's PPPoE users, with addresses from their BRAS's pool."""
    user, start, stop = session_times(enterprise, window_start_s, window_end_s, rng)
    session_bras = bras[user]
    framed = np.zeros(len(user), dtype=np.uint32)
    session_id = np.empty(len(user), dtype=object)
    for k in range(len(world.exporters_of("pppoe"))):
        rows = np.flatnonzero(session_bras == k)
        pool_base = world.BRAS_POOL_BASE + (k << 16)
        framed[rows] = assign_pool_addresses(start[rows], stop[rows], pool_base, window_end_s)
        by_time = rows[np.lexsort((user[rows], start[rows]))]
        prefix = f"{(week_start.toordinal() * 16 + k) & 0xFFFF:04x}"
        session_id[by_time] = [f"{prefix}{i:06x}" for i in range(len(by_time))]
    return PppoeSessions(user, start, stop, session_bras, framed, session_id.astype(str))


def radius_events(
    s: PppoeSessions, window_start_s: int, window_end_s: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session row, status 0 Start / 1 Interim / 2 Stop, time s) of the events in the window."""
    rows = np.arange(len(s.user))
    last = np.minimum(s.stop_s, window_end_s) - 1
    n_interim = np.maximum((last - s.start_s) // INTERIM_INTERVAL_S, 0)
    interim_row = np.repeat(rows, n_interim)
    offsets = np.arange(len(interim_row)) - np.repeat(np.cumsum(n_interim) - n_interim, n_interim)
    interim_t = s.start_s[interim_row] + (offsets + 1) * INTERIM_INTERVAL_S
    row = np.concatenate([rows, interim_row, rows])
    status = np.concatenate(
        [np.zeros(len(rows)), np.ones(len(interim_row)), np.full(len(rows), 2)]
    ).astype(np.int8)
    t = np.concatenate([s.start_s, interim_t, s.stop_s])
    keep = (t >= window_start_s) & (t < window_end_s)
    return row[keep], status[keep], t[keep]


def _gather(texts: Sequence[str] | np.ndarray, index: np.ndarray) -> pl.Series:
    """texts[index] as a String series (no per-row Python objects)."""
    return pl.Series(values=[str(x) for x in texts], dtype=pl.String).gather(index)


def write_radius_detail(
    s: PppoeSessions,
    sub_ids: list[str],
    classes: np.ndarray,
    prefixes_text: list[str],
    in_bytes_per_s: np.ndarray,
    out_bytes_per_s: np.ndarray,
    window_start_s: int,
    window_end_s: int,
    radius_dir: Path,
    rng: np.random.Generator,
    params: dict[str, Any] | None = None,
) -> dict[str, bytes]:
    """Write `detail-YYYYMMDD` files (ARCHITECTURE §1.1) by local event date (the report's time
    zone in `params`, DST included); name → bytes."""
    row, status, t = radius_events(s, window_start_s, window_end_s)
    user = s.user[row]
    session_time = t - s.start_s[row]
    octets_in = (in_bytes_per_s[user] * session_time).astype(np.int64)
    octets_out = (out_bytes_per_s[user] * session_time).astype(np.int64)
    cause_all = rng.choice(len(TERMINATE_CAUSES), size=len(s.user), p=TERMINATE_CAUSE_P)
    nas = [e.address for e in world.exporters_of("pppoe")]
    df = pl.DataFrame(
        {  # text columns: per-user / per-session strings gathered per event (in Rust)
            "t": t,
            "status": status,
            "sid": _gather(s.session_id, row),
            "user_name": _gather(sub_ids, user),
            "cls": _gather(classes, user),
            "framed": _gather(world.ipv4_text(s.framed_v4), row),
            "prefix": _gather(prefixes_text, user),
            "session_time": session_time,
            "in_lo": octets_in % 2**32,
            "in_gw": octets_in // 2**32,
            "out_lo": octets_out % 2**32,
            "out_gw": octets_out // 2**32,
            "nas": _gather(nas, s.bras[row]),
            "cause": _gather(TERMINATE_CAUSES, cause_all[row]),
        }
    ).sort(["t", "sid", "status"])
    offset_s = utc_offsets_ms(df["t"].to_numpy() * 1000, params) // 1000
    df = df.with_columns(local_s=pl.col("t") + pl.Series(offset_s, dtype=pl.Int64))
    local = pl.from_epoch("local_s", time_unit="s")
    status_name = (
        pl.when(pl.col("status") == 0)
        .then(pl.lit("Start"))
        .when(pl.col("status") == 1)
        .then(pl.lit("Interim-Update"))
        .otherwise(pl.lit("Stop"))
    )
    counters = pl.format(
        "\tAcct-Session-Time = {}\n\tAcct-Input-Octets = {}\n\tAcct-Output-Octets = {}\n"
        "\tAcct-Input-Gigawords = {}\n\tAcct-Output-Gigawords = {}\n",
        "session_time", "in_lo", "out_lo", "in_gw", "out_gw",
    )  # fmt: skip
    block = pl.concat_str(
        [
            local.dt.strftime("%a %b %e %H:%M:%S %Y"),
            pl.lit("\n\tAcct-Status-Type = "),
            status_name,
            pl.format(
                '\n\tAcct-Session-Id = "{}"\n\tUser-Name = "{}@' + REALM + '"\n\tClass = "{}"\n'
                "\tFramed-IP-Address = {}\n\tDelegated-IPv6-Prefix = {}\n\tEvent-Timestamp = {}\n",
                "sid",
                "user_name",
                "cls",
                "framed",
                "prefix",
                "t",
            ),  # fmt: skip
            pl.when(pl.col("status") > 0).then(counters).otherwise(pl.lit("")),
            pl.format("\tNAS-IP-Address = {}\n", "nas"),
            pl.when(pl.col("status") == 2)
            .then(pl.format("\tAcct-Terminate-Cause = {}\n", "cause"))
            .otherwise(pl.lit("")),
            pl.lit("\n"),
        ]
    )
    files = (
        df.select(day=local.dt.strftime("%Y%m%d"), block=block)
        .group_by("day", maintain_order=True)
        .agg(pl.col("block").str.join(""))
        .sort("day")
    )
    written: dict[str, bytes] = {}
    for day, text in files.iter_rows():
        data = text.encode("ascii")
        write_bytes_atomic(radius_dir / f"detail-{day}", data)
        written[f"detail-{day}"] = data
    return written


def generate_ipoe_leases(
    user_rows: np.ndarray, window_start_s: int, window_end_s: int, rng: np.random.Generator
) -> IpoeLeases:
    """One /56 per IPoE subscription (stable across weeks); a few are re-numbered mid-week."""
    n = len(user_rows)
    user = np.arange(n, dtype=np.int64)
    valid_from = window_start_s - rng.integers(1, 60, n) * 86400 - rng.integers(0, 86400, n)
    valid_to = window_end_s + rng.integers(1, 30, n) * 86400 + rng.integers(0, 86400, n)
    prefix_idx = world.IPOE_PREFIX_BASE + np.asarray(user_rows, dtype=np.int64)
    moved = np.flatnonzero(rng.random(n) < IPOE_RENUMBERED_SHARE)
    t_move = rng.integers(window_start_s + 2 * 86400, window_end_s - 86400, len(moved))
    new_idx = world.IPOE_RENUMBERED_BASE + rng.choice(2**20, size=len(moved), replace=False)
    user_all = np.concatenate([user, moved])
    from_all = np.concatenate([valid_from, t_move])
    to_all = np.concatenate([valid_to, valid_to[moved]])
    to_all[moved] = t_move
    idx_all = np.concatenate([prefix_idx, new_idx])
    order = np.lexsort((from_all, user_all))
    return IpoeLeases(
        user_all[order], world.prefix_hi(idx_all[order]), from_all[order], to_all[order]
    )


def _iso_utc(seconds: np.ndarray) -> pl.Series:
    """`YYYY-MM-DDTHH:MM:SSZ` of epoch seconds."""
    return pl.from_epoch(pl.Series(seconds, dtype=pl.Int64), time_unit="s").dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def write_ipoe_leases(
    leases: IpoeLeases,
    sub_ids: list[str],
    classes: np.ndarray,
    days: list[dt.date],
    day_bounds_s: list[tuple[int, int]],
    leases_dir: Path,
) -> dict[str, bytes]:
    """Write `leases-YYYY-MM-DD.csv` with the leases valid on each local day; name → bytes."""
    table = pl.DataFrame(
        {
            "subscription_id": _gather(sub_ids, leases.user),
            "service_class": _gather(classes, leases.user),
            "delegated_prefix": world.v6_prefix_text(leases.prefix_hi, 56),
            "valid_from": _iso_utc(leases.valid_from_s),
            "valid_to": _iso_utc(leases.valid_to_s),
            "from_s": leases.valid_from_s,
            "to_s": leases.valid_to_s,
        }
    ).sort(["subscription_id", "from_s"])
    written: dict[str, bytes] = {}
    for day, (lo, hi) in zip(days, day_bounds_s, strict=True):
        rows = table.filter((pl.col("from_s") < hi) & (pl.col("to_s") > lo)).drop("from_s", "to_s")
        name = f"leases-{day.isoformat()}.csv"
        data = rows.write_csv().encode("ascii")
        write_bytes_atomic(leases_dir / name, data)
        written[name] = data
    return written
