"""Source schema changes mid-stream, on the real pipeline.

What the sink does with each kind of change:

- a column added to a source table: ignored (the sink reads only the columns the rules use);
- a column dropped that the rules do not use: ignored;
- a widened type of a column the rules use: accepted while each value fits the read model;
  a value that does not fit goes to the dead-letter topic with a reason naming the column
  and the read model's type, and the row keeps its previous version;
- a rules column changed into a form the sink cannot interpret (another type, a rename):
  each event of that table goes to the dead-letter topic with a reason naming the column.

Every test restores the spec's exact schema (columns, types, order, defaults) and leaves
the calendar equal to the rules, because later modules run their workloads on these tables.

The added column and the widened type run in both change formats: in Avro each is a new schema
version that passes the registry's BACKWARD compatibility check. The other two run in JSON only:
re-adding a NOT NULL column without a default, a boolean turned integer and a renamed column are
changes that check refuses, so in Avro the connector stops at the registry, before the sink.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import LiteralString

import psycopg
import pytest

from cdcsync.sink.dead_letters import ERROR_CLASS_HEADER, ERROR_MESSAGE_HEADER, StoredDeadLetter, read_dead_letters
from cdcsync.sink.kafka_clients import consumer_config
from tests.integration.conftest import FormatPipeline, Sources, assert_calendar_matches_rules, until
from tests.support.topic_values import readable_value

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 7, 10, 0, 0, 250001, tzinfo=UTC)
COURSE_TITLE, TITLE, MAX_SCORE = 4, 5, 10  # positions in a row of Sources.calendar_rows
Statement = tuple[LiteralString, tuple[object, ...]]

COLUMNS_OF = """
    SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale,
           is_nullable, column_default
    FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = %s
    ORDER BY ordinal_position"""


def _columns(sources: Sources, service: str, table: str) -> list[tuple[object, ...]]:
    with psycopg.connect(sources.targets.source_urls[service]) as conn:
        return conn.execute(COLUMNS_OF, (table,)).fetchall()


@contextmanager
def schema_changed(
    sources: Sources, service: str, table: str, change: Sequence[Statement], restore: Sequence[Statement]
) -> Iterator[None]:
    """Apply ``change`` to ``service``'s ``table``; afterwards ``restore`` it, and check the spec's columns are back."""
    before = _columns(sources, service, table)
    sources.execute(service, *change)
    try:
        yield
    finally:
        sources.execute(service, *restore)
    assert _columns(sources, service, table) == before, f"{service}.{table} was not restored exactly"


def _dead_letters(pipe: FormatPipeline, service: str, table: str, ids: set[int]) -> list[StoredDeadLetter]:
    """Dead letters of ``service``'s ``table`` topic whose change names one of ``ids``."""
    topic = pipe.topic(service, table)
    reader = {**consumer_config(pipe.targets.sink_settings()), "group.id": f"test-dlq-{uuid.uuid4()}"}
    found = []
    for letter in read_dead_letters(reader, pipe.dead_letter_topic):
        if letter.original.topic != topic or not letter.value:
            continue
        try:
            envelope = json.loads(readable_value(letter.value, pipe.registry_url, topic))
        except ValueError:  # another test's malformed message
            continue
        row = envelope.get("after") or envelope.get("before") or {}
        if row.get("id") in ids:
            found.append(letter)
    return found


def _course(sources: Sources, users: Sequence[int], title: str = "Schema course") -> int:
    course = sources.new_id()
    sources.execute(
        "course",
        ("INSERT INTO courses (id, title) VALUES (%s, %s)", (course, title)),
        *(
            ("INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')", (course, user))
            for user in users
        ),
    )
    return course


def _insert_lecture(lecture: int, course: int, title: str) -> Statement:
    return (
        "INSERT INTO lectures (id, course_id, title, starts_at, ends_at, room) VALUES (%s, %s, %s, %s, %s, 'S1')",
        (lecture, course, title, T0, T0 + timedelta(hours=1, microseconds=3)),
    )


def _by_key(sources: Sources, course: int) -> dict[str, tuple[object, ...]]:
    return {row[1]: row for row in sources.calendar_rows("course_id = %s", (course,))}


def _until_calendar(sources: Sources, course: int, what: str, wanted: dict[str, dict[int, object]]) -> None:
    """Poll until every entry in ``wanted`` has the given values (by column index of ``calendar_rows``)."""

    def done() -> bool | None:
        rows = _by_key(sources, course)
        return (
            all(key in rows and all(rows[key][i] == v for i, v in cols.items()) for key, cols in wanted.items()) or None
        )

    until(what, done)


def test_added_nullable_column_is_ignored(pipe: FormatPipeline) -> None:
    sources = pipe.sources
    user = sources.new_id()
    course = _course(sources, [user])
    with_url, without_url = sources.new_id(), sources.new_id()
    with schema_changed(
        sources,
        "course",
        "lectures",
        change=[("ALTER TABLE lectures ADD COLUMN streaming_url text", ())],
        restore=[("ALTER TABLE lectures DROP COLUMN streaming_url", ())],
    ):
        sources.execute(
            "course",
            (
                "INSERT INTO lectures (id, course_id, title, starts_at, ends_at, streaming_url)"
                " VALUES (%s, %s, 'Streamed', %s, %s, 'https://example.org/live')",
                (with_url, course, T0, T0 + timedelta(hours=1)),
            ),
            _insert_lecture(without_url, course, "In person"),
        )
        # A change to the new column alone, and one together with a rules column.
        sources.execute(
            "course", ("UPDATE lectures SET streaming_url = 'https://example.org/2' WHERE id = %s", (with_url,))
        )
        sources.execute(
            "course",
            (
                "UPDATE lectures SET streaming_url = 'https://example.org/3', title = 'Hybrid' WHERE id = %s",
                (without_url,),
            ),
        )
        _until_calendar(
            sources,
            course,
            "both lectures, one renamed",
            {f"lecture:{with_url}": {TITLE: "Streamed"}, f"lecture:{without_url}": {TITLE: "Hybrid"}},
        )
        assert_calendar_matches_rules(pipe.targets)
        assert _dead_letters(pipe, "course", "lectures", {with_url, without_url}) == []

    # Dropping the added column again changes nothing either; later changes still arrive.
    sources.execute("course", ("UPDATE lectures SET title = 'After the drop' WHERE id = %s", (with_url,)))
    _until_calendar(sources, course, "a change after the drop", {f"lecture:{with_url}": {TITLE: "After the drop"}})
    assert _dead_letters(pipe, "course", "lectures", {with_url, without_url}) == []
    assert_calendar_matches_rules(pipe.targets)


def test_dropped_column_the_rules_do_not_use_is_ignored(json_pipeline: FormatPipeline) -> None:
    pipe, sources = json_pipeline, json_pipeline.sources
    user = sources.new_id()
    course, lecture = _course(sources, [user], "Before the drop"), sources.new_id()
    sources.execute("course", _insert_lecture(lecture, course, "Kept"))
    _until_calendar(sources, course, "the lecture", {f"lecture:{lecture}": {COURSE_TITLE: "Before the drop"}})
    other = sources.new_id()
    # updated_at is the last column of courses, so re-adding it restores the spec's exact column order.
    with schema_changed(
        sources,
        "course",
        "courses",
        change=[("ALTER TABLE courses DROP COLUMN updated_at", ())],
        restore=[("ALTER TABLE courses ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()", ())],
    ):
        sources.execute("course", ("UPDATE courses SET title = 'After the drop' WHERE id = %s", (course,)))
        sources.execute(
            "course",
            ("INSERT INTO courses (id, title) VALUES (%s, 'New after the drop')", (other,)),
            ("INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')", (other, user)),
            _insert_lecture(sources.new_id(), other, "Its lecture"),
        )
        _until_calendar(sources, course, "the rename", {f"lecture:{lecture}": {COURSE_TITLE: "After the drop"}})
        until("the new course's lecture", lambda: sources.calendar_rows("course_id = %s", (other,)) or None)
        assert_calendar_matches_rules(pipe.targets)
        assert _dead_letters(pipe, "course", "courses", {course, other}) == []

    sources.execute("course", ("UPDATE courses SET title = 'Column back' WHERE id = %s", (course,)))
    _until_calendar(
        sources, course, "a change after the restore", {f"lecture:{lecture}": {COURSE_TITLE: "Column back"}}
    )
    assert _dead_letters(pipe, "course", "courses", {course, other}) == []
    assert_calendar_matches_rules(pipe.targets)


def _insert_assignment(assignment: int, course: int, max_score: Decimal) -> Statement:
    return (
        "INSERT INTO assignments (id, course_id, title, max_score, opens_at, due_at)"
        " VALUES (%s, %s, 'Sheet', %s, %s, %s)",
        (assignment, course, max_score, T0, T0 + timedelta(days=7)),
    )


def test_widened_rules_column_is_accepted_while_values_fit_the_read_model(pipe: FormatPipeline) -> None:
    sources = pipe.sources
    user = sources.new_id()
    course = _course(sources, [user])
    largest, small = sources.new_id(), sources.new_id()
    with schema_changed(
        sources,
        "assignment",
        "assignments",
        change=[("ALTER TABLE assignments ALTER COLUMN max_score TYPE numeric(8,2)", ())],
        restore=[
            # Only a value the spec's numeric(6,2) holds can stay; the test sets one before it ends.
            ("UPDATE assignments SET max_score = NULL WHERE id = ANY(%s) AND max_score >= 10000", ([largest, small],)),
            ("ALTER TABLE assignments ALTER COLUMN max_score TYPE numeric(6,2)", ()),
        ],
    ):
        sources.execute(
            "assignment",
            _insert_assignment(largest, course, Decimal("9999.99")),
            _insert_assignment(small, course, Decimal("0.5")),
        )
        _until_calendar(
            sources,
            course,
            "values that fit numeric(6,2)",
            {
                f"assignment:{largest}": {MAX_SCORE: Decimal("9999.99")},
                f"assignment:{small}": {MAX_SCORE: Decimal("0.50")},
            },
        )
        assert_calendar_matches_rules(pipe.targets)
        assert _dead_letters(pipe, "assignment", "assignments", {largest, small}) == []

        # A value the wider source holds but the read model does not: a dead letter, not a wrong row.
        sources.execute("assignment", ("UPDATE assignments SET max_score = 12345.67 WHERE id = %s", (small,)))
        letters = until(
            "the dead letter of the value that does not fit",
            lambda: _dead_letters(pipe, "assignment", "assignments", {small}) or None,
        )
        assert [x.header(ERROR_CLASS_HEADER) for x in letters] == ["InvalidMessage"]
        reason = letters[0].header(ERROR_MESSAGE_HEADER)
        assert "'max_score'" in reason and "12345.67" in reason and "numeric(6,2)" in reason, reason

        # The pipeline continues: a later change of the same table arrives, and the row that
        # could not be applied keeps its previous version.
        sources.execute("assignment", ("UPDATE assignments SET title = 'Sheet, revised' WHERE id = %s", (largest,)))
        _until_calendar(sources, course, "a later change", {f"assignment:{largest}": {TITLE: "Sheet, revised"}})
        assert _by_key(sources, course)[f"assignment:{small}"][MAX_SCORE] == Decimal("0.50")

        # Once the row holds a value that fits again, the calendar equals the rules.
        sources.execute("assignment", ("UPDATE assignments SET max_score = 1234.5 WHERE id = %s", (small,)))
        _until_calendar(
            sources, course, "the value that fits", {f"assignment:{small}": {MAX_SCORE: Decimal("1234.50")}}
        )
        assert_calendar_matches_rules(pipe.targets)
    assert len(_dead_letters(pipe, "assignment", "assignments", {largest, small})) == 1


LECTURE_CHANGES = {
    "cancelled boolean to integer": (
        "cancelled",
        "ALTER TABLE lectures ALTER COLUMN cancelled DROP DEFAULT,"
        " ALTER COLUMN cancelled TYPE integer USING cancelled::integer, ALTER COLUMN cancelled SET DEFAULT 0",
        "ALTER TABLE lectures ALTER COLUMN cancelled DROP DEFAULT,"
        " ALTER COLUMN cancelled TYPE boolean USING cancelled <> 0, ALTER COLUMN cancelled SET DEFAULT false",
    ),
    "room renamed": (
        "room",
        "ALTER TABLE lectures RENAME COLUMN room TO location",
        "ALTER TABLE lectures RENAME COLUMN location TO room",
    ),
}


@pytest.mark.parametrize("column, change, restore", LECTURE_CHANGES.values(), ids=LECTURE_CHANGES.keys())
def test_rules_column_the_sink_cannot_interpret_is_dead_lettered_naming_it(
    json_pipeline: FormatPipeline, column: str, change: LiteralString, restore: LiteralString
) -> None:
    pipe, sources = json_pipeline, json_pipeline.sources
    user = sources.new_id()
    course, lecture = _course(sources, [user], "Interpreted"), sources.new_id()
    sources.execute("course", _insert_lecture(lecture, course, "Before the change"))
    _until_calendar(sources, course, "the lecture", {f"lecture:{lecture}": {TITLE: "Before the change"}})
    assignment = sources.new_id()
    with schema_changed(sources, "course", "lectures", change=[(change, ())], restore=[(restore, ())]):
        sources.execute("course", ("UPDATE lectures SET title = 'Not interpretable' WHERE id = %s", (lecture,)))
        letters = until(
            "the lecture's dead letter",
            lambda: _dead_letters(pipe, "course", "lectures", {lecture}) or None,
        )
        assert [x.header(ERROR_CLASS_HEADER) for x in letters] == ["InvalidMessage"]
        reason = letters[0].header(ERROR_MESSAGE_HEADER)
        assert f"column {column!r}" in reason, reason

        # The rest continues: other tables' changes arrive (a course rename fans out to the
        # lecture's entry), and the lecture keeps the version the sink last understood.
        sources.execute("course", ("UPDATE courses SET title = 'Renamed meanwhile' WHERE id = %s", (course,)))
        sources.execute("assignment", _insert_assignment(assignment, course, Decimal("10")))
        _until_calendar(
            sources,
            course,
            "the other tables' changes",
            {
                f"lecture:{lecture}": {COURSE_TITLE: "Renamed meanwhile", TITLE: "Before the change"},
                f"assignment:{assignment}": {MAX_SCORE: Decimal("10.00")},
            },
        )

    # The fix: once the sink can read the table again (here the source is reverted), the row's
    # next change, a replay of a fixed sink, or a re-snapshot brings the calendar back to the rules.
    sources.execute("course", ("UPDATE lectures SET updated_at = now() WHERE id = %s", (lecture,)))
    _until_calendar(
        sources, course, "the lecture's current title", {f"lecture:{lecture}": {TITLE: "Not interpretable"}}
    )
    assert_calendar_matches_rules(pipe.targets)
