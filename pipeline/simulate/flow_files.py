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
from pathlib import Path

import numpy as np

from pipeline.atomic import write_bytes_atomic
from pipeline.ingest.ipfix_writer import encode_ipfix_stream
from pipeline.simulate import world

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
) -> tuple[dict[str, bytes], int]:
    """One exporter-hour in `flow_format`; returns (path relative to raw → bytes, next seq)."""
    export_s = hour_end_ms // 1000
    name = f"{hour_of_day:02d}00"
    if flow_format == "ipfix":
        data, sequence = encode_ipfix_stream(
            part,
            observation_domain_id=exporter.observation_domain_id,
            sampling_interval=exporter.sampling_interval,
            export_time_s=export_s,
            sequence_start=sequence,
        )
        rel = f"ipfix/{exporter.name}/{day_iso}/{name}.ipfix"
        write_bytes_atomic(raw_dir / rel, data)
        return {rel: data}, sequence
    if flow_format == "netflow-v9-pcap":
        from pipeline.ingest.netflow_writer import encode_v9_datagrams
        from pipeline.ingest.pcap_writer import write_export_pcap

        uptime_ms = UPTIME_AT_WEEK_START_MS + (hour_end_ms - week_start_ms)
        datagrams, sequence = encode_v9_datagrams(
            part,
            source_id=exporter.observation_domain_id,
            sampling_interval=exporter.sampling_interval,
            export_time_s=export_s,
            sys_uptime_ms=uptime_ms,
            sequence_start=sequence,
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


def _write_nfcapd(path: Path, part: dict, exporter: world.Exporter, hour_end_ms: int) -> None:
    from pipeline.ingest.nfcapd_writer import NfcapdExporterInput, write_nfcapd

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
