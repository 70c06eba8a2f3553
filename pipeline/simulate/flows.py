"""Flow synthesis with real packet sampling: per (user, hour, category, direction) k ~ Poisson.

All work is vectorised across users and cells; loops run over user chunks, exporters and hour files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.simulate import world
from pipeline.simulate.sessions import IpoeLeases, PppoeSessions

HOURS_PER_WEEK = 168
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MIN_ACTIVE_HOURS = 3
CATEGORY_SPREAD_SIGMA = 0.35  # per-user variation of the category mix (log-normal)
CATEGORY_RAKING_ROUNDS = 3
HOUR_SPREAD_SIGMA = 0.25  # per-user spread of bytes across active hours (median user)
ACTIVE_HOURS_EXPONENT = 0.75  # active hours ∝ (expected sampled packets)^this
USERS_PER_SIZE_STRATUM = 50  # hours are drawn jointly for users of similar bytes per hour
OCTETS_JITTER_SIGMA = 0.05
CELLS_PER_CHUNK = 3_000_000
SNAP_WINDOW_MS = 600_000  # traffic drawn in a session gap is moved into the next session's start
STRAY_SHARE = 0.01  # of an exporter's bytes, from addresses with no session or lease
STRAY_PACKETS_PER_CELL = 4.0
KIND_SERVER, KIND_P2P, KIND_NOPORT = 0, 1, 2


@dataclass(frozen=True)
class PortMix:
    """model.port_mix as arrays; one entry per traffic category."""

    protocol: np.ndarray  # uint8
    server_port: np.ndarray  # int64, -1 for p2p / noport
    kind: np.ndarray  # int8 KIND_*
    share: np.ndarray  # float64, sums to 1
    bytes_per_packet: np.ndarray  # (C, 2) float64: [:, 0] upload (IN), [:, 1] download (OUT)

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> PortMix:
        kinds = {"server": KIND_SERVER, "p2p": KIND_P2P, "noport": KIND_NOPORT}
        share = df["share"].to_numpy().astype(np.float64)
        server_port = df["server_port"].to_numpy().astype(np.int64)
        if np.any(server_port >= 65535):
            raise ValueError("port_mix: server_port must be below 65535")
        return cls(
            protocol=df["protocol"].to_numpy().astype(np.uint8),
            server_port=server_port,
            kind=np.array([kinds[k] for k in df["kind"].to_list()], dtype=np.int8),
            share=share / share.sum(),
            bytes_per_packet=np.stack(
                [df["bytes_per_packet_in"].to_numpy(), df["bytes_per_packet_out"].to_numpy()],
                axis=1,
            ).astype(np.float64),
        )


@dataclass
class Cells:
    """Exported records of sampled traffic before addresses and times are attached."""

    user: np.ndarray  # int64, -1 for traffic of no user (stray)
    hour: np.ndarray  # int64 hour of week 0..167 (local)
    category: np.ndarray  # int64 index into PortMix
    upload: np.ndarray  # bool: user sends (IN, flow_direction 0)
    packets: np.ndarray  # uint64 sampled packets
    octets: np.ndarray  # uint64 sampled octets
    user_port: np.ndarray  # int64 (p2p: drawn with the cell; else filled later)
    remote_port: np.ndarray  # int64


class PortTruth:
    """True bytes by (protocol, min-port) for one exporter service, including unexported cells."""

    def __init__(self) -> None:
        self.bytes_by_protocol: dict[int, np.ndarray] = {}  # protocol -> (65536,) bytes by port

    def add(self, protocol: int, port_min: np.ndarray, true_bytes: np.ndarray) -> None:
        """Add true bytes of one protocol by min-port (0 for protocols without ports)."""
        per_port = np.bincount(
            np.asarray(port_min, dtype=np.int64).ravel(),
            weights=np.asarray(true_bytes, dtype=np.float64).ravel(),
            minlength=65536,
        )
        acc = self.bytes_by_protocol.setdefault(int(protocol), np.zeros(65536))
        acc += per_port

    def add_categories(
        self, mix: PortMix, category: np.ndarray, port_min: np.ndarray, true_bytes: np.ndarray
    ) -> None:
        """Add cells of mixed categories (grouped by protocol)."""
        protocol = mix.protocol[category]
        for p in np.unique(protocol).tolist():
            sel = protocol == p
            self.add(p, port_min[sel], true_bytes[sel])

    def frame(self, service: str) -> pl.DataFrame:
        """service, protocol, port_min, true_bytes (rows with bytes only)."""
        frames = []
        for p, per_port in sorted(self.bytes_by_protocol.items()):
            ports = np.flatnonzero(per_port > 0)
            frames.append(
                pl.DataFrame(
                    {
                        "service": [service] * len(ports),
                        "protocol": np.full(len(ports), p, dtype=np.int64),
                        "port_min": ports.astype(np.int64),
                        "true_bytes": per_port[ports],
                    },
                    schema_overrides={"service": pl.String},
                )
            )
        return pl.concat(frames)


def active_hour_targets(
    expected_packets: np.ndarray, lam_ucd: np.ndarray, max_records: int
) -> np.ndarray:
    """Active hours per user ∝ (expected sampled packets)^ACTIVE_HOURS_EXPONENT, scaled to fit the
    record budget (heavy users, whose hours dominate the hourly totals, get many hours)."""

    def expected_records(n_h: np.ndarray) -> float:
        per_hour = lam_ucd / n_h[:, None, None]
        return float((n_h[:, None, None] * -np.expm1(-per_hour)).sum())

    def targets(alpha: float) -> np.ndarray:
        n_h = np.round(alpha * expected_packets**ACTIVE_HOURS_EXPONENT)
        return np.clip(n_h, MIN_ACTIVE_HOURS, HOURS_PER_WEEK)

    full = np.full(len(expected_packets), float(HOURS_PER_WEEK))
    if expected_records(full) <= max_records:
        return full
    lo, hi = -10.0, 8.0  # bisection on log10(alpha)
    for _ in range(40):
        mid = (lo + hi) / 2
        if expected_records(targets(10**mid)) > max_records:
            hi = mid
        else:
            lo = mid
    return targets(10**lo)


def choose_active_hours(
    n_hours: np.ndarray,
    hour_w: dict[str, np.ndarray],
    user_bytes: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, hour, weight (n, 2)) per active user-hour; weights sum to 1 per user and direction.

    User u is active in hour h with probability π = min(1, c_u·w_h) (c_u so the expected count
    is n_hours[u]) and weighted w/π, so the population's bytes follow hour_w in expectation. The
    draws are coordinated across users: per hour, one systematic sample over users grouped by
    bytes per active hour, so each hour gets Σπ ± 1 users of each size (hourly totals smooth
    at ~10^4 users). Per-hour jitter shrinks as 1/sqrt(user_bytes / median): a heavy user is
    many sessions at once."""
    w_dir = np.stack([hour_w["IN"], hour_w["OUT"]], axis=1)  # (168, 2)
    w_dir = w_dir / w_dir.sum(axis=0)
    w_avg = w_dir.mean(axis=1)
    c_grid = np.logspace(-1, 6, 2000)
    g = np.minimum(1.0, c_grid[:, None] * w_avg[None, :]).sum(axis=1)
    c_user = np.interp(n_hours, g, c_grid)
    incl_p = np.minimum(1.0, c_user[:, None] * w_avg[None, :])  # (U, 168)
    # per hour: users in strata of similar bytes per hour, shuffled within a stratum (afresh each
    # hour, so that no two hours pick the same users), then a tick every 1.0 of cumulated π
    size_rank = np.empty(len(n_hours), dtype=np.int64)
    size_rank[np.argsort(user_bytes / n_hours, kind="stable")] = np.arange(len(n_hours))
    sort_key = (size_rank // USERS_PER_SIZE_STRATUM)[:, None] + rng.random(incl_p.shape)
    order = np.argsort(sort_key, axis=0)  # (U, 168)
    cum = np.cumsum(np.take_along_axis(incl_p, order, axis=0), axis=0)
    offset = rng.random(HOURS_PER_WEEK)
    ticks = np.floor(cum - offset)
    before = np.vstack([np.floor(-offset)[None, :], ticks[:-1]])
    chosen = np.zeros(incl_p.shape, dtype=bool)
    np.put_along_axis(chosen, order, ticks > before, axis=0)
    # every user has at least one active hour, drawn by the hour weights: forcing them all into
    # the heaviest hour made a one-hour spike (Sunday 21:00) in the weekly port-class profiles
    none = np.flatnonzero(~chosen.any(axis=1))
    chosen[none, rng.choice(HOURS_PER_WEEK, size=len(none), p=w_avg / w_avg.sum())] = True
    user, hour = np.nonzero(chosen)
    weight = w_dir[hour] / incl_p[user, hour][:, None]
    relative_size = np.maximum(user_bytes, 1.0) / max(float(np.median(user_bytes)), 1.0)
    sigma = HOUR_SPREAD_SIGMA * np.minimum(1.0, 1.0 / np.sqrt(relative_size))
    weight *= np.exp(sigma[user][:, None] * rng.standard_normal(weight.shape))
    for d in range(2):
        weight[:, d] /= np.bincount(user, weights=weight[:, d], minlength=len(n_hours))[user]
    return user.astype(np.int64), hour.astype(np.int64), weight


def sample_user_cells(
    weekly_bytes: np.ndarray,
    sampling_interval: np.ndarray,
    hour_w: dict[str, np.ndarray],
    mix: PortMix,
    max_records: int,
    truth: PortTruth,
    rng: np.random.Generator,
) -> Cells:
    """Spread each user's true weekly bytes (U, 2: IN, OUT) over hours × categories and sample.

    Adds every cell's true bytes to `truth` (p2p cells by their own drawn ports)."""
    n_users, n_cat = len(weekly_bytes), len(mix.share)
    cat_share = mix.share[None, :] * np.exp(
        CATEGORY_SPREAD_SIGMA * rng.standard_normal((n_users, n_cat))
    )
    cat_share /= cat_share.sum(axis=1, keepdims=True)
    # the renormalised spread pulls big categories below their share (tcp/443: 53.5 % → 52.0 %);
    # rake the users' mixes so the population's bytes follow mix.share again
    user_total = weekly_bytes.sum(axis=1)
    for _ in range(CATEGORY_RAKING_ROUNDS):
        population_share = user_total @ cat_share / max(float(user_total.sum()), 1.0)
        cat_share *= np.divide(
            mix.share, population_share, out=np.ones(n_cat), where=population_share > 0
        )
        cat_share /= cat_share.sum(axis=1, keepdims=True)
    # λ per (user, category, direction) over the whole week
    lam_ucd = (
        weekly_bytes[:, None, :]
        * cat_share[:, :, None]
        / mix.bytes_per_packet[None, :, :]
        / sampling_interval[:, None, None]
    )
    n_hours = active_hour_targets(lam_ucd.sum(axis=(1, 2)), lam_ucd, max_records)
    uh_user, uh_hour, uh_weight = choose_active_hours(
        n_hours, hour_w, weekly_bytes.sum(axis=1), rng
    )

    # truth of non-p2p categories does not depend on the hour split: sum it exactly
    true_cd = (weekly_bytes[:, None, :] * cat_share[:, :, None]).sum(axis=(0, 2))
    fixed = np.flatnonzero(mix.kind != KIND_P2P)
    truth.add_categories(mix, fixed, np.maximum(mix.server_port[fixed], 0), true_cd[fixed])
    p2p_cats = np.flatnonzero(mix.kind == KIND_P2P)

    parts: list[Cells] = []
    chunk = max(1, CELLS_PER_CHUNK // (2 * n_cat))
    for lo in range(0, len(uh_user), chunk):
        u = uh_user[lo : lo + chunk]
        true_b = (weekly_bytes[u][:, None, :] * uh_weight[lo : lo + chunk][:, None, :]) * cat_share[
            u
        ][:, :, None]  # (n, C, 2)
        lam = true_b / mix.bytes_per_packet[None, :, :] / sampling_interval[u][:, None, None]
        k = rng.poisson(lam)
        user_port = np.zeros(true_b.shape, dtype=np.int64)
        remote_port = np.zeros(true_b.shape, dtype=np.int64)
        if len(p2p_cats):
            shape = (len(u), len(p2p_cats), 2)
            user_port[:, p2p_cats, :] = rng.integers(1024, 65536, shape)
            remote_port[:, p2p_cats, :] = rng.integers(1024, 65536, shape)
            for c in p2p_cats.tolist():
                port_min = np.minimum(user_port[:, c, :], remote_port[:, c, :])
                truth.add(int(mix.protocol[c]), port_min, true_b[:, c, :])
        i, c, d = np.nonzero(k)
        parts.append(
            _cells(
                u[i],
                uh_hour[lo : lo + chunk][i],
                c,
                d,
                k[i, c, d],
                mix,
                rng,
                user_port[i, c, d],
                remote_port[i, c, d],
            )  # fmt: skip
        )
    return concat_cells(parts)


def _cells(user, hour, cat, direction, k, mix: PortMix, rng, user_port, remote_port) -> Cells:
    """Exported cells with octets = k × bytes-per-packet × small jitter."""
    bpp = mix.bytes_per_packet[cat, direction]
    jitter = np.exp(OCTETS_JITTER_SIGMA * rng.standard_normal(len(k)) - OCTETS_JITTER_SIGMA**2 / 2)
    octets = np.maximum(np.round(k * bpp * jitter), k).astype(np.uint64)
    return Cells(
        user.astype(np.int64), hour.astype(np.int64), cat.astype(np.int64), direction == 0,
        k.astype(np.uint64), octets, user_port.astype(np.int64), remote_port.astype(np.int64),
    )  # fmt: skip


def concat_cells(parts: list[Cells]) -> Cells:
    names = Cells.__dataclass_fields__
    return Cells(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


def sample_stray_cells(
    true_bytes: np.ndarray,
    sampling_interval: int,
    hour_w: dict[str, np.ndarray],
    mix: PortMix,
    truth: PortTruth,
    rng: np.random.Generator,
) -> Cells:
    """Traffic of no user (true IN, OUT bytes given): cells of a few sampled packets each."""
    parts = []
    for d, name in enumerate(("IN", "OUT")):
        mean_cell = STRAY_PACKETS_PER_CELL * float(mix.bytes_per_packet[:, d] @ mix.share)
        mean_cell *= sampling_interval
        n = max(1, int(true_bytes[d] / mean_cell))
        cat = rng.choice(len(mix.share), size=n, p=mix.share)
        size = rng.exponential(1.0, n)
        true_b = true_bytes[d] * size / size.sum()
        hour = rng.choice(HOURS_PER_WEEK, size=n, p=hour_w[name] / hour_w[name].sum())
        user_port = rng.integers(1024, 65536, n)
        remote_port = rng.integers(1024, 65536, n)
        p2p = mix.kind[cat] == KIND_P2P
        port_min = np.where(
            p2p, np.minimum(user_port, remote_port), np.maximum(mix.server_port[cat], 0)
        )
        truth.add_categories(mix, cat, port_min, true_b)
        k = rng.poisson(true_b / mix.bytes_per_packet[cat, d] / sampling_interval)
        keep = k > 0
        parts.append(
            _cells(
                np.full(keep.sum(), -1),
                hour[keep],
                cat[keep],
                np.full(keep.sum(), d),
                k[keep],
                mix,
                rng,
                user_port[keep],
                remote_port[keep],
            )  # fmt: skip
        )
    return concat_cells(parts)


def fill_server_ports(cells: Cells, mix: PortMix, rng: np.random.Generator) -> None:
    """Server categories: server port remote, ephemeral client port above it; noport: zeros."""
    kind = mix.kind[cells.category]
    sp = mix.server_port[cells.category]
    server = kind == KIND_SERVER
    low = np.maximum(49152, sp + 1)
    client = low + np.floor(rng.random(len(sp)) * (65536 - low)).astype(np.int64)
    cells.user_port = np.where(server, client, np.where(kind == KIND_P2P, cells.user_port, 0))
    cells.remote_port = np.where(server, sp, np.where(kind == KIND_P2P, cells.remote_port, 0))


def start_times_ms(
    cells: Cells, hour_starts_ms: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A uniform start inside each cell's local hour (`hour_starts_ms`: the week's 168 local hour
    starts and its end, config.local_hour_starts_ms). An hour that DST repeats spans both
    occurrences; one it skips lasts 0 ms, so its traffic falls in the hour after it."""
    starts = np.asarray(hour_starts_ms, dtype=np.int64)
    length = np.diff(starts)
    length = np.where(length > 0, length, HOUR_MS)
    u = rng.integers(0, HOUR_MS, len(cells.hour))
    return starts[cells.hour] + u * length[cells.hour] // HOUR_MS


def snap_into_sessions(
    user: np.ndarray,
    t_ms: np.ndarray,
    sessions: PppoeSessions,
    week_start_ms: int,
    week_end_ms: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(time, session row) per record: times in a gap move to the next (or previous) session."""
    s_start = sessions.start_s * 1000
    s_stop = sessions.stop_s * 1000
    key = (sessions.user << 42) | s_start
    idx = np.searchsorted(key, (user << 42) | t_ms, side="right") - 1
    in_gap = t_ms >= s_stop[idx]
    nxt = np.minimum(idx + 1, len(key) - 1)
    has_next = in_gap & (sessions.user[nxt] == user) & (s_start[nxt] < week_end_ms)
    span_next = np.minimum(np.minimum(s_stop[nxt], week_end_ms) - s_start[nxt], SNAP_WINDOW_MS)
    t_next = s_start[nxt] + (rng.random(len(t_ms)) * span_next).astype(np.int64)
    span_prev = np.minimum(s_stop[idx] - np.maximum(s_start[idx], week_start_ms), SNAP_WINDOW_MS)
    t_prev = (
        s_stop[idx] - 1 - (rng.random(len(t_ms)) * np.maximum(span_prev - 1, 0)).astype(np.int64)
    )
    t_new = np.where(has_next, t_next, np.where(in_gap, t_prev, t_ms))
    row = np.where(has_next, nxt, idx)
    return np.clip(t_new, week_start_ms, week_end_ms - 1), row


def lease_at(
    user: np.ndarray, t_ms: np.ndarray, leases: IpoeLeases
) -> np.ndarray:  # fmt: skip
    """Row of the IPoE lease valid for each (user, time)."""
    key = (leases.user << 42) | (leases.valid_from_s * 1000)
    return np.searchsorted(key, (user << 42) | t_ms, side="right") - 1


def flow_arrays(
    cells: Cells,
    mix: PortMix,
    start_ms: np.ndarray,
    is_v6: np.ndarray,
    user_v4: np.ndarray,
    user_hi: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Writer columns (ipfix_writer.FLOW_COLUMNS): the user is src for uploads, dst otherwise.
    A subscriber's IPv6 interface identifier (lower 64 bits) is one per user and UTC day (a
    temporary address, RFC 8981's one-day preferred lifetime); traffic of no user draws one per
    record."""
    n = len(start_ms)
    drawn_lo = rng.integers(0, 2**63, n, dtype=np.uint64)  # drawn for every record, as before
    day = (start_ms // DAY_MS).astype(np.uint64)
    daily_lo = world.mix64((cells.user.astype(np.uint64) << np.uint64(20)) ^ day) >> np.uint64(1)
    user_lo = np.where(cells.user >= 0, daily_lo, drawn_lo)
    r4 = world.remote_v4(rng, n)
    r_hi, r_lo = world.remote_v6(rng, n)
    up = cells.upload
    duration = np.minimum(rng.exponential(15_000.0, n) * np.sqrt(cells.packets), 1_200_000)
    zero64 = np.zeros(n, dtype=np.uint64)
    v4_user = np.where(is_v6, 0, user_v4).astype(np.uint32)
    v4_remote = np.where(is_v6, 0, r4).astype(np.uint32)
    hi_user, lo_user = np.where(is_v6, user_hi, zero64), np.where(is_v6, user_lo, zero64)
    hi_remote, lo_remote = np.where(is_v6, r_hi, zero64), np.where(is_v6, r_lo, zero64)
    return {
        "flow_start_ms": start_ms.astype(np.int64),
        "flow_end_ms": (start_ms + duration.astype(np.int64)).astype(np.int64),
        "ip_version": np.where(is_v6, 6, 4).astype(np.uint8),
        "src_v4": np.where(up, v4_user, v4_remote).astype(np.uint32),
        "dst_v4": np.where(up, v4_remote, v4_user).astype(np.uint32),
        "src_v6_hi": np.where(up, hi_user, hi_remote).astype(np.uint64),
        "src_v6_lo": np.where(up, lo_user, lo_remote).astype(np.uint64),
        "dst_v6_hi": np.where(up, hi_remote, hi_user).astype(np.uint64),
        "dst_v6_lo": np.where(up, lo_remote, lo_user).astype(np.uint64),
        "src_port": np.where(up, cells.user_port, cells.remote_port).astype(np.uint16),
        "dst_port": np.where(up, cells.remote_port, cells.user_port).astype(np.uint16),
        "protocol": mix.protocol[cells.category],
        "flow_direction": np.where(up, 0, 1).astype(np.uint8),
        "octets": cells.octets.astype(np.uint64),
        "packets": cells.packets.astype(np.uint64),
    }


def concat_flows(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
