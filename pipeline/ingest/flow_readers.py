"""One reader per source format: files → decoded flows keyed by exporter (address, domain).

Readers keep decoder state (templates, samplers, sequence numbers) across the files of one day, so
a template announced in one file applies to data in the next, as on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.decoder import IpfixDecoder
from pipeline.wire.records import DecodeResult, DecodeStats, QuarantineEntry

# (address, observation domain) of the exporter a record came from → its registry entry or None
Resolver = Callable[[str | None, int | None], dict | None]


@dataclass
class Decoded:
    """Flows of one exporter from one file; `address`/`domain` as the data names them."""

    address: str | None
    domain: int | None
    result: DecodeResult


class FlowFileReader:
    """Reads the files of one source and day, in order; `read(path, rel)` yields Decoded pieces."""

    def __init__(self, fmt: str, resolve: Resolver) -> None:
        self.fmt = fmt
        self.resolve = resolve
        self._decoders: dict[str | None, IpfixDecoder] = {}

    def _decoder(self, address: str | None) -> IpfixDecoder:
        if address not in self._decoders:
            exporter = self.resolve(address, None) or {}
            self._decoders[address] = IpfixDecoder(
                str(exporter.get("name", address)), exporter.get("default_sampling_interval")
            )
        return self._decoders[address]

    def read(self, path: Path, rel: str) -> Iterator[Decoded]:
        if self.fmt == "ipfix":
            yield Decoded(None, None, self._decoder(None).decode(path.read_bytes(), rel))
        elif self.fmt == "pcap":
            yield from self._read_pcap(path, rel)
        elif self.fmt == "nfcapd":
            from pipeline.wire.nfcapd.reader import read_nfcapd

            for part in read_nfcapd(path, rel):
                piece = self._with_default(
                    Decoded(part.exporter_address, part.observation_domain_id, part.result), rel
                )
                stats = piece.result.stats  # the export version nfcapd kept for its records
                if not stats.records_by_version and stats.records_decoded and part.export_version:
                    stats.records_by_version = {part.export_version: stats.records_decoded}
                yield piece
        elif self.fmt in ("nfdump-csv", "nfdump-json"):
            from pipeline.wire import nfdump_text

            reader = (
                nfdump_text.read_nfdump_csv
                if self.fmt == "nfdump-csv"
                else nfdump_text.read_nfdump_json
            )
            for part in reader(path, rel):
                yield self._with_default(Decoded(part.exporter_address, None, part.result), rel)
        else:
            raise ValueError(f"{rel}: unknown flow source format {self.fmt!r}")

    def _read_pcap(self, path: Path, rel: str) -> Iterator[Decoded]:
        from pipeline.wire.pcap.reader import read_export_datagrams

        grams = read_export_datagrams(path)
        if grams.problems:
            yield Decoded(None, None, _quarantine_only(grams.problems, rel))
        addresses = np.asarray(grams.src_address, dtype=object)
        for address in sorted(set(addresses.tolist())):
            rows = np.flatnonzero(addresses == address)
            result = self._decoder(address).decode_datagrams(
                grams.payload,
                grams.starts[rows],
                grams.lengths[rows],
                grams.file_offsets[rows],
                rel,
            )
            yield Decoded(address, None, result)

    def _with_default(self, piece: Decoded, rel: str) -> Decoded:
        """Formats that keep no sampling announcement: apply the exporter's configured default."""
        exporter = self.resolve(piece.address, piece.domain) or {}
        default = exporter.get("default_sampling_interval")
        return Decoded(
            piece.address, piece.domain, apply_default_sampling(piece.result, default, rel)
        )


def apply_default_sampling(result: DecodeResult, default: int | None, source: str) -> DecodeResult:
    """Rows with interval 0 take `default`; without one they are quarantined, never scaled by 1."""
    flows = result.flows
    if flows.num_rows == 0:
        return result
    interval = flows.column("sampling_interval")
    unknown = pc.equal(interval, 0)
    n_unknown = pc.sum(unknown).as_py() or 0
    if n_unknown == 0:
        return result
    stats = result.stats
    if default:
        stats.records_default_sampling += int(n_unknown)
        filled = pc.if_else(unknown, pa.scalar(default, interval.type), interval)
        idx = flows.schema.get_field_index("sampling_interval")
        flows = flows.set_column(idx, "sampling_interval", filled)
    else:
        flows = flows.filter(pc.invert(unknown))
        entry = QuarantineEntry(source, 0, 0, C.REASON_SAMPLING_MISSING, b"", int(n_unknown))
        result.quarantine.append(entry)
        stats.records_decoded -= n_unknown
        stats.records_quarantined += n_unknown
        reasons = stats.quarantine_by_reason
        reasons[C.REASON_SAMPLING_MISSING] = reasons.get(C.REASON_SAMPLING_MISSING, 0) + n_unknown
    ns, counts = np.unique(flows.column("sampling_interval").to_numpy(), return_counts=True)
    stats.sampling_intervals = {int(k): int(c) for k, c in zip(ns, counts, strict=True)}
    return DecodeResult(flows, result.quarantine, stats)


def _quarantine_only(entries: list[QuarantineEntry], rel: str) -> DecodeResult:
    """Capture-level problems (unreadable packets) as a result of no flows."""
    from pipeline.wire.records import FLOW_SCHEMA

    stats = DecodeStats()
    for e in entries:
        stats.records_quarantined += e.records
        stats.quarantine_by_reason[e.reason] = stats.quarantine_by_reason.get(e.reason, 0) + (
            e.records
        )
    stats.records_in = stats.records_quarantined
    return DecodeResult(FLOW_SCHEMA.empty_table(), list(entries), stats)
