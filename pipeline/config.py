"""Paths and report parameters shared by every stage (no stage hard-codes a path or a choice)."""

from __future__ import annotations

import datetime as dt
import os
import re
import warnings
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config_schema import ConfigError, load_params_file

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
    # Where raw, warehouse and history live (pipeline/storage): "" = the local folders above;
    # else a URL (s3://bucket/prefix, file:///path) and the folders above are this host's working
    # copies of the keys its steps read and write.
    raw_url: str = ""
    warehouse_url: str = ""
    history_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        """Folders from BBTR_*_DIR; stores from BBTR_STORE_URL (raw/, warehouse/, history/ under
        it) or BBTR_RAW_URL, BBTR_WAREHOUSE_URL, BBTR_HISTORY_URL one by one."""
        env = os.environ if env is None else env
        root = Path(env.get("BBTR_DATA_DIR", REPO_ROOT / "data"))
        store_root = env.get("BBTR_STORE_URL", "").rstrip("/")
        urls = {
            name: env.get(f"BBTR_{name.upper()}_URL")
            or (f"{store_root}/{name}" if store_root else "")
            for name in ("raw", "warehouse", "history")
        }
        return cls(
            data_root=root,
            raw=Path(env.get("BBTR_RAW_DIR", root / "raw")),
            truth=Path(env.get("BBTR_TRUTH_DIR", root / "truth")),
            warehouse=Path(env.get("BBTR_WAREHOUSE_DIR", root / "warehouse")),
            history=Path(env.get("BBTR_HISTORY_DIR", root / "history")),
            reports=Path(env.get("BBTR_REPORTS_DIR", REPO_ROOT / "reports")),
            raw_url=urls["raw"],
            warehouse_url=urls["warehouse"],
            history_url=urls["history"],
        )

    @property
    def remote(self) -> bool:
        """Whether any of raw, warehouse, history lives in a store other than its local folder."""
        return bool(self.raw_url or self.warehouse_url or self.history_url)

    def store_url(self, name: str) -> str:
        """The store URL of "raw", "warehouse" or "history" (its local folder when none is set)."""
        return getattr(self, f"{name}_url") or str(getattr(self, name))


_DASK_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class Settings:
    """How a build runs: the one place its defaults live (CLI, Dagster resource and tests use it).

    `source`: "simulator" writes the raw inputs, "files" reads an ISP's own (BBTR_RAW_DIR);
    `scale`, `seed` and `flow_format` shape the simulated ISP; `workers` is the process count of
    the day × exporter fan-out; `user_key_salt` keys users by a salted hash; `dask_scheduler`
    (tcp://HOST:PORT) runs that fan-out on a Dask cluster instead ("" = local processes).
    """

    source: str = "simulator"
    scale: str = "default"
    seed: int = 1
    flow_format: str = "ipfix"
    workers: int = 2
    user_key_salt: str = DEFAULT_USER_KEY_SALT
    dask_scheduler: str = ""

    def __post_init__(self) -> None:
        for name, allowed in (("source", RAW_SOURCES), ("scale", SCALES),
                              ("flow_format", FLOW_FORMATS)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected one of {allowed}")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: expected at least 1")
        if self.dask_scheduler and not _DASK_ADDRESS.match(self.dask_scheduler):
            raise ValueError(
                f"dask_scheduler={self.dask_scheduler!r} (BBTR_DASK_SCHEDULER): expected a Dask "
                "scheduler address tcp://HOST:PORT or tls://HOST:PORT, or nothing for local "
                "processes"
            )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Defaults overridden by BBTR_SOURCE, BBTR_SCALE, BBTR_SEED, BBTR_FLOW_FORMAT,
        BBTR_WORKERS, BBTR_USER_KEY_SALT and BBTR_DASK_SCHEDULER; with BBTR_RAW_DIR or
        BBTR_RAW_URL set the source defaults to "files" and the salt must be set (an ISP's
        subscriber ids are never keyed by the published default salt)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        raw_var = next((v for v in ("BBTR_RAW_DIR", "BBTR_RAW_URL") if env.get(v)), None)
        if raw_var:
            values["source"] = "files"
            if not env.get("BBTR_USER_KEY_SALT"):
                raise ConfigError(
                    f"{raw_var}={env[raw_var]} is set (an ISP's own data) but "
                    "BBTR_USER_KEY_SALT is not: set it to a secret string kept with the data "
                    "(user keys are salted hashes of subscriber ids)"
                )
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
    """The report parameters (params.yaml, or BBTR_PARAMS) as a plain dict, checked against the
    schema (`config_schema.Params`: ConfigError naming the file, key and allowed values)."""
    p = Path(path or os.environ.get("BBTR_PARAMS", PARAMS_FILE))
    return load_params_file(p)


def listed_years(params: dict[str, Any] | None = None) -> list[int]:
    """Years whose weeks params.yaml lists explicitly (the simulated ISP's calibrated years)."""
    params = params or load_params()
    return sorted(int(y) for y in params["weeks"])


def _month_day(text: str, key: str) -> tuple[int, int]:
    """`MM-DD` → (month, day), checked in a non-leap year (29 February is not in every year)."""
    try:
        day = dt.date.fromisoformat(f"2001-{text}")
    except (TypeError, ValueError):
        raise ValueError(
            f"{params_path()}: {key}={text!r}: expected a month-day like 05-29"
        ) from None
    return day.month, day.day


def rule_analysis_week(year: int, params: dict[str, Any] | None = None) -> Week:
    """The analysis week `week_rule` gives a year: the first Monday on or after its month-day."""
    params = params or load_params()
    month, day = _month_day(params["week_rule"]["first_monday_on_or_after"],
                            "week_rule.first_monday_on_or_after")  # fmt: skip
    anchor = dt.date(year, month, day)
    return Week(anchor + dt.timedelta(days=-anchor.weekday() % 7), "analysis")


def weeks_for_year(year: int, params: dict[str, Any] | None = None) -> list[Week]:
    """The analysis week of `year` first, then its extra weeks, in date order. A year that
    `weeks` does not list has the analysis week of `week_rule` and no extra week."""
    params = params or load_params()
    spec = params["weeks"].get(year)
    if spec is None:
        return [rule_analysis_week(year, params)]
    weeks = [Week(dt.date.fromisoformat(spec["analysis"]), "analysis")]
    weeks += [Week(dt.date.fromisoformat(w["start"]), w["role"]) for w in spec.get("extra", [])]
    return [weeks[0]] + sorted(weeks[1:], key=lambda w: w.start)


def analysis_week(year: int, params: dict[str, Any] | None = None) -> Week:
    return weeks_for_year(year, params)[0]


def first_report_year(params: dict[str, Any] | None = None) -> int:
    """The first report year with measured data: `report.first_simulated_year`, else the first
    listed year."""
    params = params or load_params()
    return int(params["report"].get("first_simulated_year", listed_years(params)[0]))


def available_month_day(params: dict[str, Any] | None = None) -> tuple[int, int]:
    """(month, day) on which, every year, the year's inputs are complete: the day after the
    latest last day a rule week can have (the rule's month-day + 12) or the first day after
    `report.report_month` (its counters), whichever is later, plus `week_rule.lag_days`."""
    params = params or load_params()
    rule = params["week_rule"]
    month, day = _month_day(rule["first_monday_on_or_after"], "week_rule.first_monday_on_or_after")
    week_done = dt.date(2001, month, day) + dt.timedelta(days=13)
    report_month = int(params["report"]["report_month"])
    month_done = dt.date(2001 + report_month // 12, report_month % 12 + 1, 1)
    done = max(week_done, month_done) + dt.timedelta(days=int(rule.get("lag_days", 0)))
    if done.year != 2001:
        raise ValueError(
            f"{params_path()}: week_rule.lag_days={rule.get('lag_days')} and report.report_month="
            f"{report_month} make year Y complete only in Y+1 ({done:%m-%d}): not supported"
        )
    return done.month, done.day


def year_available_on(year: int, params: dict[str, Any] | None = None) -> dt.date:
    """The local date from which `year` is a report year (its Dagster partition exists)."""
    month, day = available_month_day(params)
    return dt.date(year, month, day)


def clock_now() -> dt.datetime:
    """Now, in UTC: the clock that `report_years` reads unless given `now` (tests freeze it)."""
    return dt.datetime.now(dt.UTC)


def report_years(params: dict[str, Any] | None = None, now: dt.datetime | None = None) -> list[int]:
    """Report years (the Dagster partitions): from the first year with data up to the last one
    whose inputs are complete at `now` (default `clock_now()`), in the report's time zone."""
    params = params or load_params()
    today = (now or clock_now()).astimezone(time_zone(params)).date()
    first = first_report_year(params)
    last = today.year if today >= year_available_on(today.year, params) else today.year - 1
    return list(range(first, last + 1))


def params_path() -> Path:
    """The parameters file in use (BBTR_PARAMS or pipeline/params.yaml), for error messages."""
    return Path(os.environ.get("BBTR_PARAMS", PARAMS_FILE))


_FIXED_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def _fixed_offset(text: str) -> dt.timezone | None:
    """`+05:30`, `-03:00`, `+0545`, `UTC+9` (east of UTC is +, as in ISO 8601) as a fixed-offset
    zone; None if `text` is not one."""
    m = _FIXED_OFFSET.match(text.strip())
    if not m:
        return None
    sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if hours > 23 or minutes > 59:
        return None
    delta = dt.timedelta(hours=hours, minutes=minutes)
    return dt.timezone(-delta if sign == "-" else delta)


@lru_cache(maxsize=16)
def _zone(name: str, key: str, source: str) -> dt.tzinfo:
    fixed = _fixed_offset(name)
    if fixed is not None:
        return fixed
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"{source}: {key}={name!r} is neither an IANA time zone name (e.g. Asia/Tokyo, "
            "America/New_York) nor a fixed UTC offset (e.g. +05:30)"
        ) from None


def time_zone(params: dict[str, Any] | None = None) -> dt.tzinfo:
    """The report's time zone: `report.time_zone` (IANA name, via zoneinfo, or a fixed offset like
    `+05:30`). The deprecated `report.utc_offset_hours` (a number of hours) is still read."""
    params = params or load_params()
    report, source = params.get("report", {}), str(params_path())
    if "time_zone" in report and "utc_offset_hours" in report:
        raise ValueError(
            f"{source}: set report.time_zone alone (report.utc_offset_hours is its deprecated "
            "alias; remove it)"
        )
    if "time_zone" in report:
        name = report["time_zone"]
        if not isinstance(name, str):  # e.g. `time_zone: 9` (a YAML number)
            raise ValueError(
                f"{source}: report.time_zone={name!r} is not text: write the zone name or offset "
                'in quotes, e.g. time_zone: "+05:30" or time_zone: Asia/Tokyo'
            )
        return _zone(name, "report.time_zone", source)
    if "utc_offset_hours" in report:
        hours = report["utc_offset_hours"]
        if isinstance(hours, bool) or not isinstance(hours, int | float) or abs(hours) >= 24:
            raise ValueError(f"{source}: report.utc_offset_hours={hours!r}: expected hours")
        warnings.warn(
            f"{source}: report.utc_offset_hours is deprecated; set report.time_zone",
            DeprecationWarning,
            stacklevel=2,
        )
        return dt.timezone(dt.timedelta(hours=hours))
    raise ValueError(f"{source}: report.time_zone is missing (e.g. Asia/Tokyo)")


def _utc_ms(local: dt.datetime) -> int:
    """UTC epoch ms of an aware datetime (exact: no float)."""
    return (local - _EPOCH) // dt.timedelta(milliseconds=1)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def local_time_ms(day: dt.date, hour: int, params: dict[str, Any] | None = None) -> int:
    """UTC epoch ms at which the local clock first reads `day` `hour`:00 (a time skipped by a
    spring-forward change maps to the change itself; a repeated one to its first occurrence)."""
    tz = time_zone(params)
    return _utc_ms(dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz, fold=0))


def local_day_bounds_ms(day: dt.date, params: dict[str, Any] | None = None) -> tuple[int, int]:
    """UTC epoch-ms half-open bounds of a local calendar day (23 or 25 hours on DST change days)."""
    return local_time_ms(day, 0, params), local_time_ms(day + dt.timedelta(days=1), 0, params)


def week_bounds_ms(week: Week, params: dict[str, Any] | None = None) -> tuple[int, int]:
    """UTC epoch-ms half-open bounds of a local Monday–Sunday week (167 or 169 hours with DST)."""
    return local_day_bounds_ms(week.start, params)[0], local_day_bounds_ms(week.days[-1], params)[1]


def local_hour_starts_ms(week: Week, params: dict[str, Any] | None = None) -> list[int]:
    """UTC epoch ms at which each local hour of the week starts (day d, hour h at index 24 d + h),
    then the week's end: 169 values. An hour skipped by DST lasts 0 ms, a repeated one 2 h."""
    return [local_time_ms(d, h, params) for d in week.days for h in range(24)] + [
        week_bounds_ms(week, params)[1]
    ]


def _offset_at(ms: int, tz: dt.tzinfo) -> int:
    at = _EPOCH + dt.timedelta(milliseconds=ms)
    return at.astimezone(tz).utcoffset() // dt.timedelta(milliseconds=1)


def utc_offset_ms_at(ms: int, params: dict[str, Any] | None = None) -> int:
    """Offset of local time from UTC at UTC epoch ms `ms`, in milliseconds."""
    return _offset_at(ms, time_zone(params))


def utc_offset_changes(
    lo_ms: int, hi_ms: int, params: dict[str, Any] | None = None
) -> tuple[list[int], list[int]]:
    """The zone's offsets over [lo_ms, hi_ms): (changes, offsets) — UTC ms at which the offset
    changes, ascending, and the offsets in ms before the first change and after each (one more
    than changes). Exact to the millisecond: an hourly scan, then bisection (no zone changes its
    offset twice within an hour)."""
    tz = time_zone(params)
    changes, offsets = [], [_offset_at(lo_ms, tz)]
    t = lo_ms
    while t < hi_ms:
        nxt = min(t + 3_600_000, hi_ms)
        after = _offset_at(nxt, tz)
        if after != offsets[-1]:
            lo, hi = t, nxt  # offset(lo) is the current one, offset(hi) the next
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset_at(mid, tz) == offsets[-1] else (lo, mid)
            if hi < hi_ms:
                changes.append(hi)
                offsets.append(after)
        t = nxt
    return changes, offsets


def utc_offsets_ms(ms: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
    """Offset of local time from UTC (ms, int64) at each UTC epoch ms of `ms` (vectorised)."""
    ms = np.asarray(ms, dtype=np.int64)
    if not len(ms):
        return np.zeros(0, np.int64)
    changes, offsets = utc_offset_changes(int(ms.min()), int(ms.max()) + 1, params)
    return np.asarray(offsets, np.int64)[
        np.searchsorted(np.asarray(changes, np.int64), ms, "right")
    ]
