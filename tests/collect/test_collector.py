"""Live collector over loopback, its CLI, and the sensor that picks up the files it closes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.collect.__main__ import parse_listen
from pipeline.collect.collector import Collector
from pipeline.config import REPO_ROOT
from pipeline.wire.pcap.reader import read_export_datagrams


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _ipv6_loopback()
NAME = re.compile(r"collector-(\d{8}T\d{6})-(\d+)\.pcap")


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


class Running:
    """A Collector serving in a thread for the duration of a `with` block."""

    def __init__(self, listen, out_dir, rotate_seconds=3600.0, **kw) -> None:
        self.collector = Collector(listen, out_dir, rotate_seconds, flush_seconds=0.05, **kw)
        self.thread = threading.Thread(target=self.collector.serve_forever, args=(0.02,))

    def __enter__(self) -> Collector:
        self.thread.start()
        return self.collector

    def __exit__(self, *exc) -> None:
        self.collector.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def _senders(family: int, host: str, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((host, 0))
        socks.append(s)
    return socks


def _payload(tag: int, i: int) -> bytes:
    """A distinct datagram of 4..1403 bytes."""
    return b"\x00\x09" + bytes([tag, i % 256]) + bytes((i * 37 + tag) % 1400)


def test_collector_writes_complete_pcap_with_sidecar(tmp_path):
    listen = [("127.0.0.1", 0)] + ([("::1", 0)] if HAS_IPV6 else [])
    v4 = _senders(socket.AF_INET, "127.0.0.1", 2)
    v6 = _senders(socket.AF_INET6, "::1", 1) if HAS_IPV6 else []
    sent: list[tuple[str, int, int, bytes]] = []  # exporter, exporter port, collector port, bytes
    with Running(listen, tmp_path) as collector:
        ports = collector.bound_ports
        assert len(ports) == len(listen) and all(p > 0 for p in ports)
        for i in range(300):
            for tag, s in enumerate(v4):
                s.sendto(_payload(tag, i), ("127.0.0.1", ports[0]))
                sent.append(("127.0.0.1", s.getsockname()[1], ports[0], _payload(tag, i)))
            for s in v6:
                s.sendto(_payload(9, i), ("::1", ports[1]))
                sent.append(("::1", s.getsockname()[1], ports[1], _payload(9, i)))
            if i % 50 == 49:  # stay well within the loopback socket buffer
                n_sent = len(sent)
                _wait(lambda n=n_sent: collector.datagrams_received == n)
        _wait(lambda: collector.datagrams_received == len(sent))
        time.sleep(0.2)  # let a flush happen: the file exists only under its temp name
        day_dirs = list(tmp_path.iterdir())
        assert len(day_dirs) == 1
        (tmp,) = day_dirs[0].iterdir()
        assert tmp.name.startswith(".collector-") and tmp.name.endswith(".pcap.tmp")
    for s in v4 + v6:
        s.close()

    (path,) = collector.files_written
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert path.parent == tmp_path / today  # accepted risk: a run across UTC midnight
    assert NAME.fullmatch(path.name)
    assert sorted(p.name for p in path.parent.iterdir()) == [
        path.name.replace(".pcap", ".json"),
        path.name,
    ]
    grams = read_export_datagrams(path)
    assert not grams.problems and grams.skipped_packets == 0
    got = [
        (a, int(sp), int(dp), grams.datagram(i))
        for i, (a, sp, dp) in enumerate(
            zip(grams.src_address, grams.src_port, grams.dst_port, strict=True)
        )
    ]
    assert sorted(got) == sorted(sent)
    # per exporter, arrival order is send order
    for tag_port in {(a, p) for a, p, _, _ in sent}:
        assert [g for g in got if g[:2] == tag_port] == [s for s in sent if s[:2] == tag_port]
    assert (grams.time_ms > 1_700_000_000_000).all() and (
        grams.time_ms[1:] >= grams.time_ms[:-1]
    ).all()

    sidecar = json.loads(path.with_suffix(".json").read_text())
    expected = {}
    for address, _, _, data in sent:
        entry = expected.setdefault(address, {"datagrams": 0, "bytes": 0})
        entry["datagrams"] += 1
        entry["bytes"] += len(data)
    assert sidecar["exporters"] == expected
    assert sidecar["datagrams"] == len(sent) == (900 if HAS_IPV6 else 600)
    assert sidecar["bytes"] == sum(len(s[3]) for s in sent)
    assert sidecar["file"] == path.name
    assert sidecar["first_ms"] == int(grams.time_ms.min())
    assert sidecar["last_ms"] == int(grams.time_ms.max())


def _sleep_into_next_slot(slot_ms: int) -> None:
    """Sleep until 20 ms into the next rotation slot (slots are multiples of slot_ms)."""
    now_ms = time.time_ns() // 1_000_000
    time.sleep((slot_ms - now_ms % slot_ms + 20) / 1000)


def test_rotation_closes_each_file_completely(tmp_path):
    (sender,) = _senders(socket.AF_INET, "127.0.0.1", 1)
    batches = []
    with Running([("127.0.0.1", 0)], tmp_path, rotate_seconds=0.5) as collector:
        port = collector.bound_ports[0]
        for b in range(3):
            _sleep_into_next_slot(500)  # each batch in its own slot, with 480 ms to arrive
            batch = [bytes([b]) * (10 + i) for i in range(20)]
            for d in batch:
                sender.sendto(d, ("127.0.0.1", port))
            batches.append(batch)
            _wait(lambda n=20 * (b + 1): collector.datagrams_received == n)
        _wait(lambda: len(collector.files_written) == 3)
    sender.close()
    files = collector.files_written
    assert len(files) == 3 and len({p.name for p in files}) == 3
    stamps = [NAME.fullmatch(p.name).group(1) for p in files]
    assert stamps == sorted(stamps)
    for path, batch in zip(files, batches, strict=True):
        grams = read_export_datagrams(path)
        assert [grams.datagram(i) for i in range(len(grams))] == batch
        assert json.loads(path.with_suffix(".json").read_text())["datagrams"] == 20
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_restarted_collector_never_overwrites(tmp_path):
    """One-day slots: the file name is fixed for today, so an existing file forces seq 1."""
    today = dt.datetime.now(dt.UTC)
    day_dir = tmp_path / today.strftime("%Y-%m-%d")
    day_dir.mkdir()
    earlier = day_dir / f"collector-{today:%Y%m%d}T000000-0.pcap"
    earlier.write_bytes(b"earlier")
    (sender,) = _senders(socket.AF_INET, "127.0.0.1", 1)
    with Running([("127.0.0.1", 0)], tmp_path, rotate_seconds=86_400) as collector:
        sender.sendto(b"new", ("127.0.0.1", collector.bound_ports[0]))
        _wait(lambda: collector.datagrams_received == 1)
    sender.close()
    assert earlier.read_bytes() == b"earlier"
    assert [p.name for p in collector.files_written] == [earlier.name.replace("-0.", "-1.")]


def test_nothing_received_writes_nothing(tmp_path):
    with Running([("127.0.0.1", 0)], tmp_path):
        time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []


def test_parse_listen():
    assert parse_listen("0.0.0.0:2055") == ("0.0.0.0", 2055)
    assert parse_listen("[::]:4739") == ("::", 4739)
    assert parse_listen("[2001:db8::1]:9995") == ("2001:db8::1", 9995)
    for bad in ("2055", "host:", ":2055", "h:70000", "h:x"):
        with pytest.raises(Exception, match="HOST:PORT"):
            parse_listen(bad)


def test_cli_closes_its_file_on_sigterm(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "pipeline.collect", "--listen", f"127.0.0.1:{port}"]
    cmd += ["--out", str(tmp_path), "--rotate-seconds", "3600", "--rcvbuf", "1048576"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            deadline = time.monotonic() + 20
            while not list(tmp_path.rglob(".*.tmp")):  # resend until it is up and has a file
                assert time.monotonic() < deadline and proc.poll() is None
                s.sendto(b"ping", ("127.0.0.1", port))
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    (path,) = tmp_path.rglob("*.pcap")
    grams = read_export_datagrams(path)
    assert len(grams) >= 1 and grams.payload == b"ping" * len(grams)
    assert json.loads(path.with_suffix(".json").read_text())["datagrams"] == len(grams)
    assert not list(tmp_path.rglob("*.tmp"))


# ------------------------------------------------------------------------------ sensor
def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_new_collector_files_each_file_once(tmp_path):
    from pipeline.defs.sensors import file_year, new_collector_files

    a = _touch(tmp_path / "2024-06-03" / "collector-20240603T000000-0.pcap")
    b = _touch(tmp_path / "2025-01-01" / "collector-20250101T000000-0.pcap")
    _touch(tmp_path / "2024-06-03" / ".collector-20240603T000500-0.pcap.tmp")  # still open
    _touch(tmp_path / "2024-06-03" / "collector-20240603T000000-0.json")
    _touch(tmp_path / "notes" / "x.pcap")  # not a date folder
    files, cursor = new_collector_files(tmp_path, None)
    assert sorted(files) == sorted([a, b])
    assert [file_year(p) for p in sorted(files)] == [2024, 2025]
    assert new_collector_files(tmp_path, cursor) == ([], cursor)

    time.sleep(0.01)
    c = _touch(tmp_path / "2024-06-03" / "collector-20240603T000500-0.pcap")
    files, cursor2 = new_collector_files(tmp_path, cursor)
    assert files == [c]
    assert new_collector_files(tmp_path, cursor2)[0] == []
    # a file renamed into place later with an old mtime still counts (ctime, not mtime)
    d = _touch(tmp_path / "2024-06-04" / "collector-20240604T000000-0.pcap")
    os.utime(d, ns=(1, 1))
    assert new_collector_files(tmp_path, cursor2)[0] == [d]


def test_new_collector_files_equal_ctime_uses_names(tmp_path):
    from pipeline.defs.sensors import new_collector_files

    a = _touch(tmp_path / "2024-06-03" / "a.pcap")
    b = _touch(tmp_path / "2024-06-03" / "b.pcap")
    stamp = a.stat().st_ctime_ns
    cursor = json.dumps({"ctime_ns": stamp, "names": ["2024-06-03/a.pcap"]})
    expected = [] if b.stat().st_ctime_ns < stamp else [b]
    files, nxt = new_collector_files(tmp_path, cursor)
    assert files == expected
    assert new_collector_files(tmp_path, nxt)[0] == []


def test_sensor_requests_one_run_per_year(tmp_path):
    from dagster import (
        SensorResult,
        SkipReason,
        StaticPartitionsDefinition,
        build_sensor_context,
        op,
    )
    from dagster import job as dagster_job

    from pipeline.defs.sensors import build_collector_sensor

    @op
    def noop() -> None:
        pass

    @dagster_job(partitions_def=StaticPartitionsDefinition(["2024", "2025"]))
    def yearly() -> None:
        noop()

    sensor_def = build_collector_sensor(yearly, collector_dir=tmp_path)
    assert sensor_def.name == "collector_files_sensor"

    first = sensor_def(build_sensor_context())
    assert isinstance(first, SkipReason)

    _touch(tmp_path / "2024-06-03" / "collector-20240603T000000-0.pcap")
    _touch(tmp_path / "2024-06-04" / "collector-20240604T000000-0.pcap")
    _touch(tmp_path / "2025-01-02" / "collector-20250102T000000-0.pcap")
    _touch(tmp_path / "2019-01-02" / "collector-20190102T000000-0.pcap")  # not a partition
    result = sensor_def(build_sensor_context())
    assert isinstance(result, SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["2024", "2025"]
    assert result.run_requests[0].tags["collector_files"] == "2"
    assert len({r.run_key for r in result.run_requests}) == 2

    again = sensor_def(build_sensor_context(cursor=result.cursor))
    assert isinstance(again, SkipReason)

    _touch(tmp_path / "2019-05-05" / "collector-20190505T000000-0.pcap")
    only_unknown = sensor_def(build_sensor_context(cursor=result.cursor))
    assert isinstance(only_unknown, SensorResult) and not only_unknown.run_requests
    assert only_unknown.cursor != result.cursor  # advanced: the file never triggers again
