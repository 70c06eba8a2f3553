"""Real NetFlow v5, v9 and IPFIX exports (Akvorado's test captures): our decode against Wireshark's.

Wireshark 4.0's JSON (tshark -T json -J cflow) is an independent decoder's view; expected values
are read from it field by field, including the v9/v5 header's sysUptime to date FIRST/LAST_SWITCHED.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.wire.ipfix.decoder import FlowDecoder, IpfixDecoder
from pipeline.wire.pcap.reader import read_udp_datagrams
from tests.support.shared import SHARED_DATA, require_shared

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


def tshark_packets(name: str, data: Path) -> list[dict]:
    packets = json.loads((data / "expected-decodes" / f"{name}.tshark.json").read_text())
    return [pkt["_source"]["layers"]["cflow"] for pkt in packets]


def _sets(cflow: dict) -> list[dict]:
    return [v for k, v in cflow.items() if re.match(r"(Flow)?Set \d+", k) and isinstance(v, dict)]


def tshark_templates(packets: list[dict]) -> tuple[dict[int, int], set[int]]:
    """Record length of every template Wireshark shows, and the ids of options templates."""
    lengths, options = {}, set()
    for cflow in packets:
        for flowset in _sets(cflow):
            for key, tpl in flowset.items():
                m = re.match(r"(Options )?Template \(Id = (\d+)", key)
                if m:
                    tid = int(m.group(2))
                    lengths[tid] = sum(
                        int(f["cflow.template_field_length"])
                        for f in tpl.values()
                        if isinstance(f, dict) and "cflow.template_field_length" in f
                    )
                    if m.group(1):
                        options.add(tid)
    return lengths, options


def tshark_flows(packets: list[dict]) -> list[dict | None]:
    """Flow records in order, each with its packet's header fields under "_header".

    Records Wireshark could not decode ("no template found") appear as None, one per record
    (their template's length, from the template Wireshark shows later, gives the count).
    """
    lengths, options = tshark_templates(packets)
    flows: list[dict | None] = []
    for cflow in packets:
        header = {k: v for k, v in cflow.items() if not isinstance(v, dict)}
        header.update(cflow.get("cflow.timestamp_tree", {}))
        if cflow["cflow.version"] == "5":
            flows += [dict(r, _header=header) for k, r in cflow.items() if k.startswith("pdu ")]
            continue
        for flowset in _sets(cflow):
            set_id = int(flowset.get("cflow.flowset_id", -1))
            if any("no template found" in k for k in flowset):
                body = int(flowset["cflow.flowset_length"]) - 4
                flows += [None] * (body // lengths[set_id])
            elif set_id not in options:
                flows += [
                    dict(r, _header=header) for k, r in flowset.items() if k.startswith("Flow ")
                ]
    return flows


def tshark_sampling(packets: list[dict]) -> set[int]:
    """N announced by options records: v9 sampling interval, IPFIX packet interval/space."""
    _, options = tshark_templates(packets)
    out = set()
    for cflow in packets:
        for flowset in _sets(cflow):
            if int(flowset.get("cflow.flowset_id", -1)) not in options:
                continue
            for rec in flowset.values():
                if not isinstance(rec, dict):
                    continue
                if "cflow.sampling_packet_interval" in rec:
                    i, s = (int(rec[f"cflow.sampling_packet_{k}"]) for k in ("interval", "space"))
                    out.add((i + s) // i)
                elif "cflow.sampling_interval" in rec:
                    out.add(int(rec["cflow.sampling_interval"]))
    return out


def tshark_time_ms(text: str) -> int:
    """'Nov 13, 2023 16:35:30.381000000 UTC' → epoch ms."""
    stamp = dt.datetime.strptime(text[:-7], "%b %d, %Y %H:%M:%S.%f").replace(tzinfo=dt.UTC)
    return round(stamp.timestamp() * 1000)


def expected_times_ms(flow: dict) -> tuple[int, int]:
    """Absolute times, or sysUptime-relative ones dated with the header (export − uptime + t)."""
    tree = flow["cflow.timedelta_tree"]
    if "cflow.abstimestart" in tree:
        return tshark_time_ms(tree["cflow.abstimestart"]), tshark_time_ms(tree["cflow.abstimeend"])
    h = flow["_header"]
    export_ms = int(h["cflow.unix_secs"]) * 1000 + int(h.get("cflow.unix_nsecs", 0)) // 10**6
    boot_ms = export_ms - round(float(h["cflow.sysuptime"]) * 1000)
    return (
        boot_ms + round(float(tree["cflow.timestart"]) * 1000),
        boot_ms + round(float(tree["cflow.timeend"]) * 1000),
    )


def decode_capture(name: str, data: Path, default: int | None) -> tuple[list[dict], dict, list]:
    """Each capture's datagrams grouped by exporter, one decode_datagrams call per capture file."""
    decoders: dict[str, FlowDecoder] = {}
    rows, quarantined, entries = [], {}, []
    for path in captures_for(name, data):
        raw = path.read_bytes()
        grams = read_udp_datagrams(path)
        payload = b"".join(d.payload for d in grams)
        lengths = np.array([len(d.payload) for d in grams], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        offsets, at = [], 0
        for d in grams:  # where each payload sits in the pcap file
            at = raw.index(d.payload, at)
            offsets.append(at)
        offsets = np.array(offsets, dtype=np.int64)
        for src in sorted({d.src for d in grams}):
            rows_of = np.array([d.src == src for d in grams])
            decoder = decoders.setdefault(src, FlowDecoder(src, default))
            result = decoder.decode_datagrams(
                payload, starts[rows_of], lengths[rows_of], offsets[rows_of], path.name
            )
            s = result.stats
            assert s.records_in == s.records_decoded + s.records_quarantined
            assert sum(s.records_by_version.values()) == s.records_decoded
            rows += result.flows.to_pylist()
            entries += result.quarantine
            for reason, n in s.quarantine_by_reason.items():
                quarantined[reason] = quarantined.get(reason, 0) + n
    return rows, quarantined, entries


def address(row: dict, side: str) -> str | None:
    if row["ip_version"] == 4:
        return str(ipaddress.IPv4Address(row[f"{side}_v4"]))
    return str(ipaddress.IPv6Address((row[f"{side}_v6_hi"] << 64) | row[f"{side}_v6_lo"]))


@pytest.mark.parametrize("name", DECODES)
def test_capture_matches_tshark(name: str):
    data = require_shared()
    packets = tshark_packets(name, data)
    expected = tshark_flows(packets)
    # default 1 is an operator's explicit choice for these test exporters (no sampling sent)
    rows, quarantined, _ = decode_capture(name, data, default=1)
    with_ip = [f for f in expected if f is None or "cflow.srcaddr" in f or "cflow.srcaddrv6" in f]
    without_ip = len(expected) - len(with_ip)
    # Wireshark shows records without any IP address (data-link sections): we quarantine them.
    assert quarantined == ({"no IP address fields": without_ip} if without_ip else {})
    assert len(rows) == len(with_ip)
    announced = tshark_sampling(packets)
    for ours, theirs in zip(rows, with_ip, strict=True):
        if theirs is None:  # data before its template: decoded by our second pass only
            assert ours["ip_version"] == 4 and ours["sampling_interval"] in (announced or {1})
            continue
        assert ours["octets"] == int(theirs["cflow.octets"])
        assert ours["packets"] == int(theirs["cflow.packets"])
        assert ours["protocol"] == int(theirs["cflow.protocol"])
        assert ours["src_port"] == int(theirs["cflow.srcport"])
        assert ours["dst_port"] == int(theirs["cflow.dstport"])
        if "cflow.direction" in theirs:
            assert ours["flow_direction"] == int(theirs["cflow.direction"])
        else:
            assert ours["flow_direction"] is None
        v6 = "cflow.srcaddrv6" in theirs
        assert ours["ip_version"] == (6 if v6 else 4)
        assert address(ours, "src") == theirs["cflow.srcaddrv6" if v6 else "cflow.srcaddr"]
        assert address(ours, "dst") == theirs["cflow.dstaddrv6" if v6 else "cflow.dstaddr"]
        assert (ours["flow_start_ms"], ours["flow_end_ms"]) == expected_times_ms(theirs)
        if "cflow.sampling_interval" in theirs:  # carried in the record itself
            assert ours["sampling_interval"] == int(theirs["cflow.sampling_interval"])
        else:
            assert ours["sampling_interval"] in (announced or {1})


def test_v9_data_before_template_in_one_packet_is_decoded_where_wireshark_gives_up():
    """data+templates.pcap: 660 bytes of template 257 (60-byte records) precede its definition."""
    data = require_shared()
    packets = tshark_packets("data+templates", data)
    lengths, _ = tshark_templates(packets)
    assert lengths[257] == 60 and tshark_flows(packets)[:12].count(None) == 11
    rows, quarantined, _ = decode_capture("data+templates", data, default=None)
    assert quarantined == {} and len(rows) == 21
    # rate 100 from the options record (scope System, SAMPLING_INTERVAL 34), no default needed
    assert {r["sampling_interval"] for r in rows} == {100}
    assert {r["observation_domain_id"] for r in rows} == {17170432}


def test_v5_capture_without_announced_rate_or_default_is_quarantined():
    data = require_shared()
    rows, quarantined, entries = decode_capture("nfv5", data, default=None)
    assert rows == [] and quarantined == {"sampling rate missing": 29}
    (q,) = entries
    raw = (data / "flow-exports" / "nfv5.pcap").read_bytes()
    assert q.length == 29 * 48 and raw[q.offset : q.offset + q.length] == q.payload
    assert raw[q.offset - 24 : q.offset - 22] == b"\x00\x05"  # right after the v5 header


def test_v9_sampler_options_map_sampler_id_to_rate():
    """options-data announces FLOW_SAMPLER_ID 1 → random interval 30000; template+data records
    carry FLOW_SAMPLER_ID 1 (same exporter, source id 0): they take 1 in 30000."""
    data = require_shared()
    decoder = FlowDecoder("v9")  # no default
    for name in ("options-template", "options-data", "template", "data"):
        path = data / "flow-exports" / f"{name}.pcap"
        grams = read_udp_datagrams(path)
        payload = b"".join(d.payload for d in grams)
        lengths = np.array([len(d.payload) for d in grams])
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        result = decoder.decode_datagrams(payload, starts, lengths, starts, name)
    assert result.stats.sampling_intervals == {30000: 4}
    assert result.stats.records_by_version == {9: 4}
    # data.pcap's sequence continues template.pcap's stream: 44796986 expected, 44797001 seen
    assert result.stats.sequence == [
        {
            "version": 9,
            "domain": 0,
            "messages": 1,
            "gaps": 1,
            "missing": 15,
            "unit": "packets",
            "restarts": 0,
        }
    ]


def test_mpls_capture_sampling_comes_from_options_record():
    """mpls.pcap announces 1 packet in 10 (samplingPacketInterval 1, Space 9) scoped by template."""
    data = require_shared()
    assert tshark_sampling(tshark_packets("mpls", data)) == {10}
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
