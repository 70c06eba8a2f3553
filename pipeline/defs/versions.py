"""Code versions of the assets: a digest of what each asset's output depends on besides its
upstream assets' data — its stage's code, data files, the params.yaml values and settings it reads.

Dagster marks an asset stale when its code version differs from the one its last materialisation
recorded (or an upstream's data version changed), which is what `pipeline.build` rebuilds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

from dagster import AssetsDefinition

from pipeline.config import PUBLISHED_DIR, REPO_ROOT, Settings, load_params, params_path
from pipeline.fingerprint import digest, file_sha256, params_subset, source_digest
from pipeline.simulate.cache import code_sha256 as simulator_code_sha256

# the weeks of a year `weeks` does not list come from week_rule (its lag moves no data)
INGEST_PARAMS = ("weeks", "week_rule.first_monday_on_or_after", "report.time_zone",
                 "report.utc_offset_hours", "ingest", "quality")  # fmt: skip
# What the aggregate SQL and charts read (report.* editorial entries — title, subtitles,
# editions — are read by the report alone).
TABLE_PARAMS = (*INGEST_PARAMS, "report.first_simulated_year", "report.report_month",
                "report.normalise_month", "report.fig1_start_month", "daily_usage", "ports",
                "attribution", "completeness")  # fmt: skip


@dataclass(frozen=True)
class Inputs:
    """What an asset's output depends on besides its upstream assets."""

    modules: tuple[str, ...]  # its plain functions' modules (their import closure is hashed)
    files: tuple[str, ...] = ()  # globs under the repo root: SQL, templates, CSS
    params: tuple[str, ...] = INGEST_PARAMS  # dotted params.yaml keys; ("*",) = the file's bytes
    settings: tuple[str, ...] = ()  # Settings fields
    published: bool = False  # reads ../shared/spec/published
    build_identity: bool = False  # prints the commit, SOURCE_DATE_EPOCH and library versions


AGGREGATE = Inputs(("pipeline.aggregate.year",), ("pipeline/aggregate/sql/*.sql",), TABLE_PARAMS,
                   ("user_key_salt",), published=True)  # fmt: skip
ASSETS: dict[str, Inputs] = {
    "raw_inputs": Inputs(
        ("pipeline.ingest.year",), settings=("source", "scale", "seed", "flow_format")
    ),  # fmt: skip
    "normalised_flows": Inputs(("pipeline.ingest.year",)),
    "subscriber_sessions": Inputs(("pipeline.ingest.year",)),
    "mobile_usage": Inputs(("pipeline.ingest.year",)),
    "monthly_counters": Inputs(("pipeline.ingest.year",)),
    "attributed_flows": Inputs(
        ("pipeline.attribute.year",), ("pipeline/attribute/sql/*.sql",), settings=("user_key_salt",)
    ),  # fmt: skip
    "user_week_usage": AGGREGATE,
    "report_figures": Inputs(("pipeline.report.year",), params=TABLE_PARAMS, published=True),
    "annual_report": Inputs(
        ("pipeline.report.year",),
        ("assets/**/*",),
        ("*",),
        ("source",),
        published=True,
        build_identity=True,
    ),  # fmt: skip
}


def inputs_of(asset: str) -> Inputs:
    """The declared inputs of an asset (an aggregate table not named here: AGGREGATE)."""
    return ASSETS.get(asset, AGGREGATE)


@lru_cache(maxsize=64)
def _sources(modules: tuple[str, ...], globs: tuple[str, ...]) -> str:
    files = [p for g in globs for p in sorted(REPO_ROOT.glob(g)) if p.is_file()]
    return source_digest(modules, files)


@lru_cache(maxsize=4)
def _published() -> str:
    files = sorted(p for p in PUBLISHED_DIR.rglob("*") if p.is_file())
    return digest([(p.relative_to(PUBLISHED_DIR).as_posix(), file_sha256(p)) for p in files])


def _build_identity() -> dict:
    from pipeline.report.year import build_environment, code_version, source_date_epoch

    return {"code": code_version(), "epoch": source_date_epoch()} | build_environment()


def code_version(asset: str, settings: Settings) -> str:
    """The asset's code version under `settings` (a sha256, shortened to 16 hex digits)."""
    spec = inputs_of(asset)
    parts: dict = {"sources": _sources(spec.modules, spec.files)}
    if spec.params == ("*",):
        parts["params"] = file_sha256(params_path())
    else:
        parts["params"] = params_subset(load_params(), spec.params)
    parts["settings"] = {k: v for k, v in asdict(settings).items() if k in spec.settings}
    if asset == "raw_inputs" and settings.source == "simulator":
        parts["simulator"] = simulator_code_sha256()
    if spec.published:
        parts["published"] = _published()
    if spec.build_identity:
        parts["build"] = _build_identity()
    return digest(parts)[:16]


def with_code_versions(
    assets: list[AssetsDefinition], settings: Settings
) -> list[AssetsDefinition]:
    """The same assets (once each: a definitions folder may list one twice), each carrying its
    code version under `settings`."""
    unique = {a.key: a for a in assets}
    return [
        a.map_asset_specs(
            lambda spec: spec.replace_attributes(
                code_version=code_version(spec.key.to_user_string(), settings)
            )
        )
        for _, a in sorted(unique.items())
    ]
