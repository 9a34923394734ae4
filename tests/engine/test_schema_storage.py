"""The sink's tables leave room on every page, so that its updates are HOT (no new index entries)."""

from __future__ import annotations

import psycopg
import pytest

from cdcsync.sink.schema import migrate

pytestmark = pytest.mark.postgres


def _fillfactors(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, object]:
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.reloptions FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('calendar', 'cdcsync') AND c.relkind = 'r'"
    ).fetchall()
    return {str(name): options for name, options in rows}


def test_calendar_and_replica_tables_get_a_fillfactor(fresh_database: str) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        migrate(conn)
        options = _fillfactors(conn)
        assert options["calendar.calendar_entries"] == ["fillfactor=80"]
        for table in ("courses", "lectures", "enrollments", "attendance_windows", "assignments"):
            assert options[f"cdcsync.{table}"] == ["fillfactor=90"]

        migrate(conn)  # a restart: the same settings
        assert _fillfactors(conn) == options


def test_a_changed_calendar_row_is_updated_in_place(fresh_database: str) -> None:
    """Rows written after the migration leave room: rewriting a few of them adds no index entries."""
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        migrate(conn)
        with conn.transaction():
            conn.execute(
                "INSERT INTO calendar.calendar_entries SELECT u, 'lecture:1', 'lecture', 1, 'course', 'title',"
                " now(), now(), NULL, NULL, NULL, now(), now() FROM generate_series(1, 2000) u"
            )
            conn.execute(
                "UPDATE calendar.calendar_entries SET title = 'renamed', synced_at = now() WHERE user_id <= 10"
            )
            counts = conn.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
                " WHERE relid = 'calendar.calendar_entries'::regclass"
            ).fetchone()
        assert counts == (10, 10)
