"""Realistic changes to the three service databases, one at a time, for demos and soak tests.

``ChangeWorkload.apply_next`` picks a weighted random action, applies it to the owning service's
database in its own transaction and returns what it did. Actions and rows are chosen with the
given ``random.Random`` from rows read in key order, so one seed on one starting state gives one
sequence of changes. Inside the course database the foreign keys hold (a course is deleted
together with its lectures and enrollments, in one transaction); ids across services are plain
ids and may dangle, as between real services. Connections are opened on first use; ``close`` them.
With a ``rollback_rate``, that share of the transactions makes its changes and then rolls back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from cdcsync.pipeline.sources.demo_data import (
    FIRST_USER_ID,
    TERM_START,
    USER_COUNT,
    course_title,
    description,
    lecture_title,
    max_score,
    microseconds,
    room,
)
from cdcsync.pipeline.sources.setup import SERVICE_TABLES

Row = tuple[Any, ...]
Connection = psycopg.Connection[TupleRow]
_NEW_USERS = 50  # enrollments may bring users the demo data does not have
_EXCEPTIONAL_RATE = 0.2
_COURSES: LiteralString = "SELECT id FROM courses ORDER BY id"
_LECTURES: LiteralString = "SELECT id FROM lectures ORDER BY id"
_ENROLLMENTS: LiteralString = "SELECT course_id, user_id FROM enrollments ORDER BY 1, 2"
_WINDOWS: LiteralString = "SELECT id FROM attendance_windows ORDER BY id"
_ASSIGNMENTS: LiteralString = "SELECT id FROM assignments ORDER BY id"


@dataclass(frozen=True)
class AppliedChange:
    """What one ``apply_next`` did in one transaction of one service: committed, unless ``rolled_back``."""

    service: str
    action: str
    detail: str
    rolled_back: bool = False

    def __str__(self) -> str:
        return f"{self.service}: {self.action} ({self.detail}){', rolled back' if self.rolled_back else ''}"


class ChangeWorkload:
    """Applies one realistic committed change per call. Not thread-safe."""

    def __init__(self, urls: Mapping[str, str], rng: random.Random, rollback_rate: float = 0.0) -> None:
        missing = sorted(set(SERVICE_TABLES) - set(urls))
        if missing:
            raise ValueError(f"no URL for service(s) {', '.join(missing)}")
        self._urls = dict(urls)
        self._rng = rng
        self._rollback_rate = rollback_rate
        self._rolled_back = False
        self._connections: dict[str, Connection] = {}
        actions: tuple[tuple[Callable[[], AppliedChange | None], float], ...] = (
            (self._rename_course, 3), (self._edit_course_description, 1), (self._reschedule_lecture, 8),
            (self._cancel_or_uncancel_lecture, 6), (self._change_room, 4),
            (self._move_lecture, 2), (self._add_lecture, 3), (self._delete_lecture, 2),
            (self._postpone_course, 1), (self._open_course, 0.4), (self._close_course, 0.3),
            (self._enroll, 6), (self._drop_or_reactivate_enrollment, 7), (self._delete_enrollment, 1),
            (self._transfer_enrollment, 1), (self._change_window, 6), (self._move_window, 2),
            (self._add_window, 3), (self._delete_window, 2), (self._extend_lecture_windows, 1),
            (self._publish_or_unpublish, 5), (self._change_due, 5), (self._edit_assignment_description, 3),
            (self._change_max_score, 2), (self._add_assignment, 3), (self._delete_assignment, 2),
            (self._shift_course_deadlines, 1),
        )  # fmt: skip
        self._actions = [action for action, _ in actions]
        self._weights = [weight for _, weight in actions]

    def apply_next(self) -> AppliedChange:
        """Apply and commit (or roll back) one change; actions that find nothing to change are redrawn."""
        for _ in range(100):
            self._rolled_back = False
            change = self._rng.choices(self._actions, self._weights)[0]()
            if change is not None:
                return replace(change, rolled_back=self._rolled_back)
        self._rolled_back = False
        change = self._open_course()  # always applicable
        return replace(change, rolled_back=self._rolled_back)

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    def __enter__(self) -> ChangeWorkload:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------------

    def _conn(self, service: str) -> Connection:
        conn = self._connections.get(service)
        if conn is None or conn.closed:
            conn = psycopg.connect(self._urls[service], autocommit=True, application_name="cdcsync-workload")
            self._connections[service] = conn
        return conn

    @contextmanager
    def _transaction(self, service: str) -> Iterator[Connection]:
        conn = self._conn(service)
        try:
            with conn.transaction() as transaction:
                yield conn
                if self._rollback_rate and self._rng.random() < self._rollback_rate:
                    self._rolled_back = True
                    raise psycopg.Rollback(transaction)
        except psycopg.Rollback:
            # The transaction swallows its own Rollback once the ROLLBACK ran; it escapes only when the
            # connection broke first, and the server has then discarded the transaction with the session.
            raise psycopg.OperationalError(f"{service}: the connection was lost before the rollback") from None

    def _pick(self, conn: Connection, query: LiteralString, params: tuple[Any, ...] = ()) -> Row | None:
        """One row chosen from ``query``, which must order its rows."""
        rows = conn.execute(query, params).fetchall()
        return self._rng.choice(rows) if rows else None

    def _pick_lecture(self) -> Row | None:
        """(id, starts_at) of a lecture, read from the course service as the attendance service would."""
        return self._pick(self._conn("course"), "SELECT id, starts_at FROM lectures ORDER BY id")

    def _shift(self, days: int) -> timedelta:
        return timedelta(minutes=self._rng.randrange(-days * 1440, days * 1440 + 1, 15)) + microseconds(self._rng)

    def _term_time(self) -> datetime:
        rng = self._rng
        return TERM_START + timedelta(days=rng.randrange(90), hours=rng.randrange(10)) + microseconds(rng)

    def _next_id(self, conn: Connection, table: str) -> int:
        row = conn.execute(sql.SQL("SELECT coalesce(max(id), 0) + 1 FROM {}").format(sql.Identifier(table))).fetchone()
        return int(row[0]) if row is not None else 1

    def _change_picked(
        self,
        service: str,
        action: str,
        pick: LiteralString,
        change: LiteralString,
        values: tuple[Any, ...] = (),
        *,
        pick_params: tuple[Any, ...] = (),
        detail: str = "{0}",
    ) -> AppliedChange | None:
        """In one transaction, choose a row of ``pick`` and run ``change`` with ``values`` followed by
        that row's columns. ``detail`` is formatted with the row. None when ``pick`` finds no row."""
        with self._transaction(service) as conn:
            if (row := self._pick(conn, pick, pick_params)) is None:
                return None
            conn.execute(change, (*values, *row))
        return AppliedChange(service, action, detail.format(*row))

    def _flip(
        self, service: str, pick: LiteralString, change: LiteralString, actions: tuple[str, str], detail: str
    ) -> AppliedChange | None:
        """Pick a row (key columns..., exceptional) and flip its exceptional state (cancelled, unpublished,
        dropped): always back to normal, but into it only at ``_EXCEPTIONAL_RATE``, so that about one
        row in six stays exceptional however long the workload runs. ``actions`` names (to normal, to
        exceptional); ``change`` takes the new state, then the key."""
        with self._transaction(service) as conn:
            if (row := self._pick(conn, pick)) is None:
                return None
            *key, exceptional = row
            if not exceptional and self._rng.random() >= _EXCEPTIONAL_RATE:
                return None
            conn.execute(change, (not exceptional, *key))
        return AppliedChange(service, actions[not exceptional], detail.format(*key))

    # -- course service -------------------------------------------------------------------------------

    def _rename_course(self) -> AppliedChange | None:
        title = course_title(self._rng)
        change: LiteralString = "UPDATE courses SET title = %s, updated_at = now() WHERE id = %s"
        return self._change_picked("course", "rename course", _COURSES, change, (title,), detail="course {0}")

    def _edit_course_description(self) -> AppliedChange | None:
        text = description(self._rng, large=False)
        change: LiteralString = "UPDATE courses SET description = %s, updated_at = now() WHERE id = %s"
        return self._change_picked("course", "edit course description", _COURSES, change, (text,), detail="course {0}")

    def _reschedule_lecture(self) -> AppliedChange | None:
        shift, longer = self._shift(3), timedelta(minutes=self._rng.choice((0, 0, 15, -15)))
        change: LiteralString = (
            "UPDATE lectures SET starts_at = starts_at + %s, ends_at = ends_at + %s, updated_at = now() WHERE id = %s"
        )
        values = (shift, shift + longer)
        return self._change_picked("course", "reschedule lecture", _LECTURES, change, values, detail="lecture {0}")

    def _cancel_or_uncancel_lecture(self) -> AppliedChange | None:
        pick: LiteralString = "SELECT id, cancelled FROM lectures ORDER BY id"
        change: LiteralString = "UPDATE lectures SET cancelled = %s, updated_at = now() WHERE id = %s"
        return self._flip("course", pick, change, ("uncancel lecture", "cancel lecture"), "lecture {0}")

    def _change_room(self) -> AppliedChange | None:
        change: LiteralString = "UPDATE lectures SET room = %s, updated_at = now() WHERE id = %s"
        return self._change_picked("course", "change room", _LECTURES, change, (room(self._rng),), detail="lecture {0}")

    def _move_lecture(self) -> AppliedChange | None:
        with self._transaction("course") as conn:
            if (lecture := self._pick(conn, "SELECT id, course_id FROM lectures ORDER BY id")) is None:
                return None
            if (course := self._pick(conn, "SELECT id FROM courses WHERE id <> %s ORDER BY id", lecture[1:])) is None:
                return None
            conn.execute("UPDATE lectures SET course_id = %s, updated_at = now() WHERE id = %s", (*course, lecture[0]))
        return AppliedChange("course", "move lecture", f"lecture {lecture[0]} to course {course[0]}")

    def _insert_lecture(self, conn: Connection, course_id: int) -> int:
        lecture_id, starts, rng = self._next_id(conn, "lectures"), self._term_time(), self._rng
        ends = starts + timedelta(minutes=90) + microseconds(rng)
        conn.execute(
            "INSERT INTO lectures (id, course_id, title, starts_at, ends_at, room) VALUES (%s, %s, %s, %s, %s, %s)",
            (lecture_id, course_id, lecture_title(rng, rng.randint(1, 14)), starts, ends, room(rng)),
        )
        return lecture_id

    def _add_lecture(self) -> AppliedChange | None:
        with self._transaction("course") as conn:
            if (course := self._pick(conn, _COURSES)) is None:
                return None
            lecture_id = self._insert_lecture(conn, course[0])
        return AppliedChange("course", "add lecture", f"lecture {lecture_id} in course {course[0]}")

    def _delete_lecture(self) -> AppliedChange | None:
        change: LiteralString = "DELETE FROM lectures WHERE id = %s"
        return self._change_picked("course", "delete lecture", _LECTURES, change, detail="lecture {0}")

    def _postpone_course(self) -> AppliedChange | None:
        """Several rows in one transaction."""
        pick: LiteralString = "SELECT DISTINCT course_id FROM lectures ORDER BY 1"
        change: LiteralString = (
            "UPDATE lectures SET starts_at = starts_at + interval '7 days', ends_at = ends_at + interval '7 days',"
            " updated_at = now() WHERE course_id = %s"
        )
        return self._change_picked("course", "postpone a course's lectures", pick, change, detail="course {0}")

    def _open_course(self) -> AppliedChange:
        """A course with lectures and enrollments, in one transaction."""
        with self._transaction("course") as conn:
            course_id = self._next_id(conn, "courses")
            conn.execute("INSERT INTO courses (id, title) VALUES (%s, %s)", (course_id, course_title(self._rng)))
            for _ in range(self._rng.randint(2, 5)):
                self._insert_lecture(conn, course_id)
            users = self._rng.sample(range(FIRST_USER_ID, FIRST_USER_ID + USER_COUNT), self._rng.randint(3, 12))
            conn.cursor().executemany(
                "INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')",
                [(course_id, user) for user in sorted(users)],
            )
        return AppliedChange("course", "open course", f"course {course_id} with lectures and {len(users)} enrollments")

    def _close_course(self) -> AppliedChange | None:
        """The course's lectures and enrollments go in the same transaction, as the foreign keys demand."""
        with self._transaction("course") as conn:
            if (course := self._pick(conn, _COURSES)) is None:
                return None
            conn.execute("DELETE FROM enrollments WHERE course_id = %s", course)
            conn.execute("DELETE FROM lectures WHERE course_id = %s", course)
            conn.execute("DELETE FROM courses WHERE id = %s", course)
        return AppliedChange("course", "close course", f"course {course[0]} with its lectures and enrollments")

    def _enroll(self) -> AppliedChange | None:
        with self._transaction("course") as conn:
            if (course := self._pick(conn, _COURSES)) is None:
                return None
            enrolled = {u for (u,) in conn.execute("SELECT user_id FROM enrollments WHERE course_id = %s", course)}
            users = [u for u in range(FIRST_USER_ID, FIRST_USER_ID + USER_COUNT + _NEW_USERS) if u not in enrolled]
            if not users:
                return None
            user = self._rng.choice(users)
            conn.execute(
                "INSERT INTO enrollments (course_id, user_id, status) VALUES (%s, %s, 'active')", (*course, user)
            )
        return AppliedChange("course", "enroll", f"user {user} in course {course[0]}")

    def _drop_or_reactivate_enrollment(self) -> AppliedChange | None:
        pick: LiteralString = "SELECT course_id, user_id, status = 'dropped' FROM enrollments ORDER BY 1, 2"
        change: LiteralString = (
            "UPDATE enrollments SET status = CASE WHEN %s THEN 'dropped' ELSE 'active' END, updated_at = now()"
            " WHERE course_id = %s AND user_id = %s"
        )
        actions = ("reactivate enrollment", "drop enrollment")
        return self._flip("course", pick, change, actions, "user {1} in course {0}")

    def _delete_enrollment(self) -> AppliedChange | None:
        change: LiteralString = "DELETE FROM enrollments WHERE course_id = %s AND user_id = %s"
        detail = "user {1} in course {0}"
        return self._change_picked("course", "delete enrollment", _ENROLLMENTS, change, detail=detail)

    def _transfer_enrollment(self) -> AppliedChange | None:
        """A primary-key update: the enrollment moves to a course the user is not in."""
        with self._transaction("course") as conn:
            if (enrollment := self._pick(conn, _ENROLLMENTS)) is None:
                return None
            query: LiteralString = (
                "SELECT id FROM courses c WHERE NOT EXISTS"
                " (SELECT 1 FROM enrollments e WHERE e.course_id = c.id AND e.user_id = %s) ORDER BY id"
            )
            if (course := self._pick(conn, query, enrollment[1:])) is None:
                return None
            conn.execute(
                "UPDATE enrollments SET course_id = %s, updated_at = now() WHERE course_id = %s AND user_id = %s",
                (*course, *enrollment),
            )
        return AppliedChange("course", "transfer enrollment", f"user {enrollment[1]}: {enrollment[0]} -> {course[0]}")

    # -- attendance service ---------------------------------------------------------------------------

    def _change_window(self) -> AppliedChange | None:
        opens = timedelta(minutes=self._rng.randint(-10, 10)) + microseconds(self._rng)
        closes = opens + timedelta(minutes=self._rng.randint(0, 20))
        change: LiteralString = (
            "UPDATE attendance_windows SET opens_at = opens_at + %s, closes_at = closes_at + %s, updated_at = now()"
            " WHERE id = %s"
        )
        return self._change_picked(
            "attendance", "change window", _WINDOWS, change, (opens, closes), detail="window {0}"
        )

    def _move_window(self) -> AppliedChange | None:
        if (lecture := self._pick_lecture()) is None:
            return None
        change: LiteralString = (
            "UPDATE attendance_windows SET lecture_id = %s, opens_at = %s, closes_at = %s + interval '20 minutes',"
            " updated_at = now() WHERE id = %s"
        )
        values, detail = (lecture[0], lecture[1], lecture[1]), f"window {{0}} to lecture {lecture[0]}"
        return self._change_picked("attendance", "move window", _WINDOWS, change, values, detail=detail)

    def _add_window(self) -> AppliedChange | None:
        if (lecture := self._pick_lecture()) is None:
            return None
        with self._transaction("attendance") as conn:
            window_id = self._next_id(conn, "attendance_windows")
            opens = lecture[1] - timedelta(minutes=5) + microseconds(self._rng)
            conn.execute(
                "INSERT INTO attendance_windows (id, lecture_id, opens_at, closes_at) VALUES (%s, %s, %s, %s)",
                (window_id, lecture[0], opens, opens + timedelta(minutes=30)),
            )
        return AppliedChange("attendance", "add window", f"window {window_id} for lecture {lecture[0]}")

    def _delete_window(self) -> AppliedChange | None:
        change: LiteralString = "DELETE FROM attendance_windows WHERE id = %s"
        return self._change_picked("attendance", "delete window", _WINDOWS, change, detail="window {0}")

    def _extend_lecture_windows(self) -> AppliedChange | None:
        """Several rows in one transaction."""
        pick: LiteralString = "SELECT DISTINCT lecture_id FROM attendance_windows ORDER BY 1"
        change: LiteralString = (
            "UPDATE attendance_windows SET closes_at = closes_at + interval '10 minutes', updated_at = now()"
            " WHERE lecture_id = %s"
        )
        return self._change_picked("attendance", "extend a lecture's windows", pick, change, detail="lecture {0}")

    # -- assignment service ---------------------------------------------------------------------------

    def _publish_or_unpublish(self) -> AppliedChange | None:
        pick: LiteralString = "SELECT id, NOT published FROM assignments ORDER BY id"
        change: LiteralString = "UPDATE assignments SET published = NOT %s, updated_at = now() WHERE id = %s"
        return self._flip("assignment", pick, change, ("publish", "unpublish"), "id {0}")

    def _change_due(self) -> AppliedChange | None:
        """Leaves a large description untouched: Debezium sends its placeholder instead of the text."""
        shift = self._shift(4)
        change: LiteralString = (
            "UPDATE assignments SET due_at = greatest(due_at + %s, opens_at + interval '1 hour'), updated_at = now()"
            " WHERE id = %s"
        )
        return self._change_picked("assignment", "change due date", _ASSIGNMENTS, change, (shift,), detail="id {0}")

    def _edit_assignment_description(self) -> AppliedChange | None:
        text = None if self._rng.random() < 0.05 else description(self._rng, large=self._rng.random() < 0.3)
        change: LiteralString = "UPDATE assignments SET description = %s, updated_at = now() WHERE id = %s"
        detail = "id {0}, " + ("none" if text is None else f"{len(text.encode())} bytes")
        return self._change_picked("assignment", "edit description", _ASSIGNMENTS, change, (text,), detail=detail)

    def _change_max_score(self) -> AppliedChange | None:
        score = max_score(self._rng)
        change: LiteralString = "UPDATE assignments SET max_score = %s, updated_at = now() WHERE id = %s"
        detail = f"id {{0}} to {score}"
        return self._change_picked("assignment", "change max score", _ASSIGNMENTS, change, (score,), detail=detail)

    def _add_assignment(self) -> AppliedChange | None:
        if (course := self._pick(self._conn("course"), _COURSES)) is None:
            return None
        rng = self._rng
        with self._transaction("assignment") as conn:
            assignment_id, opens = self._next_id(conn, "assignments"), self._term_time()
            text = description(rng, large=rng.random() < 0.3)
            due = opens + timedelta(days=rng.randint(3, 14)) + microseconds(rng)
            title, score, published = f"Assignment {assignment_id}", max_score(rng), rng.random() < 0.7
            conn.execute(
                "INSERT INTO assignments (id, course_id, title, description, max_score, opens_at, due_at, published)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (assignment_id, *course, title, text, score, opens, due, published),
            )
        return AppliedChange("assignment", "add assignment", f"id {assignment_id} in course {course[0]}")

    def _delete_assignment(self) -> AppliedChange | None:
        change: LiteralString = "DELETE FROM assignments WHERE id = %s"
        return self._change_picked("assignment", "delete assignment", _ASSIGNMENTS, change, detail="id {0}")

    def _shift_course_deadlines(self) -> AppliedChange | None:
        """Several rows in one transaction."""
        pick: LiteralString = "SELECT DISTINCT course_id FROM assignments ORDER BY 1"
        change: LiteralString = (
            "UPDATE assignments SET due_at = due_at + interval '2 days', updated_at = now() WHERE course_id = %s"
        )
        return self._change_picked("assignment", "extend a course's deadlines", pick, change, detail="course {0}")
