"""Kafka offsets kept in the calendar database, written in each batch's transaction.

Because the offsets commit atomically with the rows they produced, a crash at
any instant resumes exactly after the last applied batch. The offsets are also
committed to Kafka afterwards, only so that standard lag tools see them.

Each batch also appends the offset range it applied per partition to a ledger
(``cdcsync.applied_offset_ranges``, kept for a retention period). Ranges that
never overlap prove each offset was applied once; see ``audit_ledger``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby, pairwise

from psycopg import Connection, Cursor

TopicPartition = tuple[str, int]

_PRUNE_EVERY_S = 600.0


class OffsetStore:
    def __init__(self, group_id: str, ledger_retention_hours: int = 24) -> None:
        self.group_id = group_id
        self._retention_hours = ledger_retention_hours
        self._last_prune = 0.0

    def load(
        self, conn: Connection[tuple[object, ...]], partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The stored next offset of each given partition that has one."""
        wanted = set(partitions)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT topic, partition, next_offset FROM cdcsync.consumer_offsets WHERE group_id = %s",
                (self.group_id,),
            )
            rows = cur.fetchall()
        stored: dict[TopicPartition, int] = {}
        for topic, partition, offset in rows:
            if isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, int):
                stored[(topic, partition)] = offset
        return {tp: offset for tp, offset in stored.items() if tp in wanted}

    def load_newest_commits(
        self, conn: Connection[tuple[object, ...]], partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, datetime]:
        """The newest source commit applied, per given partition that has one (for metrics after a restart)."""
        wanted = set(partitions)
        rows = conn.execute(
            "SELECT topic, partition, newest_source_commit FROM cdcsync.consumer_offsets"
            " WHERE group_id = %s AND newest_source_commit IS NOT NULL",
            (self.group_id,),
        ).fetchall()
        return {
            (topic, partition): newest
            for topic, partition, newest in rows
            if isinstance(topic, str) and isinstance(partition, int) and isinstance(newest, datetime)
            and (topic, partition) in wanted
        }  # fmt: skip

    def save(
        self,
        cur: Cursor[tuple[object, ...]],
        offset_ranges: Mapping[TopicPartition, tuple[int, int]],
        newest_commit: Mapping[TopicPartition, datetime],
        dead_letters: Mapping[TopicPartition, int],
    ) -> None:
        """Store the batch's offsets and ledger rows; called inside the batch's transaction.

        Never moves an offset back.
        """
        rows = [
            (self.group_id, topic, partition, first, nxt, newest_commit.get((topic, partition)),
             dead_letters.get((topic, partition), 0))
            for (topic, partition), (first, nxt) in sorted(offset_ranges.items())
        ]  # fmt: skip
        cur.executemany(
            """
            INSERT INTO cdcsync.consumer_offsets AS o
                (group_id, topic, partition, next_offset, newest_source_commit, dead_letters, applied_at)
            VALUES (%s, %s, %s, %s, %s, %s, clock_timestamp())
            ON CONFLICT (group_id, topic, partition) DO UPDATE SET
                next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset),
                newest_source_commit = GREATEST(o.newest_source_commit, EXCLUDED.newest_source_commit),
                dead_letters = o.dead_letters + EXCLUDED.dead_letters,
                applied_at = EXCLUDED.applied_at
            """,
            [(g, t, p, nxt, newest, dead) for g, t, p, _, nxt, newest, dead in rows],
        )
        cur.executemany(
            "INSERT INTO cdcsync.applied_offset_ranges (group_id, topic, partition, first_offset, next_offset)"
            " VALUES (%s, %s, %s, %s, %s)",
            [(g, t, p, first, nxt) for g, t, p, first, nxt, _, _ in rows],
        )
        if time.monotonic() - self._last_prune > _PRUNE_EVERY_S:
            cur.execute(
                "DELETE FROM cdcsync.applied_offset_ranges WHERE applied_at < now() - make_interval(hours => %s)",
                (self._retention_hours,),
            )
            self._last_prune = time.monotonic()


@dataclass(frozen=True)
class PartitionLedger:
    """What the ledger says about one partition: batches, and offsets applied twice or skipped.

    Overlaps are counted between consecutive batches, whose ranges the sink applies in offset order."""

    topic: str
    partition: int
    batches: int
    first_offset: int  # where the first batch began
    next_offset: int  # where the last batch ended
    offsets_applied: int
    overlaps: int  # batches that re-applied offsets an earlier batch had applied
    reapplied: int  # offsets those batches re-applied
    gaps: int  # offsets between batches that no batch applied (compaction or retention gaps, or loss)


def audit_ledger(conn: Connection[tuple[object, ...]], group_id: str) -> list[PartitionLedger]:
    """Walk each partition's ranges in application order and count overlaps and gaps."""
    rows = conn.execute(
        "SELECT topic, partition, first_offset, next_offset FROM cdcsync.applied_offset_ranges"
        " WHERE group_id = %s ORDER BY topic, partition, id",
        (group_id,),
    ).fetchall()
    ranges = [(str(t), int(str(p)), int(str(first)), int(str(nxt))) for t, p, first, nxt in rows]
    ledgers = []
    for (topic, partition), group in groupby(ranges, key=lambda r: (r[0], r[1])):
        spans = [(first, nxt) for _, _, first, nxt in group]
        pairs = list(pairwise(spans))
        ledgers.append(
            PartitionLedger(
                topic=topic,
                partition=partition,
                batches=len(spans),
                first_offset=spans[0][0],
                next_offset=spans[-1][1],
                offsets_applied=sum(nxt - first for first, nxt in spans),
                overlaps=sum(1 for (_, before), (first, _) in pairs if first < before),
                reapplied=sum(max(0, min(before, nxt) - first) for (_, before), (first, nxt) in pairs),
                gaps=sum(max(0, first - before) for (_, before), (first, _) in pairs),
            )
        )
    return ledgers
