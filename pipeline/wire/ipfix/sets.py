"""Set-level reading of one decode call: template sets, options data, data sets filed by template.

`SetReader` walks a message set by set (a Python loop over sets, never records). Template and
options template sets define templates (IPFIX layout here; NetFlow v9 template flowsets are parsed
by `pipeline.wire.netflow_v9`); options data updates the sampler state at once; every other data
set is filed under the template it was read with, to be decoded later in bulk. A data set whose
template comes later in the same call is quarantined as "template unknown" and, once the
definition arrives, decoded with it after that message (second pass). `decoder._Run` builds on
this class.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from pipeline.wire.ipfix import constants as C
from pipeline.wire.ipfix.flows import Samplers, update_samplers
from pipeline.wire.ipfix.templates import Template, Values, decode_sets
from pipeline.wire.netflow_v9 import parse_v9_options_templates, parse_v9_templates
from pipeline.wire.records import DecodeStats, QuarantineEntry

# a data set waiting for its template: (quarantine entry, payload start, end, chunk, message)
Waiting = tuple[QuarantineEntry, int, int, int, int]


class ExporterState(Protocol):
    """What set reading keeps across calls (the `FlowDecoder` of one exporter)."""

    _templates: dict[tuple[int, int], Template]
    _samplers: Samplers
    _previous: dict[int, tuple[dict, Samplers]]


class SetReader:
    """State of one decode call at the set level, and the set-by-set walk of a message."""

    def __init__(self, decoder: ExporterState, buf: bytes, source: str) -> None:
        self.d = decoder
        self.buf = buf
        self.mv = memoryview(buf)
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.source = source
        self.stats = DecodeStats()
        self.quarantine: list[QuarantineEntry] = []
        self.msg_domain = np.zeros(0, np.int64)  # stream key: version << 32 | domain
        self.msg_records = np.zeros(0, np.int64)  # data records per message (sequence checks)
        self.msg_version = np.zeros(0, np.int64)
        self.msg_seq = np.zeros(0, np.int64)
        self.msg_count = np.zeros(0, np.int64)  # NetFlow v9 header count (records), -1 IPFIX
        self.msg_templates = np.zeros(0, np.int64)  # v9 (options) template records per message
        self.restart = np.zeros(0, dtype=bool)
        self.straggler = np.zeros(0, dtype=bool)  # sent by the session before a restart
        self.previous_epoch: dict[int, int] = {}  # stream → snapshot of its previous samplers
        self.n_chunks = 0
        self.pending_templates: dict[int, Template] = {}  # id() → template with chunks
        # data sets of unknown templates: entry, stream, template id, message, payload bytes
        self.unknown: list[tuple[QuarantineEntry, int, int, int, int]] = []
        self.second_pass: list[int] = []  # chunk ids of data sets decoded in the second pass
        # (stream, template id) → data sets waiting for a definition later in this call
        self.waiting: dict[tuple[int, int], list[Waiting]] = {}
        self.resolved: set[int] = set()  # id() of quarantine entries decoded in the second pass
        self.deferred: list[tuple] = []  # (template, *waiting) to resolve at the message's end
        self.snapshots: list[Samplers] = [dict(decoder._samplers)]

    def _quarantine(
        self,
        offset: int,
        length: int,
        reason: str,
        records: int = 1,
        stream: int | None = None,
        template_id: int | None = None,
    ) -> QuarantineEntry:
        """Set buf[offset:offset + length] aside (clipped to the buffer) as `records` records;
        `stream` (version << 32 | domain) and `template_id` where known."""
        length = max(0, min(length, len(self.buf) - offset))
        entry = QuarantineEntry(
            self.source, offset, length, reason, bytes(self.mv[offset : offset + length]), records,
            None if stream is None else stream & 0xFFFFFFFF, template_id,
        )  # fmt: skip
        self.quarantine.append(entry)
        return entry

    def _decode_sets(
        self, tpl: Template, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[Values, np.ndarray, np.ndarray]:
        """Decode all records of the given sets; returns values, set index per record, counts.

        Trailing bytes shorter than a record are counted; non-zero ones (not RFC 7011 padding)
        are set aside as 0 records.
        """
        vals, set_idx, counts, overruns, tail = decode_sets(self.mv, self.u8, tpl, starts, ends)
        key = dict(stream=tpl.domain, template_id=tpl.template_id)
        for i, at in overruns:
            self._quarantine(at, int(ends[i]) - at, C.REASON_RECORD_OVERRUNS_SET, **key)
        trailing = ends - tail
        if trailing.any():
            self.stats.trailing_bytes += int(trailing.sum())
            for i in np.flatnonzero(trailing).tolist():  # loop over sets with trailing bytes
                a, b = int(tail[i]), int(ends[i])
                if self.buf.count(0, a, b) != b - a:
                    self._quarantine(a, b - a, C.REASON_SET_TRAILING_BYTES, 0, **key)
        return vals, set_idx, counts

    # ---------------------------------------------------------------- messages
    def _message(self, msg: int, off: int, length: int) -> None:
        """One message, set by set (templates, options, several sets, broken sets)."""
        buf = self.buf
        unpack_set = C.SET_HEADER.unpack_from
        templates = self.d._templates
        stream = int(self.msg_domain[msg])
        v9 = self.msg_version[msg] == C.NETFLOW_V9_VERSION
        if self.restart[msg]:
            self._restart_stream(stream, msg)
        elif self.straggler[msg]:
            self._straggler(stream, msg, off, length)
            return
        end = off + length
        pos = off + C.MESSAGE_HEADER_BYTES
        while pos < end:  # loop over sets
            if end - pos < C.SET_HEADER_BYTES:
                self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH, stream=stream)
                break
            set_id, set_len = unpack_set(buf, pos)
            if set_len < C.SET_HEADER_BYTES or pos + set_len > end:
                self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH, stream=stream)
                break
            body, pos = pos + C.SET_HEADER_BYTES, pos + set_len
            if set_id < C.MIN_DATA_SET_ID:
                self._non_data_set(set_id, body, pos, stream, msg, v9)
                continue
            if body == pos:
                continue  # empty data set
            tpl = templates.get((stream, set_id))
            if tpl is not None and tpl.error is None and not tpl.scope_count:
                tpl.chunks.append((body, pos, self.n_chunks, msg, len(self.snapshots) - 1))
                self.n_chunks += 1
                self.pending_templates[id(tpl)] = tpl
            else:
                self._special_data_set(tpl, set_id, body, pos, stream, msg)
        self._resolve_deferred()

    def _resolve_deferred(self) -> None:
        """Second pass: earlier data sets of templates this message defined (its samplers known)."""
        deferred, self.deferred = self.deferred, []
        for tpl, *waiting in deferred:
            self._resolve(tpl, *waiting)

    def _straggler(self, stream: int, msg: int, off: int, length: int) -> None:
        """A message the previous session sent before the restart, captured after it: its data
        sets are read with that session's templates and samplers (kept at the restart), its
        template and options sets change nothing; sets of templates it did not know are set
        aside as "template unknown" (1 record each)."""
        templates, samplers = self.d._previous.get(stream, ({}, {}))
        if stream not in self.previous_epoch:
            self.snapshots.append(dict(samplers))
            self.previous_epoch[stream] = len(self.snapshots) - 1
        epoch = self.previous_epoch[stream]
        end = off + length
        pos = off + C.MESSAGE_HEADER_BYTES
        while end - pos >= C.SET_HEADER_BYTES:  # loop over sets
            set_id, set_len = C.SET_HEADER.unpack_from(self.buf, pos)
            if set_len < C.SET_HEADER_BYTES or pos + set_len > end:
                self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH, stream=stream)
                return
            body, pos = pos + C.SET_HEADER_BYTES, pos + set_len
            if set_id < C.MIN_DATA_SET_ID or body == pos:
                continue
            tpl = templates.get(set_id)
            if tpl is not None and tpl.scope_count and tpl.error is None:
                continue  # an old sampling announcement: not the current state
            if tpl is not None and tpl.error is None:
                tpl.chunks.append((body, pos, self.n_chunks, msg, epoch))
                self.n_chunks += 1
                self.pending_templates[id(tpl)] = tpl
            elif tpl is None:
                start = body - C.SET_HEADER_BYTES
                self._quarantine(start, pos - start, C.REASON_TEMPLATE_UNKNOWN, 1, stream, set_id)
                self.msg_records[msg] += 1
            else:
                self._special_data_set(tpl, set_id, body, pos, stream, msg)
        if pos < end:
            self._quarantine(pos, end - pos, C.REASON_BAD_SET_LENGTH, stream=stream)

    def _restart_stream(self, stream: int, msg: int) -> None:
        """The exporter restarted: forget this stream's templates and samplers, and the waiting
        data sent before the restart; data sets of the new session that overtook its template
        message (sequence at or after the restart's, within the tolerance) keep waiting."""
        templates, samplers = self.d._templates, self.d._samplers
        old = {k[1]: templates.pop(k) for k in [k for k in templates if k[0] == stream]}
        self.d._previous[stream] = (old, {k: v for k, v in samplers.items() if k[0] == stream})
        self.previous_epoch.pop(stream, None)
        dropped = [k for k in samplers if k[0] == stream]
        for key in dropped:
            del samplers[key]
        if dropped:
            self.snapshots.append(dict(samplers))
        seq = int(self.msg_seq[msg])
        for key in [k for k in self.waiting if k[0] == stream]:
            ahead = [
                w
                for w in self.waiting[key]
                if 0 <= (int(self.msg_seq[w[4]]) - seq) % 2**32 < C.RESTART_SEQUENCE_TOLERANCE
            ]
            if ahead:
                self.waiting[key] = ahead
            else:
                del self.waiting[key]  # the others stay quarantined as "template unknown"

    def _non_data_set(
        self, set_id: int, body: int, end: int, stream: int, msg: int, v9: bool
    ) -> None:
        """Template and options template sets (IPFIX 2, 3; NetFlow v9 flowsets 0, 1); anything
        else below 256 is quarantined as reserved."""
        if v9 and set_id in (C.V9_TEMPLATE_FLOWSET_ID, C.V9_OPTIONS_TEMPLATE_FLOWSET_ID):
            self._v9_template_flowset(set_id, body, end, stream, msg)
        elif not v9 and set_id in (C.TEMPLATE_SET_ID, C.OPTIONS_TEMPLATE_SET_ID):
            self._template_set(set_id, body, end, stream)
        else:
            start = body - C.SET_HEADER_BYTES
            self._quarantine(start, end - start, C.REASON_RESERVED_SET_ID, stream=stream)
            self.msg_records[msg] += 1

    def _special_data_set(
        self, tpl: Template | None, set_id: int, body: int, end: int, stream: int, msg: int
    ) -> None:
        """Data set of an unknown or rejected template (quarantined) or of an options template."""
        start = body - C.SET_HEADER_BYTES
        if tpl is None:
            entry = self._quarantine(
                start, end - start, C.REASON_TEMPLATE_UNKNOWN, 1, stream, set_id
            )
            self.unknown.append((entry, stream, set_id, msg, end - body))
            waiting = (entry, body, end, self.n_chunks, msg)
            self.waiting.setdefault((stream, set_id), []).append(waiting)
            self.n_chunks += 1  # keeps its place in the output order if resolved later
            self.msg_records[msg] += 1
        elif tpl.error is not None:
            count = tpl.records_in(end - body)
            if count:
                self._quarantine(start, end - start, tpl.error, count, stream, set_id)
                self.msg_records[msg] += count
        else:
            self._options_data(tpl, body, end, msg)

    # ---------------------------------------------------------------- templates
    def _define(
        self, stream: int, tid: int, fields: list, scope: int, error: str | None, at: int, end: int
    ) -> None:
        """Store one template definition; data sets waiting for it are filed under it now."""
        tpl = Template(stream, tid, tuple(fields), scope, error)
        if tpl.error is not None:
            self._quarantine(at, end - at, tpl.error, 0, stream, tid)
        if tid < C.MIN_DATA_SET_ID:
            return
        templates = self.d._templates
        old = templates.get((stream, tid))
        if old is not None and (old.fields, old.scope_count) == (tpl.fields, tpl.scope_count):
            tpl = old  # a refresh of the same definition keeps the object (and its pending sets)
        else:
            if old is not None:
                self.stats.template_redefinitions += 1
            templates[(stream, tid)] = tpl
        for waiting in self.waiting.pop((stream, tid), []):  # second pass, after this message
            self.deferred.append((tpl, *waiting))

    def _resolve(
        self, tpl: Template, entry: QuarantineEntry, body: int, end: int, chunk: int, msg: int
    ) -> None:
        """A data set that preceded its template: decode it with this (the next) definition."""
        self.msg_records[msg] -= 1  # its provisional count as an unknown set
        if tpl.error is not None:
            count = tpl.records_in(end - body)
            entry.reason, entry.records = tpl.error, count
            self.msg_records[msg] += count
            if count == 0:
                self.resolved.add(id(entry))
            return
        self.resolved.add(id(entry))
        if tpl.scope_count:
            self._options_data(tpl, body, end, msg)
            return
        tpl.chunks.append((body, end, chunk, msg, len(self.snapshots) - 1))
        self.pending_templates[id(tpl)] = tpl
        self.second_pass.append(chunk)

    def _template_set(self, set_id: int, pos: int, end: int, stream: int) -> None:
        """IPFIX (options) template records, withdrawals included; a broken record ends the set."""
        buf = self.buf
        options = set_id == C.OPTIONS_TEMPLATE_SET_ID
        templates = self.d._templates
        while end - pos >= 4 and any(buf[pos:end]):  # an all-zero rest is padding
            rec_start = pos
            tid, count = C.SET_HEADER.unpack_from(buf, pos)
            pos += 4
            if count == 0:  # withdrawal; set id itself = withdraw all of this kind in the domain
                if tid == set_id:
                    for key in [
                        k
                        for k, t in templates.items()
                        if k[0] == stream and bool(t.scope_count) == options
                    ]:
                        del templates[key]
                else:
                    templates.pop((stream, tid), None)
                continue
            scope = 0
            if options:
                if end - pos < 2:
                    self._quarantine(
                        rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0, stream, tid
                    )
                    return
                scope = int.from_bytes(buf[pos : pos + 2], "big")
                pos += 2
            fields = []
            for _ in range(count):
                if end - pos < 4:
                    self._quarantine(
                        rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0, stream, tid
                    )
                    return
                ie, length = C.SET_HEADER.unpack_from(buf, pos)
                pos += 4
                if ie & C.ENTERPRISE_BIT:
                    if end - pos < 4:
                        self._quarantine(
                            rec_start, end - rec_start, C.REASON_BAD_TEMPLATE, 0, stream, tid
                        )
                        return
                    pen = int.from_bytes(buf[pos : pos + 4], "big")
                    pos += 4
                    ie = C.enterprise_ie(pen, ie)  # -1 unless read (RFC 5103 reverse, tenant)
                fields.append((ie, length))
            error = None
            if tid < C.MIN_DATA_SET_ID or (options and not 0 < scope <= count):
                error = C.REASON_BAD_TEMPLATE
            self._define(stream, tid, fields, scope, error, rec_start, pos)

    def _v9_template_flowset(self, set_id: int, pos: int, end: int, stream: int, msg: int) -> None:
        """NetFlow v9 (options) template flowset: define each record; a broken one ends it."""
        if set_id == C.V9_TEMPLATE_FLOWSET_ID:
            records, broken = parse_v9_templates(self.buf, pos, end)
        else:
            records, broken = parse_v9_options_templates(self.buf, pos, end)
        self.msg_templates[msg] += len(records) + (broken is not None)  # records of the count
        for r in records:
            error = C.REASON_BAD_TEMPLATE if r.template_id < C.MIN_DATA_SET_ID else None
            self._define(stream, r.template_id, r.fields, r.scope_count, error, r.start, r.end)
        if broken is not None:
            self._quarantine(broken, end - broken, C.REASON_BAD_TEMPLATE, 0, stream)

    # ---------------------------------------------------------------- options data
    def _options_data(self, tpl: Template, start: int, end: int, msg: int) -> None:
        """Decode an options data set now and update the sampler state; an announcement of an
        invalid rate is counted and its record set aside (0 records: not a flow)."""
        vals, _, counts = self._decode_sets(tpl, np.array([start]), np.array([end]))
        self.msg_records[msg] += int(counts.sum())
        self.stats.options_records += vals.n
        changed, invalid = update_samplers(tpl, vals, self.d._samplers)
        if changed:
            self.snapshots.append(dict(self.d._samplers))
        self.stats.invalid_sampling_announcements += len(invalid)
        for i in invalid:  # loop over invalid options records (a handful)
            size = tpl.fixed_length
            at, length = (start + i * size, size) if size else (start, end - start)
            key = dict(stream=tpl.domain, template_id=tpl.template_id)
            self._quarantine(at, length, C.REASON_INVALID_SAMPLING, 0, **key)
