"""compose/docker-compose.yml cannot run here (no Docker engine): check its structure instead."""

from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdcsync.pipeline.settings import LOCAL_STACK_DEFAULT_PASSWORD, StackSettings
from cdcsync.pipeline.stack.connect import worker_properties
from cdcsync.pipeline.stack.endpoints import StackEndpoints

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
POM = COMPOSE_DIR / "pom.xml"
INFRASTRUCTURE = ("postgres", "kafka", "connect")


def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _image(service: str) -> str:
    image = _services()[service]["image"]
    assert isinstance(image, str)
    return image


def _pom_property(name: str) -> str | None:
    if not POM.exists():
        return None
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    element = ET.parse(POM).getroot().find(f"m:properties/m:{name}", namespace)
    return None if element is None or element.text is None else element.text.strip()


def _environment(service: str) -> dict[str, str]:
    environment = _services()[service].get("environment") or {}
    assert isinstance(environment, dict), f"{service}: write environment as a mapping"
    return {str(k): str(v) for k, v in environment.items()}


def test_topology() -> None:
    assert {"postgres", "kafka", "connect", "connectors", "sink"} <= set(_services())


@pytest.mark.parametrize("service", sorted(_services()))
def test_images_are_pinned(service: str) -> None:
    image = _image(service)
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{service}: {image} has no tag"
    assert tag != "latest", f"{service}: {image} is not pinned"
    assert re.search(r"\d+\.\d+", tag), f"{service}: {image} is not pinned to a version"


@pytest.mark.parametrize("service", INFRASTRUCTURE)
def test_infrastructure_has_healthchecks(service: str) -> None:
    healthcheck = _services()[service].get("healthcheck")
    assert healthcheck and healthcheck.get("test"), f"{service} has no healthcheck"


def test_depends_on_uses_conditions_that_can_be_met() -> None:
    services = _services()
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = rule["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), (name, dependency)
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}, which has no healthcheck"


def test_every_port_is_bound_to_loopback() -> None:
    for name, service in _services().items():
        for port in service.get("ports") or ():
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port!r} is not on 127.0.0.1"


def test_host_ports_are_the_local_stack_defaults() -> None:
    defaults = StackSettings.from_env({})
    host_ports = {
        name: [int(str(p).split(":")[1]) for p in service.get("ports") or ()] for name, service in _services().items()
    }
    assert host_ports["postgres"] == [defaults.postgres_port]
    assert host_ports["kafka"] == [defaults.kafka_port]
    assert host_ports["connect"] == [defaults.connect_port]
    assert host_ports["registry"] == [defaults.registry_port]


def test_the_registry_is_opt_in_and_the_local_stacks_version() -> None:
    registry = _services()["registry"]
    assert registry["profiles"] == ["avro"]  # a plain `docker compose up` leaves it out
    assert _image("registry").endswith(":2.6.13.Final")
    assert "healthcheck" in registry
    needed_by = [name for name, service in _services().items() if "registry" in (service.get("depends_on") or {})]
    assert needed_by == [], "nothing in the default (JSON) topology may wait for the registry"


def test_postgres_runs_with_logical_wal() -> None:
    command = _services()["postgres"]["command"]
    assert "wal_level=logical" in command


def test_connectors_are_applied_from_exactly_the_repository_definitions() -> None:
    service = _services()["connectors"]
    volumes = service["volumes"]
    assert len(volumes) == 1
    source, target, *mode = volumes[0].split(":")
    assert (COMPOSE_DIR / source).resolve() == REPO / "debezium" / "connectors"
    assert mode == ["ro"]
    command = service["command"]
    assert command[:2] == ["connectors", "apply"]
    assert command[command.index("--connectors-dir") + 1] == target
    assert service["depends_on"]["connect"]["condition"] == "service_healthy"


def test_sink_runs_after_the_connectors_are_applied() -> None:
    service = _services()["sink"]
    assert service["command"] == ["sink", "run"]
    assert service["depends_on"]["connectors"]["condition"] == "service_completed_successfully"


def test_connect_resolves_the_placeholders_of_the_connector_definitions() -> None:
    environment = _environment("connect")
    assert environment["CONNECT_CONFIG_PROVIDERS"] == "env"
    assert environment["CONNECT_CONFIG_PROVIDERS_ENV_CLASS"] == (
        "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
    )
    worker_env = StackEndpoints(StackSettings.from_env({})).connect_worker_env()
    assert set(worker_env) <= set(environment)
    assert environment["CDCSYNC_DEBEZIUM_USER"] == worker_env["CDCSYNC_DEBEZIUM_USER"]


def test_no_password_is_written_in_the_file() -> None:
    assert LOCAL_STACK_DEFAULT_PASSWORD not in COMPOSE_FILE.read_text(encoding="utf-8")
    for name in _services():
        for key, value in _environment(name).items():
            if "PASSWORD" in key:
                assert value.startswith("${") and value.endswith("}"), f"{name}: {key} is a literal"


def test_kafka_runs_kraft_combined() -> None:
    environment = _environment("kafka")
    assert set(environment["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert _image("kafka").startswith("apache/kafka:4.")


def test_images_match_the_local_stack_versions() -> None:
    debezium = _pom_property("version.debezium")
    kafka = _pom_property("version.kafka")
    if debezium is None or kafka is None:
        pytest.skip("compose/pom.xml does not pin the local stack's versions")
    assert _image("connect") == f"quay.io/debezium/connect:{debezium}"
    assert _image("kafka") == f"apache/kafka:{kafka}"
    assert _image("connect").split(":")[1].startswith("3.")


def test_bootstrap_script_imports_what_exists() -> None:
    """The bootstrap one-shot calls the local stack's code directly: catch renames here."""
    script = _services()["bootstrap"]["command"][0]
    compile(script, "bootstrap", "exec")
    for module, names in re.findall(r"^from (\S+) import (.+)$", script, flags=re.MULTILINE):
        imported = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(imported, name.strip()), f"{module}.{name.strip()}"


def test_bootstrap_prepares_what_the_connectors_need() -> None:
    """Their publications list the signal and heartbeat tables, which Debezium's role may not create:
    the bootstrap runs the same preparation as `cdcsync up`, and Connect starts only after it."""
    script = _services()["bootstrap"]["command"][0]
    assert "LocalPostgres(settings).bootstrap()" in script
    assert "prepare_sources(settings" in script
    assert _services()["connect"]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"


def test_connect_flushes_offsets_as_often_as_the_local_stack() -> None:
    """The offset flush bounds how long an idle slot keeps WAL after its heartbeat was confirmed."""
    local = worker_properties(StackSettings.from_env({}), Path("plugins"))
    # The image's entrypoint derives CONNECT_OFFSET_FLUSH_INTERVAL_MS from this, overriding a direct setting.
    assert _environment("connect")["OFFSET_FLUSH_INTERVAL_MS"] == str(local["offset.flush.interval.ms"])
    assert "CONNECT_OFFSET_FLUSH_INTERVAL_MS" not in _environment("connect")


def test_avro_is_a_choice_of_the_same_services() -> None:
    connect = _environment("connect")
    assert connect["ENABLE_APICURIO_CONVERTERS"] == "true"  # the image adds Apicurio's AvroConverter
    assert connect["CDCSYNC_REGISTRY_URL"] == "http://registry:8080/apis/registry/v2"
    assert _environment("connectors")["CDCSYNC_CHANGE_FORMAT"] == "${CDCSYNC_CHANGE_FORMAT:-json}"
    assert _environment("sink")["SCHEMA_REGISTRY_URL"] == "http://registry:8080/apis/ccompat/v7"
