"""The sink's decoder on real Apicurio AvroConverter output (``tests/data/avro``: records the local stack's
connectors wrote in the Avro format, with the schemas the registry served for their ids)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cdcsync.sink.avro_changes import AvroChanges, schema_id_of
from cdcsync.sink.change_event import ChangeEvent, Operation
from cdcsync.sink.decoding import decode_change
from cdcsync.sink.settings import SchemaRegistrySettings
from cdcsync.sink.source_tables import SOURCE_TABLES
from tests.support.stand_in_registry import StandInRegistry

CAPTURED = Path(__file__).resolve().parent.parent / "data" / "avro"
TABLES = {table.default_topic(): table for table in SOURCE_TABLES}


def _captured(topic: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CAPTURED / f"{topic}.json").read_text(encoding="utf-8"))
    return document


@pytest.fixture
def avro() -> Iterator[AvroChanges]:
    with StandInRegistry().running() as registry:
        for topic in TABLES:
            for schema_id, schema in _captured(topic)["schemas"].items():
                registry.schemas[int(schema_id)] = json.dumps(schema)
        changes = AvroChanges(SchemaRegistrySettings(url=registry.url))
        yield changes
        changes.close()


@pytest.mark.parametrize("topic", sorted(TABLES))
def test_every_captured_record_decodes_to_a_change_of_its_table(avro: AvroChanges, topic: str) -> None:
    table = TABLES[topic]
    records = _captured(topic)["records"]
    assert records
    for record in records:
        raw = base64.b64decode(record["value"]) if record["value"] is not None else None
        event = decode_change(table, raw, None, avro)
        if record["kind"] == "tombstone":
            assert event is None
            continue
        assert raw is not None and schema_id_of(raw) == record["value_schema_id"]
        assert isinstance(event, ChangeEvent), record["kind"]
        assert event.table is table
        assert event.operation is (Operation.DELETE if record["kind"] == "d" else Operation.UPSERT)
        assert event.committed_at.tzinfo is not None
        if record["kind"] == "u+unavailable":
            # An unchanged TOASTed description: carried as the placeholder, so not carried at all when kept.
            kept = {"description"} & set(table.column_names)
            assert event.unavailable == kept
        elif event.operation is Operation.UPSERT:
            assert not event.unavailable
            assert set(event.values) == set(table.column_names)


def test_a_captured_numeric_6_2_is_an_exact_decimal(avro: AvroChanges) -> None:
    topic = "assignment.public.assignments"
    scores = []
    for record in _captured(topic)["records"]:
        event = decode_change(TABLES[topic], base64.b64decode(record["value"]), None, avro)
        assert isinstance(event, ChangeEvent)
        scores.append(event.values.get("max_score"))
    assert any(isinstance(score, Decimal) and score.as_tuple().exponent == -2 for score in scores), scores
