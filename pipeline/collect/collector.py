"""Live UDP collector: export datagrams of any version → rotated classic pcap files.

Each datagram is kept with its exporter's address and port, the listening address and port, and
its receive time, as a synthetic Ethernet/IP/UDP frame (pipeline.wire.pcap.writer). Files are
written as `DIR/<YYYY-MM-DD>/.collector-<YYYYmmddTHHMMSS>-<seq>.pcap.tmp` (UTC) and renamed to
`collector-<…>-<seq>.pcap` when closed, after their JSON sidecar of per-exporter counts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.atomic import write_text_atomic
from pipeline.config import Paths
from pipeline.wire.pcap.writer import encode_capture_records, pcap_file_header

log = logging.getLogger(__name__)

MAX_DATAGRAM_BYTES = 65_535
FILE_PREFIX = "collector-"


def default_collector_dir() -> Path:
    """BBTR_COLLECTOR_DIR, or `<raw>/collector` of the configured data root."""
    env = os.environ.get("BBTR_COLLECTOR_DIR")
    return Path(env) if env else Paths.from_env().raw / "collector"


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


@dataclass
class _OpenFile:
    """The capture file being written: temp path, final path and counts for its sidecar."""

    tmp: Path
    final: Path
    slot_end_ms: int
    handle: object
    first_ms: int | None = None
    last_ms: int | None = None
    by_exporter: dict[str, list[int]] = field(default_factory=dict)  # address → [datagrams, bytes]


@dataclass
class _Buffer:
    """Datagrams received but not yet written, one list per capture column."""

    payloads: list[bytes] = field(default_factory=list)
    src: list[str] = field(default_factory=list)
    dst: list[str] = field(default_factory=list)
    src_ports: list[int] = field(default_factory=list)
    dst_ports: list[int] = field(default_factory=list)
    time_ms: list[int] = field(default_factory=list)
    n_bytes: int = 0


class Collector:
    """Receive on every `(host, port)` of `listen`; rotate files every `rotate_seconds` (UTC slots).

    Sockets are bound at construction (`bound_ports` tells the ports when 0 was asked for);
    `serve_forever()` runs until `stop()` (thread-safe) and then closes the open file cleanly.
    """

    def __init__(
        self,
        listen: list[tuple[str, int]],
        out_dir: Path,
        rotate_seconds: float,
        *,
        rcvbuf: int | None = None,
        flush_datagrams: int = 4096,
        flush_bytes: int = 8 << 20,
        flush_seconds: float = 1.0,
    ) -> None:
        if rotate_seconds <= 0:
            raise ValueError(f"rotate_seconds must be > 0, not {rotate_seconds}")
        self.out_dir = Path(out_dir)
        self.rotate_ms = max(1, round(rotate_seconds * 1000))
        self.flush_datagrams, self.flush_bytes = flush_datagrams, flush_bytes
        self.flush_seconds = flush_seconds
        self.files_written: list[Path] = []
        self.datagrams_received = 0
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._buffer = _Buffer()
        self._file: _OpenFile | None = None
        try:
            for host, port in listen:
                self._sockets.append(self._bind(host, port, rcvbuf))
        except BaseException:
            self.close_sockets()
            raise

    # ---------------------------------------------------------------- sockets
    @staticmethod
    def _bind(host: str, port: int, rcvbuf: int | None) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:  # [::] beside 0.0.0.0 on the same port
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((host, port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    @property
    def bound_ports(self) -> list[int]:
        """The port of each listening socket, in `listen` order."""
        return [s.getsockname()[1] for s in self._sockets]

    def close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    # ---------------------------------------------------------------- main loop
    def stop(self) -> None:
        """Ask `serve_forever` to return after closing the current file (any thread, signals)."""
        self._stop.set()

    def serve_forever(self, poll_seconds: float = 0.2) -> None:
        """Receive until `stop()`; then write out the buffer and close (rename) the open file."""
        for sock in self._sockets:
            self._selector.register(sock, selectors.EVENT_READ)
        last_flush = time.monotonic()
        try:
            while not self._stop.is_set():
                for key, _ in self._selector.select(poll_seconds):
                    self._drain(key.fileobj)
                now_ms = time.time_ns() // 1_000_000
                if self._file is not None and now_ms >= self._file.slot_end_ms:
                    self._close_file()
                buffered = self._buffer
                if (
                    len(buffered.payloads) >= self.flush_datagrams
                    or buffered.n_bytes >= self.flush_bytes
                    or (buffered.payloads and time.monotonic() - last_flush >= self.flush_seconds)
                ):
                    self._flush()
                    last_flush = time.monotonic()
        finally:
            for sock in self._sockets:
                self._selector.unregister(sock)
            self._close_file()
            self.close_sockets()

    def _drain(self, sock: socket.socket) -> None:
        """Read the datagrams waiting on `sock` (a recvfrom each: a socket, not a flow loop)."""
        local = sock.getsockname()
        for _ in range(self.flush_datagrams):
            try:
                payload, peer = sock.recvfrom(MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            received_ms = time.time_ns() // 1_000_000
            if self._file is not None and received_ms >= self._file.slot_end_ms:
                self._close_file()
            if self._file is None:
                self._open_file(received_ms)
            f = self._file
            address = peer[0].split("%")[0]  # drop an IPv6 scope id
            counts = f.by_exporter.setdefault(address, [0, 0])
            counts[0] += 1
            counts[1] += len(payload)
            f.first_ms = received_ms if f.first_ms is None else f.first_ms
            f.last_ms = received_ms
            b = self._buffer
            b.payloads.append(payload)
            b.src.append(address)
            b.dst.append(local[0].split("%")[0])
            b.src_ports.append(peer[1])
            b.dst_ports.append(local[1])
            b.time_ms.append(received_ms)
            b.n_bytes += len(payload)
            self.datagrams_received += 1

    # ---------------------------------------------------------------- files
    def _open_file(self, now_ms: int) -> None:
        slot_start = now_ms - now_ms % self.rotate_ms
        stamp = _utc(slot_start)
        day_dir = self.out_dir / stamp.strftime("%Y-%m-%d")
        day_dir.mkdir(parents=True, exist_ok=True)
        seq = 0
        while True:  # a restarted collector never overwrites an earlier file of the same slot
            name = f"{FILE_PREFIX}{stamp:%Y%m%dT%H%M%S}-{seq}.pcap"
            final, tmp = day_dir / name, day_dir / f".{name}.tmp"
            if not final.exists() and not tmp.exists():
                break
            seq += 1
        handle = open(tmp, "wb")  # noqa: SIM115 - stays open across loop iterations
        handle.write(pcap_file_header())
        self._file = _OpenFile(tmp, final, slot_start + self.rotate_ms, handle)

    def _flush(self) -> None:
        """Append the buffered datagrams to the open temp file."""
        b = self._buffer
        if not b.payloads or self._file is None:
            return
        records = encode_capture_records(
            b.payloads,
            src_addresses=b.src,
            dst_addresses=b.dst,
            src_ports=b.src_ports,
            dst_ports=b.dst_ports,
            time_ms=b.time_ms,
        )
        self._file.handle.write(records)
        self._buffer = _Buffer()

    def _close_file(self) -> None:
        """Flush, fsync, write the sidecar, then rename the temp file to its final name."""
        f = self._file
        if f is None:
            return
        self._flush()
        f.handle.flush()
        os.fsync(f.handle.fileno())
        f.handle.close()
        self._file = None
        exporters = {
            address: {"datagrams": n, "bytes": size}
            for address, (n, size) in sorted(f.by_exporter.items())
        }
        sidecar = {
            "file": f.final.name,
            "first_ms": f.first_ms,
            "last_ms": f.last_ms,
            "datagrams": sum(e["datagrams"] for e in exporters.values()),
            "bytes": sum(e["bytes"] for e in exporters.values()),
            "exporters": exporters,
        }
        write_text_atomic(f.final.with_suffix(".json"), json.dumps(sidecar, indent=1) + "\n")
        os.replace(f.tmp, f.final)
        self.files_written.append(f.final)
        log.info("closed %s: %d datagrams", f.final, sidecar["datagrams"])
