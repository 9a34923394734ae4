"""The sink's schema registry settings: optional, typed, the secret never shown, each error naming the variable."""

from __future__ import annotations

import pytest

from cdcsync.errors import ConfigError
from cdcsync.sink.settings import SchemaRegistrySettings, SinkSettings

BASE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "CDCSYNC_SINK_DB_URL": "postgresql://sink@127.0.0.1/calendar"}


def test_without_a_registry_the_sink_reads_json_only() -> None:
    assert SinkSettings.from_env(BASE).schema_registry is None


def test_the_registry_and_its_credentials() -> None:
    settings = SinkSettings.from_env(
        {
            **BASE,
            "SCHEMA_REGISTRY_URL": "http://127.0.0.1:8081/apis/ccompat/v7/",
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "sink:s3cret",
        }
    )
    assert settings.schema_registry == SchemaRegistrySettings("http://127.0.0.1:8081/apis/ccompat/v7", "sink:s3cret")
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "key", "fix"),
    [
        ({"SCHEMA_REGISTRY_URL": "127.0.0.1:8081"}, "SCHEMA_REGISTRY_URL", "Confluent-compatible API"),
        ({"SCHEMA_REGISTRY_URL": "http://sink:s3cret@h:8081"}, "SCHEMA_REGISTRY_URL", "SCHEMA_REGISTRY_BASIC_AUTH"),
        (
            {"SCHEMA_REGISTRY_URL": "http://h:8081", "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "s3cret"},
            "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
            "user:password",
        ),
        ({"SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "sink:s3cret"}, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "URL"),
    ],
)
def test_a_bad_setting_names_the_variable_and_the_fix(env: dict[str, str], key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as error:
        SinkSettings.from_env({**BASE, **env})
    assert error.value.key == key
    assert fix in str(error.value)
    assert "s3cret" not in str(error.value)
