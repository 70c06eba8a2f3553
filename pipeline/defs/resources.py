"""The one resource: where data lives, and whether raw inputs come from the simulator or files."""

from __future__ import annotations

from dataclasses import asdict

from dagster import ConfigurableResource, Definitions

from pipeline.config import Paths, Settings

_DEFAULTS = Settings()


class PipelineSettings(ConfigurableResource):
    """`pipeline.config.Settings` as a Dagster resource (same fields, same defaults): raw input
    source, simulator size, seed and flow-export form, worker count, user-key salt, and the Dask
    scheduler that runs the day × exporter fan-out ("" = local processes)."""

    source: str = _DEFAULTS.source
    scale: str = _DEFAULTS.scale
    seed: int = _DEFAULTS.seed
    flow_format: str = _DEFAULTS.flow_format
    workers: int = _DEFAULTS.workers
    user_key_salt: str = _DEFAULTS.user_key_salt
    dask_scheduler: str = _DEFAULTS.dask_scheduler

    def settings(self) -> Settings:
        """The plain settings object (validated)."""
        return Settings(**{k: getattr(self, k) for k in asdict(_DEFAULTS)})

    def paths(self) -> Paths:
        return Paths.from_env()


def resource_from_settings(settings: Settings) -> PipelineSettings:
    return PipelineSettings(**asdict(settings))


def settings_from_env() -> PipelineSettings:
    """Settings from BBTR_* environment variables (the headless build and the UI share them)."""
    return resource_from_settings(Settings.from_env())


defs = Definitions(resources={"settings": settings_from_env()})
