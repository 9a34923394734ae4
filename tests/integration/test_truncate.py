"""TRUNCATE of a source table on the real pipeline.

The defined outcome: a TRUNCATE deletes every row of the table as of its position in
the source's commit order, so every calendar row built from those rows disappears;
changes committed after it (in the same transaction or later) apply on top. Rows of
other tables are untouched and come back into the calendar when what they need exists
again.

The tests truncate the demo data that other modules expect, so the module ends by
emptying every source table and loading the demo set again, through the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import LiteralString

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # not re-exported for type checkers
from confluent_kafka.admin._resource import ResourceType

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.pipeline.sources.demo_data import load_demo_data
from cdcsync.sink.source_tables import SOURCE_TABLES
from tests.integration.conftest import SinkProcess, Sources, assert_calendar_matches_rules, topic_values, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2027, 1, 11, 14, 0, 0, 999999, tzinfo=UTC)
Statement = tuple[LiteralString, tuple[object, ...]]
EVERY_TABLE: dict[str, LiteralString] = {
    "course": "TRUNCATE courses, lectures, enrollments",
    "attendance": "TRUNCATE attendance_windows",
    "assignment": "TRUNCATE assignments",
}


@pytest.fixture(scope="module", autouse=True)
def truncating_pipeline(sink: SinkProcess) -> Iterator[None]:
    """Checks that truncates reach the sink; afterwards empties every source table and loads the demo set again.

    Debezium emits truncates (``skipped.operations=none``) as events without a key. A compacted
    topic refuses those and the connector's task fails, so the table topics must not be
    compacted. This is checked before anything is truncated, so a stack whose topics are
    compacted is left unbroken.
    """
    with ConnectClient(sink.targets.connect_url) as connect:
        for spec in load_connector_specs():
            assert connect.get_connector_config(spec.name).get("skipped.operations") == "none", spec.name
    admin = AdminClient({"bootstrap.servers": sink.targets.kafka_bootstrap_servers})
    resources = [ConfigResource(ResourceType.TOPIC, table.default_topic()) for table in SOURCE_TABLES]
    for resource, future in admin.describe_configs(resources).items():
        config = future.result(timeout=30)
        assert (config["cleanup.policy"].value, config["retention.ms"].value) == ("delete", "-1"), resource
    yield
    urls = sink.targets.source_urls
    for service, truncate in EVERY_TABLE.items():
        with psycopg.connect(urls[service]) as conn:
            conn.execute(truncate)
    assert load_demo_data(urls)
    assert_calendar_matches_rules(sink.targets, timeout=300)


def _calendar_count(sources: Sources, where: LiteralString) -> int:
    return len(sources.calendar_rows(where, ()))


def _insert_window(window: int, lecture: int) -> Statement:
    return (
        "INSERT INTO attendance_windows (id, lecture_id, opens_at, closes_at) VALUES (%s, %s, %s, %s)",
        (window, lecture, T0, T0 + timedelta(minutes=15)),
    )


def _course_statements(course: int, users: Sequence[int], lecture: int) -> list[Statement]:
    return [
        ("INSERT INTO courses (id, title) VALUES (%s, 'Truncated course')", (course,)),
        *(
            ("INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')", (course, user))
            for user in users
        ),
        (
            "INSERT INTO lectures (id, course_id, title, starts_at, ends_at, room) VALUES (%s, %s, 'T', %s, %s, 'R')",
            (lecture, course, T0, T0 + timedelta(hours=2)),
        ),
    ]


def _entry_keys(sources: Sources, course: int) -> set[str]:
    return {row[1] for row in sources.calendar_rows("course_id = %s", (course,))}


def _assert_healthy(sink: SinkProcess, connect: ConnectClient) -> None:
    for spec in load_connector_specs():
        assert connect.connector_status(spec.name).running, spec.name
    assert sink.process is not None and sink.process.poll() is None, "the sink stopped"
    assert_calendar_matches_rules(sink.targets)


def test_truncated_windows_leave_the_calendar_and_later_ones_arrive(
    sink: SinkProcess, sources: Sources, connect: ConnectClient
) -> None:
    users = [sources.new_id() for _ in range(2)]
    course, lecture = sources.new_id(), sources.new_id()
    before, same_transaction, after = sources.new_id(), sources.new_id(), sources.new_id()
    sources.execute("course", *_course_statements(course, users, lecture))
    sources.execute("attendance", _insert_window(before, lecture))
    until("the window's entries", lambda: f"attendance:{before}" in _entry_keys(sources, course) or None)
    assert _calendar_count(sources, "kind = 'attendance'") > 2  # the demo data's windows too

    # A change in the truncate's own transaction, after it, survives it.
    sources.execute("attendance", ("TRUNCATE attendance_windows", ()), _insert_window(same_transaction, lecture))
    until(
        "only the window inserted after the truncate",
        lambda: _calendar_count(sources, "kind = 'attendance'") == len(users) or None,
    )
    assert _entry_keys(sources, course) == {f"lecture:{lecture}", f"attendance:{same_transaction}"}
    assert '"op":"t"' in "".join(topic_values(sink.targets, "attendance.public.attendance_windows"))
    assert_calendar_matches_rules(sink.targets)

    sources.execute("attendance", _insert_window(after, lecture))
    until(
        "a window inserted after the truncate",
        lambda: (
            _entry_keys(sources, course)
            == {f"lecture:{lecture}", f"attendance:{same_transaction}", f"attendance:{after}"}
            or None
        ),
    )
    _assert_healthy(sink, connect)


def test_truncated_course_tables_empty_the_calendar_until_the_course_is_back(
    sink: SinkProcess, sources: Sources, connect: ConnectClient
) -> None:
    user = sources.new_id()
    course, lecture, window, assignment = (sources.new_id() for _ in range(4))
    sources.execute("course", *_course_statements(course, [user], lecture))
    sources.execute("attendance", _insert_window(window, lecture))
    sources.execute(
        "assignment",
        (
            "INSERT INTO assignments (id, course_id, title, opens_at, due_at) VALUES (%s, %s, 'Kept', %s, %s)",
            (assignment, course, T0, T0 + timedelta(days=3)),
        ),
    )
    keys = {f"lecture:{lecture}", f"attendance:{window}", f"assignment:{assignment}"}
    until("the course's three entries", lambda: _entry_keys(sources, course) == keys or None)

    # The foreign keys of lectures and enrollments require truncating them with courses.
    sources.execute("course", ("TRUNCATE courses, lectures, enrollments", ()))
    until("an empty calendar", lambda: _calendar_count(sources, "true") == 0 or None, timeout=120)
    assert_calendar_matches_rules(sink.targets)

    # The window and the assignment were not truncated: with their course, lecture and
    # enrollment back, their entries are back too.
    sources.execute("course", *_course_statements(course, [user], lecture))
    until("the entries back", lambda: _entry_keys(sources, course) == keys or None)
    _assert_healthy(sink, connect)
