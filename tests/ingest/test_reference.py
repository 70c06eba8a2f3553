"""IPoE leases, mobile billing, monthly counters: parsing, dedup, errors naming file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest.reference import (
    ReferenceFormatError,
    ingest_ipoe_leases,
    ingest_mobile_billing,
    ingest_monthly_counters,
)

LEASE_HEADER = "subscription_id,service_class,delegated_prefix,valid_from,valid_to\n"
MS_2024_06_01 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
DAY_MS = 86_400_000


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_leases_deduplicated_across_days(tmp_path: Path) -> None:
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    write(
        raw / "ipoe_leases" / "leases-2024-06-03.csv",
        LEASE_HEADER
        + "i0001,personal,2001:db8:aa00:1200::/56,2024-06-01T00:00:00Z,2024-07-01T00:00:00Z\n"
        + "i0002,enterprise,2001:db8:bb00::/48,2024-06-01T00:00:00Z,2024-07-01T00:00:00Z\n",
    )
    # next day: i0001 repeated unchanged; i0002 renumbered at 2024-06-04T06:00Z (lease shortened)
    write(
        raw / "ipoe_leases" / "leases-2024-06-04.csv",
        LEASE_HEADER
        + "i0001,personal,2001:db8:aa00:1200::/56,2024-06-01T00:00:00Z,2024-07-01T00:00:00Z\n"
        + "i0002,enterprise,2001:db8:bb00::/48,2024-06-01T00:00:00Z,2024-06-04T06:00:00Z\n"
        + "i0002,enterprise,2001:db8:bb01::/48,2024-06-04T06:00:00Z,2024-07-04T06:00:00Z\n",
    )
    summary = ingest_ipoe_leases(raw, wh, [dt.date(2024, 6, 3), dt.date(2024, 6, 4)])
    assert summary["rows_read"] == 5 and summary["leases"] == 3
    leases = pl.read_parquet(wh / "reference" / "ipoe_leases" / "week=2024-06-03.parquet")
    assert leases.schema["v6_prefix_hi"] == pl.UInt64 and leases.schema["v6_prefix_len"] == pl.UInt8
    end_june = MS_2024_06_01 + 30 * DAY_MS
    renumber = MS_2024_06_01 + 3 * DAY_MS + 6 * 3_600_000
    assert leases.rows() == [
        ("i0001", "personal", 0x2001_0DB8_AA00_1200, 56, MS_2024_06_01, end_june),
        ("i0002", "enterprise", 0x2001_0DB8_BB00_0000, 48, MS_2024_06_01, renumber),
        ("i0002", "enterprise", 0x2001_0DB8_BB01_0000, 48, renumber, renumber + 30 * DAY_MS),
    ]


def test_lease_bad_prefix_names_file_and_line(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write(
        raw / "ipoe_leases" / "leases-2024-06-03.csv",
        LEASE_HEADER
        + "i0001,personal,2001:db8:aa00:1200::/56,2024-06-01T00:00:00Z,2024-07-01T00:00:00Z\n"
        + "i0002,personal,2001:db8:zz00::/56,2024-06-01T00:00:00Z,2024-07-01T00:00:00Z\n",
    )
    with pytest.raises(
        ReferenceFormatError, match=r"leases-2024-06-03\.csv: line 3: delegated_prefix"
    ):
        ingest_ipoe_leases(raw, tmp_path / "wh", [dt.date(2024, 6, 3)])


BILLING_HEADER = "date,msisdn,service_class,uplink_bytes,downlink_bytes\n"


def test_billing_parsed(tmp_path: Path) -> None:
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    write(
        raw / "mobile_billing" / "billing-2024-06-04.csv",
        BILLING_HEADER + "2024-06-04,08070000002,enterprise,5,6\n",
    )
    write(
        raw / "mobile_billing" / "billing-2024-06-03.csv",
        BILLING_HEADER + "2024-06-03,08070000001,personal,1200,34000\n"
        "2024-06-03,08070000002,enterprise,0,0\n",
    )
    summary = ingest_mobile_billing(raw, wh)
    assert summary == {
        "files": 2,
        "files_missing": [],
        "rows": 3,
        "numbers": 2,
        "output": str(wh / "reference" / "mobile_usage.parquet"),
    }
    usage = pl.read_parquet(wh / "reference" / "mobile_usage.parquet")
    assert usage.rows() == [
        (dt.date(2024, 6, 3), "08070000001", "personal", 1200, 34000),  # leading zero kept
        (dt.date(2024, 6, 3), "08070000002", "enterprise", 0, 0),
        (dt.date(2024, 6, 4), "08070000002", "enterprise", 5, 6),
    ]


def test_billing_bad_number_names_file_and_line(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write(
        raw / "mobile_billing" / "billing-2024-06-03.csv",
        BILLING_HEADER + "2024-06-03,08070000001,personal,1200,34000\n"
        "2024-06-03,08070000002,personal,12x4,100\n",
    )
    with pytest.raises(ReferenceFormatError) as err:
        ingest_mobile_billing(raw, tmp_path / "wh")
    msg = str(err.value)
    assert "billing-2024-06-03.csv: line 3: uplink_bytes is not a non-negative integer" in msg
    assert "12x4" in msg


def test_billing_negative_and_header_errors(tmp_path: Path) -> None:
    neg = write(
        tmp_path / "a" / "mobile_billing" / "billing-2024-06-03.csv",
        BILLING_HEADER + "2024-06-03,0807,personal,1,-5\n",
    )
    with pytest.raises(ReferenceFormatError, match=r"line 2: downlink_bytes is not a non-negative"):
        ingest_mobile_billing(neg.parent.parent, tmp_path / "wh")
    write(
        tmp_path / "b" / "mobile_billing" / "billing-2024-06-03.csv",
        "date,msisdn,uplink_bytes,downlink_bytes\n2024-06-03,0807,1,5\n",
    )
    with pytest.raises(ReferenceFormatError, match=r"billing-2024-06-03\.csv: line 1: header"):
        ingest_mobile_billing(tmp_path / "b", tmp_path / "wh")


COUNTER_HEADER = "month,service,direction,bytes\n"


def test_monthly_counters(tmp_path: Path) -> None:
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    write(
        raw / "counters" / "monthly_traffic.csv",
        COUNTER_HEADER + "2020-01,mobile,OUT,1.5e14\n2020-01,broadband_pppoe,IN,200\n"
        "2019-12,broadband_ipoe,OUT,7\n",
    )
    summary = ingest_monthly_counters(raw, wh)
    assert summary["rows"] == 3 and summary["first_month"] == "2019-12"
    counters = pl.read_parquet(wh / "reference" / "monthly_traffic.parquet")
    assert counters.schema["bytes"] == pl.Float64
    assert counters.rows() == [
        ("2019-12", "broadband_ipoe", "OUT", 7.0),
        ("2020-01", "broadband_pppoe", "IN", 200.0),
        ("2020-01", "mobile", "OUT", 1.5e14),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2020-13,mobile,OUT,1", "line 2: month not YYYY-MM"),
        ("2020-01,fixed,OUT,1", "line 2: unknown service"),
        ("2020-01,mobile,DOWN,1", "line 2: direction is not IN/OUT"),
        ("2020-01,mobile,OUT,lots", "line 2: bytes is not a non-negative number"),
    ],
)
def test_monthly_counters_errors(tmp_path: Path, row: str, message: str) -> None:
    raw = tmp_path / "raw"
    write(raw / "counters" / "monthly_traffic.csv", COUNTER_HEADER + row + "\n")
    with pytest.raises(ReferenceFormatError, match=message):
        ingest_monthly_counters(raw, tmp_path / "wh")


@pytest.mark.parametrize(
    ("text", "hi", "length"),
    [
        ("2001:db8:1234:5600::/56", 0x2001_0DB8_1234_5600, 56),
        ("2001:DB8:ab::/48", 0x2001_0DB8_00AB_0000, 48),
        ("::/1", 0, 1),
        ("1:2:3:4:5:6:7:8/64", 0x0001_0002_0003_0004, 64),
        ("2001:db8:1234:56ff::/56", 0x2001_0DB8_1234_5600, 56),  # host bits cleared
        ("1::2/64", 0x0001_0000_0000_0000, 64),
        ("2001:db8::1::/48", None, None),  # two "::"
        ("1:2:3:4:5:6:7:8::/64", None, None),  # nine groups
        ("2001:db8::/65", None, None),  # longer than the 64 matched bits
        ("2001:db8::/0", None, None),
        ("2001:db8:zz::/48", None, None),
        ("1:::2/48", None, None),
    ],
)
def test_ipv6_prefix_text(text: str, hi: int | None, length: int | None) -> None:
    from pipeline.wire.address_text import ipv6_prefix_text_to_hi_len

    out = ipv6_prefix_text_to_hi_len(pl.Series([text]))
    assert out.row(0) == (hi, length)


def test_ipv4_text() -> None:
    from pipeline.wire.address_text import ipv4_text_to_uint32

    got = ipv4_text_to_uint32(
        pl.Series(["100.64.12.34", "255.255.255.255", "256.1.1.1", "1.2.3", None])
    )
    assert got.to_list() == [0x6440_0C22, 0xFFFF_FFFF, None, None, None]
