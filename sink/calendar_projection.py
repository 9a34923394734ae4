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


# Session temp tables, emptied at each commit.
SCOPE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS scope_courses (course_id bigint PRIMARY KEY) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS scope_enrollments (course_id bigint, user_id bigint,"
    " PRIMARY KEY (course_id, user_id)) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS scope_lectures (lecture_id bigint PRIMARY KEY) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS scope_windows (window_id bigint PRIMARY KEY) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS scope_assignments (assignment_id bigint PRIMARY KEY) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS scope_entry_keys (entry_key text PRIMARY KEY) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS desired_entries (LIKE calendar.calendar_entries) ON COMMIT DELETE ROWS",
    "CREATE UNIQUE INDEX IF NOT EXISTS desired_entries_key ON desired_entries (user_id, entry_key)",
)

# One SELECT per kind, the rules of the spec over live (not deleted) replica rows.
_LECTURE_ROWS = """
    SELECT e.user_id, 'lecture:' || l.id, 'lecture', c.id, c.title, l.title, l.starts_at, l.ends_at,
           l.room, NULL::text, NULL::numeric(6,2),
           GREATEST(c._committed_at, e._committed_at, l._committed_at)
    FROM cdcsync.lectures l
    JOIN cdcsync.courses c ON c.id = l.course_id AND NOT c._deleted
    JOIN cdcsync.enrollments e ON e.course_id = l.course_id AND NOT e._deleted AND e.status = 'active'
    WHERE NOT l._deleted AND NOT l.cancelled AND {scope}"""
_ATTENDANCE_ROWS = """
    SELECT e.user_id, 'attendance:' || w.id, 'attendance', c.id, c.title, l.title, w.opens_at, w.closes_at,
           l.room, NULL::text, NULL::numeric(6,2),
           GREATEST(c._committed_at, e._committed_at, l._committed_at, w._committed_at)
    FROM cdcsync.attendance_windows w
    JOIN cdcsync.lectures l ON l.id = w.lecture_id AND NOT l._deleted
    JOIN cdcsync.courses c ON c.id = l.course_id AND NOT c._deleted
    JOIN cdcsync.enrollments e ON e.course_id = l.course_id AND NOT e._deleted AND e.status = 'active'
    WHERE NOT w._deleted AND NOT l.cancelled AND {scope}"""
_ASSIGNMENT_ROWS = """
    SELECT e.user_id, 'assignment:' || a.id, 'assignment', c.id, c.title, a.title, a.opens_at, a.due_at,
           NULL::text, a.description, a.max_score,
           GREATEST(c._committed_at, e._committed_at, a._committed_at)
    FROM cdcsync.assignments a
    JOIN cdcsync.courses c ON c.id = a.course_id AND NOT c._deleted
    JOIN cdcsync.enrollments e ON e.course_id = a.course_id AND NOT e._deleted AND e.status = 'active'
    WHERE NOT a._deleted AND a.published AND {scope}"""

_BY_COURSE = sql.SQL("c.id IN (SELECT course_id FROM scope_courses)")
_BY_ENROLLMENT = sql.SQL("(e.course_id, e.user_id) IN (SELECT course_id, user_id FROM scope_enrollments)")

# Each block selects through one scope, so every one is an index-driven semi-join.
_DESIRED_BLOCKS = (
    (_LECTURE_ROWS, _BY_COURSE),
    (_LECTURE_ROWS, _BY_ENROLLMENT),
    (_LECTURE_ROWS, sql.SQL("l.id IN (SELECT lecture_id FROM scope_lectures)")),
    (_ATTENDANCE_ROWS, _BY_COURSE),
    (_ATTENDANCE_ROWS, _BY_ENROLLMENT),
    (_ATTENDANCE_ROWS, sql.SQL("w.id IN (SELECT window_id FROM scope_windows)")),
    (_ASSIGNMENT_ROWS, _BY_COURSE),
    (_ASSIGNMENT_ROWS, _BY_ENROLLMENT),
    (_ASSIGNMENT_ROWS, sql.SQL("a.id IN (SELECT assignment_id FROM scope_assignments)")),
)

# What the rule SELECTs above yield, in their order: the rule columns, then the source commit time.
_DERIVED = (*RULE_COLUMNS, SOURCE_COMMITTED_AT)
_FILL_DESIRED = sql.SQL(
    "INSERT INTO desired_entries ({columns}, {synced_at}) SELECT *, now() FROM ({rules}) AS rules"
).format(
    columns=column_list(_DERIVED),
    synced_at=SYNCED_AT.identifier,
    rules=sql.SQL(" UNION ").join(sql.SQL(rows).format(scope=scope) for rows, scope in _DESIRED_BLOCKS),
)

# Every calendar row has a course: all courses known to the replica or the calendar cover them all.
_ALL_COURSES = """
    INSERT INTO scope_courses (course_id)
    SELECT id FROM cdcsync.courses UNION SELECT course_id FROM calendar.calendar_entries
    ON CONFLICT DO NOTHING"""

_EXPAND_WINDOWS_OF_LECTURES = """
    INSERT INTO scope_windows (window_id)
    SELECT w.id FROM cdcsync.attendance_windows w
    WHERE w.lecture_id IN (SELECT lecture_id FROM scope_lectures) AND NOT w._deleted
    ON CONFLICT DO NOTHING"""

_FILL_ENTRY_KEYS = """
    INSERT INTO scope_entry_keys (entry_key)
    SELECT 'lecture:' || lecture_id FROM scope_lectures
    UNION ALL SELECT 'attendance:' || window_id FROM scope_windows
    UNION ALL SELECT 'assignment:' || assignment_id FROM scope_assignments"""

# Three deletes instead of one OR, so each uses its own index.
_DELETES = tuple(
    sql.SQL(
        "DELETE FROM calendar.calendar_entries ce USING {scope} s WHERE {match} AND NOT EXISTS"
        " (SELECT 1 FROM desired_entries d WHERE d.user_id = ce.user_id AND d.entry_key = ce.entry_key)"
    ).format(scope=sql.Identifier(scope), match=sql.SQL(match))
    for scope, match in (
        ("scope_courses", "ce.course_id = s.course_id"),
        ("scope_enrollments", "ce.course_id = s.course_id AND ce.user_id = s.user_id"),
        ("scope_entry_keys", "ce.entry_key = s.entry_key"),
    )
)

_UPDATED = tuple(column for column in CALENDAR_COLUMNS if column.name not in KEY_COLUMN_NAMES)
_COMPARED = tuple(column for column in _DERIVED if column.name not in KEY_COLUMN_NAMES)
# A row whose derived values are unchanged keeps its synced_at: nothing was written.
_UPSERT = sql.SQL("""
    INSERT INTO calendar.calendar_entries AS ce ({columns}, {synced_at})
    SELECT {columns}, (SELECT clock_timestamp()) FROM desired_entries
    ON CONFLICT ({key}) DO UPDATE SET {assignments}
    WHERE ({current}) IS DISTINCT FROM ({proposed})""").format(
    columns=column_list(_DERIVED),
    synced_at=SYNCED_AT.identifier,
    key=sql.SQL(", ").join(map(sql.Identifier, KEY_COLUMN_NAMES)),
    assignments=sql.SQL(", ").join(
        sql.SQL("{} = {}").format(c.identifier, sql.Identifier("excluded", c.name)) for c in _UPDATED
    ),
    current=column_list(_COMPARED, "ce"),
    proposed=column_list(_COMPARED, "excluded"),
)


@dataclass(frozen=True)
class CalendarDelta:
    upserted: int
    deleted: int


def _copy_ids(cur: Cursor[tuple[object, ...]], table: str, columns: tuple[str, ...], rows: frozenset[object]) -> None:
    if not rows:
        return
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row if isinstance(row, tuple) else (row,))


def recompute_calendar(cur: Cursor[tuple[object, ...]], scope: CalendarScope) -> CalendarDelta:
    """Make the calendar rows in ``scope`` equal to the rules on the replica. Runs in the caller's transaction."""
    if scope.is_empty:
        return CalendarDelta(0, 0)
    _copy_ids(cur, "scope_courses", ("course_id",), frozenset(scope.course_ids))
    if scope.everything:
        cur.execute(_ALL_COURSES)
    _copy_ids(cur, "scope_enrollments", ("course_id", "user_id"), frozenset(scope.enrollments))
    _copy_ids(cur, "scope_lectures", ("lecture_id",), frozenset(scope.lecture_ids))
    _copy_ids(cur, "scope_windows", ("window_id",), frozenset(scope.window_ids))
    _copy_ids(cur, "scope_assignments", ("assignment_id",), frozenset(scope.assignment_ids))
    cur.execute(_EXPAND_WINDOWS_OF_LECTURES)
    cur.execute(_FILL_ENTRY_KEYS)
    cur.execute(_FILL_DESIRED)
    deleted = 0
    for statement in _DELETES:
        cur.execute(statement)
        deleted += cur.rowcount
    cur.execute(_UPSERT)
    return CalendarDelta(upserted=cur.rowcount, deleted=deleted)
