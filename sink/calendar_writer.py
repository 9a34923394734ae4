"""Applies one batch in one PostgreSQL transaction: replica, calendar rows, offsets."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg import Connection, Cursor

from cdcsync.sink.calendar_projection import CalendarScope, recompute_calendar
from cdcsync.sink.change_batch import ChangeBatch
from cdcsync.sink.change_event import Key, SourceCommitPosition
from cdcsync.sink.offset_store import OffsetStore
from cdcsync.sink.source_replica import (
    apply_staged_changes,
    replica_positions,
    stage_changes,
    staging_ddl,
    truncate_replica,
    truncation_positions,
)
from cdcsync.sink.source_tables import SOURCE_TABLES, SourceTable

logger = logging.getLogger(__name__)

# Serializes batches across sink instances sharing a calendar database: the
# recompute reads replica rows other partitions' batches write.
BATCH_LOCK = 0x63616C656E646172  # "calendar"


@dataclass(frozen=True)
class BatchResult:
    messages: int
    changes: int
    replica_rows: int
    calendar_upserts: int
    calendar_deletes: int


class CalendarWriter:
    """Owns one autocommit connection with the session's staging tables.

    ``apply`` is called once per batch and is all-or-nothing.
    """

    def __init__(self, conn: Connection[tuple[object, ...]], offsets: OffsetStore) -> None:
        self._conn = conn
        self._offsets = offsets
        self._prepared = False

    def _prepare_session(self) -> None:
        with self._conn.cursor() as cur:
            # psycopg prepares a statement run five times; PostgreSQL may then keep one generic
            # plan for it, made without the batch's arrays. Plan each batch with its own keys.
            cur.execute("SET plan_cache_mode = force_custom_plan")
            for table in SOURCE_TABLES:
                cur.execute(staging_ddl(table))
        self._prepared = True

    def apply(self, batch: ChangeBatch) -> BatchResult:
        if not self._prepared:
            self._prepare_session()
        replica_rows = 0
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (BATCH_LOCK,))
            collapsed = batch.collapse(*_replica_state(cur, batch))
            changes = collapsed.changes_by_table
            # A truncate first: the batch's remaining changes of that table are all newer than it.
            for truncated in collapsed.truncations:
                replica_rows += truncate_replica(cur, truncated)
            for table, events in changes.items():
                stage_changes(cur, table, events)
                replica_rows += apply_staged_changes(cur, table)
            scope = CalendarScope.from_changes(changes, truncated=bool(collapsed.truncations))
            delta = recompute_calendar(cur, scope)
            self._offsets.save(cur, batch.offset_ranges, batch.newest_commit, batch.dead_letters)
        return BatchResult(
            messages=batch.message_count,
            changes=collapsed.change_count,
            replica_rows=replica_rows,
            calendar_upserts=delta.upserted,
            calendar_deletes=delta.deleted,
        )


def _replica_state(
    cur: Cursor[tuple[object, ...]], batch: ChangeBatch
) -> tuple[dict[tuple[SourceTable, Key], SourceCommitPosition], dict[SourceTable, SourceCommitPosition]]:
    """What the replica already reflects of the batch's rows, and its truncates: one query per table."""
    applied = {
        (table, key): position
        for table, keys in batch.rows_by_table().items()
        for key, position in replica_positions(cur, table, keys).items()
    }
    by_name = {table.name: table for table in SOURCE_TABLES}
    truncated = {by_name[name]: p for name, p in truncation_positions(cur).items() if name in by_name}
    return applied, truncated
