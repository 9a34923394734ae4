"""The offset ledger: ranges applied per batch, audited for offsets applied twice or skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from cdcsync.sink.offset_store import OffsetStore, PartitionLedger, audit_ledger
from cdcsync.sink.schema import migrate

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_audit_counts_overlaps_and_gaps(fresh_database: str) -> None:
    store = OffsetStore("g")
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        migrate(conn)
        batches = [
            {("t", 0): (0, 10), ("u", 0): (0, 5)},
            {("t", 0): (10, 20)},
            {("t", 0): (15, 30)},  # re-applies 15..19
            {("t", 0): (33, 40), ("u", 0): (5, 6)},  # skips 30..32
        ]
        for ranges in batches:
            with conn.transaction(), conn.cursor() as cur:
                store.save(cur, ranges, {("t", 0): NOW}, {("u", 0): 1})
        assert audit_ledger(conn, "g") == [
            PartitionLedger(
                "t", 0, batches=4, first_offset=0, next_offset=40, offsets_applied=42, overlaps=1, reapplied=5, gaps=3
            ),
            PartitionLedger(
                "u", 0, batches=2, first_offset=0, next_offset=6, offsets_applied=6, overlaps=0, reapplied=0, gaps=0
            ),
        ]
        assert OffsetStore("g").load(conn, [("t", 0), ("u", 0), ("v", 0)]) == {("t", 0): 40, ("u", 0): 6}
        dead = conn.execute("SELECT topic, dead_letters FROM cdcsync.consumer_offsets ORDER BY topic").fetchall()
        assert dead == [("t", 0), ("u", 2)]
