"""Vectorised decoder of IPFIX (RFC 7011), NetFlow v9 (RFC 3954) and v5 → flows + quarantine.

`FlowDecoder.decode(buf)` reads an RFC 5655 IPFIX file; `decode_datagrams` reads export packets of
any version framed by the transport (UDP). NetFlow v9 packets are turned into IPFIX messages (the
20-byte header becomes a 16-byte one; flowsets ≥ 256 are byte-identical to IPFIX data sets) and go
through the same machinery; v9 template flowsets are parsed in their own layout and
FIRST/LAST_SWITCHED are made absolute with the packet's sysUptime. v5 is decoded apart
(pipeline.wire.netflow_v5).

The decoder is split along its seams (this module ties them together):
- `framing`: message bounds of a file; a message cut short mid-file is resynchronised after
  ("truncated message"), whole sets kept;
- `sets`: a message set by set — template sets (v9 layouts: `pipeline.wire.netflow_v9`),
  options data (sampler state), data sets filed under their template;
- `templates`: template definitions and the vectorised walk of their records;
- `flows`: field values → flow columns (times, sampling intervals, addresses).

Templates are keyed by (version, domain, template id): the "stream" key is version << 32 | domain
(IPFIX observation domain, v9 source id, v5 engine_type << 8 | engine_id). Data whose template comes
later in the same call is decoded with the first definition that follows it (second pass). An
exporter restart (v9/v5: sysUptime steps back; IPFIX: sequence number falls below the session's
range, judged with export times — see pipeline.wire.streams) drops that stream's templates and
samplers. Export datagrams already decoded are left out (`datagrams.drop_duplicates`). Templates,
samplers, sequence expectations, restart state and datagram keys persist across calls of one
decoder (consecutive files or datagram batches of one exporter).

A Python loop walks messages and sets (never records) and files each data set under the template it
was read with; records are then decoded per template over all its sets at once: `np.frombuffer`
with a big-endian structured dtype for fixed-length templates, and a lockstep walk (loop over record
index × field, vectorised across sets) for templates with variable-length fields.

Accounting: `records_in == records_decoded + records_quarantined` counts flow data records.
Options data records (sampling announcements) are counted apart in `options_records`. Where bytes
cannot be parsed and their record count is unknowable (bad header, bad set length, reserved set id,
a record that overruns its set, a data set whose template has variable length), each quarantined
piece counts as 1 record; a data set whose template is never seen counts the records the IPFIX
sequence numbers give it (`streams.unsplittable`), else 1. Records with no IPv4/IPv6 address field
are quarantined ("no IP address fields"); records whose template has no timing IE take the
message export time as start and end. Vendor IEs (`vendor`, ARCHITECTURE §2.2): a record with no
octet counter is set aside ("no volume field"); a biflow / firewall record with reverse counters is
one record in and two rows out (`stats.reverse_rows` counts the second rows).
"""

from __future__ import annotations

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix import vendor
from pipeline.wire.ipfix.flows import Columns, Samplers, flow_columns, sampling, take
from pipeline.wire.ipfix.framing import message_bounds
from pipeline.wire.ipfix.sets import SetReader
from pipeline.wire.ipfix.templates import Template, gather_be
from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats
from pipeline.wire.streams import distinct, restart_flags, sequence_stats, unsplittable


class FlowDecoder:
    """Decodes the flow exports of one exporter (IPFIX, NetFlow v9, v5).

    Templates, samplers, sequence expectations and restart detection state persist across calls:
    consecutive files (or datagram batches) of one exporter continue its streams, so a sequence
    gap between two files is counted, and a template announced in one applies to the next.
    """

    def __init__(self, exporter: str, default_sampling_interval: int | None = None) -> None:
        self.exporter = exporter
        self.default_sampling_interval = default_sampling_interval or None
        self._templates: dict[tuple[int, int], Template] = {}
        # (stream, kind, id) → N; kind: "selector" (selectorId/samplerId), "template", "domain"
        self._samplers: Samplers = {}
        self._seq_next: dict[int, int] = {}  # stream → expected next sequence number
        self._last: dict[int, tuple[int, int, int]] = {}  # stream → (seq, uptime ms, export ms)
        self._totals = vendor.TotalCounts()  # last total counters per flow (ARCHITECTURE §2.2)
        # IPFIX stream → (highest seq, lowest seq, newest export ms, restart export ms, highest
        # seq before the restart); see streams._ipfix_restarts
        self._session: dict[int, tuple[int, int, int, int, int]] = {}
        # stream → (templates by id, samplers) of the session before its last restart
        self._previous: dict[int, tuple[dict, Samplers]] = {}
        self._seen = np.zeros(0, np.uint64)  # keys of the export datagrams decoded (sorted)

    # ---------------------------------------------------------------- public
    def decode(self, buf: bytes, source: str) -> DecodeResult:
        """Decode one buffer of IPFIX messages (an RFC 5655 file); never raises on bad input."""
        return _Run(self, buf if isinstance(buf, bytes) else bytes(buf), source).run()

    def decode_datagrams(
        self,
        payload: bytes,
        starts: np.ndarray,
        lengths: np.ndarray,
        file_offsets: np.ndarray,
        source: str,
    ) -> DecodeResult:
        """Decode export packets of any version (5, 9, 10), one per transport datagram.

        Datagram i is payload[starts[i]:starts[i] + lengths[i]], found at byte file_offsets[i] of
        `source`; quarantine offsets are file offsets. Never raises on bad input.
        """
        from pipeline.wire import datagrams as netflow_frames
        from pipeline.wire import netflow_v5

        payload = payload if isinstance(payload, bytes) else bytes(payload)
        starts, lengths, file_offsets, duplicates = netflow_frames.drop_duplicates(
            self, payload, starts, lengths, file_offsets
        )
        frames = netflow_frames.frame_datagrams(payload, starts, lengths, file_offsets, source)
        if frames.ipfix_buffer:
            run = _Run(self, frames.ipfix_buffer, source, frames=frames)
            result = run.run()
        else:
            result = DecodeResult(FLOW_SCHEMA.empty_table(), [], DecodeStats())
        v5 = netflow_v5.decode_v5(self, payload, frames, source)
        result = netflow_frames.merge_results(result, v5, frames.quarantine)
        result.stats.duplicate_datagrams += duplicates
        return result


IpfixDecoder = FlowDecoder  # the name callers used before NetFlow support


class _Run(SetReader):
    """State of one decode call (IPFIX messages; NetFlow v9 packets translated to them)."""

    def __init__(self, decoder: FlowDecoder, buf: bytes, source: str, frames=None) -> None:
        super().__init__(decoder, buf, source)
        self.d: FlowDecoder = decoder
        self.frames = frames  # netflow_frames.Frames when decoding datagrams, else None
        self.columns = Columns()
        self.msg_seq = np.zeros(0, np.int64)
        self.msg_export_s = np.zeros(0, np.int64)
        self.msg_uptime = np.zeros(0, np.int64)

    # ---------------------------------------------------------------- main loop
    def run(self) -> DecodeResult:
        st, ln = message_bounds(
            self.buf, self.u8, self._quarantine, check_tiling=self.frames is None
        )
        m = len(st)
        self.stats.messages = m
        if m == 0:
            return self._finish()
        u8 = self.u8
        self.msg_export_s = gather_be(u8, st + 4, 4)
        self.msg_seq = gather_be(u8, st + 8, 4)
        self.d._totals.start(int(self.msg_export_s.min()) * 1000)
        if self.frames is not None and len(self.frames.msg_version) == m:
            self.msg_version = self.frames.msg_version
            self.msg_uptime = self.frames.msg_uptime
            self.msg_count = self.frames.msg_count
        else:
            self.msg_version = np.full(m, C.IPFIX_VERSION, dtype=np.int64)
            self.msg_uptime = np.zeros(m, dtype=np.int64)
            self.msg_count = np.full(m, -1, dtype=np.int64)
        self.msg_domain = gather_be(u8, st + 12, 4) | (self.msg_version << 32)
        self.msg_records = np.zeros(m, dtype=np.int64)
        self.msg_templates = np.zeros(m, dtype=np.int64)
        # "simple" message: exactly one non-empty data set filling it (the bulk of any stream)
        has_set = ln >= C.MESSAGE_HEADER_BYTES + C.SET_HEADER_BYTES
        at = np.where(has_set, st + C.MESSAGE_HEADER_BYTES, 0)
        set_id = gather_be(u8, at, 2)
        set_len = gather_be(u8, at + 2, 2)
        self.straggler = np.zeros(m, dtype=bool)
        self.restart = restart_flags(
            self.d, self.msg_domain, self.msg_seq, self.msg_uptime, self.msg_export_s * 1000,
            self.straggler,
        )  # fmt: skip
        simple = has_set & (set_id >= C.MIN_DATA_SET_ID) & (set_len == ln - C.MESSAGE_HEADER_BYTES)
        simple &= (set_len > C.SET_HEADER_BYTES) & ~self.restart & ~self.straggler
        prev = 0
        for i in np.flatnonzero(~simple).tolist() + [m]:  # loop over non-simple messages
            if prev < i:
                self._simple_run(prev, i, st, ln, set_id)
            if i < m:
                self._message(i, int(st[i]), int(ln[i]))
            prev = i + 1
        return self._finish()

    def _simple_run(
        self, a: int, b: int, st: np.ndarray, ln: np.ndarray, set_id: np.ndarray
    ) -> None:
        """Messages a..b-1, each one data set: filed in bulk when all their templates are usable.

        No template or sampler state can change inside such a run unless one of its sets is
        options data or has no usable template; then the run goes message by message.
        """
        keys = self.msg_domain[a:b] * 65536 + set_id[a:b]
        uniq = distinct(keys)
        tpls = [self.d._templates.get((k >> 16, k & 0xFFFF)) for k in uniq]
        if any(t is None or t.error is not None or t.scope_count for t in tpls):
            for i in range(a, b):
                self._message(i, int(st[i]), int(ln[i]))
            return
        epoch = len(self.snapshots) - 1
        msg = np.arange(a, b, dtype=np.int64)
        chunk_ids = self.n_chunks + (msg - a)
        self.n_chunks += b - a
        for key, tpl in zip(uniq, tpls, strict=True):
            rows = slice(None) if len(uniq) == 1 else keys == key
            m = msg[rows]
            body = st[m] + C.MESSAGE_HEADER_BYTES + C.SET_HEADER_BYTES
            block = np.column_stack(
                [body, st[m] + ln[m], chunk_ids[rows], m, np.full(len(m), epoch)]
            )
            tpl.blocks.append(block)
            self.pending_templates[id(tpl)] = tpl

    # ---------------------------------------------------------------- records
    def _flush_template(self, tpl: Template) -> None:
        """Decode every pending set of one template and add its flows / quarantine entries."""
        info = np.concatenate([*tpl.blocks, np.array(tpl.chunks, dtype=np.int64).reshape(-1, 5)])
        info = info[np.argsort(info[:, 2], kind="stable")]  # input order
        tpl.chunks, tpl.blocks = [], []
        vals, set_idx, counts = self._decode_sets(tpl, info[:, 0], info[:, 1])
        np.add.at(self.msg_records, info[:, 3], counts)
        if vals.n == 0:
            return
        msg = info[:, 3][set_idx]
        uptime = self.msg_uptime[msg] if tpl.version == C.NETFLOW_V9_VERSION else None
        default = self.d.default_sampling_interval or 0
        interval = sampling(tpl, vals, info[:, 4][set_idx], self.snapshots, 0)
        by_default = (interval == 0) & (default > 0)
        interval[by_default] = default
        cols, problem, vol = flow_columns(
            tpl, vals, self._msg_export_ms[msg], uptime, interval, self.d._totals
        )
        keep = problem == 0
        self.stats.records_default_sampling += int((by_default & keep).sum())
        if self.second_pass:
            late = np.isin(info[:, 2][set_idx], np.asarray(self.second_pass, np.int64))
            self.stats.records_second_pass += int((late & keep).sum())
        if not keep.all():
            key = dict(stream=tpl.domain, template_id=tpl.template_id)
            for code, reason in enumerate(vendor.PROBLEM_REASONS, start=1):
                per_set = np.bincount(set_idx[problem == code], minlength=len(info))
                for i in np.flatnonzero(per_set).tolist():  # loop over sets
                    start = int(info[i, 0]) - C.SET_HEADER_BYTES
                    length = int(info[i, 1]) - start
                    self._quarantine(start, length, reason, int(per_set[i]), **key)
            cols = {k: (take(v, keep), take(m, keep)) for k, (v, m) in cols.items()}
        by_version = self.stats.records_by_version
        by_version[tpl.version] = by_version.get(tpl.version, 0) + int(keep.sum())
        chunks = info[:, 2][set_idx[keep]]
        self.columns.add(cols, chunks)
        if vol.has_reverse:  # biflow / firewall event: the reverse direction is a second row
            rev_octets = take(vol.rev_octets, keep)
            rev_packets = take(vol.rev_packets, keep)
            rows = rev_octets > 0
            if rev_packets is not None:
                rows |= rev_packets > 0
            if rows.any():
                self.columns.add(
                    vendor.reverse_rows(cols, rev_octets, rev_packets, rows), chunks[rows]
                )
                self.stats.reverse_rows += int(rows.sum())

    # ---------------------------------------------------------------- end of buffer
    def _count_unknown_sets(self) -> None:
        """Records of data sets whose template never became usable (see `unsplittable`)."""
        never: list[tuple] = []
        for entry, stream, tid, msg, size in self.unknown:  # loop over such sets
            if id(entry) in self.resolved or entry.reason != C.REASON_TEMPLATE_UNKNOWN:
                continue  # decoded in the second pass, or set aside under its (bad) template
            tpl = self.d._templates.get((stream, tid))
            if tpl is not None and tpl.fixed_length:  # known later (after a restart): split it
                entry.records = size // tpl.fixed_length
                self.msg_records[msg] += entry.records - 1
            elif tpl is None:
                never.append((entry, msg, size))
        if never:
            v9_data = np.where(self.msg_count >= 0, self.msg_count - self.msg_templates, -1)
            self.stats.records_estimated_unsplittable += unsplittable(
                never, self.msg_domain, self.msg_seq, self.msg_records, self.msg_version,
                self.restart, v9_data,
            )  # fmt: skip

    def _finish(self) -> DecodeResult:
        self._msg_export_ms = self.msg_export_s * 1000
        for tpl in self.pending_templates.values():
            self._flush_template(tpl)
        self._count_unknown_sets()
        if self.resolved:
            self.quarantine = [q for q in self.quarantine if id(q) not in self.resolved]
        increment = np.where(self.msg_version == C.IPFIX_VERSION, self.msg_records, 1)
        sequence_stats(self.d, self.msg_domain, self.msg_seq, increment, self.restart, self.stats)
        if self.frames is not None:
            self.frames.to_file_offsets(self.quarantine)
        self.quarantine.sort(key=lambda q: q.offset)
        table = self.columns.table()
        stats = self.stats
        stats.records_decoded = table.num_rows - stats.reverse_rows  # records, not rows
        for q in self.quarantine:
            stats.quarantine_by_reason[q.reason] = (
                stats.quarantine_by_reason.get(q.reason, 0) + q.records
            )
            stats.records_quarantined += q.records
        stats.records_in = stats.records_decoded + stats.records_quarantined
        if table.num_rows:
            ns, counts = _value_counts(table.column("sampling_interval").to_numpy())
            stats.sampling_intervals = {int(k): int(c) for k, c in zip(ns, counts, strict=True)}
        return DecodeResult(table, self.quarantine, stats)


def _value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts (one value: no sort)."""
    if len(values) and values.min() == values.max():
        return values[:1], np.array([len(values)])
    return np.unique(values, return_counts=True)
