"""Real IPFIX exports (Akvorado's test captures): our decode against Wireshark's (tshark JSON)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA, require_shared

from pipeline.ingest.ipfix_decoder import IpfixDecoder
from pipeline.ingest.pcap import read_udp_datagrams

DECODES = sorted(
    p.name.removesuffix(".tshark.json")
    for p in (SHARED_DATA / "expected-decodes").glob("*.tshark.json")
)


def captures_for(name: str, data: Path) -> list[Path]:
    """`X-template+X-data` → the two captures in that order; `mpls` or `data+templates` → one."""
    single = data / "flow-exports" / f"{name}.pcap"
    if single.exists():
        return [single]
    return [data / "flow-exports" / f"{part}.pcap" for part in name.split("+")]


def tshark_flows(name: str, data: Path) -> list[dict]:
    """Flow records Wireshark shows (options records, which carry no flow counters, left out)."""
    packets = json.loads((data / "expected-decodes" / f"{name}.tshark.json").read_text())
    flows = []
    for pkt in packets:
        for key, value in pkt["_source"]["layers"]["cflow"].items():
            if not (key.startswith("Set ") and isinstance(value, dict)):
                continue
            for rec_key, rec in value.items():
                if rec_key.startswith("Flow ") and "cflow.template_id" not in rec:
                    flows.append(rec)
    return flows


def tshark_sampling(name: str, data: Path) -> set[int]:
    """N announced by sampling options records (samplingPacketInterval/Space or interval)."""
    packets = json.loads((data / "expected-decodes" / f"{name}.tshark.json").read_text())
    out = set()
    for pkt in packets:
        for key, value in pkt["_source"]["layers"]["cflow"].items():
            if key.startswith("Set ") and isinstance(value, dict):
                for rec in value.values():
                    if isinstance(rec, dict) and "cflow.sampling_packet_interval" in rec:
                        i, s = (
                            int(rec[f"cflow.sampling_packet_{k}"]) for k in ("interval", "space")
                        )
                        out.add((i + s) // i)
    return out


def tshark_time_ms(text: str) -> int:
    """'Nov 13, 2023 16:35:30.381000000 UTC' → epoch ms."""
    stamp = dt.datetime.strptime(text[:-7], "%b %d, %Y %H:%M:%S.%f").replace(tzinfo=dt.UTC)
    return round(stamp.timestamp() * 1000)


def address(row: dict, side: str) -> str | None:
    if row["ip_version"] == 4:
        return str(ipaddress.IPv4Address(row[f"{side}_v4"]))
    return str(ipaddress.IPv6Address((row[f"{side}_v6_hi"] << 64) | row[f"{side}_v6_lo"]))


@pytest.mark.parametrize("name", DECODES)
def test_ipfix_capture_matches_tshark(name: str):
    data = require_shared()
    datagrams = [d for path in captures_for(name, data) for d in read_udp_datagrams(path)]
    assert datagrams, f"{name}: no UDP datagrams"
    versions = {int.from_bytes(d.payload[:2], "big") for d in datagrams}
    if versions != {10}:
        pytest.skip(f"NetFlow v{sorted(versions)} capture: v5/v9 decoding is a later issue")
    expected = tshark_flows(name, data)
    decoders: dict[str, IpfixDecoder] = {}
    rows, quarantined = [], {}
    for d in datagrams:  # one decode per datagram, like a UDP collector; state per exporter
        # default 1 is an operator's explicit choice for these test exporters (no sampling sent)
        decoder = decoders.setdefault(d.src, IpfixDecoder(d.src, default_sampling_interval=1))
        result = decoder.decode(d.payload, f"{name}@{d.src}")
        s = result.stats
        assert s.records_in == s.records_decoded + s.records_quarantined
        rows += result.flows.to_pylist()
        for reason, n in s.quarantine_by_reason.items():
            quarantined[reason] = quarantined.get(reason, 0) + n

    with_ip = [f for f in expected if "cflow.srcaddr" in f or "cflow.srcaddrv6" in f]
    without_ip = len(expected) - len(with_ip)
    # Wireshark shows records without any IP address (data-link sections): we quarantine them.
    assert quarantined == ({"no IP address fields": without_ip} if without_ip else {})
    assert len(rows) == len(with_ip)
    announced = tshark_sampling(name, data)
    for ours, theirs in zip(rows, with_ip, strict=True):
        assert ours["octets"] == int(theirs["cflow.octets"])
        assert ours["packets"] == int(theirs["cflow.packets"])
        assert ours["protocol"] == int(theirs["cflow.protocol"])
        assert ours["src_port"] == int(theirs["cflow.srcport"])
        assert ours["dst_port"] == int(theirs["cflow.dstport"])
        assert ours["flow_direction"] == int(theirs["cflow.direction"])
        v6 = "cflow.srcaddrv6" in theirs
        assert ours["ip_version"] == (6 if v6 else 4)
        assert address(ours, "src") == theirs["cflow.srcaddrv6" if v6 else "cflow.srcaddr"]
        assert address(ours, "dst") == theirs["cflow.dstaddrv6" if v6 else "cflow.dstaddr"]
        times = theirs["cflow.timedelta_tree"]
        assert ours["flow_start_ms"] == tshark_time_ms(times["cflow.abstimestart"])
        assert ours["flow_end_ms"] == tshark_time_ms(times["cflow.abstimeend"])
        assert ours["sampling_interval"] in (announced or {1})


def test_mpls_capture_sampling_comes_from_options_record():
    """mpls.pcap announces 1 packet in 10 (samplingPacketInterval 1, Space 9) scoped by template."""
    data = require_shared()
    assert tshark_sampling("mpls", data) == {10}
    decoder = IpfixDecoder("mpls")  # no default: the rate must come from the options record
    (d,) = read_udp_datagrams(data / "flow-exports" / "mpls.pcap")
    result = decoder.decode(d.payload, "mpls")
    assert result.stats.sampling_intervals == {10: 2}
    assert result.stats.records_quarantined == 0


def test_datalink_capture_without_default_is_not_given_rate_one():
    data = require_shared()
    decoder = IpfixDecoder("dl")
    for name in ("datalink-template", "datalink-data"):
        for d in read_udp_datagrams(data / "flow-exports" / f"{name}.pcap"):
            result = decoder.decode(d.payload, name)
    assert result.stats.records_decoded == 0 and result.stats.records_quarantined == 1
