"""The columns of ``calendar.calendar_entries``, declared once.

The schema's DDL, the projection's upsert, verification's reads and comparisons,
and the row hash are all derived from ``CALENDAR_COLUMNS``. ``RULE_COLUMNS`` are
the ones the rules determine (what verification compares); the two bookkeeping
columns say which source commit a row reflects and when the sink wrote it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from psycopg import sql

CALENDAR_TABLE = ("calendar", "calendar_entries")


class ValueKind(enum.Enum):
    """How a column's values are compared and written in the canonical row text."""

    INTEGER = "integer"
    TEXT = "text"
    TIMESTAMP = "timestamp"
    DECIMAL = "decimal"


@dataclass(frozen=True)
class CalendarColumn:
    name: str
    sql_type: str
    nullable: bool
    kind: ValueKind

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.name)

    def definition(self) -> sql.Composed:
        null = "" if self.nullable else " NOT NULL"
        return sql.SQL("{} {}{}").format(self.identifier, sql.SQL(self.sql_type), sql.SQL(null))


def _column(name: str, sql_type: str, kind: ValueKind, *, nullable: bool = False) -> CalendarColumn:
    return CalendarColumn(name, sql_type, nullable, kind)


KEY_COLUMN_NAMES = ("user_id", "entry_key")
RULE_COLUMNS = (
    _column("user_id", "bigint", ValueKind.INTEGER),
    _column("entry_key", "text", ValueKind.TEXT),  # 'lecture:<id>', 'attendance:<id>', 'assignment:<id>'
    _column("kind", "text", ValueKind.TEXT),  # 'lecture' | 'attendance' | 'assignment'
    _column("course_id", "bigint", ValueKind.INTEGER),
    _column("course_title", "text", ValueKind.TEXT),
    _column("title", "text", ValueKind.TEXT),
    _column("starts_at", "timestamptz", ValueKind.TIMESTAMP),
    _column("ends_at", "timestamptz", ValueKind.TIMESTAMP),
    _column("location", "text", ValueKind.TEXT, nullable=True),
    _column("details", "text", ValueKind.TEXT, nullable=True),
    _column("max_score", "numeric(6,2)", ValueKind.DECIMAL, nullable=True),
)
# Commit time, in its source, of the newest change the row reflects; and when the sink committed this version.
SOURCE_COMMITTED_AT = _column("source_committed_at", "timestamptz", ValueKind.TIMESTAMP)
SYNCED_AT = _column("synced_at", "timestamptz", ValueKind.TIMESTAMP)
CALENDAR_COLUMNS = (*RULE_COLUMNS, SOURCE_COMMITTED_AT, SYNCED_AT)

RULE_COLUMN_NAMES = tuple(column.name for column in RULE_COLUMNS)
COMPARED_COLUMN_NAMES = tuple(name for name in RULE_COLUMN_NAMES if name not in KEY_COLUMN_NAMES)


def column_list(columns: tuple[CalendarColumn, ...], prefix: str | None = None) -> sql.Composed:
    """``a, b, c`` (or ``p.a, p.b, p.c``), quoted."""
    return sql.SQL(", ").join(sql.Identifier(prefix, c.name) if prefix else c.identifier for c in columns)


def create_table_statement() -> sql.Composed:
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
        sql.Identifier(*CALENDAR_TABLE),
        sql.SQL(", ").join(column.definition() for column in CALENDAR_COLUMNS),
        sql.SQL(", ").join(map(sql.Identifier, KEY_COLUMN_NAMES)),
    )
