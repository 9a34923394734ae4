"""The spec's rules as a pure function of the source rows: the calendar there should be.

This is the oracle ``verify`` and the tests compare the sink's output with. It
is written independently of the sink's SQL on purpose.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal


@dataclass(frozen=True)
class Course:
    id: int
    title: str


@dataclass(frozen=True)
class Lecture:
    id: int
    course_id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    room: str | None
    cancelled: bool


@dataclass(frozen=True)
class Enrollment:
    course_id: int
    user_id: int
    status: str


@dataclass(frozen=True)
class AttendanceWindow:
    id: int
    lecture_id: int
    opens_at: datetime
    closes_at: datetime


@dataclass(frozen=True)
class Assignment:
    id: int
    course_id: int
    title: str
    description: str | None
    max_score: Decimal | None
    opens_at: datetime
    due_at: datetime
    published: bool


@dataclass(frozen=True)
class SourceState:
    courses: tuple[Course, ...]
    lectures: tuple[Lecture, ...]
    enrollments: tuple[Enrollment, ...]
    windows: tuple[AttendanceWindow, ...]
    assignments: tuple[Assignment, ...]


@dataclass(frozen=True)
class CalendarRow:
    """A calendar row's rule columns (``sink.calendar_columns.RULE_COLUMNS``, in their order)."""

    user_id: int
    entry_key: str
    kind: str
    course_id: int
    course_title: str
    title: str
    starts_at: datetime
    ends_at: datetime
    location: str | None
    details: str | None
    max_score: Decimal | None

    @property
    def key(self) -> tuple[int, str]:
        return (self.user_id, self.entry_key)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def entry_templates(state: SourceState) -> dict[int, list[CalendarRow]]:
    """Per existing course, the rows every attendee of it gets, with ``user_id`` 0, sorted by entry key.

    Reads every table but ``enrollments``: the rules for a user are these templates
    for each course the user attends.
    """
    courses = {c.id: c for c in state.courses}
    lectures = {lecture.id: lecture for lecture in state.lectures}

    def entry(course_id: int, key: str, kind: str) -> CalendarRow:
        return CalendarRow(0, key, kind, course_id, courses[course_id].title, "", _EPOCH, _EPOCH, None, None, None)

    templates: dict[int, list[CalendarRow]] = defaultdict(list)
    for lecture in state.lectures:
        if not lecture.cancelled and lecture.course_id in courses:
            templates[lecture.course_id].append(
                replace(
                    entry(lecture.course_id, f"lecture:{lecture.id}", "lecture"),
                    title=lecture.title,
                    starts_at=lecture.starts_at,
                    ends_at=lecture.ends_at,
                    location=lecture.room,
                )
            )
    for window in state.windows:
        owner = lectures.get(window.lecture_id)
        if owner is not None and not owner.cancelled and owner.course_id in courses:
            templates[owner.course_id].append(
                replace(
                    entry(owner.course_id, f"attendance:{window.id}", "attendance"),
                    title=owner.title,
                    starts_at=window.opens_at,
                    ends_at=window.closes_at,
                    location=owner.room,
                )
            )
    for assignment in state.assignments:
        if assignment.published and assignment.course_id in courses:
            templates[assignment.course_id].append(
                replace(
                    entry(assignment.course_id, f"assignment:{assignment.id}", "assignment"),
                    title=assignment.title,
                    starts_at=assignment.opens_at,
                    ends_at=assignment.due_at,
                    details=assignment.description,
                    max_score=assignment.max_score,
                )
            )
    return {course: sorted(rows, key=lambda r: r.entry_key) for course, rows in templates.items()}


def rows_for_user(
    user_id: int, attended: Iterable[int], templates: Mapping[int, list[CalendarRow]]
) -> list[CalendarRow]:
    """The rows the rules give ``user_id``, attending the courses ``attended``, sorted by entry key."""
    rows = [replace(t, user_id=user_id) for course in attended for t in templates.get(course, ())]
    return sorted(rows, key=lambda r: r.entry_key)


def expected_calendar(state: SourceState) -> dict[tuple[int, str], CalendarRow]:
    """Every row the rules derive from ``state``, by (user_id, entry_key)."""
    templates = entry_templates(state)
    attended: dict[int, list[int]] = defaultdict(list)
    for e in state.enrollments:
        if e.status == "active":
            attended[e.user_id].append(e.course_id)
    return {row.key: row for user, courses in attended.items() for row in rows_for_user(user, courses, templates)}
