"""Write flow columns as an uncompressed nfcapd file (nfdump 1.7.1 layout) that `nfdump -r` reads.

Layout (as nfcapd 1.7.1 writes it): file header; a first data block with one exporter-info record
(type 7), one sampler record (type 15: packet interval 1, space N−1) and one exporter-stat record
(type 8) per exporter; data blocks of V3 flow records (generic, IPv4/IPv6, flowMisc with the
direction, ipReceived = exporter address); an appendix block with the ident and stat records.
Counters are written unscaled with the SAMPLED flag clear, as nfcapd 1.7.1 does for announced
samplers. Bytes depend only on the arguments (no clock).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic import write_bytes_atomic
from pipeline.wire.nfcapd import format as F

BLOCK_TARGET_BYTES = 1 << 20  # nfdump reads blocks up to 5 MiB
_IDENT = b"none\0"


@dataclass
class NfcapdExporterInput:
    """One exporter's flows: numpy columns named as ipfix_writer.FLOW_COLUMNS."""

    address: str
    observation_domain_id: int
    sampling_interval: int  # N of 1-in-N; 0 = unknown (no sampler record written)
    flows: dict[str, np.ndarray]


def write_nfcapd(
    path: Path, exporters: list[NfcapdExporterInput], *, created_ms: int | None = None
) -> int:
    """Write `exporters` to `path` atomically; returns the number of flow records written.

    `created_ms` (epoch ms) fills the file's create time and every record's received time;
    by default the latest flow end (so the bytes depend on the flows only)."""
    data, n = encode_nfcapd(exporters, created_ms=created_ms)
    write_bytes_atomic(Path(path), data)
    return n


def encode_nfcapd(
    exporters: list[NfcapdExporterInput], *, created_ms: int | None = None
) -> tuple[bytes, int]:
    """The nfcapd file bytes for `exporters` and the number of flow records."""
    if created_ms is None:
        ends = [
            np.asarray(e.flows["flow_end_ms"]) for e in exporters if len(e.flows["flow_end_ms"])
        ]
        created_ms = int(max(int(x.max()) for x in ends)) if ends else 0
    metas = [_exporter_meta(i + 1, e) for i, e in enumerate(exporters)]
    blocks = [(sum(k for k, _ in metas), b"".join(m for _, m in metas))] if metas else []
    totals = np.zeros(18, np.uint64)
    first, last = None, None
    n_total = 0
    for i, e in enumerate(exporters):
        records, sizes, n = _flow_records(i + 1, e, created_ms)
        if n == 0:
            continue
        n_total += n
        blocks += _split_blocks(records, sizes)
        totals += _stat_counters(e.flows)
        lo, hi = int(np.min(e.flows["flow_start_ms"])), int(np.max(e.flows["flow_end_ms"]))
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    totals[15], totals[16] = first or 0, last or 0
    body = b"".join(
        F.BLOCK_HEADER.pack(nrec, len(payload), F.DATA_BLOCK_TYPE_3, 0) + payload
        for nrec, payload in blocks
    )
    appendix_payload = (
        np.array([F.TYPE_IDENT, 4 + len(_IDENT)], "<u2").tobytes()
        + _IDENT
        + F.STAT_RECORD.pack(F.TYPE_STAT, F.STAT_RECORD.size, *[int(v) for v in totals])
    )
    appendix = (
        F.BLOCK_HEADER.pack(2, len(appendix_payload), F.DATA_BLOCK_TYPE_3, 0) + appendix_payload
    )
    off_appendix = F.FILE_HEADER.size + len(body)
    header = F.FILE_HEADER.pack(
        F.MAGIC,
        F.LAYOUT_VERSION_2,
        F.NFDVERSION_1_7_1,
        created_ms // 1000,
        0,  # not compressed
        0,  # not encrypted
        1,  # appendix blocks
        0,  # creator (nfcapd 1.7.1 leaves 0)
        off_appendix,
        0,
        len(blocks),
    )
    return header + body + appendix, n_total


def _ip_fields(address: str) -> tuple[int, int, int, int]:
    """(version, hi, lo, family) of an exporter address; IPv4 in the low 32 bits of lo."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return 4, 0, int(ip), F.AF_INET
    return 6, int(ip) >> 64, int(ip) & (2**64 - 1), F.AF_INET6


def _exporter_meta(sysid: int, e: NfcapdExporterInput) -> tuple[int, bytes]:
    """Exporter-info, sampler and exporter-stat records of one exporter (count, bytes)."""
    _, hi, lo, family = _ip_fields(e.address)
    ip = hi.to_bytes(8, "little") + lo.to_bytes(8, "little")
    info = F.EXPORTER_INFO.pack(
        F.TYPE_EXPORTER_INFO, F.EXPORTER_INFO.size, 10, ip, family, sysid, e.observation_domain_id
    )
    sampler = b""
    if e.sampling_interval > 0:
        sampler = F.SAMPLER.pack(
            F.TYPE_SAMPLER, F.SAMPLER.size, sysid, 0, 0, 1, e.sampling_interval - 1
        )
    n = len(e.flows["flow_start_ms"])
    stat = np.zeros(1, [("h", "<u2", 2), ("count", "<u4"), ("sysid", "<u4"), ("seq", "<u4"),
                        ("packets", "<u8"), ("flows", "<u8")])  # fmt: skip
    stat["h"] = (F.TYPE_EXPORTER_STAT, stat.itemsize)
    stat["count"], stat["sysid"], stat["flows"] = 1, sysid, n
    return (3 if sampler else 2), info + sampler + stat.tobytes()


def _flow_records(
    sysid: int, e: NfcapdExporterInput, received_ms: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """All V3 records of one exporter as one uint8 array (flow order kept) and their sizes."""
    cols = e.flows
    n = len(cols["flow_start_ms"])
    exporter_version, hi, lo, _ = _ip_fields(e.address)
    is_v4 = np.asarray(cols["ip_version"]) == 4
    dtypes = {4: F.v3_record_dtype(4, exporter_version), 6: F.v3_record_dtype(6, exporter_version)}
    sizes = np.where(is_v4, dtypes[4].itemsize, dtypes[6].itemsize).astype(np.int64)
    ends = np.cumsum(sizes)
    out = np.zeros(int(ends[-1]) if n else 0, np.uint8)
    starts = ends - sizes
    for version, rows in ((4, np.flatnonzero(is_v4)), (6, np.flatnonzero(~is_v4))):
        if not len(rows):
            continue
        dt = dtypes[version]
        rec = np.zeros(len(rows), dt)
        names = set(dt.names)
        rec["type"], rec["size"], rec["num_elements"] = F.TYPE_V3_FLOW, dt.itemsize, 4
        rec["exporter_id"], rec["nfversion"] = sysid, 10
        rec["g_type"], rec["g_len"] = F.EX_GENERIC_FLOW, F.EX_GENERIC_FLOW_BYTES
        rec["msec_first"] = np.asarray(cols["flow_start_ms"])[rows]
        rec["msec_last"] = np.asarray(cols["flow_end_ms"])[rows]
        rec["msec_received"] = received_ms
        rec["in_packets"] = np.asarray(cols["packets"])[rows]
        rec["in_bytes"] = np.asarray(cols["octets"])[rows]
        rec["src_port"] = np.asarray(cols["src_port"])[rows]
        rec["dst_port"] = np.asarray(cols["dst_port"])[rows]
        rec["proto"] = np.asarray(cols["protocol"])[rows]
        rec["a_type"] = F.EX_IPV4_FLOW if version == 4 else F.EX_IPV6_FLOW
        rec["a_len"] = F.EX_IPV4_FLOW_BYTES if version == 4 else F.EX_IPV6_FLOW_BYTES
        for name in ("src_v4", "dst_v4", "src_v6_hi", "src_v6_lo", "dst_v6_hi", "dst_v6_lo"):
            if name in names:
                rec[name] = np.asarray(cols[name])[rows]
        rec["m_type"], rec["m_len"] = F.EX_FLOW_MISC, F.EX_FLOW_MISC_BYTES
        if "flow_direction" in cols:
            rec["dir"] = np.asarray(cols["flow_direction"])[rows]
        if exporter_version == 4:
            rec["r_type"], rec["r_len"], rec["received_ip"] = F.EX_IP_RECEIVED_V4, 8, lo
        else:
            rec["r_type"], rec["r_len"] = F.EX_IP_RECEIVED_V6, 20
            rec["received_ip_hi"], rec["received_ip_lo"] = hi, lo
        words = dt.itemsize // 4  # records are multiples of 4 bytes: scatter 32-bit words
        dst = (starts[rows] // 4)[:, None] + np.arange(words)
        out.view("<u4")[dst] = rec.view("<u4").reshape(len(rows), words)
    return out, sizes, n


def _split_blocks(records: np.ndarray, sizes: np.ndarray) -> list[tuple[int, bytes]]:
    """Cut the record bytes into blocks of about BLOCK_TARGET_BYTES at record boundaries."""
    ends = np.cumsum(sizes)
    block_of = (ends - 1) // BLOCK_TARGET_BYTES
    cuts = np.flatnonzero(np.diff(block_of)) + 1  # first record of each next block
    bounds = np.concatenate([[0], cuts, [len(sizes)]])
    out = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        start = int(ends[a - 1]) if a else 0
        out.append((b - a, records[start : int(ends[b - 1])].tobytes()))
    return out


def _stat_counters(cols: dict[str, np.ndarray]) -> np.ndarray:
    """flows, bytes, packets; flows/bytes/packets by tcp, udp, icmp, other (stat record order)."""
    proto = np.asarray(cols["protocol"])
    octets = np.asarray(cols["octets"]).astype(np.uint64)
    packets = np.asarray(cols["packets"]).astype(np.uint64)
    groups = [proto == 6, proto == 17, (proto == 1) | (proto == 58)]
    groups.append(~(groups[0] | groups[1] | groups[2]))
    out = np.zeros(18, np.uint64)
    out[0], out[1], out[2] = len(proto), octets.sum(), packets.sum()
    for k, g in enumerate(groups):
        out[3 + k] = g.sum()
        out[7 + k] = octets[g].sum()
        out[11 + k] = packets[g].sum()
    return out
