"""One canonical text per calendar row, computed the same way in Python and in SQL, and its hash.

Used to compare large calendars by buckets: each side sums its rows' hashes per
bucket, and only buckets whose sums differ are compared row by row. Fields are
the rule columns (``sink.calendar_columns.RULE_COLUMNS``) in order, length-prefixed
text (NULL is ``-``), timestamps as epoch microseconds, decimals as their text,
so equal texts mean exactly equal rows.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from psycopg import sql

from cdcsync.pipeline.verification.expected_calendar import CalendarRow
from cdcsync.sink.calendar_columns import RULE_COLUMNS, CalendarColumn, ValueKind

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _python_text(kind: ValueKind, value: object) -> str:
    if value is None:
        return "-"
    if kind is ValueKind.TEXT and isinstance(value, str):
        return f"{len(value)}:{value}"
    if kind is ValueKind.TIMESTAMP and isinstance(value, datetime):
        delta = value - _EPOCH
        return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if kind in (ValueKind.INTEGER, ValueKind.DECIMAL) and isinstance(value, int | Decimal):
        return str(value)
    raise TypeError(f"{value!r} is not a {kind.value}")


def canonical_text(row: CalendarRow) -> str:
    return "|".join(_python_text(column.kind, getattr(row, column.name)) for column in RULE_COLUMNS)


def row_hash(row: CalendarRow) -> int:
    """60 bits of the MD5 of the canonical text; ``SQL_ROW_HASH`` computes the same in PostgreSQL."""
    return int(hashlib.md5(canonical_text(row).encode("utf-8")).hexdigest()[:15], 16)  # noqa: S324 - not for security


def _sql_text(column: CalendarColumn) -> sql.Composable:
    name = column.identifier
    if column.kind is ValueKind.TEXT:
        text = sql.SQL("length({0}) || ':' || {0}").format(name)
    elif column.kind is ValueKind.TIMESTAMP:
        text = sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint::text").format(name)
    else:
        text = sql.SQL("{}::text").format(name)
    return sql.SQL("CASE WHEN {} IS NULL THEN '-' ELSE {} END").format(name, text) if column.nullable else text


SQL_CANONICAL_TEXT = sql.SQL("concat_ws('|', {})").format(sql.SQL(", ").join(map(_sql_text, RULE_COLUMNS)))
SQL_ROW_HASH = sql.SQL("('x' || substr(md5({}), 1, 15))::bit(60)::bigint").format(SQL_CANONICAL_TEXT)
