"""Vendor information elements: which IE gives a flow's volume and its subscriber-side addresses.

Precedence (ARCHITECTURE §2.2), decided per template (its IEs) and applied to whole arrays:
- volume, per counter: delta (1/2) → firewall initiator/responder (231/298, 232/299) →
  postOctet/PacketDeltaCount (23/24) → total (85/86, differenced per flow); RFC 5103 reverse IEs
  (PEN 29305) and responder counters give the reverse direction, a second row;
- addresses: tunnel inner (VMware tenant, PEN 6876) → pre-NAT (8/12, 27/28) → post-NAT (225/226,
  281/282, only when the pre-NAT IE is absent) → wireless station (366) as the subscriber side.
Records with no octet counter at all are set aside ("no volume field"), never read as 0 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.templates import Values

R = C.REVERSE
# (IE, is a total counter) in order of precedence
FORWARD_OCTETS = (
    (C.IE_OCTET_DELTA_COUNT, False),
    (C.IE_INITIATOR_OCTETS, False),
    (C.IE_POST_OCTET_DELTA_COUNT, False),
    (C.IE_OCTET_TOTAL_COUNT, True),
)
FORWARD_PACKETS = (
    (C.IE_PACKET_DELTA_COUNT, False),
    (C.IE_INITIATOR_PACKETS, False),
    (C.IE_POST_PACKET_DELTA_COUNT, False),
    (C.IE_PACKET_TOTAL_COUNT, True),
)
REVERSE_OCTETS = (
    (R | C.IE_OCTET_DELTA_COUNT, False),
    (C.IE_RESPONDER_OCTETS, False),
    (R | C.IE_POST_OCTET_DELTA_COUNT, False),
    (R | C.IE_OCTET_TOTAL_COUNT, True),
)
REVERSE_PACKETS = (
    (R | C.IE_PACKET_DELTA_COUNT, False),
    (C.IE_RESPONDER_PACKETS, False),
    (R | C.IE_POST_PACKET_DELTA_COUNT, False),
    (R | C.IE_PACKET_TOTAL_COUNT, True),
)
LAYER2_OCTETS = (
    C.IE_LAYER2_OCTET_DELTA_COUNT,
    C.IE_LAYER2_OCTET_TOTAL_COUNT,
    R | C.IE_LAYER2_OCTET_DELTA_COUNT,
    R | C.IE_LAYER2_OCTET_TOTAL_COUNT,
)

# problem codes of flows.flow_columns (0 ok); reasons in this order from code 1
NO_ADDRESS, SAMPLING_MISSING, NO_VOLUME, LAYER2_ONLY, NO_BASELINE = 1, 2, 3, 4, 5
PROBLEM_REASONS = (
    C.REASON_NO_ADDRESS,
    C.REASON_SAMPLING_MISSING,
    C.REASON_NO_VOLUME,
    C.REASON_LAYER2_VOLUME_ONLY,
    C.REASON_TOTAL_NO_BASELINE,
)


def _pick(vals: Values, family) -> tuple[np.ndarray | None, bool]:
    for ie, total in family:
        if (v := vals.get(ie)) is not None:
            return v.astype(np.uint64, copy=False), total
    return None, False


@dataclass
class Volume:
    """Counters of one template's records: the primary row's and the reverse direction's.

    `swapped`: the template has reverse counters only, so its one row is the reverse direction.
    `totals`: names of the counters read from total-count IEs (to be differenced per flow).
    """

    octets: np.ndarray | None
    packets: np.ndarray | None
    rev_octets: np.ndarray | None = None
    rev_packets: np.ndarray | None = None
    swapped: bool = False
    totals: set[str] = field(default_factory=set)
    problem: int = 0  # NO_VOLUME or LAYER2_ONLY for the whole template, else 0

    @property
    def has_reverse(self) -> bool:
        return self.rev_octets is not None


def volume(vals: Values) -> Volume:
    """The volume counters of a template's records, by the precedence above."""
    octets, t_oct = _pick(vals, FORWARD_OCTETS)
    packets, t_pkt = _pick(vals, FORWARD_PACKETS)
    rev_octets, t_roct = _pick(vals, REVERSE_OCTETS)
    rev_packets, t_rpkt = _pick(vals, REVERSE_PACKETS)
    totals = {
        name
        for name, is_total in (
            ("octets", t_oct),
            ("packets", t_pkt),
            ("rev_octets", t_roct),
            ("rev_packets", t_rpkt),
        )
        if is_total
    }
    if octets is None and rev_octets is None:
        layer2 = any(vals.get(ie) is not None for ie in LAYER2_OCTETS)
        return Volume(None, None, problem=LAYER2_ONLY if layer2 else NO_VOLUME)
    if octets is None:  # reverse counters only: the record's one row is the reverse direction
        swap = {"rev_octets": "octets", "rev_packets": "packets"}
        return Volume(rev_octets, rev_packets, swapped=True, totals={swap[t] for t in totals})
    if rev_octets is None:  # reverse packets without octets: no reverse volume, no second row
        rev_packets = None
        totals -= {"rev_packets"}
    return Volume(octets, packets, rev_octets, rev_packets, totals=totals)


# ---------------------------------------------------------------- addresses
def _inner_pair(inner, tenant, outer, n: int):
    """`_inner_or` for 16-byte (hi, lo) addresses; a tunnelled record never keeps an outer one
    (inner IPv4 over outer IPv6 must not read as an IPv6 flow)."""
    if inner is None or (tenant is None and outer is None):
        return outer
    zero = np.zeros(n, dtype=np.uint64)
    tenant = tenant if tenant is not None else (zero, zero)
    base = outer if outer is not None else (zero, zero)
    return np.where(inner, tenant[0], base[0]), np.where(inner, tenant[1], base[1])


def subscriber_view(vals: Values) -> Values:
    """`vals` with 8/12, 27/28, 7/11 and 4 replaced by the subscriber-side choice (§2.2)."""
    n = vals.n
    out = Values(n)
    out.uint = dict(vals.uint)
    out.pair = dict(vals.pair)
    # tunnel inner first: a record with a tenant (inner) address uses the inner ones
    inner = _tunnelled(vals)
    src4 = _inner_or(
        inner, vals.get(C.IE_TENANT_SOURCE_IPV4), vals.get(C.IE_SOURCE_IPV4_ADDRESS), n
    )
    dst4 = _inner_or(
        inner, vals.get(C.IE_TENANT_DESTINATION_IPV4), vals.get(C.IE_DESTINATION_IPV4_ADDRESS), n
    )
    pair = vals.pair.get
    src6 = _inner_pair(inner, pair(C.IE_TENANT_SOURCE_IPV6), pair(C.IE_SOURCE_IPV6_ADDRESS), n)
    dst6 = _inner_pair(
        inner, pair(C.IE_TENANT_DESTINATION_IPV6), pair(C.IE_DESTINATION_IPV6_ADDRESS), n
    )
    # post-NAT only where the template has no pre-NAT address of that side
    src4 = src4 if src4 is not None else vals.get(C.IE_POST_NAT_SOURCE_IPV4_ADDRESS)
    dst4 = dst4 if dst4 is not None else vals.get(C.IE_POST_NAT_DESTINATION_IPV4_ADDRESS)
    src6 = src6 if src6 is not None else vals.pair.get(C.IE_POST_NAT_SOURCE_IPV6_ADDRESS)
    dst6 = dst6 if dst6 is not None else vals.pair.get(C.IE_POST_NAT_DESTINATION_IPV6_ADDRESS)
    sta = vals.get(C.IE_STA_IPV4_ADDRESS)
    if sta is not None and src4 is None and src6 is None:
        direction = vals.get(C.IE_FLOW_DIRECTION)
        if dst4 is None and dst6 is None and direction is not None:
            to_station = direction == 1  # egress towards the station: it is the destination
            zero = np.zeros(n, dtype=sta.dtype)
            src4, dst4 = np.where(to_station, zero, sta), np.where(to_station, sta, zero)
        else:
            src4 = sta
    for ie, v in ((C.IE_SOURCE_IPV4_ADDRESS, src4), (C.IE_DESTINATION_IPV4_ADDRESS, dst4)):
        if v is not None:
            out.uint[ie] = v
    for ie, p in ((C.IE_SOURCE_IPV6_ADDRESS, src6), (C.IE_DESTINATION_IPV6_ADDRESS, dst6)):
        if p is not None:
            out.pair[ie] = p
    ports = (
        (C.IE_SOURCE_TRANSPORT_PORT, C.IE_TENANT_SOURCE_PORT, C.IE_POST_NAPT_SOURCE_TRANSPORT_PORT),
        (
            C.IE_DESTINATION_TRANSPORT_PORT,
            C.IE_TENANT_DESTINATION_PORT,
            C.IE_POST_NAPT_DESTINATION_TRANSPORT_PORT,
        ),
    )
    for ie, tenant, post in ports:
        v = vals.get(ie)
        v = v if v is not None else vals.get(post)
        if (v := _inner_or(inner, vals.get(tenant), v, n)) is not None:
            out.uint[ie] = v
    v = vals.get(C.IE_PROTOCOL_IDENTIFIER)
    if (v := _inner_or(inner, vals.get(C.IE_TENANT_PROTOCOL), v, n)) is not None:
        out.uint[C.IE_PROTOCOL_IDENTIFIER] = v
    return out


def _tunnelled(vals: Values) -> np.ndarray | None:
    """Records whose tenant (inner) source or destination address is set; None without them."""
    mask = None
    for ie in (C.IE_TENANT_SOURCE_IPV4, C.IE_TENANT_DESTINATION_IPV4):
        if (v := vals.get(ie)) is not None:
            mask = (v != 0) if mask is None else mask | (v != 0)
    for ie in (C.IE_TENANT_SOURCE_IPV6, C.IE_TENANT_DESTINATION_IPV6):
        if (p := vals.pair.get(ie)) is not None:
            set_ = (p[0] != 0) | (p[1] != 0)
            mask = set_ if mask is None else mask | set_
    return mask


def _inner_or(inner, tenant, outer, n: int):
    """The tenant value where the record is tunnelled, else the outer one (None if neither)."""
    if inner is None or tenant is None:
        return outer
    base = outer if outer is not None else np.zeros(n, dtype=tenant.dtype)
    return np.where(inner, tenant, base)


# ---------------------------------------------------------------- total counters
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """One splitmix64 round of `h` combined with `v` (uint64 arrays, wrapping)."""
    x = (h ^ v.astype(np.uint64)) * _MIX
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(29))


def flow_keys(parts: list[np.ndarray | None], n: int) -> np.ndarray:
    """64-bit hash of each record's flow key (missing parts count as 0)."""
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            h = _mix(h, np.zeros(n, np.uint64) if p is None else p.astype(np.uint64))
    return h


TOTAL_NAMES = ("octets", "packets", "rev_octets", "rev_packets")


class TotalCounts:
    """Last total counters per flow key across the calls of one decoder (one session).

    Successive records of a flow are differenced; a flow's first record in the session counts in
    full only if the flow started in the session (else its earlier bytes may be counted already).
    """

    def __init__(self) -> None:
        self.session_start_ms: int | None = None
        self.keys = np.zeros(0, dtype=np.uint64)
        self.values = np.zeros((0, len(TOTAL_NAMES)), dtype=np.uint64)
        self.end_ms = np.zeros(0, dtype=np.int64)

    def start(self, export_ms: int) -> None:
        """The session starts at the decoder's first message export time."""
        if self.session_start_ms is None:
            self.session_start_ms = export_ms

    def difference(
        self,
        vol: Volume,
        keys: np.ndarray,
        start_ms: np.ndarray,
        end_ms: np.ndarray,
        ok: np.ndarray,
    ) -> np.ndarray:
        """Replace `vol`'s total counters by per-flow differences (records `ok` only, input order).

        Returns the mask of records without baseline (first of a flow that began before the
        session); their totals still serve as the baseline of the flow's next record.
        """
        idx = np.flatnonzero(ok)
        no_base = np.zeros(len(ok), dtype=bool)
        if idx.size == 0:
            return no_base
        k = keys[idx]
        order = np.argsort(k, kind="stable")  # by flow, input order within a flow
        sk = k[order]
        first = np.r_[True, sk[1:] != sk[:-1]]
        last = np.r_[sk[1:] != sk[:-1], True]
        pos = np.minimum(np.searchsorted(self.keys, sk), max(len(self.keys) - 1, 0))
        known = (self.keys[pos] == sk) if len(self.keys) else np.zeros(len(sk), dtype=bool)
        at = idx[order]
        session = self.session_start_ms if self.session_start_ms is not None else 0
        no_base[at[first & ~known & (start_ms[at] < session)]] = True
        new_values = np.zeros((int(last.sum()), len(TOTAL_NAMES)), dtype=np.uint64)
        for j, name in enumerate(TOTAL_NAMES):
            if name not in vol.totals:
                continue
            col = getattr(vol, name)
            v = col[at].astype(np.uint64)
            prev = np.r_[np.uint64(0), v[:-1]]
            stored = self.values[pos, j] if len(self.keys) else np.zeros(len(sk), np.uint64)
            prev = np.where(first, np.where(known, stored, np.uint64(0)), prev)
            diff = np.where(v >= prev, v - prev, v)  # counter went back: a new flow, count in full
            out = col.astype(np.uint64, copy=True)
            out[at] = diff
            setattr(vol, name, out)
            new_values[:, j] = v[last]
        self._update(sk[last], new_values, end_ms[at[last]])
        return no_base

    def _update(self, keys: np.ndarray, values: np.ndarray, end_ms: np.ndarray) -> None:
        """Merge the flows' last totals into the state; forget flows ended long before."""
        old = ~np.isin(self.keys, keys)
        all_keys = np.concatenate([self.keys[old], keys])
        all_values = np.concatenate([self.values[old], values])
        all_end = np.concatenate([self.end_ms[old], end_ms])
        recent = all_end >= all_end.max() - C.TOTAL_COUNT_STATE_HORIZON_MS
        order = np.argsort(all_keys[recent], kind="stable")
        self.keys = all_keys[recent][order]
        self.values = all_values[recent][order]
        self.end_ms = all_end[recent][order]


def reverse_rows(cols: dict[str, tuple], rev_octets, rev_packets, rows: np.ndarray) -> dict:
    """Flow columns of the reverse direction of records `rows`: addresses and ports swapped,
    flowDirection flipped (0 ↔ 1), the reverse counters as volume."""

    def part(name: str) -> tuple:
        values, null = cols[name]
        values = values if values is None or isinstance(values, str) else values[rows]
        return values, (null if null is None or isinstance(null, str) else null[rows])

    out = {name: part(name) for name in cols}
    for a, b in (
        ("src_v4", "dst_v4"),
        ("src_v6_hi", "dst_v6_hi"),
        ("src_v6_lo", "dst_v6_lo"),
        ("src_port", "dst_port"),
    ):
        out[a], out[b] = out[b], out[a]
    direction, null = out["flow_direction"]
    if direction is not None:
        d = direction.astype(np.uint8)
        out["flow_direction"] = (np.where(d <= 1, 1 - d, d).astype(np.uint8), null)
    out["octets"] = (rev_octets[rows], None)
    out["packets"] = (None if rev_packets is None else rev_packets[rows], None)
    return out
