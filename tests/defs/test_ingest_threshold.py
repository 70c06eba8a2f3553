"""The set-aside threshold stops the headless build, naming exporter, day, share and threshold."""

from __future__ import annotations

import pytest

from pipeline.build import build
from pipeline.config import Settings
from tests.ingest.test_trust_inputs import DAY, clean_raw, without_templates


@pytest.fixture
def garbage_tree(tmp_path, monkeypatch):
    """A raw tree whose exporter bras-b sent only undecodable data on DAY."""
    raw = clean_raw(tmp_path)
    folder = raw / "ipfix" / "bras-b" / DAY.isoformat()
    (folder / "0000.ipfix").write_bytes(b"\x00\x09" + bytes(range(200)) * 3)
    (folder / "0100.ipfix").write_bytes(without_templates((folder / "0100.ipfix").read_bytes()))
    (raw / "counters").mkdir()
    (raw / "counters" / "monthly_traffic.csv").write_text("month,service,direction,bytes\n")
    for name, header in (  # present but empty: the raw folder holds every kind of input
        (f"radius/detail-{DAY:%Y%m%d}", ""),
        (f"ipoe_leases/leases-{DAY}.csv",
         "subscription_id,service_class,delegated_prefix,valid_from,valid_to\n"),
        (f"mobile_billing/billing-{DAY}.csv",
         "date,msisdn,service_class,uplink_bytes,downlink_bytes\n"),
    ):  # fmt: skip
        (raw / name).parent.mkdir(exist_ok=True)
        (raw / name).write_text(header)
    for key in ("BBTR_RAW_DIR", "DAGSTER_HOME", "BBTR_FORCE_REBUILD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BBTR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BBTR_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path


def test_undecodable_exporter_day_stops_the_build_with_one_line(garbage_tree, capsys):
    settings = Settings(source="files", workers=1)
    assert not build(2024, 2024, only=True, settings=settings)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("build: 2024 normalised_flows:")]
    assert len(lines) == 1, err[-3000:]
    assert "exporter bras-b, day 2024-06-03: 100.0 % of" in lines[0]
    assert "set aside (threshold 5 %)" in lines[0]
    assert not (garbage_tree / "reports" / "2024").exists()
