"""The whole pipeline for real: source commits -> Debezium -> Kafka -> sink -> calendar.

Each test writes to the service databases, then polls until the calendar shows
what the spec's rules say (and ``verify`` is clean), within a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cdcsync.debezium.connect_client import ConnectClient, ConnectorState
from cdcsync.debezium.waiting import wait_for_state
from tests.integration.conftest import (
    FormatPipeline,
    Sources,
    assert_calendar_matches_rules,
    assert_ledger_clean,
    until,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 10, 5, 9, 15, 30, 123456, tzinfo=UTC)


def _course(sources: Sources, title: str, users: list[int]) -> int:
    course = sources.new_id()
    sources.execute(
        "course",
        ("INSERT INTO courses (id, title, description) VALUES (%s, %s, %s)", (course, title, "about it")),
        *(
            ("INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')", (course, user))
            for user in users
        ),
    )
    return course


def _lecture(sources: Sources, course: int, title: str = "Intro", room: str | None = "H1") -> int:
    lecture = sources.new_id()
    sources.execute(
        "course",
        (
            "INSERT INTO lectures (id, course_id, title, starts_at, ends_at, room) VALUES (%s, %s, %s, %s, %s, %s)",
            (lecture, course, title, T0, T0 + timedelta(minutes=90), room),
        ),
    )
    return lecture


def _rows(sources: Sources, course: int) -> list[tuple[object, ...]]:
    return sources.calendar_rows("course_id = %s", (course,))


def _until_rows(sources: Sources, course: int, predicate: object, what: str) -> list[tuple[object, ...]]:
    assert callable(predicate)
    return until(what, lambda: rows if predicate(rows := _rows(sources, course)) else None, timeout=60)


def test_insert_update_delete_on_each_table(pipe: FormatPipeline) -> None:
    sources = pipe.sources
    user = sources.new_id()
    course = _course(sources, "Compilers", [user])
    lecture = _lecture(sources, course, "Parsing", "R2")
    window, assignment = sources.new_id(), sources.new_id()
    sources.execute(
        "attendance",
        (
            "INSERT INTO attendance_windows (id, lecture_id, opens_at, closes_at) VALUES (%s, %s, %s, %s)",
            (window, lecture, T0, T0 + timedelta(minutes=10, microseconds=7)),
        ),
    )
    sources.execute(
        "assignment",
        (
            "INSERT INTO assignments (id, course_id, title, description, max_score, opens_at, due_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (assignment, course, "LL(1) sheet", "Prove it.", Decimal("87.50"), T0, T0 + timedelta(days=7)),
        ),
    )
    rows = _until_rows(sources, course, lambda r: len(r) == 3, "the three entries of a new course")
    by_key = {r[1]: r for r in rows}
    assert by_key[f"lecture:{lecture}"][2:] == (
        "lecture", course, "Compilers", "Parsing", T0, T0 + timedelta(minutes=90), "R2", None, None,
    )  # fmt: skip
    assert by_key[f"attendance:{window}"][5:9] == ("Parsing", T0, T0 + timedelta(minutes=10, microseconds=7), "R2")
    assert by_key[f"assignment:{assignment}"][5:] == (
        "LL(1) sheet", T0, T0 + timedelta(days=7), None, "Prove it.", Decimal("87.50"),
    )  # fmt: skip

    # Updates on every table.
    sources.execute("course", ("UPDATE lectures SET room = %s, title = %s WHERE id = %s", ("R3", "Lexing", lecture)))
    sources.execute(
        "attendance", ("UPDATE attendance_windows SET opens_at = %s WHERE id = %s", (T0 - timedelta(minutes=5), window))
    )
    sources.execute(
        "assignment", ("UPDATE assignments SET max_score = %s WHERE id = %s", (Decimal("100.00"), assignment))
    )
    sources.execute(
        "course", ("UPDATE enrollments SET status = 'active', updated_at = now() WHERE course_id = %s", (course,))
    )
    rows = _until_rows(
        sources,
        course,
        # The three services' updates reach the sink in any order: wait for all of them.
        lambda r: (
            {x[1]: x for x in r}.get(f"assignment:{assignment}", (None,) * 11)[10] == Decimal("100.00")
            and {x[1]: x for x in r}.get(f"attendance:{window}", (None,) * 11)[6] == T0 - timedelta(minutes=5)
            and {x[1]: x for x in r}.get(f"lecture:{lecture}", (None,) * 11)[5] == "Lexing"
        ),
        "the updates of all three services",
    )
    by_key = {r[1]: r for r in rows}
    assert by_key[f"lecture:{lecture}"][5] == "Lexing"
    assert by_key[f"attendance:{window}"][5:9] == (
        "Lexing",
        T0 - timedelta(minutes=5),
        T0 + timedelta(minutes=10, microseconds=7),
        "R3",
    )

    # Deletes on every table.
    sources.execute("attendance", ("DELETE FROM attendance_windows WHERE id = %s", (window,)))
    sources.execute("assignment", ("DELETE FROM assignments WHERE id = %s", (assignment,)))
    _until_rows(sources, course, lambda r: [x[1] for x in r] == [f"lecture:{lecture}"], "window and assignment gone")
    sources.execute("course", ("DELETE FROM lectures WHERE id = %s", (lecture,)))
    _until_rows(sources, course, lambda r: r == [], "the lecture gone")
    second = _lecture(sources, course)
    _until_rows(sources, course, lambda r: len(r) == 1, "a new lecture")
    sources.execute(
        "course",
        ("DELETE FROM lectures WHERE id = %s", (second,)),
        ("DELETE FROM enrollments WHERE course_id = %s", (course,)),
        ("DELETE FROM courses WHERE id = %s", (course,)),
    )
    _until_rows(sources, course, lambda r: r == [], "the course gone")
    assert_calendar_matches_rules(pipe.targets)


def test_course_rename_fans_out_to_every_entry(pipe: FormatPipeline) -> None:
    sources = pipe.sources
    users = [sources.new_id() for _ in range(4)]
    course = _course(sources, "Old title", users)
    lectures = [_lecture(sources, course, f"L{i}") for i in range(3)]
    sources.execute(
        "attendance",
        *(
            ("INSERT INTO attendance_windows (id, lecture_id, opens_at, closes_at) VALUES (%s, %s, %s, %s)",
             (sources.new_id(), lecture, T0, T0 + timedelta(minutes=5)))
            for lecture in lectures
        ),
    )  # fmt: skip
    _until_rows(sources, course, lambda r: len(r) == 4 * 6, "4 users x (3 lectures + 3 windows)")
    sources.execute("course", ("UPDATE courses SET title = %s WHERE id = %s", ("New title ✓", course)))
    rows = _until_rows(sources, course, lambda r: {x[4] for x in r} == {"New title ✓"}, "the rename on every entry")
    assert len(rows) == 24


def test_lecture_cancelled_and_uncancelled(pipe: FormatPipeline) -> None:
    sources = pipe.sources
    users = [sources.new_id() for _ in range(2)]
    course = _course(sources, "Optics", users)
    lecture = _lecture(sources, course)
    sources.execute(
        "attendance",
        ("INSERT INTO attendance_windows (id, lecture_id, opens_at, closes_at) VALUES (%s, %s, %s, %s)",
         (sources.new_id(), lecture, T0, T0 + timedelta(minutes=5))),
    )  # fmt: skip
    _until_rows(sources, course, lambda r: len(r) == 4, "lecture and window rows")
    sources.execute("course", ("UPDATE lectures SET cancelled = true WHERE id = %s", (lecture,)))
    _until_rows(sources, course, lambda r: r == [], "a cancelled lecture's rows gone")
    sources.execute("course", ("UPDATE lectures SET cancelled = false WHERE id = %s", (lecture,)))
    _until_rows(sources, course, lambda r: len(r) == 4, "the rows back")


def test_enrollment_dropped(pipe: FormatPipeline) -> None:
    sources = pipe.sources
    stays, drops = sources.new_id(), sources.new_id()
    course = _course(sources, "Statistics", [stays, drops])
    _lecture(sources, course)
    _until_rows(sources, course, lambda r: len(r) == 2, "both users' lecture")
    sources.execute(
        "course", ("UPDATE enrollments SET status = 'dropped' WHERE course_id = %s AND user_id = %s", (course, drops))
    )
    rows = _until_rows(sources, course, lambda r: len(r) == 1, "the dropped user's rows gone")
    assert rows[0][0] == stays
    sources.execute(
        "course", ("UPDATE enrollments SET status = 'active' WHERE course_id = %s AND user_id = %s", (course, drops))
    )
    _until_rows(sources, course, lambda r: len(r) == 2, "the reactivated user's rows back")


def test_large_description_untouched_while_another_column_changes(pipe: FormatPipeline) -> None:
    sources = pipe.sources
    user = sources.new_id()
    course = _course(sources, "Literature", [user])
    assignment = sources.new_id()
    # Incompressible text well over the TOAST threshold, so PostgreSQL stores it out of line.
    description = "".join(f"{i:06d}-{(i * 7919) % 104729:x}|" for i in range(4000))
    sources.execute(
        "assignment",
        (
            "INSERT INTO assignments (id, course_id, title, description, max_score, opens_at, due_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (assignment, course, "Essay", description, Decimal("20.00"), T0, T0 + timedelta(days=3)),
        ),
    )
    _until_rows(sources, course, lambda r: len(r) == 1, "the assignment")
    sources.execute("assignment", ("UPDATE assignments SET title = %s WHERE id = %s", ("Essay, revised", assignment)))
    rows = _until_rows(sources, course, lambda r: r and r[0][5] == "Essay, revised", "the new title")
    assert rows[0][9] == description
    assert_calendar_matches_rules(pipe.targets)


def test_placeholder_really_arrives_for_an_untouched_toasted_value(pipe: FormatPipeline) -> None:
    """Proves the previous test exercised the placeholder path: Debezium sent it."""
    sources = pipe.sources
    user = sources.new_id()
    course = _course(sources, "Archives", [user])
    assignment = sources.new_id()
    description = "".join(f"{i:06d}-{(i * 104723) % 7919:x}|" for i in range(4000))
    sources.execute(
        "assignment",
        (
            "INSERT INTO assignments (id, course_id, title, description, opens_at, due_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (assignment, course, "Before", description, T0, T0 + timedelta(days=1)),
        ),
    )
    sources.execute("assignment", ("UPDATE assignments SET published = false WHERE id = %s", (assignment,)))
    sources.execute("assignment", ("UPDATE assignments SET published = true WHERE id = %s", (assignment,)))
    rows = _until_rows(sources, course, lambda r: len(r) == 1, "the republished assignment")
    assert rows[0][9] == description
    updates = until(
        "the update events in Kafka",
        lambda: (
            [
                m
                for m in pipe.topic_values("assignment", "assignments")
                if f'"id":{assignment},' in m and '"op":"u"' in m
            ]
            or None
        ),
    )
    assert all("__debezium_unavailable_value" in m for m in updates)


def _paused(state: ConnectorState) -> bool:
    """Pausing is asynchronous: the connector reports PAUSED before its task has stopped polling."""
    return state.state == "PAUSED" and bool(state.tasks) and all(task.state == "PAUSED" for task in state.tasks)


@contextmanager
def _course_connector_paused(connect: ConnectClient, connector: str) -> Iterator[None]:
    """The course connector paused, task included; afterwards resumed, and RUNNING again for certain.

    The only test that touches a shipped connector (in JSON): the cross-service order must reach the shared
    sink. Pausing keeps its offsets and slot; a failure to come back fails the test, naming the state.
    """
    connect.pause_connector(connector)
    try:
        until("the course connector to pause", lambda: _paused(connect.connector_status(connector)) or None)
        yield
    finally:
        connect.resume_connector(connector)
        wait_for_state(connect, [connector], "RUNNING", timeout=60, settled=[connector])


def test_changes_arriving_in_cross_service_order(pipe: FormatPipeline, connect: ConnectClient) -> None:
    """The attendance window and the assignment reach the sink before the course and lecture they refer to."""
    sources = pipe.sources
    user = sources.new_id()
    course, lecture, window, assignment = (sources.new_id() for _ in range(4))
    with _course_connector_paused(connect, pipe.connectors["course"]):
        sources.execute(
            "course",
            ("INSERT INTO courses (id, title) VALUES (%s, %s)", (course, "Late course")),
            ("INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')", (course, user)),
            ("INSERT INTO lectures (id, course_id, title, starts_at, ends_at) VALUES (%s, %s, %s, %s, %s)",
             (lecture, course, "Late lecture", T0, T0 + timedelta(hours=1))),
        )  # fmt: skip
        sources.execute(
            "attendance",
            ("INSERT INTO attendance_windows (id, lecture_id, opens_at, closes_at) VALUES (%s, %s, %s, %s)",
             (window, lecture, T0, T0 + timedelta(minutes=3))),
        )  # fmt: skip
        sources.execute(
            "assignment",
            ("INSERT INTO assignments (id, course_id, title, opens_at, due_at) VALUES (%s, %s, %s, %s, %s)",
             (assignment, course, "Early assignment", T0, T0 + timedelta(days=2))),
        )  # fmt: skip
        until(
            "the window and assignment events in Kafka",
            lambda: (
                (
                    any(f'"id":{window},' in m for m in pipe.topic_values("attendance", "attendance_windows"))
                    and any(f'"id":{assignment},' in m for m in pipe.topic_values("assignment", "assignments"))
                )
                or None
            ),
        )
        assert not any(f'"id":{course},' in m for m in pipe.topic_values("course", "courses"))
        assert _rows(sources, course) == []
    rows = _until_rows(sources, course, lambda r: len(r) == 3, "all three entries once the course arrives")
    assert {r[1] for r in rows} == {f"lecture:{lecture}", f"attendance:{window}", f"assignment:{assignment}"}


def test_sink_killed_while_changes_flow_resumes_exactly_once(pipe: FormatPipeline) -> None:
    """SIGKILL between batches or in the middle of one; the restarted sink resumes from the offsets it stored
    with the calendar, so every change is applied once: the calendar equals the rules and no offset is twice."""
    sources = pipe.sources
    users = [sources.new_id() for _ in range(3)]
    course = _course(sources, "Restarts", users)
    lectures = [_lecture(sources, course, f"Before {i}") for i in range(10)]
    _until_rows(sources, course, lambda r: len(r) == 3 * 10, "3 users x 10 lectures")
    for i, lecture in enumerate(lectures[:5]):
        sources.execute("course", ("UPDATE lectures SET title = %s WHERE id = %s", (f"During {i}", lecture)))
    pipe.sink.kill()
    for i, lecture in enumerate(lectures[5:]):
        sources.execute("course", ("UPDATE lectures SET title = %s WHERE id = %s", (f"While down {i}", lecture)))
    sources.execute("course", ("DELETE FROM lectures WHERE id = %s", (lectures[0],)))
    pipe.sink.start()
    rows = _until_rows(
        sources,
        course,
        lambda r: len(r) == 3 * 9 and not any(x[5].startswith("Before") for x in r),
        "every change made before and while the sink was down",
    )
    assert {x[5] for x in rows} == {f"During {i}" for i in range(1, 5)} | {f"While down {i}" for i in range(5)}
    assert_calendar_matches_rules(pipe.targets, sink=pipe.sink)
    assert_ledger_clean(pipe.targets.sink_db_url, pipe.group_id)
