"""Generated Kafka/Connect configs, port conflicts, LocalStack ordering and the `stack` commands."""

from __future__ import annotations

import shlex
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdcsync.pipeline.cli import cli
from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.connect import POSTGRES_CONNECTOR_CLASS, LocalConnect, lists_connector, worker_properties
from cdcsync.pipeline.stack.jvm import JavaRuntime
from cdcsync.pipeline.stack.kafka import LocalKafka, ProxiedListener, broker_properties
from cdcsync.pipeline.stack.local_stack import LocalStack
from tests.support.fake_stack import RecordingPart, ResolvedJars


def _settings(home: Path, kafka_port: int = 25002, connect_port: int = 25004) -> StackSettings:
    return StackSettings(
        home=home,
        postgres_port=25001,
        kafka_port=kafka_port,
        kafka_controller_port=25003,
        connect_port=connect_port,
        password="pw",
        postgres_binaries="auto",
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_broker_is_a_single_kraft_node_on_loopback(tmp_path: Path) -> None:
    props = broker_properties(_settings(tmp_path), tmp_path / "data")
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:25003"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:25002,CONTROLLER://127.0.0.1:25003"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:25002"
    assert props["log.dirs"] == str(tmp_path / "data")
    replication = {key: value for key, value in props.items() if key.endswith(("replication.factor", "min.isr"))}
    assert replication and set(replication.values()) == {1}


def test_a_proxied_listener_advertises_the_proxy(tmp_path: Path) -> None:
    props = broker_properties(_settings(tmp_path), tmp_path / "data", ProxiedListener(port=25010, proxy_port=25011))
    assert props["listeners"] == ("PLAINTEXT://127.0.0.1:25002,CONTROLLER://127.0.0.1:25003,PROXIED://127.0.0.1:25010")
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:25002,PROXIED://127.0.0.1:25011"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_worker_config(tmp_path: Path) -> None:
    props = worker_properties(_settings(tmp_path), tmp_path / "plugins")
    assert props["bootstrap.servers"] == "127.0.0.1:25002"
    assert props["listeners"] == "http://127.0.0.1:25004"
    assert props["plugin.path"] == str(tmp_path / "plugins")
    assert props["config.providers"] == "env"
    assert props["config.providers.env.class"] == "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
    assert props["key.converter"] == props["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert props["key.converter.schemas.enable"] is False
    assert props["value.converter.schemas.enable"] is False
    for kind in ("config", "offset", "status"):
        assert props[f"{kind}.storage.replication.factor"] == 1
        assert str(props[f"{kind}.storage.topic"]).startswith(str(props["group.id"]))


def test_lists_connector() -> None:
    plugins = [{"class": POSTGRES_CONNECTOR_CLASS, "type": "source", "version": "3.4.1.Final"}]
    assert lists_connector(plugins, POSTGRES_CONNECTOR_CLASS)
    assert not lists_connector([{"class": "other"}], POSTGRES_CONNECTOR_CLASS)
    assert not lists_connector({"error_code": 500}, POSTGRES_CONNECTOR_CLASS)


def test_kafka_refuses_a_port_someone_else_holds(tmp_path: Path, busy_port: int) -> None:
    kafka = LocalKafka(_settings(tmp_path, kafka_port=busy_port))
    with pytest.raises(StackError) as failure:
        kafka.start(timeout=1)
    message = str(failure.value)
    assert message.startswith("kafka: ")
    assert f"port {busy_port} in use" in message
    assert str(tmp_path / "logs" / "kafka.log") in message


def test_connect_refuses_a_port_someone_else_holds(tmp_path: Path, busy_port: int) -> None:
    with pytest.raises(StackError, match=rf"^connect: port {busy_port} in use .*connect\.log"):
        LocalConnect(_settings(tmp_path, connect_port=busy_port)).start(timeout=1)


def test_parts_report_not_running_without_touching_anything(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for part in (LocalKafka(settings), LocalConnect(settings)):
        status = part.status()
        assert not status.running
        assert status.log_file is not None and status.log_file.parent == tmp_path / "logs"
    assert not LocalKafka(settings).stop()


def _stack(tmp_path: Path, calls: list[str], fail_stop: str = "") -> LocalStack:
    settings = _settings(tmp_path)
    parts = {name: RecordingPart(name, calls, fail_stop=fail_stop == name) for name in ("postgres", "kafka", "connect")}
    return LocalStack(settings, artifacts=ResolvedJars(settings), **parts)


def test_up_starts_in_dependency_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JavaRuntime, "detect", classmethod(lambda cls: None))
    calls: list[str] = []
    ready: list[str] = []
    _stack(tmp_path, calls).up(10, on_ready=lambda status, seconds: ready.append(status.name))
    assert calls == ["start postgres", "bootstrap postgres", "start kafka", "start connect"]
    assert ready == ["jvm", "postgres", "kafka", "connect"]


def test_down_stops_in_reverse_and_tries_every_part(tmp_path: Path) -> None:
    calls: list[str] = []
    with pytest.raises(StackError, match="kafka: would not stop"):
        _stack(tmp_path, calls, fail_stop="kafka").down()
    assert calls == ["stop connect", "stop kafka", "stop postgres"]
    calls.clear()
    assert _stack(tmp_path, calls).down() == [("connect", True), ("kafka", True), ("postgres", True)]


def test_stack_env_prints_exactly_the_exports_shell_quoted(tmp_path: Path) -> None:
    password = "it's a p@ss word"
    env = {
        "CDCSYNC_HOME": str(tmp_path),
        "CDCSYNC_STACK_PASSWORD": password,
        "CDCSYNC_PG_PORT": "25432",
        "CDCSYNC_KAFKA_PORT": "25092",
    }
    result = CliRunner(env=env).invoke(cli, ["stack", "env"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stderr == f"target: local stack ({tmp_path})\n"
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "export COURSE_DB_URL",
        "export ATTENDANCE_DB_URL",
        "export ASSIGNMENT_DB_URL",
        "export CALENDAR_DB_URL",
        "export KAFKA_BOOTSTRAP_SERVERS",
        "export CONNECT_URL",
    ]
    parsed = dict(shlex.split(line)[1].split("=", 1) for line in lines)
    assert parsed["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:25092"
    assert parsed["COURSE_DB_URL"].startswith("postgresql://course_service:it%27s%20a%20p%40ss%20word@127.0.0.1:25432/")
