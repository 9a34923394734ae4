"""The Avro format is an overlay on the one set of connector definitions (pure)."""

from __future__ import annotations

import pytest

from cdcsync.debezium.change_format import (
    AVRO_CONVERTER,
    JSON_CONVERTER,
    REGISTRY_URL_PLACEHOLDER_VARIABLE,
    ChangeFormat,
    format_of,
    with_format,
    with_formats,
)
from cdcsync.debezium.connector_spec import ConnectorSpec, is_env_placeholder, load_connector_specs
from cdcsync.debezium.record_values import RecordDecoder, UndecodableRecord, frame_schema_id, is_avro_framed
from cdcsync.errors import ConfigError

SPECS = load_connector_specs()
IDENTITY_KEYS = ("slot.name", "publication.name", "topic.prefix", "table.include.list", "notification.sink.topic.name")


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_json_is_the_definition_itself(spec: ConnectorSpec) -> None:
    assert with_format(spec, ChangeFormat.JSON) is spec
    assert format_of(spec.config) is ChangeFormat.JSON


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_avro_swaps_the_converters_and_keeps_the_connector_identity(spec: ConnectorSpec) -> None:
    avro = with_format(spec, ChangeFormat.AVRO)
    assert avro.name == spec.name
    assert {key: avro.config[key] for key in IDENTITY_KEYS} == {key: spec.config[key] for key in IDENTITY_KEYS}
    for role in ("key", "value"):
        assert avro.config[f"{role}.converter"] == AVRO_CONVERTER
        assert f"{role}.converter.schemas.enable" not in avro.config
        options = {k.removeprefix(f"{role}.converter."): v for k, v in avro.config.items() if k.startswith(role)}
        assert options["apicurio.registry.url"] == "${env:" + REGISTRY_URL_PLACEHOLDER_VARIABLE + "}"
        assert is_env_placeholder(options["apicurio.registry.url"])
        assert options["apicurio.registry.as-confluent"] == "true"
        assert options["apicurio.registry.headers.enabled"] == "false"
        assert options["apicurio.registry.use-id"] == "contentId"
        assert options["apicurio.registry.auto-register"] == "true"
    assert avro.config["decimal.handling.mode"] == "precise"
    assert format_of(avro.config) is ChangeFormat.AVRO
    # Every other setting is the definition's.
    changed = {k for k in set(spec.config) | set(avro.config) if spec.config.get(k) != avro.config.get(k)}
    assert all(
        k.startswith(("key.converter", "value.converter")) or k.endswith("adjustment.mode")
        for k in changed - {"decimal.handling.mode"}
    )


def test_the_overlay_is_idempotent_and_leaves_the_definition_alone() -> None:
    before = [dict(spec.config) for spec in SPECS]
    once = with_formats(SPECS, ChangeFormat.AVRO)
    assert with_formats(once, ChangeFormat.AVRO) == once
    assert [dict(spec.config) for spec in SPECS] == before


def test_a_config_with_a_converter_of_its_own_is_neither_format() -> None:
    spec = SPECS[0]
    assert format_of({**spec.config, "value.converter": "io.confluent.connect.avro.AvroConverter"}) is None
    assert format_of({"value.converter": JSON_CONVERTER}) is ChangeFormat.JSON


@pytest.mark.parametrize(("raw", "expected"), [("json", ChangeFormat.JSON), (" AVRO ", ChangeFormat.AVRO)])
def test_formats_parse(raw: str, expected: ChangeFormat) -> None:
    assert ChangeFormat.parse(raw) is expected
    assert ChangeFormat.from_env({"CDCSYNC_CHANGE_FORMAT": raw}) is expected


def test_an_unknown_format_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"CDCSYNC_CHANGE_FORMAT.*json\|avro"):
        ChangeFormat.parse("protobuf")
    assert ChangeFormat.from_env({}) is ChangeFormat.JSON


def test_confluent_frames_are_told_from_json_by_their_first_byte() -> None:
    frame = b"\x00\x00\x00\x01\x2a" + b"\x02"
    assert is_avro_framed(frame) and frame_schema_id(frame) == 298
    assert not is_avro_framed(b'{"id": 1}')
    assert not is_avro_framed(b"\x00\x00\x00\x01")  # a header and no body
    assert RecordDecoder().document("t", b'{"id": 1}') == {"id": 1}
    assert RecordDecoder().document("t", b"not json") is None


def test_an_avro_record_without_a_registry_names_the_variable_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"SCHEMA_REGISTRY_URL.*schema id 7.*cdcsync stack env"):
        RecordDecoder().document("course.public.courses", b"\x00\x00\x00\x00\x07\x02")


def test_an_unreachable_registry_is_an_outage_naming_it() -> None:
    decoder = RecordDecoder("http://127.0.0.1:9/apis/ccompat/v7", retries=0)  # discard port: nothing listens
    with pytest.raises(UndecodableRecord, match=r"registry http://127\.0\.0\.1:9/apis/ccompat/v7 did not answer"):
        decoder.document("course.public.courses", b"\x00\x00\x00\x00\x07\x02")
