"""A large replica and calendar, generated server-side, for plan and apply-time checks.

``fill_replica`` writes live replica rows (``cdcsync`` schema) with ``generate_series``:
``courses`` courses, each with ``users`` active enrollments, ``lectures`` lectures of one
attendance window each, and ``assignments`` published assignments. The calendar then holds
``courses * users * (2 * lectures + assignments)`` rows once projected.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import Cursor

from cdcsync.sink.calendar_projection import CalendarScope, recompute_calendar


@dataclass(frozen=True)
class CalendarShape:
    courses: int
    users: int = 50
    lectures: int = 40
    assignments: int = 20

    @property
    def calendar_rows(self) -> int:
        return self.courses * self.users * (2 * self.lectures + self.assignments)

    @property
    def user_pool(self) -> int:
        return max(self.users * 4, 1000)


_POSITION = "false, 1, {change}, now() - interval '1 day'"


def fill_replica(cur: Cursor[tuple[object, ...]], shape: CalendarShape) -> None:
    """Live replica rows of ``shape``; ids are dense from 1 (lecture L has window L)."""
    params = {
        "courses": shape.courses,
        "users": shape.users,
        "lectures": shape.lectures,
        "assignments": shape.assignments,
        "pool": shape.user_pool,
    }
    cur.execute(
        "INSERT INTO cdcsync.courses SELECT c, 'course ' || c, "
        + _POSITION.format(change="c")
        + " FROM generate_series(1, %(courses)s::int) c",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.enrollments SELECT c, (c * 7 + u) %% %(pool)s::int, 'active', "
        + _POSITION.format(change="c * %(users)s::int + u")
        + " FROM generate_series(1, %(courses)s::int) c, generate_series(0, %(users)s::int - 1) u",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.lectures SELECT l, (l - 1) / %(lectures)s::int + 1, 'lecture ' || l,"
        " timestamptz '2026-01-05 09:00+00' + l * interval '1 hour',"
        " timestamptz '2026-01-05 10:00+00' + l * interval '1 hour', 'room ' || l %% 40, false, "
        + _POSITION.format(change="l")
        + " FROM generate_series(1, %(courses)s::int * %(lectures)s::int) l",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.attendance_windows SELECT l, l,"
        " timestamptz '2026-01-05 09:00+00' + l * interval '1 hour',"
        " timestamptz '2026-01-05 09:15+00' + l * interval '1 hour', "
        + _POSITION.format(change="l")
        + " FROM generate_series(1, %(courses)s::int * %(lectures)s::int) l",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.assignments SELECT a, (a - 1) / %(assignments)s::int + 1, 'assignment ' || a, NULL, 10.00,"
        " timestamptz '2026-01-05 09:00+00' + a * interval '1 day',"
        " timestamptz '2026-01-12 09:00+00' + a * interval '1 day', true, "
        + _POSITION.format(change="a")
        + " FROM generate_series(1, %(courses)s::int * %(assignments)s::int) a",
        params,
    )


def project_everything(cur: Cursor[tuple[object, ...]]) -> None:
    """The calendar of the whole replica, by the sink's own projection, then fresh statistics."""
    scope = CalendarScope(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), everything=True)
    recompute_calendar(cur, scope)
    cur.execute("ANALYZE")
