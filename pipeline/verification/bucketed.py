"""Compares calendars of any size: per user-range bucket a row count and a sum of row hashes
on each side, then row by row only inside the buckets that differ.

Memory holds the per-course entry templates and one bucket's rows at a time;
the calendar is aggregated in PostgreSQL and the enrollments are streamed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from cdcsync.pipeline.targets import Targets
from cdcsync.pipeline.verification.compare import VerifyReport, WrongRow, compare_calendars
from cdcsync.pipeline.verification.expected_calendar import CalendarRow, rows_for_user
from cdcsync.pipeline.verification.row_hash import SQL_ROW_HASH, row_hash
from cdcsync.pipeline.verification.source_reader import (
    CalendarMissing,
    SourceSnapshot,
    read_calendar,
    snapshot_connection,
)

Progress = Callable[[str], None]
Bucket = tuple[int, int]  # (row count, sum of row hashes)


@dataclass(frozen=True)
class BucketedReport:
    report: VerifyReport
    buckets: int
    differing_buckets: int
    bucket_users: int


def _actual_buckets(url: str, width: int) -> dict[int, Bucket]:
    query = sql.SQL(
        "SELECT floor(user_id / %s::numeric)::bigint AS bucket, count(*), sum({hash})"
        " FROM calendar.calendar_entries GROUP BY 1"
    ).format(hash=SQL_ROW_HASH)
    with snapshot_connection(url) as conn:
        try:
            rows = conn.execute(query, (width,)).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            raise CalendarMissing(
                "calendar.calendar_entries does not exist: start the sink (cdcsync sink run), which creates it"
            ) from None
    return {int(str(b)): (int(str(n)), int(str(h))) for b, n, h in rows}


def _expected_rows(
    sources: SourceSnapshot, templates: dict[int, list[CalendarRow]], users: tuple[int, int] | None = None
) -> dict[tuple[int, str], CalendarRow]:
    return {
        row.key: row
        for user, courses in sources.attended_courses(users)
        for row in rows_for_user(user, courses, templates)
    }


def verify_bucketed(targets: Targets, bucket_users: int = 1000, progress: Progress | None = None) -> BucketedReport:
    say = progress or (lambda _message: None)
    with SourceSnapshot(targets.source_urls) as sources:
        templates = sources.templates()
        say(f"sources: {len(templates)} courses with entries, {sum(map(len, templates.values()))} entries in all")
        expected: dict[int, Bucket] = {}
        users = 0
        for user, courses in sources.attended_courses():
            users += 1
            count, total = expected.get(user // bucket_users, (0, 0))
            rows = rows_for_user(user, courses, templates)
            expected[user // bucket_users] = (count + len(rows), total + sum(map(row_hash, rows)))
            if users % 50_000 == 0:
                say(f"rules: {users} attendees evaluated")
        say(f"rules: {sum(n for n, _ in expected.values())} rows for {users} attendees in {len(expected)} buckets")
        actual = _actual_buckets(targets.calendar_db_url, bucket_users)
        say(f"calendar: {sum(n for n, _ in actual.values())} rows in {len(actual)} buckets")

        differing = sorted(b for b in expected.keys() | actual.keys() if expected.get(b) != actual.get(b))
        missing: list[CalendarRow] = []
        extra: list[CalendarRow] = []
        wrong: list[WrongRow] = []
        for done, bucket in enumerate(differing, 1):
            span = (bucket * bucket_users, (bucket + 1) * bucket_users)
            part = compare_calendars(
                _expected_rows(sources, templates, span), read_calendar(targets.calendar_db_url, span)
            )
            missing.extend(part.missing)
            extra.extend(part.extra)
            wrong.extend(part.wrong)
            say(f"drill-down: bucket {done}/{len(differing)} (users {span[0]}..{span[1] - 1})")
    report = VerifyReport(
        expected_rows=sum(n for n, _ in expected.values()),
        actual_rows=sum(n for n, _ in actual.values()),
        missing=tuple(missing),
        extra=tuple(extra),
        wrong=tuple(wrong),
    )
    return BucketedReport(report, len(expected.keys() | actual.keys()), len(differing), bucket_users)
