"""FreeRADIUS detail parsing and PPPoE session building on hand-written files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.ingest.radius import (
    build_pppoe_sessions,
    ingest_radius,
    parse_detail_files,
    parse_radius_detail,
)

E0 = 1_717_373_521  # 2024-06-03T00:12:01Z, epoch seconds


def block(status: str | None, session: str, user: str, ts: str | int, **extra: str) -> str:
    """A detail record: header line, tab-indented attributes, no trailing blank line."""
    lines = ["Mon Jun  3 00:12:01 2024"]
    if status is not None:
        lines.append(f"\tAcct-Status-Type = {status}")
    lines += [
        f'\tAcct-Session-Id = "{session}"',
        f'\tUser-Name = "{user}@bb.example.jp"',
        '\tClass = "personal"',
    ]
    lines += [f"\t{k.replace('_', '-')} = {v}" for k, v in extra.items()]
    lines += [f"\tEvent-Timestamp = {ts}", "\tNAS-IP-Address = 192.0.2.1"]
    return "\n".join(lines) + "\n"


GOOD_START = block(
    "Start",
    "a1",
    "s0000001",
    E0,
    Framed_IP_Address="100.64.12.34",
    Delegated_IPv6_Prefix="2001:db8:1234:5600::/56",
    Acct_Session_Time="0",
)
NO_STATUS = block(None, "a2", "s0000002", E0 + 5)
BAD_TS = block("Start", "a3", "s0000003", "yesterday")
BAD_ADDR = block("Start", "a4", "s0000004", E0, Framed_IP_Address="100.64.300.1")
GOOD_STOP = block(
    "Stop", "a1", "s0000001", E0 + 3600, Framed_IP_Address="100.64.12.34", Acct_Session_Time="3600"
)


def write(path: Path, blocks: list[str]) -> Path:
    path.write_text("\n".join(blocks))  # blank line between blocks
    return path


def test_malformed_blocks_quarantined_with_offsets(tmp_path: Path) -> None:
    path = write(tmp_path / "detail-20240603", [GOOD_START, NO_STATUS, BAD_TS, BAD_ADDR, GOOD_STOP])
    events = parse_radius_detail([path])
    assert events.height == 5
    bad = events.filter(pl.col("reason").is_not_null())
    assert bad.get_column("reason").to_list() == [
        "missing_status_type",
        "bad_event_timestamp",
        "bad_address",
    ]
    # each block is followed by one blank line ("\n"), so offsets are cumulative lengths + 1
    first = len(GOOD_START.encode()) + 1
    second = first + len(NO_STATUS.encode()) + 1
    third = second + len(BAD_TS.encode()) + 1
    assert bad.get_column("offset").to_list() == [first, second, third]
    assert bad.get_column("length").to_list() == [len(NO_STATUS), len(BAD_TS), len(BAD_ADDR)]
    assert bad.get_column("source_file").to_list() == [str(path)] * 3
    assert bad.item(0, "payload") == NO_STATUS.rstrip("\n")
    good = events.filter(pl.col("reason").is_null()).row(0, named=True)
    assert good["subscription_id"] == "s0000001"
    assert good["framed_v4"] == (100 << 24) | (64 << 16) | (12 << 8) | 34
    assert good["v6_prefix_hi"] == 0x2001_0DB8_1234_5600 and good["v6_prefix_len"] == 56
    assert good["event_ms"] == E0 * 1000 and good["service_class"] == "personal"


def test_start_stop_session_half_open(tmp_path: Path) -> None:
    events = parse_radius_detail([write(tmp_path / "d", [GOOD_START, GOOD_STOP])])
    sessions = build_pppoe_sessions(events, data_end_ms=(E0 + 86_400) * 1000)
    assert sessions.rows() == [
        (
            "s0000001",
            "personal",
            "a1",
            (100 << 24) | (64 << 16) | (12 << 8) | 34,
            0x2001_0DB8_1234_5600,
            56,
            E0 * 1000,
            (E0 + 3600) * 1000,
        )
    ]


def test_stop_without_start_and_open_sessions(tmp_path: Path) -> None:
    stop_only = block(
        "Stop", "b1", "s0000010", E0 + 7200, Framed_IP_Address="10.0.0.1", Acct_Session_Time="1800"
    )
    open_start = block("Start", "c1", "s0000011", E0, Framed_IP_Address="10.0.0.2")
    open_interim = block(
        "Interim-Update",
        "c1",
        "s0000011",
        E0 + 21_600,
        Framed_IP_Address="10.0.0.2",
        Acct_Session_Time="21600",
    )
    near_end = block("Start", "d1", "s0000012", E0 + 40_000, Framed_IP_Address="10.0.0.3")
    events = parse_radius_detail(
        [write(tmp_path / "d", [stop_only, open_start, open_interim, near_end])]
    )
    data_end_ms = (E0 + 50_000) * 1000
    sessions = build_pppoe_sessions(events, data_end_ms, interim_interval_s=21_600)
    got = {r["session_id"]: (r["start_ms"], r["stop_ms"]) for r in sessions.iter_rows(named=True)}
    assert got == {
        "b1": ((E0 + 7200 - 1800) * 1000, (E0 + 7200) * 1000),  # starts at Stop − Session-Time
        "c1": (E0 * 1000, (E0 + 43_200) * 1000),  # last interim + 6 h
        "d1": ((E0 + 40_000) * 1000, data_end_ms),  # Start + 6 h would pass the end: capped
    }


def test_ingest_radius_writes_sessions_and_quarantine(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "radius").mkdir(parents=True)
    write(raw / "radius" / "detail-20240603", [GOOD_START, NO_STATUS, GOOD_STOP])
    wh = tmp_path / "wh"
    summary = ingest_radius(raw, wh, [dt.date(2024, 6, 3)])
    assert summary["files"] == 1 and summary["files_missing"] == ["detail-20240602"]
    assert summary["records"] == 3 and summary["records_quarantined"] == 1
    assert summary["quarantine_by_reason"] == {"missing_status_type": 1}
    assert summary["sessions"] == 1
    sessions = pl.read_parquet(wh / "reference" / "pppoe_sessions" / "week=2024-06-03.parquet")
    assert (
        sessions.schema["framed_v4"] == pl.UInt32 and sessions.schema["v6_prefix_hi"] == pl.UInt64
    )
    q = pl.read_parquet(wh / "quarantine" / "radius" / "week=2024-06-03.parquet")
    assert q.columns == ["source_file", "offset", "length", "reason", "payload"]
    assert q.item(0, "offset") == len(GOOD_START) + 1


def test_non_utf8_file_names_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "detail-20240603"
    path.write_bytes(GOOD_START.encode() + b"\n\xff\xfe\n")
    with pytest.raises(ValueError, match=rf"detail-20240603: byte offset {len(GOOD_START) + 1}"):
        parse_radius_detail([path])


def test_crlf_and_attribute_line_without_value(tmp_path: Path) -> None:
    broken = GOOD_START.replace('\tClass = "personal"\n', "\tClass personal\n")
    path = tmp_path / "d"
    path.write_bytes((GOOD_START + "\n" + broken).replace("\n", "\r\n").encode())
    events = parse_radius_detail([path])
    assert events.get_column("reason").to_list() == [None, "bad_attribute_line"]
    assert events.item(1, "offset") == len(GOOD_START.replace("\n", "\r\n")) + 2
    assert events.item(0, "session_id") == "a1"  # no stray "\r" in values


def test_files_parsed_apart_give_the_one_table_parse(tmp_path: Path) -> None:
    """Per-file parsing stacks to exactly the table the all-files-at-once parse gives, malformed
    blocks, headerless starts and CRLF included."""
    broken = GOOD_START.replace('\tClass = "personal"\n', "\tClass personal\n")
    paths = [
        write(tmp_path / "detail-20240602", [GOOD_START, NO_STATUS, BAD_TS]),
        write(tmp_path / "detail-20240603", ["\tStray-Attribute = 1\n", BAD_ADDR, GOOD_STOP]),
        tmp_path / "detail-20240604",
        write(tmp_path / "detail-20240605", ["\n\n"]),
    ]
    paths[2].write_bytes((GOOD_START + "\n" + broken).replace("\n", "\r\n").encode())
    one_table = parse_detail_files(paths)
    assert one_table.get_column("reason").to_list() == [
        None, "missing_status_type", "bad_event_timestamp",
        "no_header_line", "bad_address", None,
        None, "bad_attribute_line",
    ]  # fmt: skip
    assert_frame_equal(parse_radius_detail(paths), one_table)
    assert_frame_equal(parse_radius_detail([]), parse_detail_files([]))
