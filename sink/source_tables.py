"""The source tables the calendar rules read, the columns the sink keeps of them, and their topics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class ColumnType(Enum):
    BIGINT = "bigint"
    TEXT = "text"
    TIMESTAMPTZ = "timestamptz"
    NUMERIC = "numeric"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False
    # For NUMERIC columns: the precision and scale the read model holds.
    precision: int | None = None
    scale: int | None = None

    @property
    def sql_type(self) -> str:
        if self.type is ColumnType.NUMERIC and self.precision is not None:
            return f"numeric({self.precision},{self.scale or 0})"
        return self.type.value


@dataclass(frozen=True)
class SourceTable:
    """One captured table: its key and the non-key columns the calendar rules use.

    Columns the rules never read (``updated_at``, ``courses.description``) are not
    kept, so a change to them alone leaves the calendar untouched.
    """

    service: str
    name: str
    key: tuple[Column, ...]
    columns: tuple[Column, ...]

    def __hash__(self) -> int:
        # A table is a dict key of every change in a batch (row = (table, key)): hash what tells
        # tables apart, not every column's type, which dominated the sink's collapse time.
        return hash((self.service, self.name))

    @property
    def qualified_name(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.key + self.columns

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.key)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def topic(self, prefix: str) -> str:
        """The topic Debezium writes this table's changes to, under the connector's ``topic.prefix``."""
        return f"{prefix}.public.{self.name}"

    def default_topic(self) -> str:
        """The topic Debezium writes to with ``topic.prefix`` = the service name (the shipped connectors)."""
        return self.topic(self.service)


_ID = Column("id", ColumnType.BIGINT)

COURSES = SourceTable("course", "courses", (_ID,), (Column("title", ColumnType.TEXT),))
LECTURES = SourceTable(
    "course",
    "lectures",
    (_ID,),
    (
        Column("course_id", ColumnType.BIGINT),
        Column("title", ColumnType.TEXT),
        Column("starts_at", ColumnType.TIMESTAMPTZ),
        Column("ends_at", ColumnType.TIMESTAMPTZ),
        Column("room", ColumnType.TEXT, nullable=True),
        Column("cancelled", ColumnType.BOOLEAN),
    ),
)
ENROLLMENTS = SourceTable(
    "course",
    "enrollments",
    (Column("course_id", ColumnType.BIGINT), Column("user_id", ColumnType.BIGINT)),
    (Column("status", ColumnType.TEXT),),
)
ATTENDANCE_WINDOWS = SourceTable(
    "attendance",
    "attendance_windows",
    (_ID,),
    (
        Column("lecture_id", ColumnType.BIGINT),
        Column("opens_at", ColumnType.TIMESTAMPTZ),
        Column("closes_at", ColumnType.TIMESTAMPTZ),
    ),
)
ASSIGNMENTS = SourceTable(
    "assignment",
    "assignments",
    (_ID,),
    (
        Column("course_id", ColumnType.BIGINT),
        Column("title", ColumnType.TEXT),
        Column("description", ColumnType.TEXT, nullable=True),
        Column("max_score", ColumnType.NUMERIC, nullable=True, precision=6, scale=2),
        Column("opens_at", ColumnType.TIMESTAMPTZ),
        Column("due_at", ColumnType.TIMESTAMPTZ),
        Column("published", ColumnType.BOOLEAN),
    ),
)

SOURCE_TABLES: tuple[SourceTable, ...] = (COURSES, LECTURES, ENROLLMENTS, ATTENDANCE_WINDOWS, ASSIGNMENTS)
SERVICES: tuple[str, ...] = tuple(dict.fromkeys(table.service for table in SOURCE_TABLES))


def routing(prefixes: Mapping[str, str]) -> dict[str, SourceTable]:
    """Change topic -> source table, for the connectors' ``topic.prefix`` per service (default: the service)."""
    return {table.topic(prefixes.get(table.service, table.service)): table for table in SOURCE_TABLES}
