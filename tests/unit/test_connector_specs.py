"""The shipped connector definitions, and the validation that guards them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cdcsync.debezium.change_format import REGISTRY_URL_PLACEHOLDER_VARIABLE, ChangeFormat, with_format
from cdcsync.debezium.change_topics import wanted_configs
from cdcsync.debezium.connector_spec import (
    ConnectorSpec,
    ConnectorSpecError,
    load_connector_specs,
    parse_connector_spec,
)
from cdcsync.pipeline.settings import LOCAL_STACK_DEFAULT_PASSWORD, StackSettings
from cdcsync.pipeline.stack.endpoints import DEBEZIUM_ROLE, SERVICE_DATABASES, StackEndpoints
from cdcsync.sink.source_tables import SOURCE_TABLES

CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "debezium" / "connectors"

# The tables of the calendar-domain spec, per service database.
SPEC_TABLES = {
    "course": {"public.courses", "public.lectures", "public.enrollments"},
    "attendance": {"public.attendance_windows"},
    "assignment": {"public.assignments"},
}


def _by_service() -> dict[str, ConnectorSpec]:
    return {spec.config["database.dbname"]: spec for spec in load_connector_specs()}


def test_packaged_definitions_load_one_per_service_database() -> None:
    specs = _by_service()
    assert set(specs) == set(SERVICE_DATABASES)


def test_packaged_definitions_are_the_repository_files() -> None:
    assert load_connector_specs() == load_connector_specs(CONNECTORS_DIR)


@pytest.mark.parametrize("service", SERVICE_DATABASES)
def test_tables_and_names_follow_the_spec(service: str) -> None:
    spec = _by_service()[service]
    assert set(spec.tables) == SPEC_TABLES[service]
    assert spec.topic_prefix == service
    assert spec.slot_name == f"cdcsync_{service}"
    assert spec.publication_name == f"cdcsync_{service}"
    assert spec.config["plugin.name"] == "pgoutput"
    assert spec.config["publication.autocreate.mode"] == "disabled"
    assert spec.config["snapshot.mode"] == "initial"
    assert spec.config["decimal.handling.mode"] == "string"
    assert spec.config["time.precision.mode"] == "adaptive_time_microseconds"
    assert spec.config["tombstones.on.delete"] == "true"
    assert int(spec.config["heartbeat.interval.ms"]) > 0
    assert spec.config["topic.creation.default.replication.factor"] == "1"


def test_every_topic_the_sink_reads_is_produced_by_a_connector() -> None:
    produced = {f"{spec.topic_prefix}.{table}" for spec in load_connector_specs() for table in spec.tables}
    assert {table.default_topic() for table in SOURCE_TABLES} == produced


def test_slots_publications_and_prefixes_are_unique() -> None:
    specs = load_connector_specs()
    for attribute in ("name", "slot_name", "publication_name", "topic_prefix"):
        values = [getattr(spec, attribute) for spec in specs]
        assert len(values) == len(set(values)), attribute


def test_placeholders_are_exactly_what_the_connect_worker_resolves() -> None:
    worker_env = StackEndpoints(StackSettings.from_env({})).connect_worker_env()
    for spec in load_connector_specs():
        json_spec, avro_spec = (with_format(spec, change_format) for change_format in ChangeFormat)
        used = {m for v in json_spec.config.values() for m in re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", v)}
        assert used == set(worker_env) - {REGISTRY_URL_PLACEHOLDER_VARIABLE}, spec.name
        used = {m for v in avro_spec.config.values() for m in re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", v)}
        assert used == set(worker_env), spec.name


@pytest.mark.parametrize("path", sorted(CONNECTORS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_no_secret_or_address_is_written_in_a_file(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert LOCAL_STACK_DEFAULT_PASSWORD not in text
    assert "127.0.0.1" not in text
    assert DEBEZIUM_ROLE not in text
    config = json.loads(text)["config"]
    for key, value in config.items():
        if "password" in key or key in ("database.hostname", "database.port", "database.user"):
            assert re.fullmatch(r"\$\{env:[A-Z0-9_]+\}", value), key


def _document(**config_overrides: object) -> dict[str, object]:
    document: dict[str, object] = json.loads((CONNECTORS_DIR / "course.json").read_text(encoding="utf-8"))
    config = document["config"]
    assert isinstance(config, dict)
    config.update(config_overrides)
    return document


def _error(document: object) -> ConnectorSpecError:
    with pytest.raises(ConnectorSpecError) as caught:
        parse_connector_spec(json.dumps(document), "x/bad.json")
    return caught.value


def test_a_literal_password_is_refused_naming_file_and_key() -> None:
    error = _error(_document(**{"database.password": "hunter2"}))
    assert "x/bad.json" in str(error)
    assert error.spec_key == "config.database.password"
    assert "hunter2" not in str(error)


def test_any_secret_looking_key_must_be_a_placeholder() -> None:
    error = _error(_document(**{"database.sslpassword": "s3cret"}))
    assert error.spec_key == "config.database.sslpassword"


def test_a_literal_host_is_refused() -> None:
    assert _error(_document(**{"database.hostname": "db.internal"})).spec_key == "config.database.hostname"


def test_non_string_values_are_refused() -> None:
    assert _error(_document(**{"tasks.max": 1})).spec_key == "config.tasks.max"


def test_missing_required_key_is_named() -> None:
    document = _document()
    del document["config"]["slot.name"]  # type: ignore[attr-defined]
    assert _error(document).spec_key == "config.slot.name"


def test_invalid_slot_name_is_refused() -> None:
    assert _error(_document(**{"slot.name": "Cdcsync-Course"})).spec_key == "config.slot.name"


def test_invalid_json_names_the_file() -> None:
    with pytest.raises(ConnectorSpecError, match=r"x/bad\.json"):
        parse_connector_spec("{not json", "x/bad.json")


def test_shared_slot_between_files_is_refused(tmp_path: Path) -> None:
    for service in ("course", "attendance"):
        document = json.loads((CONNECTORS_DIR / f"{service}.json").read_text(encoding="utf-8"))
        document["config"]["slot.name"] = "shared"
        (tmp_path / f"{service}.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ConnectorSpecError, match="also used by") as caught:
        load_connector_specs(tmp_path)
    assert caught.value.spec_key == "config.slot.name"


def test_matches_compares_with_the_running_config_including_connects_name() -> None:
    spec = _by_service()["course"]
    running = {**spec.config, "name": spec.name}
    assert spec.matches(running)
    assert not spec.matches({**running, "heartbeat.interval.ms": "1"})
    assert not spec.matches(dict(spec.config))


def test_config_is_read_only() -> None:
    spec = _by_service()["course"]
    with pytest.raises(TypeError):
        spec.config["slot.name"] = "other"  # type: ignore[index]


@pytest.mark.parametrize("spec", load_connector_specs(), ids=lambda s: s.name)
def test_change_and_notification_topics_are_logs_kept_forever(spec: ConnectorSpec) -> None:
    # Compaction would keep only the last notification per incremental snapshot (keyed by signal id),
    # losing which tables it scanned; truncate events have no key at all.
    wanted = dict(wanted_configs(spec))
    topics = [f"{spec.topic_prefix}.public.x", spec.config["notification.sink.topic.name"]]
    for topic in topics:
        (configs,) = [c for pattern, c in wanted.items() if re.fullmatch(pattern, topic)]
        assert configs == {"cleanup.policy": "delete", "retention.ms": "-1"}
