"""Flow sources of `raw/exporters.yaml`: which files hold flow exports, in which format, for whom.

The registry is the one place a user describes their flow data (README "Pointing it at your data"):

    exporters:                      # who exports (the report's per-exporter unit)
      - {name: bras01, service: pppoe, address: 192.0.2.1, observation_domain_id: 101,
         default_sampling_interval: null}
    sources:                        # where their exports are (paths relative to raw/)
      - {format: pcap, path: "pcap/{date}/*.pcap", match: [address]}

`{date}` (YYYY-MM-DD) is required; `{exporter}` is optional: with it every file belongs to that
exporter, without it records are matched to exporters by `match` keys.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

FORMATS = ("ipfix", "pcap", "nfcapd", "nfdump-csv", "nfdump-json")
MATCH_KEYS = ("address", "observation_domain_id")
DEFAULT_SOURCE = {"format": "ipfix", "path": "ipfix/{exporter}/{date}/*.ipfix"}
UNREGISTERED = "unregistered"  # pseudo-exporter that keeps records no registry entry claims


@dataclass(frozen=True)
class FlowSource:
    """One configured source: format, path pattern (relative to raw/) and exporter matching."""

    format: str
    path: str
    match: tuple[str, ...] = ("address",)

    @property
    def per_exporter(self) -> bool:
        return "{exporter}" in self.path

    def files(self, raw_dir: Path, day: dt.date, exporter: str | None = None) -> list[Path]:
        """Files of one day (and exporter, for per-exporter paths), in name order."""
        pattern = self.path.replace("{date}", day.isoformat())
        if exporter is not None:
            pattern = pattern.replace("{exporter}", exporter)
        return sorted(p for p in Path(raw_dir).glob(pattern) if p.is_file())

    def keys(self, keys: Iterable[str], day: dt.date, exporter: str | None = None) -> list[str]:
        """Of store `keys` (relative, '/'-separated), those `files` would give for one day (and
        exporter) in a folder holding them, in the same order."""
        pattern = self.path.replace("{date}", day.isoformat())
        if exporter is not None:
            pattern = pattern.replace("{exporter}", exporter)
        parts = tuple(p for p in pattern.split("/") if p not in ("", "."))
        return sorted((k for k in keys if _glob_match(k.split("/"), parts)), key=PurePosixPath)

    def static_prefix(self) -> str:
        """The folders of the path before its first placeholder or wildcard (a listing root)."""
        fixed = []
        for part in self.path.split("/")[:-1]:
            if "{" in part or any(c in part for c in "*?["):
                break
            fixed.append(part)
        return "/".join(fixed)

    def all_files(self, raw_dir: Path) -> list[Path]:
        pattern = self.path.replace("{date}", "*").replace("{exporter}", "*")
        return sorted(Path(p) for p in glob.glob(str(Path(raw_dir) / pattern)))


def _glob_match(names: list[str], parts: tuple[str, ...]) -> bool:
    """Whether a key's names match a relative glob pattern's parts as `Path.glob` would (`*`, `?`
    and `[…]` within one name, `**` for any number of folders)."""
    if not parts:
        return not names
    if parts[0] == "**":
        return any(_glob_match(names[i:], parts[1:]) for i in range(len(names)))
    return (
        bool(names)
        and fnmatch.fnmatchcase(names[0], parts[0])
        and _glob_match(names[1:], parts[1:])
    )


def parse_sources(data: object, where: str) -> list[FlowSource]:
    """Validated sources list (the default IPFIX layout when absent)."""
    if data is None:
        data = [DEFAULT_SOURCE]
    if not isinstance(data, list) or not data:
        raise ValueError(f"{where}: 'sources' must be a non-empty list")
    out = []
    for n, s in enumerate(data):
        at = f"{where}: source #{n + 1}"
        if not isinstance(s, dict):
            raise ValueError(f"{at}: expected a mapping, got {s!r}")
        fmt, path = s.get("format"), s.get("path")
        if fmt not in FORMATS:
            raise ValueError(f"{at}: format {fmt!r} is not one of {', '.join(FORMATS)}")
        if not isinstance(path, str) or "{date}" not in path:
            raise ValueError(f"{at}: path must be a string containing {{date}}, got {path!r}")
        if path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(f"{at}: path {path!r} must stay inside the raw directory")
        match = s.get("match", ["address"])
        if isinstance(match, str):
            match = [match]
        if not match or any(m not in MATCH_KEYS for m in match):
            raise ValueError(f"{at}: match {match!r} must be a list drawn from {MATCH_KEYS}")
        if fmt == "ipfix" and "{exporter}" not in path and "address" in match:
            raise ValueError(
                f"{at}: IPFIX files carry no exporter address; put {{exporter}} in the path "
                "or match on observation_domain_id"
            )
        out.append(FlowSource(fmt, path, tuple(match)))
    return out


class ExporterMatcher:
    """Maps (exporter address, observation domain) of decoded records to registry names."""

    def __init__(self, exporters: list[dict], match: tuple[str, ...]) -> None:
        self.match = match
        self._by_key: dict[tuple, str] = {}
        for e in exporters:
            key = self._key(e.get("address"), e.get("observation_domain_id"))
            if None not in key:
                self._by_key.setdefault(key, e["name"])

    def _key(self, address: object, domain: object) -> tuple:
        parts = []
        if "address" in self.match:
            parts.append(None if address is None else str(address))
        if "observation_domain_id" in self.match:
            parts.append(None if domain is None else int(domain))
        return tuple(parts)

    def name(self, address: str | None, domain: int | None) -> str:
        """The registry name, or UNREGISTERED."""
        return self._by_key.get(self._key(address, domain), UNREGISTERED)
