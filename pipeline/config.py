"""Paths and report parameters shared by every stage (no stage hard-codes a path or a choice)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = Path(__file__).with_name("params.yaml")
SHARED_DIR = Path(os.environ.get("BBTR_SHARED_DIR", REPO_ROOT.parent / "shared"))
PUBLISHED_DIR = SHARED_DIR / "spec" / "published"
SERVICES_BB = ("pppoe", "ipoe")
RAW_SOURCES = ("simulator", "files")
FLOW_FORMATS = ("ipfix", "netflow-v9-pcap", "nfcapd", "nfdump-csv", "nfdump-json")
SCALES = ("default", "small")
DEFAULT_USER_KEY_SALT = "bbtr-default-salt"  # real data must set BBTR_USER_KEY_SALT


@dataclass(frozen=True)
class Paths:
    """Where each stage reads and writes; all under one data root unless overridden."""

    data_root: Path
    raw: Path  # what an ISP has: ipfix/, radius/, ipoe_leases/, mobile_billing/, counters/
    truth: Path  # simulator ground truth; the pipeline never reads it
    warehouse: Path  # normalised Parquet, attributed flows, DuckDB scratch
    history: Path  # per-year aggregates kept across report years
    reports: Path  # built reports, one folder per year

    @classmethod
    def from_env(cls) -> Paths:
        root = Path(os.environ.get("BBTR_DATA_DIR", REPO_ROOT / "data"))
        return cls(
            data_root=root,
            raw=Path(os.environ.get("BBTR_RAW_DIR", root / "raw")),
            truth=Path(os.environ.get("BBTR_TRUTH_DIR", root / "truth")),
            warehouse=Path(os.environ.get("BBTR_WAREHOUSE_DIR", root / "warehouse")),
            history=Path(os.environ.get("BBTR_HISTORY_DIR", root / "history")),
            reports=Path(os.environ.get("BBTR_REPORTS_DIR", REPO_ROOT / "reports")),
        )


@dataclass(frozen=True)
class Settings:
    """How a build runs: the one place its defaults live (CLI, Dagster resource and tests use it).

    `source`: "simulator" writes the raw inputs, "files" reads an ISP's own (BBTR_RAW_DIR);
    `scale`, `seed` and `flow_format` shape the simulated ISP; `workers` is the process count of
    the day × exporter fan-out; `user_key_salt` keys users by a salted hash.
    """

    source: str = "simulator"
    scale: str = "default"
    seed: int = 1
    flow_format: str = "ipfix"
    workers: int = 2
    user_key_salt: str = DEFAULT_USER_KEY_SALT

    def __post_init__(self) -> None:
        for name, allowed in (("source", RAW_SOURCES), ("scale", SCALES),
                              ("flow_format", FLOW_FORMATS)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected one of {allowed}")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: expected at least 1")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Defaults overridden by BBTR_SOURCE, BBTR_SCALE, BBTR_SEED, BBTR_FLOW_FORMAT, BBTR_WORKERS
        and BBTR_USER_KEY_SALT; with BBTR_RAW_DIR set the source defaults to "files"."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get("BBTR_RAW_DIR"):
            values["source"] = "files"
        for f in fields(cls):
            raw = env.get(f"BBTR_{f.name.upper()}")
            if raw:
                try:
                    values[f.name] = int(raw) if f.type in ("int", int) else raw
                except ValueError:
                    raise ValueError(
                        f"BBTR_{f.name.upper()}={raw!r}: expected an integer"
                    ) from None
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """The BBTR_* variables that reproduce these settings (worker processes, the UI)."""
        return {f"BBTR_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Week:
    """One Monday–Sunday week of raw data that a report year uses."""

    start: dt.date
    role: str  # "analysis", "pre_covid" (Fig 9) or "fig2" (Fig 2 intermediate week)

    @property
    def end_exclusive(self) -> dt.date:
        return self.start + dt.timedelta(days=7)

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(7)]


@lru_cache(maxsize=4)
def load_params(path: str | None = None) -> dict[str, Any]:
    """The report parameters (params.yaml, or BBTR_PARAMS) as a plain dict."""
    p = Path(path or os.environ.get("BBTR_PARAMS", PARAMS_FILE))
    return yaml.safe_load(p.read_text())


def weeks_for_year(year: int, params: dict[str, Any] | None = None) -> list[Week]:
    """The analysis week of `year` first, then its extra weeks, in date order."""
    params = params or load_params()
    spec = params["weeks"][year]
    weeks = [Week(dt.date.fromisoformat(spec["analysis"]), "analysis")]
    weeks += [Week(dt.date.fromisoformat(w["start"]), w["role"]) for w in spec.get("extra", [])]
    return [weeks[0]] + sorted(weeks[1:], key=lambda w: w.start)


def analysis_week(year: int, params: dict[str, Any] | None = None) -> Week:
    return weeks_for_year(year, params)[0]


def report_years(params: dict[str, Any] | None = None) -> list[int]:
    """Report years that have raw data configured (the Dagster partitions)."""
    params = params or load_params()
    return sorted(int(y) for y in params["weeks"])


def utc_offset_ms(params: dict[str, Any] | None = None) -> int:
    """Offset of the report's local time from UTC, in milliseconds."""
    params = params or load_params()
    return int(params["report"]["utc_offset_hours"]) * 3_600_000


def local_day_bounds_ms(day: dt.date, params: dict[str, Any] | None = None) -> tuple[int, int]:
    """UTC epoch-ms half-open bounds of a local calendar day."""
    midnight_utc = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    start = int(midnight_utc.timestamp() * 1000) - utc_offset_ms(params)
    return start, start + 86_400_000


def week_bounds_ms(week: Week, params: dict[str, Any] | None = None) -> tuple[int, int]:
    """UTC epoch-ms half-open bounds of a local Monday–Sunday week."""
    start, _ = local_day_bounds_ms(week.start, params)
    return start, start + 7 * 86_400_000
