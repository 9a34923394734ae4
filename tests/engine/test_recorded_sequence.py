"""Recorded Debezium envelopes through the engine, in every batch split: the large
description survives the placeholder and the primary-key move, and is never written as
the placeholder."""

from __future__ import annotations

import json

import psycopg
import pytest

from cdcsync.sink.calendar_writer import CalendarWriter
from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.change_event import MessageRef
from cdcsync.sink.decoding import decode_change
from cdcsync.sink.offset_store import OffsetStore
from cdcsync.sink.schema import migrate
from cdcsync.sink.source_tables import ASSIGNMENTS, COURSES, ENROLLMENTS
from tests.unit.test_recorded_envelopes import decode, recorded

pytestmark = pytest.mark.postgres

USER = 42


def _parents(batch: ChangeBatch) -> None:
    """Course 1 with one active attendee, committed before every recorded change."""
    source = {"lsn": 1, "sequence": '["1","1"]', "ts_us": 1_700_000_000_000_000}
    course = {"op": "r", "after": {"id": 1, "title": "Recorded course"}, "source": source}
    enrollment = {"op": "r", "after": {"course_id": 1, "user_id": USER, "status": "active"}, "source": source}
    batch.add(MessageRef("course.public.courses", 0, 0), decode_change(COURSES, json.dumps(course).encode()))
    batch.add(
        MessageRef("course.public.enrollments", 0, 0), decode_change(ENROLLMENTS, json.dumps(enrollment).encode())
    )


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_description_survives_placeholder_and_move(fresh_database: str, batch_size: int) -> None:
    records = recorded()
    description = json.loads(next(r for r in records if r["what"] == "create")["value"])["after"]["description"]
    before_delete = [r for r in records if r["what"] not in ("delete", "tombstone")]
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        migrate(conn)
        writer = CalendarWriter(conn, OffsetStore("recorded"))
        first = ChangeBatch()
        _parents(first)
        writer.apply(first)
        for start in range(0, len(before_delete), batch_size):
            batch = ChangeBatch()
            for offset, record in enumerate(before_delete[start : start + batch_size], start):
                batch.add(MessageRef(ASSIGNMENTS.default_topic(), 0, offset), decode(record))
            writer.apply(batch)
        row = conn.execute(
            "SELECT title, details FROM calendar.calendar_entries"
            " WHERE user_id = %s AND entry_key = 'assignment:990002'",
            (USER,),
        ).fetchone()
        assert row == ("Recorded, renamed", description)
        assert conn.execute(
            "SELECT count(*) FROM calendar.calendar_entries WHERE entry_key = 'assignment:990001'"
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM calendar.calendar_entries WHERE details LIKE '%%__debezium_unavailable_value%%'"
        ).fetchone() == (0,)

        batch = ChangeBatch()
        for offset, record in enumerate(r for r in records if r["what"] in ("delete", "tombstone")):
            batch.add(MessageRef(ASSIGNMENTS.default_topic(), 0, 100 + offset), decode(record))
        writer.apply(batch)
        assert conn.execute(
            "SELECT count(*) FROM calendar.calendar_entries WHERE entry_key = 'assignment:990002'"
        ).fetchone() == (0,)
