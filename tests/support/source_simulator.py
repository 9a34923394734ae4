"""A stand-in for three service databases plus Debezium, for tests of the sink engine.

It keeps the source rows in memory, applies random committed transactions to
them, and emits the Debezium JSON messages the real connector would: creates,
updates, deletes followed by tombstones, primary-key changes (delete + create
with the ``__debezium.oldkey`` header), unavailable-value placeholders for
unchanged large descriptions, and ``source.sequence`` positions whose change
LSNs interleave across transactions while commit order stays intact.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cdcsync.pipeline.verification.expected_calendar import (
    Assignment,
    AttendanceWindow,
    Course,
    Enrollment,
    Lecture,
    SourceState,
)
from cdcsync.sink.decoding import OLD_KEY_HEADER, UNAVAILABLE_VALUE_PLACEHOLDER
from cdcsync.sink.source_tables import ASSIGNMENTS, ATTENDANCE_WINDOWS, COURSES, ENROLLMENTS, LECTURES, SourceTable

TOAST_THRESHOLD = 2000
_BASE = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SimulatedMessage:
    topic: str
    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


Row = Any  # one of the expected_calendar source dataclasses


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _encode(table: SourceTable, row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.all_columns:
        value = getattr(row, column.name)
        if isinstance(value, datetime):
            value = _iso(value)
        elif isinstance(value, Decimal):
            value = str(value)
        out[column.name] = value
    out["updated_at"] = _iso(_BASE)
    return out


def _key_of(table: SourceTable, row: Row) -> dict[str, Any]:
    return {name: getattr(row, name) for name in table.key_names}


@dataclass
class SourceSimulator:
    rng: random.Random
    tables: dict[SourceTable, dict[tuple[int, ...], Row]] = field(
        default_factory=lambda: {t: {} for t in (COURSES, LECTURES, ENROLLMENTS, ATTENDANCE_WINDOWS, ASSIGNMENTS)}
    )
    topics: dict[str, list[SimulatedMessage]] = field(default_factory=dict)
    _commit_lsn: int = 1_000
    _clock: datetime = _BASE
    _next_id: int = 1
    _pending: list[tuple[SourceTable, str, Row | None, Row | None]] = field(default_factory=list)

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> SourceState:
        return SourceState(
            courses=tuple(self.tables[COURSES].values()),
            lectures=tuple(self.tables[LECTURES].values()),
            enrollments=tuple(self.tables[ENROLLMENTS].values()),
            windows=tuple(self.tables[ATTENDANCE_WINDOWS].values()),
            assignments=tuple(self.tables[ASSIGNMENTS].values()),
        )

    def _key(self, table: SourceTable, row: Row) -> tuple[int, ...]:
        return tuple(getattr(row, n) for n in table.key_names)

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- writes inside the current transaction -------------------------------------------------
    def insert(self, table: SourceTable, row: Row) -> None:
        self.tables[table][self._key(table, row)] = row
        self._pending.append((table, "c", None, row))

    def update(self, table: SourceTable, before: Row, after: Row) -> None:
        del self.tables[table][self._key(table, before)]
        self.tables[table][self._key(table, after)] = after
        self._pending.append((table, "u", before, after))

    def delete(self, table: SourceTable, row: Row) -> None:
        del self.tables[table][self._key(table, row)]
        self._pending.append((table, "d", row, None))

    def truncate(self, *tables: SourceTable) -> None:
        """TRUNCATE (with CASCADE where foreign keys need it): one 't' event per table."""
        for table in tables:
            self.tables[table].clear()
            self._pending.append((table, "t", None, None))

    def commit(self) -> None:
        """Emit the transaction's events, as Debezium does at commit."""
        last_commit = self._commit_lsn
        # Change LSNs may be lower than the previous transaction's (it committed
        # first, but this one started writing earlier); commit order is kept.
        change_lsn = last_commit - self.rng.randint(0, 600)
        self._clock += timedelta(microseconds=self.rng.randint(1, 5_000_000))
        ts_us = int((self._clock - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
        for table, op, before, after in self._pending:
            change_lsn += self.rng.randint(1, 40)
            source = {"lsn": change_lsn, "sequence": json.dumps([str(last_commit), str(change_lsn)]), "ts_us": ts_us}
            self._emit(table, op, before, after, source)
        self._commit_lsn = max(change_lsn, last_commit) + self.rng.randint(1, 50)
        self._pending.clear()

    def _emit(self, table: SourceTable, op: str, before: Row | None, after: Row | None, source: dict[str, Any]) -> None:
        topic = self.topics.setdefault(table.default_topic(), [])

        def message(
            op: str, before_doc: Any, after_doc: Any, key: Row, headers: tuple[tuple[str, bytes | None], ...] = ()
        ) -> None:
            envelope = {"op": op, "before": before_doc, "after": after_doc, "source": source}
            topic.append(
                SimulatedMessage(
                    topic=table.default_topic(),
                    key=json.dumps(_key_of(table, key)).encode(),
                    value=json.dumps(envelope).encode(),
                    headers=headers,
                )
            )

        if op == "t":
            envelope = {"op": "t", "before": None, "after": None, "source": source}
            topic.append(SimulatedMessage(table.default_topic(), b"", json.dumps(envelope).encode()))
        elif op == "c" and after is not None:
            message("c", None, _encode(table, after), after)
        elif op == "d" and before is not None:
            message("d", _key_of(table, before), None, before)
            topic.append(SimulatedMessage(table.default_topic(), json.dumps(_key_of(table, before)).encode(), None))
        elif op == "u" and before is not None and after is not None:
            after_doc = _encode(table, after)
            for column in table.columns:
                value = getattr(after, column.name)
                if isinstance(value, str) and len(value) > TOAST_THRESHOLD and value == getattr(before, column.name):
                    after_doc[column.name] = UNAVAILABLE_VALUE_PLACEHOLDER
            if self._key(table, before) == self._key(table, after):
                message("u", _key_of(table, before), after_doc, after)
            else:
                old_key = json.dumps(_key_of(table, before)).encode()
                new_key = json.dumps(_key_of(table, after)).encode()
                message("d", _key_of(table, before), None, before, ((("__debezium.newkey", new_key)),))
                topic.append(SimulatedMessage(table.default_topic(), old_key, None))
                message("c", None, after_doc, after, ((OLD_KEY_HEADER, old_key),))

    # -- random workload -------------------------------------------------------------------------
    def _pick(self, table: SourceTable) -> Row | None:
        rows = list(self.tables[table].values())
        return self.rng.choice(rows) if rows else None

    def _time(self) -> datetime:
        return _BASE + timedelta(minutes=self.rng.randint(0, 60 * 24 * 30), microseconds=self.rng.randint(0, 999_999))

    def _text(self, prefix: str) -> str:
        if self.rng.random() < 0.25:
            return f"{prefix} " + "long ✓ " * self.rng.randint(400, 800)
        return f"{prefix} {self.rng.randint(0, 10**6)} «ü»"

    def seed_base_state(self) -> None:
        """A few courses with attendees, lectures, windows and assignments, in one transaction."""
        for _ in range(3):
            course = Course(self.new_id(), self._text("Course"))
            self.insert(COURSES, course)
            for user in range(1, 6):
                self.insert(ENROLLMENTS, Enrollment(course.id, user, "active"))
            start = self._time()
            lecture = Lecture(
                self.new_id(), course.id, self._text("Lecture"), start, start + timedelta(hours=1), "A1", False
            )
            self.insert(LECTURES, lecture)
            self.insert(
                ATTENDANCE_WINDOWS, AttendanceWindow(self.new_id(), lecture.id, start, start + timedelta(minutes=10))
            )
            self.insert(
                ASSIGNMENTS,
                Assignment(
                    self.new_id(),
                    course.id,
                    self._text("Assignment"),
                    self._text("Details"),
                    Decimal("10.00"),
                    start,
                    start + timedelta(days=3),
                    True,
                ),
            )
        self.commit()

    def random_transaction(self) -> None:
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            self.random_change()
        self.commit()

    def random_change(self) -> None:
        r = self.rng
        courses = [key[0] for key in self.tables[COURSES]]
        lectures = [key[0] for key in self.tables[LECTURES]]
        choice = r.randrange(16)
        course = self._pick(COURSES)
        if choice == 0 or course is None:
            self.insert(COURSES, Course(self.new_id(), self._text("Course")))
        elif choice == 1:
            self.update(COURSES, course, replace(course, title=self._text("Renamed")))
        elif choice == 2 and r.random() < 0.3:
            # Deleting a course deletes its lectures and enrollments (foreign keys).
            for lecture in [x for x in self.tables[LECTURES].values() if x.course_id == course.id]:
                self.delete(LECTURES, lecture)
            for e in [x for x in self.tables[ENROLLMENTS].values() if x.course_id == course.id]:
                self.delete(ENROLLMENTS, e)
            self.delete(COURSES, course)
        elif choice == 3:
            start = self._time()
            self.insert(
                LECTURES,
                Lecture(
                    self.new_id(),
                    course.id,
                    self._text("Lecture"),
                    start,
                    start + timedelta(hours=1),
                    r.choice([None, "A1", "B2"]),
                    r.random() < 0.2,
                ),
            )
        elif choice == 4 and (lecture := self._pick(LECTURES)):
            field_change = r.randrange(5)
            if field_change == 0:
                after = replace(lecture, cancelled=not lecture.cancelled)
            elif field_change == 1:
                after = replace(lecture, course_id=r.choice(courses))
            elif field_change == 2:
                after = replace(lecture, room=r.choice([None, "C3", "D4"]), title=self._text("Lecture"))
            elif field_change == 3:
                after = replace(lecture, id=self.new_id())  # primary-key change
            else:
                start = self._time()
                after = replace(lecture, starts_at=start, ends_at=start + timedelta(minutes=90))
            self.update(LECTURES, lecture, after)
        elif choice == 5 and (lecture := self._pick(LECTURES)):
            self.delete(LECTURES, lecture)
        elif choice in (6, 7):
            user = r.randint(1, 12)
            existing = self.tables[ENROLLMENTS].get((course.id, user))
            if existing is None:
                self.insert(ENROLLMENTS, Enrollment(course.id, user, r.choice(["active", "active", "dropped"])))
            elif r.random() < 0.2:
                self.delete(ENROLLMENTS, existing)
            elif r.random() < 0.1 and (course.id, user + 100) not in self.tables[ENROLLMENTS]:
                self.update(ENROLLMENTS, existing, replace(existing, user_id=user + 100))
            else:
                self.update(
                    ENROLLMENTS,
                    existing,
                    replace(existing, status="dropped" if existing.status == "active" else "active"),
                )
        elif choice == 8:
            lecture_id = r.choice([*lectures, 999_999]) if lectures else 999_999
            opens = self._time()
            self.insert(
                ATTENDANCE_WINDOWS, AttendanceWindow(self.new_id(), lecture_id, opens, opens + timedelta(minutes=15))
            )
        elif choice == 9 and (window := self._pick(ATTENDANCE_WINDOWS)):
            options = [
                replace(window, closes_at=window.closes_at + timedelta(microseconds=r.randint(1, 10**7))),
                replace(window, id=self.new_id()),
            ]
            if lectures:
                options.append(replace(window, lecture_id=r.choice(lectures)))
            self.update(ATTENDANCE_WINDOWS, window, r.choice(options))
        elif choice == 10 and (window := self._pick(ATTENDANCE_WINDOWS)):
            self.delete(ATTENDANCE_WINDOWS, window)
        elif choice == 11:
            opens = self._time()
            self.insert(
                ASSIGNMENTS,
                Assignment(
                    self.new_id(),
                    r.choice([*courses, 888_888]),
                    self._text("Assignment"),
                    r.choice([None, self._text("Details")]),
                    r.choice([None, Decimal(f"{r.randint(0, 9999)}.{r.randint(0, 99):02d}")]),
                    opens,
                    opens + timedelta(days=7),
                    r.random() < 0.8,
                ),
            )
        elif choice in (12, 13) and (assignment := self._pick(ASSIGNMENTS)):
            options = [
                replace(assignment, published=not assignment.published),
                replace(assignment, course_id=r.choice(courses)),
                replace(assignment, max_score=Decimal(f"{r.randint(0, 9999)}.{r.randint(0, 99):02d}")),
                replace(assignment, due_at=assignment.due_at + timedelta(microseconds=1)),
                replace(assignment, description=self._text("Details")),
                replace(assignment, id=self.new_id()),
            ]
            self.update(ASSIGNMENTS, assignment, r.choice(options))
        elif choice == 14 and (assignment := self._pick(ASSIGNMENTS)):
            self.delete(ASSIGNMENTS, assignment)
        elif choice == 15 and r.random() < 0.05:
            self.truncate(
                *r.choice([(ATTENDANCE_WINDOWS,), (ASSIGNMENTS,), (LECTURES,), (COURSES, LECTURES, ENROLLMENTS)])
            )
        else:
            self.update(COURSES, course, course)  # a change to columns the rules don't read
