"""The spec's calendar rules, and the calendar rows a batch of changes can affect.

``CalendarScope.from_changes`` is pure: it names the source rows a batch
changed. ``recompute_calendar`` then evaluates the rules, set-based, on the
replica for exactly the calendar rows in that scope, and makes
``calendar.calendar_entries`` equal to the result there:

- a changed course: every entry of that course, for every user;
- a changed enrollment (C, U): user U's entries of course C;
- a changed lecture L: entry ``lecture:L`` and ``attendance:W`` of every window
  of L, for every user;
- a changed window W or assignment A: that entry, for every user.

Because a calendar row depends only on its window/lecture/assignment, that
item's course and lecture, the course and the user's enrollment, these scopes
cover every row whose value or existence a batch can change, whatever order
changes from different services arrive in.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from psycopg import Cursor, sql

from cdcsync.sink.calendar_columns import (
    CALENDAR_COLUMNS,
    KEY_COLUMN_NAMES,
    RULE_COLUMNS,
    SOURCE_COMMITTED_AT,
    SYNCED_AT,
    column_list,
)
from cdcsync.sink.change_event import ChangeEvent
from cdcsync.sink.source_tables import ASSIGNMENTS, ATTENDANCE_WINDOWS, COURSES, ENROLLMENTS, LECTURES, SourceTable


@dataclass(frozen=True)
class CalendarScope:
    course_ids: frozenset[int]
    enrollments: frozenset[tuple[int, int]]  # (course_id, user_id)
    lecture_ids: frozenset[int]
    window_ids: frozenset[int]
    assignment_ids: frozenset[int]
    everything: bool = False  # a source table was truncated: recompute every calendar row

    @classmethod
    def from_changes(
        cls, changes: Mapping[SourceTable, Sequence[ChangeEvent]], truncated: bool = False
    ) -> CalendarScope:
        def ids(table: SourceTable) -> frozenset[int]:
            return frozenset(e.key[0] for e in changes.get(table, ()))

        return cls(
            course_ids=ids(COURSES),
            enrollments=frozenset((e.key[0], e.key[1]) for e in changes.get(ENROLLMENTS, ())),
            lecture_ids=ids(LECTURES),
            window_ids=ids(ATTENDANCE_WINDOWS),
            assignment_ids=ids(ASSIGNMENTS),
            everything=truncated,
        )

    @property
    def is_empty(self) -> bool:
        return not (
            self.everything
            or self.course_ids
            or self.enrollments
            or self.lecture_ids
            or self.window_ids
            or self.assignment_ids
        )


# One SELECT per kind, the rules of the spec over live (not deleted) replica rows.
_LECTURE_ROWS = """
    SELECT e.user_id, 'lecture:' || l.id, 'lecture', c.id, c.title, l.title, l.starts_at, l.ends_at,
           l.room, NULL::text, NULL::numeric(6,2),
           GREATEST(c._committed_at, e._committed_at, l._committed_at)
    FROM cdcsync.lectures l
    JOIN cdcsync.courses c ON c.id = l.course_id AND NOT c._deleted
    JOIN {enrollments} e ON e.course_id = l.course_id AND NOT e._deleted AND e.status = 'active'
    WHERE NOT l._deleted AND NOT l.cancelled AND {scope}"""
_ATTENDANCE_ROWS = """
    SELECT e.user_id, 'attendance:' || w.id, 'attendance', c.id, c.title, l.title, w.opens_at, w.closes_at,
           l.room, NULL::text, NULL::numeric(6,2),
           GREATEST(c._committed_at, e._committed_at, l._committed_at, w._committed_at)
    FROM cdcsync.attendance_windows w
    JOIN cdcsync.lectures l ON l.id = w.lecture_id AND NOT l._deleted
    JOIN cdcsync.courses c ON c.id = l.course_id AND NOT c._deleted
    JOIN {enrollments} e ON e.course_id = l.course_id AND NOT e._deleted AND e.status = 'active'
    WHERE NOT w._deleted AND NOT l.cancelled AND {scope}"""
_ASSIGNMENT_ROWS = """
    SELECT e.user_id, 'assignment:' || a.id, 'assignment', c.id, c.title, a.title, a.opens_at, a.due_at,
           NULL::text, a.description, a.max_score,
           GREATEST(c._committed_at, e._committed_at, a._committed_at)
    FROM cdcsync.assignments a
    JOIN cdcsync.courses c ON c.id = a.course_id AND NOT c._deleted
    JOIN {enrollments} e ON e.course_id = a.course_id AND NOT e._deleted AND e.status = 'active'
    WHERE NOT a._deleted AND a.published AND {scope}"""

_BY_COURSE = sql.SQL("c.id = ANY(%(courses)s::bigint[])")
_ENROLLMENT_KEYS = "SELECT * FROM unnest(%(enrolled_courses)s::bigint[], %(enrolled_users)s::bigint[])"
# The batch's enrollments, read by primary key first. Left to join them itself, the planner
# reaches them through the course and misjudges how many rows follow, then scans whole
# replica tables instead of probing their indexes.
_ENROLLED = sql.SQL(
    "enrolled AS MATERIALIZED (SELECT e.* FROM unnest(%(enrolled_courses)s::bigint[], %(enrolled_users)s::bigint[])"
    " AS k (course_id, user_id) JOIN cdcsync.enrollments e USING (course_id, user_id)),\n"
)
_REPLICA_ENROLLMENTS = sql.SQL("cdcsync.enrollments")

# One block per kind and scope, each an index-driven semi-join from its scope's keys (the
# enrollment scope's blocks start from ``enrolled``); a block whose scope the batch leaves
# empty is left out of the statement.
_DESIRED_BLOCKS = (
    ("courses", _LECTURE_ROWS, _BY_COURSE),
    ("enrollments", _LECTURE_ROWS, None),
    ("lectures", _LECTURE_ROWS, sql.SQL("l.id = ANY(%(lectures)s::bigint[])")),
    ("courses", _ATTENDANCE_ROWS, _BY_COURSE),
    ("enrollments", _ATTENDANCE_ROWS, None),
    ("windows", _ATTENDANCE_ROWS, sql.SQL("w.id = ANY(%(windows)s::bigint[])")),
    ("courses", _ASSIGNMENT_ROWS, _BY_COURSE),
    ("enrollments", _ASSIGNMENT_ROWS, None),
    ("assignments", _ASSIGNMENT_ROWS, sql.SQL("a.id = ANY(%(assignments)s::bigint[])")),
)


def _block(rows: str, scope: sql.Composable | None) -> sql.Composed:
    if scope is None:
        return sql.SQL(rows).format(enrollments=sql.Identifier("enrolled"), scope=sql.SQL("true"))
    return sql.SQL(rows).format(enrollments=_REPLICA_ENROLLMENTS, scope=scope)


# What the rule SELECTs above yield, in their order: the rule columns, then the source commit time.
_DERIVED = (*RULE_COLUMNS, SOURCE_COMMITTED_AT)


# Every calendar row has a course: all courses known to the replica or the calendar cover them all.
_ALL_COURSES = "SELECT id FROM cdcsync.courses UNION SELECT DISTINCT course_id FROM calendar.calendar_entries"

# The lectures' windows: their attendance entries show the lecture's values.
_WINDOWS_OF_LECTURES = (
    "SELECT id FROM cdcsync.attendance_windows WHERE lecture_id = ANY(%(lectures)s::bigint[]) AND NOT _deleted"
)

# The calendar rows of a scope, one condition per scope so that each uses its own index.
_SCOPE_MATCHES = (
    ("courses", "ce.course_id = ANY(%(courses)s::bigint[])"),
    ("enrollments", f"(ce.course_id, ce.user_id) IN ({_ENROLLMENT_KEYS})"),
    ("entry_keys", "ce.entry_key = ANY(%(entry_keys)s::text[])"),
)

_UPDATED = tuple(column for column in CALENDAR_COLUMNS if column.name not in KEY_COLUMN_NAMES)
_COMPARED = tuple(column for column in _DERIVED if column.name not in KEY_COLUMN_NAMES)


@functools.cache
def _recompute_statement(scopes: frozenset[str]) -> sql.Composed:
    """The recompute of the given (non-empty) scopes, one statement: the rules' rows there, evaluated once, then

    - each scope's delete of the calendar rows the rules no longer give (its blocks only when present);
    - the upsert of the rules' rows; a row whose derived values are unchanged keeps its ``synced_at``:
      nothing was written.

    The deletes and the upsert touch disjoint rows (those not desired, those desired), so they run
    as data-modifying CTEs of one statement: no temp table to fill, one round trip. Yields
    (rows upserted, rows deleted).
    """
    deletes = [(name, match) for name, match in _SCOPE_MATCHES if name in scopes]
    return sql.SQL("""
        WITH {enrolled}desired ({derived}) AS MATERIALIZED ({rules}),
        {deletes}
        upserted AS (
            INSERT INTO calendar.calendar_entries AS ce ({derived}, {synced_at})
            SELECT {derived}, (SELECT clock_timestamp()) FROM desired
            ON CONFLICT ({key}) DO UPDATE SET {assignments}
            WHERE ({current}) IS DISTINCT FROM ({proposed})
            RETURNING 1)
        SELECT (SELECT count(*) FROM upserted), {deleted}""").format(
        enrolled=_ENROLLED if "enrollments" in scopes else sql.SQL(""),
        derived=column_list(_DERIVED),
        rules=sql.SQL(" UNION ").join(_block(rows, scope) for name, rows, scope in _DESIRED_BLOCKS if name in scopes),
        deletes=sql.SQL("").join(
            sql.SQL(
                "{name} AS (DELETE FROM calendar.calendar_entries ce WHERE {match} AND NOT EXISTS"
                " (SELECT 1 FROM desired d WHERE d.user_id = ce.user_id AND d.entry_key = ce.entry_key)"
                " RETURNING 1),\n"
            ).format(name=sql.Identifier(f"deleted_{name}"), match=sql.SQL(match))
            for name, match in deletes
        ),
        synced_at=SYNCED_AT.identifier,
        key=sql.SQL(", ").join(map(sql.Identifier, KEY_COLUMN_NAMES)),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(c.identifier, sql.Identifier("excluded", c.name)) for c in _UPDATED
        ),
        current=column_list(_COMPARED, "ce"),
        proposed=column_list(_COMPARED, "excluded"),
        deleted=sql.SQL(" + ").join(
            sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(f"deleted_{name}")) for name, _ in deletes
        )
        if deletes
        else sql.SQL("0"),
    )


@dataclass(frozen=True)
class CalendarDelta:
    upserted: int
    deleted: int


_SCOPES = ("courses", "lectures", "windows", "assignments", "entry_keys")


def _scope_parameters(cur: Cursor[tuple[object, ...]], scope: CalendarScope) -> dict[str, list[int] | list[str]]:
    """The scope's keys as the statements' array parameters."""
    courses = set(scope.course_ids)
    if scope.everything:
        cur.execute(_ALL_COURSES)
        courses.update(int(str(row[0])) for row in cur.fetchall())
    windows = set(scope.window_ids)
    if scope.lecture_ids:
        cur.execute(_WINDOWS_OF_LECTURES, {"lectures": sorted(scope.lecture_ids)})
        windows.update(int(str(row[0])) for row in cur.fetchall())
    enrollments = sorted(scope.enrollments)
    return {
        "courses": sorted(courses),
        "enrolled_courses": [course for course, _ in enrollments],
        "enrolled_users": [user for _, user in enrollments],
        "lectures": sorted(scope.lecture_ids),
        "windows": sorted(windows),
        "assignments": sorted(scope.assignment_ids),
        "entry_keys": [
            *(f"lecture:{i}" for i in sorted(scope.lecture_ids)),
            *(f"attendance:{i}" for i in sorted(windows)),
            *(f"assignment:{i}" for i in sorted(scope.assignment_ids)),
        ],
    }


def recompute_calendar(cur: Cursor[tuple[object, ...]], scope: CalendarScope) -> CalendarDelta:
    """Make the calendar rows in ``scope`` equal to the rules on the replica. Runs in the caller's transaction."""
    if scope.is_empty:
        return CalendarDelta(0, 0)
    parameters = _scope_parameters(cur, scope)
    present = frozenset(name for name in _SCOPES if parameters[name]) | (
        {"enrollments"} if scope.enrollments else frozenset()
    )
    if not present:  # a truncate, and no course anywhere: no calendar row to compute
        return CalendarDelta(0, 0)
    cur.execute(_recompute_statement(present), parameters)
    upserted, deleted = cur.fetchone() or (0, 0)
    return CalendarDelta(upserted=int(str(upserted)), deleted=int(str(deleted)))
