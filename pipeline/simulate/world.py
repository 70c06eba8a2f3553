"""The simulated ISP's fixed world: scale, exporters, subscriptions, phone numbers, addresses."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from pipeline.atomic import write_text_atomic
from pipeline.simulate import model

# Address plan (documentation / shared address space; nothing here is a real subscriber).
V6_DOC_HI = np.uint64(0x20010DB8 << 32)  # 2001:db8::/32, /56 prefixes below it
PPPOE_PREFIX_BASE = 0x100000  # 24-bit /56 index: 2001:db8:1000::/36 for PPPoE delegations
PPPOE_STRAY_PREFIX_BASE = 0x700000  # never delegated: traffic here has no session
IPOE_PREFIX_BASE = 0x800000  # 2001:db8:8000::/36 for IPoE leases (one per subscription)
IPOE_RENUMBERED_BASE = 0x900000  # 2001:db8:9000::/36 for prefixes given at a mid-week re-numbering
IPOE_STRAY_PREFIX_BASE = 0xF00000  # never leased
MOBILE_PREFIX_BASE = 0xC00000  # one /64 per phone number
BRAS_POOL_BASE = (100 << 24) | (64 << 16)  # 100.64.0.0, one /16 per BRAS: 100.(64+k).0.0/16
MOBILE_V4_BASE = (10 << 24) | (128 << 16)  # 10.128.0.0/10
REMOTE_V4_LO, REMOTE_V4_HI = 20 << 24, 60 << 24  # remote servers / peers: 20.0.0.0 - 59.255.255.255
REMOTE_V6_HI = np.uint64(0x24046800 << 32)  # 2404:6800::/32-style remote space
# Remote endpoints are a fixed pool whose popularity follows Zipf's law (a few CDN and cloud servers
# carry most flows, as in an ISP's real exports); a uniform draw per record would make every remote
# address unique, which no real export looks like.
REMOTE_ENDPOINTS = 1 << 20
REMOTE_ZIPF_EXPONENT = 1.0
ENTERPRISE_SHARE_BROADBAND = 0.05
ENTERPRISE_SHARE_MOBILE = 0.10
IPOE_START = dt.date(2018, 1, 1)  # before this every subscription is PPPoE only


@dataclass(frozen=True)
class SimScale:
    """How many broadband subscriptions and mobile phone numbers the simulated ISP has."""

    broadband_subscriptions: int = 10_000
    mobile_numbers: int = 8_000

    @classmethod
    def preset(cls, name: str) -> SimScale:
        """`default` (10,000 / 8,000) or `small` (1,500 / 1,200, for tests)."""
        presets = {"default": cls(), "small": cls(1_500, 1_200)}
        if name not in presets:
            raise ValueError(f"unknown scale {name!r}; choose one of {sorted(presets)}")
        return presets[name]

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Exporter:
    """One flow exporter: name (folder), address, observation domain, service, 1-in-N sampling."""

    name: str
    address: str
    observation_domain_id: int
    service: str  # pppoe | ipoe | mobile
    sampling_interval: int


EXPORTERS: tuple[Exporter, ...] = (
    Exporter("bras01", "192.0.2.1", 101, "pppoe", 8192),
    Exporter("bras02", "192.0.2.2", 102, "pppoe", 8192),
    Exporter("bras03", "192.0.2.3", 103, "pppoe", 16384),
    Exporter("bras04", "192.0.2.4", 104, "pppoe", 16384),
    Exporter("ipoegw01", "192.0.2.11", 201, "ipoe", 8192),
    Exporter("ipoegw02", "192.0.2.12", 202, "ipoe", 16384),
    Exporter("mobile01", "192.0.2.21", 301, "mobile", 8192),
    Exporter("mobile02", "192.0.2.22", 302, "mobile", 8192),
)


def exporters_of(service: str) -> list[Exporter]:
    """Exporters of one service, in registry order."""
    return [e for e in EXPORTERS if e.service == service]


@dataclass(frozen=True)
class Population:
    """Subscriptions and phone numbers, fixed for a seed and scale across all years."""

    sub_number: np.ndarray  # int64, subscription id number (s%07d)
    sub_enterprise: np.ndarray  # bool
    sub_bras: np.ndarray  # int64 index into exporters_of("pppoe")
    sub_ipoe_gw: np.ndarray  # int64 index into exporters_of("ipoe")
    sub_ipoe_draw: np.ndarray  # U(0,1): uses IPoE once ipoe_user_fraction exceeds it
    sub_dual_draw: np.ndarray  # U(0,1): keeps PPPoE too if below dual_protocol_fraction
    sub_v6_share: np.ndarray  # share of the PPPoE user's traffic over IPv6
    msisdn_number: np.ndarray  # int64, msisdn = "0807" + 7 digits
    msisdn_enterprise: np.ndarray  # bool
    msisdn_exporter: np.ndarray  # int64 index into exporters_of("mobile")
    msisdn_v6_share: np.ndarray


def build_population(scale: SimScale, seed: int) -> Population:
    """Draw the population deterministically from (seed, 'population')."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x505]))
    n_bb, n_mob = scale.broadband_subscriptions, scale.mobile_numbers
    sub_number = np.sort(rng.choice(9_000_000, size=n_bb, replace=False)) + 100_000
    msisdn_number = np.sort(rng.choice(10_000_000, size=n_mob, replace=False))
    return Population(
        sub_number=sub_number.astype(np.int64),
        sub_enterprise=rng.random(n_bb) < ENTERPRISE_SHARE_BROADBAND,
        sub_bras=rng.integers(0, len(exporters_of("pppoe")), n_bb),
        sub_ipoe_gw=rng.integers(0, len(exporters_of("ipoe")), n_bb),
        sub_ipoe_draw=rng.random(n_bb),
        sub_dual_draw=rng.random(n_bb),
        sub_v6_share=np.clip(rng.normal(0.30, 0.12, n_bb), 0.0, 0.9),
        msisdn_number=msisdn_number.astype(np.int64),
        msisdn_enterprise=rng.random(n_mob) < ENTERPRISE_SHARE_MOBILE,
        msisdn_exporter=rng.integers(0, len(exporters_of("mobile")), n_mob),
        msisdn_v6_share=np.clip(rng.normal(0.40, 0.15, n_mob), 0.0, 0.95),
    )


def access_protocols(pop: Population, week_start: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over subscriptions: (uses PPPoE, uses IPoE) in that week."""
    f_ipoe = model.ipoe_user_fraction(week_start) if week_start >= IPOE_START else 0.0
    f_dual = model.dual_protocol_fraction(week_start)
    ipoe = (~pop.sub_enterprise) & (pop.sub_ipoe_draw < f_ipoe)
    pppoe = ~ipoe | (pop.sub_dual_draw < f_dual)
    return pppoe, ipoe


def subscription_ids(numbers: np.ndarray) -> list[str]:
    return [f"s{n:07d}" for n in numbers.tolist()]


def msisdns(numbers: np.ndarray) -> list[str]:
    return [f"0807{n:07d}" for n in numbers.tolist()]


def class_names(enterprise: np.ndarray) -> np.ndarray:
    return np.where(enterprise, "enterprise", "personal")


def prefix_hi(index: np.ndarray) -> np.ndarray:
    """Upper 64 bits of the /56 with 24-bit index `index` under 2001:db8::/32."""
    return V6_DOC_HI | (np.asarray(index, dtype=np.uint64) << np.uint64(8))


def v6_prefix_text(hi: np.ndarray, prefix_len: int) -> list[str]:
    """`2001:db8:1000:100::/56` text for each upper-64-bit network address."""
    return [
        str(ipaddress.IPv6Network((int(h) << 64, prefix_len)))
        for h in np.asarray(hi, dtype=np.uint64).tolist()
    ]


def ipv4_text(addr: np.ndarray) -> list[str]:
    """Dotted-quad text of uint32 addresses."""
    a = np.asarray(addr, dtype=np.uint64)
    parts = [(a >> np.uint64(s)) & np.uint64(255) for s in (24, 16, 8, 0)]
    return [f"{p}.{q}.{r}.{s}" for p, q, r, s in zip(*(x.tolist() for x in parts), strict=True)]


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a fixed bijection of uint64 values (wrapping arithmetic)."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@cache
def _remote_rank_cdf() -> np.ndarray:
    weights = 1.0 / np.arange(1, REMOTE_ENDPOINTS + 1, dtype=np.float64) ** REMOTE_ZIPF_EXPONENT
    return np.cumsum(weights) / weights.sum()


def remote_rank(u: np.ndarray) -> np.ndarray:
    """The remote endpoint (popularity rank 0..REMOTE_ENDPOINTS-1) of uniform draws u in [0, 1)."""
    rank = np.searchsorted(_remote_rank_cdf(), u, side="right")
    return np.minimum(rank, REMOTE_ENDPOINTS - 1).astype(np.uint64)


def remote_v4(rng: np.random.Generator, n: int) -> np.ndarray:
    """Server / peer IPv4 addresses outside subscriber space, from the Zipf pool of endpoints (one
    draw per record, as before, so the rest of the random stream is unchanged)."""
    drawn = rng.integers(REMOTE_V4_LO, REMOTE_V4_HI, n, dtype=np.uint32).astype(np.float64)
    rank = remote_rank((drawn - REMOTE_V4_LO) / (REMOTE_V4_HI - REMOTE_V4_LO))
    return (REMOTE_V4_LO + mix64(rank) % np.uint64(REMOTE_V4_HI - REMOTE_V4_LO)).astype(np.uint32)


def remote_v6(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Server / peer IPv6 addresses (hi, lo) outside subscriber space, from the endpoint pool."""
    rng.integers(0, 2**32, n, dtype=np.uint64)  # drawn as before: the random stream is unchanged
    drawn = rng.integers(0, 2**63, n, dtype=np.uint64)
    rank = remote_rank(drawn.astype(np.float64) / 2.0**63)
    hi = REMOTE_V6_HI | (mix64(rank ^ np.uint64(0x6)) & np.uint64(0xFFFFFFFF))
    return hi, mix64(rank ^ np.uint64(0x66)) >> np.uint64(1)


def write_exporter_registry(
    raw_dir: Path, source: dict | None = None, state_sampling: bool = False
) -> Path:
    """Write `exporters.yaml` (ARCHITECTURE §1): exporters and the flow source that reads the
    simulated files; identical bytes on every call. `state_sampling` puts each exporter's N in
    the registry (for forms that drop sampling announcements)."""
    rows = [
        {
            "name": e.name,
            "address": e.address,
            "observation_domain_id": e.observation_domain_id,
            "service": e.service,
            "default_sampling_interval": e.sampling_interval if state_sampling else None,
        }
        for e in EXPORTERS
    ]
    path = raw_dir / "exporters.yaml"
    registry = {"exporters": rows, "sources": [source or {"format": "ipfix",
                "path": "ipfix/{exporter}/{date}/*.ipfix"}]}  # fmt: skip
    write_text_atomic(path, yaml.safe_dump(registry, sort_keys=False))
    return path


def week_rng(seed: int, week_start: dt.date, stream: int) -> np.random.Generator:
    """Independent generator per (seed, week, stream): same numbers whatever runs in parallel."""
    return np.random.default_rng(np.random.SeedSequence([seed, week_start.toordinal(), stream]))
