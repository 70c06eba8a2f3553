"""The raw store's keys give the same files, in the same order, as the folder's glob does: the
staged catalogue and ingest (which never glob a store) read what the local ones read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.config import Paths
from pipeline.ingest.catalogue import (
    MissingRawInputsError,
    flow_keys_for_day,
    flow_keys_for_year,
    raw_files_for_year,
    raw_keys_for_year,
    raw_listing_prefixes,
)
from pipeline.ingest.duplicates import listed_files
from pipeline.ingest.flows import load_registry
from pipeline.ingest.year import catalogue_raw_inputs
from pipeline.storage.stage import SCRATCH_ENV, publish_files
from pipeline.storage.store import Store

YEAR = 2019
REGISTRY = (
    "exporters:\n"
    "  - {name: bras01, service: pppoe, address: 192.0.2.1}\n"
    "  - {name: bras-01, service: pppoe, address: 192.0.2.2}\n"
    "sources:\n"
    "  - {format: ipfix, path: 'ipfix/{exporter}/{date}/*.ipfix'}\n"
    "  - {format: pcap, path: 'pcap/{date}/**/*.pcap', match: [address]}\n"
    "  - {format: nfcapd, path: 'nf/{exporter}/{date}/nfcapd.20[0-9]?*', match: [address]}\n"
)
FILES = [
    "exporters.yaml", "counters/monthly_traffic.csv", "radius/detail-20190602",
    "radius/detail-20190603", "ipoe_leases/leases-2019-06-03.csv",
    "mobile_billing/billing-2019-06-04.csv", "mobile_billing/billing-2018-06-04.csv",
    "ipfix/bras01/2019-06-03/0000.ipfix", "ipfix/bras01/2019-06-03/0100.ipfix",
    "ipfix/bras01/2019-06-03/notes.txt", "ipfix/bras-01/2019-06-03/0000.ipfix",
    "ipfix/bras01/2019-06-02/2300.ipfix", "ipfix/bras01/2019-07-01/0000.ipfix",
    "ipfix/bras01/2019-06-03/.0200.ipfix", "pcap/2019-06-03/a.pcap",
    "pcap/2019-06-03/deep/er/b.pcap", "pcap/2019-06-03-x/c.pcap", "pcap/2019-06-04/a-b/c.pcap",
    "pcap/2019-06-04/a/c.pcap", "nf/bras01/2019-06-05/nfcapd.201906050000",
    "nf/bras01/2019-06-05/nfcapd.current", "nf/bras01/2019-06-05/nfcapd.2",
]  # fmt: skip


def _raw(tmp_path: Path) -> Path:
    for name in FILES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(REGISTRY if name == "exporters.yaml" else name)
    return tmp_path


def test_keys_match_the_folder_glob_in_reading_order(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    exporters, sources = load_registry(raw)
    keys = list(reversed(FILES))  # a listing's order does not matter
    for day in (dt.date(2019, 6, d) for d in range(1, 10)):
        local = [
            p.relative_to(raw).as_posix() for _, _, p in listed_files(raw, exporters, sources, day)
        ]
        assert flow_keys_for_day(keys, exporters, sources, day) == local, day
    assert "ipfix/bras01/2019-06-03/.0200.ipfix" in flow_keys_for_year(
        keys, YEAR, exporters, sources
    )
    local = [p.relative_to(raw).as_posix() for p in raw_files_for_year(raw, YEAR)]
    assert raw_keys_for_year(keys, YEAR, exporters, sources) == local
    assert "pcap/2019-06-03/deep/er/b.pcap" in local and "pcap/2019-06-03-x/c.pcap" not in local


def test_listing_prefixes_cover_every_source(tmp_path: Path) -> None:
    _, sources = load_registry(_raw(tmp_path))
    prefixes = raw_listing_prefixes(sources)
    assert prefixes == [
        "counters",
        "ipfix",
        "ipoe_leases",
        "mobile_billing",
        "nf",
        "pcap",
        "radius",
    ]
    assert all(any(f.startswith(f"{p}/") for p in prefixes) for f in FILES[1:])


def test_staged_catalogue_writes_the_local_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SCRATCH_ENV, str(tmp_path / "scratch"))
    raw = _raw(tmp_path / "local" / "raw")
    local = Paths.from_env({"BBTR_DATA_DIR": str(tmp_path / "local")})
    expected = catalogue_raw_inputs(local, YEAR, "files")
    url = f"file://{tmp_path / 'store'}"
    store = Store.from_url(f"{url}/raw")
    for name in FILES:
        store.put_file(raw / name, name)
    staged = Paths.from_env({"BBTR_DATA_DIR": str(tmp_path / "host"), "BBTR_STORE_URL": url})
    assert catalogue_raw_inputs(staged, YEAR, "files") == expected
    key = f"provenance/year={YEAR}.json"
    published = Store.from_url(f"{url}/warehouse").read_bytes(key)
    assert published == (local.warehouse / key).read_bytes()
    assert not (staged.raw / "ipfix").exists()  # flow files were hashed where they were staged
    assert list((tmp_path / "scratch").iterdir()) == []


def test_staged_catalogue_names_the_store_when_inputs_are_missing(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    staged = Paths.from_env({"BBTR_DATA_DIR": str(tmp_path / "host"), "BBTR_STORE_URL": url})
    with pytest.raises(MissingRawInputsError, match=f"raw store {url}/raw holds no file of"):
        catalogue_raw_inputs(staged, YEAR, "files")
    Store.from_url(f"{url}/raw").put_bytes("counters/monthly_traffic.csv", b"month\n")
    with pytest.raises(MissingRawInputsError, match=f"raw store {url}/raw has no exporters.yaml"):
        catalogue_raw_inputs(staged, YEAR, "files")


def test_flow_files_this_host_uploaded_are_hashed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    monkeypatch.setenv(SCRATCH_ENV, str(scratch))
    _raw(tmp_path / "local" / "raw")
    local = Paths.from_env({"BBTR_DATA_DIR": str(tmp_path / "local")})
    expected = catalogue_raw_inputs(local, YEAR, "files")
    url = f"file://{tmp_path / 'store'}"
    staged = Paths.from_env({"BBTR_DATA_DIR": str(tmp_path / "host"), "BBTR_STORE_URL": url})
    _raw(staged.raw)  # what a collector on this host wrote, then uploaded
    publish_files(Store.from_url(f"{url}/raw"), staged.raw, FILES)
    assert catalogue_raw_inputs(staged, YEAR, "files") == expected
    assert not scratch.exists()  # no task staged anything: every flow file was current here
