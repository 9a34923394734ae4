"""How far the sink is: per topic partition, lag behind Kafka and freshness of the calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition


@dataclass(frozen=True)
class PartitionProgress:
    topic: str
    partition: int
    next_offset: int
    high_watermark: int | None
    newest_source_commit: datetime | None
    applied_at: datetime
    dead_letters: int

    @property
    def service(self) -> str:
        """The source service: the topic prefix Debezium writes with (``course.public.lectures``)."""
        return self.topic.split(".", 1)[0]

    @property
    def lag(self) -> int | None:
        return None if self.high_watermark is None else max(0, self.high_watermark - self.next_offset)


def read_progress(sink_db_url: str, bootstrap_servers: str, group_id: str) -> list[PartitionProgress]:
    """Stored offsets of ``group_id`` with Kafka's high watermarks (None where Kafka is unreachable)."""
    with psycopg.connect(sink_db_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT topic, partition, next_offset, newest_source_commit, applied_at, dead_letters"
            " FROM cdcsync.consumer_offsets WHERE group_id = %s ORDER BY topic, partition",
            (group_id,),
        ).fetchall()
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"{group_id}-status"})
    progress = []
    try:
        for topic, partition, next_offset, newest, applied_at, dead_letters in rows:
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)
            except KafkaException:
                high = None
            progress.append(PartitionProgress(topic, partition, next_offset, high, newest, applied_at, dead_letters))
    finally:
        consumer.close()
    return progress
