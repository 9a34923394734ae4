"""The opt-in schema registry: its settings, config and command line, and that JSON stacks never touch it."""

from __future__ import annotations

import dataclasses
import shlex
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from cdcsync.pipeline.cli import cli
from cdcsync.pipeline.errors import ConfigError, StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack import registry as registry_module
from cdcsync.pipeline.stack.jvm import JavaRuntime
from cdcsync.pipeline.stack.local_stack import LocalStack
from cdcsync.pipeline.stack.registry import (
    RUNNER_JAR,
    LocalRegistry,
    RegistryArtifacts,
    registry_argv,
    registry_properties,
)
from tests.support.fake_stack import RecordingPart, ResolvedJars

REPO = Path(__file__).resolve().parents[2]


def _settings(home: Path, change_format: str = "json") -> StackSettings:
    return StackSettings.from_env(
        {
            "CDCSYNC_HOME": str(home),
            "CDCSYNC_PG_PORT": "25001",
            "CDCSYNC_KAFKA_PORT": "25002",
            "CDCSYNC_KAFKA_CONTROLLER_PORT": "25003",
            "CDCSYNC_CONNECT_PORT": "25004",
            "CDCSYNC_REGISTRY_PORT": "25005",
            "CDCSYNC_CHANGE_FORMAT": change_format,
        }
    )


def test_the_registry_is_opt_in_and_has_its_own_port() -> None:
    defaults = StackSettings.from_env({"CDCSYNC_HOME": "/tmp/x"})
    assert defaults.change_format == "json"
    assert not defaults.registry_wanted
    assert defaults.registry_port == 18081
    assert defaults.registry_url == "http://127.0.0.1:18081/apis/ccompat/v7"
    avro = StackSettings.from_env({"CDCSYNC_CHANGE_FORMAT": "avro", "CDCSYNC_REGISTRY_PORT": "28081"})
    assert avro.registry_wanted
    assert avro.registry_url == "http://127.0.0.1:28081/apis/ccompat/v7"


@pytest.mark.parametrize(
    ("env", "key", "fix"),
    [
        ({"CDCSYNC_CHANGE_FORMAT": "protobuf"}, "CDCSYNC_CHANGE_FORMAT", "json, avro"),
        ({"CDCSYNC_REGISTRY_PORT": "80"}, "CDCSYNC_REGISTRY_PORT", "unprivileged"),
        ({"CDCSYNC_REGISTRY_PORT": "18083"}, "CDCSYNC_REGISTRY_PORT", "own port"),
    ],
)
def test_a_bad_registry_setting_names_key_and_fix(env: dict[str, str], key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as raised:
        StackSettings.from_env(env)
    assert raised.value.key == key
    assert fix in str(raised.value)


def test_registry_config_binds_loopback_on_its_port(tmp_path: Path) -> None:
    props = registry_properties(_settings(tmp_path))
    assert props["quarkus.http.host"] == "127.0.0.1"
    assert props["quarkus.http.port"] == 25005
    # Schemas and ids outlive the process: H2 in files under the home, not the distribution's in-memory default.
    assert props["quarkus.datasource.jdbc.url"] == f"jdbc:h2:file:{tmp_path}/registry/data/registry_db"
    assert props["registry.rules.global.compatibility"] == "BACKWARD"
    part = LocalRegistry(_settings(tmp_path))
    # Quarkus reads config/application.properties from its working directory, the part's directory.
    assert part.config_file == tmp_path / "registry" / "config" / "application.properties"


def test_registry_command_line_runs_the_runner_jar_on_a_modest_heap(tmp_path: Path) -> None:
    java = JavaRuntime(executable=Path("/opt/jdk/bin/java"), major=17)
    jar = RegistryArtifacts(_settings(tmp_path)).runner_jar
    argv = registry_argv(java, jar)
    assert argv[0] == "/opt/jdk/bin/java"
    assert "-Xmx256m" in argv
    # No random extra port: Narayana names its process by UUID, not by a listening socket.
    uuid_process_id = "com.arjuna.ats.internal.arjuna.utils.UuidProcessId"
    assert f"-DCoreEnvironmentBean.processImplementationClassName={uuid_process_id}" in argv
    assert argv[-2:] == ["-jar", str(tmp_path / "jvm" / "registry" / RUNNER_JAR)]


def test_the_registry_pom_is_not_part_of_the_stack_build() -> None:
    """The 142 MB tarball is resolved only through registry.pom, never by the stack's poms (which
    pin its version, shared with the converter plugin)."""
    for pom in (REPO / "compose").rglob("pom.xml"):
        assert "apicurio-registry-app" not in pom.read_text(encoding="utf-8"), pom
    assert "<version.apicurio>2.6.13.Final</version.apicurio>" in (REPO / "compose" / "pom.xml").read_text()
    registry_pom = (REPO / "compose" / "registry.pom").read_text(encoding="utf-8")
    assert "<artifactId>apicurio-registry-app</artifactId>" in registry_pom
    assert "<classifier>all</classifier>" in registry_pom


def test_artifacts_are_current_only_with_stamp_and_jar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_maven() -> str:
        raise AssertionError("Maven must not run when the distribution is current")

    compose = tmp_path / "compose"
    compose.mkdir()
    (compose / "registry.pom").write_text("<project/>")
    (compose / "pom.xml").write_text("<project><version.apicurio>2.6.13.Final</version.apicurio></project>")
    artifacts = RegistryArtifacts(_settings(tmp_path / "home"), compose_dir=compose)
    assert not artifacts.is_current()
    (artifacts.root / "lib").mkdir(parents=True)
    artifacts.runner_jar.write_bytes(b"")
    artifacts.stamp_file.write_text(artifacts.stamp())
    assert artifacts.is_current()
    monkeypatch.setattr(registry_module, "find_maven", no_maven)
    assert artifacts.ensure() is False
    (compose / "registry.pom").write_text("<project><!-- bumped --></project>")
    assert not artifacts.is_current()
    artifacts.stamp_file.write_text(artifacts.stamp())
    assert artifacts.is_current()
    (compose / "pom.xml").write_text("<project><version.apicurio>2.6.14.Final</version.apicurio></project>")
    assert not artifacts.is_current()


def _stack(settings: StackSettings, calls: list[str], registry_running: bool = False) -> LocalStack:
    parts = {name: RecordingPart(name, calls) for name in ("postgres", "kafka", "connect")}
    registry = RecordingPart("registry", calls, running=registry_running)
    return LocalStack(settings, artifacts=ResolvedJars(settings), registry=registry, **parts)


@pytest.fixture
def no_java_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JavaRuntime, "detect", classmethod(lambda cls: None))


@pytest.mark.usefixtures("no_java_check")
def test_a_json_stack_never_resolves_starts_or_reports_the_registry(tmp_path: Path) -> None:
    calls: list[str] = []
    stack = _stack(_settings(tmp_path), calls)
    stack.up(10)
    assert calls == ["start postgres", "bootstrap postgres", "start kafka", "start connect"]
    assert [part.name for part in stack.status()] == ["postgres", "kafka", "connect"]


@pytest.mark.usefixtures("no_java_check")
def test_an_avro_stack_resolves_first_then_starts_the_registry_before_connect(tmp_path: Path) -> None:
    calls: list[str] = []
    ready: list[str] = []
    stack = _stack(_settings(tmp_path, "avro"), calls)
    stack.up(10, on_ready=lambda status, seconds: ready.append(status.name))
    assert calls == [
        "resolve registry",
        "start postgres",
        "bootstrap postgres",
        "start kafka",
        "start registry",
        "start connect",
    ]
    assert ready == ["jvm", "postgres", "kafka", "registry", "connect"]
    assert [part.name for part in stack.status()] == ["postgres", "kafka", "registry", "connect"]


def test_down_stops_a_running_registry_even_when_json_is_configured(tmp_path: Path) -> None:
    calls: list[str] = []
    _stack(_settings(tmp_path), calls, registry_running=True).down()
    assert calls == ["stop connect", "stop registry", "stop kafka", "stop postgres"]
    calls.clear()
    _stack(_settings(tmp_path), calls).down()
    assert "stop registry" not in calls


def _env_lines(home: Path) -> dict[str, str]:
    env = {"CDCSYNC_HOME": str(home), "CDCSYNC_REGISTRY_PORT": "25005"}
    result = CliRunner(env=env).invoke(cli, ["stack", "env"], catch_exceptions=False)
    assert result.exit_code == 0
    return dict(shlex.split(line)[1].split("=", 1) for line in result.stdout.splitlines())


def test_stack_env_names_the_registry_only_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "SCHEMA_REGISTRY_URL" not in _env_lines(tmp_path)
    monkeypatch.setattr(LocalRegistry, "is_running", lambda self: True)
    assert _env_lines(tmp_path)["SCHEMA_REGISTRY_URL"] == "http://127.0.0.1:25005/apis/ccompat/v7"


def test_registry_refuses_a_port_someone_else_holds(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = StackSettings.from_env({"CDCSYNC_HOME": str(tmp_path), "CDCSYNC_REGISTRY_PORT": str(port)})
        with pytest.raises(StackError, match=rf"^registry: port {port} in use .*registry\.log"):
            LocalRegistry(settings).start(timeout=1)


def test_the_stack_remembers_its_format_and_keeps_a_registry_it_ran(tmp_path: Path) -> None:
    env = {"CDCSYNC_HOME": str(tmp_path)}
    assert StackSettings.from_env(env).change_format == "json"
    dataclasses.replace(StackSettings.from_env(env), change_format="avro").record_change_format()
    assert StackSettings.from_env(env).change_format == "avro"  # a later `up` without --format keeps it
    json_again = StackSettings.from_env({**env, "CDCSYNC_CHANGE_FORMAT": "json"})
    assert json_again.change_format == "json"
    assert not json_again.registry_wanted  # the registry never ran here
    json_again.registry_data_dir.mkdir(parents=True)
    assert json_again.registry_wanted  # its topics may hold records framed with the registry's ids
