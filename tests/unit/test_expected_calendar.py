"""The oracle: the spec's rules as a pure function, and the exact comparison."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cdcsync.pipeline.verification.compare import compare_calendars
from cdcsync.pipeline.verification.expected_calendar import (
    Assignment,
    AttendanceWindow,
    Course,
    Enrollment,
    Lecture,
    SourceState,
    expected_calendar,
)

T = datetime(2026, 5, 4, 9, 0, 0, 123456, tzinfo=UTC)
STATE = SourceState(
    courses=(Course(1, "Algebra"), Course(2, "Biology")),
    lectures=(
        Lecture(10, 1, "Groups", T, T + timedelta(hours=1), "A1", False),
        Lecture(11, 1, "Rings", T, T + timedelta(hours=1), None, True),
        Lecture(12, 3, "Orphan course", T, T, None, False),
    ),
    enrollments=(
        Enrollment(1, 100, "active"),
        Enrollment(1, 101, "dropped"),
        Enrollment(2, 100, "active"),
        Enrollment(3, 100, "active"),
    ),
    windows=(
        AttendanceWindow(20, 10, T, T + timedelta(minutes=5)),
        AttendanceWindow(21, 11, T, T),
        AttendanceWindow(22, 99, T, T),
    ),
    assignments=(
        Assignment(30, 2, "Lab report", "x" * 9000, Decimal("87.50"), T, T + timedelta(days=7), True),
        Assignment(31, 2, "Draft", None, None, T, T, False),
    ),
)


def test_rules() -> None:
    rows = expected_calendar(STATE)
    assert set(rows) == {(100, "lecture:10"), (100, "attendance:20"), (100, "assignment:30")}
    attendance = rows[(100, "attendance:20")]
    assert (attendance.title, attendance.location, attendance.course_title) == ("Groups", "A1", "Algebra")
    assert attendance.starts_at == T
    assignment = rows[(100, "assignment:30")]
    assert (assignment.details, assignment.max_score, assignment.location) == ("x" * 9000, Decimal("87.50"), None)


def test_comparison_is_exact() -> None:
    expected = expected_calendar(STATE)
    actual = dict(expected)
    key = (100, "lecture:10")
    actual[key] = replace(expected[key], starts_at=T + timedelta(microseconds=1))
    del actual[(100, "assignment:30")]
    actual[(7, "lecture:10")] = replace(expected[key], user_id=7)
    report = compare_calendars(expected, actual)
    assert not report.clean
    assert [w.differing_columns for w in report.wrong] == [("starts_at",)]
    assert [r.entry_key for r in report.missing] == ["assignment:30"]
    assert [r.user_id for r in report.extra] == [7]


def test_decimal_scale_counts() -> None:
    expected = expected_calendar(STATE)
    key = (100, "assignment:30")
    actual = {**expected, key: replace(expected[key], max_score=Decimal("87.5"))}
    assert [w.differing_columns for w in compare_calendars(expected, actual).wrong] == [("max_score",)]
    assert compare_calendars(expected, dict(expected)).clean
