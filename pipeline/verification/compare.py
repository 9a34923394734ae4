"""Compares the expected calendar with the actual one: missing, extra and wrong rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from cdcsync.pipeline.verification.expected_calendar import CalendarRow
from cdcsync.sink.calendar_columns import COMPARED_COLUMN_NAMES

RowKey = tuple[int, str]


@dataclass(frozen=True)
class WrongRow:
    expected: CalendarRow
    actual: CalendarRow

    @property
    def differing_columns(self) -> tuple[str, ...]:
        return _differing_columns(self.expected, self.actual)


@dataclass(frozen=True)
class VerifyReport:
    expected_rows: int
    actual_rows: int
    missing: tuple[CalendarRow, ...]
    extra: tuple[CalendarRow, ...]
    wrong: tuple[WrongRow, ...]

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.wrong)


def _differing_columns(expected: CalendarRow, actual: CalendarRow) -> tuple[str, ...]:
    """Exact: datetimes to the microsecond, decimals by value and scale, text byte for byte."""
    return tuple(
        column
        for column in COMPARED_COLUMN_NAMES
        if not _exactly_equal(getattr(expected, column), getattr(actual, column))
    )


def _exactly_equal(expected: object, actual: object) -> bool:
    if isinstance(expected, Decimal) and isinstance(actual, Decimal):
        return expected.as_tuple() == actual.as_tuple()
    return type(expected) is type(actual) and expected == actual


def compare_calendars(expected: Mapping[RowKey, CalendarRow], actual: Mapping[RowKey, CalendarRow]) -> VerifyReport:
    missing = tuple(expected[k] for k in sorted(expected.keys() - actual.keys()))
    extra = tuple(actual[k] for k in sorted(actual.keys() - expected.keys()))
    wrong = tuple(
        WrongRow(expected[k], actual[k])
        for k in sorted(expected.keys() & actual.keys())
        if _differing_columns(expected[k], actual[k])
    )
    return VerifyReport(len(expected), len(actual), missing, extra, wrong)
