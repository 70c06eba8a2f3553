"""The one settings object: defaults in one place, environment overrides, clear errors."""

from __future__ import annotations

import pytest

from pipeline.config import DEFAULT_USER_KEY_SALT, Settings
from pipeline.defs.resources import PipelineSettings, resource_from_settings


def test_defaults_are_the_resource_defaults() -> None:
    assert PipelineSettings().settings() == Settings()
    assert Settings().user_key_salt == DEFAULT_USER_KEY_SALT


def test_environment_overrides_and_raw_dir_means_files() -> None:
    env = {"BBTR_RAW_DIR": "/srv/isp", "BBTR_SEED": "7", "BBTR_SCALE": "small",
           "BBTR_USER_KEY_SALT": "s3cret"}  # fmt: skip
    s = Settings.from_env(env)
    assert (s.source, s.seed, s.scale, s.user_key_salt) == ("files", 7, "small", "s3cret")
    assert Settings.from_env(s.as_env()) == s
    assert resource_from_settings(s).settings() == s


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BBTR_SEED": "one"}, "BBTR_SEED='one': expected an integer"),
        ({"BBTR_FLOW_FORMAT": "sflow"}, "flow_format='sflow': expected one of"),
        ({"BBTR_WORKERS": "0"}, "workers=0: expected at least 1"),
        (
            {"BBTR_RAW_DIR": "/srv/isp"},
            "BBTR_RAW_DIR=/srv/isp is set .* but BBTR_USER_KEY_SALT is not: set it to a secret",
        ),  # never the default salt on real data
        (
            {"BBTR_RAW_URL": "s3://isp/raw"},
            "BBTR_RAW_URL=s3://isp/raw is set .* but BBTR_USER_KEY_SALT is not: set it to a",
        ),  # nor on real data in an object store
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Settings.from_env(env)
