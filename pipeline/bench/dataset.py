"""The bench's source data: a regular shape sized by one number, written server-side in seconds.

Per course: 21 active enrollments, 8 lectures with one attendance window each, 4 published
assignments. That is 42 source rows and 21 x (8 + 8 + 4) = 420 calendar rows: the calendar holds
about ten rows per source row, so 1M source rows give about 10M calendar rows. Users are shared
between courses (each takes about ten), as in a real term.

Ids are derived from the course: lectures and windows ``(course - 1) * 8 + k``, assignments
``(course - 1) * 4 + k``, users ``user_of(course, slot)``. The load generator and the probe pick
rows by these formulas, never by reading the tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import LiteralString

import psycopg

USERS_PER_COURSE = 21
LECTURES_PER_COURSE = 8
ASSIGNMENTS_PER_COURSE = 4
SOURCE_ROWS_PER_COURSE = 1 + USERS_PER_COURSE + 2 * LECTURES_PER_COURSE + ASSIGNMENTS_PER_COURSE
CALENDAR_ROWS_PER_COURSE = USERS_PER_COURSE * (2 * LECTURES_PER_COURSE + ASSIGNMENTS_PER_COURSE)
_COURSES_PER_USER = 10


@dataclass(frozen=True)
class Shape:
    """How many of everything, from the number of courses."""

    courses: int

    @classmethod
    def for_source_rows(cls, source_rows: int) -> Shape:
        return cls(max(1, math.ceil(source_rows / SOURCE_ROWS_PER_COURSE)))

    @property
    def users(self) -> int:
        return max(2 * USERS_PER_COURSE, self.courses * USERS_PER_COURSE // _COURSES_PER_USER)

    @property
    def lectures(self) -> int:
        return self.courses * LECTURES_PER_COURSE

    @property
    def assignments(self) -> int:
        return self.courses * ASSIGNMENTS_PER_COURSE

    @property
    def source_rows(self) -> int:
        return self.courses * SOURCE_ROWS_PER_COURSE

    @property
    def calendar_rows(self) -> int:
        """The calendar's rows while every enrollment is active (the initial load)."""
        return self.courses * CALENDAR_ROWS_PER_COURSE

    def user_of(self, course: int, slot: int) -> int:
        """The user in enrollment ``slot`` (0..20) of ``course``: distinct slots give distinct users."""
        return 1 + (course * 7 + slot * (self.users // USERS_PER_COURSE)) % self.users


# Each statement takes the shape's numbers as parameters: %(courses)s, %(users)s, %(step)s.
_COURSE_DATA: tuple[LiteralString, ...] = (
    """INSERT INTO courses (id, title, description)
       SELECT c, 'Course ' || c, 'About course ' || c FROM generate_series(1, %(courses)s) AS c""",
    """INSERT INTO lectures (id, course_id, title, starts_at, ends_at, room)
       SELECT (c - 1) * 8 + k, c, 'Lecture ' || k || ' of course ' || c, t, t + interval '90 minutes', 'Room ' || k
       FROM generate_series(1, %(courses)s) AS c, generate_series(1, 8) AS k,
            LATERAL (SELECT timestamptz '2026-09-07 08:00+00' + (c %% 5) * interval '1 day'
                            + (k - 1) * interval '7 days' + (c %% 9) * interval '1 hour') AS s(t)""",
    """INSERT INTO enrollments (course_id, user_id, status)
       SELECT c, 1 + (c * 7 + j * %(step)s) %% %(users)s, 'active'
       FROM generate_series(1, %(courses)s) AS c, generate_series(0, 20) AS j""",
)
_ATTENDANCE_DATA: tuple[LiteralString, ...] = (
    """INSERT INTO attendance_windows (id, lecture_id, opens_at, closes_at)
       SELECT l, l, t, t + interval '15 minutes'
       FROM generate_series(1, %(courses)s * 8) AS l,
            LATERAL (SELECT timestamptz '2026-09-07 08:00+00' + (l %% 600) * interval '1 hour') AS s(t)""",
)
_ASSIGNMENT_DATA: tuple[LiteralString, ...] = (
    """INSERT INTO assignments (id, course_id, title, description, max_score, opens_at, due_at)
       SELECT (c - 1) * 4 + k, c, 'Assignment ' || k || ' of course ' || c, repeat('Read chapter ' || k || '. ', 8),
              10.5 * k, t, t + interval '14 days'
       FROM generate_series(1, %(courses)s) AS c, generate_series(1, 4) AS k,
            LATERAL (SELECT timestamptz '2026-09-07 00:00+00' + (k - 1) * interval '21 days') AS s(t)""",
)
DATA: Mapping[str, tuple[LiteralString, ...]] = {
    "course": _COURSE_DATA,
    "attendance": _ATTENDANCE_DATA,
    "assignment": _ASSIGNMENT_DATA,
}


def load(urls: Mapping[str, str], shape: Shape) -> None:
    """Fill the three (empty) service databases; one transaction each, then ANALYZE."""
    params = {"courses": shape.courses, "users": shape.users, "step": shape.users // USERS_PER_COURSE}
    for service, statements in DATA.items():
        with psycopg.connect(urls[service]) as conn:
            for statement in statements:
                conn.execute(statement, params)
        with psycopg.connect(urls[service], autocommit=True) as conn:
            conn.execute("ANALYZE")
