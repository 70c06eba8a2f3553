"""Native, vectorised reader of nfcapd files (nfdump 1.7.x, LAYOUT_VERSION_2, V3 flow records).

A Python loop walks the file's data blocks (and the few exporter/sampler records); flow records are
never looped over. Uncompressed blocks are read in place from the file's bytes. Record starts come
from the O(n) V3 chain of each block, or the pointer-jumping record chain of a block that is not
all V3 (`block_records`); V3 records are decoded in cache-sized chunks, by learnt element layouts
or an element walk in lockstep (`v3_records`), with numpy gathers.

Counters: nfcapd 1.7.1 stores counters as exported (unscaled) unless it was started with `-s N`
(default sampler, id -2) or `-s -N` (overwrite, id -3); it then multiplies them by N and sets the
record's SAMPLED flag. Such records are divided back by N and carry sampling_interval N. Other
records take the rate of the exporter's announced sampler ((interval + space) / interval), or 0
(unknown: the caller applies a configured default or quarantines) when none or several differ.
Accounting per exporter: records_in == records_decoded + records_quarantined over V3 flow records;
what cannot be tied to an exporter (bad header or blocks, unknown exporter id, legacy record types)
goes to an extra entry with exporter_address "" (present only when non-empty).
Ports: ICMP (1) and ICMPv6 (58) flows get src_port = dst_port = 0 (docs/ARCHITECTURE.md: 0 when
the protocol has no ports), not the icmp type * 256 + code that nfcapd stores in dst_port.
"""

from __future__ import annotations

import functools
import ipaddress
import mmap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.wire.ipfix import constants as C
from pipeline.wire.nfcapd import format as F
from pipeline.wire.nfcapd.block_records import Words, record_chain, v3_chain
from pipeline.wire.nfcapd.compression import (
    CorruptBlock,
    UnsupportedCompression,
    decompress_block,
)
from pipeline.wire.nfcapd.v3_records import decode_v3
from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats, QuarantineEntry

REASON_BAD_FILE_HEADER = "bad nfcapd file header"
REASON_UNSUPPORTED_LAYOUT = "unsupported nfdump file layout"
REASON_TRUNCATED_BLOCK = "truncated block"
REASON_TRUNCATED_FILE = "truncated file (blocks missing)"
REASON_UNSUPPORTED_BLOCK = "unsupported block type"
REASON_CORRUPT_BLOCK = "corrupt compressed block"
REASON_LAYOUT_1 = "nfdump 1.6 file layout (convert: nfdump -r OLD -w NEW)"
REASON_UNSUPPORTED_LZO = "unsupported compression (LZO)"
REASON_UNSUPPORTED_COMPRESSION = "unsupported compression"
REASON_RECORD_CHAIN = "corrupt record chain"
REASON_UNSUPPORTED_RECORD = "unsupported record type"
REASON_BAD_ELEMENTS = "bad V3 elements"
REASON_NO_GENERIC = "no generic flow element"
REASON_EXPORTER_UNKNOWN = "exporter unknown"
REASON_SCALED_UNKNOWN = "counters scaled by unknown sampler"

_FLOW_RECORD_TYPES = (F.TYPE_LEGACY_COMMON, F.TYPE_COMMON_V2)  # flow records we cannot decode


@dataclass
class NfcapdExporterFlows:
    """Flows of one exporter (sysid) of an nfcapd file; the caller maps (address, domain)."""

    exporter_address: str
    observation_domain_id: int
    export_version: int
    result: DecodeResult


@dataclass
class _Block:
    file_offset: int  # of the block header
    num_records: int
    compressed: bool
    size: int  # bytes of records
    base: int | None  # where its records start in _FileDecode.records; None: read in the file


def read_nfcapd(
    path: Path, source: str | None = None, columns: Sequence[str] | None = None
) -> list[NfcapdExporterFlows]:
    """Flows of every exporter in an nfcapd file (see module docstring for the accounting);
    `columns`: only these FLOW_SCHEMA columns (in schema order), same rows and counters.

    The file is memory-mapped (read only), so uncompressed records are decoded without a copy."""
    with open(path, "rb") as fh:
        try:
            buf: bytes | mmap.mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty file, or one that cannot be mapped
            buf = fh.read()
    return _FileDecode(buf, source or str(path), columns=columns).run()


def decode_nfcapd(
    buf: bytes, source: str, *, fast: bool = True, columns: Sequence[str] | None = None
) -> list[NfcapdExporterFlows]:
    """Same as read_nfcapd, from the file's bytes; never raises on bad input. `fast=False` chains
    every block by pointer jumping and walks every record's elements (the reference)."""
    return _FileDecode(bytes(buf), source, fast, columns).run()


# ------------------------------------------------------------------------------ decoding
class _FileDecode:
    def __init__(
        self,
        buf: bytes | mmap.mmap,
        source: str,
        fast: bool = True,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.buf = buf
        self.source = source
        self.fast = fast
        names = FLOW_SCHEMA.names if columns is None else list(columns)
        unknown = set(names) - set(FLOW_SCHEMA.names)
        if unknown or not names:
            raise ValueError(f"columns must be FLOW_SCHEMA names, at least one: {sorted(unknown)}")
        self.schema = pa.schema([f for f in FLOW_SCHEMA if f.name in names])
        self.file_quarantine: list[QuarantineEntry] = []
        self.blocks: list[_Block] = []
        self.records = bytearray()  # decompressed blocks, each 8-aligned
        self.exporters: dict[int, tuple[str, int, int]] = {}  # sysid → (address, version, domain)
        self.samplers: dict[int, dict[int, int]] = {}  # sysid → {sampler id: rate}

    def _quarantine(self, offset: int, payload: bytes, reason: str, records: int) -> None:
        self.file_quarantine.append(
            QuarantineEntry(self.source, offset, len(payload), reason, payload, max(records, 1))
        )

    def run(self) -> list[NfcapdExporterFlows]:
        compression = self._read_blocks()
        if compression is not None:
            self._decode_records()
        return self._results()

    # ---------------------------------------------------------------- blocks
    def _read_blocks(self) -> int | None:
        buf = self.buf
        if len(buf) < F.FILE_HEADER.size:
            self._quarantine(0, buf, REASON_BAD_FILE_HEADER, 1)
            return None
        magic, version, _, _, compression, _, _, _, off_appendix, _, num_blocks = (
            F.FILE_HEADER.unpack_from(buf)
        )
        if magic != F.MAGIC:
            self._quarantine(0, buf, REASON_BAD_FILE_HEADER, 1)
            return None
        if version != F.LAYOUT_VERSION_2:
            self._quarantine(
                0, buf, REASON_LAYOUT_1 if version == 1 else REASON_UNSUPPORTED_LAYOUT, 1
            )
            return None
        end = off_appendix if F.FILE_HEADER.size <= off_appendix <= len(buf) else len(buf)
        pos, seen = F.FILE_HEADER.size, 0
        while pos < end:
            if off_appendix == 0 and num_blocks and seen == num_blocks:
                break  # no appendix pointer: trust the block count
            if pos + F.BLOCK_HEADER.size > end:
                self._quarantine(pos, buf[pos:end], REASON_TRUNCATED_BLOCK, 1)
                seen += 1
                break
            num_records, size, btype, flags = F.BLOCK_HEADER.unpack_from(buf, pos)
            body = pos + F.BLOCK_HEADER.size
            if body + size > end:
                self._quarantine(pos, buf[pos:end], REASON_TRUNCATED_BLOCK, num_records)
                seen += 1
                break
            seen += 1
            if btype != F.DATA_BLOCK_TYPE_3:
                self._quarantine(pos, buf[pos : body + size], REASON_UNSUPPORTED_BLOCK, num_records)
            elif flags & F.FLAG_BLOCK_UNCOMPRESSED or compression == 0:
                self.blocks.append(_Block(pos, num_records, False, size, None))
            else:
                block_compression = compression
                try:
                    data = decompress_block(buf[body : body + size], block_compression)
                    block = _Block(pos, num_records, True, len(data), self._append(data))
                    self.blocks.append(block)
                except UnsupportedCompression:
                    reason = (
                        REASON_UNSUPPORTED_LZO if block_compression == 1
                        else REASON_UNSUPPORTED_COMPRESSION
                    )  # fmt: skip
                    self._quarantine(pos, buf[pos : body + size], reason, num_records)
                except CorruptBlock:
                    self._quarantine(pos, buf[pos : body + size], REASON_CORRUPT_BLOCK, num_records)
            pos = body + size
        if num_blocks > seen and off_appendix > len(buf):  # file cut short
            self._quarantine(pos, b"", REASON_TRUNCATED_FILE, num_blocks - seen)
        return compression

    # ---------------------------------------------------------------- records
    def _append(self, data: bytes | memoryview) -> int:
        """Copy `data` to `records` at the next 8-aligned offset; returns that offset."""
        self.records += b"\0" * (-len(self.records) % 8)
        base = len(self.records)
        self.records += data
        return base

    def _records_buffer(self) -> tuple[bytes | bytearray | mmap.mmap, list[int]]:
        """The bytes holding every block's records and where each block's records start: the file
        itself when every block is stored uncompressed at a 4-aligned offset and at least 8 bytes
        follow the last one (header reads of a short last record stay inside); else `records`
        (decompressed blocks, then the others copied), each block 8-aligned, 8 zero bytes after."""
        blocks = self.blocks
        direct = all(b.base is None and b.file_offset % 4 == 0 for b in blocks)
        if direct and blocks:
            last = blocks[-1]
            direct = last.file_offset + F.BLOCK_HEADER.size + last.size + 8 <= len(self.buf)
        if direct:
            return self.buf, [b.file_offset + F.BLOCK_HEADER.size for b in blocks]
        for b in blocks:
            if b.base is None:
                body = b.file_offset + F.BLOCK_HEADER.size
                b.base = self._append(memoryview(self.buf)[body : body + b.size])
        self.records += b"\0" * (-len(self.records) % 8 + 8)
        return self.records, [b.base for b in blocks]

    def _decode_records(self) -> None:
        """Chain the records of every block, then decode them all at once."""
        data, bases = self._records_buffer()
        self.words = w = Words(data)
        self.u8 = w.u8
        self.block_base = np.array(bases, np.int64)
        offs, sizes, counts = [], [], []
        for i, (block, base) in enumerate(zip(self.blocks, bases, strict=True)):
            chain = v3_chain(w.w32, base, block.size) if self.fast else None
            if chain is not None:
                off, size = chain  # all V3
            else:
                off, stop = record_chain(w.u8[base : base + block.size])
                if stop < block.size:
                    missing = block.num_records - len(off)
                    where = block.file_offset if block.compressed else block.file_offset + 12 + stop
                    payload = bytes(data[base + stop : base + block.size])
                    self._quarantine(where, payload, REASON_RECORD_CHAIN, missing)
                off = off + base
                typ = w.u16(off)
                size = w.u16(off + 2).astype(np.int64)
                v3 = typ == F.TYPE_V3_FLOW
                if not v3.all():
                    self._meta_records(off, typ)
                    self._legacy_records(data, i, off, size, np.isin(typ, _FLOW_RECORD_TYPES))
                    off, size = off[v3], size[v3]
            offs.append(off)
            sizes.append(size)
            counts.append(len(off))
        self.v3_off = np.concatenate(offs) if offs else np.zeros(0, np.int64)
        self.v3_size = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
        self.v3_counts = np.array(counts, np.int64)  # V3 records per block

    @functools.cached_property
    def v3_block(self) -> np.ndarray:
        """Block index of each V3 record."""
        return np.repeat(np.arange(len(self.v3_counts)), self.v3_counts)

    def _legacy_records(
        self, data: bytes, block: int, off: np.ndarray, size: np.ndarray, legacy: np.ndarray
    ) -> None:
        """Legacy flow records (none from nfcapd 1.7) among the records `off` of one block: one
        quarantine entry per run of adjacent ones, so a loop over runs, not over records."""
        idx = np.flatnonzero(legacy)
        if len(idx) == 0:
            return
        new_run = np.concatenate(([True], np.diff(idx) != 1))
        firsts = np.flatnonzero(new_run)
        lasts = np.concatenate((firsts[1:], [len(idx)])) - 1
        for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):  # loop over runs
            i, j = int(idx[a]), int(idx[b])
            start, stop = int(off[i]), int(off[j] + size[j])
            payload = bytes(data[start:stop])
            self._quarantine(
                self._file_offset(block, start), payload, REASON_UNSUPPORTED_RECORD, b - a + 1
            )

    def _file_offset(self, block_index: int, global_offset: int) -> int:
        block = self.blocks[block_index]
        if block.compressed:
            return block.file_offset
        local = global_offset - int(self.block_base[block_index])
        return block.file_offset + F.BLOCK_HEADER.size + local

    def _meta_records(self, off: np.ndarray, typ: np.ndarray) -> None:
        """Exporter and sampler records (a handful per file)."""
        meta = np.flatnonzero(
            np.isin(typ, (F.TYPE_EXPORTER_INFO, F.TYPE_SAMPLER, F.TYPE_SAMPLER_LEGACY))
        )
        buf = memoryview(self.u8)
        for i in meta.tolist():
            o, t = int(off[i]), int(typ[i])
            size = int(self.words.u16(off[i : i + 1] + 2)[0])
            if t == F.TYPE_EXPORTER_INFO and size >= F.EXPORTER_INFO.size:
                _, _, version, ip, family, sysid, domain = F.EXPORTER_INFO.unpack_from(buf, o)
                self.exporters[sysid] = (_exporter_address(ip, family), version, domain)
            elif t == F.TYPE_SAMPLER and size >= F.SAMPLER.size:
                _, _, sysid, _, sid, interval, space = F.SAMPLER.unpack_from(buf, o)
                rate = round((interval + space) / interval) if interval else 0
                self.samplers.setdefault(sysid, {})[sid] = rate
            elif t == F.TYPE_SAMPLER_LEGACY and size >= F.SAMPLER_LEGACY.size:
                _, _, sid, interval, _, sysid = F.SAMPLER_LEGACY.unpack_from(buf, o)
                self.samplers.setdefault(sysid, {})[sid] = interval

    # ---------------------------------------------------------------- V3 flows
    def _sampling(self, sysid: int) -> tuple[int, int]:
        """(rate of nfcapd-scaled records or 0, rate of unscaled records or 0) of one exporter."""
        samplers = self.samplers.get(sysid, {})
        static = samplers.get(F.SAMPLER_OVERWRITE_ID, samplers.get(F.SAMPLER_DEFAULT_ID, 0))
        announced = {r for sid, r in samplers.items() if sid >= -1 and r > 0}
        unscaled = announced.pop() if len(announced) == 1 else (0 if announced else static)
        return static, unscaled

    # ---------------------------------------------------------------- results
    def _results(self) -> list[NfcapdExporterFlows]:
        out: dict[tuple[str, int, int], list] = {}
        orphan_q = list(self.file_quarantine)
        orphan_n = 0
        if hasattr(self, "v3_off") and len(self.v3_off):
            names = frozenset(self.schema.names)
            cols, status = decode_v3(self.words, self.v3_off, self.v3_size, self.fast, names)
            sysid = cols["_sysid"]
            present = np.flatnonzero(np.bincount(sysid)).tolist()
            for s in present:
                rows = None if len(present) == 1 else np.flatnonzero(sysid == s)
                if s not in self.exporters:
                    every = np.arange(len(sysid)) if rows is None else rows
                    orphan_q += self._record_quarantine(every, REASON_EXPORTER_UNKNOWN)
                    orphan_n += len(every)
                    continue
                key = self.exporters[s]
                out.setdefault(key, []).append(self._exporter_result(s, rows, cols, status))
        results = [
            NfcapdExporterFlows(addr, domain, version, _merge(parts))
            for (addr, version, domain), parts in sorted(out.items())
        ]
        if orphan_q:
            empty = DecodeResult(self.schema.empty_table(), [], DecodeStats())
            results.insert(0, NfcapdExporterFlows("", 0, 0, _finish(empty, orphan_q)))
        return results

    def _exporter_result(
        self, sysid: int, rows: np.ndarray | None, cols: dict, status: np.ndarray
    ) -> DecodeResult:
        """Flows and quarantine of one exporter's records `rows` (None: every V3 record)."""
        static, unscaled = self._sampling(sysid)
        n = len(status)
        pick = (lambda a: a) if rows is None else (lambda a: a[rows])  # noqa: E731
        every = np.arange(n) if rows is None else rows
        scaled = pick(cols["_scaled"])
        st = pick(status).copy()
        if not static:
            st[(st == 0) & scaled] = 4
        quarantine: list[QuarantineEntry] = []
        reasons = {
            1: REASON_BAD_ELEMENTS,
            2: REASON_NO_GENERIC,
            3: C.REASON_NO_ADDRESS,
            4: REASON_SCALED_UNKNOWN,
        }
        domain = self.exporters.get(sysid, ("", 0, None))[2]
        ok = st == 0
        if not ok.all():
            for code, reason in reasons.items():
                quarantine += self._record_quarantine(every[st == code], reason, domain)
        keep = rows if ok.all() else every[ok]
        take = (lambda a: a) if keep is None else (lambda a: a[keep])  # noqa: E731
        scaled = take(cols["_scaled"])
        any_scaled = bool(scaled.any())
        if any_scaled:
            sampling = np.where(scaled, static, unscaled).astype(np.uint32)
        else:
            sampling = np.full(len(scaled), unscaled, np.uint32)
        v4, v6, misc = take(cols["_v4"]), take(cols["_v6"]), take(cols["_misc"])
        arrays = []
        for f in self.schema:
            name = f.name
            if name == "observation_domain_id":
                values = np.full(len(sampling), self.exporters[sysid][2], np.uint32)
                arrays.append(pa.array(values, type=f.type))
                continue
            if name == "sampling_interval":
                arrays.append(pa.array(sampling, type=f.type))
                continue
            values = take(cols[name])
            if name in ("octets", "packets") and any_scaled:
                values = values // np.where(scaled, max(static, 1), 1).astype(np.uint64)
            valid = None
            if name in ("src_v4", "dst_v4"):
                valid = v4
            elif name.endswith(("_hi", "_lo")):
                valid = v6
            elif name == "flow_direction":
                valid = misc
            arrays.append(_arrow(values, f.type, valid))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if rows is None:
            messages = int(np.count_nonzero(self.v3_counts))
        else:
            blocks = self.v3_block[rows]  # ascending
            messages = int(np.count_nonzero(blocks[1:] != blocks[:-1])) + 1 if len(blocks) else 0
        stats = DecodeStats(messages=messages, sampling_intervals=_sampling_counts(sampling))
        return _finish(DecodeResult(table, [], stats), quarantine)

    def _record_quarantine(
        self, rows: np.ndarray, reason: str, domain: int | None = None
    ) -> list[QuarantineEntry]:
        """One entry per block for the V3 records `rows` set aside for `reason` (`domain`: the
        exporter's observation domain where nfcapd recorded it)."""
        entries = []
        if not len(rows):
            return entries
        blocks = self.v3_block[rows]
        for b in np.unique(blocks).tolist():
            r = rows[blocks == b]
            first, last = int(self.v3_off[r[0]]), int(self.v3_off[r[-1]] + self.v3_size[r[-1]])
            payload = self.u8[first:last].tobytes()
            block = self.blocks[b]
            where = block.file_offset
            if not block.compressed:
                where += F.BLOCK_HEADER.size + first - int(self.block_base[b])
            entries.append(
                QuarantineEntry(
                    self.source, where, len(payload), reason, payload, len(r), domain=domain
                )
            )
        return entries


def _exporter_address(ip: bytes, family: int) -> str:
    """nfdump keeps the exporter address as two host-order uint64 (IPv4 in the low 32 bits)."""
    hi, lo = int.from_bytes(ip[:8], "little"), int.from_bytes(ip[8:], "little")
    if family == F.AF_INET or (family != F.AF_INET6 and hi == 0 and lo >> 32 == 0):
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def _arrow(values: np.ndarray, type_: pa.DataType, valid: np.ndarray | None) -> pa.Array:
    """`values` as an Arrow array (no copy), null where `valid` is False."""
    if valid is None or valid.all():
        return pa.array(values, type=type_)
    bitmap = np.packbits(valid, bitorder="little")
    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type_, len(data), [pa.py_buffer(bitmap), pa.py_buffer(data)])


def _merge(parts: list[DecodeResult]) -> DecodeResult:
    if len(parts) == 1:
        return parts[0]
    table = pa.concat_tables([p.flows for p in parts])
    quarantine = [q for p in parts for q in p.quarantine]
    stats = DecodeStats(messages=sum(p.stats.messages for p in parts))
    counts: dict[int, int] = {}
    for p in parts:
        for k, c in p.stats.sampling_intervals.items():
            counts[k] = counts.get(k, 0) + c
    stats.sampling_intervals = dict(sorted(counts.items()))
    return _finish(DecodeResult(table, [], stats), quarantine)


def _finish(result: DecodeResult, quarantine: list[QuarantineEntry]) -> DecodeResult:
    """Fill the counters of `result` from its table and `quarantine`."""
    stats = result.stats
    quarantine.sort(key=lambda q: q.offset)
    stats.records_decoded = result.flows.num_rows
    stats.records_quarantined = sum(q.records for q in quarantine)
    stats.quarantine_by_reason = {}
    for q in quarantine:
        stats.quarantine_by_reason[q.reason] = (
            stats.quarantine_by_reason.get(q.reason, 0) + q.records
        )
    stats.records_in = stats.records_decoded + stats.records_quarantined
    return DecodeResult(result.flows, quarantine, stats)


def _sampling_counts(sampling: np.ndarray) -> dict[int, int]:
    """Decoded records by sampling interval (ascending)."""
    if not len(sampling):
        return {}
    lo, hi = int(sampling.min()), int(sampling.max())
    if lo == hi:
        return {lo: len(sampling)}
    ns, counts = np.unique(sampling, return_counts=True)
    return {int(k): int(c) for k, c in zip(ns, counts, strict=True)}
