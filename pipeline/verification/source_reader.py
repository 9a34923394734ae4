"""Reads the sources' committed state and the calendar, each database in one consistent snapshot.

The item tables (courses, lectures, windows, assignments) are held in memory as
per-course entry templates; the two large ones, ``enrollments`` and
``calendar.calendar_entries``, are only ever streamed or aggregated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from cdcsync.pipeline.errors import CdcsyncError
from cdcsync.pipeline.verification.expected_calendar import (
    Assignment,
    AttendanceWindow,
    CalendarRow,
    Course,
    Lecture,
    SourceState,
    entry_templates,
)
from cdcsync.sink.calendar_columns import RULE_COLUMNS, column_list

_STREAM_ROWS = 10_000


class CalendarMissing(CdcsyncError):
    """The read model does not exist yet: the sink has not run against this database."""


def snapshot_connection(url: str) -> psycopg.Connection[TupleRow]:
    conn = psycopg.connect(url, application_name="cdcsync-verify", connect_timeout=10)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


class SourceSnapshot:
    """One repeatable-read transaction per service database, open for the whole comparison."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self._stack = ExitStack()
        self.course = self._stack.enter_context(snapshot_connection(urls["course"]))
        self.attendance = self._stack.enter_context(snapshot_connection(urls["attendance"]))
        self.assignment = self._stack.enter_context(snapshot_connection(urls["assignment"]))

    def __enter__(self) -> SourceSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def templates(self) -> dict[int, list[CalendarRow]]:
        courses = tuple(Course(*r) for r in self.course.execute("SELECT id, title FROM public.courses"))
        lectures = tuple(
            Lecture(*r)
            for r in self.course.execute(
                "SELECT id, course_id, title, starts_at, ends_at, room, cancelled FROM public.lectures"
            )
        )
        windows = tuple(
            AttendanceWindow(*r)
            for r in self.attendance.execute(
                "SELECT id, lecture_id, opens_at, closes_at FROM public.attendance_windows"
            )
        )
        assignments = tuple(
            Assignment(*r)
            for r in self.assignment.execute(
                "SELECT id, course_id, title, description, max_score, opens_at, due_at, published"
                " FROM public.assignments"
            )
        )
        return entry_templates(SourceState(courses, lectures, (), windows, assignments))

    def attended_courses(self, users: tuple[int, int] | None = None) -> Iterator[tuple[int, list[int]]]:
        """(user, courses with an active enrollment), in user order; ``users`` is a [low, high) range."""
        query = sql.SQL(
            "SELECT user_id, course_id FROM public.enrollments WHERE status = 'active' {} ORDER BY user_id, course_id"
        ).format(_USER_RANGE if users is not None else sql.SQL(""))
        with self.course.cursor(name="cdcsync_verify_enrollments") as cur:
            cur.itersize = _STREAM_ROWS
            cur.execute(query, users or ())
            user: int | None = None
            courses: list[int] = []
            for user_id, course_id in cur:
                if user_id != user:
                    if user is not None:
                        yield user, courses
                    user, courses = user_id, []
                courses.append(course_id)
            if user is not None:
                yield user, courses


_USER_RANGE = sql.SQL("AND user_id >= %s AND user_id < %s")


def read_calendar(url: str, users: tuple[int, int] | None = None) -> dict[tuple[int, str], CalendarRow]:
    """The calendar rows (of users in the [low, high) range, if given)."""
    with snapshot_connection(url) as conn:
        query = sql.SQL("SELECT {} FROM calendar.calendar_entries WHERE true {}").format(
            column_list(RULE_COLUMNS), _USER_RANGE if users is not None else sql.SQL("")
        )
        try:
            rows = conn.execute(query, users or ())
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            raise CalendarMissing(
                "calendar.calendar_entries does not exist: start the sink (cdcsync sink run), which creates it"
            ) from None
        return {(r[0], r[1]): CalendarRow(*r) for r in rows}
