"""Java/Maven detection, generated property files and the pom stamp that skips Maven on a warm start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack import jvm
from cdcsync.pipeline.stack.jvm import (
    COMPOSE_DIR,
    JavaRuntime,
    JvmArtifacts,
    log4j2_properties,
    parse_java_major,
    parse_maven_version,
    pom_stamp,
    render_properties,
)


def _settings(home: Path) -> StackSettings:
    return StackSettings(
        home=home,
        postgres_port=25001,
        kafka_port=25002,
        kafka_controller_port=25003,
        connect_port=25004,
        password="pw",
        postgres_binaries="auto",
    )


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "25-ea" 2025-09-16', 25),
        ('java version "1.8.0_392"', 8),
        ("bash: java: command not found", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_parse_maven_version_through_ansi_colours() -> None:
    assert parse_maven_version("\x1b[1mApache Maven 3.8.7\x1b[m\nMaven home: /usr/share/maven") == (3, 8)
    assert parse_maven_version("mvn: not found") is None


def test_java_older_than_17_is_refused(tmp_path: Path) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(StackError, match=r"Java 17\+ not found .*Java 11"):
        JavaRuntime.detect({"JAVA_HOME": str(tmp_path)})


def test_missing_java_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"Java 17\+ not found"):
        JavaRuntime.detect({"PATH": str(tmp_path)})


def test_jvm_argv_bounds_the_heap_and_names_the_main_class(tmp_path: Path) -> None:
    argv = JavaRuntime(Path("/jdk/bin/java"), 17).argv(
        "/libs/*", "kafka.Kafka", ["server.properties"], heap_max="512m", log4j_config=tmp_path / "log4j2.properties"
    )
    assert argv[0] == "/jdk/bin/java"
    assert "-Xmx512m" in argv
    assert f"-Dlog4j2.configurationFile={tmp_path / 'log4j2.properties'}" in argv
    assert argv[-4:] == ["-cp", "/libs/*", "kafka.Kafka", "server.properties"]


def test_render_properties() -> None:
    text = render_properties({"a.b": "x", "flag": False, "n": 3, "path": "C:\\tmp"})
    assert text == "a.b=x\nflag=false\nn=3\npath=C:\\\\tmp\n"


def test_render_properties_refuses_multiline_values() -> None:
    with pytest.raises(ValueError, match="single line"):
        render_properties({"evil": "x\nlisteners=PLAINTEXT://0.0.0.0:9092"})


def test_log4j2_properties_logs_to_stdout_with_levels() -> None:
    text = log4j2_properties({"org.reflections": "ERROR"})
    assert "appender.stdout.type=Console" in text
    assert "appender.stdout.target=SYSTEM_OUT" in text
    assert "logger.l0.name=org.reflections\nlogger.l0.level=ERROR" in text


def test_pom_stamp_follows_the_poms_only(tmp_path: Path) -> None:
    (tmp_path / "pom.xml").write_text("<project>1</project>")
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "pom.xml").write_text("<project>a</project>")
    first = pom_stamp(tmp_path)
    (tmp_path / "docker-compose.yml").write_text("services: {}")
    (tmp_path / "mod" / "target").mkdir()
    (tmp_path / "mod" / "target" / "pom.xml").write_text("generated")
    assert pom_stamp(tmp_path) == first
    (tmp_path / "mod" / "pom.xml").write_text("<project>b</project>")
    assert pom_stamp(tmp_path) != first


def test_the_real_poms_pin_the_stack() -> None:
    assert (COMPOSE_DIR / "pom.xml").is_file()
    assert len(pom_stamp(COMPOSE_DIR)) == 64


def _no_maven() -> str:
    raise AssertionError("Maven must not run when the stamp is current")


def _fake_resolved_jars(artifacts: JvmArtifacts) -> None:
    artifacts.kafka_libs.mkdir(parents=True)
    (artifacts.kafka_libs / "kafka_2.13-4.1.1.jar").write_bytes(b"")
    artifacts.debezium_plugin.mkdir(parents=True)
    (artifacts.debezium_plugin / "debezium-connector-postgres-3.4.1.Final.jar").write_bytes(b"")
    jvm.write_service_manifest(artifacts.converter_plugin / jvm.CONVERTER_MANIFEST_JAR, jvm.CONVERTER_SERVICES)


def test_warm_start_runs_no_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jvm, "find_maven", _no_maven)
    compose = tmp_path / "compose"
    compose.mkdir()
    (compose / "pom.xml").write_text("<project/>")
    artifacts = JvmArtifacts(_settings(tmp_path / "home"), compose_dir=compose)
    _fake_resolved_jars(artifacts)
    artifacts.stamp_file.write_text(pom_stamp(compose) + "\n")
    assert artifacts.is_current()
    assert artifacts.ensure() is False


def test_a_changed_pom_or_missing_jars_is_not_current(tmp_path: Path) -> None:
    compose = tmp_path / "compose"
    compose.mkdir()
    (compose / "pom.xml").write_text("<project/>")
    artifacts = JvmArtifacts(_settings(tmp_path / "home"), compose_dir=compose)
    assert not artifacts.is_current()  # no stamp yet
    _fake_resolved_jars(artifacts)
    artifacts.stamp_file.write_text(pom_stamp(compose))
    assert artifacts.is_current()
    (compose / "pom.xml").write_text("<project><!-- bumped --></project>")
    assert not artifacts.is_current()
    artifacts.stamp_file.write_text(pom_stamp(compose))
    for jar in artifacts.debezium_plugin.iterdir():
        jar.unlink()
    assert not artifacts.is_current()


def test_classpath_is_a_jvm_wildcard(tmp_path: Path) -> None:
    artifacts = JvmArtifacts(_settings(tmp_path))
    assert artifacts.classpath == f"{tmp_path}/jvm/kafka-libs/*"
    assert artifacts.debezium_plugin.parent == artifacts.plugin_path
