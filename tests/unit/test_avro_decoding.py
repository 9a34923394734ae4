"""Decoding Confluent-framed Avro: the same ``ChangeEvent`` as JSON, every logical type exact, and each
registry failure its own outcome. Messages are real fastavro bodies of schemas shaped like Apicurio's
AvroConverter output (``tests.support.avro_envelopes``); the registry is a stand-in over real HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Message

from cdcsync.sink.avro_changes import AvroChanges
from cdcsync.sink.change_event import ChangeEvent, Operation, SourceCommitPosition, TableTruncated
from cdcsync.sink.consumed_batch import collect_batch
from cdcsync.sink.decoding import OLD_KEY_HEADER, UNAVAILABLE_VALUE_PLACEHOLDER, decode_change
from cdcsync.sink.errors import (
    InvalidMessage,
    SchemaRegistryAccessDenied,
    SchemaRegistryNotConfigured,
    SchemaRegistryUnavailable,
    UnknownSchemaId,
)
from cdcsync.sink.heartbeats import Heartbeat, decode_heartbeat
from cdcsync.sink.settings import SchemaRegistrySettings
from cdcsync.sink.source_tables import ASSIGNMENTS, Column, ColumnType, SourceTable
from tests.support import avro_envelopes as av
from tests.support.stand_in_registry import StandInRegistry

TOPIC = "assignment.public.assignments"
SCHEMA = av.envelope_schema(TOPIC, av.ASSIGNMENT_COLUMNS)
KEY_SCHEMA = av.key_schema(TOPIC)
ROW = {
    "id": 7,
    "course_id": 3,
    "title": "Essay ✍ «draft»",
    "description": "x" * 5000,
    "max_score": Decimal("87.50"),
    "opens_at": "2026-03-01T08:00:00.000001Z",
    "due_at": "2026-03-08T23:59:59.999999+02:00",
    "published": True,
    "updated_at": "2026-03-01T08:00:00Z",
}
JSON_ROW = {**ROW, "max_score": "87.50"}

# Every logical type a timestamptz or numeric column can arrive as.
TYPES = SourceTable(
    "test",
    "types",
    (Column("id", ColumnType.BIGINT),),
    (
        Column("zoned", ColumnType.TIMESTAMPTZ),
        Column("micro", ColumnType.TIMESTAMPTZ),
        Column("millis", ColumnType.TIMESTAMPTZ),
        Column("connect_ts", ColumnType.TIMESTAMPTZ),
        Column("fixed", ColumnType.NUMERIC, nullable=True, precision=6, scale=2),
        Column("wide", ColumnType.NUMERIC),
        Column("variable", ColumnType.NUMERIC, nullable=True),
    ),
)
TYPES_SCHEMA = av.envelope_schema(
    "test.public.types",
    (
        av.column("id", "long"),
        av.column("zoned", av.zoned_timestamp()),
        av.column("micro", av.micro_timestamp()),
        av.column("millis", av.debezium_timestamp()),
        av.column("connect_ts", av.connect_timestamp()),
        av.column("fixed", av.connect_decimal(2, 6), optional=True),
        av.column("wide", av.connect_decimal(3)),
        av.column("variable", av.variable_scale_decimal(), optional=True),
    ),
)
INSTANT = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
INSTANT_US = 1_772_352_000_123_456


@pytest.fixture
def registry() -> Iterator[StandInRegistry]:
    with StandInRegistry().running() as running:
        yield running


def avro_for(registry: StandInRegistry, **settings: Any) -> AvroChanges:
    return AvroChanges(SchemaRegistrySettings(url=registry.url, **settings))


def decoded(raw: bytes, avro: AvroChanges | None, headers: list[tuple[str, bytes | None]] | None = None) -> Any:
    return decode_change(ASSIGNMENTS, raw, headers, avro)


def json_envelope(op: str, after: dict[str, Any] | None = None, before: dict[str, Any] | None = None) -> bytes:
    source = {"lsn": 1000, "sequence": '["900","1000"]', "ts_us": 1_772_000_000_123_456}
    return json.dumps({"op": op, "before": before, "after": after, "source": source}).encode()


def test_avro_and_json_decode_to_the_same_change(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(SCHEMA)
    from_avro = decoded(av.framed(schema_id, SCHEMA, av.change("c", ROW)), avro)
    from_json = decoded(json_envelope("c", JSON_ROW), None)
    assert isinstance(from_avro, ChangeEvent)
    assert from_avro == from_json
    assert from_avro.operation is Operation.UPSERT
    assert from_avro.key == (7,)
    assert str(from_avro.values["max_score"]) == "87.50"
    assert from_avro.values["due_at"] == datetime(2026, 3, 8, 21, 59, 59, 999999, tzinfo=UTC)
    assert from_avro.position == SourceCommitPosition(900, 1000)
    assert from_avro.committed_at == datetime(2026, 2, 25, 6, 13, 20, 123456, tzinfo=UTC)


def test_every_logical_type_decodes_exactly(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(TYPES_SCHEMA)
    row = {
        "id": 1,
        "zoned": "2026-03-01T09:00:00.123456+01:00",
        "micro": INSTANT_US,
        "millis": INSTANT_US // 1000,
        "connect_ts": INSTANT_US // 1000,
        "fixed": Decimal("-1234.50"),
        "wide": Decimal("123456789012345678901234567890123.456"),  # more digits than Decimal's default context
        "variable": {"scale": 4, "value": (-987654321).to_bytes(4, "big", signed=True)},
    }
    event = decode_change(TYPES, av.framed(schema_id, TYPES_SCHEMA, av.change("c", row)), None, avro)
    assert isinstance(event, ChangeEvent)
    assert event.values == {
        "zoned": INSTANT,
        "micro": INSTANT,
        "millis": INSTANT.replace(microsecond=123000),
        "connect_ts": INSTANT.replace(microsecond=123000),
        "fixed": Decimal("-1234.50"),
        "wide": Decimal("123456789012345678901234567890123.456"),
        "variable": Decimal("-98765.4321"),
    }
    assert all(value.tzinfo is not None for value in event.values.values() if isinstance(value, datetime))
    assert str(event.values["fixed"]) == "-1234.50"
    assert str(event.values["wide"]) == "123456789012345678901234567890123.456"


def test_a_decimal_in_legacy_bytes_form_is_read_with_its_scale(registry: StandInRegistry) -> None:
    legacy = {k: v for k, v in av.connect_decimal(2, 6).items() if k not in ("logicalType", "precision")}
    schema = av.envelope_schema(
        TOPIC, [c if c["name"] != "max_score" else av.column("max_score", legacy, True) for c in av.ASSIGNMENT_COLUMNS]
    )
    avro = avro_for(registry)
    schema_id = registry.register(schema)
    row = {**ROW, "max_score": (8750).to_bytes(2, "big", signed=True)}
    event = decoded(av.framed(schema_id, schema, av.change("u", row)), avro)
    assert event.values["max_score"] == Decimal("87.50")


def test_a_score_that_does_not_fit_numeric_6_2_is_a_dead_letter(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(SCHEMA)
    wide = av.envelope_schema(
        TOPIC,
        [
            c if c["name"] != "max_score" else av.column("max_score", av.connect_decimal(3, 7), True)
            for c in av.ASSIGNMENT_COLUMNS
        ],
    )
    wide_id = registry.register(wide)
    assert (
        decoded(av.framed(schema_id, SCHEMA, av.change("c", {**ROW, "max_score": None})), avro).values["max_score"]
        is None
    )
    with pytest.raises(InvalidMessage, match="does not fit numeric"):
        decoded(av.framed(wide_id, wide, av.change("c", {**ROW, "max_score": Decimal("87.505")})), avro)


def test_placeholder_update_and_old_key_header(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(SCHEMA)
    key_id = registry.register(KEY_SCHEMA)
    row = {**ROW, "id": 8, "description": UNAVAILABLE_VALUE_PLACEHOLDER}
    old_key = av.framed(key_id, KEY_SCHEMA, {"id": 7})
    event = decoded(av.framed(schema_id, SCHEMA, av.change("c", row)), avro, [(OLD_KEY_HEADER, old_key)])
    assert event.key == (8,)
    assert event.previous_key == (7,)
    assert event.unavailable == frozenset({"description"})
    assert "description" not in event.values
    json_key = decoded(av.framed(schema_id, SCHEMA, av.change("c", row)), avro, [(OLD_KEY_HEADER, b'{"id": 7}')])
    assert json_key == event


def test_delete_and_truncate(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(SCHEMA)
    before = {
        **{k: None for k in ROW},
        "id": 7,
        "course_id": 0,
        "title": "",
        "opens_at": "",
        "due_at": "",
        "published": False,
        "updated_at": "",
    }
    deleted = decoded(av.framed(schema_id, SCHEMA, av.change("d", before=before)), avro)
    assert (deleted.operation, deleted.key, deleted.values) == (Operation.DELETE, (7,), {})
    truncated = decoded(av.framed(schema_id, SCHEMA, av.change("t", lsn=2000, sequence='["1900","2000"]')), avro)
    assert isinstance(truncated, TableTruncated)
    assert truncated.position == SourceCommitPosition(1900, 2000)
    assert decoded(None, avro) is None  # type: ignore[arg-type]


def test_schemas_are_fetched_once_per_id(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(SCHEMA)
    for lsn in range(3):
        decoded(av.framed(schema_id, SCHEMA, av.change("c", ROW, lsn=lsn, sequence=None)), avro)
    assert registry.requests == [f"/schemas/ids/{schema_id}"]


def test_a_mixed_batch_decodes_message_by_message(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(SCHEMA)
    values = [
        json_envelope("c", JSON_ROW),
        av.framed(schema_id, SCHEMA, av.change("u", {**ROW, "title": "second"}, lsn=1100, sequence='["1000","1100"]')),
        b"\x00\x00\x01",  # the magic byte, but too short for a frame
        b"\x89PNG not a change",
        av.framed(schema_id, SCHEMA, av.change("u", ROW))[:-3],  # a truncated Avro body
    ]
    messages = [Message(topic=TOPIC, partition=0, offset=i, value=v) for i, v in enumerate(values)]
    batch, letters, errors = collect_batch(messages, {TOPIC: ASSIGNMENTS}, avro)
    assert errors == []
    assert [letter.ref.offset for letter in letters] == [2, 3, 4]
    assert "fewer than the 5-byte frame header" in letters[0].reason
    assert "neither Confluent-framed Avro (magic byte 0) nor valid JSON" in letters[1].reason
    assert f"does not match its writer schema (id {schema_id})" in letters[2].reason
    assert batch.next_offsets == {(TOPIC, 0): 5}


def test_an_avro_message_without_a_registry_stops_the_sink() -> None:
    message = Message(topic=TOPIC, partition=2, offset=41, value=av.framed(9, SCHEMA, av.change("c", ROW)))
    with pytest.raises(
        SchemaRegistryNotConfigured, match=r"assignment.public.assignments\[2\] offset 41: .*SCHEMA_REGISTRY_URL"
    ) as stop:
        collect_batch([message], {TOPIC: ASSIGNMENTS}, None)
    assert stop.value.exit_code == 2
    assert "SCHEMA_REGISTRY_URL" in stop.value.fix


def test_an_unknown_schema_id_stops_the_sink_naming_where(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    message = Message(topic=TOPIC, partition=0, offset=12, value=av.framed(4242, SCHEMA, av.change("c", ROW)))
    with pytest.raises(UnknownSchemaId) as stop:
        collect_batch([message], {TOPIC: ASSIGNMENTS}, avro)
    text = str(stop.value)
    assert f"{TOPIC}[0] offset 12" in text and "4242" in text and registry.url in text
    assert stop.value.exit_code == 24
    assert stop.value.fix == "point SCHEMA_REGISTRY_URL at the registry the connectors write to"


def test_refused_credentials_stop_the_sink_without_showing_them() -> None:
    with StandInRegistry(user_info="sink:right").running() as registry:
        schema_id = registry.register(SCHEMA)
        raw = av.framed(schema_id, SCHEMA, av.change("c", ROW))
        with pytest.raises(SchemaRegistryAccessDenied) as stop:
            decoded(raw, avro_for(registry, basic_auth_user_info="sink:wrong"))
        assert stop.value.exit_code == 25
        assert "wrong" not in str(stop.value)
        assert decoded(raw, avro_for(registry, basic_auth_user_info="sink:right")).key == (7,)


def test_a_failing_registry_is_an_outage_until_it_answers(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema_id = registry.register(SCHEMA)
    raw = av.framed(schema_id, SCHEMA, av.change("c", ROW))
    registry.answer_with = 503
    with pytest.raises(SchemaRegistryUnavailable, match="HTTP 503"):
        decoded(raw, avro)
    with pytest.raises(SchemaRegistryUnavailable):
        avro.probe()
    registry.answer_with = None
    avro.probe()
    assert decoded(raw, avro).key == (7,)


def test_a_registry_that_does_not_listen_is_an_outage() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    avro = AvroChanges(SchemaRegistrySettings(url=f"http://127.0.0.1:{closed_port}"))
    with pytest.raises(SchemaRegistryUnavailable, match="ConnectError"):
        decoded(av.framed(1, SCHEMA, av.change("c", ROW)), avro)


def test_an_avro_heartbeat_is_read_and_an_unreadable_one_skipped(registry: StandInRegistry) -> None:
    avro = avro_for(registry)
    schema = av.heartbeat_schema()
    schema_id = registry.register(schema)
    topic = "__debezium-heartbeat.assignment"
    beat = decode_heartbeat(topic, av.framed(schema_id, schema, {"ts_ms": 1_772_000_000_123}), 1.0, avro)
    assert beat == Heartbeat("assignment", 1_772_000_000.123, 1.0)
    assert decode_heartbeat(topic, av.framed(schema_id + 1, schema, {"ts_ms": 1}), 1.0, avro) is None
    assert decode_heartbeat(topic, av.framed(schema_id, schema, {"ts_ms": 1}), 1.0, None) is None
