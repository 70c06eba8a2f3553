"""Hand-made faulty flow inputs: duplicate files, implausible clocks, exporter-days set aside.

Issue 8 categories 2–4: each wrong input either leaves the numbers right (and counted) or stops
the ingest with one line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Paths
from pipeline.ingest.clocks import (
    REASON_AFTER_WINDOW,
    REASON_BEFORE_WINDOW,
    REASON_END_BEFORE_START,
    day_window_ms,
)
from pipeline.ingest.flows import load_exporters, load_registry, normalise_day
from pipeline.ingest.quality import QuarantineThresholdError, enforce_threshold
from pipeline.ingest.year import ingest_flows
from pipeline.wire.ipfix.writer import write_ipfix_file

DAY = dt.date(2024, 6, 3)  # first day of the 2024 analysis week
T0 = 1_717_340_400_000  # 2024-06-03 00:00 JST
HOUR = 3_600_000
EXPORTERS_YAML = """\
- {name: bras-a, address: 192.0.2.1, observation_domain_id: 1, service: pppoe,
   default_sampling_interval: null}
- {name: bras-b, address: 192.0.2.2, observation_domain_id: 2, service: pppoe,
   default_sampling_interval: null}
"""
KW = dict(sampling_interval=4096, export_time_s=T0 // 1000 + 3600)


def flows_of(starts: list[int], ends: list[int] | None = None) -> dict[str, np.ndarray]:
    n = len(starts)
    z64, z32 = np.zeros(n, np.uint64), np.zeros(n, np.uint32)
    start = np.array(starts, np.int64)
    return {
        "flow_start_ms": start,
        "flow_end_ms": start + 10_000 if ends is None else np.array(ends, np.int64),
        "ip_version": np.full(n, 4, np.uint8),
        "src_v4": z32 + 0x64400001,
        "dst_v4": z32 + 0x08080808,
        "src_v6_hi": z64,
        "src_v6_lo": z64,
        "dst_v6_hi": z64,
        "dst_v6_lo": z64,
        "src_port": np.full(n, 40000, np.uint16),
        "dst_port": np.full(n, 443, np.uint16),
        "protocol": np.full(n, 6, np.uint8),
        "flow_direction": np.ones(n, np.uint8),
        "octets": np.arange(1, n + 1, dtype=np.uint64) * 100,
        "packets": np.ones(n, np.uint64),
    }


def clean_raw(root, exporters_yaml: str = EXPORTERS_YAML):
    """Two exporters, two hourly files each on DAY, flows inside the day."""
    raw = root / "raw"
    raw.mkdir(parents=True)
    (raw / "exporters.yaml").write_text(exporters_yaml)
    for domain, name in ((1, "bras-a"), (2, "bras-b")):
        folder = raw / "ipfix" / name / DAY.isoformat()
        write_ipfix_file(folder / "0000.ipfix", flows_of([T0 + 1_000 * domain, T0 + 5_000]),
                         observation_domain_id=domain, **KW)  # fmt: skip
        write_ipfix_file(folder / "0100.ipfix", flows_of([T0 + HOUR + 7, T0 + HOUR + 9]),
                         observation_domain_id=domain, sequence_start=3, **KW)  # fmt: skip
    return raw


def run_day(raw, wh, day: dt.date = DAY) -> dict[str, dict]:
    exporters, sources = load_registry(raw)
    return {r["exporter"]: r for r in normalise_day(raw, wh, exporters, sources, day)}


def part(wh, kind: str, name: str, day: dt.date = DAY):
    leaf = {"flows": "flows.parquet", "quarantine": "quarantine.parquet"}[kind]
    return wh / kind / f"date={day.isoformat()}" / f"exporter={name}" / leaf


# --- category 2: duplicates -------------------------------------------------------------------


def test_same_file_under_another_name_is_read_once_and_counted(tmp_path):
    clean = clean_raw(tmp_path / "clean")
    clean_reports = run_day(clean, tmp_path / "wh-clean")
    dup = clean_raw(tmp_path / "dup")
    folder = dup / "ipfix" / "bras-a" / DAY.isoformat()
    shutil.copyfile(folder / "0100.ipfix", folder / "0100 (copy).ipfix")
    reports = run_day(dup, tmp_path / "wh-dup")
    a = reports["bras-a"]
    assert a["duplicate_files"] == 1
    assert a["duplicate_file_paths"] == [{
        "file": "ipfix/bras-a/2024-06-03/0100.ipfix",
        "same_as": "ipfix/bras-a/2024-06-03/0100 (copy).ipfix",
    }]  # fmt: skip
    for key in ("files", "records_in", "records_decoded", "records_quarantined", "sequence_gaps"):
        assert a[key] == clean_reports["bras-a"][key], key
    assert reports["bras-b"]["duplicate_files"] == 0
    for name in ("bras-a", "bras-b"):
        assert (
            part(tmp_path / "wh-dup", "flows", name).read_bytes()
            == part(tmp_path / "wh-clean", "flows", name).read_bytes()
        )
    saved = json.loads((tmp_path / "wh-dup" / "ingest_report" / "date=2024-06-03"
                        / "exporter=bras-a.json").read_text())  # fmt: skip
    assert saved["duplicate_files"] == 1 and len(saved["duplicate_file_paths"]) == 1


def test_file_listed_by_two_source_patterns_is_read_once(tmp_path):
    sources = """\
exporters:
- {name: bras-a, address: 192.0.2.1, observation_domain_id: 1, service: pppoe}
- {name: bras-b, address: 192.0.2.2, observation_domain_id: 2, service: pppoe}
sources:
- {format: ipfix, path: "ipfix/{exporter}/{date}/*.ipfix"}
- {format: ipfix, path: "ipfix/{exporter}/{date}/00*.ipfix"}
"""
    clean = run_day(clean_raw(tmp_path / "clean"), tmp_path / "wh-clean")
    reports = run_day(clean_raw(tmp_path / "two", sources), tmp_path / "wh-two")
    for name in ("bras-a", "bras-b"):
        assert reports[name]["duplicate_files"] == 1
        assert reports[name]["records_in"] == clean[name]["records_in"] == 4
        assert (
            part(tmp_path / "wh-two", "flows", name).read_bytes()
            == part(tmp_path / "wh-clean", "flows", name).read_bytes()
        )


def test_copies_of_a_file_without_records_are_no_duplicates(tmp_path):
    """nfdump writes the same 18 bytes for every hour without flows: each is read, none counted."""
    registry = """\
exporters:
- {name: bras-a, address: 192.0.2.1, service: pppoe, default_sampling_interval: 1024}
sources:
- {format: nfdump-csv, path: "nfdump-csv/{exporter}/{date}/*.csv"}
"""
    raw = tmp_path / "raw"
    folder = raw / "nfdump-csv" / "bras-a" / DAY.isoformat()
    folder.mkdir(parents=True)
    (raw / "exporters.yaml").write_text(registry)
    for hour in ("0300", "0400"):
        (folder / f"{hour}.csv").write_text("No matching flows\n")
    report = run_day(raw, tmp_path / "wh")["bras-a"]
    assert (report["duplicate_files"], report["duplicate_file_paths"]) == (0, [])


def _year_paths(root, raw) -> Paths:
    return Paths(root, raw, root / "truth", root / "wh", root / "history", root / "reports")


def test_file_under_two_day_folders_is_read_once_in_the_year(tmp_path):
    raw = clean_raw(tmp_path)
    later = raw / "ipfix" / "bras-a" / (DAY + dt.timedelta(days=1)).isoformat()
    later.mkdir(parents=True)
    shutil.copyfile(raw / "ipfix" / "bras-a" / DAY.isoformat() / "0000.ipfix",
                    later / "0000.ipfix")  # fmt: skip
    paths = _year_paths(tmp_path, raw)
    totals = ingest_flows(paths, 2024, workers=1)
    assert totals["duplicate_files"] == 1
    assert totals["records_in"] == 8 and totals["records_quarantined"] == 0
    report = json.loads((paths.warehouse / "ingest_report" / "date=2024-06-04"
                         / "exporter=bras-a.json").read_text())  # fmt: skip
    assert report["duplicate_files"] == 1 and report["files"] == 0
    assert report["duplicate_file_paths"][0]["same_as"] == "ipfix/bras-a/2024-06-03/0000.ipfix"


# --- category 3: clocks ------------------------------------------------------------------------


def test_implausible_flow_times_are_set_aside_with_a_reason(tmp_path):
    raw = clean_raw(tmp_path)
    lo, hi = day_window_ms(DAY, 180 * 60_000)
    starts = [
        0,  # 1970: an export time of zero
        4_102_444_800_000,  # 2100-01-01: far future
        T0 + 10 * HOUR,  # start after end (uptime arithmetic gone negative)
        T0 - 2 * 86_400_000,  # two days before the folder's day
        T0 - HOUR,  # started an hour before the day (tolerance): kept
        T0 + 23 * HOUR,  # ends within the tolerance after the UTC day: kept
        T0 + 12 * HOUR,  # kept
    ]
    ends = [10, 4_102_444_800_010, T0 + 9 * HOUR, T0 - 2 * 86_400_000 + 5, T0 + 60_000,
            hi - 1, T0 + 12 * HOUR + 5]  # fmt: skip
    folder = raw / "ipfix" / "bras-a" / DAY.isoformat()
    write_ipfix_file(folder / "0200.ipfix", flows_of(starts, ends), observation_domain_id=1,
                     sequence_start=5, **KW)  # fmt: skip
    report = run_day(raw, tmp_path / "wh")["bras-a"]
    assert report["quarantine_by_reason"] == {
        REASON_AFTER_WINDOW: 1, REASON_BEFORE_WINDOW: 2, REASON_END_BEFORE_START: 1,
    }  # fmt: skip
    assert report["records_in"] == 4 + 7
    assert report["records_decoded"] == 4 + 3 and report["records_quarantined"] == 4
    assert report["sampling_intervals"] == {"4096": 7}
    flows = pq.read_table(part(tmp_path / "wh", "flows", "bras-a"))
    assert set(flows.column("flow_start_ms").to_pylist()) >= {T0 - HOUR, T0 + 23 * HOUR}
    assert min(flows.column("flow_start_ms").to_pylist()) >= lo
    q = pq.read_table(part(tmp_path / "wh", "quarantine", "bras-a")).to_pylist()
    kept = {}
    for row in q:  # the set-aside rows are kept, readable, with file and reason
        assert row["source_file"] == "ipfix/bras-a/2024-06-03/0200.ipfix"
        assert row["observation_domain_id"] == 1 and row["template_id"] is None
        rows = pa.ipc.open_stream(row["payload"]).read_all()
        kept[row["reason"]] = sorted(rows.column("flow_start_ms").to_pylist())
    assert kept == {
        REASON_AFTER_WINDOW: [4_102_444_800_000],
        REASON_BEFORE_WINDOW: [0, T0 - 2 * 86_400_000],
        REASON_END_BEFORE_START: [T0 + 10 * HOUR],
    }


def test_utc_named_collector_folder_keeps_its_late_flows():
    """A collector's UTC-dated folder holds flows up to 09:00 JST of the next local day."""
    lo, hi = day_window_ms(DAY, 0)
    assert lo == T0 and hi == T0 + 24 * HOUR + 9 * HOUR


# --- category 4: thresholds ----------------------------------------------------------------


def without_templates(data: bytes) -> bytes:
    """An IPFIX stream whose template sets (id 2) are turned into reserved set id 4: every data
    set then refers to a template never seen."""
    out, off = bytearray(data), 0
    while off + 16 <= len(out):
        length = int.from_bytes(out[off + 2 : off + 4], "big")
        pos = off + 16
        while pos + 4 <= off + length:
            if int.from_bytes(out[pos : pos + 2], "big") == 2:
                out[pos : pos + 2] = (4).to_bytes(2, "big")
            pos += max(4, int.from_bytes(out[pos + 2 : pos + 4], "big"))
        off += length
    return bytes(out)


def test_exporter_day_of_garbage_stops_the_ingest_with_one_line(tmp_path):
    raw = clean_raw(tmp_path)
    folder = raw / "ipfix" / "bras-b" / DAY.isoformat()
    # every data set undecodable: the first file another format's bytes, the second an IPFIX
    # stream whose templates never arrive
    (folder / "0000.ipfix").write_bytes(b"\x00\x09" + bytes(range(200)) * 3)
    (folder / "0100.ipfix").write_bytes(without_templates((folder / "0100.ipfix").read_bytes()))
    with pytest.raises(QuarantineThresholdError) as err:
        ingest_flows(_year_paths(tmp_path, raw), 2024, workers=1)
    line = str(err.value)
    assert "\n" not in line
    assert re.search(
        r"exporter bras-b, day 2024-06-03: 100\.0 % of \d+ records set aside \(threshold 5 %\)",
        line,
    ), line


def test_files_that_give_no_record_stop_the_ingest(tmp_path):
    raw = clean_raw(tmp_path)
    folder = raw / "ipfix" / "bras-a" / DAY.isoformat()
    for n, f in enumerate(sorted(folder.iterdir())):  # templates and sampling options only
        write_ipfix_file(f, flows_of([]), observation_domain_id=1, sampling_interval=4096,
                         export_time_s=T0 // 1000 + 3600 * (n + 1))  # fmt: skip
    with pytest.raises(QuarantineThresholdError, match=r"exporter bras-a, day 2024-06-03: 2 file"):
        ingest_flows(_year_paths(tmp_path, raw), 2024, workers=1)


def test_threshold_is_a_share_not_a_count():
    reports = [
        {"exporter": "r1", "date": "2024-06-03", "files": 2, "records_in": 1000,
         "records_quarantined": 50},
        {"exporter": "r2", "date": "2024-06-03", "files": 0, "records_in": 0,
         "records_quarantined": 0},
        {"exporter": "unregistered", "date": "2024-06-03", "files": 1, "records_in": 9,
         "records_quarantined": 9},
    ]  # fmt: skip
    enforce_threshold(reports, 5.0)  # 5.0 % is allowed; no files is completeness's business
    with pytest.raises(QuarantineThresholdError, match=r"r1, day 2024-06-03: 5\.0 % .*threshold 4"):
        enforce_threshold(reports, 4.0)


def test_clean_exporters_pass(tmp_path):
    raw = clean_raw(tmp_path)
    totals = ingest_flows(_year_paths(tmp_path, raw), 2024, workers=1)
    assert totals["records_quarantined"] == 0 and totals["duplicate_files"] == 0
    assert [e["name"] for e in load_exporters(raw)] == ["bras-a", "bras-b"]


def test_clock_check_keeps_records_in_balance_on_random_times():
    """Whatever the clocks say, records in = decoded + set aside, and what is kept is plausible."""
    from pipeline.ingest.clocks import set_aside_out_of_window
    from pipeline.wire.records import FLOW_SCHEMA, DecodeResult, DecodeStats

    rng = np.random.default_rng(8)
    n = 5000
    start = rng.integers(-(2**40), 2**42, n)
    end = start + rng.integers(-(10**8), 10**8, n)
    start[:200] = T0 + rng.integers(0, 86_400_000, 200)  # some plausible ones
    end[:200] = start[:200] + 1000
    cols = flows_of([0] * n)
    cols |= {"flow_start_ms": start, "flow_end_ms": end,
             "sampling_interval": np.full(n, 512, np.uint32),
             "observation_domain_id": np.ones(n, np.uint32)}  # fmt: skip
    table = pa.table({f.name: pa.array(cols[f.name], f.type) for f in FLOW_SCHEMA})
    stats = DecodeStats(records_in=n, records_decoded=n, sampling_intervals={512: n})
    window = day_window_ms(DAY, 180 * 60_000)
    out = set_aside_out_of_window(DecodeResult(table, [], stats), window, "f")
    s = out.stats
    assert s.records_in == s.records_decoded + s.records_quarantined == n
    assert s.records_decoded == out.flows.num_rows >= 200
    assert sum(e.records for e in out.quarantine) == s.records_quarantined
    assert sum(s.quarantine_by_reason.values()) == s.records_quarantined
    assert s.sampling_intervals == {512: out.flows.num_rows}
    kept_start = out.flows.column("flow_start_ms").to_numpy()
    kept_end = out.flows.column("flow_end_ms").to_numpy()
    assert (kept_start >= window[0]).all() and (kept_end <= window[1]).all()
    assert (kept_end >= kept_start).all()
