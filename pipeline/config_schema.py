"""The schemas of params.yaml and raw/exporters.yaml: a bad file stops with one line that names the
file, the key path and what is allowed (pydantic models; checked when the file is read)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

MAX_ERRORS_SHOWN = 3


class ConfigError(ValueError):
    """A configuration file is unreadable or breaks its schema; the message is one line."""


def _iso_date(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD ({err})") from None
    return text


def _parsed_as(form: str, what: str, prefix: str = "") -> AfterValidator:
    """A check that the text, after `prefix`, parses with strptime `form`; else "is not `what`"."""

    def check(text: str) -> str:
        try:
            dt.datetime.strptime(prefix + text, form)
        except ValueError:
            raise ValueError(f"{text!r} is not {what}") from None
        return text

    return AfterValidator(check)


IsoDate = Annotated[str, AfterValidator(_iso_date)]
Month = Annotated[str, _parsed_as("%Y-%m", "a month YYYY-MM")]
# a leap year's prefix: 02-29 is a day of the year
MonthDay = Annotated[str, _parsed_as("%Y-%m-%d", "a month and day MM-DD", prefix="2024-")]
ClockTime = Annotated[str, _parsed_as("%H:%M", "a time HH:MM")]
Pct = Annotated[float, Field(ge=0, le=100)]
Strict = ConfigDict(extra="forbid", strict=False)


class Edition(BaseModel):
    model_config = Strict
    subtitle: str
    edition: str


class ReportParams(BaseModel):
    model_config = Strict
    title: str
    first_simulated_year: int
    time_zone: Any = None  # checked by config.time_zone(), which explains zone names and offsets
    utc_offset_hours: Any = None  # deprecated alias, checked there too
    report_month: Annotated[int, Field(ge=1, le=12)]
    normalise_month: Month
    fig1_start_month: Month
    default_subtitle: str = ""
    editions: dict[int, Edition] = {}


class ExtraWeek(BaseModel):
    model_config = Strict
    start: IsoDate
    role: Literal["pre_covid", "fig2"]


class YearWeeks(BaseModel):
    model_config = Strict
    analysis: IsoDate
    extra: list[ExtraWeek] = []


class WeekRule(BaseModel):
    model_config = Strict
    first_monday_on_or_after: MonthDay
    lag_days: Annotated[int, Field(ge=0, le=180)] = 14


class ScheduleParams(BaseModel):
    model_config = Strict
    date: MonthDay
    time: ClockTime = "06:00"
    inputs_check_minutes: Annotated[int, Field(ge=1)] = 60


class IntervalParams(BaseModel):
    model_config = Strict
    level: Annotated[float, Field(gt=0, lt=1)] = 0.95
    replicates: Annotated[int, Field(ge=1)] = 200
    seed: int = 0
    bootstrap_interval: Literal["normal", "basic", "percentile"] = "normal"
    record_size_spread: Annotated[float, Field(ge=0)] = 0.0


class DailyUsageParams(BaseModel):
    model_config = Strict
    ipoe_per_user_from_year: int
    days_per_week: Annotated[int, Field(ge=1, le=7)] = 7
    density_min_log10: float
    density_max_log10: float
    bin_width_decades: Annotated[float, Field(gt=0)]
    mode_rule: Literal["parabolic", "tilt"] = "tilt"
    mode_grid_decades: Annotated[float, Field(gt=0)]
    mode_fit_bins: Annotated[int, Field(ge=3)] = 7
    mode_tilt_ratio: Annotated[float, Field(gt=0, le=1)]
    mode_shift_decades: float
    scatter_sample_size: Annotated[int, Field(ge=1)]
    scatter_sample_seed: int
    scatter_log10_digits: Annotated[int, Field(ge=0)]
    min_sampled_packets: Annotated[int, Field(ge=1)] = 1
    max_relative_error: Annotated[float, Field(gt=0)] | None = None
    top_shares_pct: list[Pct]
    intervals: IntervalParams | None = None


class ByService(BaseModel):
    model_config = Strict
    broadband: list[str]
    mobile: list[str]


class FlagByService(BaseModel):
    model_config = Strict
    broadband: bool
    mobile: bool


class PortsParams(BaseModel):
    model_config = Strict
    top_ports_per_protocol: Annotated[int, Field(ge=0)]
    min_share_pct_for_new_row: Pct
    carried_rows: ByService
    lt1024_subtotals: FlagByService
    week_series_bin_minutes: Annotated[int, Field(ge=1, le=1440)]


class AttributionParams(BaseModel):
    model_config = Strict
    ipv6_match_bits: Annotated[int, Field(ge=1, le=128)]


class MinShares(BaseModel):
    model_config = Strict
    flows: Pct = 100
    counters: Pct = 100
    radius: Pct = 100
    ipoe_leases: Pct = 100
    mobile_billing: Pct = 100


class CompletenessParams(BaseModel):
    model_config = Strict
    min_share_pct: MinShares = MinShares()
    require_normalise_month: bool = True
    per_user_days_complete: bool = False


class IngestParams(BaseModel):
    model_config = Strict
    clock_tolerance_minutes: Annotated[float, Field(ge=0)] = 180


class QualityParams(BaseModel):
    model_config = Strict
    max_quarantined_share_pct: Pct = 5.0


class Params(BaseModel):
    """params.yaml. Sections not named here are allowed (read by their own code)."""

    model_config = ConfigDict(extra="allow")
    report: ReportParams
    weeks: Annotated[dict[int, YearWeeks], Field(min_length=1)]
    week_rule: WeekRule
    schedule: ScheduleParams
    daily_usage: DailyUsageParams
    ports: PortsParams
    attribution: AttributionParams | None = None
    completeness: CompletenessParams | None = None
    ingest: IngestParams | None = None
    quality: QualityParams | None = None


SafeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class Exporter(BaseModel):
    model_config = Strict
    name: SafeName
    service: Literal["pppoe", "ipoe", "mobile"]
    address: str | None = None
    observation_domain_id: Annotated[int, Field(ge=0)] | None = None
    default_sampling_interval: Annotated[int, Field(ge=1, strict=True)] | None = None


class Source(BaseModel):
    model_config = Strict
    format: Literal["ipfix", "pcap", "nfcapd", "nfdump-csv", "nfdump-json"]
    path: str
    match: (
        Literal["address", "observation_domain_id"]
        | list[Literal["address", "observation_domain_id"]]
        | None
    ) = None


class Registry(BaseModel):
    model_config = Strict
    exporters: list[Exporter]
    sources: list[Source] | None = None


def read_yaml(path: Path) -> Any:
    """The YAML document of `path`; a syntax error names the file, line and column."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError(f"{path}: {where}: not valid YAML: {err.problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None


def _explain(error: dict) -> str:
    """One pydantic error as 'key.path: what is wrong (allowed values)'."""
    loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-")) or "(top)"
    kind, got = error["type"], error.get("input")
    if kind == "missing":
        return f"{loc}: missing ({'a required section' if len(error['loc']) == 1 else 'required'})"
    if kind == "literal_error":
        return f"{loc}: {got!r} is not one of {error['ctx']['expected']}"
    if kind == "extra_forbidden":
        return f"{loc}: unknown key"
    if kind == "string_pattern_mismatch":
        return f"{loc}: {got!r} does not match {error['ctx']['pattern']}"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return f"{loc}: {message}"
    return f"{loc}: {message} (got {got!r})"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation (X, X | None, list[X], dict[k, X], Annotated[X, …])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model accepts where an unknown key `loc` was found."""
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        inner = _model_in(field.annotation) if field is not None else None
        if inner is not None:
            model = inner
    return list(model.model_fields)


def validate(model: type[BaseModel], data: Any, path: Path) -> BaseModel:
    """`data` checked against `model`; ConfigError naming `path`, key paths and allowed values."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        errors = err.errors()
        lines = []
        for e in errors[:MAX_ERRORS_SHOWN]:
            line = _explain(e)
            if e["type"] == "extra_forbidden":
                line += f" (allowed: {', '.join(_allowed_keys(model, e['loc']))})"
            lines.append(line)
        more = len(errors) - MAX_ERRORS_SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        raise ConfigError(f"{path}: {'; '.join(lines)}{tail}") from None


def load_params_file(path: Path) -> dict[str, Any]:
    """params.yaml read and checked: the plain dict as written (defaults are not filled in)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    validate(Params, data, path)
    return data


def load_registry_file(path: Path) -> dict[str, Any]:
    """raw/exporters.yaml read and checked, as {exporters: [...], sources: [...] or None} (a bare
    list is the exporters with the default source)."""
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: empty: expected exporters: [{{name, service, …}}]")
    if isinstance(data, list):
        data = {"exporters": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a list of exporters, got {type(data).__name__}")
    validate(Registry, data, path)
    return {"exporters": data["exporters"], "sources": data.get("sources")}
