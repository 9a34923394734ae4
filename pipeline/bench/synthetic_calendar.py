"""A large replica and calendar generated server-side, and batches of the bench's change mix against it.

For the apply-scaling bench (``bench.apply_scaling``) and the engine tests' plan checks.

``fill_replica`` writes live replica rows (``cdcsync`` schema) with ``generate_series``:
``courses`` courses, each with ``users`` active enrollments, ``lectures`` lectures of one
attendance window each, and ``assignments`` published assignments. The calendar then holds
``courses * users * (2 * lectures + assignments)`` rows once projected.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from psycopg import Cursor

from cdcsync.sink.calendar_projection import CalendarScope, recompute_calendar
from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.change_event import ChangeEvent, MessageRef, Operation, SourceCommitPosition
from cdcsync.sink.source_tables import ASSIGNMENTS, ATTENDANCE_WINDOWS, ENROLLMENTS


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


def fill_replica(cur: Cursor[tuple[object, ...]], shape: CalendarShape) -> None:
    """Live replica rows of ``shape``, each at position (1, a number of its own), committed a day ago;
    ids are dense from 1 (lecture L has window L)."""
    params = {
        "courses": shape.courses,
        "users": shape.users,
        "lectures": shape.lectures,
        "assignments": shape.assignments,
        "pool": shape.user_pool,
    }
    cur.execute(
        "INSERT INTO cdcsync.courses SELECT c, 'course ' || c, "
        "false, 1, c, now() - interval '1 day'"
        " FROM generate_series(1, %(courses)s::int) c",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.enrollments SELECT c, (c * 7 + u) %% %(pool)s::int, 'active', "
        "false, 1, c * %(users)s::int + u, now() - interval '1 day'"
        " FROM generate_series(1, %(courses)s::int) c, generate_series(0, %(users)s::int - 1) u",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.lectures SELECT l, (l - 1) / %(lectures)s::int + 1, 'lecture ' || l,"
        " timestamptz '2026-01-05 09:00+00' + l * interval '1 hour',"
        " timestamptz '2026-01-05 10:00+00' + l * interval '1 hour', 'room ' || l %% 40, false, "
        "false, 1, l, now() - interval '1 day'"
        " FROM generate_series(1, %(courses)s::int * %(lectures)s::int) l",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.attendance_windows SELECT l, l,"
        " timestamptz '2026-01-05 09:00+00' + l * interval '1 hour',"
        " timestamptz '2026-01-05 09:15+00' + l * interval '1 hour', "
        "false, 1, l, now() - interval '1 day'"
        " FROM generate_series(1, %(courses)s::int * %(lectures)s::int) l",
        params,
    )
    cur.execute(
        "INSERT INTO cdcsync.assignments SELECT a, (a - 1) / %(assignments)s::int + 1, 'assignment ' || a, NULL, 10.00,"
        " timestamptz '2026-01-05 09:00+00' + a * interval '1 day',"
        " timestamptz '2026-01-12 09:00+00' + a * interval '1 day', true, "
        "false, 1, a, now() - interval '1 day'"
        " FROM generate_series(1, %(courses)s::int * %(assignments)s::int) a",
        params,
    )


def project_everything(cur: Cursor[tuple[object, ...]], shape: CalendarShape, courses_per_step: int = 2_000) -> None:
    """The calendar of the whole replica by the sink's own projection, a slice of courses at a time, then
    fresh statistics."""
    for first in range(1, shape.courses + 1, courses_per_step):
        courses = frozenset(range(first, min(first + courses_per_step, shape.courses + 1)))
        recompute_calendar(cur, CalendarScope(courses, frozenset(), frozenset(), frozenset(), frozenset()))
    cur.execute("ANALYZE")


_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def mixed_batch(shape: CalendarShape, rng: random.Random, size: int, first_lsn: int) -> ChangeBatch:
    """``size`` changes of the mix, at commit positions from ``first_lsn`` on (one per change)."""
    batch = ChangeBatch()
    now = datetime.now(UTC)
    for n in range(size):
        position = SourceCommitPosition(first_lsn + n, first_lsn + n)
        draw = rng.random()
        if draw < 0.6:
            course = rng.randint(1, shape.courses)
            user = (course * 7 + rng.randrange(shape.users)) % shape.user_pool
            event = ChangeEvent(
                ENROLLMENTS,
                Operation.UPSERT,
                (course, user),
                {"status": rng.choice(("active", "dropped"))},
                frozenset(),
                position,
                now,
            )
        elif draw < 0.8:
            window = rng.randint(1, shape.courses * shape.lectures)
            opens = _START + timedelta(hours=window, minutes=rng.randrange(30))
            event = ChangeEvent(
                ATTENDANCE_WINDOWS,
                Operation.UPSERT,
                (window,),
                {"lecture_id": window, "opens_at": opens, "closes_at": opens + timedelta(minutes=15)},
                frozenset(),
                position,
                now,
            )
        else:
            assignment = rng.randint(1, shape.courses * shape.assignments)
            event = ChangeEvent(
                ASSIGNMENTS,
                Operation.UPSERT,
                (assignment,),
                {
                    "course_id": (assignment - 1) // shape.assignments + 1,
                    "title": f"assignment {assignment} v{first_lsn + n}",
                    "description": None,
                    "max_score": Decimal("10.00"),
                    "opens_at": _START + timedelta(days=assignment),
                    "due_at": _START + timedelta(days=assignment + 7),
                    "published": True,
                },
                frozenset(),
                position,
                now,
            )
        batch.add(MessageRef(event.table.default_topic(), 0, first_lsn + n), event)
    return batch
