"""Reads the sources' committed state and the calendar, each in one consistent snapshot."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg.rows import TupleRow

from pipeline.errors import CdcsyncError
from pipeline.verification.expected_calendar import (
    Assignment,
    AttendanceWindow,
    CalendarRow,
    Course,
    Enrollment,
    Lecture,
    SourceState,
)


def _snapshot(url: str) -> psycopg.Connection[TupleRow]:
    conn = psycopg.connect(url, application_name="cdcsync-verify")
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


def read_source_state(urls: Mapping[str, str]) -> SourceState:
    """The rows of the five source tables, read from the three service databases."""
    with _snapshot(urls["course"]) as conn:
        courses = tuple(Course(*r) for r in conn.execute("SELECT id, title FROM public.courses"))
        lectures = tuple(
            Lecture(*r)
            for r in conn.execute(
                "SELECT id, course_id, title, starts_at, ends_at, room, cancelled FROM public.lectures"
            )
        )
        enrollments = tuple(
            Enrollment(*r) for r in conn.execute("SELECT course_id, user_id, status FROM public.enrollments")
        )
    with _snapshot(urls["attendance"]) as conn:
        windows = tuple(
            AttendanceWindow(*r)
            for r in conn.execute("SELECT id, lecture_id, opens_at, closes_at FROM public.attendance_windows")
        )
    with _snapshot(urls["assignment"]) as conn:
        assignments = tuple(
            Assignment(*r)
            for r in conn.execute(
                "SELECT id, course_id, title, description, max_score, opens_at, due_at, published"
                " FROM public.assignments"
            )
        )
    return SourceState(courses, lectures, enrollments, windows, assignments)


class CalendarMissing(CdcsyncError):
    """The read model does not exist yet: the sink has not run against this database."""


def read_calendar(url: str) -> dict[tuple[int, str], CalendarRow]:
    with _snapshot(url) as conn:
        try:
            rows = conn.execute(
                "SELECT user_id, entry_key, kind, course_id, course_title, title, starts_at, ends_at,"
                " location, details, max_score FROM calendar.calendar_entries"
            )
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            raise CalendarMissing(
                "calendar.calendar_entries does not exist: start the sink (cdcsync sink run), which creates it"
            ) from None
        return {(r[0], r[1]): CalendarRow(*r) for r in rows}
