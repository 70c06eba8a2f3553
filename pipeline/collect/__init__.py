"""Live UDP collector of flow exports → rotated pcap files (`python -m pipeline.collect`)."""

from pipeline.collect.collector import Collector, default_collector_dir

__all__ = ["Collector", "default_collector_dir"]
