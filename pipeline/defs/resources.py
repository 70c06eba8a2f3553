"""The one resource: where data lives, and whether raw inputs come from the simulator or files."""

from __future__ import annotations

import os

from dagster import ConfigurableResource, Definitions

from pipeline.config import Paths


class PipelineSettings(ConfigurableResource):
    """Raw input source ("simulator" writes them, "files" reads an ISP's own), simulator size and
    the form its flow exports take (ipfix, netflow-v9-pcap, nfcapd, nfdump-csv, nfdump-json)."""

    source: str = "simulator"
    scale: str = "default"
    seed: int = 1
    flow_format: str = "ipfix"
    workers: int = 2
    user_key_salt: str = "bbtr-default-salt"

    def paths(self) -> Paths:
        return Paths.from_env()


def settings_from_env() -> PipelineSettings:
    """Settings from BBTR_* environment variables (the headless build and the UI share them)."""
    return PipelineSettings(
        source=os.environ.get(
            "BBTR_SOURCE", "files" if os.environ.get("BBTR_RAW_DIR") else "simulator"
        ),
        scale=os.environ.get("BBTR_SCALE", "default"),
        seed=int(os.environ.get("BBTR_SEED", "1")),
        flow_format=os.environ.get("BBTR_FLOW_FORMAT", "ipfix"),
        workers=int(os.environ.get("BBTR_WORKERS", "2")),
        user_key_salt=os.environ.get("BBTR_USER_KEY_SALT", "bbtr-default-salt"),
    )


defs = Definitions(resources={"settings": settings_from_env()})
