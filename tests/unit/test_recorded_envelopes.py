"""Real Debezium 3.4 envelopes, recorded from the local stack (tests/fixtures/debezium).

The sequence: a snapshot read, a create with a large description, an update that
leaves the description untouched (so it arrives as the placeholder), a
primary-key change (delete + tombstone of the old key, create of the new key
with ``__debezium.oldkey``), then a delete and its tombstone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdcsync.sink.change_event import ChangeEvent, Operation, TableTruncated
from cdcsync.sink.decoding import decode_change
from cdcsync.sink.source_tables import ASSIGNMENTS

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "debezium" / "assignments.jsonl"


def recorded() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def decode(record: dict[str, Any]) -> ChangeEvent | None:
    value = record["value"].encode() if record["value"] is not None else None
    headers = [(name, text.encode()) for name, text in record["headers"].items()]
    event = decode_change(ASSIGNMENTS, value, headers)
    assert not isinstance(event, TableTruncated)
    return event


def by_what() -> dict[str, ChangeEvent | None]:
    return {record["what"]: decode(record) for record in recorded()}


def test_snapshot_read_is_an_upsert_with_every_value() -> None:
    event = by_what()["snapshot read"]
    assert event is not None and event.operation is Operation.UPSERT
    assert not event.unavailable
    assert event.position.commit_lsn == event.position.change_lsn  # no lastCommitLsn during the snapshot


def test_create_update_and_primary_key_change() -> None:
    events = by_what()
    create, update = events["create"], events["update, description untouched"]
    assert create is not None and update is not None
    description = create.values["description"]
    assert isinstance(description, str) and len(description) > 5000
    assert str(create.values["max_score"]) == "87.50"
    assert update.unavailable == {"description"} and "description" not in update.values
    assert update.position > create.position

    old_delete = events["primary-key change: delete of the old key"]
    moved = events["primary-key change: create of the new key"]
    assert old_delete is not None and moved is not None
    assert old_delete.operation is Operation.DELETE and old_delete.key == (990001,)
    # Debezium fills a delete's non-key before-columns with type defaults; none may be read as values.
    assert old_delete.values == {}
    assert moved.key == (990002,) and moved.previous_key == (990001,)
    assert moved.unavailable == {"description"}
    assert moved.position > update.position


@pytest.mark.parametrize("what", ["primary-key change: tombstone of the old key", "tombstone"])
def test_tombstones_decode_to_nothing(what: str) -> None:
    assert by_what()[what] is None


def test_delete_is_last() -> None:
    events = by_what()
    delete, moved = events["delete"], events["primary-key change: create of the new key"]
    assert delete is not None and moved is not None
    assert delete.operation is Operation.DELETE and delete.key == (990002,)
    assert delete.position > moved.position
