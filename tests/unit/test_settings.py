"""Settings: typed, frozen, and a bad value names the variable and the fix (exit code 2)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdcsync.pipeline.cli import cli, main
from cdcsync.pipeline.errors import ConfigError
from cdcsync.pipeline.settings import LOCAL_STACK_DEFAULT_PASSWORD, StackSettings
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.targets import TARGET_VARIABLES, Profile, Targets
from cdcsync.sink.settings import SinkSettings


def test_defaults_bind_loopback() -> None:
    settings = StackSettings.from_env({"CDCSYNC_HOME": "/tmp/x"})
    assert settings.home == Path("/tmp/x")
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.connect_url == "http://127.0.0.1:18083"
    assert settings.password == LOCAL_STACK_DEFAULT_PASSWORD
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.kafka_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "key", "fix"),
    [
        ({"CDCSYNC_PG_PORT": "abc"}, "CDCSYNC_PG_PORT", "integer"),
        ({"CDCSYNC_CONNECT_PORT": "80"}, "CDCSYNC_CONNECT_PORT", "unprivileged"),
        ({"CDCSYNC_KAFKA_PORT": "15432"}, "CDCSYNC_KAFKA_PORT", "own port"),
        ({"CDCSYNC_POSTGRES": "docker"}, "CDCSYNC_POSTGRES", "auto, embedded, system"),
    ],
)
def test_bad_stack_setting_names_key_and_fix(env: dict[str, str], key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as raised:
        StackSettings.from_env(env)
    assert raised.value.key == key
    assert fix in str(raised.value)
    assert raised.value.exit_code == 2


def test_sink_settings_need_kafka_and_database() -> None:
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        SinkSettings.from_env({"CDCSYNC_SINK_DB_URL": "postgresql://x/calendar"})
    with pytest.raises(ConfigError, match="CDCSYNC_SINK_DB_URL"):
        SinkSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    with pytest.raises(ConfigError, match="CDCSYNC_SINK_BATCH_WAIT_MS"):
        SinkSettings.from_env(
            {"KAFKA_BOOTSTRAP_SERVERS": "k:1", "CDCSYNC_SINK_DB_URL": "u", "CDCSYNC_SINK_BATCH_WAIT_MS": "soon"}
        )


def test_password_only_reaches_urls_and_the_worker_environment() -> None:
    settings = StackSettings.from_env({"CDCSYNC_STACK_PASSWORD": "s3cr/t@x"})
    endpoints = StackEndpoints(settings)
    assert "s3cr%2Ft%40x" in endpoints.exports()["COURSE_DB_URL"]  # quoted for libpq
    assert endpoints.connect_worker_env()["CDCSYNC_DEBEZIUM_PASSWORD"] == "s3cr/t@x"
    assert "s3cr" not in repr(settings)


def test_cli_turns_config_errors_into_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDCSYNC_PG_PORT", "not-a-port")
    monkeypatch.setattr("sys.argv", ["cdcsync", "stack", "env"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert "CDCSYNC_PG_PORT" in capsys.readouterr().err


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for name in ("up", "down", "status", "demo", "verify", "stack", "connectors", "sink"):
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output


def test_reprs_never_show_a_password() -> None:
    env = {"CDCSYNC_STACK_PASSWORD": "hunter2-secret", "CDCSYNC_HOME": "/tmp/x"}
    targets = Targets.for_profile(Profile.LOCAL, env)
    assert "hunter2" in targets.course_db_url
    assert "hunter2" not in repr(targets)
    assert "hunter2" not in targets.describe(TARGET_VARIABLES)
    assert "hunter2" not in repr(targets.sink_settings({"CDCSYNC_SINK_GROUP": "g"}))
    assert "hunter2" not in repr(StackSettings.from_env(env))
