"""One canonical text per calendar row, computed the same way in Python and in SQL, and its hash.

Used to compare large calendars by buckets: each side sums its rows' hashes per
bucket, and only buckets whose sums differ are compared row by row. Fields are
length-prefixed (NULL is ``-``), timestamps are epoch microseconds, decimals
their text, so equal texts mean exactly equal rows.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from psycopg import sql

from cdcsync.pipeline.verification.expected_calendar import CalendarRow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _text(value: str | None) -> str:
    return "-" if value is None else f"{len(value)}:{value}"


def _micros(value: datetime) -> str:
    delta = value - _EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _decimal(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


def canonical_text(row: CalendarRow) -> str:
    return "|".join(
        (
            str(row.user_id),
            _text(row.entry_key),
            _text(row.kind),
            str(row.course_id),
            _text(row.course_title),
            _text(row.title),
            _micros(row.starts_at),
            _micros(row.ends_at),
            _text(row.location),
            _text(row.details),
            _decimal(row.max_score),
        )
    )


def row_hash(row: CalendarRow) -> int:
    """60 bits of the MD5 of the canonical text; ``SQL_ROW_HASH`` computes the same in PostgreSQL."""
    return int(hashlib.md5(canonical_text(row).encode("utf-8")).hexdigest()[:15], 16)  # noqa: S324 - not for security


def _sql_text(column: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN '-' ELSE length({column}) || ':' || {column} END"


def _sql_micros(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000000)::bigint::text"


SQL_CANONICAL_TEXT = sql.SQL(
    "concat_ws('|', user_id::text, "
    + ", ".join(
        (
            _sql_text("entry_key"),
            _sql_text("kind"),
            "course_id::text",
            _sql_text("course_title"),
            _sql_text("title"),
            _sql_micros("starts_at"),
            _sql_micros("ends_at"),
            _sql_text("location"),
            _sql_text("details"),
            "CASE WHEN max_score IS NULL THEN '-' ELSE max_score::text END",
        )
    )
    + ")"
)
SQL_ROW_HASH = sql.SQL("('x' || substr(md5({}), 1, 15))::bit(60)::bigint").format(SQL_CANONICAL_TEXT)
