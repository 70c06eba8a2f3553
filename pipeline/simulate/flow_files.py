"""The simulated exporters' flows written in any form an ISP keeps them (one file per hour).

Forms (`FLOW_FORMATS`): RFC 5655 IPFIX files; NetFlow v9 datagrams captured to pcap at the
collector; nfcapd files (nfdump 1.7 layout); nfdump's `-o csv` / `-o json` exports of those.
Each form comes with the `sources` entry of `raw/exporters.yaml` that reads it back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic import write_bytes_atomic
from pipeline.config import Week, local_hour_starts_ms
from pipeline.simulate import world
from pipeline.simulate.flows import HOURS_PER_WEEK
from pipeline.wire.ipfix.writer import encode_ipfix_stream

FLOW_FORMATS = ("ipfix", "netflow-v9-pcap", "nfcapd", "nfdump-csv", "nfdump-json")
SOURCES: dict[str, dict] = {
    "ipfix": {"format": "ipfix", "path": "ipfix/{exporter}/{date}/*.ipfix"},
    "netflow-v9-pcap": {"format": "pcap", "path": "pcap/{date}/*.pcap", "match": ["address"]},
    "nfcapd": {"format": "nfcapd", "path": "nfcapd/{exporter}/{date}/nfcapd.*"},
    "nfdump-csv": {"format": "nfdump-csv", "path": "nfdump-csv/{exporter}/{date}/*.csv"},
    "nfdump-json": {"format": "nfdump-json", "path": "nfdump-json/{exporter}/{date}/*.json"},
}
COLLECTOR_ADDRESS = "192.0.2.250"  # where the simulated exporters send (pcap destination)
COLLECTOR_PORT = 2055
EXPORTER_PORT = 50_000
UPTIME_AT_WEEK_START_MS = 5 * 86_400_000  # routers booted 5 days before each week (v9 sysUptime)
# Realistic faults, the same every week: in this hour of the week these exporters restart (IPFIX:
# sequence numbers start again, template ids are reassigned, data goes out before the templates)
# and a stray datagram of another protocol reaches the collector. No flow is lost: a correct
# decoder recovers every record; a wrong one decodes the new layout with the old template.
FAULT_HOUR_OF_WEEK = 61  # Wednesday 13:00 local
FAULTY_EXPORTERS = ("bras02", "ipoegw01")
DATA_MESSAGES_BEFORE_TEMPLATE = 3


@dataclass(frozen=True)
class FlowForm:
    """How the exporters' flows are written: the form (`FLOW_FORMATS`), and whether the faults
    of FAULT_HOUR_OF_WEEK are injected."""

    flow_format: str = "ipfix"
    faults: bool = True


def check_flow_format(flow_format: str) -> str:
    if flow_format not in FLOW_FORMATS:
        raise ValueError(f"flow format {flow_format!r} is not one of {', '.join(FLOW_FORMATS)}")
    if flow_format.startswith("nfdump-") and shutil.which("nfdump") is None:
        raise RuntimeError(
            f"flow format {flow_format!r} is written by Debian's nfdump, which is not installed "
            "(scripts/setup.sh installs it)"
        )
    return flow_format


def needs_default_sampling(flow_format: str) -> bool:
    """nfdump's text exports drop the sampler: the registry must state each exporter's N."""
    return flow_format.startswith("nfdump-")


def write_exporter_week(
    flows: dict[str, np.ndarray],
    exporter: world.Exporter,
    week: Week,
    raw_dir: Path,
    form: FlowForm,
) -> tuple[dict[str, bytes], int]:
    """One file per local hour of the week (flows sorted by start; sequence numbers continue
    from file to file), in the folder of its local day. With DST, an hour the clocks skip has no
    file and a repeated hour's file holds both occurrences. Returns (path relative to raw dir →
    file bytes, records)."""
    starts = np.asarray(local_hour_starts_ms(week), dtype=np.int64)  # 168 hour starts + week end
    week_start_ms, week_end_ms = int(starts[0]), int(starts[-1])
    order = np.argsort(flows["flow_start_ms"], kind="stable")
    flows = {k: v[order] for k, v in flows.items()}
    t = flows["flow_start_ms"]
    if len(t) and (t.min() < week_start_ms or t.max() >= week_end_ms):
        raise ValueError(f"{exporter.name}: flow start outside the week")
    bounds = np.searchsorted(t, starts)
    written: dict[str, bytes] = {}
    sequence = 0
    days = [d.isoformat() for d in week.days]
    for h in range(HOURS_PER_WEEK):
        if starts[h + 1] == starts[h]:
            continue  # skipped by a spring-forward change
        lo, hi = bounds[h], bounds[h + 1]
        part = {k: v[lo:hi] for k, v in flows.items()}
        faulty = form.faults and h == FAULT_HOUR_OF_WEEK and exporter.name in FAULTY_EXPORTERS
        files, sequence = write_hour(
            form.flow_format, part, exporter, days[h // 24], h % 24,
            int(starts[h + 1]), week_start_ms, sequence, raw_dir, faulty,
        )  # fmt: skip
        written.update(files)
    return written, int(len(t))


def write_hour(
    flow_format: str,
    part: dict[str, np.ndarray],
    exporter: world.Exporter,
    day_iso: str,
    hour_of_day: int,
    hour_end_ms: int,
    week_start_ms: int,
    sequence: int,
    raw_dir: Path,
    faulty: bool = False,
) -> tuple[dict[str, bytes], int]:
    """One exporter-hour in `flow_format`; returns (path relative to raw → bytes, next seq).
    `faulty` injects the restart and stray datagram described at FAULT_HOUR_OF_WEEK."""
    export_s = hour_end_ms // 1000
    name = f"{hour_of_day:02d}00"
    if flow_format == "ipfix":
        kw = dict(
            observation_domain_id=exporter.observation_domain_id,
            sampling_interval=exporter.sampling_interval,
            export_time_s=export_s,
        )
        if faulty:
            data, sequence = _ipfix_with_restart(part, sequence, kw)
        else:
            data, sequence = encode_ipfix_stream(part, sequence_start=sequence, **kw)
        rel = f"ipfix/{exporter.name}/{day_iso}/{name}.ipfix"
        write_bytes_atomic(raw_dir / rel, data)
        return {rel: data}, sequence
    if flow_format == "netflow-v9-pcap":
        from pipeline.wire.netflow_v9 import encode_v9_datagrams
        from pipeline.wire.pcap.writer import write_export_pcap

        uptime_ms = UPTIME_AT_WEEK_START_MS + (hour_end_ms - week_start_ms)
        v9 = dict(
            source_id=exporter.observation_domain_id,
            sampling_interval=exporter.sampling_interval,
            export_time_s=export_s,
        )
        if faulty:  # the router reboots 60 s before the hour's export: uptime and sequence
            half = len(part["flow_start_ms"]) // 2  # restart, data goes out before templates
            before = v9 | {"export_time_s": export_s - 120}  # sent before the reboot
            datagrams, _ = encode_v9_datagrams(
                {k: v[:half] for k, v in part.items()},
                sys_uptime_ms=uptime_ms - 120_000, sequence_start=sequence, **before,
            )  # fmt: skip
            after, sequence = encode_v9_datagrams(
                {k: v[half:] for k, v in part.items()},
                sys_uptime_ms=60_000, sequence_start=0, **v9,
            )  # fmt: skip
            k = min(DATA_MESSAGES_BEFORE_TEMPLATE, len(after) - 1)
            after = after[1 : k + 1] + after[:1] + after[k + 1 :]
            datagrams += [stray_datagram(exporter, export_s), *after]
        else:
            datagrams, sequence = encode_v9_datagrams(
                part, sys_uptime_ms=uptime_ms, sequence_start=sequence, **v9
            )
        rel = f"pcap/{day_iso}/{exporter.name}-{name}.pcap"
        write_export_pcap(
            raw_dir / rel,
            datagrams,
            src_address=exporter.address,
            dst_address=COLLECTOR_ADDRESS,
            src_port=EXPORTER_PORT,
            dst_port=COLLECTOR_PORT,
            time_ms=hour_end_ms,
        )
        return {rel: (raw_dir / rel).read_bytes()}, sequence
    stamp = _nfcapd_stamp(hour_end_ms - 3_600_000)
    nfcapd_rel = f"nfcapd/{exporter.name}/{day_iso}/nfcapd.{stamp}"
    if flow_format == "nfcapd":
        _write_nfcapd(raw_dir / nfcapd_rel, part, exporter, hour_end_ms)
        return {nfcapd_rel: (raw_dir / nfcapd_rel).read_bytes()}, sequence
    kind = flow_format.removeprefix("nfdump-")
    rel = f"nfdump-{kind}/{exporter.name}/{day_iso}/{name}.{kind}"
    with tempfile.TemporaryDirectory() as tmp:
        nfcapd_file = Path(tmp) / "nfcapd.tmp"
        _write_nfcapd(nfcapd_file, part, exporter, hour_end_ms)
        text = subprocess.run(
            ["nfdump", "-r", str(nfcapd_file), "-o", kind, "-q"],
            check=True,
            capture_output=True,
            env=os.environ | {"TZ": "UTC"},
            timeout=600,
        ).stdout
    write_bytes_atomic(raw_dir / rel, text)
    return {rel: text}, sequence


def stray_datagram(exporter: world.Exporter, export_s: int) -> bytes:
    """48 bytes of a NetFlow v5-looking header from a misconfigured device (seeded, fixed)."""
    rng = np.random.default_rng([exporter.observation_domain_id, export_s])
    return b"\x00\x05" + rng.integers(0, 256, 46, dtype=np.uint8).tobytes()


def _split_messages(stream: bytes) -> list[bytes]:
    """An IPFIX stream cut at its message lengths (a writer's own output: well-formed)."""
    out, off = [], 0
    while off < len(stream):
        length = int.from_bytes(stream[off + 2 : off + 4], "big")
        out.append(stream[off : off + length])
        off += length
    return out


def _ipfix_with_restart(part: dict, sequence: int, kw: dict) -> tuple[bytes, int]:
    """First half as usual; a stray datagram; then the restarted exporter's second half: new
    sequence numbers from 0, swapped template ids, data messages before the template message."""
    half = len(part["flow_start_ms"]) // 2
    first = {k: v[:half] for k, v in part.items()}
    second = {k: v[half:] for k, v in part.items()}
    before, _ = encode_ipfix_stream(first, sequence_start=sequence, **kw)
    after, sequence = encode_ipfix_stream(second, sequence_start=0, template_ids=(257, 256), **kw)
    messages = _split_messages(after)
    k = min(DATA_MESSAGES_BEFORE_TEMPLATE, len(messages) - 1)
    reordered = messages[1 : k + 1] + messages[:1] + messages[k + 1 :]
    exporter_ids = kw["observation_domain_id"], kw["export_time_s"]
    stray = stray_datagram(world.Exporter("", "", exporter_ids[0], "", 1), exporter_ids[1])
    return before + stray + b"".join(reordered), sequence


def _write_nfcapd(path: Path, part: dict, exporter: world.Exporter, hour_end_ms: int) -> None:
    from pipeline.wire.nfcapd.writer import NfcapdExporterInput, write_nfcapd

    write_nfcapd(
        path,
        [
            NfcapdExporterInput(
                address=exporter.address,
                observation_domain_id=exporter.observation_domain_id,
                sampling_interval=exporter.sampling_interval,
                flows=part,
            )
        ],
        created_ms=hour_end_ms,
    )


def _nfcapd_stamp(ms: int) -> str:
    """nfcapd's file name stamp YYYYmmddHHMM (UTC)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y%m%d%H%M")
