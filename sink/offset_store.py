"""Kafka offsets kept in the calendar database, written in each batch's transaction.

Because the offsets commit atomically with the rows they produced, a crash at
any instant resumes exactly after the last applied batch. The offsets are also
committed to Kafka afterwards, only so that standard lag tools see them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from psycopg import Connection, Cursor

TopicPartition = tuple[str, int]


class OffsetStore:
    def __init__(self, group_id: str) -> None:
        self.group_id = group_id

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

    def save(
        self,
        cur: Cursor[tuple[object, ...]],
        next_offsets: Mapping[TopicPartition, int],
        newest_commit: Mapping[TopicPartition, datetime],
    ) -> None:
        """Store the batch's offsets; called inside the batch's transaction. Never moves an offset back."""
        cur.executemany(
            """
            INSERT INTO cdcsync.consumer_offsets AS o
                (group_id, topic, partition, next_offset, newest_source_commit, applied_at)
            VALUES (%s, %s, %s, %s, %s, clock_timestamp())
            ON CONFLICT (group_id, topic, partition) DO UPDATE SET
                next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset),
                newest_source_commit = GREATEST(o.newest_source_commit, EXCLUDED.newest_source_commit),
                applied_at = EXCLUDED.applied_at
            """,
            [
                (self.group_id, topic, partition, offset, newest_commit.get((topic, partition)))
                for (topic, partition), offset in sorted(next_offsets.items())
            ],
        )
