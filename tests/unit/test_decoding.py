"""Decoding Debezium envelopes: exact values, every op, and clear reasons for bad input."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cdcsync.sink.change_event import ChangeEvent, Operation, SourceCommitPosition, TableTruncated
from cdcsync.sink.decoding import OLD_KEY_HEADER, UNAVAILABLE_VALUE_PLACEHOLDER, decode_change
from cdcsync.sink.errors import InvalidMessage
from cdcsync.sink.source_tables import ASSIGNMENTS, ENROLLMENTS, LECTURES, SourceTable

ASSIGNMENT_ROW = {
    "id": 7,
    "course_id": 3,
    "title": "Essay ✍ «draft»",
    "description": "x" * 5000,
    "max_score": "87.50",
    "opens_at": "2026-03-01T08:00:00.000001Z",
    "due_at": "2026-03-08T23:59:59.999999+02:00",
    "published": True,
    "updated_at": "2026-03-01T08:00:00Z",
}


def decoded(table: SourceTable, raw: bytes, headers: list[tuple[str, bytes | None]] | None = None) -> ChangeEvent:
    """Decode a message that must be a row change."""
    event = decode_change(table, raw, headers)
    assert isinstance(event, ChangeEvent)
    return event


def envelope(
    op: str, after: dict[str, Any] | None = None, before: dict[str, Any] | None = None, **source: Any
) -> bytes:
    src = {"lsn": 1000, "sequence": '["900","1000"]', "ts_us": 1_772_000_000_123_456, **source}
    return json.dumps({"op": op, "before": before, "after": after, "source": src, "ts_ms": 1}).encode()


def test_create_decodes_every_type_exactly() -> None:
    event = decoded(ASSIGNMENTS, envelope("c", ASSIGNMENT_ROW))
    assert event is not None
    assert event.operation is Operation.UPSERT
    assert event.key == (7,)
    assert event.values["title"] == "Essay ✍ «draft»"
    assert event.values["description"] == "x" * 5000
    assert event.values["max_score"] == Decimal("87.50")
    assert str(event.values["max_score"]) == "87.50"
    assert event.values["opens_at"] == datetime(2026, 3, 1, 8, 0, 0, 1, tzinfo=UTC)
    assert event.values["due_at"] == datetime(2026, 3, 8, 21, 59, 59, 999999, tzinfo=UTC)
    assert event.values["published"] is True
    assert "updated_at" not in event.values
    assert event.committed_at == datetime(2026, 2, 25, 6, 13, 20, 123456, tzinfo=UTC)


def test_position_follows_commit_order_not_change_lsn() -> None:
    # Transaction B wrote its change before A committed, but committed after A.
    a = decoded(
        ENROLLMENTS,
        envelope("u", {"course_id": 1, "user_id": 2, "status": "active"}, lsn=500, sequence='["400","500"]'),
    )
    b = decoded(
        ENROLLMENTS,
        envelope("u", {"course_id": 1, "user_id": 2, "status": "dropped"}, lsn=450, sequence='["600","450"]'),
    )
    assert a is not None and b is not None
    assert a.position == SourceCommitPosition(400, 500)
    assert b.position > a.position


def test_snapshot_read_without_last_commit_uses_its_lsn() -> None:
    event = decoded(
        ENROLLMENTS, envelope("r", {"course_id": 1, "user_id": 2, "status": "active"}, sequence='[null,"77"]', lsn=77)
    )
    assert event is not None and event.position == SourceCommitPosition(77, 77)


def test_delete_takes_the_key_from_before() -> None:
    event = decoded(LECTURES, envelope("d", before={"id": 11, "course_id": None, "title": None}))
    assert event is not None
    assert event.operation is Operation.DELETE
    assert event.key == (11,)
    assert event.values == {}
    assert event.unavailable == set(LECTURES.column_names)


def test_tombstone_is_none() -> None:
    assert decode_change(LECTURES, None) is None


def test_unavailable_placeholder_is_never_a_value() -> None:
    row = {**ASSIGNMENT_ROW, "description": UNAVAILABLE_VALUE_PLACEHOLDER}
    event = decoded(ASSIGNMENTS, envelope("u", row))
    assert event is not None
    assert "description" not in event.values
    assert event.unavailable == {"description"}


def test_placeholder_in_a_snapshot_read_is_invalid() -> None:
    row = {**ASSIGNMENT_ROW, "description": UNAVAILABLE_VALUE_PLACEHOLDER}
    with pytest.raises(InvalidMessage, match="no earlier value"):
        decode_change(ASSIGNMENTS, envelope("r", row))


def test_primary_key_change_carries_the_old_key() -> None:
    row = {**ASSIGNMENT_ROW, "id": 8, "description": UNAVAILABLE_VALUE_PLACEHOLDER}
    event = decoded(ASSIGNMENTS, envelope("c", row), headers=[(OLD_KEY_HEADER, b'{"id": 7}')])
    assert event is not None
    assert event.key == (8,)
    assert event.previous_key == (7,)
    assert event.unavailable == {"description"}


def test_schema_wrapped_message_with_precise_decimal() -> None:
    unscaled = (8750).to_bytes(2, "big", signed=True)
    row = {**ASSIGNMENT_ROW, "max_score": base64.b64encode(unscaled).decode()}
    schema = {
        "type": "struct",
        "fields": [
            {
                "field": "after",
                "type": "struct",
                "fields": [
                    {
                        "field": "max_score",
                        "type": "bytes",
                        "name": "org.apache.kafka.connect.data.Decimal",
                        "parameters": {"scale": "2", "connect.decimal.precision": "6"},
                    },
                ],
            }
        ],
    }
    payload = json.loads(envelope("c", row))
    event = decoded(ASSIGNMENTS, json.dumps({"schema": schema, "payload": payload}).encode())
    assert event is not None
    assert event.values["max_score"] == Decimal("87.50")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "neither Confluent-framed Avro .* nor valid JSON"),
        (b"[1, 2]", "expected an object"),
        (json.dumps({"op": "c", "after": {}}).encode(), "no 'source' block"),
        (envelope("x", ASSIGNMENT_ROW), "unknown envelope op"),
        (envelope("c", None), "without an 'after' row"),
        (envelope("c", {**ASSIGNMENT_ROW, "max_score": 87.5}), "not an exact decimal"),
        (envelope("c", {**ASSIGNMENT_ROW, "max_score": "12345.67"}), "does not fit numeric"),
        (envelope("c", {**ASSIGNMENT_ROW, "max_score": "1.234"}), "does not fit numeric"),
        (envelope("c", {**ASSIGNMENT_ROW, "title": None}), "is null"),
        (envelope("c", {**ASSIGNMENT_ROW, "title": "a\x00b"}), "NUL"),
        (envelope("c", {**ASSIGNMENT_ROW, "due_at": 1772000000000}), "ISO-8601"),
        (envelope("c", {**ASSIGNMENT_ROW, "due_at": "2026-03-08T23:59:59"}), "no UTC offset"),
        (envelope("c", {**ASSIGNMENT_ROW, "published": "yes"}), "not a boolean"),
        (envelope("c", {k: v for k, v in ASSIGNMENT_ROW.items() if k != "title"}), "missing"),
        (envelope("c", ASSIGNMENT_ROW, lsn=None), "source.lsn"),
        (envelope("c", ASSIGNMENT_ROW, ts_us=None), "commit time"),
    ],
)
def test_bad_input_names_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        decode_change(ASSIGNMENTS, raw)


def test_added_source_column_is_ignored() -> None:
    event = decoded(ASSIGNMENTS, envelope("c", {**ASSIGNMENT_ROW, "new_column": 1}))
    assert event is not None and "new_column" not in event.values


def test_truncate_is_a_table_event_at_its_position() -> None:
    raw = json.dumps(
        {"op": "t", "before": None, "after": None, "source": {"lsn": 7000, "sequence": '["6900","7000"]', "ts_us": 5}}
    ).encode()
    event = decode_change(LECTURES, raw)
    assert event == TableTruncated(
        LECTURES, SourceCommitPosition(6900, 7000), datetime(1970, 1, 1, 0, 0, 0, 5, tzinfo=UTC)
    )


def test_incremental_snapshot_read_orders_between_transactions() -> None:
    """Recorded shape: lsn null, snapshot "incremental", sequence [L, L]."""
    row = {"course_id": 1, "user_id": 2, "status": "active"}
    read = decoded(ENROLLMENTS, envelope("r", row, lsn=None, snapshot="incremental", sequence='["5000","5000"]'))
    committed_before = decoded(ENROLLMENTS, envelope("u", row, lsn=4990, sequence='["4800","4990"]'))
    committed_after = decoded(ENROLLMENTS, envelope("u", row, lsn=4995, sequence='["5000","4995"]'))
    assert read.position == SourceCommitPosition(5000, 0)
    assert committed_before.position < read.position < committed_after.position
