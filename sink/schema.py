"""The sink's tables in the calendar database, created idempotently at start.

``calendar.calendar_entries`` is the spec's read model, verbatim (``calendar_columns``). Schema
``cdcsync`` holds the sink's replica of source rows and its Kafka offsets.
"""

from __future__ import annotations

from psycopg import Connection, Cursor, sql

from cdcsync.sink.calendar_columns import CALENDAR_TABLE, create_table_statement
from cdcsync.sink.source_replica import REPLICA_SCHEMA, replica_ddl
from cdcsync.sink.source_tables import ASSIGNMENTS, ATTENDANCE_WINDOWS, LECTURES, SOURCE_TABLES

# The role that reads the read model; granted SELECT when it exists.
READER_ROLE = "calendar_reader"
_MIGRATION_LOCK = 0x63646373796E63  # "cdcsync"

_STATEMENTS: tuple[str | sql.Composed, ...] = (
    "CREATE SCHEMA IF NOT EXISTS calendar",
    "CREATE SCHEMA IF NOT EXISTS cdcsync",
    create_table_statement(),
    "CREATE INDEX IF NOT EXISTS calendar_entries_course_user ON calendar.calendar_entries (course_id, user_id)",
    "CREATE INDEX IF NOT EXISTS calendar_entries_entry_key ON calendar.calendar_entries (entry_key)",
    *(replica_ddl(table) for table in SOURCE_TABLES),
    sql.SQL("CREATE INDEX IF NOT EXISTS lectures_course_id ON {} (course_id)").format(
        sql.Identifier("cdcsync", LECTURES.name)
    ),
    sql.SQL("CREATE INDEX IF NOT EXISTS attendance_windows_lecture_id ON {} (lecture_id)").format(
        sql.Identifier("cdcsync", ATTENDANCE_WINDOWS.name)
    ),
    sql.SQL("CREATE INDEX IF NOT EXISTS assignments_course_id ON {} (course_id)").format(
        sql.Identifier("cdcsync", ASSIGNMENTS.name)
    ),
    """
    CREATE TABLE IF NOT EXISTS cdcsync.consumer_offsets (
      group_id    text        NOT NULL,
      topic       text        NOT NULL,
      partition   integer     NOT NULL,
      next_offset bigint      NOT NULL,
      newest_source_commit timestamptz,
      applied_at  timestamptz NOT NULL,
      PRIMARY KEY (group_id, topic, partition)
    )""",
    "ALTER TABLE cdcsync.consumer_offsets ADD COLUMN IF NOT EXISTS dead_letters bigint NOT NULL DEFAULT 0",
    """
    CREATE TABLE IF NOT EXISTS cdcsync.applied_offset_ranges (
      id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      group_id     text        NOT NULL,
      topic        text        NOT NULL,
      partition    integer     NOT NULL,
      first_offset bigint      NOT NULL,
      next_offset  bigint      NOT NULL,
      applied_at   timestamptz NOT NULL DEFAULT clock_timestamp()
    )""",
    "CREATE INDEX IF NOT EXISTS applied_offset_ranges_applied_at ON cdcsync.applied_offset_ranges (applied_at)",
    """
    CREATE TABLE IF NOT EXISTS cdcsync.truncations (
      table_name text   PRIMARY KEY,
      commit_lsn bigint NOT NULL,
      change_lsn bigint NOT NULL
    )""",
)


# Room on every page for the new version of a changed row. The sink's updates never change an indexed
# column (a moved window, a renamed lecture, a flipped enrollment status), so with that room they are
# HOT updates: no new index entries, and far less WAL, per calendar or replica row rewritten.
# Applies to pages written from then on; a table filled before keeps its pages until rewritten.
_FILLFACTOR: tuple[tuple[tuple[str, str], int], ...] = (
    (CALENDAR_TABLE, 80),
    *(((REPLICA_SCHEMA, table.name), 90) for table in SOURCE_TABLES),
)


def migrate(conn: Connection[tuple[object, ...]]) -> None:
    """Create the sink's schemas and tables if missing. Safe to run concurrently."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        for statement in _STATEMENTS:
            cur.execute(statement)
        for table, fillfactor in _FILLFACTOR:
            _set_fillfactor(cur, table, fillfactor)
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,))
        if cur.fetchone() is not None:
            reader = sql.Identifier(READER_ROLE)
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA calendar TO {}").format(reader))
            cur.execute(sql.SQL("GRANT SELECT ON calendar.calendar_entries TO {}").format(reader))


def _set_fillfactor(cur: Cursor[tuple[object, ...]], table: tuple[str, str], fillfactor: int) -> None:
    """ALTER only when it differs, so that a restart changes nothing."""
    cur.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND %s = ANY(coalesce(c.reloptions, '{}'))",
        (*table, f"fillfactor={fillfactor}"),
    )
    if cur.fetchone() is None:
        cur.execute(
            sql.SQL("ALTER TABLE {} SET (fillfactor = {})").format(sql.Identifier(*table), sql.Literal(fillfactor))
        )
